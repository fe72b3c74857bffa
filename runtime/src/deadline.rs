//! Ask deadlines without one tokio timer per call.
//!
//! Registering a tokio timer costs about a third of a same-thread actix round
//! trip (../shared/FACTS.md), so msa keeps a coarse clock and a sharded table
//! of waiting asks instead. An ask registers only once its first poll comes
//! back pending (a lock on a per-thread shard and a slab insert), and a
//! sweeper task on the node ticks every [`TICK`], advances the clock and wakes
//! the asks whose deadline has passed. Timeouts therefore fire up to one tick
//! late; they never fire early: a deadline is taken from the coarse clock,
//! which lags real time until the next sweep (longer on a loaded machine), so
//! the deadline of an ask that has to wait is pushed back by that lag. On a
//! thread with its own wheel (below) the wheel's next sweep does it, with its
//! own reading of the real clock as the bound (the ask registered before
//! that sweep), so the ask itself reads no clock and may time out one tick
//! later still; elsewhere the ask reads the real clock once before it
//! registers.
//!
//! The sweepers tick only while there is something to do, so an idle node
//! sleeps (issue 12, "idle cost": three 5 ms tickers made an idle node wake
//! about 600 times a second):
//! * the node's sweeper (which also advances the coarse clock) goes to sleep
//!   once its table is empty and nobody read the clock for a whole tick.
//!   While it sleeps, [`CoarseClock::now_ms`] reads the real clock itself (so
//!   a coarse time is never stale, whatever the sweeper does) and wakes the
//!   sweeper; a registration in the table wakes it too.
//! * a thread's sweeper (an arbiter's wheel) goes to sleep once its wheel
//!   has held no waiting ask for [`QUIET_TICKS`] ticks, and a registration
//!   on that thread wakes it (a same-thread waker, no system call).
//!
//! A sleeping sweeper still wakes every [`MAX_SLEEP`] to notice a stop.

use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::task::Waker;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use slab::Slab;

/// Resolution of the coarse clock and of ask timeouts.
pub(crate) const TICK: Duration = Duration::from_millis(5);

/// Ticks without a waiting ask after which a thread's sweeper sleeps.
pub(crate) const QUIET_TICKS: u32 = 2;

/// The longest a sleeping sweeper sleeps before it looks at its stop flag.
pub(crate) const MAX_SLEEP: Duration = Duration::from_secs(1);

/// Clock states: ticking and read since the sweeper's last look,
const AWAKE_USED: u8 = 0;
/// ticking and unread since then,
const AWAKE_UNUSED: u8 = 1;
/// not ticking (readers read the real clock and wake the sweeper).
const ASLEEP: u8 = 2;

/// The process-wide epoch of coarse times (milliseconds since this instant),
/// so that a deadline in a message's metadata is a plain `u64` every node in
/// the process compares alike.
pub(crate) fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Milliseconds since [`epoch`] of `t`, rounded up.
pub(crate) fn ms_since_epoch_ceil(t: Instant) -> u64 {
    let d = t.saturating_duration_since(epoch());
    let ms = d.as_millis() + u128::from(!d.subsec_nanos().is_multiple_of(1_000_000));
    u64::try_from(ms).unwrap_or(u64::MAX / 2)
}

/// Milliseconds since the epoch, advanced by the sweeper while it ticks and
/// read from the real clock while it sleeps.
#[derive(Debug)]
pub(crate) struct CoarseClock {
    base: Instant,
    millis: AtomicU64,
    /// [`AWAKE_USED`], [`AWAKE_UNUSED`] or [`ASLEEP`].
    state: AtomicU8,
    /// Wakes a sweeper task (a local node's).
    notify: tokio::sync::Notify,
    /// Wakes a sweeper thread (a node on arbiters).
    thread: std::sync::OnceLock<std::thread::Thread>,
}

impl CoarseClock {
    fn new() -> Self {
        let base = epoch();
        let now = u64::try_from(base.elapsed().as_millis()).unwrap_or(u64::MAX / 2);
        Self {
            base,
            millis: AtomicU64::new(now),
            state: AtomicU8::new(AWAKE_USED),
            notify: tokio::sync::Notify::new(),
            thread: std::sync::OnceLock::new(),
        }
    }

    /// The coarse time in milliseconds since the node started: at most a
    /// tick behind real time while the sweeper ticks (more on a loaded
    /// machine), the real time while it sleeps.
    #[inline]
    pub(crate) fn now_ms(&self) -> u64 {
        if self.state.load(Ordering::Acquire) != AWAKE_USED {
            return self.now_ms_cold();
        }
        self.millis.load(Ordering::Relaxed)
    }

    /// [`Self::now_ms`] after the sweeper marked the clock unread, or while
    /// it sleeps: marks it read, or reads the real clock and wakes it.
    #[cold]
    fn now_ms_cold(&self) -> u64 {
        match self.state.compare_exchange(
            AWAKE_UNUSED,
            AWAKE_USED,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) | Err(AWAKE_USED) => self.millis.load(Ordering::Relaxed),
            Err(_) => {
                // Nobody advances the clock: bring it to real time first,
                // then wake the sweeper (readers that see it awake read
                // the advanced value).
                let now = self.advance();
                self.wake();
                now
            }
        }
    }

    /// Wakes a sleeping sweeper (no-op when it ticks).
    fn wake(&self) {
        if self
            .state
            .compare_exchange(ASLEEP, AWAKE_USED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.notify.notify_one();
            if let Some(t) = self.thread.get() {
                t.unpark();
            }
        }
    }

    /// Whether the sweeper sleeps (for tests).
    #[cfg(test)]
    pub(crate) fn asleep(&self) -> bool {
        self.state.load(Ordering::Acquire) == ASLEEP
    }

    /// The coarse millisecond at which `d` from now has passed (rounded up).
    #[inline]
    pub(crate) fn after(&self, d: Duration) -> u64 {
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX / 2);
        self.now_ms().saturating_add(ms).saturating_add(1)
    }

    /// The real time in milliseconds since the epoch (the coarse clock is
    /// left to the sweeper: no store to a shared cache line).
    #[inline]
    pub(crate) fn real_ms(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX / 2)
    }

    fn advance(&self) -> u64 {
        let real = self.real_ms();
        self.millis.fetch_max(real, Ordering::Relaxed).max(real)
    }
}

struct Waiting {
    deadline_ms: u64,
    waker: Waker,
}

/// A registration: in the node's shared table, or in the calling thread's
/// own wheel (no lock) when that thread runs a local sweeper.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Ticket {
    Shared { shard: usize, key: usize },
    Local { token: u64, key: usize, gen: u64 },
}

/// See [`Deadlines::status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TicketStatus {
    Fired,
    Armed,
    Lost,
}

struct LocalWaiting {
    deadline_ms: u64,
    /// The coarse time at which an ask registered a deadline taken from
    /// the coarse clock, until the next sweep settles it (see
    /// [`Deadlines::register_coarse`]); `None` once settled.
    settle_from: Option<u64>,
    gen: u64,
    fired: bool,
    /// `false` once its ask completed: kept for the same task's next ask
    /// (no waker clone, no slab insert), dropped by the sweeper later.
    active: bool,
    waker: Waker,
}

/// The wheel of a thread that runs a local sweeper (an arbiter, or the
/// `LocalSet` of a local node): registering an ask there takes no lock.
struct LocalWheel {
    token: u64,
    next_gen: u64,
    slab: Slab<LocalWaiting>,
    /// The entry of the most recently completed ask, for reuse.
    idle: Option<usize>,
    /// The sleeping sweeper of this wheel: the next registration wakes it.
    sleeper: Option<Waker>,
}

thread_local! {
    static LOCAL_WHEEL: std::cell::RefCell<Option<LocalWheel>> =
        const { std::cell::RefCell::new(None) };
}

/// Gives this thread a local wheel (idempotent). Its owner must call
/// `run_local_sweeper` (which sweeps it every [`TICK`] while asks wait).
fn install_local_wheel() {
    static TOKENS: AtomicU64 = AtomicU64::new(1);
    let _ = LOCAL_WHEEL.try_with(|w| {
        if let Ok(mut w) = w.try_borrow_mut() {
            if w.is_none() {
                *w = Some(LocalWheel {
                    token: TOKENS.fetch_add(1, Ordering::Relaxed),
                    next_gen: 0,
                    slab: Slab::new(),
                    idle: None,
                    sleeper: None,
                });
            }
        }
    });
}

/// Removes this thread's wheel, waking every ask still in it: each then
/// re-registers with its node's shared table.
fn uninstall_local_wheel() {
    let wheel = LOCAL_WHEEL
        .try_with(|w| w.try_borrow_mut().ok().and_then(|mut w| w.take()))
        .ok()
        .flatten();
    if let Some(w) = wheel {
        for (_, e) in w.slab {
            e.waker.wake();
        }
    }
}

/// Sweeps this thread's wheel every [`TICK`] while asks wait in it, and
/// sleeps (until a registration on this thread) once none has waited for
/// [`QUIET_TICKS`] ticks, for as long as it runs; its end (the task dropped
/// with its arbiter, or stopped with its local node) uninstalls the wheel.
pub(crate) async fn run_local_sweeper(stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>) {
    struct Uninstall;
    impl Drop for Uninstall {
        fn drop(&mut self) {
            uninstall_local_wheel();
        }
    }
    install_local_wheel();
    let _uninstall = Uninstall;
    let stopped = || stop.as_ref().is_some_and(|s| s.load(Ordering::Acquire));
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut quiet = 0u32;
    loop {
        tick.tick().await;
        if stopped() {
            break;
        }
        let (_, waiting) = sweep_local_counted();
        if waiting > 0 {
            quiet = 0;
            continue;
        }
        quiet += 1;
        if quiet < QUIET_TICKS {
            continue;
        }
        quiet = 0;
        // Asleep until a registration on this thread; a timeout only looks
        // at the stop flag and sleeps again (no quiet ticks in between).
        loop {
            let woken = tokio::time::timeout(MAX_SLEEP, LocalSleep { armed: false })
                .await
                .is_ok();
            let _ = LOCAL_WHEEL.try_with(|w| {
                if let Some(w) = w.try_borrow_mut().ok().as_mut().and_then(|w| w.as_mut()) {
                    w.sleeper = None;
                }
            });
            if stopped() {
                return;
            }
            if woken {
                break;
            }
        }
        tick.reset();
    }
}

/// Sleeps until a registration on this thread takes the stored waker.
/// Arming it drops the entries no ask waits on (idle entries kept for reuse
/// and fired ones never cancelled), so a sleeping wheel holds no waker.
struct LocalSleep {
    armed: bool,
}

impl std::future::Future for LocalSleep {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        let armed = self.armed;
        let ready = LOCAL_WHEEL.try_with(|w| {
            let Ok(mut w) = w.try_borrow_mut() else {
                return true;
            };
            let Some(w) = w.as_mut() else {
                return true;
            };
            if armed {
                if w.sleeper.is_none() {
                    return true;
                }
            } else {
                if w.slab.iter().any(|(_, e)| e.active && !e.fired) {
                    return true;
                }
                w.slab.clear();
                w.idle = None;
            }
            w.sleeper = Some(cx.waker().clone());
            false
        });
        let ready = ready.unwrap_or(true);
        if ready {
            std::task::Poll::Ready(())
        } else {
            self.armed = true;
            std::task::Poll::Pending
        }
    }
}

/// Wakes this thread's asks whose deadline has passed; returns how many,
/// and how many still wait.
fn sweep_local_counted() -> (usize, usize) {
    let now = u64::try_from(epoch().elapsed().as_millis()).unwrap_or(u64::MAX / 2);
    LOCAL_WHEEL
        .try_with(|w| {
            let Ok(mut w) = w.try_borrow_mut() else {
                return (0, 0);
            };
            let Some(w) = w.as_mut() else {
                return (0, 0);
            };
            let mut woken = 0;
            let mut waiting = 0;
            // Entries fired on an earlier sweep and never cancelled belong to
            // futures that moved threads or were forgotten, and idle entries
            // kept for reuse hold a task's waker: drop both after a while.
            w.slab.retain(|_, e| {
                !((e.fired || !e.active) && e.deadline_ms.saturating_add(1000) < now)
            });
            if w.idle.is_some_and(|k| !w.slab.contains(k)) {
                w.idle = None;
            }
            for (_, e) in w.slab.iter_mut() {
                if e.active && !e.fired {
                    if let Some(from) = e.settle_from.take() {
                        // Registered on this thread since the last sweep,
                        // so before `now`: the coarse clock lagged real
                        // time by at most `now - from` then. Pushed back
                        // by that much, the deadline never fires early.
                        e.deadline_ms = e.deadline_ms.saturating_add(now.saturating_sub(from));
                    }
                    if e.deadline_ms <= now {
                        e.fired = true;
                        e.waker.wake_by_ref();
                        woken += 1;
                    } else {
                        waiting += 1;
                    }
                }
            }
            (woken, waiting)
        })
        .unwrap_or((0, 0))
}

/// The table of waiting asks, sharded by thread to keep locks uncontended.
pub(crate) struct Deadlines {
    clock: CoarseClock,
    shards: Box<[Mutex<Slab<Waiting>>]>,
    expired_total: AtomicU64,
}

impl std::fmt::Debug for Deadlines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deadlines")
            .field("clock_ms", &self.clock.now_ms())
            .field("shards", &self.shards.len())
            .finish()
    }
}

fn shard_of_this_thread(n: usize) -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    SHARD.with(|s| *s) % n
}

impl Deadlines {
    pub(crate) fn new(shards: usize) -> Self {
        let n = shards.clamp(1, 64);
        Self {
            clock: CoarseClock::new(),
            shards: (0..n).map(|_| Mutex::new(Slab::new())).collect(),
            expired_total: AtomicU64::new(0),
        }
    }

    pub(crate) fn clock(&self) -> &CoarseClock {
        &self.clock
    }

    /// Registers a waiting ask: in this thread's wheel when it has one,
    /// else in the shared table.
    pub(crate) fn register(&self, deadline_ms: u64, waker: &Waker) -> Ticket {
        if let Some(t) = Self::register_local(deadline_ms, None, waker) {
            return t;
        }
        self.register_shared(deadline_ms, waker)
    }

    /// Registers a waiting ask whose deadline was taken from the coarse
    /// clock, which reads `coarse_ms` now, in this thread's wheel: the
    /// wheel's next sweep pushes the deadline back by the clock's lag (the
    /// real time of that sweep minus `coarse_ms`), so the ask reads no real
    /// clock and still never times out early; it may time out up to one
    /// more tick late. `None` when this thread has no wheel: the caller
    /// then corrects the deadline itself and calls [`Self::register`].
    pub(crate) fn register_coarse(
        &self,
        deadline_ms: u64,
        coarse_ms: u64,
        waker: &Waker,
    ) -> Option<Ticket> {
        Self::register_local(deadline_ms, Some(coarse_ms), waker)
    }

    /// A registration in this thread's wheel, if it has one.
    fn register_local(deadline_ms: u64, settle_from: Option<u64>, waker: &Waker) -> Option<Ticket> {
        let local = LOCAL_WHEEL.try_with(|w| {
            let mut w = w.try_borrow_mut().ok()?;
            let w = w.as_mut()?;
            if let Some(s) = w.sleeper.take() {
                s.wake();
            }
            w.next_gen = w.next_gen.wrapping_add(1);
            let gen = w.next_gen;
            // The same task asking again (a sequential caller): reuse its
            // idle entry, which already holds this waker.
            if let Some(k) = w.idle.take() {
                if let Some(e) = w.slab.get_mut(k) {
                    if !e.active && e.waker.will_wake(waker) {
                        e.deadline_ms = deadline_ms;
                        e.settle_from = settle_from;
                        e.gen = gen;
                        e.fired = false;
                        e.active = true;
                        return Some(Ticket::Local {
                            token: w.token,
                            key: k,
                            gen,
                        });
                    }
                }
                w.idle = Some(k);
            }
            let key = w.slab.insert(LocalWaiting {
                deadline_ms,
                settle_from,
                gen,
                fired: false,
                active: true,
                waker: waker.clone(),
            });
            Some(Ticket::Local {
                token: w.token,
                key,
                gen,
            })
        });
        local.ok().flatten()
    }

    /// A registration in the node's shared table.
    fn register_shared(&self, deadline_ms: u64, waker: &Waker) -> Ticket {
        let shard = shard_of_this_thread(self.shards.len());
        let key = self.shards[shard].lock().insert(Waiting {
            deadline_ms,
            waker: waker.clone(),
        });
        // After the insert (the sweeper looks at the table after it fell
        // asleep): a sleeping sweeper must tick again for this ask.
        if self.clock.state.load(Ordering::SeqCst) == ASLEEP {
            self.clock.wake();
        }
        Ticket::Shared { shard, key }
    }

    /// Runs `f` on the local entry of `t` if this thread owns it.
    fn with_local<R>(
        token: u64,
        key: usize,
        gen: u64,
        f: impl FnOnce(&mut Slab<LocalWaiting>) -> R,
    ) -> Option<R> {
        LOCAL_WHEEL
            .try_with(|w| {
                let mut w = w.try_borrow_mut().ok()?;
                let w = w.as_mut()?;
                if w.token != token || w.slab.get(key).is_none_or(|e| e.gen != gen) {
                    return None;
                }
                Some(f(&mut w.slab))
            })
            .ok()
            .flatten()
    }

    /// Where `t` stands: fired (its deadline passed), armed, or lost (a
    /// local registration this thread cannot see: the future moved threads
    /// or the wheel is gone; it must register again).
    pub(crate) fn status(&self, t: Ticket) -> TicketStatus {
        match t {
            Ticket::Shared { shard, key } => {
                let fired = self.shards[shard]
                    .lock()
                    .get(key)
                    .is_some_and(|w| w.deadline_ms == u64::MAX);
                if fired {
                    TicketStatus::Fired
                } else {
                    TicketStatus::Armed
                }
            }
            Ticket::Local { token, key, gen } => {
                match Self::with_local(token, key, gen, |s| {
                    s.get(key).is_some_and(|e| e.fired && e.active)
                }) {
                    Some(true) => TicketStatus::Fired,
                    Some(false) => TicketStatus::Armed,
                    None => TicketStatus::Lost,
                }
            }
        }
    }

    /// Updates the waker of a registration if the task changed.
    pub(crate) fn update(&self, t: Ticket, waker: &Waker) {
        match t {
            Ticket::Shared { shard, key } => {
                if let Some(w) = self.shards[shard].lock().get_mut(key) {
                    if !w.waker.will_wake(waker) {
                        w.waker = waker.clone();
                    }
                }
            }
            Ticket::Local { token, key, gen } => {
                // From another thread the old waker stays: it wakes the same task.
                let _ = Self::with_local(token, key, gen, |s| {
                    if let Some(e) = s.get_mut(key) {
                        if !e.waker.will_wake(waker) {
                            e.waker = waker.clone();
                        }
                    }
                });
            }
        }
    }

    /// Removes a registration (the ask completed or was dropped).
    pub(crate) fn cancel(&self, t: Ticket) {
        match t {
            Ticket::Shared { shard, key } => {
                let mut s = self.shards[shard].lock();
                if s.contains(key) {
                    s.remove(key);
                }
            }
            Ticket::Local { token, key, gen } => {
                // On another thread (the future moved) the entry stays until
                // its deadline fires; the sweeper then drops it. Here it
                // becomes the idle entry, for the same task's next ask.
                let _ = LOCAL_WHEEL.try_with(|w| {
                    let Ok(mut w) = w.try_borrow_mut() else {
                        return;
                    };
                    let Some(w) = w.as_mut() else {
                        return;
                    };
                    if w.token != token {
                        return;
                    }
                    match w.slab.get_mut(key) {
                        Some(e) if e.gen == gen => e.active = false,
                        _ => return,
                    }
                    if let Some(old) = w.idle.replace(key) {
                        if old != key && w.slab.get(old).is_some_and(|e| !e.active) {
                            w.slab.remove(old);
                        }
                    }
                });
            }
        }
    }

    /// Advances the clock and wakes every ask whose deadline has passed;
    /// returns how many were woken.
    #[cfg(test)]
    pub(crate) fn sweep(&self) -> usize {
        self.sweep_counted().0
    }

    /// [`Self::sweep`], also returning how many asks the table still holds.
    fn sweep_counted(&self) -> (usize, usize) {
        let now = self.clock.advance();
        let mut woken = 0;
        let mut held = 0;
        for shard in self.shards.iter() {
            let mut s = shard.lock();
            held += s.len();
            for (_, w) in s.iter_mut() {
                if w.deadline_ms <= now {
                    // Leave the entry for its owner to cancel; push its deadline out
                    // so it is woken once, not at every tick.
                    w.deadline_ms = u64::MAX;
                    w.waker.wake_by_ref();
                    woken += 1;
                }
            }
        }
        if woken > 0 {
            self.expired_total
                .fetch_add(woken as u64, Ordering::Relaxed);
        }
        (woken, held)
    }

    fn shared_is_empty(&self) -> bool {
        self.shards.iter().all(|s| s.lock().is_empty())
    }

    /// After a sweep that left `held` asks in the table: whether the
    /// sweeper may sleep now. It may once the table is empty and the clock
    /// went unread for a whole tick (the first such tick only marks the
    /// clock unread).
    fn try_sleep(&self, held: usize) -> bool {
        let c = &self.clock;
        if held > 0 {
            return false;
        }
        match c.state.compare_exchange(
            AWAKE_USED,
            AWAKE_UNUSED,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => false,
            Err(ASLEEP) => true,
            Err(_) => {
                if c.state
                    .compare_exchange(AWAKE_UNUSED, ASLEEP, Ordering::SeqCst, Ordering::SeqCst)
                    .is_err()
                {
                    return false;
                }
                // A registration that raced the fall asleep is seen here
                // (or it sees `ASLEEP` and wakes the clock itself).
                if !self.shared_is_empty() {
                    c.wake();
                    return false;
                }
                true
            }
        }
    }

    /// The node's sweeper on its own thread: ticks while there is work,
    /// sleeps otherwise, until `stop` (the node unparks it then).
    pub(crate) fn run_sweeper_thread(&self, stop: &std::sync::atomic::AtomicBool) {
        let _ = self.clock.thread.set(std::thread::current());
        while !stop.load(Ordering::Acquire) {
            let (_, held) = self.sweep_counted();
            if self.try_sleep(held) {
                std::thread::park_timeout(MAX_SLEEP);
            } else {
                std::thread::park_timeout(TICK);
            }
        }
    }

    /// The node's sweeper as a task (a local node): as
    /// [`Self::run_sweeper_thread`].
    pub(crate) async fn run_sweeper_task(&self, stop: &std::sync::atomic::AtomicBool) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !stop.load(Ordering::Acquire) {
            tick.tick().await;
            let (_, held) = self.sweep_counted();
            if self.try_sleep(held) {
                let _ = tokio::time::timeout(MAX_SLEEP, self.clock.notify.notified()).await;
                tick.reset();
            }
        }
    }

    /// Number of asks registered in the shared table plus this thread's
    /// wheel (for tests and metrics).
    pub(crate) fn waiting(&self) -> usize {
        let local = LOCAL_WHEEL
            .try_with(|w| {
                w.try_borrow().ok().and_then(|w| {
                    w.as_ref()
                        .map(|w| w.slab.iter().filter(|(_, e)| e.active).count())
                })
            })
            .ok()
            .flatten()
            .unwrap_or(0);
        self.shards.iter().map(|s| s.lock().len()).sum::<usize>() + local
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;
    use std::task::Wake;

    struct CountingWaker(AtomicUsize);
    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn sweep_wakes_only_expired_asks_once() {
        let d = Deadlines::new(2);
        let w = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let waker = Waker::from(w.clone());
        let _past = d.register(0, &waker);
        let future = d.register(u64::MAX - 1, &waker);
        assert_eq!(d.sweep(), 1);
        assert_eq!(w.0.load(Ordering::SeqCst), 1);
        assert_eq!(d.sweep(), 0, "an expired ask is woken once");
        d.cancel(future);
        assert_eq!(d.waiting(), 1);
    }

    #[test]
    fn cancel_removes_the_registration() {
        let d = Deadlines::new(4);
        let waker = Waker::from(Arc::new(CountingWaker(AtomicUsize::new(0))));
        let t = d.register(10, &waker);
        assert_eq!(d.waiting(), 1);
        d.cancel(t);
        d.cancel(t);
        assert_eq!(d.waiting(), 0);
    }

    #[test]
    fn a_thread_wheel_fires_and_hands_back_its_asks_when_it_stops() {
        on_a_swept_thread(|d, stop| async move {
            let w = Arc::new(CountingWaker(AtomicUsize::new(0)));
            let waker = Waker::from(w.clone());
            let now = u64::try_from(epoch().elapsed().as_millis()).unwrap();
            let due = d.register(now, &waker);
            assert!(
                matches!(due, Ticket::Local { .. }),
                "registered without a lock"
            );
            let later = d.register(now + 60_000, &waker);
            assert_eq!(d.status(later), TicketStatus::Armed);
            // The sweeper fires the due one within a tick or two.
            let t0 = Instant::now();
            while d.status(due) != TicketStatus::Fired {
                assert!(t0.elapsed() < Duration::from_secs(5));
                tokio::time::sleep(TICK).await;
            }
            assert!(w.0.load(Ordering::SeqCst) >= 1);
            // Stopping the sweeper wakes what is left and hands it back.
            stop.store(true, Ordering::Release);
            let t0 = Instant::now();
            while d.status(later) != TicketStatus::Lost {
                assert!(t0.elapsed() < Duration::from_secs(5));
                tokio::time::sleep(TICK).await;
            }
            assert!(matches!(
                d.register(now + 60_000, &waker),
                Ticket::Shared { .. }
            ));
        });
    }

    #[test]
    fn a_sequential_caller_reuses_its_idle_entry() {
        on_a_swept_thread(|d, stop| async move {
            let waker = Waker::from(Arc::new(CountingWaker(AtomicUsize::new(0))));
            let other = Waker::from(Arc::new(CountingWaker(AtomicUsize::new(0))));
            let far = u64::MAX / 4;
            let key_of = |t: Ticket| match t {
                Ticket::Local { key, .. } => key,
                Ticket::Shared { .. } => usize::MAX,
            };
            let first = d.register(far, &waker);
            d.cancel(first);
            assert_eq!(d.waiting(), 0, "an idle entry is not waiting");
            let second = d.register(far, &waker);
            assert_eq!(key_of(second), key_of(first), "same task: entry reused");
            assert_eq!(
                d.status(first),
                TicketStatus::Lost,
                "the old ticket is stale"
            );
            assert_eq!(d.status(second), TicketStatus::Armed);
            d.cancel(second);
            let third = d.register(far, &other);
            assert_ne!(key_of(third), key_of(second), "another task: a new entry");
            stop.store(true, Ordering::Release);
        });
    }

    #[test]
    fn a_coarse_deadline_is_pushed_back_by_the_wheel_and_never_fires_early() {
        on_a_swept_thread(|d, stop| async move {
            let real = || u64::try_from(epoch().elapsed().as_millis()).unwrap();
            let lag = 200;
            while real() < lag {
                tokio::time::sleep(TICK).await;
            }
            let w = Arc::new(CountingWaker(AtomicUsize::new(0)));
            let waker = Waker::from(w.clone());
            // A coarse clock `lag` ms behind real time, an ask with 30 ms
            // to go by it: by the real clock its deadline passed already,
            // and the wheel's first sweep would fire it at once if the
            // sweep did not push it back by the lag.
            let start = real();
            let coarse = start - lag;
            let t = d
                .register_coarse(coarse + 30, coarse, &waker)
                .expect("a swept thread has a wheel");
            assert!(matches!(t, Ticket::Local { .. }));
            let t0 = Instant::now();
            while w.0.load(Ordering::SeqCst) == 0 {
                assert!(t0.elapsed() < Duration::from_secs(5), "never fired");
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            let fired = real();
            assert!(fired >= start + 30, "early: +{} ms", fired - start);
            assert_eq!(d.status(t), TicketStatus::Fired);
            stop.store(true, Ordering::Release);
        });
    }

    /// Runs `body` on a LocalSet thread whose deadline wheel is swept; it
    /// gets the table and the sweeper's stop flag.
    fn on_a_swept_thread<F, Fut>(body: F)
    where
        F: FnOnce(Deadlines, Arc<std::sync::atomic::AtomicBool>) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let local = tokio::task::LocalSet::new();
        local.block_on(&rt, async {
            let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
            tokio::task::spawn_local(run_local_sweeper(Some(stop.clone())));
            tokio::task::yield_now().await;
            body(Deadlines::new(1), stop).await;
        });
    }

    #[test]
    fn an_idle_node_sweeper_sleeps_and_its_clock_stays_true() {
        let d = Deadlines::new(2);
        let (_, held) = d.sweep_counted();
        assert!(
            !d.try_sleep(held),
            "first idle tick only marks the clock unread"
        );
        assert!(
            d.try_sleep(0),
            "a whole tick unread and nothing waiting: sleep"
        );
        assert!(d.clock().asleep());
        // Time passes with nobody advancing the clock: a read is still true
        // (not the value of the last sweep) and wakes the sweeper.
        let before = d.clock().real_ms();
        std::thread::sleep(Duration::from_millis(30));
        let now = d.clock().now_ms();
        assert!(
            now >= before + 30,
            "stale coarse time {now} < {before} + 30"
        );
        assert!(!d.clock().asleep(), "a read wakes the sweeper");
        // A read between two idle ticks keeps it awake.
        assert!(!d.try_sleep(0));
        let _ = d.clock().now_ms();
        assert!(!d.try_sleep(0), "read during the tick: stays awake");
    }

    #[test]
    fn a_registration_wakes_a_sleeping_node_sweeper_and_keeps_it_awake() {
        let d = Deadlines::new(2);
        assert!(!d.try_sleep(0));
        assert!(d.try_sleep(0));
        let waker = Waker::from(Arc::new(CountingWaker(AtomicUsize::new(0))));
        // Off any swept thread: the shared table.
        let t =
            std::thread::scope(|s| s.spawn(|| d.register(u64::MAX - 1, &waker)).join()).unwrap();
        assert!(matches!(t, Ticket::Shared { .. }));
        assert!(!d.clock().asleep(), "the registration woke the sweeper");
        let (_, held) = d.sweep_counted();
        assert_eq!(held, 1);
        for _ in 0..3 {
            assert!(!d.try_sleep(held), "an ask waits: no sleep");
        }
        d.cancel(t);
    }

    #[test]
    fn a_sweeper_thread_sleeps_when_idle_and_fires_a_new_ask_on_time() {
        // Timed (a deadline fires on time): alone in its own process, not
        // starved by the other tests of this binary on a 2-core machine.
        if !crate::test_support::in_own_process(
            "deadline::tests::a_sweeper_thread_sleeps_when_idle_and_fires_a_new_ask_on_time",
        ) {
            return;
        }
        let d = Arc::new(Deadlines::new(1));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sweeper = {
            let (d, stop) = (d.clone(), stop.clone());
            std::thread::spawn(move || d.run_sweeper_thread(&stop))
        };
        let t0 = Instant::now();
        while !d.clock().asleep() {
            assert!(t0.elapsed() < Duration::from_secs(5), "never fell asleep");
            std::thread::yield_now();
        }
        let w = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let waker = Waker::from(w.clone());
        let start = d.clock().real_ms();
        let t = std::thread::scope(|s| s.spawn(|| d.register(start + 30, &waker)).join()).unwrap();
        let t0 = Instant::now();
        while w.0.load(Ordering::SeqCst) == 0 {
            assert!(t0.elapsed() < Duration::from_secs(5), "never fired");
            std::thread::yield_now();
        }
        let fired = d.clock().real_ms();
        assert!(fired >= start + 30, "early: {fired} < {start} + 30");
        assert!(
            fired < start + 30 + MAX_SLEEP.as_millis() as u64 / 2,
            "the registration did not wake the sweeper: fired at +{} ms",
            fired - start
        );
        d.cancel(t);
        stop.store(true, Ordering::Release);
        sweeper.thread().unpark();
        sweeper.join().unwrap();
    }

    #[test]
    fn a_thread_wheel_sleeps_when_idle_and_a_registration_wakes_it() {
        // Timed (a deadline fires on time): alone in its own process, not
        // starved by the other tests of this binary on a 2-core machine.
        if !crate::test_support::in_own_process(
            "deadline::tests::a_thread_wheel_sleeps_when_idle_and_a_registration_wakes_it",
        ) {
            return;
        }
        on_a_swept_thread(|d, stop| async move {
            let asleep =
                || LOCAL_WHEEL.with(|w| w.borrow().as_ref().is_some_and(|w| w.sleeper.is_some()));
            crate::test_support::eventually(
                "the wheel's sweeper asleep",
                Duration::from_secs(5),
                || {
                    let a = asleep();
                    async move { a }
                },
            )
            .await;
            let w = Arc::new(CountingWaker(AtomicUsize::new(0)));
            let waker = Waker::from(w.clone());
            let start = u64::try_from(epoch().elapsed().as_millis()).unwrap();
            let t = d.register(start + 30, &waker);
            assert!(matches!(t, Ticket::Local { .. }));
            assert!(!asleep(), "the registration woke the wheel's sweeper");
            // Fired: its waker was woken. (Not `status(t)`: once the wheel
            // fell asleep again it dropped the fired entry, and an ask that
            // polls after that registers again, which this test does not.)
            let count = &w;
            crate::test_support::eventually(
                "the ask's deadline fired",
                Duration::from_secs(5),
                || {
                    let fired = count.0.load(Ordering::SeqCst) > 0;
                    async move { fired }
                },
            )
            .await;
            let fired = u64::try_from(epoch().elapsed().as_millis()).unwrap();
            assert!(fired >= start + 30, "early");
            assert!(
                fired < start + 30 + MAX_SLEEP.as_millis() as u64 / 2,
                "late: +{} ms",
                fired - start
            );
            stop.store(true, Ordering::Release);
        });
    }

    #[test]
    fn clock_after_rounds_up() {
        let d = Deadlines::new(1);
        let now = d.clock().now_ms();
        assert!(d.clock().after(Duration::from_micros(10)) > now);
    }
}
