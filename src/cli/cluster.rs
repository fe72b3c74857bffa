//! `msa cluster`: run a local cluster of node processes (`up`) and ask a
//! running node what it sees (`status`).

mod demo;
mod plan;
mod process;
mod secret;
mod status;
mod table;
mod up;

use clap::Subcommand;

pub(crate) use demo::{demo_policy, demo_routes};

/// The `msa cluster` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum ClusterCommand {
    /// Start N `msa node` processes on loopback with the demo services (and
    /// the shop behind an HTTP gateway on node1) spread across them; Ctrl-C
    /// or SIGTERM stops them all
    Up(up::UpArgs),
    /// Ask a running node for the members and services it sees
    Status(status::StatusArgs),
}

/// Runs `msa cluster ...`.
pub(crate) fn run(cmd: ClusterCommand) -> anyhow::Result<()> {
    match cmd {
        ClusterCommand::Up(a) => up::run(a),
        ClusterCommand::Status(a) => status::run(a),
    }
}
