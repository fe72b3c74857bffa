//! What a supervisor does when its children report: ready (`ChildReady`),
//! exited (`ChildExited`: restart, stop, give up, per strategy and
//! policy), or, for a service's supervisor under a group strategy, failed
//! (`ChildFailed`: restart the siblings).

use std::time::Instant;

use actix::{Context, Handler};

use super::super::child::{transit, State};
use super::super::decide::{on_exit, ExitDecision, ExitFacts};
use super::super::messages::ChildFailed;
use super::listing::{list, unlist};
use super::{Kind, Supervisor};
use crate::error::SpawnError;
use crate::lifecycle::{ChildExited, ChildReady, ExitReason, Restart, Strategy};
use crate::stats::ServiceStats;

impl Handler<ChildReady> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: ChildReady, ctx: &mut Context<Self>) {
        for (child, generation) in msg.link.take_ready() {
            self.child_ready(child, generation, ctx);
        }
        self.fill_window(ctx);
    }
}

impl Supervisor {
    /// Child `child` (run `generation`) reported that it is up.
    fn child_ready(&mut self, child: usize, generation: u64, ctx: &mut Context<Self>) {
        let Some(i) = self.locate(child, generation) else {
            return;
        };
        let c = &mut self.children[i];
        if c.generation != generation || c.state != State::Starting {
            return;
        }
        transit(&mut self.counts, c, State::Running);
        c.up_since = Some(Instant::now());
        list(&self.node, c);
        c.dynamic = false;
        self.failed_starts = 0;
        if let Some(w) = c.waiting.take() {
            w.send(Ok(()));
        }
        if self.cursor == Some(i) {
            self.cursor = Some(i + 1);
            self.advance(ctx);
        } else {
            self.check_ready();
        }
    }
}

impl Handler<ChildExited> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: ChildExited, ctx: &mut Context<Self>) {
        self.child_exited(msg, ctx);
        // A child that was starting made room in a start's window.
        self.fill_window(ctx);
    }
}

impl Supervisor {
    fn child_exited(&mut self, msg: ChildExited, ctx: &mut Context<Self>) {
        let ChildExited {
            child,
            generation,
            reason,
        } = msg;
        let node = self.node.clone();
        let Some(i) = self.locate(child, generation) else {
            return;
        };
        let c = &mut self.children[i];
        if c.generation != generation || matches!(c.state, State::Down | State::Done) {
            return;
        }
        if c.state == State::Killing {
            // A temporary child killed by a group restart is done: OTP
            // never restarts a temporary child.
            let to = if self.stopping.is_some() || c.restart == Restart::Temporary || c.held() {
                State::Done
            } else {
                State::Down
            };
            transit(&mut self.counts, c, to);
            c.run = None;
            if to == State::Done {
                self.settle_terminated(i);
            }
            if self.stopping.is_some() {
                self.continue_stopping(ctx);
            } else if !self.killing() {
                if let Some(next) = self.after_kill.take() {
                    self.after_kills(next, ctx);
                }
            }
            return;
        }
        let was_stopping = c.state == State::Stopping;
        let was_starting = c.state == State::Starting;
        let ran = c.up_since.take().map(|t| t.elapsed());
        transit(&mut self.counts, c, State::Down);
        let label = c.spec.label();
        unlist(&node, c, &reason, ran.is_some());
        c.run = None;
        if reason == ExitReason::Ignored && was_starting {
            // Its factory said `ignore`: left out, not restarted (OTP).
            return self.ignored(i, ctx);
        }
        // A child being stopped keeps its waiter: a scale-up while it was
        // stopping starts it again once it has exited.
        let waiting = if was_stopping { None } else { c.waiting.take() };
        let waited = waiting.map(|w| {
            w.send(Err(SpawnError::StartFailed {
                child: label.clone(),
                reason: reason.to_string(),
            }))
        });
        if waited.is_some() && was_starting && !matches!(self.kind, Kind::Root) {
            // Started by the live API (`start_child`, `restart_child`, a
            // scale-up): the caller has the error, and the child is not
            // restarted (OTP); one added by `start_child` is not kept.
            self.start_failed(i, ctx);
            return;
        }
        // Killed from outside (`Node::kill_instance`; a kill by this
        // supervisor is handled above): an abnormal exit, as OTP's `kill`.
        let failure = reason.is_failure() || reason == ExitReason::Killed;
        if failure {
            if let Some(stats) = self.entry_stats() {
                ServiceStats::inc(&stats.failures);
            }
        }
        let decision = on_exit(ExitFacts {
            root: matches!(self.kind, Kind::Root),
            stopping: self.stopping.is_some() || self.node_closing(),
            child_was_stopping: was_stopping,
            restart: self.children[i].restart,
            failure,
        });
        match decision {
            ExitDecision::Stopped => {
                transit(&mut self.counts, &mut self.children[i], State::Done);
                self.settle_terminated(i);
                if self.stopping.is_none() && self.children[i].waiting.is_some() {
                    // Scaled back up while it was being stopped.
                    self.revive(i, ctx);
                }
                if self.stopping.is_some() {
                    self.continue_stopping(ctx);
                }
                return;
            }
            ExitDecision::EndedAtRoot => {
                transit(&mut self.counts, &mut self.children[i], State::Done);
                if reason.is_failure() {
                    tracing::error!(child = %label, %reason,
                        "a top-level service gave up; it is marked failed and the node keeps serving the rest");
                }
                return;
            }
            ExitDecision::NotRestarted => {
                transit(&mut self.counts, &mut self.children[i], State::Done);
                if self.cursor == Some(i) {
                    self.cursor = Some(i + 1);
                    self.advance(ctx);
                } else {
                    self.check_ready();
                }
                return;
            }
            ExitDecision::Restart => {}
        }
        if was_starting && self.ready.is_some() && !matches!(self.kind, Kind::Root) {
            // The first start of this supervisor's children failed: OTP's
            // start_child/start_link returns the error at once, restarts
            // apply only to children that ran.
            self.give_up(&reason, ctx);
            return;
        }
        if self.defer_to_parent {
            // For the one-for-all/rest-for-one tree above, the service
            // exited (after a failure or, for a permanent instance, a normal
            // stop: OTP applies the group strategy to any exit it
            // restarts). The tree stops the siblings, last first, then
            // restarts this service with them in start order; the instance
            // stays down until then.
            if let (Some(e), Some(parent)) = (&self.exit, &self.parent) {
                parent.do_send(ChildFailed {
                    child: e.child,
                    generation: e.generation,
                    reason: reason.clone(),
                });
            }
            return;
        }
        if was_starting {
            self.failed_starts = self.failed_starts.saturating_add(1);
        }
        if self.failed_starts > self.window.max_restarts() || !self.window.record(Instant::now()) {
            self.give_up(&reason, ctx);
            return;
        }
        if let (Some(b), Some(ran)) = (self.backoff, ran) {
            // The child ran for the quiet period: the backoff starts over.
            // (A child that never came up, or failed sooner, keeps the
            // delay growing up to its cap.)
            if ran >= b.max {
                self.consecutive = 0;
            }
        }
        let _span =
            tracing::warn_span!("restart", supervisor = %self.name, child = %label).entered();
        tracing::warn!(%reason, strategy = ?self.strategy, "restarting");
        node.live
            .restarted(&self.name, &label.to_string(), &reason.to_string());
        self.restart_siblings(i, ctx);
    }
}

impl Handler<ChildFailed> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: ChildFailed, ctx: &mut Context<Self>) {
        if matches!(self.kind, Kind::Root)
            || self.strategy == Strategy::OneForOne
            || self.stopping.is_some()
            || self.given_up
            || self.node_closing()
        {
            return;
        }
        let Some(i) = self.locate(msg.child, msg.generation) else {
            return;
        };
        let c = &self.children[i];
        if c.generation != msg.generation || !matches!(c.state, State::Running | State::Starting) {
            return;
        }
        if !self.window.record(Instant::now()) {
            self.give_up(&msg.reason, ctx);
            return;
        }
        let _span =
            tracing::warn_span!("restart", supervisor = %self.name, child = %c.spec.label())
                .entered();
        tracing::warn!(reason = %msg.reason, strategy = ?self.strategy, "a service failed; restarting its siblings");
        self.restart_siblings(i, ctx);
    }
}
