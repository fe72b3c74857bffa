//! What every part of a node shares: its name, registry, deadlines,
//! timeouts, where it runs actors, and its remoting layer.
//!
//! It lives with the services because every [`ServiceRef`](crate::ServiceRef)
//! and every instance holds it; the node (`node.rs`) builds and owns it,
//! supervisors get it to launch instances with, and remoting sees only its
//! [`LocalNode`](crate::remote::inbound::LocalNode) side.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::ArbiterHandle;

use crate::deadline::Deadlines;
use crate::lifecycle::Placement;
use crate::registry::Registry;

/// Where a node runs its actors.
#[derive(Debug)]
pub(crate) enum Exec {
    /// On a pool of actix arbiters, round-robin.
    Arbiters {
        handles: Vec<ArbiterHandle>,
        /// Each arbiter's id (`lifecycle/home.rs`), in the order of `handles`.
        ids: Vec<u32>,
        next: AtomicUsize,
        /// Where supervisors run: the node's System thread, apart from
        /// the instances (its handle and arbiter id).
        supervisors: (ArbiterHandle, u32),
    },
    /// On the `LocalSet` of the thread that started the node.
    Local,
}

/// What every part of a node shares (actors hold this, not the [`Node`],
/// so that dropping the last `Node` handle can stop the node).
#[derive(Debug)]
pub(crate) struct NodeShared {
    pub(crate) name: String,
    pub(crate) registry: Registry,
    pub(crate) deadlines: Deadlines,
    pub(crate) closing: AtomicBool,
    /// Calls from other nodes are refused (`Node::refuse_remote_calls`).
    pub(crate) refusing_remote: AtomicBool,
    /// Whether instances count what is queued to them (mailbox depth).
    pub(crate) track_mailbox_depth: bool,
    pub(crate) default_timeout: Duration,
    /// `default_timeout` in whole milliseconds, rounded up (per-call math saved).
    pub(crate) default_timeout_ms: u64,
    pub(crate) exec: Exec,
    /// Checks the tokens of identities from other nodes.
    pub(crate) verifier: Option<Arc<dyn crate::access::IdentityVerifier>>,
    /// The live view's state: spans, restarts, start time.
    pub(crate) live: crate::live::NodeLive,
    /// Remoting, when the node listens or dials.
    pub(crate) remote: Option<Arc<crate::remote::remoting::Remoting>>,
}

impl NodeShared {
    /// The next place to run an actor.
    pub(crate) fn placement(&self) -> Placement {
        match &self.exec {
            Exec::Local => Placement::Local,
            Exec::Arbiters {
                handles, ids, next, ..
            } => {
                let i = next.fetch_add(1, Ordering::Relaxed) % handles.len();
                Placement::Arbiter(handles[i].clone(), ids.get(i).copied().unwrap_or(0))
            }
        }
    }

    /// Where to run a supervisor.
    pub(crate) fn supervisor_placement(&self) -> Placement {
        match &self.exec {
            Exec::Local => Placement::Local,
            Exec::Arbiters {
                supervisors: (h, id),
                ..
            } => Placement::Arbiter(h.clone(), *id),
        }
    }
}
