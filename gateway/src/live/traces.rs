//! The recent traces the page lists: spans gathered from every node,
//! merged by trace id and kept across gathers, the newest [`MAX_TRACES`].
//!
//! Each gather asks only for spans started since the previous gather (less
//! [`LATE_US`], for spans whose reply came later than their start), so a
//! tick moves only new spans; a span already held is not added twice.

use std::collections::{BTreeMap, HashSet};

use msa_runtime::SpanRecord;

use super::view::{SpanView, TraceView};

/// Traces kept and sent.
pub(crate) const MAX_TRACES: usize = 50;

/// Spans kept per trace (a runaway trace cannot grow a snapshot unbounded).
pub(crate) const MAX_SPANS_PER_TRACE: usize = 100;

/// How far back before the previous gather a gather asks, in µs: a span
/// is recorded when its reply is produced, with its start time, so a call
/// that took longer than this and ended between two gathers is missed.
pub(crate) const LATE_US: u64 = 2_000_000;

/// One trace's spans.
#[derive(Debug, Default)]
struct Held {
    spans: Vec<SpanRecord>,
    ids: HashSet<u64>,
}

/// The traces held between gathers.
#[derive(Debug, Default)]
pub(crate) struct TraceWindow {
    traces: BTreeMap<u128, Held>,
    /// When the previous gather started (µs since the Unix epoch).
    last_gather_us: u64,
}

impl TraceWindow {
    /// The `since` a gather starting at `now_us` asks for.
    pub(crate) fn since(&self, now_us: u64) -> u64 {
        let since = self.last_gather_us.saturating_sub(LATE_US);
        debug_assert!(since <= now_us);
        since
    }

    /// Adds the spans of a gather that started at `now_us`, then keeps
    /// the newest [`MAX_TRACES`] traces (by their first span's start).
    pub(crate) fn merge<'a>(
        &mut self,
        spans: impl IntoIterator<Item = &'a SpanRecord>,
        now_us: u64,
    ) {
        self.last_gather_us = now_us;
        for s in spans {
            let t = self.traces.entry(s.trace_id).or_default();
            if t.spans.len() < MAX_SPANS_PER_TRACE && t.ids.insert(s.span_id) {
                t.spans.push(s.clone());
            }
        }
        if self.traces.len() > MAX_TRACES {
            let mut starts: Vec<(u64, u128)> = self
                .traces
                .iter()
                .map(|(id, t)| (first_start(&t.spans), *id))
                .collect();
            starts.sort_unstable();
            let excess = starts.len() - MAX_TRACES;
            for (_, id) in starts.into_iter().take(excess) {
                self.traces.remove(&id);
            }
        }
    }

    /// The traces held, newest first.
    pub(crate) fn views(&self) -> Vec<TraceView> {
        let mut v: Vec<TraceView> = self
            .traces
            .iter()
            .map(|(id, t)| trace_view(*id, &t.spans))
            .collect();
        v.sort_by(|a, b| {
            b.start_us
                .cmp(&a.start_us)
                .then(a.trace_id.cmp(&b.trace_id))
        });
        v
    }
}

fn first_start(spans: &[SpanRecord]) -> u64 {
    spans.iter().map(|s| s.start_unix_us).min().unwrap_or(0)
}

fn trace_view(trace_id: u128, spans: &[SpanRecord]) -> TraceView {
    let mut spans: Vec<&SpanRecord> = spans.iter().collect();
    spans.sort_by_key(|s| (s.start_unix_us, s.span_id));
    let start = spans.first().map_or(0, |s| s.start_unix_us);
    let end = spans
        .iter()
        .map(|s| s.start_unix_us + s.duration_us)
        .max()
        .unwrap_or(start);
    let ids: HashSet<u64> = spans.iter().map(|s| s.span_id).collect();
    // The root: the first span whose parent is not in the trace.
    let root = spans
        .iter()
        .find(|s| s.parent_span_id == 0 || !ids.contains(&s.parent_span_id))
        .or(spans.first())
        .map(|s| format!("{} {}", s.service, s.message))
        .unwrap_or_default();
    let mut nodes: Vec<String> = spans.iter().map(|s| s.node.clone()).collect();
    nodes.sort();
    nodes.dedup();
    let mut services: Vec<String> = Vec::new();
    for s in &spans {
        if !services.contains(&s.service) {
            services.push(s.service.clone());
        }
    }
    let failed = spans.iter().any(|s| s.outcome != "ok");
    TraceView {
        trace_id: format!("{trace_id:032x}"),
        root,
        start_us: start,
        duration_us: end - start,
        status: if failed { "error" } else { "ok" }.into(),
        nodes,
        services,
        spans: spans
            .into_iter()
            .map(|s| SpanView {
                span_id: format!("{:016x}", s.span_id),
                parent_id: (s.parent_span_id != 0).then(|| format!("{:016x}", s.parent_span_id)),
                node: s.node.clone(),
                service: s.service.clone(),
                instance: s.instance.map(u64::from),
                name: s.message.clone(),
                kind: serde_json::to_value(s.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                start_us: s.start_unix_us,
                duration_us: s.duration_us,
                outcome: s.outcome.clone(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use msa_runtime::SpanKind;

    fn span(trace: u128, parent: u64, node: &str, service: &str, start: u64) -> SpanRecord {
        let mut s = SpanRecord::new(SpanKind::Served, trace, parent, service, "m.M")
            .with_start_unix_us(start);
        s.node = node.into();
        s
    }

    #[test]
    fn spans_merge_by_trace_once_each_and_the_newest_traces_are_kept() {
        let mut w = TraceWindow::default();
        let root = span(7, 0, "n1", "orders", 1_000);
        let mut child = span(7, root.span_id, "n2", "inventory", 1_100);
        child.duration_us = 400;
        child.outcome = "timeout".into();
        w.merge([&root, &child], 2_000);
        w.merge([&child], 3_000);
        let v = w.views();
        assert_eq!(v.len(), 1);
        let t = &v[0];
        assert_eq!(t.trace_id, format!("{:032x}", 7));
        assert_eq!(t.spans.len(), 2, "a span merged twice is held once");
        assert_eq!(t.nodes, ["n1", "n2"]);
        assert_eq!(t.services, ["orders", "inventory"]);
        assert_eq!(t.status, "error");
        assert_eq!(t.root, "orders m.M");
        assert_eq!(t.duration_us, 500);
        assert_eq!(
            t.spans[1].parent_id.as_deref(),
            Some(t.spans[0].span_id.as_str())
        );
        assert_eq!(t.spans[0].parent_id, None);
        assert_eq!(t.spans[0].span_id.len(), 16);
        assert_eq!(t.spans[1].kind, "served");

        for i in 0..(MAX_TRACES as u128 + 10) {
            w.merge([&span(100 + i, 0, "n1", "s", 10_000 + i as u64)], 20_000);
        }
        let v = w.views();
        assert_eq!(v.len(), MAX_TRACES);
        assert_eq!(
            v[0].trace_id,
            format!("{:032x}", 100 + MAX_TRACES as u128 + 9)
        );
        assert!(v.iter().all(|t| t.trace_id != format!("{:032x}", 7)));
    }

    #[test]
    fn a_gather_asks_from_a_while_before_the_previous_one() {
        let mut w = TraceWindow::default();
        assert_eq!(w.since(5), 0);
        w.merge([], 100_000_000);
        assert_eq!(w.since(100_250_000), 100_000_000 - LATE_US);
    }
}
