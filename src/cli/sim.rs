//! `msa sim`: the deterministic simulation of a whole cluster
//! (`msa::sim`, docs/RELIABILITY.md "Deterministic simulation").
//!
//! ```text
//! $ msa sim --seed 42
//! seed=42 nodes=5 events=31877 faults=13 heal=300ms simulated=38.3s asks=NoInstance:95,Reply:402,Timeout:12 digest=5c1f… result=pass
//! $ msa sim --seeds 200
//! seeds=200 from=0 failed=0 worst_heal=2.1s (seed 17) wall=41.2s
//! ```
//!
//! A failing seed is printed with its violations and the command that
//! replays it; the exit status is then non-zero.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;
use msa::sim::{run as simulate, SimConfig, SimReport};

/// Options of `msa sim`.
#[derive(Debug, Args)]
pub(crate) struct SimArgs {
    /// Run (or replay) this one seed
    #[arg(long, conflicts_with = "seeds")]
    seed: Option<u64>,
    /// Run this many seeds (from `--from`)
    #[arg(long)]
    seeds: Option<u64>,
    /// The first seed of `--seeds`
    #[arg(long, default_value_t = 0, requires = "seeds")]
    from: u64,
    /// The cluster size, 3 to 7 (default: picked by each seed)
    #[arg(long)]
    nodes: Option<usize>,
    /// Print the whole event log of `--seed`
    #[arg(long)]
    verbose: bool,
}

/// Runs `msa sim`.
pub(crate) fn run(args: SimArgs) -> anyhow::Result<()> {
    match (args.seed, args.seeds) {
        (Some(seed), _) => one(seed, args.nodes, args.verbose),
        (None, Some(n)) => many(args.from, n, args.nodes),
        (None, None) => bail!("give --seed S (one seed) or --seeds N (many)"),
    }
}

fn config(seed: u64, nodes: Option<usize>) -> SimConfig {
    let cfg = SimConfig::new(seed);
    match nodes {
        Some(n) => cfg.nodes(n),
        None => cfg,
    }
}

fn one(seed: u64, nodes: Option<usize>, verbose: bool) -> anyhow::Result<()> {
    let r = simulate(&config(seed, nodes)).context("cannot run the simulation")?;
    if verbose {
        for line in &r.log {
            println!("{line}");
        }
    }
    println!("{}", summary(&r));
    if !r.passed() {
        print_failure(&r);
        bail!("seed {seed} broke {} invariant(s)", r.violations.len());
    }
    Ok(())
}

fn summary(r: &SimReport) -> String {
    let asks: Vec<String> = r.asks.iter().map(|(k, v)| format!("{k}:{v}")).collect();
    let heal = r
        .heal_time
        .map_or_else(|| "none".to_string(), |d| format!("{d:?}"));
    format!(
        "seed={} nodes={} events={} faults={} heal={heal} simulated={:.1}s asks={} digest={:016x} result={}",
        r.seed,
        r.nodes,
        r.events,
        r.faults,
        r.simulated.as_secs_f64(),
        asks.join(","),
        r.digest,
        if r.passed() { "pass" } else { "FAIL" }
    )
}

fn print_failure(r: &SimReport) {
    println!("FAILED seed {} ({} nodes):", r.seed, r.nodes);
    for v in &r.violations {
        println!("  {v}");
    }
    println!(
        "  replay: msa sim --seed {} --nodes {} --verbose",
        r.seed, r.nodes
    );
}

/// Runs seeds `from..from + n` on every core; prints failures in seed
/// order and one summary line.
fn many(from: u64, n: u64, nodes: Option<usize>) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let next = AtomicU64::new(from);
    let end = from.saturating_add(n);
    let results: Mutex<Vec<Result<SimReport, String>>> = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism().map_or(1, |p| p.get());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= end {
                    break;
                }
                let r = simulate(&config(seed, nodes)).map_err(|e| e.to_string());
                results
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(r);
            });
        }
    });
    let mut reports = Vec::new();
    for r in results
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
    {
        reports.push(r.map_err(anyhow::Error::msg)?);
    }
    reports.sort_by_key(|r| r.seed);
    let failed: Vec<&SimReport> = reports.iter().filter(|r| !r.passed()).collect();
    for r in &failed {
        print_failure(r);
    }
    let worst = reports
        .iter()
        .filter_map(|r| r.heal_time.map(|h| (h, r.seed)))
        .max_by_key(|(h, seed)| (*h, std::cmp::Reverse(*seed)));
    let worst = worst.map_or_else(
        || "none".to_string(),
        |(h, seed)| format!("{h:?} (seed {seed})"),
    );
    println!(
        "seeds={} from={from} failed={} worst_heal={worst} wall={:.1}s",
        reports.len(),
        failed.len(),
        t0.elapsed().as_secs_f64()
    );
    if !failed.is_empty() {
        let seeds: Vec<String> = failed.iter().map(|r| r.seed.to_string()).collect();
        bail!("{} seed(s) failed: {}", failed.len(), seeds.join(" "));
    }
    Ok(())
}
