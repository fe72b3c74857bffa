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
//! an ask that has to wait reads the real clock once and pushes its deadline
//! back by that lag before it registers.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::Waker;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use slab::Slab;

/// Resolution of the coarse clock and of ask timeouts.
pub(crate) const TICK: Duration = Duration::from_millis(5);

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

/// Milliseconds since the epoch, advanced by the sweeper.
#[derive(Debug)]
pub(crate) struct CoarseClock {
    base: Instant,
    millis: AtomicU64,
}

impl CoarseClock {
    fn new() -> Self {
        let base = epoch();
        let now = u64::try_from(base.elapsed().as_millis()).unwrap_or(u64::MAX / 2);
        Self {
            base,
            millis: AtomicU64::new(now),
        }
    }

    /// The coarse time in milliseconds since the node started.
    #[inline]
    pub(crate) fn now_ms(&self) -> u64 {
        self.millis.load(Ordering::Relaxed)
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
}

thread_local! {
    static LOCAL_WHEEL: std::cell::RefCell<Option<LocalWheel>> =
        const { std::cell::RefCell::new(None) };
}

/// Gives this thread a local wheel (idempotent). Its owner must call
/// [`sweep_local`] every [`TICK`].
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

/// Sweeps this thread's wheel every [`TICK`] for as long as it runs; its
/// end (the task dropped with its arbiter, or stopped with its local node)
/// uninstalls the wheel.
pub(crate) async fn run_local_sweeper(stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>) {
    struct Uninstall;
    impl Drop for Uninstall {
        fn drop(&mut self) {
            uninstall_local_wheel();
        }
    }
    install_local_wheel();
    let _uninstall = Uninstall;
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if stop.as_ref().is_some_and(|s| s.load(Ordering::Acquire)) {
            break;
        }
        sweep_local();
    }
}

/// Wakes this thread's asks whose deadline has passed; returns how many.
pub(crate) fn sweep_local() -> usize {
    let now = u64::try_from(epoch().elapsed().as_millis()).unwrap_or(u64::MAX / 2);
    LOCAL_WHEEL
        .try_with(|w| {
            let Ok(mut w) = w.try_borrow_mut() else {
                return 0;
            };
            let Some(w) = w.as_mut() else {
                return 0;
            };
            let mut woken = 0;
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
                if e.active && !e.fired && e.deadline_ms <= now {
                    e.fired = true;
                    e.waker.wake_by_ref();
                    woken += 1;
                }
            }
            woken
        })
        .unwrap_or(0)
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
        let local = LOCAL_WHEEL.try_with(|w| {
            let mut w = w.try_borrow_mut().ok()?;
            let w = w.as_mut()?;
            w.next_gen = w.next_gen.wrapping_add(1);
            let gen = w.next_gen;
            // The same task asking again (a sequential caller): reuse its
            // idle entry, which already holds this waker.
            if let Some(k) = w.idle.take() {
                if let Some(e) = w.slab.get_mut(k) {
                    if !e.active && e.waker.will_wake(waker) {
                        e.deadline_ms = deadline_ms;
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
        if let Ok(Some(t)) = local {
            return t;
        }
        let shard = shard_of_this_thread(self.shards.len());
        let key = self.shards[shard].lock().insert(Waiting {
            deadline_ms,
            waker: waker.clone(),
        });
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
    pub(crate) fn sweep(&self) -> usize {
        let now = self.clock.advance();
        let mut woken = 0;
        for shard in self.shards.iter() {
            let mut s = shard.lock();
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
        woken
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
    fn clock_after_rounds_up() {
        let d = Deadlines::new(1);
        let now = d.clock().now_ms();
        assert!(d.clock().after(Duration::from_micros(10)) > now);
    }
}
