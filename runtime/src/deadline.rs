//! Ask deadlines without one tokio timer per call.
//!
//! Registering a tokio timer costs about a third of a same-thread actix round
//! trip (../shared/FACTS.md), so msa keeps a coarse clock and a sharded table
//! of waiting asks instead. An ask registers only once its first poll comes
//! back pending (a lock on a per-thread shard and a slab insert), and a
//! sweeper task on the node ticks every [`TICK`], advances the clock and wakes
//! the asks whose deadline has passed. Timeouts therefore fire up to one tick
//! late; they never fire early.

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
    let ms = d.as_millis() + u128::from(d.subsec_nanos() % 1_000_000 != 0);
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

    fn advance(&self) -> u64 {
        let real = u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX / 2);
        self.millis.fetch_max(real, Ordering::Relaxed).max(real)
    }
}

struct Waiting {
    deadline_ms: u64,
    waker: Waker,
}

/// A registration in the table: shard and slab key.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket {
    shard: usize,
    key: usize,
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

    /// Registers a waiting ask.
    pub(crate) fn register(&self, deadline_ms: u64, waker: &Waker) -> Ticket {
        let shard = shard_of_this_thread(self.shards.len());
        let key = self.shards[shard].lock().insert(Waiting {
            deadline_ms,
            waker: waker.clone(),
        });
        Ticket { shard, key }
    }

    /// Updates the waker of a registration if the task changed.
    pub(crate) fn update(&self, t: Ticket, waker: &Waker) {
        if let Some(w) = self.shards[t.shard].lock().get_mut(t.key) {
            if !w.waker.will_wake(waker) {
                w.waker = waker.clone();
            }
        }
    }

    /// Removes a registration (the ask completed or was dropped).
    pub(crate) fn cancel(&self, t: Ticket) {
        let mut s = self.shards[t.shard].lock();
        if s.contains(t.key) {
            s.remove(t.key);
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

    /// Number of asks currently registered (for tests and metrics).
    pub(crate) fn waiting(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
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
    fn clock_after_rounds_up() {
        let d = Deadlines::new(1);
        let now = d.clock().now_ms();
        assert!(d.clock().after(Duration::from_micros(10)) > now);
    }
}
