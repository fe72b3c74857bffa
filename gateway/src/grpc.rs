//! gRPC ingress: package `msa.v1`, service `Gateway` (unary `Call`,
//! server-streaming `Subscribe`), the standard health service and server
//! reflection, served by tonic beside the HTTP server (docs/grpc.md).
//!
//! It is part of the gateway, not a second one: it shares the HTTP side's
//! authenticator (the token in the `authorization: Bearer ...` metadata),
//! policy, call path (`call::admit`, `call::call_metadata`, `call::run`),
//! error mapping (an [`ApiError`](crate::error::ApiError)'s status becomes
//! the gRPC code of the same meaning), drain and metrics. It runs on a
//! thread of its own with its own tokio runtime, so the HTTP workers and the
//! gRPC ones never wait on each other.
//!
//! The Rust code for the proto (`gateway/proto/msa/v1/gateway.proto`) is
//! generated once and committed (`grpc/gen/`), so building msa needs
//! neither protoc nor a build script; `gateway/proto/gen` regenerates it.

mod config;
mod deadline;
mod server;
mod service;
mod size;
mod status;
mod tls;

pub use config::GrpcConfig;
pub(crate) use server::{start, GrpcServer};

/// The messages, client and server generated from `msa/v1/gateway.proto`
/// (prost + tonic), for clients in Rust:
/// `msa_gateway::grpc::proto::gateway_client::GatewayClient`.
#[allow(
    missing_docs,
    unreachable_pub,
    missing_debug_implementations,
    clippy::all,
    rust_2018_idioms
)]
pub mod proto {
    include!("grpc/gen/msa.v1.rs");

    /// The encoded file descriptor set of `msa/v1/gateway.proto`, as server
    /// reflection serves it.
    pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!("grpc/gen/msa_v1_descriptor.bin");
}
