//! `msa bench`: measure msa, always against a baseline run in the same
//! process and the same conditions.

mod local;
mod report;
mod rss;
mod scenario;
mod services;

use clap::{Args, Subcommand};

/// Options of `msa bench`.
#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    #[command(subcommand)]
    target: BenchTarget,
}

/// What to benchmark.
#[derive(Debug, Subcommand)]
enum BenchTarget {
    /// In-process: msa's ServiceRef vs raw actix (tell, ask, fan_in) and the
    /// cost of spawning supervised actors
    ///
    /// Run it in release mode: `cargo run --release -- bench local`. Prints a
    /// table (or JSON lines with --json) on stdout; progress goes to stderr.
    Local(local::LocalArgs),
}

/// Runs `msa bench ...`.
pub(crate) fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.target {
        BenchTarget::Local(a) => local::run(a),
    }
}
