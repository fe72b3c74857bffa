//! One gateway request followed across nodes in the logs: the trace id the
//! client sends in `traceparent` shows up on the node that serves the call
//! and on the nodes it calls in turn.

use std::time::Duration;

use crate::support::log_capture::LogCapture;

use msa_actors::shop;
use msa_gateway::{Gateway, GatewayConfig};
use msa_runtime::test_support::remote_added;
use msa_runtime::Node;

const SECRET: &[u8] = b"trace-across-nodes";
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

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

#[test]
fn a_gateway_requests_trace_id_is_logged_on_every_node_it_reaches() {
    // The lines logged inside this request's trace, whatever other tests log
    // meanwhile.
    let logs = LogCapture::keyed("trace_id", TRACE, tracing::Level::INFO);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // node-gw runs orders and the gateway; node-stock runs inventory and
        // payments: PlaceOrder crosses to the other node twice.
        let gw = clustered("node-gw", None);
        let stock = clustered("node-stock", gw.remote_addr());
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
        let url = format!("http://{}/v1/orders/shop.PlaceOrder", handle.local_addr());
        let traceparent = format!("00-{TRACE}-00f067aa0ba902b7-01");
        let (status, body) = std::thread::spawn(move || {
            actix_rt::System::new().block_on(async move {
                let mut r = awc::Client::new()
                    .post(url)
                    .insert_header(("traceparent", traceparent))
                    .insert_header(("content-type", "application/json"))
                    .send_body(r#"{"sku":"book","qty":1}"#)
                    .await
                    .unwrap();
                (r.status().as_u16(), r.body().await.unwrap())
            })
        })
        .join()
        .unwrap();
        assert_eq!(status, 200, "{body:?}");
        let order: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(order["status"], "Confirmed", "{order}");

        handle.stop().await;
        stock.shutdown(Duration::from_secs(5)).await.unwrap();
        gw.shutdown(Duration::from_secs(5)).await.unwrap();
    });

    let out = logs.text();
    let traced = |what: &str| {
        out.lines()
            .find(|l| l.contains(what) && l.contains(&format!("trace_id={TRACE}")))
            .unwrap_or_else(|| panic!("no traced `{what}` line in:\n{out}"))
            .to_string()
    };
    assert!(traced("reserved").contains("node=node-stock"));
    assert!(traced("charged").contains("node=node-stock"));
}
