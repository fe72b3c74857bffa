//! Starting an actor so that its supervisor learns how it ended.
//!
//! actix's own `Supervisor` restarts only after `ctx.stop()`, never after a
//! panic, and keeps the old state. msa instead owns the actor's context
//! future: it builds the actor with the factory on the target thread, runs
//! the future under `catch_unwind` (and an abort switch for kills), lets the
//! context's drop run `stopping`/`stopped`, and only then tells the
//! supervisor, with the reason.

use std::panic::{catch_unwind, AssertUnwindSafe};

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use actix::dev::channel::AddressReceiver;
use actix::dev::ContextFut;
use actix::{Actor, ArbiterHandle, Context, Message, Recipient};
use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::task::AbortHandle;

use super::exit::{panic_message, ExitReason};

/// Where an actor runs.
#[derive(Debug, Clone)]
pub(crate) enum Placement {
    /// On this arbiter's thread (its id: `home.rs`).
    Arbiter(ArbiterHandle, u32),
    /// On the current thread's `LocalSet` (the caller is on it).
    Local,
}

impl Placement {
    /// The id of the arbiter it places on (0: the caller's `LocalSet`).
    pub(crate) fn arbiter_id(&self) -> u32 {
        match self {
            Self::Arbiter(_, id) => *id,
            Self::Local => 0,
        }
    }
}

/// A child ended.
#[derive(Debug)]
pub(crate) struct ChildExited {
    pub(crate) child: usize,
    pub(crate) generation: u64,
    pub(crate) reason: ExitReason,
}
impl Message for ChildExited {
    type Result = ();
}

/// Children of a supervisor are up: the supervisor takes their list from
/// the link ([`SupervisorLink::take_ready`]). One message wakes the
/// supervisor for every child that reported ready until it takes the list,
/// not one per child: an instance's start costs its supervisor no mailbox
/// round trip of its own (issue 12: 100k instances of one service reported
/// 100k messages to one thread).
#[derive(Debug)]
pub(crate) struct ChildReady {
    /// Where the children are listed (kept alive until the supervisor has
    /// taken them, even if every child and its notices are gone by then).
    pub(crate) link: Arc<SupervisorLink>,
}
impl Message for ChildReady {
    type Result = ();
}

/// How the children of one supervisor reach it: made once per supervisor
/// and shared (by `Arc`) by its children's notices. An actix `Recipient`
/// costs three allocations (its box and the sender's two `Arc`s): one per
/// child and notice cost a supervised instance about 256 bytes.
#[derive(Debug)]
pub(crate) struct SupervisorLink {
    ready: Recipient<ChildReady>,
    pub(crate) exit: Recipient<ChildExited>,
    /// Children that reported ready, `(child, generation)`, in the order
    /// they did, not yet taken by the supervisor. A child that finds it
    /// empty wakes the supervisor ([`ChildReady`]) while it holds the lock,
    /// so the wake is queued before anything the child (or a child that
    /// reported later) sends the supervisor afterwards, its exit included:
    /// the supervisor always hears a child up before it hears it ended.
    pending: parking_lot::Mutex<Vec<(usize, u64)>>,
}

impl SupervisorLink {
    /// The link to the supervisor at `addr`.
    pub(crate) fn new<A>(addr: actix::Addr<A>) -> Arc<Self>
    where
        A: Actor<Context = Context<A>> + actix::Handler<ChildReady> + actix::Handler<ChildExited>,
    {
        Arc::new(Self {
            ready: addr.clone().recipient(),
            exit: addr.recipient(),
            pending: parking_lot::Mutex::new(Vec::new()),
        })
    }

    /// Child `child` (run `generation`) is up: list it, and wake the
    /// supervisor if nothing was listed.
    fn ready(self: &Arc<Self>, child: usize, generation: u64) {
        let mut pending = self.pending.lock();
        if pending.is_empty() {
            self.ready.do_send(ChildReady { link: self.clone() });
        }
        pending.push((child, generation));
    }

    /// The children that reported ready since the last call, in order.
    pub(crate) fn take_ready(&self) -> Vec<(usize, u64)> {
        std::mem::take(&mut *self.pending.lock())
    }
}

/// Tells a supervisor that child `child` (run `generation`) is up or
/// exited.
#[derive(Debug, Clone)]
pub(crate) struct ExitNotice {
    pub(crate) sup: Arc<SupervisorLink>,
    pub(crate) child: usize,
    pub(crate) generation: u64,
}

impl ExitNotice {
    pub(crate) fn send(&self, reason: ExitReason) {
        self.sup.exit.do_send(ChildExited {
            child: self.child,
            generation: self.generation,
            reason,
        });
    }

    /// Tells the supervisor that the child is up (as [`ReadyNotice`]).
    pub(crate) fn ready(&self) {
        self.sup.ready(self.child, self.generation);
    }
}

/// Tells a supervisor that child `child` (run `generation`) is up.
#[derive(Debug, Clone)]
pub(crate) struct ReadyNotice {
    pub(crate) sup: Option<Arc<SupervisorLink>>,
    pub(crate) child: usize,
    pub(crate) generation: u64,
}

impl ReadyNotice {
    pub(crate) fn notify(&self) {
        if let Some(sup) = &self.sup {
            sup.ready(self.child, self.generation);
        }
    }
}

/// What a launched actor's end is reported to, kept by its task.
///
/// One `Arc` per actor: a service instance implements it on the state it
/// already shares with msa (no allocation of its own), a supervisor with an
/// [`ExitNotice`].
pub(crate) trait OnExit: Send + Sync + 'static {
    /// On the actor's own thread the moment it has ended (stopped, panicked
    /// or killed), before its context (and so its mailbox) is dropped and
    /// before its supervisor hears: a service instance leaves its registry
    /// slot there. Not called when the actor never started.
    fn ended(&self) {}

    /// After the actor's context was dropped (or its start failed): tell
    /// the supervisor.
    fn exited(&self, reason: ExitReason);

    /// The switch that kills the actor: kept here rather than in an
    /// allocation of its own (a service instance's is in its
    /// `InstanceShared`).
    fn kill_switch(&self) -> &KillSwitch;
}

/// A supervisor's end, told to its parent, and its kill switch.
#[derive(Debug)]
struct Notified {
    notice: ExitNotice,
    kill: KillSwitch,
}

impl OnExit for Notified {
    fn exited(&self, reason: ExitReason) {
        self.notice.send(reason);
    }

    fn kill_switch(&self) -> &KillSwitch {
        &self.kill
    }
}

/// A parentless actor (the root supervisor): its end is only logged.
#[derive(Debug, Default)]
struct Parentless {
    kill: KillSwitch,
}

impl OnExit for Parentless {
    fn exited(&self, reason: ExitReason) {
        tracing::debug!(%reason, "a parentless actor exited");
    }

    fn kill_switch(&self) -> &KillSwitch {
        &self.kill
    }
}

/// Runs `make()` on `placement`'s thread and the actor it returns on that
/// thread's event loop; reports the exit to `on_exit`. Returns `false` if the
/// arbiter is gone (the exit is then reported at once).
pub(crate) fn launch<A, F>(
    placement: &Placement,
    make: F,
    rx: AddressReceiver<A>,
    on_exit: Option<ExitNotice>,
) -> bool
where
    A: Actor<Context = Context<A>>,
    F: FnOnce() -> A + Send + 'static,
{
    let on_exit = on_exit.map(|notice| {
        Arc::new(Notified {
            notice,
            kill: KillSwitch::default(),
        }) as Arc<dyn OnExit>
    });
    launch_with_end(placement, move || Ok(make()), rx, on_exit)
}

/// [`launch`] with a fallible `make` (its error is the exit reason, as a
/// panic in it would be), reporting the actor's end to `on_exit` (its
/// [`OnExit::ended`] as soon as the actor has ended, before anything else).
pub(crate) fn launch_with_end<A, F>(
    placement: &Placement,
    make: F,
    rx: AddressReceiver<A>,
    on_exit: Option<Arc<dyn OnExit>>,
) -> bool
where
    A: Actor<Context = Context<A>>,
    F: FnOnce() -> Result<A, ExitReason> + Send + 'static,
{
    let told = match placement {
        Placement::Arbiter(..) if super::batch::is_open() => on_exit.clone(),
        _ => None,
    };
    let job = move || run(make, rx, on_exit);
    match placement {
        // On this thread already (a local node, or a launch made on the
        // arbiter it places the actor on; supervisors run on the node's
        // System thread, so their launches to arbiters are handed over):
        // build it now, as the arbiter would once handed the job, without
        // the boxed job and the queue.
        Placement::Local => {
            job();
            true
        }
        Placement::Arbiter(_, id) if *id != 0 && *id == super::home::current() => {
            job();
            true
        }
        // Gathered into this thread's open batch: handed over with it,
        // which reports the launch failed if the arbiter is gone by then.
        Placement::Arbiter(h, id) if super::batch::is_open() => {
            super::batch::gather(*id, h, Box::new(job), told);
            true
        }
        Placement::Arbiter(h, _) => h.spawn_fn(job),
    }
}

fn run<A, F>(make: F, rx: AddressReceiver<A>, on_exit: Option<Arc<dyn OnExit>>)
where
    A: Actor<Context = Context<A>>,
    F: FnOnce() -> Result<A, ExitReason>,
{
    let actor = match catch_unwind(AssertUnwindSafe(make)) {
        Ok(Ok(a)) => a,
        Ok(Err(reason)) => {
            match on_exit {
                Some(n) => n.exited(reason),
                None => tracing::error!(%reason, "a parentless actor did not start"),
            }
            return;
        }
        Err(payload) => {
            let reason = ExitReason::StartFailed(panic_message(&*payload));
            match on_exit {
                Some(n) => n.exited(reason),
                None => tracing::error!(%reason, "a parentless actor failed to start"),
            }
            return;
        }
    };
    let fut = Context::with_receiver(rx).into_future(actor);
    let exit = on_exit.unwrap_or_else(|| Arc::new(Parentless::default()));
    let task = actix_rt::spawn(Supervised {
        fut: Some(fut),
        exit: Some(exit.clone()),
    });
    exit.kill_switch().arm(task.abort_handle());
}

/// An actor's context future, run so that its end is reported: a panic in
/// any poll (a handler, `started`, an actor future) is caught here, the
/// context is dropped (running `stopping`/`stopped` and failing what was
/// queued), and only then is the supervisor told. A plain struct rather than
/// an `async` block: the block would keep a second copy of the context
/// future, and this future lives in every actor's task.
struct Supervised<A: Actor<Context = Context<A>>> {
    fut: Option<ContextFut<A, Context<A>>>,
    /// What the end is reported to; it also holds the kill switch. `None`
    /// once reported.
    exit: Option<Arc<dyn OnExit>>,
}

/// Kills a supervised actor from any thread: its task ends at its next
/// await (a handler that never yields is not stopped). A kill aborts the
/// actor's tokio task, whose abort flag lives in the task's own state word,
/// which every poll reads anyway: a poll reads nothing of the switch
/// (issue 12: round-robin over 10,000 instances found each instance's
/// switch out of cache, a miss per message, when every poll checked a flag
/// here). The task's drop then reports the kill ([`Supervised`]'s `Drop`).
/// Not shared by an `Arc` of its own: it lives in what the actor's end is
/// reported to ([`OnExit::kill_switch`]), which the task and the supervisor
/// already share (one allocation, a 64-byte chunk, less per instance).
#[derive(Debug, Default)]
pub(crate) struct KillSwitch {
    killed: AtomicBool,
    /// The actor's task, once spawned.
    task: OnceLock<AbortHandle>,
}

impl KillSwitch {
    /// Ends the actor at its next await (or, not spawned yet, as soon as
    /// it is).
    pub(crate) fn kill(&self) {
        self.killed.store(true, Ordering::SeqCst);
        // Pairs with `arm`'s fence: either this sees the task, or `arm`
        // sees the flag (or both, and the task is aborted twice: harmless).
        fence(Ordering::SeqCst);
        if let Some(task) = self.task.get() {
            task.abort();
        }
    }

    fn killed(&self) -> bool {
        self.killed.load(Ordering::SeqCst)
    }

    /// The actor's task is spawned: a kill from now on aborts it, and one
    /// that came before aborts it now.
    fn arm(&self, task: AbortHandle) {
        if self.task.set(task).is_err() {
            tracing::debug!("a kill switch armed twice: the second task is not killable by it");
            return;
        }
        fence(Ordering::SeqCst);
        if self.killed() {
            if let Some(task) = self.task.get() {
                task.abort();
            }
        }
    }
}

impl<A: Actor<Context = Context<A>>> Supervised<A> {
    /// The actor has ended: tells `exit` (its end hook at once, then, with
    /// the context dropped, its exit).
    fn finish(&mut self, exit: Arc<dyn OnExit>, reason: ExitReason) {
        if catch_unwind(AssertUnwindSafe(|| exit.ended())).is_err() {
            tracing::warn!("an actor's end hook panicked");
        }
        let fut = self.fut.take();
        if catch_unwind(AssertUnwindSafe(move || drop(fut))).is_err() {
            tracing::warn!("an actor panicked in stopping/stopped after it exited");
        }
        exit.exited(reason);
    }
}

impl<A: Actor<Context = Context<A>>> Future for Supervised<A> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let Some(fut) = this.fut.as_mut() else {
            return Poll::Ready(());
        };
        let reason = match catch_unwind(AssertUnwindSafe(|| Pin::new(fut).poll(cx))) {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(())) => ExitReason::Stopped,
            Err(payload) => ExitReason::Panicked(panic_message(&*payload)),
        };
        if let Some(exit) = this.exit.take() {
            this.finish(exit, reason);
        }
        Poll::Ready(())
    }
}

/// A task dropped before its actor ended: aborted by a kill, reported as
/// such. A task dropped with its runtime (no kill) reports nothing, as an
/// actor whose thread is gone has nobody left to tell.
impl<A: Actor<Context = Context<A>>> Drop for Supervised<A> {
    fn drop(&mut self) {
        let Some(exit) = self.exit.take() else {
            return;
        };
        if exit.kill_switch().killed() {
            self.finish(exit, ExitReason::Killed);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::mem::size_of;

    use actix::dev::ContextFut;
    use actix::{Actor, Context};

    struct Small;
    impl Actor for Small {
        type Context = Context<Self>;
    }

    /// Every supervised actor's task holds a `Supervised` around actix's
    /// context future, in a tokio task cell aligned to 128 bytes: a few
    /// bytes more cross into the next size (issue 12: a boxed end hook and
    /// a full exit notice, 16 bytes more, made msa's cell 640 bytes where
    /// raw actix's is 512). The wrapper adds at most the last waker and
    /// one pointer to what its end is reported to (which holds the kill
    /// switch): four words, five while the kill switch was a field.
    #[test]
    fn the_supervised_wrapper_adds_at_most_four_words() {
        let inner = size_of::<ContextFut<Small, Context<Small>>>();
        let outer = size_of::<super::Supervised<Small>>();
        assert!(
            outer <= inner + 4 * size_of::<usize>(),
            "Supervised is {outer} bytes around a {inner}-byte context future"
        );
    }

    /// What a supervisor stand-in heard, in order.
    #[derive(Default)]
    struct Heard {
        log: Vec<String>,
        exited: Option<tokio::sync::oneshot::Sender<Vec<String>>>,
    }

    impl Actor for Heard {
        type Context = Context<Self>;
    }

    impl actix::Handler<super::ChildReady> for Heard {
        type Result = ();
        fn handle(&mut self, msg: super::ChildReady, _: &mut Context<Self>) {
            let up: Vec<String> = msg
                .link
                .take_ready()
                .iter()
                .map(|(c, g)| format!("{c}/{g}"))
                .collect();
            self.log.push(format!("up {}", up.join(" ")));
        }
    }

    impl actix::Handler<super::ChildExited> for Heard {
        type Result = ();
        fn handle(&mut self, msg: super::ChildExited, _: &mut Context<Self>) {
            self.log
                .push(format!("exit {}/{}", msg.child, msg.generation));
            if let Some(tx) = self.exited.take() {
                let _ = tx.send(std::mem::take(&mut self.log));
            }
        }
    }

    fn notice(link: &std::sync::Arc<super::SupervisorLink>, child: usize) -> super::ExitNotice {
        super::ExitNotice {
            sup: link.clone(),
            child,
            generation: child as u64 + 1,
        }
    }

    /// Children that report ready before their supervisor looks cost it
    /// one message, not one each (issue 12: 100k instances sent their
    /// supervisor 100k messages), and it hears them in the order they
    /// reported, before an exit any of them sent afterwards. Once it has
    /// taken them, the next ready wakes it again.
    #[test]
    fn readies_reach_the_supervisor_in_one_wake_and_before_a_later_exit() {
        actix::System::new().block_on(async {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let addr = Heard {
                log: Vec::new(),
                exited: Some(tx),
            }
            .start();
            let link = super::SupervisorLink::new(addr.clone());
            for child in 0..3 {
                notice(&link, child).ready();
            }
            notice(&link, 1).send(super::ExitReason::Stopped);
            assert_eq!(
                rx.await.expect("the stand-in heard the exit"),
                ["up 0/1 1/2 2/3", "exit 1/2"]
            );

            let (tx, rx) = tokio::sync::oneshot::channel();
            addr.send(Rearm(tx)).await.expect("the stand-in runs");
            notice(&link, 3).ready();
            notice(&link, 3).send(super::ExitReason::Stopped);
            assert_eq!(
                rx.await.expect("the stand-in heard the second exit"),
                ["up 3/4", "exit 3/4"]
            );
        });
    }

    /// An actor placed on the arbiter the launch runs on is built there and
    /// then, not handed to the arbiter's queue to be built later (a
    /// service's supervisor places every n-th instance on its own
    /// arbiter).
    #[test]
    fn an_actor_placed_on_the_launching_arbiter_is_built_at_once() {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;

        actix::System::new().block_on(async {
            let here = actix::Arbiter::new();
            let here_id = super::super::home::new_arbiter_id();
            let (tx, rx) = tokio::sync::oneshot::channel();
            let placed = here.spawn_fn(move || {
                super::super::home::set_current(here_id);
                let built = |placement: super::Placement| {
                    let flag = Arc::new(AtomicBool::new(false));
                    let f = flag.clone();
                    let (_tx, rx) = actix::dev::channel::channel::<Small>(16);
                    let launched = super::launch_with_end(
                        &placement,
                        move || {
                            f.store(true, Ordering::SeqCst);
                            Ok(Small)
                        },
                        rx,
                        None,
                    );
                    launched && flag.load(Ordering::SeqCst)
                };
                let _ = tx.send(built(super::Placement::Arbiter(
                    actix::Arbiter::current(),
                    here_id,
                )));
            });
            assert!(placed);
            let at_home = rx.await.expect("the arbiter ran the check");
            assert!(at_home, "the actor was not built during the launch");
            here.stop();
            let _ = here.join();
        });
    }

    /// What an actor's end reported; wakes the test at its exit.
    #[derive(Default)]
    struct Ends {
        ended: std::sync::atomic::AtomicBool,
        exits: parking_lot::Mutex<Vec<super::ExitReason>>,
        done: parking_lot::Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
        kill: super::KillSwitch,
    }

    impl super::OnExit for Ends {
        fn ended(&self) {
            self.ended.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        fn exited(&self, reason: super::ExitReason) {
            self.exits.lock().push(reason);
            if let Some(tx) = self.done.lock().take() {
                let _ = tx.send(());
            }
        }
        fn kill_switch(&self) -> &super::KillSwitch {
            &self.kill
        }
    }

    /// An `Ends` and the receiver its exit wakes.
    fn new_ends() -> (std::sync::Arc<Ends>, tokio::sync::oneshot::Receiver<()>) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let e = Ends::default();
        *e.done.lock() = Some(tx);
        (std::sync::Arc::new(e), rx)
    }

    /// Launches a `Small` on `placement`, reporting to `ends`; the sender
    /// it returns keeps the actor alive (idle, not stopped).
    fn launch_small(
        placement: &super::Placement,
        ends: &std::sync::Arc<Ends>,
    ) -> actix::dev::channel::AddressSender<Small> {
        let (tx, rx) = actix::dev::channel::channel::<Small>(16);
        assert!(super::launch_with_end(
            placement,
            || Ok(Small),
            rx,
            Some(ends.clone() as std::sync::Arc<dyn super::OnExit>),
        ));
        tx
    }

    /// A kill from another thread ends an idle actor (its task aborted)
    /// and is reported once, as a kill, after the end hook.
    #[test]
    fn a_kill_from_another_thread_ends_an_idle_actor_and_is_reported_once() {
        actix::System::new().block_on(async {
            let there = actix::Arbiter::new();
            let (ends, exited) = new_ends();
            let _keep = launch_small(&super::Placement::Arbiter(there.handle(), 9), &ends);
            // The arbiter runs jobs in order: once this one ran, the
            // actor's task is spawned (and idle).
            let (tx, rx) = tokio::sync::oneshot::channel();
            assert!(there.spawn_fn(move || {
                let _ = tx.send(());
            }));
            rx.await.expect("the arbiter ran the marker");
            assert!(ends.exits.lock().is_empty(), "ended before the kill");
            ends.kill.kill();
            exited.await.expect("the kill was reported");
            assert_eq!(*ends.exits.lock(), [super::ExitReason::Killed]);
            assert!(ends.ended.load(std::sync::atomic::Ordering::SeqCst));
            there.stop();
            let _ = there.join();
        });
    }

    /// A kill that comes before the actor's task is spawned ends it as
    /// soon as it is.
    #[test]
    fn a_kill_before_the_task_is_spawned_ends_it_once_spawned() {
        actix::System::new().block_on(async {
            let (ends, exited) = new_ends();
            ends.kill.kill();
            let _keep = launch_small(&super::Placement::Local, &ends);
            exited.await.expect("the kill was reported");
            assert_eq!(*ends.exits.lock(), [super::ExitReason::Killed]);
        });
    }

    /// A task dropped with its runtime, never killed, reports nothing (as
    /// before kills aborted tasks); one that stops on its own reports a
    /// stop, not a kill.
    #[test]
    fn only_a_kill_is_reported_from_a_dropped_task() {
        let (ends, _exited) = new_ends();
        let system = actix::System::new();
        let keep = system.block_on(async { launch_small(&super::Placement::Local, &ends) });
        drop(system);
        drop(keep);
        assert!(ends.exits.lock().is_empty(), "{:?}", ends.exits.lock());

        actix::System::new().block_on(async {
            let (ends, exited) = new_ends();
            drop(launch_small(&super::Placement::Local, &ends));
            exited.await.expect("the stop was reported");
            assert_eq!(*ends.exits.lock(), [super::ExitReason::Stopped]);
        });
    }

    /// Waits for the next exit again.
    struct Rearm(tokio::sync::oneshot::Sender<Vec<String>>);
    impl actix::Message for Rearm {
        type Result = ();
    }
    impl actix::Handler<Rearm> for Heard {
        type Result = ();
        fn handle(&mut self, msg: Rearm, _: &mut Context<Self>) {
            self.exited = Some(msg.0);
        }
    }
}
