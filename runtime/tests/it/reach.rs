//! Reachability per pair (issue 10 item 3) and calls before the service
//! tables arrive (issue 11), on the in-memory network.
//!
//! A partial cut (a ⇄ c cut, b reaches both) keeps every member alive for
//! SWIM; each node must still see, within the detection target, which pairs
//! cannot talk, and calls from a to what only c runs must fail fast with
//! `Unreachable { node: "c" }`, while a → b and b → c keep working.

use std::future::IntoFuture;
use std::time::{Duration, Instant};

use msa_runtime::prelude::*;
use msa_runtime::remote::transport::MemoryNetwork;
use msa_runtime::test_support::eventually;
use serde::{Deserialize, Serialize};

/// Answers the name of the node that served it.
#[derive(Debug, Clone, actix::Message, Serialize, Deserialize, RemoteMessage)]
#[rtype(result = "String")]
#[msa(name = "reach.Where")]
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

const SECRET: &[u8] = b"reach-secret";
const GRACE: Duration = Duration::from_secs(5);
/// The detection target: unreachable, services out of routing.
const DETECTION_TARGET: Duration = Duration::from_secs(3);
/// Bound on waits that have no target of their own (forming, healing).
const BOUND: Duration = Duration::from_secs(20);
/// The asks' own timeout: a fast failure is far below it.
const ASK_TIMEOUT: Duration = Duration::from_secs(2);

/// A node on `net` at `name:0` with the default failure detection (the
/// detection target is stated for the defaults).
fn node(net: &MemoryNetwork, name: &str, seed: Option<&Node>) -> Node {
    crate::support::memory_node(net, name, seed, SECRET, None)
}

/// An ask bounded from outside too: a hang fails the test.
async fn ask_where(from: &Node, service: &str) -> Result<String, CallError> {
    let svc = from.service(service);
    let ask = svc.ask(Where).timeout(ASK_TIMEOUT).into_future();
    tokio::time::timeout(BOUND, ask)
        .await
        .unwrap_or_else(|_| panic!("the ask to {service} hung"))
}

fn pair(a: &str, b: &str) -> [String; 2] {
    [a.to_string(), b.to_string()]
}

fn state_of(n: &Node, member: &str) -> String {
    n.cluster_status()
        .members
        .into_iter()
        .find(|m| m.name == member)
        .map(|m| m.state)
        .unwrap_or_else(|| "absent".into())
}

fn reachability_of(n: &Node, member: &str) -> String {
    n.cluster_status()
        .members
        .into_iter()
        .find(|m| m.name == member)
        .map(|m| m.reachability)
        .unwrap_or_else(|| "absent".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_cut_shows_as_unreachable_pairs_and_fails_calls_fast_until_healed() {
    let net = MemoryNetwork::new();
    let a = node(&net, "a", None);
    let b = node(&net, "b", Some(&a));
    let c = node(&net, "c", Some(&a));
    b.spawn(here("on-b", "b")).await.unwrap();
    c.spawn(here("on-c", "c")).await.unwrap();
    let nodes = [&a, &b, &c];
    eventually("every call path works", BOUND, || async {
        ask_where(&a, "on-c").await.is_ok_and(|w| w == "c")
            && ask_where(&a, "on-b").await.is_ok()
            && ask_where(&b, "on-c").await.is_ok()
            && ask_where(&c, "on-b").await.is_ok()
    })
    .await;
    eventually("every member up everywhere", BOUND, || async {
        nodes
            .iter()
            .all(|n| n.cluster_status().members.iter().all(|m| m.state == "up"))
    })
    .await;
    for n in nodes {
        assert!(n.cluster_status().unreachable.is_empty(), "{}", n.name());
    }

    net.cut("a", "c");
    let cut_at = Instant::now();
    // a and c each see the other unreachable, by themselves, in time.
    eventually("a and c see each other unreachable", BOUND, || async {
        reachability_of(&a, "c") == "unreachable" && reachability_of(&c, "a") == "unreachable"
    })
    .await;
    let noticed = cut_at.elapsed();
    // Every node lists both pairs (b through the gossip).
    eventually("every node lists the pairs", BOUND, || async {
        nodes
            .iter()
            .all(|n| n.cluster_status().unreachable == [pair("a", "c"), pair("c", "a")])
    })
    .await;
    let everywhere = cut_at.elapsed();
    eprintln!(
        "partial cut: seen by a and c after {noticed:?}, listed on every node after {everywhere:?}"
    );
    assert!(
        noticed <= DETECTION_TARGET,
        "unreachable after {noticed:?}, target {DETECTION_TARGET:?}"
    );
    assert!(
        everywhere <= DETECTION_TARGET,
        "pairs on every node after {everywhere:?}, target {DETECTION_TARGET:?}"
    );
    // SWIM still holds everyone alive (b probes for them).
    for n in nodes {
        for m in n.cluster_status().members {
            assert_eq!(m.status, "alive", "{} sees {m:?}", n.name());
        }
    }
    assert_eq!(reachability_of(&a, "b"), "reachable");
    assert_eq!(reachability_of(&b, "c"), "reachable");
    // Unreachable is beside the state, not one: c is still up.
    assert_eq!(state_of(&a, "c"), "up");

    // a → what only c runs: a typed error, at once.
    let t = Instant::now();
    let err = ask_where(&a, "on-c").await.unwrap_err();
    let took = t.elapsed();
    eprintln!("a → on-c: {err:?} after {took:?}");
    assert_eq!(err, CallError::Unreachable { node: "c".into() });
    assert!(err.is_retryable());
    assert!(took < ASK_TIMEOUT / 10, "failed after {took:?}");
    let err = ask_where(&c, "on-b").await;
    assert_eq!(err.as_deref(), Ok("b"), "c → b works");
    // The other pairs keep working.
    assert_eq!(ask_where(&a, "on-b").await.as_deref(), Ok("b"));
    assert_eq!(ask_where(&b, "on-c").await.as_deref(), Ok("c"));
    // A JSON call (the gateway's path) fails the same way.
    let json = a
        .call_json(
            "on-c",
            "reach.Where",
            msa_runtime::JsonBody::Bytes(b"null"),
            msa_runtime::Metadata::new(),
            Some(ASK_TIMEOUT),
        )
        .unwrap()
        .await;
    assert_eq!(
        json.unwrap_err(),
        CallError::Unreachable { node: "c".into() }
    );
    assert!(a.remote_stats().unreachable_marks >= 1);
    assert!(a.remote_stats().unreachable_calls >= 2);

    net.heal_all();
    let healed_at = Instant::now();
    eventually("everything reachable and callable again", BOUND, || async {
        nodes
            .iter()
            .all(|n| n.cluster_status().unreachable.is_empty())
            && reachability_of(&a, "c") == "reachable"
            && ask_where(&a, "on-c").await.as_deref() == Ok("c")
            && ask_where(&c, "on-b").await.as_deref() == Ok("b")
    })
    .await;
    eprintln!(
        "after the heal: no pair left and a → on-c answered after {:?}",
        healed_at.elapsed()
    );
    // A graceful leave: removed, for the others.
    c.shutdown(GRACE).await.unwrap();
    eventually("c removed on a and b", BOUND, || async {
        state_of(&a, "c") == "removed" && state_of(&b, "c") == "removed"
    })
    .await;
    for n in [b, a] {
        n.shutdown(GRACE).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_joining_gets_a_retryable_error_until_the_tables_arrive() {
    let net = MemoryNetwork::new();
    let a = node(&net, "a", None);
    let b = node(&net, "b", Some(&a));
    b.spawn(here("on-b", "b")).await.unwrap();
    eventually("a calls b", BOUND, || async {
        ask_where(&a, "on-b").await.is_ok()
    })
    .await;
    // d's links are slow, so its handshakes and tables take a while.
    net.set_latency("d", "a", Duration::from_millis(150));
    net.set_latency("d", "b", Duration::from_millis(150));
    let d = node(&net, "d", Some(&a));
    assert!(
        !d.tables_pending().is_empty(),
        "the seed is pending at start"
    );
    let (mut pending_errors, mut joining_errors) = (0, 0);
    let t0 = Instant::now();
    loop {
        match ask_where(&d, "on-b").await {
            Ok(w) => {
                assert_eq!(w, "b");
                break;
            }
            Err(CallError::TablesPending { service, nodes }) => {
                assert_eq!(service, "on-b");
                assert!(!nodes.is_empty());
                pending_errors += 1;
            }
            // Still joining (not admitted yet): refused at once, as
            // retryable (docs/cluster.md, "Joining").
            Err(CallError::Joining { node }) => {
                assert_eq!(node, "d");
                joining_errors += 1;
            }
            Err(other) => panic!(
                "before the tables arrived: {other:?} (want TablesPending or Joining) after {:?}; pending now {:?}, status {:?}",
                t0.elapsed(),
                d.tables_pending(),
                d.cluster_status()
            ),
        }
        assert!(t0.elapsed() < BOUND, "the tables never arrived");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        pending_errors + joining_errors > 0,
        "a call was made before the tables arrived"
    );
    eventually("no table pending", BOUND, || async {
        d.tables_pending().is_empty()
    })
    .await;
    // A service nobody runs is unknown once every table is in.
    assert_eq!(
        ask_where(&d, "nowhere").await.unwrap_err(),
        CallError::UnknownService {
            service: "nowhere".into()
        }
    );
    assert!(d.remote_stats().unreachable_calls >= pending_errors);
    assert!(d.remote_stats().downed_calls >= joining_errors);
    for n in [d, b, a] {
        n.shutdown(GRACE).await.unwrap();
    }
}
