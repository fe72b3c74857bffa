//! The live view (docs/live-view.md): the page and its files with a strict
//! Content-Security-Policy, its data behind the admin role, the snapshot
//! of a three-node loopback cluster, and the stream: several snapshots, at
//! most 4 per second, one gather shared by every stream, and its server
//! side ends when the client goes away.

use std::time::{Duration, Instant};

use crate::support::*;
use futures_util::StreamExt;
use msa_gateway::{hs256_token, AuthConfig, GatewayConfig, PolicyRule};
use msa_runtime::remote::transport::MemoryNetwork;
use msa_runtime::Node;
use serde_json::Value;

const SECRET: &str = "live-view-secret";
const CLUSTER_SECRET: &[u8] = b"gateway-live";
const BOUND: Duration = Duration::from_secs(20);

fn with_auth() -> GatewayConfig {
    GatewayConfig {
        auth: Some(AuthConfig::hs256(SECRET)),
        policy: vec![PolicyRule {
            service: "calc".into(),
            message: "*".into(),
            roles: vec!["admin".into()],
        }],
        ..config()
    }
}

fn token(roles: &[&str]) -> String {
    hs256_token(SECRET, "someone", roles, Duration::from_secs(60)).unwrap()
}

#[actix_rt::test]
async fn the_page_and_its_files_are_served_with_a_strict_csp_and_no_token() {
    let f = Fixture::start(with_auth()).await;
    for (path, content_type, needle) in [
        ("/ui", "text/html; charset=utf-8", r#"<section id="nodes""#),
        (
            "/ui/app.js",
            "text/javascript; charset=utf-8",
            "getReader()",
        ),
        (
            "/ui/app.css",
            "text/css; charset=utf-8",
            "grid-template-columns",
        ),
    ] {
        let r = f.send("GET", path, None, "").await;
        assert_eq!(r.status, 200, "{path}: {r:?}");
        assert_eq!(r.header("content-type"), Some(content_type), "{path}");
        let csp = r.header("content-security-policy").unwrap();
        assert!(csp.starts_with("default-src 'self';"), "{csp}");
        assert!(csp.contains("script-src 'self';"), "{csp}");
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        assert!(r.header("cache-control").is_some(), "{path}");
        let body = String::from_utf8(r.raw).unwrap();
        assert!(body.contains(needle), "{path}");
    }
    // The page names its own script and style, nothing else.
    let page = f.send("GET", "/ui", None, "").await;
    let page = String::from_utf8(page.raw).unwrap();
    assert!(page.contains(r#"<script src="/ui/app.js" defer></script>"#));
    assert!(page.contains(r#"href="/ui/app.css""#));
    assert_eq!(f.send("POST", "/ui", None, "").await.status, 405);
    assert_eq!(f.send("GET", "/ui/other.js", None, "").await.status, 404);
    f.stop().await;
}

#[actix_rt::test]
async fn live_data_needs_an_admin_token() {
    let f = Fixture::start(with_auth()).await;
    for path in ["/v1/live/snapshot", "/v1/live/stream"] {
        f.send("GET", path, None, "")
            .await
            .error(401, "unauthorized");
        f.send("GET", path, Some("not-a-jwt"), "")
            .await
            .error(401, "unauthorized");
        let m = f
            .send("GET", path, Some(&token(&["customer"])), "")
            .await
            .error(403, "forbidden");
        assert!(m.contains("admin"), "{m}");
    }
    let r = f
        .send("GET", "/v1/live/snapshot", Some(&token(&["admin"])), "")
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.json["version"], 1);
    let calc = r.json["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == "calc")
        .cloned();
    assert!(calc.is_some(), "{}", r.json);
    // The stream answers an admin with newline-delimited JSON.
    let mut res = f
        .client
        .get(f.url("/v1/live/stream"))
        .insert_header(("authorization", format!("Bearer {}", token(&["admin"]))))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers().get("content-type").unwrap(),
        "application/x-ndjson"
    );
    let first = read_lines(&mut res, 1, BOUND).await;
    assert_eq!(first[0].1["version"], 1);
    drop(res);
    f.stop().await;
}

fn node(net: &MemoryNetwork, name: &str, seed: Option<String>) -> Node {
    let mut b = Node::builder()
        .name(name)
        .arbiters(1)
        .transport(net.clone())
        .listen_on(format!("{name}:0"))
        .secret(CLUSTER_SECRET);
    if let Some(s) = seed {
        b = b.seed(s);
    }
    b.start().unwrap()
}

/// The names of the nodes a snapshot lists with their shown state.
fn node_states(snap: &Value) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = snap["nodes"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|n| {
                    (
                        n["name"].as_str().unwrap_or("").to_string(),
                        n["state"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[actix_rt::test]
async fn the_snapshot_lists_the_nodes_of_a_three_node_cluster_and_an_unreachable_one() {
    let net = MemoryNetwork::new();
    let a = node(&net, "a", None);
    let b = node(&net, "b", a.remote_addr());
    let c = node(&net, "c", a.remote_addr());
    c.spawn(calc_spec()).await.unwrap();
    let f = Fixture::on(a.clone(), with_auth());
    let admin = token(&["admin"]);
    let alive = |n: &str| (n.to_string(), "alive".to_string());
    eventually(
        "the snapshot lists a, b and c alive, calc on c, and a routes to it",
        BOUND,
        || async {
            let r = f.send("GET", "/v1/live/snapshot", Some(&admin), "").await;
            assert_eq!(r.status, 200);
            let has_calc_on_c = r.json["services"]
                .as_array()
                .is_some_and(|s| s.iter().any(|s| s["service"] == "calc" && s["node"] == "c"));
            // c's own report lists calc as soon as c runs it; a holds c's
            // table only once c is up (it sends none while joining).
            let a_routes_to_c = a
                .cluster_status()
                .services
                .iter()
                .any(|s| s.name == "calc" && s.nodes.iter().any(|n| n == "c"));
            node_states(&r.json) == [alive("a"), alive("b"), alive("c")]
                && has_calc_on_c
                && a_routes_to_c
        },
    )
    .await;
    let r = f.send("GET", "/v1/live/snapshot", Some(&admin), "").await;
    assert_eq!(r.json["observer"], "a");
    // Each node with its address and uptime.
    for n in r.json["nodes"].as_array().unwrap() {
        assert!(
            n["addr"]
                .as_str()
                .is_some_and(|a| a.starts_with(n["name"].as_str().unwrap())),
            "{n}"
        );
        assert!(n["uptime_s"].is_u64(), "{n}");
        // (Its member state may still read `joining`: a node sends no
        // table while it joins.)
        assert_eq!(n["reachability"], "reachable", "{n}");
        assert!(n["member_state"].is_string(), "{n}");
    }
    let connections = r.json["connections"].as_array().unwrap();
    for peer in ["b", "c"] {
        assert!(
            connections
                .iter()
                .any(|x| x["from"] == "a" && x["to"] == peer && x["bytes_out"].as_u64() > Some(0)),
            "{connections:?}"
        );
    }

    // A call through the gateway on a to calc on c is a trace with spans
    // on both nodes: the gateway's hop on a, and under it the call c served.
    let r = f
        .send(
            "POST",
            "/v1/calc/calc.Add",
            Some(&admin_caller()),
            r#"{"a": 1, "b": 2}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let trace = eventually_trace(&f, &admin, |t| {
        t["nodes"] == serde_json::json!(["a", "c"])
            && t["spans"].as_array().map(Vec::len) == Some(2)
    })
    .await;
    assert_eq!(trace["trace_id"].as_str().unwrap().len(), 32);
    assert_eq!(trace["status"], "ok");
    assert_eq!(trace["services"], serde_json::json!(["calc"]));
    let spans = trace["spans"].as_array().unwrap();
    let hop = spans.iter().find(|s| s["kind"] == "gateway").unwrap();
    let served = spans.iter().find(|s| s["kind"] == "served").unwrap();
    assert_eq!((&hop["node"], &served["node"]), (&"a".into(), &"c".into()));
    assert_eq!(served["parent_id"], hop["span_id"]);
    assert_eq!(served["name"], "calc.Add");
    assert!(served["instance"].is_u64(), "{served}");
    assert_eq!(hop["span_id"].as_str().unwrap().len(), 16);

    // a cannot reach c: the snapshot shows c unreachable, and the pair.
    net.cut("a", "c");
    eventually("c shown unreachable from a", BOUND, || async {
        let r = f.send("GET", "/v1/live/snapshot", Some(&admin), "").await;
        let pair = r.json["unreachable"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p[0] == "a" && p[1] == "c"));
        node_states(&r.json).contains(&("c".to_string(), "unreachable".to_string())) && pair
    })
    .await;
    net.heal_all();
    f.stop().await;
    for n in [c, b] {
        n.shutdown(GRACE).await.unwrap();
    }
}

/// A token for calls (the gateway's policy lets admins call anything).
fn admin_caller() -> String {
    token(&["admin"])
}

/// Waits for a trace in the snapshot that `want` accepts; returns it.
async fn eventually_trace(f: &Fixture, admin: &str, want: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + BOUND;
    loop {
        let r = f.send("GET", "/v1/live/snapshot", Some(admin), "").await;
        if let Some(t) = r.json["traces"]
            .as_array()
            .and_then(|ts| ts.iter().find(|t| want(t)))
        {
            return t.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no such trace: {}",
            r.json["traces"]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reads `n` JSON lines from a stream, each with the time it arrived.
async fn read_lines<S>(
    res: &mut awc::ClientResponse<S>,
    n: usize,
    bound: Duration,
) -> Vec<(Instant, Value)>
where
    S: futures_util::Stream<Item = Result<actix_web::web::Bytes, awc::error::PayloadError>> + Unpin,
{
    let deadline = Instant::now() + bound;
    let mut buf: Vec<u8> = Vec::new();
    let mut lines = Vec::new();
    while lines.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        let chunk = tokio::time::timeout(left, res.next())
            .await
            .unwrap_or_else(|_| panic!("{} of {n} lines within {bound:?}", lines.len()))
            .expect("the stream ended")
            .unwrap();
        buf.extend_from_slice(&chunk);
        while let Some(i) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=i).collect();
            lines.push((Instant::now(), serde_json::from_slice(&line).unwrap()));
        }
    }
    lines
}

#[actix_rt::test]
async fn the_stream_sends_at_most_four_snapshots_a_second_shares_gathers_and_ends_with_its_client()
{
    let f = Fixture::start(with_auth()).await;
    let admin = token(&["admin"]);
    let open = || {
        f.client
            .get(f.url("/v1/live/stream"))
            .insert_header(("authorization", format!("Bearer {admin}")))
            .send()
    };
    let mut first = open().await.unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(f.gateway.live_streams(), 1);
    // Eight snapshots: each one new, sent 250 ms or more apart, gathered
    // 200 ms or more apart.
    let started = Instant::now();
    let lines = read_lines(&mut first, 8, BOUND).await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(7 * 240),
        "8 snapshots in {took:?}: more than 4 a second"
    );
    for pair in lines.windows(2) {
        let (a, b) = (&pair[0].1, &pair[1].1);
        assert!(b["seq"].as_u64() > a["seq"].as_u64(), "each snapshot once");
        let gap = b["at_ms"].as_u64().unwrap() - a["at_ms"].as_u64().unwrap();
        assert!(gap >= 200, "{gap} ms between two snapshots' gathers");
    }

    // Three more streams: the gathers stay at one per period, not one per stream.
    let mut more = Vec::new();
    for _ in 0..3 {
        more.push(open().await.unwrap());
    }
    assert_eq!(f.gateway.live_streams(), 4);
    let before = f.gateway.live_gathers();
    let window = Instant::now();
    for res in &mut more {
        read_lines(res, 3, BOUND).await;
    }
    read_lines(&mut first, 3, BOUND).await;
    let gathers = f.gateway.live_gathers() - before;
    // At most one gather per 200 ms, whatever the streams' phases.
    let periods = window.elapsed().as_millis() as u64 / 200 + 2;
    assert!(
        gathers <= periods,
        "{gathers} gathers for 4 streams over {:?}",
        window.elapsed()
    );

    // Clients go away: their streams end on the server.
    drop(more);
    eventually("three streams closed", BOUND, || async {
        f.gateway.live_streams() == 1
    })
    .await;
    drop(first);
    eventually("the last stream closed", BOUND, || async {
        f.gateway.live_streams() == 0
    })
    .await;
    let idle = f.gateway.live_gathers();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        f.gateway.live_gathers(),
        idle,
        "no gathering without a stream"
    );

    // A stream open when the gateway stops ends, and does not hold the stop.
    let mut last = open().await.unwrap();
    read_lines(&mut last, 1, BOUND).await;
    let stopping = Instant::now();
    f.gateway.stop().await;
    assert!(
        stopping.elapsed() < Duration::from_secs(5),
        "{:?}",
        stopping.elapsed()
    );
    f.node.shutdown(GRACE).await.unwrap();
}

#[actix_rt::test]
async fn a_nodes_operations_endpoint_serves_the_page_and_its_data_to_admins_only() {
    let node = Node::builder()
        .name("ops-live")
        .arbiters(1)
        .start()
        .unwrap();
    node.spawn(calc_spec()).await.unwrap();
    let auth = AuthConfig::hs256(SECRET);
    let ops = msa_gateway::OpsServer::start_with_auth(
        node.clone(),
        "127.0.0.1:0".parse().unwrap(),
        Some(&auth),
    )
    .unwrap();
    let base = format!("http://{}", ops.local_addr());
    let c = client();
    let get = |path: &str, token: Option<String>| {
        let mut req = c.get(format!("{base}{path}"));
        if let Some(t) = token {
            req = req.insert_header(("authorization", format!("Bearer {t}")));
        }
        send_req(req, String::new())
    };
    for path in ["/ui", "/ui/app.js", "/ui/app.css"] {
        let r = get(path, None).await;
        assert_eq!(r.status, 200, "{path}");
        assert!(r
            .header("content-security-policy")
            .unwrap()
            .starts_with("default-src 'self';"));
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    }
    for path in ["/v1/live/snapshot", "/v1/live/stream"] {
        get(path, None).await.error(401, "unauthorized");
        get(path, Some(token(&["customer"])))
            .await
            .error(403, "forbidden");
    }
    let r = get("/v1/live/snapshot", Some(token(&["admin"]))).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["observer"], "ops-live");
    assert_eq!(node_states(&r.json), [("ops-live".into(), "alive".into())]);
    assert!(r.json["services"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["service"] == "calc" && s["node"] == "ops-live" && s["instances"] == 2));

    // A stream open when the server stops ends, and does not hold the stop.
    let mut res = c
        .get(format!("{base}/v1/live/stream"))
        .insert_header(("authorization", format!("Bearer {}", token(&["admin"]))))
        .send()
        .await
        .unwrap();
    read_lines(&mut res, 2, BOUND).await;
    assert_eq!(ops.live_streams(), 1);
    let stopping = Instant::now();
    ops.stop().await;
    assert!(
        stopping.elapsed() < Duration::from_secs(5),
        "{:?}",
        stopping.elapsed()
    );
    node.shutdown(GRACE).await.unwrap();
}

/// A trace id no other test uses: the log capture below is keyed on it.
const CONTENTS_TRACE: &str = "5ca1ab1e0ddba11c0ffee5eed0f1e15a";

#[actix_rt::test]
async fn spans_snapshots_and_logs_carry_no_message_contents_and_no_token() {
    let logs = log_capture::LogCapture::keyed("trace_id", CONTENTS_TRACE, tracing::Level::TRACE);
    let f = Fixture::start(with_auth()).await;
    let admin = token(&["admin"]);
    // A call whose request and reply both hold a marker, under a known trace.
    const MARKER: &str = "contents-marker-7f3a91";
    let r = send_req(
        f.client
            .post(f.url("/v1/calc/calc.Greet"))
            .insert_header(("authorization", format!("Bearer {admin}")))
            .insert_header(("content-type", "application/json"))
            .insert_header((
                "traceparent",
                format!("00-{CONTENTS_TRACE}-00f067aa0ba902b7-01"),
            )),
        format!(r#"{{"name": "{MARKER}"}}"#),
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(String::from_utf8_lossy(&r.raw).contains(MARKER), "{r:?}");
    // Its trace is shown, with the gateway's hop and the served call...
    let trace = eventually_trace(&f, &admin, |t| {
        t["trace_id"] == CONTENTS_TRACE && t["spans"].as_array().map(Vec::len) == Some(2)
    })
    .await;
    let names: Vec<&str> = trace["spans"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(names, ["calc.Greet", "calc.Greet"], "{trace}");
    // ...but neither the snapshot nor the stream holds the request's or the
    // reply's contents, the token, or its signature.
    let signature = admin.rsplit('.').next().unwrap();
    let snapshot = f.send("GET", "/v1/live/snapshot", Some(&admin), "").await;
    let mut res = f
        .client
        .get(f.url("/v1/live/stream"))
        .insert_header(("authorization", format!("Bearer {admin}")))
        .send()
        .await
        .unwrap();
    let streamed = read_lines(&mut res, 1, BOUND).await;
    drop(res);
    let texts = [
        String::from_utf8(snapshot.raw).unwrap(),
        streamed[0].1.to_string(),
    ];
    for text in &texts {
        assert!(text.contains(CONTENTS_TRACE), "the trace is in it: {text}");
        for secret in [MARKER, admin.as_str(), signature] {
            assert!(!text.contains(secret), "{secret:?} in a snapshot: {text}");
        }
    }
    // The call's log lines (every level) name it but not the token.
    let logged = logs.text();
    assert!(logged.contains(CONTENTS_TRACE), "nothing logged: {logged}");
    for secret in [admin.as_str(), signature] {
        assert!(!logged.contains(secret), "{secret:?} logged: {logged}");
    }
    f.stop().await;
}

/// Finds `name` in a snapshot's supervision trees (depth first).
fn tree_child<'a>(tree: &'a Value, name: &str) -> Option<&'a Value> {
    if tree["name"] == name {
        return Some(tree);
    }
    tree["children"]
        .as_array()?
        .iter()
        .find_map(|c| tree_child(c, name))
}

#[actix_rt::test]
async fn the_snapshot_shows_each_services_counters_latency_and_restarts_with_their_reason() {
    quiet_intended_panics();
    let mut config = with_auth();
    config.policy.push(PolicyRule {
        service: "crashy".into(),
        message: "*".into(),
        roles: vec!["admin".into()],
    });
    let f = Fixture::start(config).await;
    f.node.spawn(crashy_spec(1, 10)).await.unwrap();
    let admin = token(&["admin"]);
    // Asks that take time (for p50/p99), and one that crashes the instance.
    for a in 0..5 {
        let body = format!(r#"{{"a": {a}, "b": 1}}"#);
        let r = f
            .send("POST", "/v1/calc/calc.Add", Some(&admin), &body)
            .await;
        assert_eq!(r.status, 200, "{r:?}");
    }
    let crash = r#"{"crash": true, "n": 1}"#;
    let r = f
        .send("POST", "/v1/crashy/crash.Crash", Some(&admin), crash)
        .await;
    assert_ne!(r.status, 200, "{r:?}");
    let node = f.node.name().to_string();
    let snap = eventually_snapshot(&f, &admin, |s| {
        let crashy = s["services"]
            .as_array()
            .and_then(|v| v.iter().find(|r| r["service"] == "crashy"));
        crashy.is_some_and(|c| c["restarts"].as_u64() >= Some(1) && c["instances"] == 1)
    })
    .await;
    let row = |service: &str| {
        snap["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["service"] == service && r["node"] == node.as_str())
            .unwrap_or_else(|| panic!("no {service} on {node}: {snap}"))
            .clone()
    };
    let calc = row("calc");
    assert!(calc["messages"].as_u64() >= Some(5), "{calc}");
    assert!(calc["p50_us"].is_u64() && calc["p99_us"].is_u64(), "{calc}");
    assert!(calc["p50_us"].as_u64() <= calc["p99_us"].as_u64(), "{calc}");
    assert_eq!(calc["mailbox_depth"], 0, "{calc}");
    assert_eq!(calc["instances"], 2, "{calc}");
    let crashy = row("crashy");
    assert!(crashy["errors"].as_u64() >= Some(1), "{crashy}");
    // The node's supervision: the crashy service, its instance, and the
    // restart with its reason under the service.
    let sup = snap["supervision"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["node"] == node.as_str())
        .unwrap_or_else(|| panic!("no supervision for {node}: {snap}"));
    let service = sup["trees"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|t| tree_child(t, "crashy"))
        .unwrap_or_else(|| panic!("no crashy in {sup}"));
    assert_eq!(service["kind"], "service");
    assert!(tree_child(service, "crashy#0").is_some(), "{service}");
    let restart = &service["restarts"][0];
    assert!(
        restart["reason"]
            .as_str()
            .is_some_and(|r| r.contains("crash requested")),
        "{service}"
    );
    assert_eq!(restart["child"], "crashy#0", "{service}");
    assert!(restart["at_ms"].is_u64(), "{restart}");
    f.stop().await;
}

/// Waits for a snapshot that `want` accepts; returns it.
async fn eventually_snapshot(f: &Fixture, admin: &str, want: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + BOUND;
    loop {
        let r = f.send("GET", "/v1/live/snapshot", Some(admin), "").await;
        if want(&r.json) {
            return r.json;
        }
        assert!(Instant::now() < deadline, "no such snapshot: {}", r.json);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
