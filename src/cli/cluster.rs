//! `msa cluster`: run a local cluster of node processes (`up`), ask a
//! running node what it sees (`status`), and inject faults (`partition`,
//! `heal`, `slow`, `kill`, `pause`, `resume`).

mod demo;
mod fault;
mod formed;
mod local_pid;
mod plan;
mod process;
mod secret;
mod signal;
mod state;
mod status;
pub(crate) mod table;
mod target;
mod up;

use clap::Subcommand;

pub(crate) use demo::{demo_access, demo_policy, demo_routes};

/// The `msa cluster` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum ClusterCommand {
    /// Start N `msa node` processes on loopback with the demo services (and
    /// the shop behind an HTTP gateway on node1) spread across them; Ctrl-C
    /// or SIGTERM stops them all
    Up(up::UpArgs),
    /// Ask a running node for the members and services it sees
    Status(status::StatusArgs),
    /// Cut a group of nodes from another: `partition node1,node2 node3`
    /// (inside the nodes' transport: no root needed)
    Partition(fault::PartitionArgs),
    /// Clear every cut and delay on every node
    Heal(fault::HealArgs),
    /// Delay every frame a node receives from the others: `slow node2 --delay 50ms`
    Slow(fault::SlowArgs),
    /// Kill a node's process at once (SIGKILL on this host; elsewhere the
    /// node is asked to abort)
    Kill(signal::NodeArgs),
    /// Freeze a node's process (SIGSTOP; the node must run on this host)
    Pause(signal::NodeArgs),
    /// Thaw a paused node (SIGCONT)
    Resume(signal::NodeArgs),
    /// Have a node leave the cluster gracefully (the others see it removed)
    Leave(fault::MemberArgs),
    /// Declare a node down on every member; the node itself, if reachable,
    /// leaves
    Down(fault::MemberArgs),
}

/// Runs `msa cluster ...`.
pub(crate) fn run(cmd: ClusterCommand) -> anyhow::Result<()> {
    match cmd {
        ClusterCommand::Up(a) => up::run(a),
        ClusterCommand::Status(a) => status::run(a),
        ClusterCommand::Partition(a) => fault::partition(a),
        ClusterCommand::Heal(a) => fault::heal(a),
        ClusterCommand::Slow(a) => fault::slow(a),
        ClusterCommand::Kill(a) => signal::kill(a),
        ClusterCommand::Pause(a) => signal::pause(a),
        ClusterCommand::Resume(a) => signal::resume(a),
        ClusterCommand::Leave(a) => fault::leave(a),
        ClusterCommand::Down(a) => fault::down(a),
    }
}
