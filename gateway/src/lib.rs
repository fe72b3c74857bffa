//! # msa-gateway
//!
//! HTTP ingress for an msa node: JSON calls to services by name, JWT
//! role-based access, health and readiness probes, Prometheus metrics and
//! a cluster view. docs/gateway.md has the routes, the error table and a
//! configuration example.
//!
//! * `POST /v1/{service}/{message}` with a JSON body calls `message` (a wire
//!   name) on `service` and answers the JSON result; configured routes such
//!   as `GET /orders/{id}` map a method and path to a message, merging path
//!   parameters into the body.
//! * Errors are `{"error": kind, "message": text}` with a fitting status.
//! * With [`AuthConfig`] set, calls need `Authorization: Bearer <JWT>` and a
//!   [`PolicyRule`] that grants one of the caller's roles; the caller's
//!   [`Identity`](msa_runtime::Identity) and a trace context travel with the
//!   call to the service, on this node or another.
//! * `GET /healthz`, `/readyz`, `/metrics`, `/v1/cluster` for operations;
//!   [`OpsServer`] serves the first three on an operations address of their
//!   own, on any node, gateway or not.
//! * With [`GatewayConfig::grpc`] set, the same calls over gRPC (package
//!   `msa.v1`, service `Gateway`, plus health and reflection) on an address
//!   of their own: [`grpc`], docs/grpc.md.
//!
//! ## Example
//!
//! ```
//! use std::time::Duration;
//! use msa_gateway::{Gateway, GatewayConfig};
//!
//! # #[actix_rt::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A node with a service...
//! let node = msa_runtime::Node::builder().arbiters(1).start()?;
//! node.spawn(msa_actors::echo::echo_spec("echo")).await?;
//!
//! // ...and its gateway, on a free port.
//! let config = GatewayConfig { bind: "127.0.0.1:0".parse()?, ..GatewayConfig::default() };
//! let gateway = Gateway::start(node.clone(), config)?;
//! let url = format!("http://{}/v1/echo/echo.Echo", gateway.local_addr());
//!
//! // Any HTTP client will do; awc is actix's.
//! let mut res = awc::Client::new().post(url).send_body(r#""hello""#).await?;
//! assert_eq!(res.status(), 200);
//! assert_eq!(res.body().await?, r#""hello""#);
//!
//! gateway.stop().await;
//! node.shutdown(Duration::from_secs(5)).await?;
//! # Ok(()) }
//! ```

mod auth;
mod body;
mod call;
mod config;
mod cors;
mod dispatch;
mod drain;
mod error;
pub mod grpc;
mod ids;
mod live;
mod metrics;
mod openapi;
mod ops;
mod policy;
mod routes;
mod server;
mod sse;
mod tls;
mod trace;
mod verifier;

pub use auth::hs256_token;
pub use config::{
    AuthConfig, CorsConfig, GatewayConfig, JwtAlg, PolicyRule, RouteConfig, TlsConfig,
};
pub use error::GatewayError;
pub use grpc::GrpcConfig;
pub use ops::{OpsHandle, OpsServer};
pub use server::{Gateway, GatewayHandle};
pub use verifier::JwtVerifier;
