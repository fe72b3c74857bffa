//! The gateway's answers for services it cannot reach (issue 10 item 3) or
//! cannot see yet (issue 11): 503, never 404, with what the caller needs.

use std::time::Duration;

use crate::support::*;
use msa_runtime::remote::transport::MemoryNetwork;
use msa_runtime::test_support::eventually;
use msa_runtime::Node;
use serde_json::json;

const SECRET: &[u8] = b"gateway-reach";
const BOUND: Duration = Duration::from_secs(20);

fn node(net: &MemoryNetwork, name: &str, seed: Option<String>) -> Node {
    let mut b = Node::builder()
        .name(name)
        .arbiters(1)
        .transport(net.clone())
        .listen_on(format!("{name}:0"))
        .secret(SECRET);
    if let Some(s) = seed {
        b = b.seed(s);
    }
    b.start().unwrap()
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
    // Its seed never answers, so no table ever arrives.
    let lonely = node(&net, "lonely", Some("nobody:1".into()));
    assert_eq!(lonely.tables_pending(), ["nobody:1"]);
    let f = Fixture::on(lonely.clone(), config());
    // First it is joining (its seed has not admitted it): 503 at once.
    if lonely.is_joining() {
        let r = f.post("/v1/calc/calc.Add", r#"{"a": 1, "b": 2}"#).await;
        let message = r.error(503, "unavailable");
        assert!(message.contains("joining"), "{message}");
        assert_eq!(r.header("retry-after"), Some("1"));
    }
    // Its seed refuses every dial (nothing listens there), so it is up
    // alone after JOIN_ALONE_AFTER; its seed's table is still pending.
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
