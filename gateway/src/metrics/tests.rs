#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use msa_actors::echo;
use msa_runtime::test_support::remote_added;
use msa_runtime::{JsonBody, Metadata, Node};
use prometheus_parse::{LineInfo, Sample, Scrape, Value};

use super::*;

const GRACE: Duration = Duration::from_secs(5);
const CALL_ROUTE: &str = "/v1/{service}/{message}";

/// Parses with prometheus-parse, after checking that it understood every
/// line (it silently skips lines it cannot read).
fn parse(text: &str) -> Scrape {
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

/// The `+Inf` bucket of a histogram.
fn histogram_total(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    match find(scrape, metric, labels).map(|s| &s.value) {
        Some(Value::Histogram(buckets)) => {
            let inf = buckets.iter().find(|b| b.less_than == f64::INFINITY);
            inf.expect("an +Inf bucket").count
        }
        other => panic!("{metric}{labels:?}: {other:?}"),
    }
}

async fn node_with_echo(name: &str) -> Node {
    let node = Node::builder()
        .name(name)
        .arbiters(1)
        .track_mailbox_depth(true)
        .start()
        .unwrap();
    node.spawn(echo::echo_spec("echo")).await.unwrap();
    node
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mailbox_depth_is_left_out_when_the_node_does_not_count_it() {
    let node = Node::builder().arbiters(1).start().unwrap();
    node.spawn(echo::echo_spec("echo")).await.unwrap();
    let text = Metrics::new(node.clone()).render();
    assert!(text.contains("msa_service_messages_total"), "{text}");
    assert!(!text.contains("msa_service_mailbox_depth"), "{text}");
    node.shutdown(std::time::Duration::from_secs(5))
        .await
        .unwrap();
}

async fn call_echo(node: &Node, calls: usize) {
    for i in 0..calls {
        let reply = node
            .call_json(
                "echo",
                "echo.Echo",
                JsonBody::Bytes(br#""hi""#),
                Metadata::new(),
                None,
            )
            .unwrap()
            .await
            .unwrap();
        assert_eq!(reply, br#""hi""#, "call {i}");
    }
}

#[tokio::test]
async fn render_parses_and_counts_calls_and_requests() {
    let node = node_with_echo("metrics-test").await;
    call_echo(&node, 5).await;
    let metrics = Metrics::new(node.clone());
    for _ in 0..3 {
        metrics.observe_request(CALL_ROUTE, "POST", 200, Duration::from_micros(300));
    }
    metrics.observe_request(CALL_ROUTE, "POST", 404, Duration::from_millis(20));
    metrics.observe_request("/healthz", "GET", 200, Duration::from_secs(60));

    let text = metrics.render();
    let scrape = parse(&text);

    let call = [("route", "/v1/:service/:message")];
    let ok = [call[0], ("method", "POST"), ("status", "200")];
    let not_found = [call[0], ("method", "POST"), ("status", "404")];
    assert_eq!(value(&scrape, "msa_gateway_requests_total", &ok), 3.0);
    assert_eq!(
        value(&scrape, "msa_gateway_requests_total", &not_found),
        1.0
    );
    let hist = "msa_gateway_request_duration_seconds";
    assert_eq!(histogram_total(&scrape, hist, &call), 4.0);
    assert_eq!(value(&scrape, &format!("{hist}_count"), &call), 4.0);
    let sum = value(&scrape, &format!("{hist}_sum"), &call);
    assert!((sum - 0.0209).abs() < 1e-9, "sum {sum}");
    // Observed beyond the largest bucket: only in +Inf.
    let health = [("route", "/healthz")];
    assert_eq!(histogram_total(&scrape, hist, &health), 1.0);

    let echo = [("service", "echo")];
    assert_eq!(value(&scrape, "msa_service_messages_total", &echo), 5.0);
    assert_eq!(value(&scrape, "msa_service_failures_total", &echo), 0.0);
    assert_eq!(value(&scrape, "msa_service_restarts_total", &echo), 0.0);
    assert_eq!(value(&scrape, "msa_service_mailbox_depth", &echo), 0.0);
    let ask = "msa_service_ask_duration_seconds";
    assert_eq!(histogram_total(&scrape, ask, &echo), 5.0);
    assert_eq!(value(&scrape, &format!("{ask}_count"), &echo), 5.0);

    // No remoting on this node: the node-wide counters are there, at zero,
    // and there is no connection.
    for name in [
        "msa_remote_handshake_failures_total",
        "msa_remote_malformed_frames_total",
        "msa_remote_late_replies_total",
        "msa_remote_overloaded_total",
        "msa_remote_stalled_connections_total",
        "msa_remote_control_overflows_total",
        "msa_remote_handshakes_over_cap_total",
        "msa_remote_tls_refusals_total",
        "msa_remote_pending_handshakes",
        "msa_topic_published_total",
        "msa_topic_delivered_total",
        "msa_topic_lagged_total",
        "msa_topic_remote_dropped_total",
        "msa_topic_undecodable_total",
        "msa_topic_refused_ads_total",
    ] {
        assert_eq!(value(&scrape, name, &[]), 0.0, "{name}");
    }
    assert!(!scrape
        .samples
        .iter()
        .any(|s| s.metric.starts_with("msa_connection_")));
    assert!(CONTENT_TYPE.starts_with("text/plain; version=0.0.4"));
    node.shutdown(GRACE).await.unwrap();
}

#[tokio::test]
async fn render_reads_the_node_fresh_each_time() {
    let node = node_with_echo("metrics-fresh").await;
    let metrics = Metrics::new(node.clone());
    let echo = [("service", "echo")];
    let before = parse(&metrics.render());
    assert_eq!(value(&before, "msa_service_messages_total", &echo), 0.0);
    call_echo(&node, 2).await;
    let after = parse(&metrics.render());
    assert_eq!(value(&after, "msa_service_messages_total", &echo), 2.0);
    assert_eq!(
        histogram_total(&after, "msa_service_ask_duration_seconds", &echo),
        2.0
    );
    node.shutdown(GRACE).await.unwrap();
}

#[tokio::test]
async fn two_nodes_in_one_process_keep_their_own_numbers() {
    let a = node_with_echo("metrics-a").await;
    let b = Node::builder()
        .name("metrics-b")
        .arbiters(1)
        .start()
        .unwrap();
    b.spawn(echo::echo_spec("other")).await.unwrap();
    call_echo(&a, 3).await;
    let (ma, mb) = (Metrics::new(a.clone()), Metrics::new(b.clone()));
    ma.observe_request(CALL_ROUTE, "POST", 200, Duration::from_millis(1));

    let (sa, sb) = (parse(&ma.render()), parse(&mb.render()));
    assert_eq!(
        value(&sa, "msa_service_messages_total", &[("service", "echo")]),
        3.0
    );
    assert!(find(&sa, "msa_service_messages_total", &[("service", "other")]).is_none());
    assert_eq!(
        value(&sb, "msa_service_messages_total", &[("service", "other")]),
        0.0
    );
    assert!(find(&sb, "msa_service_messages_total", &[("service", "echo")]).is_none());
    assert!(!sb
        .samples
        .iter()
        .any(|s| s.metric.starts_with("msa_gateway_requests")));
    a.shutdown(GRACE).await.unwrap();
    b.shutdown(GRACE).await.unwrap();
}

#[tokio::test]
async fn names_follow_prometheus_conventions() {
    let node = node_with_echo("metrics-names").await;
    let metrics = Metrics::new(node.clone());
    metrics.observe_request("/healthz", "GET", 200, Duration::from_millis(1));
    let text = metrics.render();
    let scrape = parse(&text);
    let mut types = 0;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            types += 1;
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(name.starts_with("msa_"), "{name}");
            match kind {
                "counter" => assert!(name.ends_with("_total"), "{name}"),
                "histogram" => assert!(name.ends_with("_seconds"), "{name}"),
                "gauge" => assert!(!name.ends_with("_total"), "{name}"),
                other => panic!("{name}: unexpected type {other}"),
            }
            assert!(scrape.docs.contains_key(name), "{name} has no HELP");
        }
    }
    // Every gateway, service, connection, remote and topic family (the TLS
    // expiry gauge is left out without TLS).
    assert_eq!(types, 31);
    assert!(!text.contains("# EOF") && !text.contains("_created"));
    node.shutdown(GRACE).await.unwrap();
}

#[test]
fn route_label_writes_params_with_colons() {
    assert_eq!(route_label(CALL_ROUTE), "/v1/:service/:message");
    assert_eq!(route_label("/orders/{id}"), "/orders/:id");
    assert_eq!(route_label(r"/orders/{id:\d{3}}/x"), "/orders/:id/x");
    assert_eq!(route_label("/healthz"), "/healthz");
    // Unbalanced braces never panic and never leave a brace behind.
    assert_eq!(route_label("/a}b"), "/a_b");
    assert_eq!(route_label("/a/{b"), "/a/:b");
    assert_eq!(route_label("{"), ":");
    assert_eq!(route_label(""), "");
}

#[test]
fn method_label_keeps_standard_methods_only() {
    assert_eq!(method_label("POST"), "POST");
    assert_eq!(method_label("get"), "GET");
    assert_eq!(method_label("PATCH"), "PATCH");
    assert_eq!(method_label("BREW"), "OTHER");
    assert_eq!(method_label(""), "OTHER");
}

#[test]
fn label_values_are_escaped() {
    let node = Node::builder()
        .name("metrics-escape")
        .arbiters(1)
        .start()
        .unwrap();
    let metrics = Metrics::new(node.clone());
    metrics.observe_request("/a\"b\\c\nd", "GET", 200, Duration::ZERO);
    let text = metrics.render();
    assert!(
        text.contains(r#"route="/a\"b\\c\nd""#),
        "label not escaped: {text}"
    );
    node.shutdown_blocking(GRACE).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_counted_per_peer() {
    let cluster_node = |name: &str, seed: Option<String>| {
        let mut b = Node::builder()
            .name(name)
            .arbiters(1)
            .listen("127.0.0.1:0".parse().unwrap())
            .secret(b"metrics-secret".to_vec());
        if let Some(s) = seed {
            b = b.seed(s);
        }
        b.start().unwrap()
    };
    let a = cluster_node("a", None);
    let b = cluster_node("b", a.remote_addr());
    let mut wb = b.watch();
    a.spawn(echo::echo_spec("echo")).await.unwrap();
    remote_added(Duration::from_secs(10), &mut wb, &["echo"]).await;
    assert_eq!(
        b.service("echo").ask(echo::Ping(9)).await.unwrap(),
        echo::Pong(9)
    );

    let sa = parse(&Metrics::new(a.clone()).render());
    let from_b = [("peer", "b")];
    for name in [
        "msa_connection_frames_in_total",
        "msa_connection_frames_out_total",
        "msa_connection_bytes_in_total",
        "msa_connection_bytes_out_total",
    ] {
        assert!(value(&sa, name, &from_b) > 0.0, "{name}");
    }
    let echo = [("service", "echo")];
    assert_eq!(value(&sa, "msa_service_messages_total", &echo), 1.0);
    // The ask that came from b was timed on a.
    assert_eq!(
        histogram_total(&sa, "msa_service_ask_duration_seconds", &echo),
        1.0
    );
    let sb = parse(&Metrics::new(b.clone()).render());
    assert!(value(&sb, "msa_connection_frames_out_total", &[("peer", "a")]) > 0.0);
    assert_eq!(value(&sb, "msa_remote_handshake_failures_total", &[]), 0.0);
    // The queues toward a peer are gauged per lane (present, and nothing
    // is stuck in them once the ask was answered).
    for gauge in [
        "msa_connection_control_queued_bytes",
        "msa_connection_data_queued_bytes",
    ] {
        assert!(
            find(&sb, gauge, &[("peer", "a")]).is_some(),
            "{gauge} is exported"
        );
    }
    // b knows echo runs on a, but reports only its own services: no
    // series of zeros for a service it does not run.
    assert_eq!(b.services(), ["echo"]);
    assert!(b.local_services().is_empty());
    assert!(
        !sb.samples.iter().any(|s| s.labels.get("service").is_some()),
        "b reports a service it does not run"
    );
    // Every series says which node it comes from.
    for (scrape, name) in [(&sa, "a"), (&sb, "b")] {
        for s in &scrape.samples {
            assert_eq!(s.labels.get("node"), Some(name), "{s:?}");
        }
    }
    b.shutdown(GRACE).await.unwrap();
    a.shutdown(GRACE).await.unwrap();
}

#[derive(
    Debug, Clone, actix::Message, serde::Serialize, serde::Deserialize, msa_runtime::RemoteMessage,
)]
#[msa(name = "metrics.TestEvent")]
#[rtype(result = "()")]
struct TestEvent(u64);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_counters_follow_the_node() {
    let node = Node::builder().arbiters(1).start().unwrap();
    let topic = node.topic::<TestEvent>("metrics.events");
    // A subscriber that holds one event and reads none: of three events it
    // gets one and misses two.
    let _sub = topic.subscribe(1);
    for i in 0..3 {
        topic.publish(TestEvent(i));
    }
    let scrape = parse(&Metrics::new(node.clone()).render());
    assert_eq!(value(&scrape, "msa_topic_published_total", &[]), 3.0);
    assert_eq!(value(&scrape, "msa_topic_delivered_total", &[]), 1.0);
    assert_eq!(value(&scrape, "msa_topic_lagged_total", &[]), 2.0);
    assert_eq!(value(&scrape, "msa_topic_remote_dropped_total", &[]), 0.0);
    node.shutdown(GRACE).await.unwrap();
}
