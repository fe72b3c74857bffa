//! Fault requests over the operator protocol, on whole nodes of the
//! in-memory network: a cut through each node's own fault layer splits the
//! membership views, a heal joins them again, and bad requests are
//! refused with a typed reason and change nothing.

use std::time::Duration;

use msa_runtime::remote::transport::MemoryNetwork;
use msa_runtime::remote::{inject_fault_via, FaultError, FaultRefusal, FaultRequest};
use msa_runtime::test_support::eventually;
use msa_runtime::Node;

const SECRET: &[u8] = b"faults-secret";
const BOUND: Duration = Duration::from_secs(20);

fn node(net: &MemoryNetwork, name: &str, seed: Option<&Node>) -> Node {
    crate::support::memory_node(net, name, seed, SECRET, Some(Duration::from_millis(1_000)))
}

/// Names of the members `n` sees alive, itself included.
fn alive(n: &Node) -> Vec<String> {
    n.cluster_status()
        .members
        .into_iter()
        .filter(|m| m.status == "alive")
        .map(|m| m.name)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_over_the_operator_protocol_splits_the_views_and_a_heal_joins_them() {
    let net = MemoryNetwork::new();
    let a = node(&net, "a", None);
    let b = node(&net, "b", Some(&a));
    eventually("a and b see each other", BOUND, || async {
        alive(&a).len() == 2 && alive(&b).len() == 2
    })
    .await;
    let client = net.endpoint("operator");
    let send = |addr: String, req: FaultRequest| {
        let client = client.clone();
        async move { inject_fault_via(&client, &addr, "msa", SECRET, req, Duration::from_secs(5)).await }
    };
    let (addr_a, addr_b) = (a.remote_addr().unwrap(), b.remote_addr().unwrap());

    // Refusals change nothing.
    let e = send(
        addr_a.clone(),
        FaultRequest::Cut {
            peers: vec!["zz".into()],
            inbound: true,
            outbound: true,
        },
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&e, FaultError::Refused { refusal: FaultRefusal::UnknownNode { name, known }, .. }
            if name == "zz" && known == &["a", "b"]),
        "{e:?}"
    );
    let e = send(
        addr_a.clone(),
        FaultRequest::Cut {
            peers: vec!["a".into()],
            inbound: true,
            outbound: false,
        },
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            e,
            FaultError::Refused {
                refusal: FaultRefusal::SelfCut { .. },
                ..
            }
        ),
        "{e:?}"
    );
    let shown = send(addr_a.clone(), FaultRequest::Show).await.unwrap();
    assert_eq!(shown.node, "a");
    assert_eq!(shown.pid, std::process::id());
    assert_eq!(shown.rules, Default::default());

    // A partition a | b: each side cuts the other, both ways.
    for (addr, peer) in [(&addr_a, "b"), (&addr_b, "a")] {
        let r = send(
            addr.clone(),
            FaultRequest::Cut {
                peers: vec![peer.into()],
                inbound: true,
                outbound: true,
            },
        )
        .await
        .unwrap();
        assert!(
            r.rules.cut_in.contains(peer) && r.rules.cut_out.contains(peer),
            "{r:?}"
        );
    }
    eventually("each side sees the other not alive", BOUND, || async {
        alive(&a) == ["a"] && alive(&b) == ["b"]
    })
    .await;
    // The operator still reaches both sides.
    assert!(send(addr_b.clone(), FaultRequest::Show).await.is_ok());

    for addr in [&addr_a, &addr_b] {
        let r = send(addr.clone(), FaultRequest::Heal).await.unwrap();
        assert_eq!(r.rules, Default::default());
    }
    eventually("a and b agree again", BOUND, || async {
        alive(&a).len() == 2 && alive(&b).len() == 2
    })
    .await;
    a.shutdown(Duration::from_secs(5)).await.unwrap();
    b.shutdown(Duration::from_secs(5)).await.unwrap();
}
