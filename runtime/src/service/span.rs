//! The span of a traced call an instance serves: started when the handler
//! runs, recorded in the node's span ring when its reply is produced
//! (docs/live-view.md, "Spans and live reports").

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use super::actor::InstanceShared;
use crate::live::{new_span_id, unix_us};
use crate::metadata::{Metadata, TraceContext};

/// The wire name of `M` as `shared`'s service declares it (its type name
/// when it has none).
pub(super) fn message_name<M: 'static>(shared: &InstanceShared) -> &'static str {
    let entry = &shared.entry;
    entry
        .type_index(std::any::TypeId::of::<M>())
        .and_then(|i| entry.types.get(i))
        .map(|t| t.wire_name.unwrap_or(t.type_name))
        .unwrap_or_else(std::any::type_name::<M>)
}

/// A served span in flight; recorded once, by [`finish`](Self::finish) or,
/// if the reply never comes (a panic, a dropped future), when dropped.
pub(crate) struct ServedSpan {
    shared: Arc<InstanceShared>,
    trace: TraceContext,
    span_id: u64,
    message: &'static str,
    started: Instant,
    start_unix_us: u64,
    done: bool,
}

impl std::fmt::Debug for ServedSpan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServedSpan")
            .field("span_id", &self.span_id)
            .field("message", &self.message)
            .finish()
    }
}

impl ServedSpan {
    /// Starts the span of a traced call: a new span id whose parent is the
    /// caller's, and the metadata the handler sees, whose trace names the
    /// new span as the parent of the calls it makes. `None` for the span
    /// when the node samples this trace out (the id still travels, so the
    /// spans other nodes keep link up).
    pub(super) fn start(
        shared: &Arc<InstanceShared>,
        meta: Metadata,
        trace: TraceContext,
        message: &'static str,
    ) -> (Option<Self>, Metadata) {
        let span_id = new_span_id();
        let meta = meta.with_trace(TraceContext {
            trace_id: trace.trace_id,
            parent_span_id: span_id,
        });
        if !shared.node.live.spans.sampled(trace.trace_id) {
            return (None, meta);
        }
        let span = Self {
            shared: shared.clone(),
            trace,
            span_id,
            message,
            started: Instant::now(),
            start_unix_us: unix_us(SystemTime::now()),
            done: false,
        };
        (Some(span), meta)
    }

    /// Records the span with `outcome`.
    pub(crate) fn finish(mut self, outcome: &'static str) {
        self.record(outcome);
    }

    fn record(&mut self, outcome: &str) {
        if self.done {
            return;
        }
        self.done = true;
        let shared = &self.shared;
        shared.node.live.spans.push_served(
            self.trace.trace_id,
            self.span_id,
            self.trace.parent_span_id,
            shared.entry.name_arc(),
            self.message,
            u32::try_from(shared.id.slot).unwrap_or(u32::MAX),
            self.start_unix_us,
            u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX),
            outcome,
        );
    }
}

impl Drop for ServedSpan {
    fn drop(&mut self) {
        let outcome = if std::thread::panicking() {
            "panicked"
        } else {
            "dropped"
        };
        self.record(outcome);
    }
}

/// Records a zero-length span for a traced call refused before its
/// handler ran (`"denied"`, `"timeout"`).
#[cold]
#[inline(never)]
pub(super) fn refused<M: 'static>(shared: &Arc<InstanceShared>, meta: &Metadata, outcome: &str) {
    let Some(t) = meta.trace() else {
        return;
    };
    let ring = &shared.node.live.spans;
    if !ring.sampled(t.trace_id) {
        return;
    }
    ring.push_served(
        t.trace_id,
        new_span_id(),
        t.parent_span_id,
        shared.entry.name_arc(),
        message_name::<M>(shared),
        u32::try_from(shared.id.slot).unwrap_or(u32::MAX),
        unix_us(SystemTime::now()),
        0,
        outcome,
    );
}
