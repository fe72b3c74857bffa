//! # msa
//!
//! A microservices runtime for Rust in which every service is a supervised
//! actor. This is the one crate to depend on: it re-exports the engine
//! ([`msa_runtime`]: nodes, services, supervision, service refs) at its root,
//! and the ready-made services of [`msa_actors`] as [`actors`].
//!
//! ## A tour
//!
//! Start a node, spawn a key-value store sharded over two instances, call
//! it by name, and shut down:
//!
//! ```
//! use std::time::Duration;
//! use msa::actors::kv;
//! use msa::{CallError, Node};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A node runs services on its own threads; no runtime setup is needed.
//! let node = Node::builder().name("tour").arbiters(2).start()?;
//!
//! // Spawn a supervised service; `spawn` returns once its instances run.
//! let store = node.spawn(kv::kv_spec("kv", 2)).await?;
//!
//! // Messages are typed; so are replies.
//! let previous = store.ask(kv::Put::new("lang", "rust")).await?;
//! assert_eq!(previous, None);
//! let value = store.ask(kv::Get::new("lang")).await?;
//! assert_eq!(value.as_deref(), Some(&b"rust"[..]));
//!
//! // Anyone on the node can find the service by name.
//! let keys = kv::list_all(&node.service("kv"), "").await?;
//! assert_eq!(keys, ["lang"]);
//!
//! // Mistakes are typed errors, never hangs.
//! let missing = node.service("nope").ask(kv::Get::new("lang")).await;
//! assert!(matches!(missing, Err(CallError::UnknownService { .. })));
//!
//! // Drain and stop.
//! node.shutdown(Duration::from_secs(5)).await?;
//! # Ok(()) }
//! ```
//!
//! Writing your own service takes a state type, a [`Handler`] per message
//! and a [`ServiceSpec`]; see [`msa_runtime`]'s tour and the sources of
//! [`actors`].

pub use msa_runtime::*;

/// Ready-made services: key-value store, echo, counter.
pub use msa_actors as actors;

/// The HTTP gateway ([`msa_gateway`]): routes, RBAC, health, metrics.
pub use msa_gateway as gateway;

#[cfg(feature = "host")]
pub mod host;

/// The README's code blocks, compiled and run as doc-tests so that the
/// embedding example there stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
