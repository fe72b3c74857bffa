//! A node downed by the split-brain resolver (issue 10 item 2): its gateway
//! answers 503 at once for every call, its own services included, and
//! `/readyz` 503 with the reason, until it rejoins after the heal;
//! `/v1/cluster` on both sides shows it `down`.

use std::time::{Duration, Instant};

use crate::support::*;
use msa_runtime::remote::split_brain::{SplitBrainConfig, SplitBrainStrategy};
use msa_runtime::remote::transport::MemoryNetwork;
use msa_runtime::test_support::eventually;
use msa_runtime::Node;
use serde_json::json;

const SECRET: &[u8] = b"gateway-sbr";
const BOUND: Duration = Duration::from_secs(40);

fn node(net: &MemoryNetwork, name: &str, seed: Option<String>) -> Node {
    let policy =
        SplitBrainConfig::new(SplitBrainStrategy::KeepMajority, Duration::from_secs(1)).unwrap();
    let mut b = Node::builder()
        .name(name)
        .arbiters(1)
        .transport(net.clone())
        .listen_on(format!("{name}:0"))
        .secret(SECRET)
        .failure_detection(Duration::from_secs(2))
        .split_brain(policy);
    if let Some(s) = seed {
        b = b.seed(s);
    }
    b.start().unwrap()
}

#[actix_rt::test]
async fn a_self_downed_node_answers_503_at_once_and_is_not_ready_until_it_rejoins() {
    let net = MemoryNetwork::new();
    let a = node(&net, "a", None);
    let b = node(&net, "b", a.remote_addr());
    let c = node(&net, "c", a.remote_addr());
    a.spawn(calc_spec()).await.unwrap();
    c.spawn(calc_spec()).await.unwrap();
    let f = Fixture::on(c.clone(), config());
    let on_a = Fixture::on(a.clone(), config());
    eventually("c's gateway is ready and serves", BOUND, || async {
        f.send("GET", "/readyz", None, "").await.status == 200
            && f.post("/v1/calc/calc.Add", r#"{"a": 1, "b": 2}"#)
                .await
                .status
                == 200
    })
    .await;

    // c alone on its side of a partition: it downs itself.
    for other in ["a", "b"] {
        net.cut("c", other);
    }
    eventually("c downs itself", BOUND, || async { c.is_self_downed() }).await;

    // `/v1/cluster` says so on both sides once the resolver decided: c
    // lists itself `down` (status and state), a lists c `down` after
    // downing it by policy (a down member reads `reachable`: reachability
    // is judged of live members only).
    let own = cluster_view(&f).await;
    assert_eq!(
        member(&own, "c"),
        ("down".into(), "down".into(), "reachable".into()),
        "{own}"
    );
    eventually("a downs c by policy", BOUND, || async {
        a.remote_stats().split_brain_downs == 1
            && member(&cluster_view(&on_a).await, "c").0 == "down"
    })
    .await;
    let seen = cluster_view(&on_a).await;
    assert_eq!(
        member(&seen, "c"),
        ("down".into(), "down".into(), "reachable".into()),
        "{seen}"
    );
    assert_eq!(
        member(&seen, "a"),
        ("alive".into(), "up".into(), "reachable".into()),
        "{seen}"
    );

    // Every call is a 503 at once, even to the calc c runs itself.
    let t = Instant::now();
    let r = f.post("/v1/calc/calc.Add", r#"{"a": 1, "b": 2}"#).await;
    let took = t.elapsed();
    let message = r.error(503, "unavailable");
    assert!(message.contains("split-brain"), "{message}");
    assert_eq!(r.json["node"], json!("c"));
    assert!(took < Duration::from_secs(1), "503 after {took:?}");
    let r = f.post("/v1/nothing/x.Y", "{}").await;
    r.error(503, "unavailable");
    let ready = f.send("GET", "/readyz", None, "").await;
    assert_eq!(ready.status, 503, "{ready:?}");
    assert!(
        ready.json["reasons"][0]
            .as_str()
            .unwrap()
            .contains("split-brain"),
        "{ready:?}"
    );

    net.heal_all();
    eventually("c serves and is ready again", BOUND, || async {
        !c.is_self_downed()
            && f.send("GET", "/readyz", None, "").await.status == 200
            && f.post("/v1/calc/calc.Add", r#"{"a": 1, "b": 2}"#)
                .await
                .status
                == 200
    })
    .await;
    f.stop().await;
    on_a.stop().await;
    b.shutdown(GRACE).await.unwrap();
}
