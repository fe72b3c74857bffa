//! The `--services N` scenario: spawn N services (one instance each) on a
//! node, then time the node's shutdown. A node's root stops its services one
//! after another, last first; this shows whether that stays linear in N.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use msa_runtime::Node;
use serde::Serialize;

use super::super::services::{sink_spec, Sink};
use super::on_own_system;

/// Grace given to the shutdown: far above any time it should take, so the
/// measurement is of the graceful path, never of the kill after the grace.
const GRACE: Duration = Duration::from_secs(600);

/// Services spawned at once (each `spawn` waits for its service to be ready).
const SPAWN_BATCH: usize = 512;

/// One run: `services` services on a node with `arbiters` threads (0: a
/// local node on the driving thread).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ShutdownRun {
    pub(crate) services: usize,
    pub(crate) arbiters: usize,
}

/// What one run measured.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ShutdownOutcome {
    pub(crate) scenario: &'static str,
    pub(crate) services: usize,
    pub(crate) arbiters: usize,
    /// Time to spawn every service (each ready).
    pub(crate) spawn_s: f64,
    /// Time from `shutdown` to its return (every service stopped, threads
    /// joined).
    pub(crate) shutdown_s: f64,
}

impl ShutdownRun {
    /// Runs in this process, on a fresh thread with its own actix System.
    pub(crate) fn run_here(self) -> anyhow::Result<ShutdownOutcome> {
        on_own_system(move || self.drive())
    }

    async fn drive(self) -> anyhow::Result<ShutdownOutcome> {
        let Self { services, arbiters } = self;
        let builder = Node::builder().name("bench-shutdown");
        let node = match arbiters {
            0 => builder.start_local(),
            n => builder.arbiters(n).start(),
        }
        .context("starting the node")?;

        let started = Instant::now();
        let mut next = 0;
        while next < services {
            let end = (next + SPAWN_BATCH).min(services);
            let batch: Vec<_> = (next..end)
                .map(|i| {
                    let node = node.clone();
                    actix_rt::spawn(async move {
                        node.spawn(sink_spec(&format!("s{i}"), Sink::default))
                            .await
                            .map(drop)
                    })
                })
                .collect();
            for h in batch {
                h.await
                    .context("a spawning task panicked")?
                    .context("spawning a service")?;
            }
            next = end;
        }
        let spawn = started.elapsed();

        let started = Instant::now();
        node.shutdown(GRACE)
            .await
            .context("shutting the node down")?;
        let shutdown = started.elapsed();
        Ok(ShutdownOutcome {
            scenario: "services",
            services,
            arbiters,
            spawn_s: spawn.as_secs_f64(),
            shutdown_s: shutdown.as_secs_f64(),
        })
    }
}

/// The table of several runs, with each run's times against the first's.
pub(crate) fn table(runs: &[ShutdownOutcome]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Services: spawn N services (one instance each), then shut the node down; \
         × = time ÷ the first row's time."
    );
    let _ = writeln!(
        out,
        "{:>9}  {:>8}  {:>10}  {:>8}  {:>11}  {:>8}",
        "services", "arbiters", "spawn s", "spawn ×", "shutdown s", "shut ×"
    );
    let first = runs.first();
    for r in runs {
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
        let _ = writeln!(
            out,
            "{:>9}  {:>8}  {:>10.3}  {:>8.1}  {:>11.3}  {:>8.1}",
            r.services,
            r.arbiters,
            r.spawn_s,
            first.map_or(f64::NAN, |f| ratio(r.spawn_s, f.spawn_s)),
            r.shutdown_s,
            first.map_or(f64::NAN, |f| ratio(r.shutdown_s, f.shutdown_s)),
        );
    }
    out
}
