//! What is measured: the scenarios, the two sides of a comparison, and how
//! one measurement runs.
//!
//! Every compared measurement (tell, ask, fan_in) runs on a fresh thread
//! inside its own actix `System`: the msa side starts a node with
//! `start_local`, so the service instance shares that thread with the
//! sending task, exactly as the raw actor started with `Actor::start()` in
//! the same `System` does. Only then does the clock start.

mod ask;
mod one_way;
mod round_robin;
mod shutdown;
mod spawn;

pub(crate) use ask::AskLoop;
pub(crate) use one_way::OneWay;
pub(crate) use round_robin::{table as round_robin_table, RoundRobin};
pub(crate) use shutdown::{table as shutdown_table, ShutdownRun};
pub(crate) use spawn::{SpawnComparison, SpawnRun};

use std::future::Future;
use std::time::Duration;

use actix::{Actor, Addr};
use anyhow::Context as _;
use hdrhistogram::Histogram;
use msa_runtime::{Node, ServiceRef};

use super::services::{sink_spec, Bump, Count, Hit, RawSink, Sink};

/// How long a node may take to drain at the end of a measurement.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A benchmark scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Scenario {
    /// One-way tells, one sender to one actor on the same thread.
    Tell,
    /// Sequential ask round trips on the same thread, with latency histograms.
    Ask,
    /// One-way tells from K sender tasks to one actor, all on one thread.
    #[value(name = "fan_in", alias = "fan-in")]
    FanIn,
    /// Start N supervised actors, send one message to each, measure RSS
    /// (each side in a fresh process).
    Spawn,
}

impl Scenario {
    /// Every scenario, in the order they run.
    pub(crate) const ALL: [Scenario; 4] = [Self::Spawn, Self::Tell, Self::Ask, Self::FanIn];

    /// The name used in output (`tell`, `ask`, `fan_in`, `spawn`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Tell => "tell",
            Self::Ask => "ask",
            Self::FanIn => "fan_in",
            Self::Spawn => "spawn",
        }
    }
}

/// The two sides of a comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Side {
    /// Through msa: a `ServiceRef` to a service on a local node.
    Msa,
    /// Raw actix: an `Addr` of a plain actor doing the same work.
    Raw,
}

impl Side {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Msa => "msa",
            Self::Raw => "raw actix",
        }
    }
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
}

impl Measurement {
    pub(crate) fn msgs_per_sec(&self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
    }
}

/// One way to talk to a sink, so that each scenario's loop is written once
/// and both sides run the very same code around the call.
pub(crate) trait Endpoint: Clone + 'static {
    /// Sends a [`Hit`] without waiting.
    fn tell(&self) -> anyhow::Result<()>;
    /// Sends a [`Bump`] and waits for the new count.
    fn bump(&self) -> impl Future<Output = anyhow::Result<u64>>;
    /// Asks for the count.
    fn count(&self) -> impl Future<Output = anyhow::Result<u64>>;
}

/// The msa side: a `ServiceRef` to a [`Sink`] service.
#[derive(Debug, Clone)]
pub(crate) struct MsaSink(ServiceRef);

impl Endpoint for MsaSink {
    #[inline]
    fn tell(&self) -> anyhow::Result<()> {
        self.0.tell(Hit).map_err(Into::into)
    }

    #[inline]
    async fn bump(&self) -> anyhow::Result<u64> {
        Ok(self.0.ask(Bump).await?)
    }

    async fn count(&self) -> anyhow::Result<u64> {
        Ok(self.0.ask(Count).await?)
    }
}

/// The raw actix side: the `Addr` of a [`RawSink`].
#[derive(Debug, Clone)]
pub(crate) struct RawActixSink(Addr<RawSink>);

impl Endpoint for RawActixSink {
    #[inline]
    fn tell(&self) -> anyhow::Result<()> {
        self.0.do_send(Hit);
        Ok(())
    }

    #[inline]
    async fn bump(&self) -> anyhow::Result<u64> {
        Ok(self.0.send(Bump).await?)
    }

    async fn count(&self) -> anyhow::Result<u64> {
        Ok(self.0.send(Count).await?)
    }
}

/// The timed part of a compared scenario, generic over the side.
pub(crate) trait Body: Send + 'static {
    /// Runs the timed loop against `sink`, which runs on the caller's thread.
    fn run<E: Endpoint>(self, sink: E) -> impl Future<Output = anyhow::Result<Measurement>>;
}

/// Runs `body` against `side` on a fresh thread with its own actix System
/// (sink and senders on that one thread); setup and teardown are untimed.
pub(crate) fn measure<B: Body>(side: Side, body: B) -> anyhow::Result<Measurement> {
    on_own_system(move || async move {
        match side {
            Side::Msa => {
                let node = Node::builder()
                    .name("bench")
                    .start_local()
                    .context("starting a local msa node")?;
                let svc = node
                    .spawn(sink_spec("sink", Sink::default))
                    .await
                    .context("spawning the sink service")?;
                let out = in_task(body, MsaSink(svc)).await;
                node.shutdown(SHUTDOWN_GRACE)
                    .await
                    .context("shutting the node down")?;
                out
            }
            Side::Raw => in_task(body, RawActixSink(RawSink::default().start())).await,
        }
    })
}

/// Runs the timed body as a task on the thread's `LocalSet`, where a real
/// caller (another actor, a request handler) runs, rather than as the
/// `block_on` future, which makes the runtime poll its I/O driver at every
/// hand-off and would add the same large constant to both sides.
async fn in_task<B: Body, E: Endpoint>(body: B, sink: E) -> anyhow::Result<Measurement> {
    actix_rt::spawn(body.run(sink))
        .await
        .context("the measuring task panicked")?
}

/// Runs `f()` to completion in a new actix System on a new thread.
pub(crate) fn on_own_system<F, Fut, T>(f: F) -> anyhow::Result<T>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = anyhow::Result<T>> + 'static,
    T: Send + 'static,
{
    let thread = std::thread::Builder::new()
        .name("msa-bench".into())
        .spawn(move || {
            pin_to_one_cpu();
            actix::System::new().block_on(f())
        })
        .context("starting a benchmark thread")?;
    match thread.join() {
        Ok(r) => r,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic".into());
            anyhow::bail!("the benchmark thread panicked: {msg}")
        }
    }
}

/// Pins the calling thread to the last CPU, so that both sides of every
/// comparison run on the same core and neither pays for migrations the other
/// escaped. Best effort: where affinity cannot be set, the thread floats.
fn pin_to_one_cpu() {
    use nix::sched::{sched_setaffinity, CpuSet};
    use nix::unistd::Pid;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut set = CpuSet::new();
    if set.set(cpus.saturating_sub(1)).is_ok() {
        if let Err(e) = sched_setaffinity(Pid::from_raw(0), &set) {
            tracing::debug!(error = %e, "could not pin the benchmark thread");
        }
    }
}
