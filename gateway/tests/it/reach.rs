//! The gateway's answers for services it cannot reach (issue 10 item 3) or
//! cannot see yet (issue 11): 503, never 404, with what the caller needs.

use std::time::Duration;

use crate::support::*;
use msa_runtime::remote::split_brain::{SplitBrainConfig, SplitBrainStrategy};
use msa_runtime::remote::transport::MemoryNetwork;
use msa_runtime::test_support::eventually;
use msa_runtime::Node;
use serde_json::json;

const SECRET: &[u8] = b"gateway-reach";
const BOUND: Duration = Duration::from_secs(20);

fn node(net: &MemoryNetwork, name: &str, seed: Option<String>) -> Node {
    builder(net, name, seed).start().unwrap()
}

fn builder(net: &MemoryNetwork, name: &str, seed: Option<String>) -> msa_runtime::NodeBuilder {
    let mut b = Node::builder()
        .name(name)
        .arbiters(1)
        .transport(net.clone())
        .listen_on(format!("{name}:0"))
        .secret(SECRET);
    if let Some(s) = seed {
        b = b.seed(s);
    }
    b
}

fn entry(status: &str, state: &str, reachability: &str) -> (String, String, String) {
    (status.into(), state.into(), reachability.into())
}

/// A partial cut (a ⇄ c, b reaches both) in `/v1/cluster` (issue 10 items
/// 2 and 3): b lists the unreachable pairs of the whole cluster and every
/// member `alive`, `up` and `reachable`; a lists c `unreachable` beside
/// its membership status and its `up` state; after the heal no pair is
/// left.
#[actix_rt::test]
async fn in_a_partial_cut_v1_cluster_lists_the_unreachable_pairs_and_each_members_state() {
    let net = MemoryNetwork::new();
    // No split-brain policy: the cut stays as it is while it is looked at
    // (with one, its ends are downed after `stable_after`; the runtime's
    // tests cover that).
    let off = SplitBrainConfig::new(SplitBrainStrategy::Off, Duration::from_secs(5)).unwrap();
    let a = builder(&net, "a", None).split_brain(off).start().unwrap();
    let b = builder(&net, "b", a.remote_addr())
        .split_brain(off)
        .start()
        .unwrap();
    let c = builder(&net, "c", a.remote_addr())
        .split_brain(off)
        .start()
        .unwrap();
    let on_a = Fixture::on(a.clone(), config());
    let on_b = Fixture::on(b.clone(), config());
    let up = entry("alive", "up", "reachable");
    eventually(
        "every member up and reachable on a and b",
        BOUND,
        || async {
            let (va, vb) = (cluster_view(&on_a).await, cluster_view(&on_b).await);
            ["a", "b", "c"]
                .iter()
                .all(|n| member(&va, n) == up && member(&vb, n) == up)
                && pairs(&va).is_empty()
                && pairs(&vb).is_empty()
        },
    )
    .await;

    // a ⇄ c cut, b reaches both.
    net.cut("a", "c");
    let cut_pairs = vec![("a".into(), "c".into()), ("c".into(), "a".into())];
    eventually(
        "b lists both pairs, every member up and reachable",
        BOUND,
        || async {
            let vb = cluster_view(&on_b).await;
            pairs(&vb) == cut_pairs && ["a", "b", "c"].iter().all(|n| member(&vb, n) == up)
        },
    )
    .await;
    // a: c is unreachable from here, yet a member (SWIM reaches it through
    // b) and `up`: reachability is beside the state.
    eventually("a lists c unreachable and up", BOUND, || async {
        let va = cluster_view(&on_a).await;
        let (status, state, reach) = member(&va, "c");
        (status == "alive" || status == "suspect")
            && state == "up"
            && reach == "unreachable"
            && member(&va, "b") == up
            && member(&va, "a") == up
            && pairs(&va).contains(&("a".into(), "c".into()))
    })
    .await;
    // Still so on b a moment later: the cut is not undone by gossip.
    let vb = cluster_view(&on_b).await;
    assert_eq!(pairs(&vb), cut_pairs, "{vb}");

    net.heal_all();
    eventually(
        "no pair left, every member reachable again",
        BOUND,
        || async {
            let (va, vb) = (cluster_view(&on_a).await, cluster_view(&on_b).await);
            ["a", "b", "c"]
                .iter()
                .all(|n| member(&va, n) == up && member(&vb, n) == up)
                && pairs(&va).is_empty()
                && pairs(&vb).is_empty()
        },
    )
    .await;
    on_a.stop().await;
    on_b.stop().await;
    c.shutdown(GRACE).await.unwrap();
}

#[actix_rt::test]
async fn a_service_only_on_an_unreachable_node_is_a_503_naming_the_node() {
    let net = MemoryNetwork::new();
    let a = node(&net, "a", None);
    let b = node(&net, "b", a.remote_addr());
    let c = node(&net, "c", a.remote_addr());
    c.spawn(calc_spec()).await.unwrap();
    let f = Fixture::on(a, config());
    eventually("the gateway on a reaches calc on c", BOUND, || async {
        f.post("/v1/calc/calc.Add", r#"{"a": 1, "b": 2}"#)
            .await
            .status
            == 200
    })
    .await;

    // A partial cut: a ⇄ c cut, b still reaches both.
    net.cut("a", "c");
    eventually("a 503 naming c", BOUND, || async {
        let r = f.post("/v1/calc/calc.Add", r#"{"a": 1, "b": 2}"#).await;
        assert!(
            r.status == 200 || r.status == 503,
            "only a success or a 503 while the cut is noticed: {r:?}"
        );
        r.status == 503 && r.json["node"] == json!("c")
    })
    .await;
    let r = f.post("/v1/calc/calc.Add", r#"{"a": 1, "b": 2}"#).await;
    let message = r.error(503, "unavailable");
    assert!(message.contains("`c`"), "{message}");
    assert!(r.header("retry-after").is_none());

    net.heal_all();
    eventually("calls through the gateway work again", BOUND, || async {
        f.post("/v1/calc/calc.Add", r#"{"a": 1, "b": 2}"#)
            .await
            .status
            == 200
    })
    .await;
    f.stop().await;
    for n in [c, b] {
        n.shutdown(GRACE).await.unwrap();
    }
}

#[actix_rt::test]
async fn before_the_tables_arrive_an_unseen_service_is_a_503_with_retry_after() {
    let net = MemoryNetwork::new();
    // Its other seed never answers, so no table ever arrives. It is the
    // first of its seeds (a seed list naming itself first, as
    // deploy/docker-compose.yml's node1), so it may found the cluster
    // (only the first seed may be up alone). In-memory addresses: no port.
    let lonely = builder(&net, "lonely", Some("lonely:1".into()))
        .listen_on("lonely:1")
        .seed("nobody:1")
        .start()
        .unwrap();
    assert_eq!(lonely.tables_pending(), ["nobody:1"]);
    let f = Fixture::on(lonely.clone(), config());
    // First it is joining (its seed has not admitted it): 503 at once.
    if lonely.is_joining() {
        let r = f.post("/v1/calc/calc.Add", r#"{"a": 1, "b": 2}"#).await;
        let message = r.error(503, "unavailable");
        assert!(message.contains("joining"), "{message}");
        assert_eq!(r.header("retry-after"), Some("1"));
    }
    // Its other seed refuses every dial (nothing listens there), so the
    // first seed is up alone after JOIN_ALONE_AFTER; that seed's table is
    // still pending.
    eventually("lonely is up alone", BOUND, || async {
        !lonely.is_joining()
    })
    .await;
    let r = f.post("/v1/calc/calc.Add", r#"{"a": 1, "b": 2}"#).await;
    let message = r.error(503, "unavailable");
    assert!(message.contains("nobody:1"), "{message}");
    assert_eq!(r.header("retry-after"), Some("1"));
    f.stop().await;

    // Without seeds nothing is pending: an unknown service is a 404.
    let alone = node(&net, "alone", None);
    assert!(alone.tables_pending().is_empty());
    let f = Fixture::on(alone, config());
    f.post("/v1/calc/calc.Add", r#"{"a": 1, "b": 2}"#)
        .await
        .error(404, "not_found");
    f.stop().await;
}
