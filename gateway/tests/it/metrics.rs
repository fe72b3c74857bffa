//! `GET /metrics` over real HTTP, read back with a Prometheus parser.
use std::time::Duration;

use awc::http::Method;
use msa_gateway::{Gateway, GatewayConfig, GatewayHandle};
use msa_runtime::Node;
use prometheus_parse::{LineInfo, Sample, Scrape, Value};

const GRACE: Duration = Duration::from_secs(5);
const CALL_ROUTE: (&str, &str) = ("route", "/v1/:service/:message");

async fn start(name: &str) -> (Node, GatewayHandle, String) {
    // As `msa node` runs a node with a gateway: mailbox depth counted.
    let node = Node::builder()
        .name(name)
        .arbiters(1)
        .track_mailbox_depth(true)
        .start()
        .unwrap();
    node.spawn(msa_actors::echo::echo_spec("echo"))
        .await
        .unwrap();
    let config = GatewayConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        ..GatewayConfig::default()
    };
    let gateway = Gateway::start(node.clone(), config).unwrap();
    let base = format!("http://{}", gateway.local_addr());
    (node, gateway, base)
}

/// `GET /metrics`, checked for status and content type, parsed with
/// prometheus-parse after checking it understood every line.
async fn scrape(client: &awc::Client, base: &str) -> Scrape {
    let mut res = client.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let content_type = res.headers().get("content-type").unwrap().to_str().unwrap();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let body = res.body().limit(16 << 20).await.unwrap();
    let text = std::str::from_utf8(&body).unwrap();
    for line in text.lines() {
        assert!(
            !matches!(LineInfo::parse(line), LineInfo::Ignored),
            "prometheus-parse cannot read line {line:?}"
        );
    }
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap()
}

fn find<'a>(scrape: &'a Scrape, metric: &str, labels: &[(&str, &str)]) -> Option<&'a Sample> {
    scrape.samples.iter().find(|s| {
        s.metric == metric
            // Every series also carries `node`, checked on its own.
            && s.labels.len() == labels.len() + usize::from(s.labels.get("node").is_some())
            && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
    })
}

fn value(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    match find(scrape, metric, labels).map(|s| &s.value) {
        Some(Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v)) => *v,
        other => panic!("{metric}{labels:?}: {other:?}"),
    }
}

fn histogram_total(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    match find(scrape, metric, labels).map(|s| &s.value) {
        Some(Value::Histogram(buckets)) => {
            buckets
                .iter()
                .find(|b| b.less_than == f64::INFINITY)
                .expect("an +Inf bucket")
                .count
        }
        other => panic!("{metric}{labels:?}: {other:?}"),
    }
}

fn requests(scrape: &Scrape, route: &str, method: &str, status: &str) -> f64 {
    let labels = [("route", route), ("method", method), ("status", status)];
    find(scrape, "msa_gateway_requests_total", &labels).map_or(0.0, |s| match s.value {
        Value::Counter(v) => v,
        ref other => panic!("not a counter: {other:?}"),
    })
}

#[actix_rt::test]
async fn metrics_count_calls_made_through_the_gateway() {
    let (node, gateway, base) = start("metrics-http").await;
    let client = awc::Client::new();
    for _ in 0..3 {
        let mut res = client
            .post(format!("{base}/v1/echo/echo.Echo"))
            .insert_header(("content-type", "application/json"))
            .send_body(r#""hi""#)
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.body().await.unwrap(), r#""hi""#);
    }
    let res = client
        .post(format!("{base}/v1/echo/no.SuchMessage"))
        .send_body("{}")
        .await
        .unwrap();
    assert_eq!(res.status(), 404);

    let first = scrape(&client, &base).await;
    let route = CALL_ROUTE.1;
    assert_eq!(requests(&first, route, "POST", "200"), 3.0);
    assert_eq!(requests(&first, route, "POST", "404"), 1.0);
    let duration = "msa_gateway_request_duration_seconds";
    assert_eq!(histogram_total(&first, duration, &[CALL_ROUTE]), 4.0);
    assert_eq!(
        value(&first, &format!("{duration}_count"), &[CALL_ROUTE]),
        4.0
    );
    let echo = [("service", "echo")];
    // The unknown message never reached the service.
    assert_eq!(value(&first, "msa_service_messages_total", &echo), 3.0);
    assert_eq!(value(&first, "msa_service_failures_total", &echo), 0.0);
    assert_eq!(value(&first, "msa_service_mailbox_depth", &echo), 0.0);
    assert_eq!(
        histogram_total(&first, "msa_service_ask_duration_seconds", &echo),
        3.0
    );
    assert_eq!(
        value(&first, "msa_remote_handshake_failures_total", &[]),
        0.0
    );

    // A scrape is recorded once answered, so the next one shows it.
    let second = scrape(&client, &base).await;
    assert_eq!(requests(&second, "/metrics", "GET", "200"), 1.0);
    assert_eq!(requests(&second, route, "POST", "200"), 3.0);

    gateway.stop().await;
    node.shutdown(GRACE).await.unwrap();
}

#[actix_rt::test]
async fn unknown_paths_and_methods_do_not_add_series() {
    let (node, gateway, base) = start("metrics-cardinality").await;
    let client = awc::Client::new();
    for path in ["/nope", "/nope/again", "/x/y/z"] {
        let res = client.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(res.status(), 404, "{path}");
    }
    let brew = Method::from_bytes(b"BREW").unwrap();
    let res = client
        .request(brew, format!("{base}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
    let status = res.status().as_u16().to_string();

    let s = scrape(&client, &base).await;
    let series: Vec<&Sample> = s
        .samples
        .iter()
        .filter(|x| x.metric == "msa_gateway_requests_total")
        .collect();
    assert_eq!(series.len(), 2, "{series:?}");
    assert_eq!(requests(&s, "unmatched", "GET", "404"), 3.0);
    // A method a route does not take (405) is labelled like an unknown path.
    assert_eq!(requests(&s, "unmatched", "OTHER", &status), 1.0);

    gateway.stop().await;
    node.shutdown(GRACE).await.unwrap();
}
