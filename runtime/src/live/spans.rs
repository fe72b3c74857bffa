//! The span ring: a node's bounded buffer of recent spans, and the
//! sampling that keeps it cheap under load (docs/live-view.md, "Spans and
//! live reports").

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::hex;

/// Default bound on one node's span buffer, strings included (8 MiB).
pub const DEFAULT_SPAN_BUFFER_BYTES: usize = 8 * 1024 * 1024;

/// Default number of spans a node records per second before it samples.
pub const DEFAULT_SPAN_SAMPLE_RATE: u64 = 2_000;

/// Names (node, service, message, outcome) are cut to this many bytes
/// (at a character boundary) before they are stored.
pub const MAX_SPAN_NAME_BYTES: usize = 128;

/// What a span stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SpanKind {
    /// The gateway's hop: one HTTP request routed to a service.
    Gateway,
    /// A call a service instance served (from this node or another).
    Served,
    /// A span recorded by the application through
    /// [`Node::record_span`](crate::Node::record_span).
    Custom,
}

/// One span: a traced call as one node saw it. Carries names, nodes,
/// timings and outcomes only: never message contents, identities or tokens.
///
/// In JSON, `trace_id` is 32 lowercase hex digits and `span_id` /
/// `parent_span_id` 16 (JavaScript numbers cannot hold them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SpanRecord {
    /// The trace the span belongs to.
    #[serde(with = "hex::u128_hex")]
    pub trace_id: u128,
    /// This span's id (random, never 0).
    #[serde(with = "hex::u64_hex")]
    pub span_id: u64,
    /// The caller's span id (0: none, a root span).
    #[serde(with = "hex::u64_hex")]
    pub parent_span_id: u64,
    /// The node that recorded the span.
    pub node: String,
    /// The service called (for a gateway hop, the route's service).
    pub service: String,
    /// The message's wire name (or its type name when it has none).
    pub message: String,
    /// The serving instance's slot, when an instance served it.
    pub instance: Option<u32>,
    /// What the span stands for.
    pub kind: SpanKind,
    /// When it started, in microseconds since the Unix epoch.
    pub start_unix_us: u64,
    /// How long until the reply was produced, in microseconds.
    pub duration_us: u64,
    /// `"ok"`, or a short stable error kind: `"timeout"`, `"panicked"`,
    /// `"denied"`, `"not_found"`, `"bad_request"`, `"unauthenticated"`,
    /// `"overloaded"`, `"unavailable"`, `"dropped"`, `"error"`.
    pub outcome: String,
}

impl SpanRecord {
    /// A span of `kind` for `service`/`message` in `trace_id`, with a new
    /// random span id, starting now, lasting 0 µs, outcome `"ok"` and no
    /// node (the recording node fills it in).
    pub fn new(
        kind: SpanKind,
        trace_id: u128,
        parent_span_id: u64,
        service: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            trace_id,
            span_id: new_span_id(),
            parent_span_id,
            node: String::new(),
            service: service.into(),
            message: message.into(),
            instance: None,
            kind,
            start_unix_us: unix_us(SystemTime::now()),
            duration_us: 0,
            outcome: "ok".to_string(),
        }
    }

    /// Sets the span id (the gateway picks its own before it calls, so
    /// that the call's trace context names it as the parent).
    pub fn with_span_id(mut self, span_id: u64) -> Self {
        self.span_id = span_id;
        self
    }

    /// Sets the start time (microseconds since the Unix epoch).
    pub fn with_start_unix_us(mut self, start_unix_us: u64) -> Self {
        self.start_unix_us = start_unix_us;
        self
    }

    /// Sets the duration in microseconds.
    pub fn with_duration_us(mut self, duration_us: u64) -> Self {
        self.duration_us = duration_us;
        self
    }

    /// Sets the outcome (see [`SpanRecord::outcome`]).
    pub fn with_outcome(mut self, outcome: impl Into<String>) -> Self {
        self.outcome = outcome.into();
        self
    }

    /// Sets the serving instance's slot.
    pub fn with_instance(mut self, slot: u32) -> Self {
        self.instance = Some(slot);
        self
    }

    /// The outcome for an HTTP status: 2xx and 3xx `"ok"`, then
    /// `"bad_request"` (400, 413, 415, 422), `"unauthenticated"` (401),
    /// `"denied"` (403), `"not_found"` (404), `"timeout"` (408, 504),
    /// `"overloaded"` (429), `"unavailable"` (502, 503), `"error"` otherwise.
    pub fn outcome_for_http_status(status: u16) -> &'static str {
        match status {
            200..=399 => "ok",
            400 | 413 | 415 | 422 => "bad_request",
            401 => "unauthenticated",
            403 => "denied",
            404 => "not_found",
            408 | 504 => "timeout",
            429 => "overloaded",
            502 | 503 => "unavailable",
            _ => "error",
        }
    }
}

/// Microseconds since the Unix epoch (0 for a clock before it).
pub fn unix_us(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A new random, non-zero span id (thread-local generator seeded from the
/// OS, no lock).
pub fn new_span_id() -> u64 {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = Cell::new(seed());
    }
    STATE.with(|s| loop {
        // splitmix64: fast, and every output of a seeded stream differs.
        let x = s.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        s.set(x);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        if z != 0 {
            return z;
        }
    })
}

fn seed() -> u64 {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        let t = unix_us(SystemTime::now());
        b = t.to_le_bytes();
    }
    u64::from_le_bytes(b)
}

/// The hash that decides whether a trace is sampled: the same on every
/// node, so a trace is kept or dropped whole (at the same level).
fn trace_hash(trace_id: u128) -> u64 {
    let folded = (trace_id as u64) ^ ((trace_id >> 64) as u64);
    let mut z = folded.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A span as the ring stores it: names shared where they can be (a
/// service's name is its registry entry's `Arc<str>`).
#[derive(Debug, Clone)]
struct Stored {
    trace_id: u128,
    span_id: u64,
    parent_span_id: u64,
    start_unix_us: u64,
    duration_us: u64,
    service: Arc<str>,
    message: Arc<str>,
    outcome: Arc<str>,
    instance: Option<u32>,
    kind: SpanKind,
}

/// Bytes a stored name is accounted for: its text and the `Arc` header,
/// as if it were not shared (an upper bound).
fn name_cost(s: &str) -> usize {
    s.len() + 2 * std::mem::size_of::<usize>()
}

impl Stored {
    fn strings_cost(&self) -> usize {
        name_cost(&self.service) + name_cost(&self.message) + name_cost(&self.outcome)
    }
}

/// Cuts `s` to [`MAX_SPAN_NAME_BYTES`] at a character boundary.
fn capped(s: &str) -> &str {
    if s.len() <= MAX_SPAN_NAME_BYTES {
        return s;
    }
    let mut end = MAX_SPAN_NAME_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn capped_arc(s: &str) -> Arc<str> {
    Arc::from(capped(s))
}

/// Counters of a node's span buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SpanBufferStats {
    /// Spans held now.
    pub spans: u64,
    /// Bytes accounted for them: the buffer's slots (its whole capacity)
    /// plus every name in full, as if none were shared.
    pub bytes: u64,
    /// The bound on `bytes`.
    pub budget_bytes: u64,
    /// Spans recorded since the node started.
    pub recorded: u64,
    /// Spans evicted to stay under the bound (the oldest first).
    pub evicted: u64,
    /// Spans not recorded because their trace was sampled out.
    pub sampled_out: u64,
    /// The sampling level now: a trace is kept when its hash is below
    /// 2^64 / 2^level (0: every span is kept).
    pub sample_level: u32,
}

#[derive(Debug)]
struct RingState {
    spans: VecDeque<Stored>,
    strings: usize,
    /// The name cache: the last message and outcome names seen, so that a
    /// span of a busy pair allocates nothing.
    last_message: Option<Arc<str>>,
    last_outcome: Option<Arc<str>>,
}

/// A node's bounded ring of recent spans.
#[derive(Debug)]
pub(crate) struct SpanRing {
    node: String,
    budget: usize,
    max_spans: usize,
    /// Spans per second recorded before sampling starts.
    rate: u64,
    state: parking_lot::Mutex<RingState>,
    recorded: AtomicU64,
    evicted: AtomicU64,
    sampled_out: AtomicU64,
    /// Sampling: the window's start (ms after `born`), the spans offered
    /// in it, and the level in force.
    window_ms: AtomicU64,
    offered: AtomicU64,
    level: std::sync::atomic::AtomicU32,
    born: Instant,
}

const SLOT: usize = std::mem::size_of::<Stored>();

impl SpanRing {
    /// A ring for `node` holding at most `budget` accounted bytes and
    /// recording up to `rate` spans a second before it samples.
    pub(crate) fn new(node: &str, budget: usize, rate: u64) -> Self {
        // Each slot costs its size plus at least three short names.
        let min_span = SLOT + 3 * name_cost("");
        Self {
            node: capped(node).to_string(),
            budget,
            max_spans: (budget / min_span).max(1),
            rate: rate.max(1),
            state: parking_lot::Mutex::new(RingState {
                spans: VecDeque::new(),
                strings: 0,
                last_message: None,
                last_outcome: None,
            }),
            recorded: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
            sampled_out: AtomicU64::new(0),
            window_ms: AtomicU64::new(0),
            offered: AtomicU64::new(0),
            level: std::sync::atomic::AtomicU32::new(0),
            born: Instant::now(),
        }
    }

    /// Whether a span of `trace_id` is to be recorded now: every span while
    /// the node records fewer than `rate` a second; above, only traces
    /// whose hash falls under the level's threshold. The level is set once
    /// a second from the spans offered in the last second (each doubling
    /// over the rate halves the share kept), so a trace kept by the
    /// busiest node is kept by every node that saw it.
    pub(crate) fn sampled(&self, trace_id: u128) -> bool {
        let now_ms = u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX);
        let start = self.window_ms.load(Ordering::Relaxed);
        if now_ms.saturating_sub(start) >= 1000
            && self
                .window_ms
                .compare_exchange(start, now_ms, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            let offered = self.offered.swap(0, Ordering::AcqRel);
            // A window longer than a second (a quiet spell) counts per second.
            let secs = (now_ms - start).div_ceil(1000).max(1);
            let per_sec = offered / secs;
            self.level
                .store(level_for(per_sec, self.rate), Ordering::Relaxed);
        }
        self.offered.fetch_add(1, Ordering::Relaxed);
        let level = self.level.load(Ordering::Relaxed);
        let keep = level == 0 || trace_hash(trace_id) < (u64::MAX >> level.min(63));
        if !keep {
            self.sampled_out.fetch_add(1, Ordering::Relaxed);
        }
        keep
    }

    /// Sets the sampling level directly (tests).
    #[cfg(test)]
    fn force_level(&self, level: u32) {
        self.level.store(level, Ordering::Relaxed);
        self.window_ms.store(
            u64::try_from(self.born.elapsed().as_millis()).unwrap_or(0),
            Ordering::Relaxed,
        );
    }

    /// Records a served span (the caller checked [`sampled`](Self::sampled)).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn push_served(
        &self,
        trace_id: u128,
        span_id: u64,
        parent_span_id: u64,
        service: &Arc<str>,
        message: &str,
        instance: u32,
        start_unix_us: u64,
        duration_us: u64,
        outcome: &str,
    ) {
        let service = if service.len() <= MAX_SPAN_NAME_BYTES {
            service.clone()
        } else {
            capped_arc(service)
        };
        self.push_with(|st| Stored {
            trace_id,
            span_id,
            parent_span_id,
            start_unix_us,
            duration_us,
            service,
            message: cached(&mut st.last_message, message),
            outcome: cached(&mut st.last_outcome, outcome),
            instance: Some(instance),
            kind: SpanKind::Served,
        });
    }

    /// Records a span made elsewhere (the gateway's hop, an application's
    /// span); its node is this ring's node.
    pub(crate) fn push_record(&self, r: &SpanRecord) {
        self.push_with(|st| Stored {
            trace_id: r.trace_id,
            span_id: r.span_id,
            parent_span_id: r.parent_span_id,
            start_unix_us: r.start_unix_us,
            duration_us: r.duration_us,
            service: capped_arc(&r.service),
            message: cached(&mut st.last_message, &r.message),
            outcome: cached(&mut st.last_outcome, &r.outcome),
            instance: r.instance,
            kind: r.kind,
        });
    }

    fn push_with(&self, make: impl FnOnce(&mut RingState) -> Stored) {
        let mut st = self.state.lock();
        let span = make(&mut st);
        st.strings += span.strings_cost();
        if st.spans.len() == st.spans.capacity() && st.spans.len() < self.max_spans {
            let more = st.spans.len().max(64).min(self.max_spans - st.spans.len());
            st.spans.reserve_exact(more);
        }
        if st.spans.len() >= self.max_spans {
            self.evict_one(&mut st);
        }
        st.spans.push_back(span);
        while st.spans.len() > 1 && Self::bytes_of(&st) > self.budget {
            self.evict_one(&mut st);
        }
        drop(st);
        self.recorded.fetch_add(1, Ordering::Relaxed);
    }

    fn evict_one(&self, st: &mut RingState) {
        if let Some(old) = st.spans.pop_front() {
            st.strings -= old.strings_cost();
            self.evicted.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn bytes_of(st: &RingState) -> usize {
        st.spans.capacity() * SLOT + st.strings
    }

    /// The spans started at or after `since_unix_us` whose service is
    /// `service` (any when `None`), oldest first, at most `max` of them
    /// (the newest).
    pub(crate) fn snapshot(
        &self,
        since_unix_us: u64,
        service: Option<&str>,
        max: usize,
    ) -> Vec<SpanRecord> {
        let st = self.state.lock();
        let mut picked: Vec<Stored> = st
            .spans
            .iter()
            .rev()
            .filter(|s| s.start_unix_us >= since_unix_us)
            .filter(|s| service.is_none_or(|want| *s.service == *want))
            .take(max)
            .cloned()
            .collect();
        drop(st);
        picked.reverse();
        picked
            .into_iter()
            .map(|s| SpanRecord {
                trace_id: s.trace_id,
                span_id: s.span_id,
                parent_span_id: s.parent_span_id,
                node: self.node.clone(),
                service: s.service.to_string(),
                message: s.message.to_string(),
                instance: s.instance,
                kind: s.kind,
                start_unix_us: s.start_unix_us,
                duration_us: s.duration_us,
                outcome: s.outcome.to_string(),
            })
            .collect()
    }

    /// The buffer's counters.
    pub(crate) fn stats(&self) -> SpanBufferStats {
        let st = self.state.lock();
        let (spans, bytes) = (st.spans.len(), Self::bytes_of(&st));
        drop(st);
        SpanBufferStats {
            spans: spans as u64,
            bytes: bytes as u64,
            budget_bytes: self.budget as u64,
            recorded: self.recorded.load(Ordering::Relaxed),
            evicted: self.evicted.load(Ordering::Relaxed),
            sampled_out: self.sampled_out.load(Ordering::Relaxed),
            sample_level: self.level.load(Ordering::Relaxed),
        }
    }
}

/// The level for `per_sec` spans offered a second with `rate` allowed: the
/// smallest `k` with `per_sec / 2^k <= rate`.
fn level_for(per_sec: u64, rate: u64) -> u32 {
    let mut k = 0;
    while k < 63 && (per_sec >> k) > rate {
        k += 1;
    }
    k
}

/// `name` (capped) as an `Arc<str>`, reusing the cached one when equal.
fn cached(slot: &mut Option<Arc<str>>, name: &str) -> Arc<str> {
    let name = capped(name);
    if let Some(c) = slot.as_ref() {
        if **c == *name {
            return c.clone();
        }
    }
    let a: Arc<str> = Arc::from(name);
    *slot = Some(a.clone());
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: u64, name: &str) -> SpanRecord {
        SpanRecord::new(SpanKind::Custom, u128::from(i), 0, name, name)
            .with_start_unix_us(i)
            .with_outcome(name)
    }

    #[test]
    fn the_ring_stays_under_its_bound_with_long_names_and_keeps_the_newest() {
        let budget = 256 * 1024;
        let ring = SpanRing::new("n1", budget, u64::MAX);
        let long = "x".repeat(10_000);
        let n = 50_000u64;
        for i in 0..n {
            // Distinct long names: nothing shared, every one capped.
            let name = format!("{i}{long}");
            ring.push_record(&record(i, &name));
            if i % 997 == 0 {
                assert!(ring.stats().bytes <= budget as u64, "over the bound at {i}");
            }
        }
        let stats = ring.stats();
        assert!(stats.bytes <= budget as u64, "{stats:?}");
        assert!(stats.spans > 100 && stats.spans < n, "{stats:?}");
        assert_eq!(stats.evicted + stats.spans, n);
        let kept = ring.snapshot(0, None, usize::MAX);
        assert_eq!(kept.len() as u64, stats.spans);
        // The newest are kept, in order, and names are capped.
        assert_eq!(kept.last().map(|s| s.start_unix_us), Some(n - 1));
        assert!(kept
            .windows(2)
            .all(|w| w[0].start_unix_us + 1 == w[1].start_unix_us));
        assert!(kept.iter().all(|s| s.service.len() <= MAX_SPAN_NAME_BYTES));
    }

    #[test]
    fn the_default_bound_holds_at_eight_mebibytes() {
        let ring = SpanRing::new("n1", DEFAULT_SPAN_BUFFER_BYTES, u64::MAX);
        let long = "y".repeat(500);
        for i in 0..200_000u64 {
            ring.push_record(&record(i, &format!("{}{long}", i % 1000)));
        }
        let stats = ring.stats();
        assert!(stats.bytes <= DEFAULT_SPAN_BUFFER_BYTES as u64, "{stats:?}");
        assert!(stats.evicted > 0, "{stats:?}");
        // Typical names (a few words): how many spans 8 MiB holds.
        let typical = SpanRing::new("n1", DEFAULT_SPAN_BUFFER_BYTES, u64::MAX);
        for i in 0..200_000u64 {
            typical.push_record(&record(i, "inventory.Reserve"));
        }
        eprintln!(
            "slot {SLOT} B; 128-byte names: {} spans in 8 MiB; typical names: {}",
            stats.spans,
            typical.stats().spans
        );
        assert!(typical.stats().bytes <= DEFAULT_SPAN_BUFFER_BYTES as u64);
    }

    #[test]
    fn quiet_keeps_everything_and_load_keeps_traces_whole_by_hash() {
        let ring = SpanRing::new("n1", DEFAULT_SPAN_BUFFER_BYTES, 100);
        // Quiet: under the rate, every trace is kept.
        assert!((0..100u128).all(|t| ring.sampled(t)));
        // Loaded: at level 3 about one trace in 8 is kept, and the same
        // trace gets the same answer every time (on every node).
        ring.force_level(3);
        let kept: Vec<u128> = (0..8_000u128).filter(|&t| ring.sampled(t)).collect();
        assert!(kept.len() > 700 && kept.len() < 1_300, "{}", kept.len());
        assert!(kept.iter().all(|&t| ring.sampled(t)));
        // A lower level (a less busy node) keeps a superset.
        let other = SpanRing::new("n2", DEFAULT_SPAN_BUFFER_BYTES, 100);
        other.force_level(1);
        assert!(kept.iter().all(|&t| other.sampled(t)));
        assert!(ring.stats().sampled_out > 0);
    }

    #[test]
    fn the_level_follows_the_offered_rate() {
        assert_eq!(level_for(50, 100), 0);
        assert_eq!(level_for(100, 100), 0);
        assert_eq!(level_for(101, 100), 1);
        assert_eq!(level_for(1_000, 100), 4);
    }

    #[test]
    fn http_statuses_map_to_stable_outcomes() {
        assert_eq!(SpanRecord::outcome_for_http_status(200), "ok");
        assert_eq!(SpanRecord::outcome_for_http_status(403), "denied");
        assert_eq!(SpanRecord::outcome_for_http_status(504), "timeout");
        assert_eq!(SpanRecord::outcome_for_http_status(500), "error");
    }

    #[test]
    fn span_ids_are_hex_in_json() {
        let r = SpanRecord::new(SpanKind::Served, 0xab, 0x1, "s", "m").with_span_id(0x2);
        let j = serde_json::to_value(&r).unwrap_or_default();
        assert_eq!(j["trace_id"], "000000000000000000000000000000ab");
        assert_eq!(j["span_id"], "0000000000000002");
        assert_eq!(j["kind"], "served");
        let back: SpanRecord = serde_json::from_value(j).expect("round trip");
        assert_eq!(back, r);
    }
}
