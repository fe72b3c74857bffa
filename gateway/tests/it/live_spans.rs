//! The gateway's hop in the live view: a request through the gateway
//! leaves a `gateway` span on the gateway's node that is the parent of the
//! served call's span, whose own calls on another node are its children
//! (docs/live-view.md, "Spans and live reports").

use std::time::Duration;

use msa_actors::shop;
use msa_gateway::{Gateway, GatewayConfig};
use msa_runtime::live::{LiveQuery, SpanKind, SpanRecord};
use msa_runtime::test_support::remote_added;
use msa_runtime::Node;

const SECRET: &[u8] = b"live-spans";
const TRACE: u128 = 0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4737;
const CALLER_SPAN: u64 = 0x00f0_67aa_0ba9_02b7;

fn clustered(name: &str, seed: Option<String>) -> Node {
    let mut b = Node::builder()
        .name(name)
        .arbiters(1)
        .listen("127.0.0.1:0".parse().unwrap())
        .secret(SECRET);
    if let Some(s) = seed {
        b = b.seed(s);
    }
    b.start().unwrap()
}

/// POSTs `body` to `url` with a `traceparent` naming [`TRACE`]; the status.
fn post(url: String, body: &'static str) -> u16 {
    let traceparent = format!("00-{TRACE:032x}-{CALLER_SPAN:016x}-01");
    std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            let r = awc::Client::new()
                .post(url)
                .insert_header(("traceparent", traceparent))
                .insert_header(("content-type", "application/json"))
                .send_body(body)
                .await
                .unwrap();
            r.status().as_u16()
        })
    })
    .join()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_request_leaves_a_gateway_span_that_parents_the_served_calls() {
    let gw = clustered("live-gw", None);
    let stock = clustered("live-stock", gw.remote_addr());
    let mut w = gw.watch();
    gw.spawn(shop::orders_spec()).await.unwrap();
    stock.spawn(shop::inventory_spec()).await.unwrap();
    stock.spawn(shop::payments_spec()).await.unwrap();
    remote_added(
        Duration::from_secs(20),
        &mut w,
        &[shop::INVENTORY, shop::PAYMENTS],
    )
    .await;
    let handle = Gateway::start(
        gw.clone(),
        GatewayConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            ..Default::default()
        },
    )
    .unwrap();
    let base = format!("http://{}", handle.local_addr());
    let status = post(
        format!("{base}/v1/orders/shop.PlaceOrder"),
        r#"{"sku":"book","qty":1}"#,
    );
    assert_eq!(status, 200);

    let live = gw.cluster_live_report(LiveQuery::new()).await;
    assert!(live.unreachable().is_empty(), "{:?}", live.peers);
    let spans: Vec<&SpanRecord> = live
        .spans()
        .into_iter()
        .filter(|s| s.trace_id == TRACE)
        .collect();
    let hop = spans
        .iter()
        .find(|s| s.kind == SpanKind::Gateway)
        .unwrap_or_else(|| panic!("no gateway span in {spans:#?}"));
    assert_eq!(
        (
            hop.node.as_str(),
            hop.service.as_str(),
            hop.message.as_str()
        ),
        ("live-gw", "orders", "shop.PlaceOrder")
    );
    assert_eq!(hop.parent_span_id, CALLER_SPAN);
    assert_eq!((hop.outcome.as_str(), hop.instance), ("ok", None));
    let orders = spans
        .iter()
        .find(|s| s.kind == SpanKind::Served && s.service == "orders")
        .unwrap_or_else(|| panic!("no orders span in {spans:#?}"));
    assert_eq!(orders.parent_span_id, hop.span_id);
    assert_eq!(orders.node, "live-gw");
    assert!(hop.duration_us >= orders.duration_us);
    // Orders' calls to the other node are its children there.
    let children: Vec<&&SpanRecord> = spans
        .iter()
        .filter(|s| s.parent_span_id == orders.span_id)
        .collect();
    assert!(!children.is_empty(), "{spans:#?}");
    assert!(
        children.iter().all(|s| s.node == "live-stock"),
        "{children:#?}"
    );

    // A refused request's hop carries its status as the outcome.
    let status = post(format!("{base}/v1/orders/shop.PlaceOrder"), "not json");
    assert_ne!(status, 200);
    let local = gw.live_report(&LiveQuery::new().service("orders"));
    let last = local
        .spans
        .iter()
        .rev()
        .find(|s| s.kind == SpanKind::Gateway)
        .unwrap();
    assert_eq!(last.outcome, SpanRecord::outcome_for_http_status(status));
    assert_ne!(last.outcome, "ok");

    handle.stop().await;
    stock.shutdown(Duration::from_secs(5)).await.unwrap();
    gw.shutdown(Duration::from_secs(5)).await.unwrap();
}
