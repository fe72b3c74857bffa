//! The `msa` command line: one variant of [`Command`] per subcommand, each
//! implemented in its own module under `cli/`.
//!
//! Adding a subcommand (`msa node`, `msa cluster up`) means a module beside
//! `bench`, a variant here, and an arm in [`run`].

mod bench;
mod cert;
mod cluster;
mod contracts;
mod node;
mod operator_tls;
mod service;
mod sim;
mod token;

/// The ready-made service kinds, from the host (`msa::host`).
mod config {
    pub(crate) use msa::host::{ServiceConfig, ServiceKind};
}

/// Watching stdin for end of file, from the host.
mod stdin {
    pub(crate) use msa::host::stdin_eof;
}

use clap::{Parser, Subcommand};

/// msa: a microservices runtime in which every service is a supervised actor.
#[derive(Debug, Parser)]
#[command(
    name = "msa",
    version,
    propagate_version = true,
    arg_required_else_help = true,
    after_help = "Logs go to stderr; set RUST_LOG (e.g. RUST_LOG=msa_runtime=debug) to see more."
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
// Parsed once per process: the size of `msa node`'s flags does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Measure msa against raw actix (throughput, latency, memory per actor).
    Bench(bench::BenchArgs),
    /// Run one node with ready services (kv, echo, counter, the shop) and
    /// optionally the HTTP gateway, until Ctrl-C or SIGTERM
    Node(node::NodeArgs),
    /// Run a local cluster of node processes, or ask a node what it sees
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
    /// Run the deterministic cluster simulation: one seed (--seed S, replayable) or many (--seeds N)
    Sim(sim::SimArgs),
    /// List, scale or restart the services of a running node (over the
    /// authenticated protocol, as `msa cluster status`)
    #[command(subcommand)]
    Service(service::ServiceCommand),
    /// Make a development CA and node / operator certificates for mutual TLS
    /// (msa cert dev --nodes node1,node2 --out certs)
    #[command(subcommand)]
    Cert(cert::CertCommand),

    /// Check or update the wire contracts of every message (contracts/messages.json)
    #[command(subcommand)]
    Contracts(contracts::ContractsCommand),
    /// Print an HS256 JWT for the gateway (`--jwt-secret`): msa token --sub alice --role customer
    Token(token::TokenArgs),
}

impl Cli {
    /// The log filter when `RUST_LOG` is not set, for the commands whose
    /// logging `main` sets up: they only warn. `None` for `msa node`, which
    /// sets up its own once it has read its config (`log_format`).
    pub(crate) fn default_log_filter(&self) -> Option<&'static str> {
        match self.command {
            Command::Node(_) => None,
            _ => Some("warn"),
        }
    }
}

/// Text log lines on stderr, `RUST_LOG` overriding `default_filter`.
pub(crate) fn init_text_logging(default_filter: &str) {
    msa::host::init_logging(msa::host::LogFormat::Text, default_filter);
}

/// Runs the parsed command.
pub(crate) fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Bench(args) => bench::run(args),
        Command::Node(args) => node::run(args),
        Command::Cluster(cmd) => cluster::run(cmd),
        Command::Sim(args) => sim::run(args),
        Command::Service(cmd) => service::run(cmd),
        Command::Token(args) => token::run(args),
        Command::Cert(cmd) => cert::run(cmd),

        Command::Contracts(cmd) => contracts::run(cmd),
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::Cli;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn fault_commands_parse_and_bad_arguments_are_refused() {
        let ok = |args: &[&str]| {
            let mut v = vec!["msa", "cluster"];
            v.extend_from_slice(args);
            Cli::try_parse_from(v)
        };
        assert!(ok(&[
            "partition",
            "node1,node2",
            "node3",
            "--one-way",
            "--seed",
            "h:1"
        ])
        .is_ok());
        assert!(ok(&["heal", "--seed", "h:1", "--secret", "s"]).is_ok());
        assert!(ok(&["slow", "node2", "--delay", "50ms"]).is_ok());
        assert!(ok(&["kill", "node3", "--state", "/tmp/x.json"]).is_ok());
        assert!(ok(&["pause", "node3"]).is_ok());
        assert!(ok(&["resume", "node3"]).is_ok());
        for bad in [
            &["partition", "node1"][..],
            &["partition", "node1,,node2", "node3"],
            &["slow", "node2"],
            &["slow", "node2", "--delay", "fast"],
            &["kill"],
        ] {
            assert!(ok(bad).is_err(), "{bad:?} accepted");
        }
    }
}
