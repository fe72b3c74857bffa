//! The `--instances N` scenario: one sender round-robins one-way tells over
//! N instances of one service (msa) or over N plain actors' addresses (raw
//! actix, the same loop over a `Vec<Addr>`), all on one thread.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::Actor;
use anyhow::{ensure, Context as _};
use msa_runtime::Node;
use serde::Serialize;

use super::super::report::median;
use super::super::services::{sink_spec, Hit, RawSink, Sink, Tally, YIELD_EVERY};
use super::{on_own_system, Side, SHUTDOWN_GRACE};

/// How long the last tells may take to be handled.
const DRAIN_BOUND: Duration = Duration::from_secs(120);

/// One measurement: `messages` tells round-robin over `instances`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RoundRobin {
    pub(crate) messages: u64,
    pub(crate) instances: usize,
}

/// The medians of one instance count.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RoundRobinOutcome {
    pub(crate) scenario: &'static str,
    pub(crate) instances: usize,
    pub(crate) messages: u64,
    pub(crate) rounds: usize,
    pub(crate) msa_msgs_per_sec: f64,
    pub(crate) raw_msgs_per_sec: f64,
    pub(crate) ratio: f64,
}

impl RoundRobin {
    /// Interleaved rounds (msa, then raw actix), each on a fresh thread
    /// and System; the median of each side.
    pub(crate) fn compare(self, rounds: u32) -> anyhow::Result<RoundRobinOutcome> {
        let mut msa = Vec::new();
        let mut raw = Vec::new();
        for _ in 0..rounds {
            msa.push(self.measure(Side::Msa)?);
            raw.push(self.measure(Side::Raw)?);
        }
        let (m, r) = (median(&msa), median(&raw));
        Ok(RoundRobinOutcome {
            scenario: "round_robin",
            instances: self.instances,
            messages: self.messages,
            rounds: msa.len(),
            msa_msgs_per_sec: m,
            raw_msgs_per_sec: r,
            ratio: m / r,
        })
    }

    /// Tells per second of one side, setup untimed.
    fn measure(self, side: Side) -> anyhow::Result<f64> {
        let Self {
            messages,
            instances,
        } = self;
        on_own_system(move || async move {
            let probe = Arc::new(AtomicU64::new(0));
            let factory = {
                let probe = probe.clone();
                move || Sink(Tally::with_probe(probe.clone()))
            };
            let elapsed = match side {
                Side::Msa => {
                    let node = Node::builder()
                        .name("bench-rr")
                        .start_local()
                        .context("starting a local msa node")?;
                    let svc = node
                        .spawn(sink_spec("rr", factory).instances(instances))
                        .await
                        .context("spawning the instances")?;
                    let t = timed(&probe, messages, || svc.tell(Hit).map_err(Into::into)).await;
                    node.shutdown(SHUTDOWN_GRACE)
                        .await
                        .context("shutting the node down")?;
                    t?
                }
                Side::Raw => {
                    let addrs: Vec<_> = (0..instances)
                        .map(|_| RawSink(Tally::with_probe(probe.clone())).start())
                        .collect();
                    let mut next = 0usize;
                    timed(&probe, messages, || {
                        addrs[next].do_send(Hit);
                        next += 1;
                        if next == addrs.len() {
                            next = 0;
                        }
                        Ok(())
                    })
                    .await?
                }
            };
            Ok(messages as f64 / elapsed.as_secs_f64().max(f64::MIN_POSITIVE))
        })
    }
}

/// Sends `messages` with `tell` (yielding every [`YIELD_EVERY`], as the
/// other one-way scenarios do), then waits until `probe` counted them all.
async fn timed(
    probe: &AtomicU64,
    messages: u64,
    mut tell: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    for i in 1..=messages {
        tell()?;
        if i % YIELD_EVERY == 0 {
            tokio::task::yield_now().await;
        }
    }
    while probe.load(Ordering::Relaxed) < messages {
        ensure!(
            start.elapsed() < DRAIN_BOUND,
            "only {} of {messages} tells handled",
            probe.load(Ordering::Relaxed)
        );
        tokio::task::yield_now().await;
    }
    Ok(start.elapsed())
}

/// The table of several instance counts.
pub(crate) fn table(runs: &[RoundRobinOutcome]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Round-robin tells over N instances, one thread; median of {} interleaved round(s); \
         ratio = msa ÷ raw actix (target ≥ 0.8).",
        runs.first().map_or(0, |r| r.rounds)
    );
    let _ = writeln!(
        out,
        "{:>9}  {:>10}  {:>14}  {:>14}  {:>6}",
        "instances", "messages", "msa msg/s", "raw msg/s", "ratio"
    );
    for r in runs {
        let _ = writeln!(
            out,
            "{:>9}  {:>10}  {:>14.0}  {:>14.0}  {:>6.2}",
            r.instances, r.messages, r.msa_msgs_per_sec, r.raw_msgs_per_sec, r.ratio
        );
    }
    out
}
