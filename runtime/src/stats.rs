//! Per-service counters, readable from the node handle.

use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters of one service (all its instances).
#[derive(Debug, Default)]
pub(crate) struct ServiceStats {
    pub(crate) failures: AtomicU64,
    pub(crate) restarts: AtomicU64,
    pub(crate) panicked_requests: AtomicU64,
    pub(crate) expired: AtomicU64,
    /// Calls refused by the service's access rules.
    pub(crate) denied: AtomicU64,
    /// Of `denied`, those refused by an instance (taken from its mailbox).
    pub(crate) denied_taken: AtomicU64,
    pub(crate) ask_latency: LatencyHistogram,
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
            denied: self.denied.load(Ordering::Relaxed),
            mailbox_depth: 0,
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
    /// Calls refused by the service's access rules (never handed to a
    /// handler): from this node's callers and from other nodes.
    pub denied: u64,
    /// Messages queued to the live local instances and not yet taken (a
    /// snapshot; what a crashed instance still had queued is lost with it
    /// and not counted). Always 0 unless the node was built with
    /// [`track_mailbox_depth`](crate::NodeBuilder::track_mailbox_depth).
    pub mailbox_depth: u64,
}

/// Upper bounds of the ask latency buckets, in microseconds (the last
/// bucket, beyond them, is unbounded).
pub const LATENCY_BOUNDS_US: &[u64] = &[
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000,
];

/// A lock-free latency histogram with fixed buckets.
#[derive(Debug)]
pub(crate) struct LatencyHistogram {
    counts: Box<[AtomicU64]>,
    sum_us: AtomicU64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self {
            counts: (0..=LATENCY_BOUNDS_US.len())
                .map(|_| AtomicU64::new(0))
                .collect(),
            sum_us: AtomicU64::new(0),
        }
    }
}

impl LatencyHistogram {
    /// Records one observation.
    pub(crate) fn record(&self, d: std::time::Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let i = LATENCY_BOUNDS_US.partition_point(|&b| b < us);
        if let Some(c) = self.counts.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// A copy of the counts.
    pub(crate) fn snapshot(&self) -> LatencySnapshot {
        let counts: Vec<u64> = self
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        LatencySnapshot {
            bounds_us: LATENCY_BOUNDS_US,
            count: counts.iter().sum(),
            counts,
            sum_us: self.sum_us.load(Ordering::Relaxed),
        }
    }
}

/// Latencies of the asks a service served for callers outside this
/// process's own code: JSON calls (the gateway) and asks from other nodes.
/// In-process asks are not timed, to keep the local path free of clock
/// reads.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LatencySnapshot {
    /// Bucket upper bounds in microseconds, ascending.
    pub bounds_us: &'static [u64],
    /// Observations per bucket (not cumulative); one more than
    /// `bounds_us`, the last counting everything beyond the largest bound.
    pub counts: Vec<u64>,
    /// Sum of all observations, in microseconds.
    pub sum_us: u64,
    /// Number of observations.
    pub count: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn latency_histogram_buckets_by_upper_bound() {
        let h = LatencyHistogram::default();
        h.record(Duration::from_micros(50)); // bucket 0 (<= 50)
        h.record(Duration::from_micros(51)); // bucket 1
        h.record(Duration::from_secs(60)); // beyond every bound
        let s = h.snapshot();
        assert_eq!(s.count, 3);
        assert_eq!(s.counts.len(), LATENCY_BOUNDS_US.len() + 1);
        assert_eq!((s.counts[0], s.counts[1]), (1, 1));
        assert_eq!(s.counts.last(), Some(&1));
        assert_eq!(s.sum_us, 50 + 51 + 60_000_000);
    }
}
