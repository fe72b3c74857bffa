//! The cluster view: the members a node knows and where services run; also
//! served to `msa cluster status` over the authenticated protocol.

use serde::{Deserialize, Serialize};

/// A member as one node sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberView {
    /// Node name.
    pub name: String,
    /// Remoting address.
    pub addr: String,
    /// `alive`, `suspect`, `down` or `left`.
    pub status: String,
    /// Incarnation (start time of the node process).
    pub incarnation: u64,
}

/// A service and the nodes that run an instance of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceView {
    /// Service name.
    pub name: String,
    /// Nodes with at least one live instance, sorted.
    pub nodes: Vec<String>,
}

/// What a node knows of the cluster (`msa cluster status --json`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ClusterStatus {
    /// Every member the node knows, itself included.
    pub members: Vec<MemberView>,
    /// Every service with a live instance somewhere.
    pub services: Vec<ServiceView>,
}

/// Why the status could not be fetched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StatusError {
    /// No connection to the seed.
    #[error("cannot connect to {addr}: {reason}")]
    Connect {
        /// The seed.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The handshake failed (wrong secret, cluster, protocol).
    #[error("handshake with {addr} failed: {reason}")]
    Handshake {
        /// The seed.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The node did not answer in time or answered nonsense.
    #[error("no status from {addr}: {reason}")]
    Protocol {
        /// The seed.
        addr: String,
        /// Why.
        reason: String,
    },
}

/// A change in cluster membership, as this node sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClusterEvent {
    /// A member joined (or came back with a new incarnation).
    Joined {
        /// Name, address, incarnation.
        member: super::NodeInfo,
    },
    /// A member left gracefully (its connection closed after it stopped).
    Left {
        /// The member's name.
        name: String,
    },
    /// A member was declared down by failure detection.
    Down {
        /// The member's name.
        name: String,
        /// Why: the detector's verdict or the connection's end.
        reason: String,
    },
}
