//! Remoting: the wire between nodes. Length-prefixed bincode frames, an
//! authenticated handshake, one data connection per peer with a batching
//! writer plus a membership lane (a second authenticated connection that
//! carries only failure detection, so bulk calls cannot delay it), service
//! tables exchanged on connect and on change, and location-
//! transparent calls through [`ServiceRef`](crate::ServiceRef).

pub(crate) mod address;
pub(crate) mod call_lane;
pub mod discovery;
pub(crate) mod frame;
pub(crate) mod handshake;
pub(crate) mod inbound;
pub(crate) mod join;
pub(crate) mod json_forward;
pub(crate) mod live_source;
pub(crate) mod membership;
mod operator;
pub(crate) mod peer;
pub(crate) mod reachability;
pub(crate) mod remoting;
pub(crate) mod routes;
pub mod split_brain;
pub(crate) mod stats;
mod status;
pub(crate) mod table;
pub mod tls;
pub mod transport;
pub(crate) mod wire;
pub(crate) mod wire_error;

pub use frame::{FrameError, NodeInfo, DEFAULT_MAX_FRAME_BYTES, DEFAULT_MAX_HANDSHAKE_FRAME_BYTES};
pub use handshake::HandshakeError;
pub(crate) use operator::ServiceOperator;
pub use operator::{
    inject_fault, inject_fault_via, operate_services, operate_services_via, FaultError,
    FaultRefusal, FaultReport, FaultRequest, ServiceOpError, ServiceReport, ServiceRequest,
    ServiceRow,
};
pub use remoting::{
    RemoteConfig, DEFAULT_DISCOVERY_INTERVAL, DEFAULT_HANDSHAKE_TIMEOUT,
    DEFAULT_MAX_CONTROL_QUEUE_BYTES, DEFAULT_MAX_DATA_QUEUE_BYTES, DEFAULT_MAX_INBOUND_ASKS,
    DEFAULT_MAX_PENDING_HANDSHAKES, DEFAULT_PEER_STALL_TIMEOUT,
};
pub use stats::{ConnectionSnapshot, RemoteSnapshot};
pub use status::{ClusterEvent, ClusterStatus, MemberView, ServiceView, StatusError};
pub use tls::{TlsConfig, TlsError, TlsIdentity};

/// Fetches the cluster view from a running node at `seed` over the
/// authenticated protocol and TCP (what `msa cluster status` does).
///
/// # Errors
/// [`StatusError`] when the node cannot be reached, refuses the handshake,
/// or does not answer within `timeout`.
pub async fn cluster_status(
    seed: &str,
    cluster: &str,
    secret: &[u8],
    timeout: std::time::Duration,
) -> Result<ClusterStatus, StatusError> {
    cluster_status_via(&transport::TcpTransport, seed, cluster, secret, timeout).await
}

/// [`cluster_status`] over another transport (a
/// [`MemoryNetwork`](transport::MemoryNetwork), for instance).
///
/// # Errors
/// As [`cluster_status`].
pub async fn cluster_status_via(
    transport: &dyn transport::Transport,
    seed: &str,
    cluster: &str,
    secret: &[u8],
    timeout: std::time::Duration,
) -> Result<ClusterStatus, StatusError> {
    remoting::fetch_status(transport, seed, cluster, secret, timeout).await
}
