//! Member states beside the status (issue 10 item 2, its first part), and
//! an operator's `leave` and `down` over the authenticated protocol, on the
//! in-memory network.

use std::future::IntoFuture;
use std::time::Duration;

use msa_runtime::prelude::*;
use msa_runtime::remote::transport::MemoryNetwork;
use msa_runtime::remote::{inject_fault_via, FaultError, FaultRefusal, FaultRequest};
use msa_runtime::test_support::eventually;
use serde::{Deserialize, Serialize};

use crate::support::placement::status_of;

#[derive(Debug, Clone, actix::Message, Serialize, Deserialize, RemoteMessage)]
#[rtype(result = "String")]
#[msa(name = "member_states.Where")]
struct Where;

struct Here(String);
impl Service for Here {}
impl Handler<Where> for Here {
    fn handle(&mut self, _: Where, _: &mut ServiceContext<'_, Self>) -> Reply<Self, String> {
        Reply::ready(self.0.clone())
    }
}

const SECRET: &[u8] = b"states-secret";
const GRACE: Duration = Duration::from_secs(5);
const BOUND: Duration = Duration::from_secs(20);

fn node(net: &MemoryNetwork, name: &str, seed: Option<&Node>) -> Node {
    crate::support::memory_node(net, name, seed, SECRET, Some(Duration::from_millis(1_000)))
}

async fn ask(from: &Node, service: &str) -> Result<String, CallError> {
    let svc = from.service(service);
    let ask = svc.ask(Where).timeout(Duration::from_secs(2)).into_future();
    tokio::time::timeout(BOUND, ask).await.expect("no hang")
}

async fn three(net: &MemoryNetwork) -> [Node; 3] {
    let a = node(net, "a", None);
    let b = node(net, "b", Some(&a));
    let c = node(net, "c", Some(&a));
    c.spawn(ServiceSpec::new("on-c", || Here("c".into())).handles::<Where>())
        .await
        .unwrap();
    let nodes = [a, b, c];
    eventually("all up", BOUND, || async {
        ask(&nodes[0], "on-c").await.is_ok()
            && nodes.iter().all(|n| {
                let s = n.cluster_status();
                s.members.len() == 3 && s.members.iter().all(|m| m.state == "up")
            })
    })
    .await;
    nodes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leave_takes_a_node_out_and_the_others_see_it_removed() {
    let net = MemoryNetwork::new();
    let [a, b, c] = three(&net).await;
    let client = net.endpoint("operator");
    let report = inject_fault_via(
        &client,
        &c.remote_addr().unwrap(),
        "msa",
        SECRET,
        FaultRequest::Leave,
        BOUND,
    )
    .await
    .unwrap();
    assert_eq!(report.node, "c");
    eventually("c removed on a and b", BOUND, || async {
        status_of(&a, "c").1 == "removed" && status_of(&b, "c").1 == "removed"
    })
    .await;
    eventually("c sees itself leaving", BOUND, || async {
        status_of(&c, "c") == ("left".into(), "leaving".into())
    })
    .await;
    let r = ask(&a, "on-c").await;
    assert!(
        matches!(
            r,
            Err(CallError::NoInstance { .. } | CallError::UnknownService { .. })
        ),
        "{r:?}"
    );
    for n in [c, b, a] {
        n.shutdown(GRACE).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_declares_a_member_down_everywhere_and_it_leaves() {
    let net = MemoryNetwork::new();
    let [a, b, c] = three(&net).await;
    let client = net.endpoint("operator");
    let send = |to: &Node, req: FaultRequest| {
        let addr = to.remote_addr().unwrap();
        let client = client.clone();
        async move { inject_fault_via(&client, &addr, "msa", SECRET, req, BOUND).await }
    };
    // An unknown name is refused and changes nothing.
    let err = send(&a, FaultRequest::Down { node: "x".into() })
        .await
        .unwrap_err();
    assert!(
        matches!(&err, FaultError::Refused { refusal: FaultRefusal::UnknownNode { name, .. }, .. } if name == "x"),
        "{err}"
    );
    // As `msa cluster down c` does: every member is told.
    for n in [&a, &b, &c] {
        send(n, FaultRequest::Down { node: "c".into() })
            .await
            .unwrap();
    }
    eventually("c down on a and b, its services gone", BOUND, || async {
        ["a", "b"].iter().zip([&a, &b]).all(|(_, n)| {
            let (status, state) = status_of(n, "c");
            status == "down" && (state == "down" || state == "removed")
        }) && ask(&a, "on-c").await.is_err()
    })
    .await;
    // c itself left (it hears the verdict after a and b may have applied
    // it): it does not come back as a member.
    eventually("c sees itself left", BOUND, || async {
        status_of(&c, "c").0 == "left"
    })
    .await;
    assert!(a.cluster_status().unreachable.is_empty());
    for n in [c, b, a] {
        n.shutdown(GRACE).await.unwrap();
    }
}

/// Akka's leaving → exiting → removed, as the others see it: a node that
/// announces its leave (the host's graceful stop does so first) is
/// `exiting` for every other member while its connections are still open,
/// its services already out of their routing, and `removed` once it has
/// stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leaving_node_is_exiting_for_the_others_until_it_is_removed() {
    let net = MemoryNetwork::new();
    let [a, b, c] = three(&net).await;

    c.announce_leaving();
    // Exiting beside a live membership status (alive, or suspect on a
    // loaded machine): it has not left yet.
    eventually("c exiting on a and b", BOUND, || async {
        [&a, &b].iter().all(|n| {
            let (status, state) = status_of(n, "c");
            state == "exiting" && (status == "alive" || status == "suspect")
        })
    })
    .await;
    // Its work is handed over: no new call goes there.
    let r = ask(&a, "on-c").await;
    assert!(
        matches!(
            r,
            Err(CallError::NoInstance { .. } | CallError::UnknownService { .. })
        ),
        "{r:?}"
    );
    // Still exiting, not removed, while c runs on: the others' view waits
    // for its connections to end.
    assert_eq!(status_of(&a, "c").1, "exiting");
    assert_eq!(status_of(&b, "c").1, "exiting");

    c.shutdown(GRACE).await.unwrap();
    eventually("c removed on a and b", BOUND, || async {
        status_of(&a, "c").1 == "removed" && status_of(&b, "c").1 == "removed"
    })
    .await;
    for n in [b, a] {
        n.shutdown(GRACE).await.unwrap();
    }
}
