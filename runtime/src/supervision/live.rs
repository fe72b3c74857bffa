//! What the live supervision API reports and how it fails: a tree's
//! children as [`SupervisorHandle::which_children`](super::SupervisorHandle)
//! lists them, their counts, and [`SupervisorError`].

use crate::error::SpawnError;
use crate::lifecycle::Restart;

/// What a child of a supervision tree is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChildKind {
    /// A service (OTP: a worker; its instances are run by the service's own
    /// supervisor).
    Service,
    /// A nested [`SupervisorSpec`](super::SupervisorSpec).
    Supervisor,
}

/// Where a child of a supervision tree is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChildState {
    /// Being started (its instances have not all run `started` yet).
    Starting,
    /// Up.
    Running,
    /// Down, waiting for its restart (a backoff, or a group restart).
    Restarting,
    /// Being stopped (terminated, or killed for a group restart).
    Stopping,
    /// Not running and not restarted: terminated (OTP's `undefined` pid),
    /// or ended for good under its restart policy. A terminated child can
    /// be restarted with `restart_child` or removed with `delete_child`.
    Terminated,
}

/// One child of a supervision tree, as
/// [`SupervisorHandle::which_children`](super::SupervisorHandle::which_children)
/// reports it (OTP's `which_children`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChildInfo {
    /// The service's or nested supervisor's name.
    pub name: String,
    /// Service or supervisor.
    pub kind: ChildKind,
    /// Its state.
    pub state: ChildState,
    /// Its restart policy under the tree.
    pub restart: Restart,
    /// Running instances of a service (0 for a nested supervisor).
    pub instances: usize,
}

/// How many children a tree has (OTP's `count_children`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChildCount {
    /// Every child the tree holds a spec for (terminated ones included,
    /// deleted ones not).
    pub specs: usize,
    /// Children running or starting.
    pub active: usize,
    /// Nested supervisors.
    pub supervisors: usize,
    /// Services (OTP's workers).
    pub workers: usize,
}

/// Why an operation of the live supervision API failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SupervisorError {
    /// The tree has no child of that name (or it was deleted).
    #[error("supervisor `{tree}` has no child `{child}`")]
    NoChild {
        /// The tree.
        tree: String,
        /// The name asked for.
        child: String,
    },
    /// The child runs: it must be terminated first (OTP's `running`).
    #[error("child `{child}` is running; terminate it first")]
    Running {
        /// The child.
        child: String,
    },
    /// The tree (or the service's supervisor) is no longer running: it
    /// gave up, or the node shut down.
    #[error("supervisor `{tree}` is not running")]
    NotRunning {
        /// The supervisor.
        tree: String,
    },
    /// No service of that name runs on this node.
    #[error("no service `{service}` runs on this node")]
    UnknownService {
        /// The name asked for.
        service: String,
    },
    /// No running instance with that id.
    #[error("service `{service}` has no running instance {instance}")]
    NoInstance {
        /// The service.
        service: String,
        /// The instance asked for.
        instance: crate::registry::InstanceId,
    },
    /// `scale` asked for more instances than the service's
    /// [`max_instances`](crate::ServiceSpec::max_instances), or for zero.
    #[error("service `{service}` cannot run {asked} instances: between 1 and {max}")]
    InvalidScale {
        /// The service.
        service: String,
        /// The count asked for.
        asked: usize,
        /// Its `max_instances`.
        max: usize,
    },
    /// Starting a child (or a scaled-up instance) failed.
    #[error(transparent)]
    Spawn(#[from] SpawnError),
}
