//! `spawn`: start N actors, send one message to each, and see what they cost
//! in time and resident memory. On the msa side they are supervised: the
//! instances of one service, all children of that service's supervisor. On
//! the raw side they are plain actix actors doing the same work.
//!
//! Each side runs in a fresh process (this executable, with the hidden
//! `--spawn-only` flag): in one process, memory that an earlier run freed
//! stays resident in the allocator and would hide the next run's growth.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{Actor, Addr, Arbiter};
use anyhow::{bail, Context as _};
use msa_runtime::Node;
use serde::{Deserialize, Serialize};

use super::super::rss;
use super::super::services::{sink_spec, Hit, RawSink, Sink, Tally};
use super::{on_own_system, Side, SHUTDOWN_GRACE};

/// How long the one-message-each phase may take before the run fails.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(60);

/// How often the driver checks the probe while messages are delivered.
const POLL_INTERVAL: Duration = Duration::from_millis(1);

/// Both sides of the spawn scenario: each side's round with the median
/// total (spawn plus delivery), and every round's total.
#[derive(Debug, Clone)]
pub(crate) struct SpawnComparison {
    pub(crate) msa: SpawnOutcome,
    pub(crate) raw: SpawnOutcome,
    /// msa's total of each round, in the order run.
    pub(crate) msa_rounds: Vec<Duration>,
    /// Raw actix's total of each round, in the order run.
    pub(crate) raw_rounds: Vec<Duration>,
}

impl SpawnComparison {
    /// The comparison of rounds run alternately (msa, raw, msa, ...):
    /// each side's median round. One round per side made the time ratio
    /// the ratio of two single samples, each of which moved up to 1.4–1.7×
    /// between runs on a shared 2-vCPU machine (issue 12). `None` when a
    /// side has no round.
    pub(crate) fn from_rounds(msa: Vec<SpawnOutcome>, raw: Vec<SpawnOutcome>) -> Option<Self> {
        let totals = |v: &[SpawnOutcome]| v.iter().map(SpawnOutcome::total).collect();
        let (msa_rounds, raw_rounds) = (totals(&msa), totals(&raw));
        Some(Self {
            msa: median_round(msa)?,
            raw: median_round(raw)?,
            msa_rounds,
            raw_rounds,
        })
    }
}

/// The round with the median total (the upper one of an even count).
fn median_round(mut rounds: Vec<SpawnOutcome>) -> Option<SpawnOutcome> {
    rounds.sort_by_key(SpawnOutcome::total);
    let mid = rounds.len() / 2;
    rounds.into_iter().nth(mid)
}

/// The parameters of a spawn run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SpawnRun {
    pub(crate) side: Side,
    pub(crate) actors: usize,
    /// Arbiter threads the actors run on; 0 runs them on the driver's own
    /// thread (for msa, a node started with `start_local`).
    pub(crate) arbiters: usize,
}

/// What a spawn run measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SpawnOutcome {
    pub(crate) actors: usize,
    pub(crate) arbiters: usize,
    /// msa: from `node.spawn` until every instance has run `started`.
    /// Raw actix: until every `start_in_arbiter` call has returned.
    pub(crate) spawn: Duration,
    /// From the first message until the probe counted one per actor.
    pub(crate) deliver: Duration,
    /// Stopping every actor (msa: node shutdown) and joining threads.
    pub(crate) shutdown: Duration,
    pub(crate) rss_before_kib: u64,
    pub(crate) rss_after_kib: u64,
    pub(crate) peak_rss_kib: u64,
}

impl SpawnOutcome {
    /// Spawn and delivery together (comparable between the sides).
    pub(crate) fn total(&self) -> Duration {
        self.spawn + self.deliver
    }

    /// (RSS after spawn and messages − RSS before) / actors, in KiB.
    pub(crate) fn kib_per_actor(&self) -> f64 {
        self.rss_after_kib.saturating_sub(self.rss_before_kib) as f64 / self.actors.max(1) as f64
    }

    /// Where the actors ran, for the output.
    pub(crate) fn placement(&self) -> String {
        match self.arbiters {
            0 => "same-thread (local node)".into(),
            1 => "1 arbiter (sender on another thread)".into(),
            n => format!("{n} arbiters (sender on another thread)"),
        }
    }
}

impl SpawnRun {
    /// Runs the scenario in a fresh child process and reads its outcome.
    pub(crate) fn run_in_child(self) -> anyhow::Result<SpawnOutcome> {
        let exe = std::env::current_exe().context("finding this executable")?;
        let side = match self.side {
            Side::Msa => "msa",
            Side::Raw => "raw",
        };
        let out = Command::new(&exe)
            .args(["bench", "local", "--spawn-only", side])
            .args(["--actors", &self.actors.to_string()])
            .args(["--arbiters", &self.arbiters.to_string()])
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .with_context(|| format!("running {}", exe.display()))?;
        if !out.status.success() {
            bail!("the spawn run ({side}) failed: {}", out.status);
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let line = stdout.lines().last().unwrap_or_default();
        serde_json::from_str(line)
            .with_context(|| format!("reading the spawn run's outcome from {line:?}"))
    }

    /// Runs the scenario in this process, on its own driver thread.
    pub(crate) fn run_here(self) -> anyhow::Result<SpawnOutcome> {
        on_own_system(move || async move {
            match self.side {
                Side::Msa => self.drive_msa().await,
                Side::Raw => self.drive_raw().await,
            }
        })
    }

    async fn drive_msa(self) -> anyhow::Result<SpawnOutcome> {
        let Self {
            actors, arbiters, ..
        } = self;
        let rss_before_kib = rss::resident_kib()?;
        let builder = Node::builder().name("bench-spawn");
        let node = match arbiters {
            0 => builder.start_local(),
            n => builder.arbiters(n).start(),
        }
        .context("starting the node")?;

        let probe = Arc::new(AtomicU64::new(0));
        let factory = {
            let probe = probe.clone();
            move || Sink(Tally::with_probe(probe.clone()))
        };
        let started = Instant::now();
        let svc = node
            .spawn(sink_spec("sinks", factory).instances(actors))
            .await
            .context("spawning the sink instances")?;
        let spawn = started.elapsed();

        // Round-robin over every live instance: one message each.
        let started = Instant::now();
        for _ in 0..actors {
            svc.tell(Hit).context("telling an instance")?;
        }
        wait_for(&probe, actors as u64, started).await?;
        let deliver = started.elapsed();
        let rss_after_kib = rss::resident_kib()?;
        let peak_rss_kib = rss::peak_kib()?;

        let started = Instant::now();
        node.shutdown(SHUTDOWN_GRACE)
            .await
            .context("shutting the node down")?;
        Ok(SpawnOutcome {
            actors,
            arbiters,
            spawn,
            deliver,
            shutdown: started.elapsed(),
            rss_before_kib,
            rss_after_kib,
            peak_rss_kib,
        })
    }

    async fn drive_raw(self) -> anyhow::Result<SpawnOutcome> {
        let Self {
            actors, arbiters, ..
        } = self;
        let rss_before_kib = rss::resident_kib()?;
        let pool: Vec<Arbiter> = (0..arbiters).map(|_| Arbiter::new()).collect();
        let probe = Arc::new(AtomicU64::new(0));

        let started = Instant::now();
        let addrs: Vec<Addr<RawSink>> = (0..actors)
            .map(|i| {
                let probe = probe.clone();
                let make = move || RawSink(Tally::with_probe(probe));
                match pool.get(i % arbiters.max(1)) {
                    Some(a) => RawSink::start_in_arbiter(&a.handle(), move |_| make()),
                    None => make().start(),
                }
            })
            .collect();
        let spawn = started.elapsed();

        let started = Instant::now();
        for a in &addrs {
            a.do_send(Hit);
        }
        wait_for(&probe, actors as u64, started).await?;
        let deliver = started.elapsed();
        let rss_after_kib = rss::resident_kib()?;
        let peak_rss_kib = rss::peak_kib()?;

        let started = Instant::now();
        drop(addrs);
        for a in pool {
            a.stop();
            if a.join().is_err() {
                bail!("an arbiter thread panicked");
            }
        }
        Ok(SpawnOutcome {
            actors,
            arbiters,
            spawn,
            deliver,
            shutdown: started.elapsed(),
            rss_before_kib,
            rss_after_kib,
            peak_rss_kib,
        })
    }
}

/// Waits (bounded) until `probe` reaches `want`.
async fn wait_for(probe: &AtomicU64, want: u64, since: Instant) -> anyhow::Result<()> {
    while probe.load(Ordering::Relaxed) < want {
        if since.elapsed() > DELIVERY_TIMEOUT {
            bail!(
                "only {} of {want} messages were handled within {DELIVERY_TIMEOUT:?}",
                probe.load(Ordering::Relaxed)
            );
        }
        actix_rt::time::sleep(POLL_INTERVAL).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{SpawnComparison, SpawnOutcome};

    fn outcome(total_ms: u64, kib_after: u64) -> SpawnOutcome {
        SpawnOutcome {
            actors: 10,
            arbiters: 2,
            spawn: Duration::from_millis(total_ms),
            deliver: Duration::ZERO,
            shutdown: Duration::ZERO,
            rss_before_kib: 0,
            rss_after_kib: kib_after,
            peak_rss_kib: kib_after,
        }
    }

    /// Each side's figures come from its median round by total time (one
    /// sample per side made the ratio as noisy as the noisier sample), and
    /// every round's total is kept in the order run.
    #[test]
    fn a_spawn_comparison_takes_each_sides_median_round() {
        let msa = vec![outcome(30, 3), outcome(10, 1), outcome(20, 2)];
        let raw = vec![outcome(5, 7), outcome(9, 9), outcome(7, 8)];
        let c = SpawnComparison::from_rounds(msa, raw).expect("both sides ran");
        assert_eq!(c.msa.total(), Duration::from_millis(20));
        assert_eq!(c.msa.rss_after_kib, 2);
        assert_eq!(c.raw.total(), Duration::from_millis(7));
        assert_eq!(c.raw.rss_after_kib, 8);
        let ms = |v: &[Duration]| v.iter().map(Duration::as_millis).collect::<Vec<_>>();
        assert_eq!(ms(&c.msa_rounds), [30, 10, 20]);
        assert_eq!(ms(&c.raw_rounds), [5, 9, 7]);
        assert!(SpawnComparison::from_rounds(Vec::new(), vec![outcome(1, 1)]).is_none());
    }
}
