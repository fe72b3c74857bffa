//! The timed loops, written once for every peer: `tell` throughput,
//! sequential `ask` latency, `fan_in` throughput.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context as _};
use hdrhistogram::Histogram;

use crate::peer::Endpoint;

/// A sender of one-way messages yields to the scheduler after this many,
/// so that a sink on the same thread drains its mailbox as it goes (and a
/// peer whose tell never awaits does not first queue everything).
const YIELD_EVERY: u64 = 1024;

/// Round trips made before the clock starts (caches, allocator, lazy init).
const WARM_UP_ASKS: u64 = 1_000;

/// Sender tasks of the fan-in scenario.
pub(crate) const FAN_IN_SENDERS: u64 = 8;

/// A compared scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scenario {
    /// `n` one-way messages from one task, then one round trip that proves
    /// they were all handled.
    Tell { n: u64 },
    /// `n` sequential round trips, each timed.
    Ask { n: u64 },
    /// `n` one-way messages from [`FAN_IN_SENDERS`] tasks to one sink.
    FanIn { n: u64 },
}

/// What one timed run measured.
#[derive(Debug, Clone)]
pub(crate) struct Measurement {
    pub(crate) messages: u64,
    pub(crate) elapsed: Duration,
    /// Round-trip latencies in nanoseconds (the ask scenario only).
    pub(crate) latency_ns: Option<Histogram<u64>>,
}

impl Measurement {
    pub(crate) fn per_sec(&self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
    }

    /// Latency quantile `q` in microseconds, where measured.
    pub(crate) fn quantile_us(&self, q: f64) -> Option<f64> {
        self.latency_ns
            .as_ref()
            .map(|h| h.value_at_quantile(q) as f64 / 1_000.0)
    }
}

impl Scenario {
    /// Runs the scenario against a fresh sink; the caller runs this future as
    /// a task of the placement's runtime.
    pub(crate) async fn run<E: Endpoint>(self, sink: E) -> anyhow::Result<Measurement> {
        for _ in 0..WARM_UP_ASKS {
            sink.bump().await?;
        }
        match self {
            Self::Tell { n } => {
                let start = Instant::now();
                send_tells(&sink, n).await?;
                let last = sink.bump().await?;
                let elapsed = start.elapsed();
                ensure!(
                    last == WARM_UP_ASKS + n + 1,
                    "the sink counted {last}, expected {}",
                    WARM_UP_ASKS + n + 1
                );
                Ok(Measurement {
                    messages: n,
                    elapsed,
                    latency_ns: None,
                })
            }
            Self::Ask { n } => {
                let mut hist = Histogram::new_with_bounds(1, 60_000_000_000, 3)
                    .context("creating a latency histogram")?;
                let start = Instant::now();
                let mut last = 0;
                for _ in 0..n {
                    let sent = Instant::now();
                    last = sink.bump().await?;
                    hist.saturating_record(
                        u64::try_from(sent.elapsed().as_nanos()).unwrap_or(u64::MAX),
                    );
                }
                let elapsed = start.elapsed();
                ensure!(last == WARM_UP_ASKS + n, "the sink counted {last}");
                Ok(Measurement {
                    messages: n,
                    elapsed,
                    latency_ns: Some(hist),
                })
            }
            Self::FanIn { n } => {
                let per_sender = n / FAN_IN_SENDERS;
                let start = Instant::now();
                let senders: Vec<_> = (0..FAN_IN_SENDERS)
                    .map(|_| {
                        let sink = sink.clone();
                        tokio::spawn(async move { send_tells(&sink, per_sender).await })
                    })
                    .collect();
                for s in senders {
                    s.await.context("a fan-in sender panicked")??;
                }
                let last = sink.bump().await?;
                let elapsed = start.elapsed();
                let sent = per_sender * FAN_IN_SENDERS;
                ensure!(
                    last == WARM_UP_ASKS + sent + 1,
                    "the sink counted {last}, expected {}",
                    WARM_UP_ASKS + sent + 1
                );
                Ok(Measurement {
                    messages: sent,
                    elapsed,
                    latency_ns: None,
                })
            }
        }
    }
}

async fn send_tells<E: Endpoint>(sink: &E, n: u64) -> anyhow::Result<()> {
    for i in 0..n {
        sink.tell().await?;
        if i % YIELD_EVERY == YIELD_EVERY - 1 {
            tokio::task::yield_now().await;
        }
    }
    Ok(())
}
