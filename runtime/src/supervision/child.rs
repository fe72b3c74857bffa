//! A supervisor's view of one child: its spec, its state and what runs.

use actix::Addr;
use tokio::sync::oneshot;

use super::live::SupervisorError;
use super::spec::ChildSpec;
use super::supervisor::Supervisor;
use super::Restart;
use crate::error::SpawnError;
use crate::service::LaunchedInstance;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    /// Not running; may be started.
    Down,
    /// Launched; waiting for it to report ready.
    Starting,
    Running,
    /// Asked to stop gracefully; waiting for its exit.
    Stopping,
    /// Killed; waiting for its exit before what comes next (a restart, an
    /// escalation, or this supervisor's own stop).
    Killing,
    /// Ended for good (temporary/transient, or root child that gave up).
    Done,
}

impl State {
    pub(super) const COUNT: usize = 6;
    pub(super) fn idx(self) -> usize {
        match self {
            Self::Down => 0,
            Self::Starting => 1,
            Self::Running => 2,
            Self::Stopping => 3,
            Self::Killing => 4,
            Self::Done => 5,
        }
    }
}

/// Moves a child to `to`, keeping the per-state counts (so that readiness
/// and stop progress are O(1), not a scan of every child).
pub(super) fn transit(counts: &mut [usize; State::COUNT], c: &mut Child, to: State) {
    counts[c.state.idx()] -= 1;
    counts[to.idx()] += 1;
    c.state = to;
}

pub(super) enum Run {
    Instance(LaunchedInstance),
    /// A child supervisor: it is stopped and killed by messages (its kill
    /// switch, never used, is not kept here). Boxed: an `Addr` is two
    /// words, and a supervisor's children are mostly instances.
    Supervisor(Box<Addr<Supervisor>>),
}

pub(super) struct Child {
    pub(super) spec: ChildSpec,
    pub(super) restart: Restart,
    /// The generation of its current (or last) run, unique within its
    /// supervisor; 0 until it first starts.
    pub(super) generation: u64,
    pub(super) state: State,
    pub(super) run: Option<Run>,
    /// When the current run reported ready (the backoff's quiet period is
    /// measured from here).
    pub(super) up_since: Option<std::time::Instant>,
    /// The call waiting for this child to be ready: a `spawn` at the root,
    /// `start_child`/`restart_child` in a tree, a scale-up of a service.
    pub(super) waiting: Option<Waiter>,
    /// The call waiting for this child to be terminated (`terminate_child`,
    /// `stop_service`, a scale-down); once it has exited it is `Done`.
    pub(super) terminated: Option<Waiter>,
    /// Delete the child once it has exited (`stop_service`).
    pub(super) delete_on_exit: bool,
    /// Deleted (`delete_child`): listed nowhere and never started again;
    /// removed from the list by `Supervisor::compact` as soon as no index
    /// into the list is held elsewhere.
    pub(super) deleted: bool,
    /// Added at run time and not up yet: a failing first start is
    /// reported to the caller and the child is not kept (OTP's
    /// `start_child`), rather than restarted.
    pub(super) dynamic: bool,
    /// An instance slot above the service's current scale: not started
    /// again until a scale-up takes it back.
    pub(super) retired: bool,
}

impl Child {
    pub(super) fn new(spec: ChildSpec, waiting: Option<Waiter>) -> Self {
        Self {
            restart: spec.restart(),
            spec,
            generation: 0,
            state: State::Down,
            run: None,
            up_since: None,
            waiting,
            terminated: None,
            delete_on_exit: false,
            deleted: false,
            dynamic: false,
            retired: false,
        }
    }
}

impl Child {
    /// Kept down: being terminated, above the service's scale, or deleted.
    pub(super) fn held(&self) -> bool {
        self.terminated.is_some() || self.retired || self.deleted
    }
}

/// Someone waiting for a child to come up or to be terminated. Boxed: a
/// [`Child`] holds two of these, and most children (every instance of a
/// service) never have one, so an `Option<Waiter>` is one word, not two.
#[derive(Debug)]
pub(crate) struct Waiter(Box<WaiterKind>);

#[derive(Debug)]
enum WaiterKind {
    /// `Node::spawn`, `spawn_supervisor`, a scale-up.
    Spawn(oneshot::Sender<Result<(), SpawnError>>),
    /// An operation of the live API.
    Op(oneshot::Sender<Result<(), SupervisorError>>),
}

impl Waiter {
    /// `Node::spawn`, `spawn_supervisor`, a scale-up.
    pub(crate) fn spawn(tx: oneshot::Sender<Result<(), SpawnError>>) -> Self {
        Self(Box::new(WaiterKind::Spawn(tx)))
    }

    /// An operation of the live API.
    pub(crate) fn op(tx: oneshot::Sender<Result<(), SupervisorError>>) -> Self {
        Self(Box::new(WaiterKind::Op(tx)))
    }

    pub(super) fn send(self, r: Result<(), SpawnError>) {
        match *self.0 {
            WaiterKind::Spawn(tx) => {
                let _ = tx.send(r);
            }
            WaiterKind::Op(tx) => {
                let _ = tx.send(r.map_err(SupervisorError::from));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    /// A supervisor holds one `Child` per instance of its service: 100,000
    /// instances pay for every byte of it (issue 12: ≤ 1.5 KiB per
    /// supervised actor). 136 bytes before the waiters were boxed, 120
    /// before a child supervisor's address was boxed and an instance's
    /// kill switch and stop function left its run.
    #[test]
    fn a_child_record_stays_small() {
        assert!(std::mem::size_of::<Option<super::Waiter>>() <= 8);
        let run = std::mem::size_of::<Option<super::Run>>();
        assert!(run <= 24, "Option<Run> grew to {run} bytes");
        let size = std::mem::size_of::<super::Child>();
        assert!(size <= 104, "Child grew to {size} bytes");
    }
}
