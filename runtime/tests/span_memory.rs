//! A node's span ring in real heap bytes: filled far past its bound with
//! spans of long, distinct names, the heap the ring holds stays under its
//! bound (default 8 MiB; docs/live-view.md, "Memory bound").
//!
//! Its own test binary: the instrumented global allocator counts every
//! allocation of the process, so nothing else may run beside it.

use std::alloc::System;
use std::time::Duration;

use msa_runtime::live::{SpanKind, DEFAULT_SPAN_BUFFER_BYTES};
use msa_runtime::{Node, SpanRecord};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Bytes allocated and not yet freed since `region` began (a realloc's
/// growth or shrinking is already in `bytes_allocated` or
/// `bytes_deallocated`; `bytes_reallocated` repeats it).
fn held(region: &Region<'_, System>) -> i64 {
    let c = region.change();
    c.bytes_allocated as i64 - c.bytes_deallocated as i64
}

/// What the node's own threads may allocate meanwhile (a timer, a log
/// line): not the ring's, but counted with it.
const SLACK: i64 = 256 * 1024;

#[tokio::test(flavor = "current_thread")]
async fn a_nodes_span_ring_holds_at_most_its_bound_in_heap_bytes() {
    let node = Node::builder()
        .name("span-memory")
        .arbiters(1)
        .span_sample_rate(u64::MAX)
        .start()
        .unwrap();
    assert_eq!(
        node.span_buffer_stats().budget_bytes,
        DEFAULT_SPAN_BUFFER_BYTES as u64
    );
    let bound = DEFAULT_SPAN_BUFFER_BYTES as i64;
    let region = Region::new(GLOBAL);
    let long = "m".repeat(300);
    let n = 120_000u64;
    let mut peak = 0i64;
    for i in 0..n {
        // Distinct names, every one cut to 128 bytes: nothing is shared.
        let span = SpanRecord::new(
            SpanKind::Custom,
            u128::from(i) + 1,
            0,
            format!("service-{i:08}-{long}"),
            format!("message-{i:08}-{long}"),
        )
        .with_outcome(format!("outcome-{i:08}-{long}"));
        node.record_span(span);
        if i % 1_000 == 0 || i == n - 1 {
            let now = held(&region);
            peak = peak.max(now);
            assert!(
                now <= bound + SLACK,
                "{now} bytes held after {i} spans: {:?}",
                node.span_buffer_stats()
            );
        }
    }
    let stats = node.span_buffer_stats();
    assert!(stats.evicted > 0, "the bound was reached: {stats:?}");
    assert_eq!(stats.recorded, n, "{stats:?}");
    // Most of the bound is in use: the ring is not kept far below it.
    let now = held(&region);
    assert!(now > bound / 2, "{now} bytes held: {stats:?}");
    eprintln!(
        "span ring: {} spans held, {} bytes accounted, {now} bytes held on the heap \
         (peak {peak}) for a bound of {bound}",
        stats.spans, stats.bytes
    );
    node.shutdown(Duration::from_secs(5)).await.unwrap();
}
