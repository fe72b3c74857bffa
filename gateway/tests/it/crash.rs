//! 1,000 concurrent requests while instances crash: every request gets an
//! answer, none hangs, and the gateway and service recover.

use std::time::Duration;

use crate::support::*;
use futures_util::future::join_all;
use msa_runtime::Node;
use serde_json::json;

#[actix_rt::test]
async fn concurrent_requests_during_crashes_all_get_an_answer() {
    quiet_intended_panics();
    let node = Node::builder().arbiters(1).start().unwrap();
    node.spawn(crashy_spec(4, 10_000)).await.unwrap();
    let f = Fixture::on(node, config());
    let url = f.url("/v1/crashy/crash.Crash");
    let all = async {
        join_all((0..1000u64).map(|n| {
            let req = f.client.post(&url);
            // Every 25th request crashes the instance that takes it.
            let body = json!({"crash": n % 25 == 7, "n": n}).to_string();
            async move { (n, send_req(req, body).await) }
        }))
        .await
    };
    let answers = tokio::time::timeout(Duration::from_secs(120), all)
        .await
        .expect("some request hung");
    let mut ok = 0;
    let mut failed = std::collections::BTreeMap::<u16, usize>::new();
    for (n, r) in &answers {
        match r.status {
            200 => {
                assert_eq!(r.json, json!(n), "{r:?}");
                ok += 1;
            }
            500 | 503 => {
                assert!(r.json["error"].is_string(), "{r:?}");
                assert!(r.header("x-request-id").is_some());
                *failed.entry(r.status).or_default() += 1;
            }
            _ => panic!("unexpected answer to {n}: {r:?}"),
        }
    }
    eprintln!("{ok} ok, failures by status: {failed:?}");
    assert_eq!(answers.len(), 1000);
    // A crash fails its own call and those queued behind it on the dying
    // instance (500, outcome unknown); calls finding no live instance get 503.
    assert!(ok > 0, "{failed:?}");
    assert!(
        failed.values().sum::<usize>() >= 40,
        "the crashing calls fail: {failed:?}"
    );
    // Afterwards: alive, and a normal call succeeds once instances are back.
    assert_eq!(f.send("GET", "/healthz", None, "").await.status, 200);
    eventually(
        "a normal call to succeed again",
        Duration::from_secs(10),
        || async {
            let r = f
                .post("/v1/crashy/crash.Crash", r#"{"crash": false, "n": 5}"#)
                .await;
            r.status == 200 && r.json == json!(5)
        },
    )
    .await;
    f.stop().await;
}
