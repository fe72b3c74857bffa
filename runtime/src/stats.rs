//! Per-service counters, readable from the node handle.

use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters of one service (all its instances).
#[derive(Debug, Default)]
pub(crate) struct ServiceStats {
    pub(crate) failures: AtomicU64,
    pub(crate) restarts: AtomicU64,
    pub(crate) panicked_requests: AtomicU64,
    pub(crate) expired: AtomicU64,
}

impl ServiceStats {
    #[inline]
    pub(crate) fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            messages: 0,
            failures: self.failures.load(Ordering::Relaxed),
            restarts: self.restarts.load(Ordering::Relaxed),
            panicked_requests: self.panicked_requests.load(Ordering::Relaxed),
            expired: self.expired.load(Ordering::Relaxed),
        }
    }
}

/// A point-in-time copy of a service's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct StatsSnapshot {
    /// Messages handed to a handler.
    pub messages: u64,
    /// Instance failures: panics in handlers, in `started`, or in the factory.
    pub failures: u64,
    /// Instances restarted by their supervisor.
    pub restarts: u64,
    /// Requests whose detached handler future panicked (the instance lived on).
    pub panicked_requests: u64,
    /// Messages dropped unhandled because their deadline had passed when dequeued.
    pub expired: u64,
}
