//! The messages a supervisor takes: from its children (ready, exited,
//! failed), from the node (add a child, stop or kill the tree), and from
//! itself (a restart whose backoff elapsed).

use actix::Message;
use tokio::sync::oneshot;

use super::spec::ChildSpec;
use crate::error::SpawnError;
use crate::lifecycle::ExitReason;

/// A service's supervisor restarted one of its instances (after a failure,
/// or a permanent instance's normal stop): for its parent, that service
/// exited, so a one-for-all or rest-for-one parent restarts the siblings.
#[derive(Debug)]
pub(crate) struct ChildFailed {
    pub(crate) child: usize,
    pub(crate) generation: u64,
    pub(crate) reason: ExitReason,
}
impl Message for ChildFailed {
    type Result = ();
}

/// Root only: add and start a child; the reply comes once it is ready.
#[derive(Debug)]
pub(crate) struct AddChild {
    pub(crate) spec: ChildSpec,
    pub(crate) reply: oneshot::Sender<Result<(), SpawnError>>,
}
impl Message for AddChild {
    type Result = ();
}

/// Stop every child gracefully, in reverse order, then stop.
#[derive(Debug)]
pub(crate) struct StopTree {
    pub(crate) reply: Option<oneshot::Sender<()>>,
}
impl Message for StopTree {
    type Result = ();
}

/// Kill every child now (recursively), then stop. `fail` marks the
/// services failed rather than stopped.
#[derive(Debug)]
pub(crate) struct KillTree {
    pub(crate) fail: bool,
}
impl Message for KillTree {
    type Result = ();
}

/// A restart whose backoff has elapsed.
#[derive(Debug)]
pub(crate) struct RestartDue {
    pub(crate) from: usize,
    pub(crate) only: bool,
}
impl Message for RestartDue {
    type Result = ();
}
