//! Operator requests beyond the status: fault injection (`msa cluster
//! partition`, `slow`, `heal`, `kill`), over the same authenticated client
//! connection as `msa cluster status`.
//!
//! Each request changes the rules of the one node it is sent to (see
//! [`Faults`](super::transport::Faults)); a partition of groups A | B is
//! one request per node of either group, which the CLI sends.

use serde::{Deserialize, Serialize};

use super::frame::Frame;
use super::status::StatusError;
use super::transport::{FaultRules, TcpTransport, Transport};

/// What an operator asks one node to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum FaultRequest {
    /// Cut traffic with the named peer nodes: `inbound` stops reading their
    /// frames, `outbound` stops writing to them (adds to the rules set).
    Cut {
        /// Names of peer nodes, each known to the node.
        peers: Vec<String>,
        /// Drop what they send.
        inbound: bool,
        /// Drop what this node sends them.
        outbound: bool,
    },
    /// Deliver every frame from a peer node this much later (0 clears).
    Slow {
        /// The added delay, in milliseconds.
        delay_ms: u64,
    },
    /// Clear every cut and delay.
    Heal,
    /// Change nothing; report the rules and the process id.
    Show,
    /// Answer, then end the process at once (`std::process::abort`), as a
    /// crash would: no leave, no flush.
    Abort,
    /// Answer, then leave the cluster gracefully (`msa cluster leave`): the
    /// node tells its peers it leaves and closes its connections; the
    /// others see it `removed`. Its process keeps running, out of the
    /// cluster (its own services still answer its own callers).
    Leave,
    /// Mark `node` down (`msa cluster down`): a node other than the one
    /// asked is declared down there at once (its connection closed, its
    /// services out of routing) and the verdict is gossiped; the node itself,
    /// asked, leaves as for [`Leave`](Self::Leave). Sent to every member, so
    /// a live node does not rejoin.
    Down {
        /// The member to down.
        node: String,
    },
}

impl FaultRequest {
    /// Whether the asked node leaves the cluster after answering.
    pub(crate) fn leaves(&self, me: &str) -> bool {
        match self {
            Self::Leave => true,
            Self::Down { node } => node == me,
            _ => false,
        }
    }
}

/// A node's answer to a [`FaultRequest`]: its rules after the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultReport {
    /// The node's name.
    pub node: String,
    /// The node's process id.
    pub pid: u32,
    /// The rules now set.
    pub rules: FaultRules,
}

/// Why a node refused a [`FaultRequest`] (nothing was changed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum FaultRefusal {
    /// A peer name the node does not know as a member.
    #[error("unknown node {name:?} (members: {})", known.join(", "))]
    UnknownNode {
        /// The name asked for.
        name: String,
        /// The members the node knows.
        known: Vec<String>,
    },
    /// A node asked to cut itself off from itself.
    #[error("node {name:?} cannot be cut from itself")]
    SelfCut {
        /// The node's name.
        name: String,
    },
    /// The node's transport has no fault layer.
    #[error("this node's transport has no fault layer")]
    NoFaultLayer,
}

/// Why a fault request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FaultError {
    /// The node could not be reached, refused the handshake or did not
    /// answer in time.
    #[error(transparent)]
    Unreachable(#[from] StatusError),
    /// The node answered and refused.
    #[error("{addr} refused: {refusal}")]
    Refused {
        /// The node's address.
        addr: String,
        /// Why.
        refusal: FaultRefusal,
    },
}

/// Sends `request` to the node at `addr` over TCP and the authenticated
/// protocol, and returns its rules afterwards.
///
/// # Errors
/// [`FaultError::Unreachable`] when the node cannot be reached or does
/// not answer within `timeout`; [`FaultError::Refused`] when it refuses
/// (an unknown peer name, for instance).
pub async fn inject_fault(
    addr: &str,
    cluster: &str,
    secret: &[u8],
    request: FaultRequest,
    timeout: std::time::Duration,
) -> Result<FaultReport, FaultError> {
    inject_fault_via(&TcpTransport, addr, cluster, secret, request, timeout).await
}

/// [`inject_fault`] over another transport.
///
/// # Errors
/// As [`inject_fault`].
pub async fn inject_fault_via(
    transport: &dyn Transport,
    addr: &str,
    cluster: &str,
    secret: &[u8],
    request: FaultRequest,
    timeout: std::time::Duration,
) -> Result<FaultReport, FaultError> {
    exchange(
        transport,
        addr,
        cluster,
        secret,
        timeout,
        Frame::Fault { request },
        |f| match f {
            Frame::FaultReply { outcome } => Some(outcome),
            _ => None,
        },
        |addr, refusal| FaultError::Refused { addr, refusal },
    )
    .await
}

/// What an operator asks one node about its own services (`msa service
/// list|scale|restart`), over the same authenticated client connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ServiceRequest {
    /// Report the node's services.
    List,
    /// Run this many instances of a service (`Node::scale`).
    Scale {
        /// The service.
        service: String,
        /// The instance count asked for.
        instances: u32,
    },
    /// Stop a service gracefully and start it again (`Node::restart_service`).
    Restart {
        /// The service.
        service: String,
    },
}

/// One service of a node, as `msa service list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceRow {
    /// The service.
    pub name: String,
    /// `starting`, `running`, `failed` or `stopped`.
    pub state: String,
    /// Instances running now.
    pub instances: u32,
    /// The most it may run (`ServiceSpec::max_instances`).
    pub max_instances: u32,
}

/// A node's answer to a [`ServiceRequest`]: its services afterwards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceReport {
    /// The node's name.
    pub node: String,
    /// Its services (those spawned on it), by name.
    pub services: Vec<ServiceRow>,
}

/// Carries out [`ServiceRequest`]s on a node: implemented by the node (the
/// remoting layer cannot reach its supervisors itself) and installed in its
/// remoting layer when it starts.
pub(crate) trait ServiceOperator: Send + Sync + std::fmt::Debug {
    /// Carries out `request`; the error is the refusal's text.
    fn operate(
        &self,
        request: ServiceRequest,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<ServiceReport, String>> + Send>>;
}

/// Why a service request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceOpError {
    /// The node could not be reached, refused the handshake or did not
    /// answer in time.
    #[error(transparent)]
    Unreachable(#[from] StatusError),
    /// The node answered and refused (an unknown service, a scale beyond
    /// its `max_instances`, ...).
    #[error("{addr} refused: {reason}")]
    Refused {
        /// The node's address.
        addr: String,
        /// Why.
        reason: String,
    },
}

/// Sends `request` to the node at `addr` over TCP and the authenticated
/// protocol, and returns its services afterwards.
///
/// # Errors
/// [`ServiceOpError::Unreachable`] when the node cannot be reached or does
/// not answer within `timeout`; [`ServiceOpError::Refused`] when it refuses.
pub async fn operate_services(
    addr: &str,
    cluster: &str,
    secret: &[u8],
    request: ServiceRequest,
    timeout: std::time::Duration,
) -> Result<ServiceReport, ServiceOpError> {
    operate_services_via(&TcpTransport, addr, cluster, secret, request, timeout).await
}

/// [`operate_services`] over another transport (mutual TLS with
/// [`TlsClientTransport`](crate::remote::tls::TlsClientTransport)).
///
/// # Errors
/// As [`operate_services`].
pub async fn operate_services_via(
    transport: &dyn Transport,
    addr: &str,
    cluster: &str,
    secret: &[u8],
    request: ServiceRequest,
    timeout: std::time::Duration,
) -> Result<ServiceReport, ServiceOpError> {
    exchange(
        transport,
        addr,
        cluster,
        secret,
        timeout,
        Frame::Services { request },
        |f| match f {
            Frame::ServicesReply { outcome } => Some(outcome),
            _ => None,
        },
        |addr, reason| ServiceOpError::Refused { addr, reason },
    )
    .await
}

/// Sends one operator request over the authenticated client connection and
/// tells the node's answer (`pick`ed from its reply frame) from its refusal
/// (made an error by `refused`, with the node's address) and from a node
/// that could not be reached.
#[allow(clippy::too_many_arguments)]
async fn exchange<T, R, E: From<StatusError>>(
    transport: &dyn Transport,
    addr: &str,
    cluster: &str,
    secret: &[u8],
    timeout: std::time::Duration,
    request: Frame,
    pick: impl Fn(Frame) -> Option<Result<T, R>>,
    refused: impl FnOnce(String, R) -> E,
) -> Result<T, E> {
    match super::remoting::client_exchange(transport, addr, cluster, secret, timeout, request, pick)
        .await
    {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(refusal)) => Err(refused(addr.to_string(), refusal)),
        Err(e) => Err(e.into()),
    }
}
