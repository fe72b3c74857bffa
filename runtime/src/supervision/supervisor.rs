//! The supervisor actor.

use std::sync::Arc;

use actix::{Actor, ActorContext, Addr, AsyncContext, Context};
use tokio::sync::oneshot;

use super::child::{transit, Child, Run, State};
use super::messages::{KillTree, RestartDue, StopTree};
use super::spec::{ChildSpec, ResolvedSupervisor};
use super::stop_cursor::StopCursor;
use crate::lifecycle::{
    launch, Backoff, ExitNotice, ExitReason, Intensity, LaunchBatch, ReadyNotice, Restart,
    RestartWindow, Strategy, SupervisorLink,
};
use crate::registry::{RegistryEvent, ServiceState};
use crate::service::NodeShared;
use crate::service::{ErasedBlueprint, InstanceLaunch};
use crate::stats::ServiceStats;

mod control;
mod listing;
mod live;
mod notices;
mod shutdown;

use listing::unlist;

/// How many children a start of all at once has starting at a time
/// ([`Supervisor::fill_window`]).
const START_WINDOW: usize = 1024;

/// What kind of supervisor this is.
#[derive(Debug, Clone)]
pub(crate) enum Kind {
    /// The node's root: never restarts; a child that gives up is logged and
    /// its services marked failed.
    Root,
    /// A user [`SupervisorSpec`](super::SupervisorSpec).
    User(Arc<ResolvedSupervisor>),
    /// The supervisor of one service's instances.
    Service(Arc<dyn ErasedBlueprint>),
}

/// A supervisor: starts children, watches them, restarts per strategy and
/// policy within its intensity, escalates when that is exceeded.
pub(crate) struct Supervisor {
    name: Arc<str>,
    kind: Kind,
    strategy: Strategy,
    window: RestartWindow,
    backoff: Option<Backoff>,
    consecutive: u32,
    /// Restarts in a row whose child failed to start (never came up):
    /// more than the intensity's `max_restarts` gives up whatever the
    /// period, so a restart storm is bounded even when restarts are
    /// spaced wider than the period.
    failed_starts: u32,
    children: Vec<Child>,
    node: Arc<NodeShared>,
    /// Tell the parent once every child is up (the first time only).
    ready: Option<ReadyNotice>,
    /// Tell the parent when giving up.
    exit: Option<ExitNotice>,
    /// The parent supervisor (none at the root), told when an instance of
    /// this service's supervisor failed.
    parent: Option<Addr<Supervisor>>,
    /// A service's supervisor under a one-for-all or rest-for-one tree: it
    /// does not restart an instance itself but tells the tree, which stops
    /// the siblings and then restarts this service with them, in order.
    defer_to_parent: bool,
    /// `Some` while starting children one after another (user supervisors).
    cursor: Option<usize>,
    /// `Some` while starting children all at once (a service's instances,
    /// the root's services): the next child to launch once fewer than
    /// [`START_WINDOW`] are starting.
    window_next: Option<usize>,
    stopping: Option<Option<oneshot::Sender<()>>>,
    /// Where a sequential stop looks for the next live child (linear).
    stop_cursor: StopCursor,
    given_up: bool,
    /// What to do once every killed child has exited.
    after_kill: Option<AfterKill>,
    /// Children per state (indexed by `State::idx`).
    counts: [usize; State::COUNT],
    /// The last generation given to a child's run: unique in this
    /// supervisor, so that a notice carrying it finds its child even after
    /// deleted children were removed and the indices moved.
    generations: u64,
    /// Deleted children not yet removed from `children` (see `compact`).
    tombstones: usize,
    /// Delayed restarts scheduled and not yet run (they carry indices).
    restarts_due: usize,
    /// How its children's notices reach it, shared by every running child
    /// (made when the first child starts; weak here, so that the
    /// supervisor holds no sender to itself).
    link: std::sync::Weak<SupervisorLink>,
}

/// What a supervisor does once the children it killed have all exited.
#[derive(Debug)]
enum AfterKill {
    Restart { from: usize, only: bool },
    Escalate(ExitReason),
    Stop,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("name", &self.name)
            .field("children", &self.children.len())
            .finish()
    }
}

impl Supervisor {
    pub(crate) fn new(
        kind: Kind,
        node: Arc<NodeShared>,
        ready: Option<ReadyNotice>,
        exit: Option<ExitNotice>,
    ) -> Self {
        let (name, strategy, intensity, backoff, children): (Arc<str>, _, _, _, Vec<ChildSpec>) =
            match &kind {
                Kind::Root => (
                    Arc::from("root"),
                    Strategy::OneForOne,
                    Intensity::default(),
                    None,
                    Vec::new(),
                ),
                Kind::User(s) => (
                    Arc::from(s.name.as_str()),
                    s.strategy,
                    s.intensity,
                    s.backoff,
                    s.children.clone(),
                ),
                Kind::Service(b) => (
                    b.entry().name_arc().clone(),
                    b.strategy(),
                    b.intensity(),
                    b.backoff(),
                    (0..b.entry().active())
                        .map(|slot| ChildSpec::Instance {
                            blueprint: b.clone(),
                            slot,
                        })
                        .collect(),
                ),
            };
        let mut counts = [0; State::COUNT];
        counts[State::Down.idx()] = children.len();
        let children = children
            .into_iter()
            .map(|spec| Child::new(spec, None))
            .collect();
        Self {
            name,
            kind,
            strategy,
            window: RestartWindow::new(intensity),
            backoff,
            consecutive: 0,
            failed_starts: 0,
            children,
            node,
            ready,
            exit,
            parent: None,
            defer_to_parent: false,
            cursor: None,
            window_next: None,
            stopping: None,
            stop_cursor: StopCursor::default(),
            given_up: false,
            after_kill: None,
            generations: 0,
            tombstones: 0,
            restarts_due: 0,
            counts,
            link: std::sync::Weak::new(),
        }
    }

    /// Starts a supervisor actor as child `child` of `parent`.
    pub(crate) fn spawn_child(
        kind: Kind,
        node: &Arc<NodeShared>,
        parent: &Addr<Supervisor>,
        link: Arc<SupervisorLink>,
        child: usize,
        generation: u64,
        defer_to_parent: bool,
    ) -> Addr<Supervisor> {
        let (tx, rx) = actix::dev::channel::channel::<Supervisor>(64);
        let addr = Addr::new(tx);
        let ready = ReadyNotice {
            sup: Some(link.clone()),
            child,
            generation,
        };
        let exit = ExitNotice {
            sup: link,
            child,
            generation,
        };
        let n = node.clone();
        let exit2 = exit.clone();
        let placement = node.supervisor_placement();
        let parent = parent.clone();
        if !launch(
            &placement,
            move || {
                let mut s = Supervisor::new(kind, n, Some(ready), Some(exit2));
                s.parent = Some(parent);
                s.defer_to_parent = defer_to_parent;
                s
            },
            rx,
            Some(exit.clone()),
        ) {
            exit.send(ExitReason::StartFailed("the arbiter is gone".into()));
        }
        addr
    }

    /// The node has begun to shut down: from then on nothing is restarted
    /// (OTP: a supervisor that is terminating restarts no child), even by
    /// a supervisor whose own stop has not come yet.
    fn node_closing(&self) -> bool {
        self.node.closing.load(std::sync::atomic::Ordering::Acquire)
    }

    fn sequential(&self) -> bool {
        matches!(self.kind, Kind::User(_))
    }

    fn entry_stats(&self) -> Option<&ServiceStats> {
        match &self.kind {
            Kind::Service(b) => Some(&b.entry().stats),
            _ => None,
        }
    }

    /// The link its children's notices share (see [`SupervisorLink`]).
    fn link(&mut self, ctx: &mut Context<Self>) -> Arc<SupervisorLink> {
        if let Some(l) = self.link.upgrade() {
            return l;
        }
        let l = SupervisorLink::new(ctx.address());
        self.link = Arc::downgrade(&l);
        l
    }

    fn start_child(&mut self, i: usize, ctx: &mut Context<Self>) {
        let link = self.link(ctx);
        let node = self.node.clone();
        self.generations += 1;
        let generation = self.generations;
        let Some(c) = self.children.get_mut(i) else {
            return;
        };
        if c.retired || c.deleted {
            // Above the service's scale, or deleted: never started again.
            if c.state != State::Done {
                transit(&mut self.counts, c, State::Done);
            }
            return;
        }
        c.generation = generation;
        transit(&mut self.counts, c, State::Starting);
        let _span = tracing::debug_span!("spawn", supervisor = %self.name, child = %c.spec.label())
            .entered();
        match &c.spec {
            ChildSpec::Instance { blueprint, slot } => {
                let launched = blueprint.launch(InstanceLaunch {
                    slot: *slot,
                    placement: node.placement(),
                    node: node.clone(),
                    notice: ExitNotice {
                        sup: link,
                        child: i,
                        generation,
                    },
                });
                let id = launched.instance.id;
                tracing::debug!(instance = %id, "instance launched");
                if id.incarnation > 0 {
                    ServiceStats::inc(&blueprint.entry().stats.restarts);
                }
                // Listed in its slot once it runs (`ChildReady`).
                c.run = Some(Run::Instance(launched));
            }
            ChildSpec::Service(bp) => {
                tracing::debug!(instances = bp.instances(), "service supervisor launched");
                bp.entry().set_state(ServiceState::Starting);
                let defer =
                    matches!(self.kind, Kind::User(_)) && self.strategy != Strategy::OneForOne;
                let me = ctx.address();
                let addr = Self::spawn_child(
                    Kind::Service(bp.clone()),
                    &node,
                    &me,
                    link,
                    i,
                    generation,
                    defer,
                );
                c.run = Some(Run::Supervisor(Box::new(addr)));
            }
            ChildSpec::Supervisor(s) => {
                let me = ctx.address();
                let addr = Self::spawn_child(
                    Kind::User(s.clone()),
                    &node,
                    &me,
                    link,
                    i,
                    generation,
                    false,
                );
                c.run = Some(Run::Supervisor(Box::new(addr)));
            }
        }
    }

    /// Starts children from `from` on: one after another, or all at once
    /// with at most [`START_WINDOW`] starting at a time.
    fn start_from(&mut self, from: usize, ctx: &mut Context<Self>) {
        if self.sequential() {
            self.cursor = Some(from);
            self.advance(ctx);
        } else {
            self.window_next = Some(from);
            self.fill_window(ctx);
        }
    }

    /// A start of all children at once: launches the next children while
    /// fewer than [`START_WINDOW`] are starting; each ready notice or exit
    /// lets more in. The window keeps the launch records the supervisor
    /// makes for other arbiters (boxed jobs, freed there) few at a time, so
    /// the long-lived records it makes meanwhile are not scattered among
    /// freed ones, and the arbiters start instances while it launches.
    /// Does nothing when no such start is under way.
    pub(super) fn fill_window(&mut self, ctx: &mut Context<Self>) {
        if self.window_next.is_none() {
            return;
        }
        if self.stopping.is_some() || self.given_up || self.node_closing() {
            self.window_next = None;
            return;
        }
        // The instances placed on other arbiters are handed to them in
        // batches, not one job (and wake) each.
        let batch = LaunchBatch::begin();
        while let Some(i) = self.window_next {
            if i >= self.children.len() {
                self.window_next = None;
                break;
            }
            if self.counts[State::Starting.idx()] >= START_WINDOW {
                break;
            }
            if self.children[i].state == State::Down {
                self.start_child(i, ctx);
            }
            self.window_next = Some(i + 1);
        }
        drop(batch);
        self.check_ready();
    }

    /// Sequential start: launch the child at the cursor once the one before is up.
    fn advance(&mut self, ctx: &mut Context<Self>) {
        while let Some(i) = self.cursor {
            let Some(c) = self.children.get(i) else {
                self.cursor = None;
                break;
            };
            match c.state {
                State::Down => {
                    self.start_child(i, ctx);
                    return;
                }
                State::Starting | State::Stopping | State::Killing => return,
                State::Running | State::Done => self.cursor = Some(i + 1),
            }
        }
        self.check_ready();
    }

    fn check_ready(&mut self) {
        if self.cursor.is_some() || self.window_next.is_some() {
            return;
        }
        let all_up = self.counts[State::Running.idx()] + self.counts[State::Done.idx()]
            == self.children.len();
        if all_up {
            if let Kind::Service(b) = &self.kind {
                // Every instance ended for good (temporary, or transient
                // after a normal stop): the service is stopped, not running.
                let ended = self.counts[State::Done.idx()] == self.children.len();
                b.entry().set_state(if ended {
                    ServiceState::Stopped
                } else {
                    ServiceState::Running
                });
            }
            if let Some(r) = self.ready.take() {
                r.notify();
            }
        }
    }

    /// Kills the running children in `range`, last first. They leave the
    /// registry at once; the supervisor waits for their exits (state
    /// `Killing`) before it restarts, escalates or stops.
    fn kill_range(&mut self, range: std::ops::Range<usize>, fail: bool) {
        for i in range.rev() {
            let c = &mut self.children[i];
            match &c.run {
                Some(Run::Instance(l)) => {
                    l.kill();
                    let listed = c.up_since.take().is_some();
                    unlist(&self.node, c, &ExitReason::Killed, listed);
                    transit(&mut self.counts, c, State::Killing);
                }
                Some(Run::Supervisor(addr)) => {
                    addr.do_send(KillTree { fail });
                    transit(&mut self.counts, c, State::Killing);
                }
                None => {
                    if c.state != State::Done {
                        let to =
                            if (c.restart == Restart::Temporary && c.generation > 0) || c.held() {
                                State::Done
                            } else {
                                State::Down
                            };
                        transit(&mut self.counts, c, to);
                    }
                }
            }
        }
    }

    fn killing(&self) -> bool {
        self.counts[State::Killing.idx()] > 0
    }

    /// Runs `next` now if no killed child is still exiting, else once they have.
    fn after_kills(&mut self, next: AfterKill, ctx: &mut Context<Self>) {
        let next = match (self.after_kill.take(), next) {
            (Some(AfterKill::Restart { from: a, .. }), AfterKill::Restart { from: b, .. }) => {
                AfterKill::Restart {
                    from: a.min(b),
                    only: false,
                }
            }
            (Some(AfterKill::Escalate(r)), _) | (_, AfterKill::Escalate(r)) => {
                AfterKill::Escalate(r)
            }
            (Some(AfterKill::Stop), _) | (_, AfterKill::Stop) => AfterKill::Stop,
            (None, n) => n,
        };
        if self.killing() {
            self.after_kill = Some(next);
            return;
        }
        match next {
            AfterKill::Restart { from, only } => self.schedule_restart(from, only, ctx),
            AfterKill::Escalate(reason) => {
                if let Some(exit) = self.exit.take() {
                    exit.send(reason);
                }
                ctx.stop();
            }
            AfterKill::Stop => {
                if let Some(Some(reply)) = self.stopping.as_mut().map(Option::take) {
                    let _ = reply.send(());
                }
                ctx.stop();
            }
        }
    }

    fn give_up(&mut self, reason: &ExitReason, ctx: &mut Context<Self>) {
        let _span = tracing::error_span!("escalate", supervisor = %self.name).entered();
        tracing::error!(%reason, "restart intensity exceeded; giving up and escalating to the parent");
        self.given_up = true;
        let n = self.children.len();
        self.kill_range(0..n, true);
        if let Kind::Service(b) = &self.kind {
            self.node.registry.topics.service_ended(b.entry().name());
            b.entry().set_state(ServiceState::Failed);
            self.node.registry.publish(RegistryEvent::Failed {
                service: b.entry().name().to_string(),
            });
        }
        let escalated = ExitReason::Escalated(format!("{}: {reason}", self.name));
        self.after_kills(AfterKill::Escalate(escalated), ctx);
    }

    /// Applies the strategy after child `i` exited (or, for a service
    /// under a group strategy, its instance did): stops the children it
    /// names, `i` included, last first, and restarts them in start order
    /// once they have exited.
    fn restart_siblings(&mut self, i: usize, ctx: &mut Context<Self>) {
        let n = self.children.len();
        match self.strategy {
            Strategy::OneForOne => self.schedule_restart(i, true, ctx),
            Strategy::OneForAll => {
                self.kill_range(0..n, false);
                self.after_kills(
                    AfterKill::Restart {
                        from: 0,
                        only: false,
                    },
                    ctx,
                );
            }
            Strategy::RestForOne => {
                self.kill_range(i..n, false);
                self.after_kills(
                    AfterKill::Restart {
                        from: i,
                        only: false,
                    },
                    ctx,
                );
            }
        }
    }

    fn schedule_restart(&mut self, from: usize, only: bool, ctx: &mut Context<Self>) {
        self.consecutive = self.consecutive.saturating_add(1);
        let delay = self.backoff.map(|b| b.delay(self.consecutive));
        match delay {
            Some(d) if !d.is_zero() => {
                self.restarts_due += 1;
                ctx.notify_later(RestartDue { from, only }, d);
            }
            _ => self.restart_now(from, only, ctx),
        }
    }

    fn restart_now(&mut self, from: usize, only: bool, ctx: &mut Context<Self>) {
        if self.stopping.is_some() || self.given_up || self.node_closing() {
            return;
        }
        if only {
            if self
                .children
                .get(from)
                .is_some_and(|c| c.state == State::Down)
            {
                self.start_child(from, ctx);
            }
        } else {
            self.start_from(from, ctx);
        }
    }

    /// Graceful stop: the next child to stop (reverse order), or all at once
    /// for a service's instances.
    fn continue_stopping(&mut self, ctx: &mut Context<Self>) {
        if self.sequential() || matches!(self.kind, Kind::Root) {
            if self.counts[State::Stopping.idx()] + self.counts[State::Killing.idx()] > 0 {
                return;
            }
            let children = &self.children;
            if let Some(i) = self.stop_cursor.next_live(children.len(), |i| {
                matches!(children[i].state, State::Running | State::Starting)
            }) {
                let c = &mut self.children[i];
                transit(&mut self.counts, c, State::Stopping);
                match &c.run {
                    Some(Run::Supervisor(addr)) => addr.do_send(StopTree { reply: None }),
                    Some(Run::Instance(_)) => self.stop_instance(i, ctx),
                    None => transit(&mut self.counts, c, State::Done),
                }
                return self.continue_stopping(ctx);
            }
        } else {
            let live = self.counts[State::Running.idx()] + self.counts[State::Starting.idx()];
            let mut instances = Vec::new();
            for (i, c) in self
                .children
                .iter_mut()
                .enumerate()
                .rev()
                .take(if live > 0 { usize::MAX } else { 0 })
            {
                if matches!(c.state, State::Running | State::Starting) {
                    transit(&mut self.counts, c, State::Stopping);
                    match &c.run {
                        Some(Run::Instance(_)) => instances.push(i),
                        Some(Run::Supervisor(addr)) => addr.do_send(StopTree { reply: None }),
                        None => transit(&mut self.counts, c, State::Done),
                    }
                }
            }
            // Each per the service's `Shutdown`.
            for i in instances {
                self.stop_instance(i, ctx);
            }
            if self.counts[State::Stopping.idx()] + self.counts[State::Killing.idx()] > 0 {
                return;
            }
        }
        // Everything has stopped.
        let down = self.counts[State::Down.idx()];
        for c in self
            .children
            .iter_mut()
            .take(if down > 0 { usize::MAX } else { 0 })
        {
            if c.state == State::Down {
                transit(&mut self.counts, c, State::Done);
            }
        }
        if let Kind::Service(b) = &self.kind {
            // Before the name is free: a new service of that name keeps
            // its own subscriptions.
            self.node.registry.topics.service_ended(b.entry().name());
            b.entry().set_state(ServiceState::Stopped);
        }
        self.after_kills(AfterKill::Stop, ctx);
    }
}

impl Actor for Supervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(usize::MAX >> 2);
        if let Kind::Service(b) = &self.kind {
            // How `Node::scale`, `stop_service` and `kill_instance` find it.
            b.entry()
                .set_control(std::sync::Arc::new(ctx.address().downgrade()));
        }
        tracing::debug!(supervisor = %self.name, children = self.children.len(), "supervisor started");
        self.start_from(0, ctx);
    }
}

#[cfg(test)]
mod tests;
