//! `GET /v1/topics/{topic}`: a topic's events as server-sent events.

use std::time::Duration;

use futures_util::StreamExt;
use msa_gateway::{hs256_token, AuthConfig, GatewayConfig, PolicyRule};
use msa_runtime::prelude::*;
use serde::{Deserialize, Serialize};

use crate::support::*;

#[derive(Debug, Clone, PartialEq, actix::Message, Serialize, Deserialize, RemoteMessage)]
#[msa(name = "shop.TestOrderPlaced")]
#[rtype(result = "()")]
struct Placed {
    id: u64,
}

const TOPIC: &str = "orders.events";
const WAIT: Duration = Duration::from_secs(10);
const SECRET: &str = "sse-test-secret";

type Body = awc::ClientResponse;

/// Reads the stream until `text` holds `needle` (bounded by `WAIT`).
async fn read_until(res: &mut Body, text: &mut String, needle: &str) {
    tokio::time::timeout(WAIT, async {
        while !text.contains(needle) {
            let chunk = res.next().await.expect("stream open").expect("chunk");
            text.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    })
    .await
    .unwrap_or_else(|_| panic!("`{needle}` within the wait; got {text:?}"));
}

async fn open(f: &Fixture, path: &str, token: Option<&str>) -> Body {
    let mut req = f.client.get(f.url(path));
    if let Some(t) = token {
        req = req.insert_header(("authorization", format!("Bearer {t}")));
    }
    req.send().await.unwrap()
}

#[actix_rt::test]
async fn events_stream_as_json_with_heartbeats_and_the_subscription_ends_with_the_client() {
    let f = Fixture::start(GatewayConfig {
        sse_heartbeat_ms: 50,
        ..config()
    })
    .await;
    let topic = f.node.topic::<Placed>(TOPIC);
    let mut res = open(&f, "/v1/topics/orders.events", None).await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers().get("content-type").unwrap(),
        "text/event-stream"
    );
    let mut text = String::new();
    read_until(&mut res, &mut text, ": subscribed").await;
    assert_eq!(topic.local_subscribers(), 1);
    topic.publish(Placed { id: 7 });
    read_until(
        &mut res,
        &mut text,
        "event: shop.TestOrderPlaced\ndata: {\"id\":7}\n\n",
    )
    .await;
    read_until(&mut res, &mut text, ": heartbeat\n\n").await;
    // The client goes away: its subscription is dropped.
    drop(res);
    eventually("the subscription ends", WAIT, || {
        let n = topic.local_subscribers();
        async move { n == 0 }
    })
    .await;
    f.stop().await;
}

/// Events delivered and events missed (from `lagged` events) in `text`.
fn tally(text: &str) -> (u64, u64) {
    let events = text.matches("event: shop.TestOrderPlaced\n").count() as u64;
    let missed = text
        .split("event: lagged\ndata: {\"missed\":")
        .skip(1)
        .filter_map(|s| s.split('}').next()?.parse::<u64>().ok())
        .sum();
    (events, missed)
}

#[actix_rt::test]
async fn a_client_behind_its_buffer_gets_lagged_events_that_account_for_every_event() {
    let f = Fixture::start(GatewayConfig {
        sse_buffer: 2,
        ..config()
    })
    .await;
    let topic = f.node.topic::<Placed>(TOPIC);
    let mut res = open(&f, "/v1/topics/orders.events", None).await;
    let mut text = String::new();
    read_until(&mut res, &mut text, ": subscribed").await;
    const N: u64 = 10_000;
    for id in 0..N {
        topic.publish(Placed { id });
    }
    // Read until every event of the burst is accounted for: delivered, or
    // counted in a `lagged` event.
    tokio::time::timeout(WAIT, async {
        while tally(&text).0 + tally(&text).1 < N {
            let chunk = res.next().await.expect("stream open").expect("chunk");
            text.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the burst accounted for; got {:?}", tally(&text)));
    let (events, missed) = tally(&text);
    assert!(missed > 0, "a buffer of 2 cannot hold a burst of {N}");
    assert_eq!(events + missed, N, "every event delivered or counted");
    assert_eq!(f.node.topic_stats().lagged, missed);
    // Caught up: the next event arrives.
    topic.publish(Placed { id: N });
    read_until(&mut res, &mut text, &format!("data: {{\"id\":{N}}}\n\n")).await;
    drop(res);
    f.stop().await;
}

#[actix_rt::test]
async fn topics_follow_the_policy_and_bad_names_are_refused() {
    let f = Fixture::start(GatewayConfig {
        auth: Some(AuthConfig::hs256(SECRET)),
        policy: vec![PolicyRule {
            service: "@topics".into(),
            message: "orders.*".into(),
            roles: vec!["customer".into()],
        }],
        ..config()
    })
    .await;
    let customer = hs256_token(SECRET, "c", &["customer"], Duration::from_secs(60)).unwrap();
    let res = open(&f, "/v1/topics/orders.events", Some(&customer)).await;
    assert_eq!(res.status(), 200);
    drop(res);
    let r = f
        .send("GET", "/v1/topics/admin.events", Some(&customer), "")
        .await;
    assert!(r.error(403, "forbidden").contains("admin.events"));
    let r = f.send("GET", "/v1/topics/orders.events", None, "").await;
    r.error(401, "unauthorized");
    let r = f
        .send("GET", "/v1/topics/bad%20name", Some(&customer), "")
        .await;
    r.error(400, "bad_request");
    f.stop().await;
}
