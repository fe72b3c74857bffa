//! What `msa cluster up` starts: node names, listen addresses, and the demo
//! services spread over the nodes.

use std::net::{Ipv4Addr, SocketAddr};

use crate::cli::config::{ServiceConfig, ServiceKind};

/// One node of the local cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct NodePlan {
    /// `node1`, `node2`, …
    pub(super) name: String,
    /// Loopback, on `base_port + index`, or port 0 (a free one).
    pub(super) listen: SocketAddr,
    /// The demo services it runs.
    pub(super) services: Vec<ServiceConfig>,
}

/// Instances of the demo key-value store on each node that runs it.
const KV_INSTANCES: usize = 2;

/// Plans `nodes` nodes. The demo services (kv, echo, counter) go round-robin:
/// kv on node1, echo on node2, counter on node3, then kv again on node4, and
/// so on; with fewer than three nodes some nodes run several, so every
/// service runs somewhere. The shop services run once each, spread the same
/// way (orders on node1, inventory on node2, payments on node3), so that an
/// order placed on node1 crosses nodes; notifications runs beside inventory
/// (node2), so that the orders' events cross nodes too. With fewer nodes
/// they share (with two, notifications is still not on orders' node).
pub(super) fn plan(nodes: usize, base_port: Option<u16>) -> Vec<NodePlan> {
    let demo = ServiceKind::DEMO;
    let slots = nodes.max(demo.len());
    (0..nodes)
        .map(|i| {
            let port = base_port.map_or(0, |p| p + i as u16);
            let mut services: Vec<ServiceConfig> = (i..slots)
                .step_by(nodes)
                .map(|k| {
                    let mut s = ServiceConfig::of(demo[k % demo.len()]);
                    if s.kind == ServiceKind::Kv {
                        s.instances = Some(KV_INSTANCES);
                    }
                    s
                })
                .collect();
            services.extend(
                ServiceKind::SHOP
                    .into_iter()
                    .filter(|kind| shop_slot(*kind) % nodes == i)
                    .map(ServiceConfig::of),
            );
            NodePlan {
                name: format!("node{}", i + 1),
                listen: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
                services,
            }
        })
        .collect()
}

/// The node (index, before wrapping around) a shop service runs on.
fn shop_slot(kind: ServiceKind) -> usize {
    match kind {
        ServiceKind::Orders => 0,
        ServiceKind::Payments => 2,
        // Inventory, and notifications beside it: never orders' node
        // when there are two nodes or more.
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(p: &[NodePlan]) -> Vec<Vec<&str>> {
        p.iter()
            .map(|n| n.services.iter().map(|s| s.name()).collect())
            .collect()
    }

    #[test]
    fn three_nodes_get_one_demo_and_one_shop_service_each() {
        let p = plan(3, None);
        assert_eq!(
            names(&p),
            [
                vec!["kv", "orders"],
                vec!["echo", "inventory", "notifications"],
                vec!["counter", "payments"]
            ]
        );
        assert_eq!(p[2].name, "node3");
        assert_eq!(p[0].listen.port(), 0);
    }

    #[test]
    fn every_service_runs_somewhere_and_ports_follow_the_base() {
        assert_eq!(
            names(&plan(1, None)),
            [vec![
                "kv",
                "echo",
                "counter",
                "orders",
                "inventory",
                "payments",
                "notifications"
            ]]
        );
        assert_eq!(
            names(&plan(2, None)),
            [
                vec!["kv", "counter", "orders", "payments"],
                vec!["echo", "inventory", "notifications"]
            ]
        );
        let p = plan(5, Some(7000));
        assert_eq!(
            names(&p),
            [
                vec!["kv", "orders"],
                vec!["echo", "inventory", "notifications"],
                vec!["counter", "payments"],
                vec!["kv"],
                vec!["echo"]
            ]
        );
        let ports: Vec<u16> = p.iter().map(|n| n.listen.port()).collect();
        assert_eq!(ports, [7000, 7001, 7002, 7003, 7004]);
    }

    #[test]
    fn shop_services_run_exactly_once() {
        for n in 1..=6 {
            let all: Vec<ServiceKind> = plan(n, None)
                .iter()
                .flat_map(|p| p.services.iter().map(|s| s.kind))
                .filter(|k| k.is_shop())
                .collect();
            assert_eq!(all.len(), ServiceKind::SHOP.len(), "{n} nodes: {all:?}");
            for kind in ServiceKind::SHOP {
                assert!(all.contains(&kind), "{n} nodes: {all:?}");
            }
        }
    }

    #[test]
    fn notifications_run_on_another_node_than_orders_when_there_are_two() {
        let node_of = |p: &[NodePlan], name: &str| {
            p.iter()
                .position(|n| n.services.iter().any(|s| s.name() == name))
                .unwrap()
        };
        for n in 2..=6 {
            let p = plan(n, None);
            assert_ne!(
                node_of(&p, "orders"),
                node_of(&p, "notifications"),
                "{n} nodes"
            );
        }
    }
}
