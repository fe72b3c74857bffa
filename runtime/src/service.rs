//! Services: the traits a user implements, the actix actor msa wraps them in,
//! the spec that registers them, and the location-transparent handle.

mod actor;
mod batch;
mod context;
mod handle;
mod node_shared;
mod reply;
mod room;
mod send;
mod sender_cache;
mod serve;
mod span;
mod spec;

pub use actor::{Envelope, Handler, Service, ServiceActor, TellEnvelope};
pub use context::ServiceContext;
pub use handle::{Ask, AskFuture, ServiceRef};
pub use reply::{HandlerFailure, Reply};
pub use spec::{Routing, ServiceSpec};

pub(crate) use node_shared::{Exec, NodeShared};
pub(crate) use serve::{bincode_server, json_server};
pub(crate) use spec::{ErasedBlueprint, InstanceLaunch, LaunchedInstance};
