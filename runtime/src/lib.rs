//! # msa-runtime
//!
//! The engine of msa: a node runs services, each a supervised actor on
//! actix; a registry finds them by name; a [`ServiceRef`] calls them whether
//! an instance is local or (with the cluster layer) remote.
//!
//! ## A tour
//!
//! Write a service as plain state with handlers:
//!
//! ```
//! use msa_runtime::prelude::*;
//! use serde::{Deserialize, Serialize};
//!
//! // A message that may cross nodes: serializable, with a stable wire name.
//! #[derive(actix::Message, Serialize, Deserialize, RemoteMessage)]
//! #[rtype(result = "u64")]
//! #[msa(name = "tour.Add")]
//! struct Add(u64);
//!
//! #[derive(Default)]
//! struct Sum(u64);
//! impl Service for Sum {}
//! impl Handler<Add> for Sum {
//!     fn handle(&mut self, msg: Add, ctx: &mut ServiceContext<'_, Self>) -> Reply<Self, u64> {
//!         // Who called, as part of which trace, until when:
//!         let _caller = ctx.identity().map(|id| id.subject.clone());
//!         self.0 += msg.0;
//!         Reply::ready(self.0)
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Start a node (its own arbiter threads), spawn the service supervised,
//! // and call it by name.
//! let node = Node::builder().name("tour").arbiters(2).start()?;
//! let sum = node
//!     .spawn(ServiceSpec::new("sum", Sum::default).handles::<Add>().restart(Restart::Permanent))
//!     .await?;
//! assert_eq!(sum.ask(Add(2)).await?, 2);
//! sum.tell(Add(3))?;
//! assert_eq!(node.service("sum").ask(Add(0)).await?, 5);
//!
//! // Mistakes are typed errors, never hangs.
//! assert!(matches!(
//!     node.service("nope").ask(Add(1)).await,
//!     Err(CallError::UnknownService { .. })
//! ));
//!
//! // Drain and stop: services get `stopping`/`stopped`, threads are joined.
//! node.shutdown(std::time::Duration::from_secs(1)).await?;
//! # Ok(()) }
//! ```
//!
//! Connecting a second node comes with the cluster layer; within one process,
//! two nodes already run side by side with nothing shared.
//!
//! ## Where things are
//! * [`Node`], [`NodeBuilder`]: start, spawn, look up, watch, shut down.
//! * [`Service`], [`Handler`], [`Reply`], [`ServiceContext`]: writing services.
//! * [`ServiceSpec`], [`SupervisorSpec`], [`Strategy`], [`Restart`],
//!   [`Backoff`]: supervision (see the [`supervision`] module docs).
//! * [`ServiceRef`], [`CallError`], [`Metadata`]: calling services.
//! * [`RemoteMessage`], [`codec`]: messages that cross nodes.

// The derive emits `::msa_runtime::…` paths; inside this crate they name itself.
#[allow(unused_extern_crates)]
extern crate self as msa_runtime;

pub mod access;
pub mod live;
pub mod supervision;

mod deadline;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod json;
mod lifecycle;
mod message;
mod metadata;
mod node;
mod registry;
pub mod remote;
mod service;
pub mod sim;
mod stats;
#[doc(hidden)]
pub mod test_support;
mod topic;

pub use error::{BincodeError, CallError, JsonError, NodeError, SpawnError, TaskError};
pub use json::{JsonBody, JsonReply, MessageInfo};
pub use message::contract;
pub use message::{codec, json_schema_of, key_hash, CodecError, KeyedMessage, RemoteMessage};
/// `#[derive(RemoteMessage)]`: implements [`RemoteMessage`] and declares the
/// type so that any node of this binary can send it to other nodes with
/// nothing registered; see [`RemoteMessage`].
pub use msa_macros::RemoteMessage;

/// What the derive expands to; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::message::declared::{Declared, DeclaredCodec};
    pub use inventory;
    pub use serde_json;
}
pub use lifecycle::{Backoff, ExitReason, Intensity, Restart, Shutdown, StartError, Strategy};
pub use live::{ClusterLive, LiveQuery, LiveReport, PeerLive, SpanKind, SpanRecord};
pub use metadata::{Identity, Metadata, TraceContext};
pub use node::{Node, NodeBuilder, TaskHandle};
pub use registry::{InstanceId, MonitorReason, RegistryEvent, RegistryWatch, ServiceState};
pub use service::{
    Ask, AskFuture, Envelope, Handler, HandlerFailure, Reply, Routing, Service, ServiceActor,
    ServiceContext, ServiceRef, ServiceSpec, TellEnvelope,
};
pub use stats::{LatencySnapshot, StatsSnapshot, LATENCY_BOUNDS_US};
pub use supervision::{SupervisorError, SupervisorHandle, SupervisorSpec};
pub use topic::{
    Group, GroupError, GroupMember, GroupMembership, JsonEvent, JsonSubscription,
    ServiceSubscription, Subscription, Topic, TopicItem, TopicStats,
};

/// actix, re-exported for its types and traits. Its `Message` derive expands
/// to `::actix::…` paths, so a crate that derives messages also lists `actix`
/// among its own dependencies.
pub use actix;

/// schemars, re-exported for [`RemoteMessage::json_schema`]: derive
/// `schemars::JsonSchema` on a message to describe its JSON shape.
pub use schemars;

/// What most services need: `use msa_runtime::prelude::*;`.
pub mod prelude {
    pub use crate::{
        CallError, Handler, KeyedMessage, Metadata, Node, RemoteMessage, Reply, Restart, Routing,
        Service, ServiceActor, ServiceContext, ServiceRef, ServiceSpec, Strategy, SupervisorSpec,
        TaskError,
    };
    pub use actix::Message;
}
