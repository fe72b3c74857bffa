//! `msa cluster status`: ask a running node, over the authenticated
//! protocol, for the members it sees and where services run.

use std::time::Duration;

use anyhow::Context;
use clap::Args;
use msa::remote::{cluster_status_via, ClusterStatus};

use super::table;

/// Options of `msa cluster status`.
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// Address of a running node (e.g. the seed `msa cluster up` printed)
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
    /// Print one JSON object {"members": [...], "services": [...]} instead of tables
    #[arg(long)]
    json: bool,
    /// Give up after this many seconds
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    timeout: f64,
}

/// Runs `msa cluster status`.
pub(crate) fn run(args: StatusArgs) -> anyhow::Result<()> {
    let timeout = Duration::try_from_secs_f64(args.timeout)
        .context("--timeout must be a positive number of seconds")?;
    let secret = args.secret.clone().unwrap_or_default();
    let transport = args.tls.transport()?;
    let status = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(cluster_status_via(
            transport.as_ref(),
            &args.seed,
            &args.cluster,
            secret.as_bytes(),
            timeout,
        ))
        .with_context(|| {
            format!(
                "cannot get the cluster view from {} (check --seed, --secret or MSA_SECRET, --cluster, and --tls-* for nodes with TLS)",
                args.seed
            )
        })?;
    if args.json {
        println!("{}", serde_json::to_string(&status)?);
    } else {
        print!("{}", render(&status));
    }
    Ok(())
}

/// Members, then services, as two tables sorted by name.
fn render(status: &ClusterStatus) -> String {
    let mut members = status.members.clone();
    members.sort_by(|a, b| (&a.name, a.incarnation).cmp(&(&b.name, b.incarnation)));
    let rows: Vec<Vec<String>> = members
        .into_iter()
        .map(|m| {
            vec![
                m.name,
                m.addr,
                m.status,
                m.reachability,
                m.incarnation.to_string(),
            ]
        })
        .collect();
    let mut out = table::render(
        &["MEMBER", "ADDRESS", "STATUS", "REACHABILITY", "INCARNATION"],
        &rows,
    );
    let mut services = status.services.clone();
    services.sort_by(|a, b| a.name.cmp(&b.name));
    let rows: Vec<Vec<String>> = services
        .into_iter()
        .map(|s| vec![s.name, s.nodes.join(",")])
        .collect();
    out.push('\n');
    out.push_str(&table::render(&["SERVICE", "NODES"], &rows));
    if !status.unreachable.is_empty() {
        // A partial cut: who cannot reach whom (the asked node's view).
        let rows: Vec<Vec<String>> = status
            .unreachable
            .iter()
            .map(|[observer, subject]| vec![observer.clone(), subject.clone()])
            .collect();
        out.push('\n');
        out.push_str(&table::render(&["OBSERVER", "CANNOT REACH"], &rows));
    }
    out
}

#[cfg(test)]
mod tests {
    use msa::remote::{MemberView, ServiceView};

    #[test]
    fn tables_list_members_and_services_by_name() {
        let s = msa::remote::ClusterStatus {
            members: vec![
                MemberView {
                    name: "node2".into(),
                    addr: "127.0.0.1:2".into(),
                    status: "down".into(),
                    incarnation: 7,
                    table_version: 1,
                    reachability: "reachable".into(),
                    state: "down".into(),
                },
                MemberView {
                    name: "node1".into(),
                    addr: "127.0.0.1:1".into(),
                    status: "alive".into(),
                    incarnation: 5,
                    table_version: 2,
                    reachability: "unreachable".into(),
                    state: "up".into(),
                },
            ],
            services: vec![ServiceView {
                name: "kv".into(),
                nodes: vec!["node1".into(), "node3".into()],
            }],
            unreachable: vec![["node3".into(), "node1".into()]],
        };
        let out = super::render(&s);
        assert_eq!(
            out,
            "MEMBER  ADDRESS      STATUS  REACHABILITY  INCARNATION\n\
             node1   127.0.0.1:1  alive   unreachable   5\n\
             node2   127.0.0.1:2  down    reachable     7\n\
             \n\
             SERVICE  NODES\n\
             kv       node1,node3\n\
             \n\
             OBSERVER  CANNOT REACH\n\
             node3     node1\n"
        );
    }
}
