//! Supervision trees with OTP semantics.
//!
//! ```text
//!            node root (one-for-one, never restarts: logs and marks failed)
//!            /                     \
//!   service "kv" supervisor      user SupervisorSpec (one-for-all)
//!    /     |      \                /                  \
//!  inst0 inst1  inst2     service "orders" sup    service "payments" sup
//!                               |                        |
//!                             inst0                    inst0
//! ```
//!
//! * A service's instances are the children of that service's own supervisor
//!   (one-for-one by default). They start together and stop together: they
//!   are interchangeable copies, so no order among them is meaningful.
//! * A [`SupervisorSpec`]'s children (services and nested supervisors) start
//!   one after another, each once the previous one is ready (every instance
//!   ran `started`), and stop in reverse order, each once the next has exited.
//! * Restart policies: [`Restart::Permanent`] always, [`Restart::Transient`]
//!   only after a failure, [`Restart::Temporary`] never (also not by a
//!   sibling's group restart). A service inside a [`SupervisorSpec`] follows
//!   its own policy there.
//! * Under a one-for-all or rest-for-one [`SupervisorSpec`], a service does
//!   not restart an exited instance itself: the tree stops the children its
//!   strategy names, last first, and starts them again in start order.
//! * A child that fails its first start is not retried: its supervisor gives
//!   up at once and `spawn` returns the error. Nothing restarts once the node
//!   has begun to shut down.
//! * Restart intensity: more than `max_restarts` within `within` makes the
//!   supervisor give up: it kills its children, and escalates to its parent,
//!   which treats that as a failure of the child. At the root, giving up is
//!   logged, the service is marked [`ServiceState::Failed`](crate::ServiceState)
//!   and everything else keeps running. A period under
//!   [`Intensity::MIN_PERIOD`] is refused at spawn.
//!
//! docs/runtime.md explains the two layers and compares each rule with OTP.
//! * Failure detection: actix restarts nothing after a panic, so msa owns each
//!   actor's context future, runs it under `catch_unwind`, and tells the
//!   supervisor how it ended ([`ExitReason`]). A restarted instance is a fresh
//!   value from the factory.

mod child;
mod decide;
mod handle;
mod live;
mod messages;
mod spec;
mod stop_cursor;
mod supervisor;

pub use crate::lifecycle::{
    Backoff, ExitReason, Intensity, Restart, Shutdown, StartError, Strategy,
};
pub use handle::SupervisorHandle;
pub use live::{ChildCount, ChildInfo, ChildKind, ChildState, SupervisorError};
pub use spec::SupervisorSpec;

pub(crate) use handle::prepare_service;
pub(crate) use messages::{
    AddChild, KillInstance, KillTree, RestartService, Scale, StopService, StopTree,
};
pub(crate) use spec::ChildSpec;
pub(crate) use supervisor::{Kind, Supervisor};
