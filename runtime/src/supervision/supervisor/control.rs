//! The messages a supervisor takes from the node and from itself: add a
//! child, stop or kill the tree, a restart whose backoff elapsed.

use actix::{Context, Handler};

use super::super::child::{Child, State};
use super::super::messages::{AddChild, KillTree, RestartDue, StopTree};
use super::{AfterKill, Kind, Supervisor};
use crate::error::SpawnError;
use crate::registry::{RegistryEvent, ServiceState};

impl Handler<RestartDue> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: RestartDue, ctx: &mut Context<Self>) {
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
        let i = self.children.len();
        self.counts[State::Down.idx()] += 1;
        self.children.push(Child {
            restart: msg.spec.restart(),
            spec: msg.spec,
            generation: 0,
            state: State::Down,
            run: None,
            up_since: None,
            waiting: Some(msg.reply),
        });
        self.start_child(i, ctx);
    }
}

impl Handler<StopTree> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: StopTree, ctx: &mut Context<Self>) {
        self.cursor = None;
        self.stopping = Some(msg.reply);
        for c in &mut self.children {
            if let Some(w) = c.waiting.take() {
                let _ = w.send(Err(SpawnError::ShuttingDown));
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
