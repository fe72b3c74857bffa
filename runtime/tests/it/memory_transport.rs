//! Whole nodes on the in-memory network: they form a cluster and call each
//! other as over TCP; a cut makes calls across it fail with a typed error
//! within a bound, and a heal brings them back.

use std::future::IntoFuture;
use std::time::Duration;

use msa_runtime::prelude::*;
use msa_runtime::remote::transport::MemoryNetwork;
use msa_runtime::{RegistryEvent, RegistryWatch};
use serde::{Deserialize, Serialize};

/// Answers the name of the node that served it.
#[derive(Debug, Clone, actix::Message, Serialize, Deserialize, RemoteMessage)]
#[rtype(result = "String")]
#[msa(name = "memory_transport.Where")]
struct Where;

struct Here(String);
impl Service for Here {}
impl Handler<Where> for Here {
    fn handle(&mut self, _: Where, _: &mut ServiceContext<'_, Self>) -> Reply<Self, String> {
        Reply::ready(self.0.clone())
    }
}

fn here(service: &str, node: &str) -> ServiceSpec<Here> {
    let node = node.to_string();
    ServiceSpec::new(service, move || Here(node.clone())).handles::<Where>()
}

const SECRET: &[u8] = b"memory-secret";
const GRACE: Duration = Duration::from_secs(5);
/// Failure detection of these nodes: a cut is noticed within about this.
const DETECTION: Duration = Duration::from_millis(1_000);
/// Bound on every wait (events, calls): far above what they take.
const BOUND: Duration = Duration::from_secs(20);

/// A node on `net` listening at `name:0`, seeded with `seed`.
fn node(net: &MemoryNetwork, name: &str, seed: Option<&Node>) -> Node {
    crate::support::memory_node(net, name, seed, SECRET, Some(DETECTION))
}

/// Waits (bounded) for an event matching `pred`.
async fn event(w: &mut RegistryWatch, what: &str, mut pred: impl FnMut(&RegistryEvent) -> bool) {
    tokio::time::timeout(BOUND, async {
        loop {
            match w.next().await {
                Some(e) if pred(&e) => return,
                Some(_) => continue,
                None => panic!("watch closed"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what} within {BOUND:?}"));
}

/// Waits until each `(service, node)` was added, in any order.
async fn remote_up(w: &mut RegistryWatch, wanted: &[(&str, &str)]) {
    let mut missing: Vec<_> = wanted.to_vec();
    event(w, &format!("{wanted:?} up"), |e| {
        if let RegistryEvent::RemoteAdded { service, node, .. } = e {
            missing.retain(|(s, n)| !(s == service && n == node));
        }
        missing.is_empty()
    })
    .await;
}

async fn remote_gone(w: &mut RegistryWatch, service: &str, on: &str) {
    event(w, &format!("{service} on {on} gone"), |e| {
        matches!(e, RegistryEvent::RemoteRemoved { service: s, node, .. } if s == service && node == on)
    })
    .await;
}

/// An ask bounded from outside too: a hang fails the test instead of
/// blocking it.
async fn ask_where(from: &Node, service: &str) -> Result<String, CallError> {
    let svc = from.service(service);
    let ask = svc.ask(Where).timeout(Duration::from_secs(2)).into_future();
    tokio::time::timeout(BOUND, ask)
        .await
        .unwrap_or_else(|_| panic!("the ask to {service} hung"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_on_a_memory_network_form_a_cluster_and_call_each_other() {
    let net = MemoryNetwork::new();
    let a = node(&net, "a", None);
    let b = node(&net, "b", Some(&a));
    let c = node(&net, "c", Some(&a));
    assert_eq!(a.remote_addr().as_deref(), Some("a:1"));
    assert_ne!(b.remote_addr(), c.remote_addr());
    let (mut wa, mut wb, mut wc) = (a.watch(), b.watch(), c.watch());
    b.spawn(here("on-b", "b")).await.unwrap();
    c.spawn(here("on-c", "c")).await.unwrap();
    remote_up(&mut wa, &[("on-b", "b"), ("on-c", "c")]).await;
    remote_up(&mut wb, &[("on-c", "c")]).await;
    remote_up(&mut wc, &[("on-b", "b")]).await;
    assert_eq!(ask_where(&a, "on-b").await.unwrap(), "b");
    assert_eq!(ask_where(&a, "on-c").await.unwrap(), "c");
    // b and c met through a's membership, over the same network.
    assert_eq!(ask_where(&b, "on-c").await.unwrap(), "c");
    assert_eq!(ask_where(&c, "on-b").await.unwrap(), "b");
    // The status client takes the transport too.
    let status = msa_runtime::remote::cluster_status_via(
        &net.endpoint("cli"),
        &a.remote_addr().unwrap(),
        "msa",
        SECRET,
        BOUND,
    )
    .await
    .unwrap();
    assert_eq!(status, a.cluster_status());
    for n in [c, b, a] {
        n.shutdown(GRACE).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_fails_calls_across_it_with_a_typed_error_and_a_heal_restores_them() {
    let net = MemoryNetwork::new();
    let a = node(&net, "x", None);
    let b = node(&net, "y", Some(&a));
    let c = node(&net, "z", Some(&a));
    let mut wa = a.watch();
    b.spawn(here("on-y", "y")).await.unwrap();
    c.spawn(here("on-z", "z")).await.unwrap();
    remote_up(&mut wa, &[("on-y", "y"), ("on-z", "z")]).await;
    assert_eq!(ask_where(&a, "on-y").await.unwrap(), "y");

    net.cut(&a.remote_addr().unwrap(), &b.remote_addr().unwrap());
    // Across the cut: a typed failure (the connection stalls until its
    // silence closes it), never a hang.
    let t0 = std::time::Instant::now();
    let r = ask_where(&a, "on-y").await;
    assert!(
        matches!(
            r,
            Err(CallError::NodeDown { .. }
                | CallError::NoInstance { .. }
                | CallError::Unreachable { .. }
                | CallError::Timeout { .. })
        ),
        "{r:?}"
    );
    // Unreachable after 0.4 s of silence (1 s detection bound), or NodeDown
    // after the 0.6 s that close the connection.
    assert!(
        t0.elapsed() < 5 * DETECTION,
        "failed within the detection bound (with slack), not at a timeout: {:?}",
        t0.elapsed()
    );
    remote_gone(&mut wa, "on-y", "y").await;
    // z still reaches y, so y stays a live member: a partial cut, and the
    // call says y is unreachable from here (docs/cluster.md, "Reachability").
    let r = ask_where(&a, "on-y").await;
    assert_eq!(r, Err(CallError::Unreachable { node: "y".into() }));
    // Links not cut carry on.
    assert_eq!(ask_where(&a, "on-z").await.unwrap(), "z");

    net.heal("x", "y");
    remote_up(&mut wa, &[("on-y", "y")]).await;
    assert_eq!(ask_where(&a, "on-y").await.unwrap(), "y");
    for n in [c, b, a] {
        n.shutdown(GRACE).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connections_are_dialed_again() {
    let net = MemoryNetwork::new();
    let a = node(&net, "x", None);
    let b = node(&net, "y", Some(&a));
    let mut wa = a.watch();
    b.spawn(here("on-y", "y")).await.unwrap();
    remote_up(&mut wa, &[("on-y", "y")]).await;
    net.drop_connections("x", "y");
    remote_gone(&mut wa, "on-y", "y").await;
    remote_up(&mut wa, &[("on-y", "y")]).await;
    assert_eq!(ask_where(&a, "on-y").await.unwrap(), "y");
    b.shutdown(GRACE).await.unwrap();
    a.shutdown(GRACE).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_between_nodes_delays_each_ask_by_the_round_trip() {
    const LATENCY: Duration = Duration::from_millis(60);
    let net = MemoryNetwork::new();
    let a = node(&net, "m", None);
    let b = node(&net, "n", Some(&a));
    let mut wa = a.watch();
    b.spawn(here("on-n", "n")).await.unwrap();
    remote_up(&mut wa, &[("on-n", "n")]).await;
    net.set_latency("m", "n", LATENCY);
    for _ in 0..3 {
        let t0 = std::time::Instant::now();
        assert_eq!(ask_where(&a, "on-n").await.unwrap(), "n");
        let took = t0.elapsed();
        assert!(took >= 2 * LATENCY, "an ask waits a round trip: {took:?}");
    }
    // Removing the latency keeps the connection serving.
    net.set_latency("m", "n", Duration::ZERO);
    assert_eq!(ask_where(&a, "on-n").await.unwrap(), "n");
    b.shutdown(GRACE).await.unwrap();
    a.shutdown(GRACE).await.unwrap();
}
