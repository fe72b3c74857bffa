//! The live view's data: each node's bounded ring of recent spans, its
//! recent restarts, and the reports a node gives of itself and gathers
//! from the cluster (docs/live-view.md, "Spans and live reports").
//!
//! Layer: above `remote` (a report holds the cluster status and each
//! connection's counters), below `service` (an instance records the spans
//! of the traced calls it serves). Remoting carries reports as JSON bytes
//! through its `LiveSource` trait, so it does not import this module.

use std::collections::VecDeque;
use std::time::{Instant, SystemTime};

mod hex;
mod report;
mod spans;

pub(crate) use report::percentile;
pub use report::{
    ClusterLive, ConnectionLive, LiveQuery, LiveReport, PeerLive, RestartLive, ServiceLive,
    SupervisorLive, DEFAULT_LIVE_MAX_SPANS, DEFAULT_LIVE_PEER_TIMEOUT_MS,
};
pub(crate) use spans::SpanRing;
pub use spans::{
    new_span_id, unix_us, SpanBufferStats, SpanKind, SpanRecord, DEFAULT_SPAN_BUFFER_BYTES,
    DEFAULT_SPAN_SAMPLE_RATE, MAX_SPAN_NAME_BYTES,
};

/// Restarts a node keeps for its report.
const MAX_RESTARTS: usize = 64;

/// A node's live state: when it started, its spans, its latest restarts.
#[derive(Debug)]
pub(crate) struct NodeLive {
    pub(crate) started: Instant,
    pub(crate) spans: SpanRing,
    restarts: parking_lot::Mutex<VecDeque<RestartLive>>,
}

impl NodeLive {
    pub(crate) fn new(node: &str, span_budget: usize, sample_rate: u64) -> Self {
        Self {
            started: Instant::now(),
            spans: SpanRing::new(node, span_budget, sample_rate),
            restarts: parking_lot::Mutex::new(VecDeque::new()),
        }
    }

    /// Notes a restart a supervisor decided (names capped like span names).
    pub(crate) fn restarted(&self, supervisor: &str, child: &str, reason: &str) {
        let cap = |s: &str| {
            let mut end = s.len().min(512);
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            s[..end].to_string()
        };
        let r = RestartLive {
            supervisor: cap(supervisor),
            child: cap(child),
            reason: cap(reason),
            at_unix_ms: unix_us(SystemTime::now()) / 1000,
        };
        let mut q = self.restarts.lock();
        if q.len() >= MAX_RESTARTS {
            q.pop_front();
        }
        q.push_back(r);
    }

    /// The latest restarts, oldest first.
    pub(crate) fn restarts(&self) -> Vec<RestartLive> {
        self.restarts.lock().iter().cloned().collect()
    }
}
