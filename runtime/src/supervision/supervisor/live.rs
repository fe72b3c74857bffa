//! The live supervision API as a supervisor carries it out: list a tree's
//! children, terminate, restart and delete one, scale a service, kill one
//! instance, stop a service for good.

use actix::{Context, Handler};
use tokio::sync::oneshot;

use super::super::child::{transit, Run, State, Waiter};
use super::super::live::{ChildInfo, ChildKind, ChildState, SupervisorError};
use super::super::messages::{
    ChildOp, KillInstance, Op, RestartService, Scale, StopService, Target, WhichChildren,
};
use super::super::spec::ChildSpec;
use super::{Kind, Supervisor};
use crate::error::SpawnError;

impl Supervisor {
    /// Child `i` is done (exited, or was not running): whoever waited for
    /// its termination hears so, and it is deleted if that was asked.
    pub(super) fn settle_terminated(&mut self, i: usize) {
        let Some(c) = self.children.get_mut(i) else {
            return;
        };
        if c.delete_on_exit {
            c.delete_on_exit = false;
            self.delete(i);
        }
        if let Some(w) = self.children[i].terminated.take() {
            w.send(Ok(()));
        }
    }

    /// Marks child `i` deleted: never started again, and the names of its
    /// services are free for a new spawn.
    fn delete(&mut self, i: usize) {
        let Some(c) = self.children.get_mut(i) else {
            return;
        };
        if !c.deleted {
            self.tombstones += 1;
        }
        c.deleted = true;
        let mut entries = Vec::new();
        c.spec.entries(&mut entries);
        for e in entries {
            e.vacate();
        }
    }

    /// The index of the child whose run has `generation`: `child` itself
    /// unless deleted children were removed since the notice was made.
    pub(super) fn locate(&self, child: usize, generation: u64) -> Option<usize> {
        if generation == 0 {
            return None;
        }
        match self.children.get(child) {
            Some(c) if c.generation == generation => Some(child),
            _ => self
                .children
                .iter()
                .position(|c| c.generation == generation),
        }
    }

    /// Removes deleted children from the tree (OTP's `delete_child` removes
    /// the child spec), freeing what their specs hold. Only while no index
    /// is held elsewhere: not during a sequential start or stop, a group
    /// restart's kills, or with a delayed restart pending (those carry
    /// indices; notices carry a generation, which `locate` follows).
    pub(super) fn compact(&mut self) {
        if self.tombstones == 0
            || self.cursor.is_some()
            || self.window_next.is_some()
            || self.stopping.is_some()
            || self.after_kill.is_some()
            || self.restarts_due > 0
            || self.counts[State::Killing.idx()] > 0
        {
            return;
        }
        let counts = &mut self.counts;
        self.children.retain(|c| {
            if c.deleted {
                counts[c.state.idx()] = counts[c.state.idx()].saturating_sub(1);
            }
            !c.deleted
        });
        self.tombstones = 0;
    }

    /// A child started by the live API failed its first start: it stays
    /// down (terminated), and one added by `start_child` is not kept.
    pub(super) fn start_failed(&mut self, i: usize, ctx: &mut Context<Self>) {
        let Some(c) = self.children.get_mut(i) else {
            return;
        };
        transit(&mut self.counts, c, State::Done);
        if c.dynamic {
            self.delete(i);
        }
        if self.cursor == Some(i) {
            self.cursor = Some(i + 1);
            self.advance(ctx);
        } else {
            self.check_ready();
        }
    }

    /// A child's factory returned `StartError::Ignore`: it stays down,
    /// not restarted, and counts as up for its supervisor's readiness.
    pub(super) fn ignored(&mut self, i: usize, ctx: &mut Context<Self>) {
        let Some(c) = self.children.get_mut(i) else {
            return;
        };
        c.dynamic = false;
        if let Some(w) = c.waiting.take() {
            w.send(Ok(()));
        }
        self.start_failed(i, ctx);
    }

    /// Starts a done child again (a scale-up, `restart_child`).
    pub(super) fn revive(&mut self, i: usize, ctx: &mut Context<Self>) {
        let Some(c) = self.children.get_mut(i) else {
            return;
        };
        if c.state != State::Done || c.deleted {
            return;
        }
        transit(&mut self.counts, c, State::Down);
        self.start_child(i, ctx);
    }

    fn find(&self, target: &Target) -> Result<usize, SupervisorError> {
        let found = match target {
            Target::Name(name) => self
                .children
                .iter()
                .position(|c| !c.deleted && c.spec.label() == *name),
            Target::Index { child, generation } => self
                .locate(*child, *generation)
                .filter(|&i| !self.children[i].deleted),
        };
        found.ok_or_else(|| SupervisorError::NoChild {
            tree: self.name.to_string(),
            child: match target {
                Target::Name(n) => n.clone(),
                Target::Index { child, .. } => format!("#{child}"),
            },
        })
    }

    /// Stops child `i` gracefully and keeps it down; `waiter` hears once it
    /// has exited.
    fn terminate(&mut self, i: usize, waiter: Waiter, delete: bool, ctx: &mut Context<Self>) {
        let label = self.children[i].spec.label();
        let c = &mut self.children[i];
        c.delete_on_exit |= delete;
        if let Some(w) = c.terminated.replace(waiter) {
            // An earlier terminate of the same child hears too.
            w.send(Ok(()));
        }
        match c.state {
            State::Running | State::Starting => {
                if let Some(w) = c.waiting.take() {
                    w.send(Err(SpawnError::StartFailed {
                        child: label,
                        reason: "terminated".into(),
                    }));
                }
                transit(&mut self.counts, c, State::Stopping);
                match &c.run {
                    Some(Run::Supervisor(addr)) => {
                        addr.do_send(super::super::messages::StopTree { reply: None })
                    }
                    Some(Run::Instance(_)) => self.stop_instance(i, ctx),
                    None => {
                        transit(&mut self.counts, c, State::Done);
                        self.settle_terminated(i);
                    }
                }
            }
            // Its exit is on its way; it will be `Done`.
            State::Stopping | State::Killing => {}
            State::Down => {
                transit(&mut self.counts, c, State::Done);
                self.settle_terminated(i);
            }
            State::Done => self.settle_terminated(i),
        }
    }

    fn info(&self, i: usize) -> ChildInfo {
        let c = &self.children[i];
        let (kind, instances) = match &c.spec {
            ChildSpec::Service(b) => (ChildKind::Service, b.entry().live_instances().len()),
            ChildSpec::Supervisor(_) => (ChildKind::Supervisor, 0),
            ChildSpec::Instance { .. } => (ChildKind::Service, usize::from(c.run.is_some())),
        };
        ChildInfo {
            name: c.spec.label(),
            kind,
            state: match c.state {
                State::Down => ChildState::Restarting,
                State::Starting => ChildState::Starting,
                State::Running => ChildState::Running,
                State::Stopping | State::Killing => ChildState::Stopping,
                State::Done => ChildState::Terminated,
            },
            restart: c.restart,
            instances,
        }
    }

    fn not_running(&self) -> Option<SupervisorError> {
        (self.stopping.is_some() || self.given_up || self.node_closing()).then(|| {
            SupervisorError::NotRunning {
                tree: self.name.to_string(),
            }
        })
    }
}

impl Handler<WhichChildren> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: WhichChildren, _: &mut Context<Self>) {
        self.compact();
        let list = (0..self.children.len())
            .filter(|&i| !self.children[i].deleted)
            .map(|i| self.info(i))
            .collect();
        let _ = msg.reply.send(list);
    }
}

impl Handler<ChildOp> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: ChildOp, ctx: &mut Context<Self>) {
        if let Some(e) = self.not_running() {
            let _ = msg.reply.send(Err(e));
            return;
        }
        self.compact();
        let i = match self.find(&msg.target) {
            Ok(i) => i,
            Err(e) => {
                let _ = msg.reply.send(Err(e));
                return;
            }
        };
        let running = || SupervisorError::Running {
            child: self.children[i].spec.label(),
        };
        match msg.op {
            Op::Terminate { delete } => self.terminate(i, Waiter::op(msg.reply), delete, ctx),
            Op::Restart => {
                if self.children[i].state != State::Done {
                    let _ = msg.reply.send(Err(running()));
                    return;
                }
                self.children[i].waiting = Some(Waiter::op(msg.reply));
                self.revive(i, ctx);
            }
            Op::Delete => {
                if self.children[i].state != State::Done {
                    let _ = msg.reply.send(Err(running()));
                    return;
                }
                self.delete(i);
                self.compact();
                let _ = msg.reply.send(Ok(()));
            }
        }
    }
}

impl Handler<StopService> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: StopService, _: &mut Context<Self>) {
        match (&self.exit, &self.parent) {
            (Some(e), Some(parent)) => parent.do_send(ChildOp {
                target: Target::Index {
                    child: e.child,
                    generation: e.generation,
                },
                op: Op::Terminate { delete: true },
                reply: msg.reply,
            }),
            _ => {
                let _ = msg.reply.send(Err(SupervisorError::NotRunning {
                    tree: self.name.to_string(),
                }));
            }
        }
    }
}

impl Handler<RestartService> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: RestartService, _: &mut Context<Self>) {
        let (Some(e), Some(parent)) = (&self.exit, &self.parent) else {
            let _ = msg.reply.send(Err(SupervisorError::NotRunning {
                tree: self.name.to_string(),
            }));
            return;
        };
        let target = Target::Index {
            child: e.child,
            generation: e.generation,
        };
        let (parent, name) = (parent.clone(), self.name.to_string());
        // This supervisor stops with its service: the parent carries out
        // both steps, driven from a task of its own.
        actix_rt::spawn(async move {
            let gone = || SupervisorError::NotRunning { tree: name.clone() };
            let step = |op| {
                let (reply, rx) = oneshot::channel();
                let sent = parent.try_send(ChildOp {
                    target: target.clone(),
                    op,
                    reply,
                });
                async move {
                    if sent.is_err() {
                        return Err(gone());
                    }
                    rx.await.unwrap_or_else(|_| Err(gone()))
                }
            };
            let r = match step(Op::Terminate { delete: false }).await {
                Ok(()) => step(Op::Restart).await,
                Err(e) => Err(e),
            };
            let _ = msg.reply.send(r);
        });
    }
}

impl Handler<KillInstance> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: KillInstance, _: &mut Context<Self>) {
        let found = self.children.iter().find_map(|c| match &c.run {
            Some(Run::Instance(l)) if l.instance.id == msg.id => Some(l.shared()),
            _ => None,
        });
        let r = match found {
            Some(shared) => {
                shared.kill.kill();
                Ok(())
            }
            None => Err(SupervisorError::NoInstance {
                service: self.name.to_string(),
                instance: msg.id,
            }),
        };
        let _ = msg.reply.send(r);
    }
}

impl Handler<Scale> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: Scale, ctx: &mut Context<Self>) {
        if let Some(e) = self.not_running() {
            let _ = msg.reply.send(Err(e));
            return;
        }
        let Kind::Service(b) = &self.kind else {
            let _ = msg.reply.send(Err(SupervisorError::NotRunning {
                tree: self.name.to_string(),
            }));
            return;
        };
        let b = b.clone();
        let entry = b.entry().clone();
        let max = entry.capacity();
        if msg.n == 0 || msg.n > max {
            let _ = msg.reply.send(Err(SupervisorError::InvalidScale {
                service: self.name.to_string(),
                asked: msg.n,
                max,
            }));
            return;
        }
        // Routing chooses among the first `n` slots from now on: retired
        // instances get no new calls while they finish what they have.
        entry.set_active(msg.n);
        let mut waits = Vec::new();
        for slot in 0..max {
            if slot < msg.n {
                if slot >= self.children.len() {
                    self.counts[State::Down.idx()] += 1;
                    self.children.push(super::super::child::Child::new(
                        ChildSpec::Instance {
                            blueprint: b.clone(),
                            slot,
                        },
                        None,
                    ));
                }
                let c = &mut self.children[slot];
                c.retired = false;
                if let Some(w) = c.terminated.take() {
                    // A scale-down that had not finished: it is over.
                    w.send(Ok(()));
                }
                match c.state {
                    State::Down | State::Done | State::Stopping => {
                        let (tx, rx) = oneshot::channel();
                        c.waiting = Some(Waiter::spawn(tx));
                        waits.push(rx);
                        match c.state {
                            State::Down => self.start_child(slot, ctx),
                            State::Done => self.revive(slot, ctx),
                            // Started again once it has exited.
                            _ => {}
                        }
                    }
                    State::Starting | State::Running | State::Killing => {}
                }
            } else if let Some(c) = self.children.get_mut(slot) {
                if c.retired {
                    continue;
                }
                c.retired = true;
                let (tx, rx) = oneshot::channel();
                if let Some(w) = c.waiting.take() {
                    w.send(Err(SpawnError::StartFailed {
                        child: c.spec.label(),
                        reason: "scaled down".into(),
                    }));
                }
                waits.push(rx);
                self.terminate(slot, Waiter::spawn(tx), false, ctx);
            }
        }
        self.check_ready();
        let _ = msg.reply.send(Ok(waits));
    }
}
