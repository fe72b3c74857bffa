//! `ask`: sequential round trips on one thread, each one timed.

use std::time::Instant;

use anyhow::{ensure, Context as _};
use hdrhistogram::Histogram;

use super::{Body, Endpoint, Measurement};

/// Highest latency the histogram tracks exactly (larger values saturate).
const MAX_TRACKED_NS: u64 = 60_000_000_000;

/// `asks` sequential `Bump` round trips; each latency goes into a histogram.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AskLoop {
    pub(crate) asks: u64,
}

/// An empty latency histogram (1 ns to 60 s, 3 significant digits).
pub(crate) fn latency_histogram() -> anyhow::Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, MAX_TRACKED_NS, 3).context("creating a latency histogram")
}

impl Body for AskLoop {
    async fn run<E: Endpoint>(self, sink: E) -> anyhow::Result<Measurement> {
        let mut hist = latency_histogram()?;
        let mut last = 0;
        let start = Instant::now();
        for _ in 0..self.asks {
            let sent = Instant::now();
            last = sink.bump().await?;
            let ns = u64::try_from(sent.elapsed().as_nanos()).unwrap_or(u64::MAX);
            hist.saturating_record(ns);
        }
        let elapsed = start.elapsed();
        ensure!(
            last == self.asks,
            "the last answer was {last}, {} round trips were made",
            self.asks
        );
        Ok(Measurement {
            messages: self.asks,
            elapsed,
            latency_ns: Some(hist),
        })
    }
}
