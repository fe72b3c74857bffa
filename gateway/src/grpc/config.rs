//! `[grpc]`: where the gRPC ingress listens and its bounds.

use std::net::{Ipv4Addr, SocketAddr};

use serde::Deserialize;

/// gRPC ingress settings (a node's `[grpc]` table, set on
/// [`GatewayConfig::grpc`](crate::GatewayConfig::grpc)). Auth, policy and
/// the call timeout are the gateway's (`[gateway.auth]`,
/// `[[gateway.policy]]`, `[gateway] timeout_ms`).
///
/// # Examples
/// ```
/// let g: msa_gateway::GrpcConfig = serde_json::from_value(serde_json::json!({
///     "bind": "127.0.0.1:0",
/// })).unwrap();
/// assert_eq!(g.max_message_bytes, 1024 * 1024);
/// assert_eq!(g.max_concurrency, 1024);
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcConfig {
    /// The listen address (default `127.0.0.1:50051`; port 0 picks a free one).
    pub bind: SocketAddr,
    /// Threads of the gRPC server's tokio runtime (default 2, as the HTTP
    /// gateway's workers, for the same reason: the node's arbiters do the work).
    pub workers: usize,
    /// Largest request message accepted, in bytes (default 1 MiB, the HTTP
    /// gateway's body limit); a larger one is answered `RESOURCE_EXHAUSTED`
    /// without being decoded.
    pub max_message_bytes: usize,
    /// `Call`s in flight before new ones are answered `RESOURCE_EXHAUSTED`
    /// (default 1024, as an HTTP route's `max_concurrency`).
    pub max_concurrency: usize,
    /// TLS (`[grpc.tls]`, the same keys as `[gateway.tls]`: `cert`, `key`,
    /// optionally `client_ca` for client certificates); `None`: plaintext
    /// HTTP/2 (h2c), with a warning at start beyond loopback.
    pub tls: Option<crate::TlsConfig>,
}

impl Default for GrpcConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 50051)),
            workers: 2,
            max_message_bytes: 1024 * 1024,
            max_concurrency: 1024,
            tls: None,
        }
    }
}
