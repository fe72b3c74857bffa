//! A supervisor's view of one child: its spec, its state and what runs.

use actix::Addr;
use tokio::sync::oneshot;

use super::spec::ChildSpec;
use super::supervisor::Supervisor;
use super::Restart;
use crate::error::SpawnError;
use crate::lifecycle::KillSwitch;
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
    Supervisor(Addr<Supervisor>, KillSwitch),
}

pub(super) struct Child {
    pub(super) spec: ChildSpec,
    pub(super) restart: Restart,
    pub(super) generation: u64,
    pub(super) state: State,
    pub(super) run: Option<Run>,
    /// When the current run reported ready (the backoff's quiet period is
    /// measured from here).
    pub(super) up_since: Option<std::time::Instant>,
    /// Root only: the `spawn` call waiting for this child to be ready.
    pub(super) waiting: Option<oneshot::Sender<Result<(), SpawnError>>>,
}
