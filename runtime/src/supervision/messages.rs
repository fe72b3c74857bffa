//! The messages a supervisor takes: from its children (ready, exited,
//! failed), from the node (add a child, stop or kill the tree), and from
//! itself (a restart whose backoff elapsed).

use actix::{Addr, Message};
use tokio::sync::oneshot;

use super::live::{ChildInfo, SupervisorError};
use super::spec::ChildSpec;
use super::supervisor::Supervisor;
use crate::error::SpawnError;
use crate::lifecycle::ExitReason;
use crate::registry::InstanceId;

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

/// Add and start a child (the root, or a tree's `start_child`); the reply
/// comes once it is ready. `tree` gets a nested supervisor's address at
/// once (for its `SupervisorHandle`).
#[derive(Debug)]
pub(crate) struct AddChild {
    pub(crate) spec: ChildSpec,
    pub(crate) reply: oneshot::Sender<Result<(), SpawnError>>,
    pub(crate) tree: Option<oneshot::Sender<Addr<Supervisor>>>,
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

/// Which child of a tree an operation is about.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// By name (the live API).
    Name(String),
    /// By index and run (a service's supervisor naming itself to its parent).
    Index { child: usize, generation: u64 },
}

/// What to do with a tree's child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    /// Stop it and keep it stopped; `delete` also removes it once it exited.
    Terminate { delete: bool },
    /// Start a terminated child again (reply once it is up).
    Restart,
    /// Remove a terminated child.
    Delete,
}

/// An operation on one child of a tree (the live API).
#[derive(Debug)]
pub(crate) struct ChildOp {
    pub(crate) target: Target,
    pub(crate) op: Op,
    pub(crate) reply: oneshot::Sender<Result<(), SupervisorError>>,
}
impl Message for ChildOp {
    type Result = ();
}

/// Lists a tree's children (deleted ones left out).
#[derive(Debug)]
pub(crate) struct WhichChildren {
    pub(crate) reply: oneshot::Sender<Vec<ChildInfo>>,
}
impl Message for WhichChildren {
    type Result = ();
}

/// A service's supervisor: run `n` instances. The reply lists what to wait
/// for: the new instances coming up, or the retired ones exiting.
#[derive(Debug)]
pub(crate) struct Scale {
    pub(crate) n: usize,
    pub(crate) reply: oneshot::Sender<Result<Vec<ScaleWait>, SupervisorError>>,
}
impl Message for Scale {
    type Result = ();
}

/// One thing a scale waits for: an instance up, or a retired one exited.
pub(crate) type ScaleWait = oneshot::Receiver<Result<(), SpawnError>>;

/// A service's supervisor: kill one instance now (from outside; its
/// supervisor treats the exit as a failure).
#[derive(Debug)]
pub(crate) struct KillInstance {
    pub(crate) id: InstanceId,
    pub(crate) reply: oneshot::Sender<Result<(), SupervisorError>>,
}
impl Message for KillInstance {
    type Result = ();
}

/// A service's supervisor: ask the parent to stop and delete this service.
#[derive(Debug)]
pub(crate) struct StopService {
    pub(crate) reply: oneshot::Sender<Result<(), SupervisorError>>,
}
impl Message for StopService {
    type Result = ();
}

/// A service's supervisor: ask the parent to stop this service gracefully
/// and start it again.
#[derive(Debug)]
pub(crate) struct RestartService {
    pub(crate) reply: oneshot::Sender<Result<(), SupervisorError>>,
}
impl Message for RestartService {
    type Result = ();
}
