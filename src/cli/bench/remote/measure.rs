//! The timed loops on the msa side, and what one measurement yields.
//!
//! For `remote_tell` and `remote_ask` both loops run as tasks on the caller
//! node's arbiter, the thread that also runs that node's connection to the
//! sink; for `remote_ask_natural` the ask loop runs on the bench's main
//! thread, outside the natural caller node's arbiters (see the `remote`
//! module).

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _};
use hdrhistogram::Histogram;
use msa_runtime::{CallError, Node, ServiceRef, Topic};

use super::super::services::YIELD_EVERY;
use super::service::{Count, Echo, Hit};

/// Highest latency the histogram tracks exactly (larger values saturate).
const MAX_TRACKED_NS: u64 = 60_000_000_000;

/// An empty latency histogram (1 ns to 60 s, 3 significant digits).
pub(crate) fn latency_histogram() -> anyhow::Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, MAX_TRACKED_NS, 3).context("creating a latency histogram")
}

/// The outcome of one timed run of one side.
#[derive(Debug, Clone)]
pub(crate) struct Measurement {
    /// Messages (or round trips) in the timed region.
    pub(crate) messages: u64,
    /// Wall time of the timed region.
    pub(crate) elapsed: Duration,
    /// Round-trip latencies in nanoseconds, where the scenario has them.
    pub(crate) latency_ns: Option<Histogram<u64>>,
    /// Tells that found the connection's outbound queue full and were sent
    /// again after a yield.
    pub(crate) retries: u64,
}

impl Measurement {
    pub(crate) fn msgs_per_sec(&self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
    }
}

/// `messages` remote tells of [`Hit`], yielding every [`YIELD_EVERY`] (so
/// the connection's writer, on the same thread, sends a batch) and after
/// every `Overloaded` (then the same message is sent again, and counted as
/// a retry). The clock stops when an ask for the sink's count confirms that
/// every message arrived.
pub(crate) async fn tell(sink: ServiceRef, messages: u64) -> anyhow::Result<Measurement> {
    let before = sink.ask(Count).await.context("asking the sink's count")?;
    let mut retries = 0u64;
    let start = Instant::now();
    for i in 1..=messages {
        loop {
            match sink.tell(Hit(i)) {
                Ok(()) => break,
                Err(CallError::Overloaded { .. }) => {
                    retries += 1;
                    tokio::task::yield_now().await;
                }
                Err(e) => bail!("tell {i} of {messages} failed: {e}"),
            }
        }
        if i % YIELD_EVERY == 0 {
            tokio::task::yield_now().await;
        }
    }
    let after = sink.ask(Count).await.context("asking the sink's count")?;
    let elapsed = start.elapsed();
    let counted = after.wrapping_sub(before);
    ensure!(
        counted == messages,
        "the sink counted {counted} messages, {messages} were sent"
    );
    Ok(Measurement {
        messages,
        elapsed,
        latency_ns: None,
        retries,
    })
}

/// `events` [`Hit`]s published to `topic`, whose one subscriber is the
/// sink service on the other process (`msa bench streams`'s `remote1`):
/// the same loop as [`tell`], with the same yields. A publish never fails,
/// but a copy the connection has no room for is dropped and counted in the
/// node's `remote_dropped`: the publish is then made again after a yield and
/// counted as a retry, as [`tell`] does after `Overloaded`. The clock stops
/// when an ask for the sink's count confirms that every event arrived.
pub(crate) async fn publish(
    node: Node,
    topic: Topic<Hit>,
    sink: ServiceRef,
    events: u64,
) -> anyhow::Result<Measurement> {
    let before = sink.ask(Count).await.context("asking the sink's count")?;
    let mut dropped = node.topic_stats().remote_dropped;
    let mut retries = 0u64;
    let start = Instant::now();
    for i in 1..=events {
        loop {
            topic.publish(Hit(i));
            let now = node.topic_stats().remote_dropped;
            if now == dropped {
                break;
            }
            dropped = now;
            retries += 1;
            tokio::task::yield_now().await;
        }
        if i % YIELD_EVERY == 0 {
            tokio::task::yield_now().await;
        }
    }
    let after = sink.ask(Count).await.context("asking the sink's count")?;
    let elapsed = start.elapsed();
    let counted = after.wrapping_sub(before);
    ensure!(
        counted == events,
        "the subscriber counted {counted} events, {events} were published"
    );
    Ok(Measurement {
        messages: events,
        elapsed,
        latency_ns: None,
        retries,
    })
}

/// `asks` sequential [`Echo`] round trips, each one timed.
pub(crate) async fn ask(sink: ServiceRef, asks: u64) -> anyhow::Result<Measurement> {
    let mut hist = latency_histogram()?;
    let start = Instant::now();
    for i in 0..asks {
        let sent = Instant::now();
        let got = sink
            .ask(Echo(i))
            .await
            .with_context(|| format!("ask {} of {asks}", i + 1))?;
        hist.saturating_record(u64::try_from(sent.elapsed().as_nanos()).unwrap_or(u64::MAX));
        ensure!(got == i, "ask {i} was answered with {got}");
    }
    Ok(Measurement {
        messages: asks,
        elapsed: start.elapsed(),
        latency_ns: Some(hist),
        retries: 0,
    })
}
