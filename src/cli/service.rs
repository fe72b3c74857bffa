//! `msa service list|scale|restart`: ask a running node, over the
//! authenticated protocol (the credential as `msa cluster status` takes
//! it), about the services it runs, scale one, or restart one.

use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use msa::remote::{operate_services_via, ServiceReport, ServiceRequest};

use super::cluster::table;

/// The `msa service` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum ServiceCommand {
    /// List the node's services: state, running and most instances
    List(Target),
    /// Run N instances of a service on the node (up to its max_instances)
    Scale {
        /// The service
        service: String,
        /// How many instances
        instances: u32,
        #[command(flatten)]
        target: Target,
    },
    /// Stop a service gracefully and start it again, fresh
    Restart {
        /// The service
        service: String,
        #[command(flatten)]
        target: Target,
    },
}

/// Which node, and how to reach it.
#[derive(Debug, Args)]
pub(crate) struct Target {
    /// Address of the running node whose services to list or change
    #[arg(long, env = "MSA_SEED", value_name = "HOST:PORT")]
    seed: String,
    /// Cluster secret [default: none, for nodes that run without one]
    #[arg(long, env = "MSA_SECRET", hide_env_values = true)]
    secret: Option<String>,
    /// Cluster name
    #[arg(long, env = "MSA_CLUSTER", default_value = "msa")]
    cluster: String,
    #[command(flatten)]
    tls: crate::cli::operator_tls::OperatorTls,
    /// Print the node's services as one JSON object instead of a table
    #[arg(long)]
    json: bool,
    /// Give up after this many seconds (a scale or restart waits for the
    /// instances to start or stop)
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    timeout: f64,
}

/// Runs `msa service ...`.
pub(crate) fn run(cmd: ServiceCommand) -> anyhow::Result<()> {
    let (request, target) = match cmd {
        ServiceCommand::List(t) => (ServiceRequest::List, t),
        ServiceCommand::Scale {
            service,
            instances,
            target,
        } => (ServiceRequest::Scale { service, instances }, target),
        ServiceCommand::Restart { service, target } => {
            (ServiceRequest::Restart { service }, target)
        }
    };
    let timeout = Duration::try_from_secs_f64(target.timeout)
        .context("--timeout must be a positive number of seconds")?;
    let secret = target.secret.clone().unwrap_or_default();
    let transport = target.tls.transport()?;
    let report = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(operate_services_via(
            transport.as_ref(),
            &target.seed,
            &target.cluster,
            secret.as_bytes(),
            request,
            timeout,
        ))
        .with_context(|| format!("service request to {} failed", target.seed))?;
    if target.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", render(&report));
    }
    Ok(())
}

/// The node's services as a table, by name.
fn render(report: &ServiceReport) -> String {
    let rows: Vec<Vec<String>> = report
        .services
        .iter()
        .map(|s| {
            vec![
                s.name.clone(),
                s.state.clone(),
                s.instances.to_string(),
                s.max_instances.to_string(),
            ]
        })
        .collect();
    format!(
        "node {}\n{}",
        report.node,
        table::render(&["SERVICE", "STATE", "INSTANCES", "MAX"], &rows)
    )
}
