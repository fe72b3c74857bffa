//! What a supervisor decides when a child exits on its own: plain data in,
//! a decision out, no actor and no clock, so each OTP rule is a unit test.
//! The supervisor (`supervisor.rs`) carries the decision out: it moves the
//! child's state, checks the restart intensity, kills, restarts or
//! escalates.

use crate::lifecycle::Restart;

/// What is known when a child exits (not killed by its own supervisor).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ExitFacts {
    /// The supervisor is the node's root (never restarts).
    pub(super) root: bool,
    /// The supervisor itself is stopping (its tree is being shut down).
    pub(super) stopping: bool,
    /// This child had been asked to stop.
    pub(super) child_was_stopping: bool,
    /// The child's restart policy.
    pub(super) restart: Restart,
    /// The exit was a failure (panic, error), not a normal stop.
    pub(super) failure: bool,
}

/// What to do with a child that exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ExitDecision {
    /// It was being stopped: it is done; a stopping supervisor goes on
    /// stopping the rest.
    Stopped,
    /// A top-level child of the root ended: done for good; a failure is
    /// logged and its services stay marked failed.
    EndedAtRoot,
    /// Its policy does not restart it after this exit: done for good.
    NotRestarted,
    /// Restart it (and, per strategy, its siblings) if the restart
    /// intensity allows; give up otherwise.
    Restart,
}

/// The decision for an exit, following OTP: nothing is restarted while
/// stopping; the root never restarts; `Permanent` always restarts,
/// `Transient` only after a failure, `Temporary` never.
pub(super) fn on_exit(f: ExitFacts) -> ExitDecision {
    if f.stopping || f.child_was_stopping {
        return ExitDecision::Stopped;
    }
    if f.root {
        return ExitDecision::EndedAtRoot;
    }
    let restart = match f.restart {
        Restart::Permanent => true,
        Restart::Transient => f.failure,
        Restart::Temporary => false,
    };
    if restart {
        ExitDecision::Restart
    } else {
        ExitDecision::NotRestarted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(restart: Restart, failure: bool) -> ExitFacts {
        ExitFacts {
            root: false,
            stopping: false,
            child_was_stopping: false,
            restart,
            failure,
        }
    }

    #[test]
    fn permanent_children_restart_after_any_exit() {
        assert_eq!(
            on_exit(facts(Restart::Permanent, true)),
            ExitDecision::Restart
        );
        assert_eq!(
            on_exit(facts(Restart::Permanent, false)),
            ExitDecision::Restart
        );
    }

    #[test]
    fn transient_children_restart_only_after_a_failure() {
        assert_eq!(
            on_exit(facts(Restart::Transient, true)),
            ExitDecision::Restart
        );
        assert_eq!(
            on_exit(facts(Restart::Transient, false)),
            ExitDecision::NotRestarted
        );
    }

    #[test]
    fn temporary_children_never_restart() {
        for failure in [true, false] {
            assert_eq!(
                on_exit(facts(Restart::Temporary, failure)),
                ExitDecision::NotRestarted
            );
        }
    }

    #[test]
    fn nothing_restarts_while_stopping() {
        for restart in [Restart::Permanent, Restart::Transient, Restart::Temporary] {
            let mut f = facts(restart, true);
            f.stopping = true;
            assert_eq!(on_exit(f), ExitDecision::Stopped);
            let mut f = facts(restart, true);
            f.child_was_stopping = true;
            assert_eq!(on_exit(f), ExitDecision::Stopped);
        }
    }

    #[test]
    fn the_root_never_restarts() {
        let mut f = facts(Restart::Permanent, true);
        f.root = true;
        assert_eq!(on_exit(f), ExitDecision::EndedAtRoot);
    }
}
