//! `msa cluster up` prints its summary once the cluster has formed, not
//! only once every node printed its ready line: a node with seeds is
//! `joining` for a moment after that line (docs/cluster.md, "Joining"), and
//! until every member admitted it no other node holds its service table.
//! Formed means: every node, asked itself, shows every node `up` and lists
//! every service at every node that runs it.

use std::path::Path;
use std::time::Duration;

use msa::remote::{cluster_status_via, ClusterStatus};

use crate::cli::node::ReadyLine;
use crate::cli::operator_tls::OperatorTls;

/// How long one status question may take.
const ASK_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the nodes are asked again.
const POLL: Duration = Duration::from_millis(100);

/// What `status` (one node's view) still lacks for the cluster of `ready`
/// to count as formed; `None` when nothing.
pub(crate) fn missing(status: &ClusterStatus, ready: &[ReadyLine]) -> Option<String> {
    for r in ready {
        match status.members.iter().find(|m| m.name == r.name) {
            None => return Some(format!("{} is not a member yet", r.name)),
            Some(m) if m.state != "up" => return Some(format!("{} is {}", r.name, m.state)),
            Some(_) => {}
        }
        for s in &r.services {
            let listed = status
                .services
                .iter()
                .any(|v| &v.name == s && v.nodes.iter().any(|n| n == &r.name));
            if !listed {
                return Some(format!("{s} on {} is not routed yet", r.name));
            }
        }
    }
    None
}

/// Waits until every node of `ready` agrees the cluster has formed, for at
/// most `within`.
///
/// # Errors
/// What was still missing, and in whose view, when `within` passed.
pub(crate) async fn wait_formed(
    ready: &[ReadyLine],
    cluster: &str,
    secret: &str,
    tls_dir: Option<&Path>,
    within: Duration,
) -> Result<(), String> {
    let tls = match tls_dir {
        Some(d) => OperatorTls {
            tls_ca: Some(d.join("ca.pem")),
            tls_cert: Some(d.join("operator.pem")),
            tls_key: Some(d.join("operator.key")),
        },
        None => OperatorTls::default(),
    };
    let transport = tls.transport().map_err(|e| format!("{e:#}"))?;
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let mut lacking = None;
        for r in ready {
            let view = cluster_status_via(
                transport.as_ref(),
                &r.addr,
                cluster,
                secret.as_bytes(),
                ASK_TIMEOUT,
            )
            .await;
            lacking = match view {
                Ok(status) => missing(&status, ready).map(|m| format!("{} sees: {m}", r.name)),
                Err(e) => Some(format!("cannot ask {}: {e}", r.name)),
            };
            if lacking.is_some() {
                break;
            }
        }
        match lacking {
            None => return Ok(()),
            Some(why) if tokio::time::Instant::now() >= deadline => return Err(why),
            Some(_) => tokio::time::sleep(POLL).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use msa::remote::{MemberView, ServiceView};

    fn ready(name: &str, services: &[&str]) -> ReadyLine {
        ReadyLine {
            name: name.into(),
            addr: "127.0.0.1:1".into(),
            incarnation: 1,
            services: services.iter().map(|s| (*s).to_string()).collect(),
            gateway: None,
            grpc: None,
            ops: None,
        }
    }

    fn member(name: &str, state: &str) -> MemberView {
        MemberView {
            name: name.into(),
            addr: "127.0.0.1:1".into(),
            status: "alive".into(),
            incarnation: 1,
            table_version: 1,
            reachability: "reachable".into(),
            state: state.into(),
        }
    }

    #[test]
    fn formed_only_when_every_node_is_up_and_every_service_routed() {
        let nodes = [ready("node1", &["kv"]), ready("node2", &["echo"])];
        let mut status = ClusterStatus {
            members: vec![member("node1", "up"), member("node2", "joining")],
            services: vec![ServiceView {
                name: "kv".into(),
                nodes: vec!["node1".into()],
            }],
            ..ClusterStatus::default()
        };
        assert_eq!(missing(&status, &nodes).unwrap(), "node2 is joining");
        status.members[1].state = "up".into();
        assert_eq!(
            missing(&status, &nodes).unwrap(),
            "echo on node2 is not routed yet"
        );
        status.services.push(ServiceView {
            name: "echo".into(),
            nodes: vec!["node2".into()],
        });
        assert_eq!(missing(&status, &nodes), None);
        status.members.pop();
        assert_eq!(
            missing(&status, &nodes).unwrap(),
            "node2 is not a member yet"
        );
    }
}
