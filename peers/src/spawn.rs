//! `spawn`: start N actors on one thread, send one message to each, and see
//! what they cost in time and resident memory. msa's are supervised (the N
//! instances of one service); the others are each peer's plain actors.
//!
//! Each peer runs in a fresh process (this executable with `spawn-child`):
//! in one process, memory an earlier run freed stays resident in the
//! allocator and would hide the next run's growth.

use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::Actor;
use anyhow::{bail, Context as _};
use msa_runtime::Node;

use crate::peer::actix_raw::RawSink;
use crate::peer::msa::{spec, Hit, Sink};
use crate::peer::{kameo_peer, ractor_peer, Peer, Tally};
use crate::placement::{current_thread, on_actix_thread};

/// How long the one-message-each phase may take before the run fails.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(120);

/// What one spawn run measured.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SpawnOutcome {
    /// From the first spawn until every actor has handled one message.
    pub(crate) elapsed: Duration,
    /// Resident memory growth per actor, in bytes.
    pub(crate) bytes_per_actor: f64,
}

/// Runs the spawn scenario for `peer` in a child process.
pub(crate) fn in_child(peer: Peer, actors: u64) -> anyhow::Result<SpawnOutcome> {
    let exe = std::env::current_exe().context("locating this executable")?;
    let out = Command::new(exe)
        .args(["spawn-child", peer.name(), &actors.to_string()])
        .output()
        .context("running the spawn child")?;
    if !out.status.success() {
        bail!(
            "the spawn child for {} failed: {}",
            peer.name(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut fields = text.split_whitespace();
    let bytes: f64 = fields
        .next()
        .context("no memory in the child's output")?
        .parse()?;
    let ns: u64 = fields
        .next()
        .context("no time in the child's output")?
        .parse()?;
    Ok(SpawnOutcome {
        elapsed: Duration::from_nanos(ns),
        bytes_per_actor: bytes,
    })
}

/// The child's side: measures and prints `bytes_per_actor nanoseconds`.
pub(crate) fn child(peer: Peer, actors: u64) -> anyhow::Result<()> {
    let before = resident_bytes()?;
    let elapsed = match peer {
        Peer::Msa => on_actix_thread(move || async move {
            let node = Node::builder().name("peers-spawn").start_local()?;
            let probe = Arc::new(AtomicU64::new(0));
            let factory = {
                let probe = probe.clone();
                move || Sink(Tally::with_probe(probe.clone()))
            };
            let start = Instant::now();
            let n = usize::try_from(actors)?;
            let svc = node.spawn(spec("sinks", factory).instances(n)).await?;
            // Round-robin over the live instances: one message each.
            for _ in 0..actors {
                svc.tell(Hit)?;
            }
            wait_for(&probe, actors, start).await?;
            let elapsed = start.elapsed();
            report_memory(before, actors)?;
            node.shutdown(Duration::from_secs(30)).await?;
            Ok(elapsed)
        }),
        Peer::Actix => on_actix_thread(move || async move {
            let probe = Arc::new(AtomicU64::new(0));
            let start = Instant::now();
            let mut addrs = Vec::with_capacity(usize::try_from(actors)?);
            for _ in 0..actors {
                let addr = RawSink(Tally::with_probe(probe.clone())).start();
                addr.do_send(Hit);
                addrs.push(addr);
            }
            wait_for(&probe, actors, start).await?;
            let elapsed = start.elapsed();
            report_memory(before, actors)?;
            Ok(elapsed)
        }),
        Peer::Ractor => current_thread()?.block_on(async move {
            let probe = Arc::new(AtomicU64::new(0));
            let start = Instant::now();
            let mut refs = Vec::with_capacity(usize::try_from(actors)?);
            for _ in 0..actors {
                let sink = ractor_peer::spawn(Tally::with_probe(probe.clone())).await?;
                sink.0.cast(ractor_peer::SinkMsg::Hit)?;
                refs.push(sink);
            }
            wait_for(&probe, actors, start).await?;
            let elapsed = start.elapsed();
            report_memory(before, actors)?;
            Ok(elapsed)
        }),
        Peer::Kameo => current_thread()?.block_on(async move {
            let probe = Arc::new(AtomicU64::new(0));
            let start = Instant::now();
            let mut refs = Vec::with_capacity(usize::try_from(actors)?);
            for _ in 0..actors {
                let sink = kameo_peer::spawn(Tally::with_probe(probe.clone()));
                sink.0.tell(kameo_peer::Hit).await?;
                refs.push(sink);
            }
            wait_for(&probe, actors, start).await?;
            let elapsed = start.elapsed();
            report_memory(before, actors)?;
            Ok(elapsed)
        }),
    }?;
    println!("{}", elapsed.as_nanos());
    Ok(())
}

/// Prints the resident growth per actor (the line's second field).
fn report_memory(before: u64, actors: u64) -> anyhow::Result<()> {
    let after = resident_bytes()?;
    print!("{} ", after.saturating_sub(before) as f64 / actors as f64);
    Ok(())
}

/// Yields until the probe has counted `n` messages (no sleeping: the actors
/// run on this thread between polls).
async fn wait_for(probe: &AtomicU64, n: u64, start: Instant) -> anyhow::Result<()> {
    while probe.load(Ordering::Relaxed) < n {
        if start.elapsed() > DELIVERY_TIMEOUT {
            bail!(
                "only {} of {n} actors handled their message within {DELIVERY_TIMEOUT:?}",
                probe.load(Ordering::Relaxed)
            );
        }
        tokio::task::yield_now().await;
    }
    Ok(())
}

/// Resident set size of this process (`/proc/self/statm`), in bytes.
fn resident_bytes() -> anyhow::Result<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").context("reading /proc/self/statm")?;
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .context("no resident field in /proc/self/statm")?
        .parse()?;
    Ok(pages * 4096)
}
