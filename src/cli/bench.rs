//! `msa bench`: measure msa, always against a baseline run in the same
//! conditions (the same process for `local`, the same two processes for
//! `remote`, a bare actix-web handler on the same loopback for `gateway`).

mod gateway;
mod html;
mod local;
mod remote;
mod report;
mod rss;
mod scenario;
mod services;
mod streams;

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
    /// Two processes on loopback: msa's remote tell and ask vs a raw tokio
    /// TCP stream between the same processes, in the same run
    ///
    /// Run it in release mode: `cargo run --release -- bench remote`. Prints
    /// a table (or JSON lines with --json) on stdout; progress goes to stderr.
    Remote(remote::RemoteArgs),
    /// HTTP over loopback: the msa gateway (JWT auth, policy, metrics) in
    /// front of a local echo service vs a bare actix-web handler returning
    /// the same JSON, in the same run
    ///
    /// Run it in release mode: `cargo run --release -- bench gateway`.
    /// Prints a table (or JSON lines with --json) on stdout; progress goes
    /// to stderr.
    Gateway(gateway::GatewayArgs),
    /// In-process: publishing to a topic vs telling the same subscribers
    /// (one subscriber, and a fan-out), in the same run
    ///
    /// Run it in release mode: `cargo run --release -- bench streams`.
    Streams(streams::StreamsArgs),
}

/// Runs `msa bench ...`.
pub(crate) fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.target {
        BenchTarget::Local(a) => local::run(a),
        BenchTarget::Remote(a) => remote::run(a),
        BenchTarget::Gateway(a) => gateway::run(a),
        BenchTarget::Streams(a) => streams::run(a),
    }
}
