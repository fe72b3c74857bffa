//! The messages a supervisor takes from the node and from itself: add a
//! child, stop or kill the tree, a restart whose backoff elapsed.

use actix::{Context, Handler};

use super::super::child::{Child, Run, State, Waiter};
use super::super::messages::{AddChild, KillTree, RestartDue, StopTree};
use super::{AfterKill, Kind, Supervisor};
use crate::error::SpawnError;
use crate::registry::{RegistryEvent, ServiceState};

impl Handler<RestartDue> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: RestartDue, ctx: &mut Context<Self>) {
        self.restarts_due = self.restarts_due.saturating_sub(1);
        self.restart_now(msg.from, msg.only, ctx);
    }
}

impl Handler<AddChild> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: AddChild, ctx: &mut Context<Self>) {
        if self.stopping.is_some() {
            let _ = msg.reply.send(Err(SpawnError::ShuttingDown));
            return;
        }
        self.compact();
        let i = self.children.len();
        self.counts[State::Down.idx()] += 1;
        let mut child = Child::new(msg.spec, Some(Waiter::spawn(msg.reply)));
        // At the root a failing first start ends the child (and `spawn`
        // frees the name); in a tree (`start_child`) it is not kept.
        child.dynamic = !matches!(self.kind, Kind::Root);
        self.children.push(child);
        self.start_child(i, ctx);
        if let (Some(tx), Some(Run::Supervisor(addr))) = (msg.tree, &self.children[i].run) {
            let _ = tx.send((**addr).clone());
        }
    }
}

impl Handler<StopTree> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: StopTree, ctx: &mut Context<Self>) {
        self.cursor = None;
        self.window_next = None;
        self.stopping = Some(msg.reply);
        for c in &mut self.children {
            if let Some(w) = c.waiting.take() {
                w.send(Err(SpawnError::ShuttingDown));
            }
        }
        self.continue_stopping(ctx);
    }
}

impl Handler<KillTree> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: KillTree, ctx: &mut Context<Self>) {
        let first = !self.given_up;
        self.given_up = true;
        let n = self.children.len();
        self.kill_range(0..n, msg.fail);
        if let Kind::Service(b) = &self.kind {
            b.entry().set_state(if msg.fail {
                ServiceState::Failed
            } else {
                ServiceState::Stopped
            });
            if msg.fail && first {
                // The tree above gave up: this service fails with it, and
                // watchers hear so (as when its own supervisor gives up).
                self.node.registry.publish(RegistryEvent::Failed {
                    service: b.entry().name().to_string(),
                });
            }
        }
        self.after_kills(AfterKill::Stop, ctx);
    }
}
