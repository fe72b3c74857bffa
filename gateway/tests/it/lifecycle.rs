//! Starting and stopping gateways, and configs that must not start.

use std::io::{Read, Write};
use std::time::Duration;

use crate::support::*;
use msa_gateway::{Gateway, GatewayConfig, GatewayError, JwtAlg, RouteConfig};
use msa_runtime::Node;

/// The TOML example of docs/gateway.md.
const DOC_EXAMPLE: &str = r#"
[gateway]
bind = "127.0.0.1:0"
workers = 2
max_body_bytes = 1048576
timeout_ms = 2000
max_concurrency = 1024
body_timeout_ms = 10000
head_timeout_ms = 5000
max_header_bytes = 16384
max_connections = 25000

[gateway.cors]
allowed_origins = ["https://shop.example.com"]
allowed_methods = ["GET", "POST"]
allowed_headers = ["authorization", "content-type"]
max_age_secs = 600

[gateway.auth]
alg = "HS256"
secret = "change-me"
roles_claim = "roles"
leeway_secs = 60
admin_roles = ["admin"]

[[gateway.policy]]
service = "orders"
message = "shop.*"
roles = ["customer", "staff"]

[[gateway.policy]]
service = "*"
message = "*"
roles = ["admin"]

[[gateway.routes]]
method = "GET"
path = "/orders/{id}"
service = "orders"
message = "shop.GetOrder"
"#;

#[derive(serde::Deserialize)]
struct File {
    gateway: GatewayConfig,
}

/// A plain HTTP/1.0 GET over a std socket: no async runtime needed.
fn get(addr: std::net::SocketAddr, path: &str) -> std::io::Result<String> {
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

#[test]
fn the_documented_toml_example_parses_and_starts() {
    let cfg = toml::from_str::<File>(DOC_EXAMPLE).unwrap().gateway;
    assert_eq!(cfg.timeout_ms, Some(2000));
    assert_eq!(cfg.auth.as_ref().unwrap().alg, Some(JwtAlg::HS256));
    assert_eq!((cfg.policy.len(), cfg.routes.len()), (2, 1));
    let empty = toml::from_str::<File>("[gateway]\n").unwrap().gateway;
    assert_eq!(empty.bind.port(), 8080);
    assert!(toml::from_str::<File>("[gateway]\nbnid = \"x\"\n").is_err());
    // Started from a plain thread with no async runtime at all.
    let node = Node::builder().arbiters(1).start().unwrap();
    let gw = Gateway::start(node.clone(), cfg).unwrap();
    let answer = get(gw.local_addr(), "/healthz").unwrap();
    assert!(answer.starts_with("HTTP/1.0 200"), "{answer}");
    gw.stop_blocking();
    gw.stop_blocking();
    assert!(get(gw.local_addr(), "/healthz").is_err(), "still listening");
    node.shutdown_blocking(GRACE).unwrap();
}

#[actix_rt::test]
async fn stop_is_graceful_and_idempotent() {
    let sleeping = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let f = Fixture::start_with(config(), sleeping.clone()).await;
    let addr = f.gateway.local_addr();
    // A call in flight when stop begins still gets its answer.
    let slow = actix_rt::spawn(send_req(
        f.client.post(f.url("/v1/calc/calc.Sleep")),
        r#"{"ms": 300}"#.into(),
    ));
    eventually("the slow call to start", Duration::from_secs(5), || {
        let s = sleeping.clone();
        async move { s.load(std::sync::atomic::Ordering::SeqCst) == 1 }
    })
    .await;
    f.gateway.stop().await;
    assert_eq!(slow.await.unwrap().status, 200);
    f.gateway.stop().await;
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "still listening"
    );
    f.node.shutdown(GRACE).await.unwrap();
}

#[actix_rt::test]
async fn two_gateways_serve_one_node_side_by_side() {
    let node = Node::builder().arbiters(1).start().unwrap();
    node.spawn(calc_spec()).await.unwrap();
    let a = Fixture::on(node.clone(), config());
    let b = Fixture::on(node, config());
    assert_ne!(a.gateway.local_addr(), b.gateway.local_addr());
    for f in [&a, &b] {
        let r = f.post("/v1/calc/calc.Add", r#"{"a":2,"b":2}"#).await;
        assert_eq!(r.json, serde_json::json!(4));
    }
    b.gateway.stop().await;
    a.stop().await;
}

#[actix_rt::test]
async fn bad_configs_do_not_start() {
    let node = Node::builder().arbiters(1).start().unwrap();
    let route = |method: &str, path: &str| RouteConfig {
        method: method.into(),
        path: path.into(),
        service: "s".into(),
        message: "m".into(),
    };
    type Check = fn(&GatewayError) -> bool;
    let cases: Vec<(GatewayConfig, Check)> = vec![
        (
            GatewayConfig {
                routes: vec![route("FETCH", "/a")],
                ..config()
            },
            |e| matches!(e, GatewayError::Route { index: 0, .. }),
        ),
        (
            GatewayConfig {
                routes: vec![route("GET", "/a"), route("GET", "/b/{x")],
                ..config()
            },
            |e| matches!(e, GatewayError::Route { index: 1, .. }),
        ),
        (
            GatewayConfig {
                routes: vec![route("GET", "/metrics")],
                ..config()
            },
            |e| matches!(e, GatewayError::Route { .. }),
        ),
        (
            GatewayConfig {
                workers: 0,
                ..config()
            },
            |e| matches!(e, GatewayError::Config { .. }),
        ),
        (
            GatewayConfig {
                max_concurrency: 0,
                ..config()
            },
            |e| matches!(e, GatewayError::Config { .. }),
        ),
        (
            GatewayConfig {
                timeout_ms: Some(0),
                ..config()
            },
            |e| matches!(e, GatewayError::Config { .. }),
        ),
    ];
    for (cfg, check) in cases {
        let e = Gateway::start(node.clone(), cfg).unwrap_err();
        assert!(check(&e), "{e}");
    }
    // An address in use.
    let first = Gateway::start(node.clone(), config()).unwrap();
    let e = Gateway::start(
        node.clone(),
        GatewayConfig {
            bind: first.local_addr(),
            ..config()
        },
    )
    .unwrap_err();
    assert!(matches!(e, GatewayError::Bind { .. }), "{e}");
    first.stop().await;
    node.shutdown(GRACE).await.unwrap();
}

#[test]
fn the_handle_is_send_and_sync_and_its_stop_future_is_send() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    fn send<T: Send>(_: &T) {}
    let node = Node::builder().arbiters(1).start().unwrap();
    let gw = Gateway::start(node.clone(), config()).unwrap();
    send_sync(&gw);
    let stop = gw.stop();
    send(&stop);
    drop(stop);
    gw.stop_blocking();
    node.shutdown_blocking(GRACE).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_tokio_runtime_can_start_and_stop_a_gateway() {
    let node = Node::builder().arbiters(1).start().unwrap();
    node.spawn(calc_spec()).await.unwrap();
    let gw = Gateway::start(node.clone(), config()).unwrap();
    let addr = gw.local_addr();
    let answer = tokio::task::spawn_blocking(move || get(addr, "/readyz"))
        .await
        .unwrap()
        .unwrap();
    assert!(answer.starts_with("HTTP/1.0 200"), "{answer}");
    // stop() from a task on another runtime thread.
    tokio::spawn(async move { gw.stop().await }).await.unwrap();
    assert!(std::net::TcpStream::connect(addr).is_err());
    node.shutdown(GRACE).await.unwrap();
}
