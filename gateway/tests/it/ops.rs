//! Operations endpoints over real HTTP: health, readiness, metrics and the
//! cluster view.

use std::time::Duration;

use crate::support::*;
use msa_runtime::Node;
use serde_json::json;

#[actix_rt::test]
async fn healthz_is_always_ok() {
    let f = Fixture::start(config()).await;
    let r = f.send("GET", "/healthz", None, "").await;
    assert_eq!((r.status, r.json.clone()), (200, json!({"status": "ok"})));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(r.header("x-request-id").is_some());
    f.stop().await;
}

#[actix_rt::test]
async fn readyz_turns_503_with_reasons_when_a_service_fails() {
    let f = Fixture::start(config()).await;
    let r = f.send("GET", "/readyz", None, "").await;
    assert_eq!(
        (r.status, r.json.clone()),
        (200, json!({"status": "ready"}))
    );
    // Crash a service beyond its restart intensity: it fails for good.
    quiet_intended_panics();
    f.node.spawn(crashy_spec(1, 1)).await.unwrap();
    let crash = r#"{"crash": true, "n": 0}"#;
    eventually("readyz to turn 503", Duration::from_secs(10), || async {
        f.post("/v1/crashy/crash.Crash", crash).await;
        f.send("GET", "/readyz", None, "").await.status == 503
    })
    .await;
    let r = f.send("GET", "/readyz", None, "").await;
    assert_eq!(r.json["status"], "not_ready");
    let reasons = r.json["reasons"].as_array().unwrap();
    assert!(
        reasons
            .iter()
            .any(|x| x.as_str().unwrap().contains("crashy")),
        "{reasons:?}"
    );
    // Alive all the same.
    assert_eq!(f.send("GET", "/healthz", None, "").await.status, 200);
    f.stop().await;
}

#[actix_rt::test]
async fn readyz_waits_for_a_clustered_node_to_join() {
    let node = Node::builder()
        .name("ready-node")
        .arbiters(1)
        .listen("127.0.0.1:0".parse().unwrap())
        .start()
        .unwrap();
    node.spawn(calc_spec()).await.unwrap();
    let f = Fixture::on(node, config());
    eventually("readyz to turn 200", Duration::from_secs(10), || async {
        f.send("GET", "/readyz", None, "").await.status == 200
    })
    .await;
    let r = f.send("GET", "/v1/cluster", None, "").await;
    let members = r.json["members"].as_array().unwrap();
    assert!(members.iter().any(|m| m["name"] == "ready-node"), "{r:?}");
    f.stop().await;
}

#[actix_rt::test]
async fn readyz_waits_for_a_node_with_seeds_to_reach_a_member() {
    // A seed nobody listens on: the node cannot join.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap().to_string();
    drop(dead);
    let lonely = Node::builder()
        .name("lonely")
        .arbiters(1)
        .listen("127.0.0.1:0".parse().unwrap())
        .seed(dead_addr)
        .start()
        .unwrap();
    let f = Fixture::on(lonely, config());
    let r = f.send("GET", "/readyz", None, "").await;
    assert_eq!(r.status, 503, "{r:?}");
    assert!(
        r.json["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m.as_str().unwrap().contains("seeds")),
        "{r:?}"
    );
    f.stop().await;

    // Through a live seed it becomes ready.
    let first = Node::builder()
        .name("first")
        .arbiters(1)
        .listen("127.0.0.1:0".parse().unwrap())
        .start()
        .unwrap();
    let second = Node::builder()
        .name("second")
        .arbiters(1)
        .listen("127.0.0.1:0".parse().unwrap())
        .seed(first.remote_addr().unwrap())
        .start()
        .unwrap();
    let f = Fixture::on(second, config());
    eventually("readyz to turn 200", Duration::from_secs(10), || async {
        f.send("GET", "/readyz", None, "").await.status == 200
    })
    .await;
    f.stop().await;
    first.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[actix_rt::test]
async fn metrics_are_served_in_the_prometheus_text_format() {
    let f = Fixture::start(config()).await;
    assert_eq!(
        f.post("/v1/calc/calc.Add", r#"{"a":1,"b":2}"#).await.status,
        200
    );
    let r = f.send("GET", "/metrics", None, "").await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    let text = String::from_utf8(r.raw).unwrap();
    assert!(text.contains("msa_gateway_requests_total"), "{text}");
    assert!(text.contains("msa_service_messages_total"), "{text}");
    // The route label is the pattern, never the raw path.
    assert!(!text.contains("calc.Add"), "{text}");
    f.stop().await;
}

#[actix_rt::test]
async fn the_cluster_view_lists_services_with_their_messages_and_schemas() {
    let f = Fixture::start(config()).await;
    let r = f.send("GET", "/v1/cluster", None, "").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["members"], json!([]), "no remoting: no members");
    let services = r.json["services"].as_array().unwrap();
    let calc = services.iter().find(|s| s["name"] == "calc").unwrap();
    assert_eq!(calc["nodes"], json!([f.node.name()]));
    let messages = calc["messages"].as_array().unwrap();
    let names: Vec<&str> = messages
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"calc.Add") && names.contains(&"shop.GetOrder"),
        "{names:?}"
    );
    let add = messages.iter().find(|m| m["name"] == "calc.Add").unwrap();
    assert_eq!(add["schema"]["properties"]["a"]["type"], "integer", "{add}");
    let get = messages
        .iter()
        .find(|m| m["name"] == "shop.GetOrder")
        .unwrap();
    // Without `schema`, the JSON schema is traced from the serde shape.
    let def = &get["schema"]["$defs"]["GetOrder"];
    assert_eq!(def["properties"]["id"]["type"], "integer", "{get}");
    f.stop().await;
}
