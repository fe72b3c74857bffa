//! Stopping one instance as its service's [`Shutdown`] says: gracefully,
//! gracefully then killed after a timeout, or killed at once.

use actix::{AsyncContext, Context};

use super::super::child::{Run, State};
use super::super::spec::ChildSpec;
use super::Supervisor;
use crate::lifecycle::{Shutdown, REPORT_STUCK_AFTER};

impl Supervisor {
    /// Stops the instance of child `i` (already moved to `Stopping`).
    pub(super) fn stop_instance(&mut self, i: usize, ctx: &mut Context<Self>) {
        let Some(c) = self.children.get(i) else {
            return;
        };
        let (Some(Run::Instance(l)), ChildSpec::Instance { blueprint, .. }) = (&c.run, &c.spec)
        else {
            return;
        };
        let generation = c.generation;
        match blueprint.shutdown() {
            Shutdown::Brutal => {
                l.kill();
                self.report_if_stuck(i, generation, ctx);
            }
            Shutdown::Timeout(d) => {
                blueprint.stop(&l.instance);
                ctx.run_later(d, move |act, ctx| {
                    if let Some(Run::Instance(l)) = act.still_stopping(i, generation) {
                        tracing::warn!(instance = %l.instance.id, timeout = ?d,
                            "the instance did not stop within its shutdown timeout; killing it");
                        l.kill();
                        act.report_if_stuck(i, generation, ctx);
                    }
                });
            }
            // Waits however long it takes (the node's grace bounds it).
            _ => blueprint.stop(&l.instance),
        }
    }

    /// The run of child `i` if it is still that run and still stopping.
    fn still_stopping(&self, i: usize, generation: u64) -> Option<&Run> {
        self.locate(i, generation)
            .map(|i| &self.children[i])
            .filter(|c| c.state == State::Stopping)
            .and_then(|c| c.run.as_ref())
    }

    /// A killed instance ends at its next await; one that has not ended a
    /// while later is stuck in a handler that never yields, which nothing
    /// can stop: say so.
    fn report_if_stuck(&mut self, i: usize, generation: u64, ctx: &mut Context<Self>) {
        ctx.run_later(REPORT_STUCK_AFTER, move |act, _| {
            if let Some(Run::Instance(l)) = act.still_stopping(i, generation) {
                tracing::error!(service = %act.name, instance = %l.instance.id,
                    "a killed instance has not ended: a handler that never yields cannot be killed; the stop waits for it");
            }
        });
    }
}
