//! Calls over real HTTP: the generic and configured routes, every bad input
//! and every error kind, request ids and trace context.

use std::io::{Read, Write};
use std::time::Duration;

use crate::support::*;
use msa_gateway::{GatewayConfig, RouteConfig};
use serde_json::json;

fn route(method: &str, path: &str, service: &str, message: &str) -> RouteConfig {
    RouteConfig {
        method: method.into(),
        path: path.into(),
        service: service.into(),
        message: message.into(),
    }
}

fn with_routes() -> GatewayConfig {
    GatewayConfig {
        routes: vec![
            route("GET", "/orders/{id}", "calc", "shop.GetOrder"),
            route("DELETE", "/orders/{id}", "calc", "shop.GetOrder"),
            route("GET", "/greet/{name}", "calc", "calc.Greet"),
            route("POST", "/add/{a}", "calc", "calc.Add"),
        ],
        ..config()
    }
}

#[actix_rt::test]
async fn generic_call_answers_the_json_result() {
    let f = Fixture::start(config()).await;
    let r = f.post("/v1/calc/calc.Add", r#"{"a": 2, "b": 40}"#).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.json, json!(42));
    f.stop().await;
}

#[actix_rt::test]
async fn an_empty_body_calls_a_unit_message() {
    let f = Fixture::start(config()).await;
    let r = f.post("/v1/calc/calc.WhoAmI", "").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["subject"], json!(null), "auth off: no identity");
    f.stop().await;
}

#[actix_rt::test]
async fn configured_routes_merge_path_params_into_the_body() {
    let f = Fixture::start(with_routes()).await;
    let r = f.send("GET", "/orders/17", None, "").await;
    assert_eq!(
        (r.status, r.json.clone()),
        (200, json!("order 17 detail=false"))
    );
    let r = f
        .send("GET", "/orders/18", None, r#"{"detail": true, "id": 1}"#)
        .await;
    assert_eq!(r.json, json!("order 18 detail=true"), "the path wins");
    let r = f.send("DELETE", "/orders/19", None, "").await;
    assert_eq!(r.json, json!("order 19 detail=false"));
    let r = f.post("/add/5", r#"{"b": -2}"#).await;
    assert_eq!(r.json, json!(3));
    f.stop().await;
}

#[actix_rt::test]
async fn a_param_that_looks_like_a_number_is_retried_as_a_string() {
    let f = Fixture::start(with_routes()).await;
    let r = f.send("GET", "/greet/42", None, "").await;
    assert_eq!((r.status, r.json.clone()), (200, json!("hello 42")));
    let r = f.send("GET", "/greet/true", None, "").await;
    assert_eq!(r.json, json!("hello true"));
    let r = f.send("GET", "/greet/a%20b", None, "").await;
    assert_eq!(r.json, json!("hello a b"), "params are percent-decoded");
    // A number param where a number is wanted but not a valid one: 400 naming it.
    let r = f.send("GET", "/orders/abc", None, "").await;
    assert!(r.error(400, "bad_request").contains("`id`"));
    f.stop().await;
}

#[actix_rt::test]
async fn unknown_routes_services_and_messages_are_404() {
    let f = Fixture::start(with_routes()).await;
    f.node
        .spawn(msa_actors::echo::echo_spec("echo"))
        .await
        .unwrap();
    for (method, path) in [
        ("GET", "/"),
        ("GET", "/nope"),
        ("POST", "/v1/calc"),
        ("POST", "/v1/calc/calc.Add/extra"),
        ("GET", "/orders/"),
        ("GET", "/orders/1/2"),
    ] {
        let r = f.send(method, path, None, "{}").await;
        r.error(404, "not_found");
    }
    let r = f.post("/v1/nope/calc.Add", r#"{"a":1,"b":2}"#).await;
    assert!(r.error(404, "not_found").contains("unknown service"));
    let r = f.post("/v1/calc/calc.Nope", "{}").await;
    assert!(r.error(404, "not_found").contains("unknown message"));
    // echo exists but does not handle calc.Add.
    let r = f.post("/v1/echo/calc.Add", r#"{"a":1,"b":2}"#).await;
    assert!(r.error(404, "not_found").contains("does not handle"));
    f.stop().await;
}

#[actix_rt::test]
async fn a_known_path_with_the_wrong_method_is_405_with_allow() {
    let f = Fixture::start(with_routes()).await;
    let r = f.send("PUT", "/orders/1", None, "").await;
    r.error(405, "method_not_allowed");
    assert_eq!(r.header("allow"), Some("GET, DELETE"));
    let r = f.send("GET", "/v1/calc/calc.Add", None, "").await;
    r.error(405, "method_not_allowed");
    assert_eq!(r.header("allow"), Some("POST"));
    let r = f.send("POST", "/healthz", None, "").await;
    assert_eq!(r.header("allow"), Some("GET"));
    r.error(405, "method_not_allowed");
    f.stop().await;
}

#[actix_rt::test]
async fn malformed_json_is_400() {
    let f = Fixture::start(with_routes()).await;
    for body in ["{", "nope", r#"{"a":1,"b":2} trailing"#, r#"{"a":1,}"#] {
        let r = f.post("/v1/calc/calc.Add", body).await;
        assert!(
            r.error(400, "bad_request").contains("malformed JSON"),
            "{body}"
        );
    }
    let r = f.post("/add/1", "{").await;
    assert!(r.error(400, "bad_request").contains("malformed JSON"));
    let r = f.post("/add/1", "[1, 2]").await;
    assert!(r.error(400, "bad_request").contains("JSON object"));
    f.stop().await;
}

#[actix_rt::test]
async fn wrong_types_and_missing_fields_are_400_naming_the_field() {
    let f = Fixture::start(with_routes()).await;
    let r = f.post("/v1/calc/calc.Add", r#"{"a": "one", "b": 2}"#).await;
    let m = r.error(400, "bad_request");
    assert!(m.contains("`a`") && m.contains("invalid type"), "{m}");
    let r = f.post("/v1/calc/calc.Add", r#"{"a": 1}"#).await;
    let m = r.error(400, "bad_request");
    assert!(m.contains("missing field `b`"), "{m}");
    let r = f.post("/add/1", r#"{"b": [1]}"#).await;
    assert!(r.error(400, "bad_request").contains("`b`"));
    f.stop().await;
}

#[actix_rt::test]
async fn a_body_over_the_limit_is_413() {
    let f = Fixture::start(GatewayConfig {
        max_body_bytes: 1024,
        ..config()
    })
    .await;
    let big = format!(r#"{{"a": 1, "b": 2, "pad": "{}"}}"#, "x".repeat(2000));
    let r = f.post("/v1/calc/calc.Add", &big).await;
    assert!(r.error(413, "payload_too_large").contains("1024"));
    // Right at the limit is fine.
    let fits = format!(r#"{{"a":1,"b":2}}{}"#, " ".repeat(1024 - 13));
    assert_eq!(fits.len(), 1024);
    assert_eq!(f.post("/v1/calc/calc.Add", &fits).await.status, 200);
    f.stop().await;
}

#[actix_rt::test]
async fn a_100_mb_content_length_is_refused_without_reading_the_body() {
    let f = Fixture::start(config()).await;
    let addr = f.gateway.local_addr();
    // Claim 100 MB, send a few bytes, and expect the answer anyway.
    let answer = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let head = format!(
            "POST /v1/calc/calc.Add HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{{\"a\":",
            100 * 1024 * 1024
        );
        s.write_all(head.as_bytes()).unwrap();
        let mut buf = vec![0u8; 4096];
        let mut got = Vec::new();
        while !String::from_utf8_lossy(&got).contains("}") {
            let n = s.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&got).into_owned()
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("payload_too_large"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("x-request-id"),
        "{answer}"
    );
    f.stop().await;
}

#[actix_rt::test]
async fn a_streamed_100_mb_body_is_cut_off_with_413() {
    let f = Fixture::start(config()).await;
    let addr = f.gateway.local_addr();
    // A chunked body of 100 MB (no Content-Length), written by one thread
    // while another waits for the answer: the 413 must come after about
    // the 1 MiB limit, long before the body is all sent, and then the
    // server closes the connection instead of draining the rest.
    let (written_at_answer, answer) = tokio::task::spawn_blocking(move || {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let head = "POST /v1/calc/calc.Add HTTP/1.1\r\nHost: x\r\n\
                    Transfer-Encoding: chunked\r\n\r\n";
        s.write_all(head.as_bytes()).unwrap();
        let written = std::sync::Arc::new(AtomicUsize::new(0));
        let writer = {
            let mut w = s.try_clone().unwrap();
            w.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
            let written = written.clone();
            std::thread::spawn(move || {
                let chunk = format!("10000\r\n{}\r\n", " ".repeat(0x10000));
                while written.load(Ordering::SeqCst) < 100 << 20 {
                    if w.write_all(chunk.as_bytes()).is_err() {
                        break; // the server closed the connection
                    }
                    written.fetch_add(0x10000, Ordering::SeqCst);
                }
            })
        };
        let mut buf = [0u8; 4096];
        let n = s.read(&mut buf).unwrap();
        let at_answer = written.load(Ordering::SeqCst);
        // The server closes the connection after a short linger (actix-http
        // discards what arrives meanwhile so that the client can read the
        // answer); it does not wait for the rest of the body.
        let t = std::time::Instant::now();
        let mut got = buf[..n].to_vec();
        let end = s.read_to_end(&mut got);
        assert!(
            !matches!(&end, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "the connection stayed open"
        );
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "closed after {:?}",
            t.elapsed()
        );
        writer.join().unwrap();
        (at_answer, String::from_utf8_lossy(&got).into_owned())
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("payload_too_large"), "{answer}");
    assert!(answer.contains("connection: close"), "{answer}");
    assert!(
        written_at_answer < 50 << 20,
        "answered only after {written_at_answer} bytes"
    );
    // The gateway is fine afterwards.
    assert_eq!(
        f.post("/v1/calc/calc.Add", r#"{"a":1,"b":1}"#).await.json,
        json!(2)
    );
    f.stop().await;
}

#[actix_rt::test]
async fn a_slow_call_is_504() {
    let f = Fixture::start(GatewayConfig {
        timeout_ms: Some(100),
        ..config()
    })
    .await;
    let r = f.post("/v1/calc/calc.Sleep", r#"{"ms": 3000}"#).await;
    r.error(504, "timeout");
    f.stop().await;
}

#[actix_rt::test]
async fn calls_beyond_the_route_limit_are_429() {
    let sleeping = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let f = Fixture::start_with(
        GatewayConfig {
            max_concurrency: 1,
            ..config()
        },
        sleeping.clone(),
    )
    .await;
    let t0 = std::time::Instant::now();
    let slow = actix_rt::spawn({
        let req = f.client.post(f.url("/v1/calc/calc.Sleep"));
        send_req(req, r#"{"ms": 2000}"#.into())
    });
    eventually("the slow call to start", Duration::from_secs(5), || {
        let s = sleeping.clone();
        async move { s.load(std::sync::atomic::Ordering::SeqCst) == 1 }
    })
    .await;
    eprintln!("in flight after {:?}", t0.elapsed());
    let r = f.post("/v1/calc/calc.Add", r#"{"a":1,"b":1}"#).await;
    r.error(429, "too_many_requests");
    // Other routes have their own limit.
    assert_eq!(f.send("GET", "/healthz", None, "").await.status, 200);
    assert_eq!(slow.await.unwrap().status, 200);
    // The permit is back.
    assert_eq!(
        f.post("/v1/calc/calc.Add", r#"{"a":1,"b":1}"#).await.status,
        200
    );
    f.stop().await;
}

#[actix_rt::test]
async fn handler_failures_are_500_without_details() {
    let f = Fixture::start(config()).await;
    let r = f.post("/v1/calc/calc.PanicLater", "").await;
    let m = r.error(500, "internal");
    assert!(!m.contains("secret"), "{m}");
    let rid = r.header("x-request-id").unwrap().to_string();
    assert!(m.contains(&rid), "the message names the request id: {m}");
    let r = f.post("/v1/calc/calc.BadResult", "").await;
    let m = r.error(500, "internal");
    assert!(!m.contains("key must be"), "{m}");
    // The service still answers.
    assert_eq!(
        f.post("/v1/calc/calc.Add", r#"{"a":1,"b":1}"#).await.json,
        json!(2)
    );
    f.stop().await;
}

#[actix_rt::test]
async fn a_service_without_instances_is_503() {
    let f = Fixture::start(config()).await;
    // Two crashes within its intensity of one restart: the service fails.
    quiet_intended_panics();
    f.node.spawn(crashy_spec(1, 1)).await.unwrap();
    let crash = r#"{"crash": true, "n": 0}"#;
    eventually(
        "crashy to become unavailable",
        Duration::from_secs(10),
        || async {
            let r = f.post("/v1/crashy/crash.Crash", crash).await;
            r.status == 503
        },
    )
    .await;
    let r = f
        .post("/v1/crashy/crash.Crash", r#"{"crash": false, "n": 1}"#)
        .await;
    assert!(r.error(503, "unavailable").contains("no live instance"));
    f.stop().await;
}

#[actix_rt::test]
async fn every_answer_carries_a_request_id() {
    let f = Fixture::start(config()).await;
    let ok = f.post("/v1/calc/calc.Add", r#"{"a":1,"b":1}"#).await;
    let nf = f.post("/nope", "").await;
    let bad = f.post("/v1/calc/calc.Add", "{").await;
    let mut ids = Vec::new();
    for r in [&ok, &nf, &bad] {
        let id = r.header("x-request-id").expect("x-request-id").to_string();
        assert_eq!(id.len(), 32, "{id}");
        assert!(id.bytes().all(|c| c.is_ascii_hexdigit()));
        ids.push(id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 3, "fresh ids differ");
    f.stop().await;
}

#[actix_rt::test]
async fn a_sane_request_id_is_echoed_and_a_bad_one_replaced() {
    let f = Fixture::start(config()).await;
    for path in ["/v1/calc/calc.Add", "/nope"] {
        let req = f
            .client
            .post(f.url(path))
            .insert_header(("x-request-id", "my-req_42"));
        let r = send_req(req, r#"{"a":1,"b":1}"#.into()).await;
        assert_eq!(r.header("x-request-id"), Some("my-req_42"));
    }
    let long = "x".repeat(129);
    for bad in [long.as_str(), "with space", "tab\there"] {
        let req = f
            .client
            .post(f.url("/v1/calc/calc.Add"))
            .insert_header(("x-request-id", bad));
        let r = send_req(req, r#"{"a":1,"b":1}"#.into()).await;
        let id = r.header("x-request-id").unwrap();
        assert_ne!(id, bad);
        assert_eq!(id.len(), 32);
    }
    f.stop().await;
}

#[actix_rt::test]
async fn the_trace_id_reaches_the_service() {
    let f = Fixture::start(config()).await;
    let req = f.client.post(f.url("/v1/calc/calc.WhoAmI")).insert_header((
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    ));
    let r = send_req(req, String::new()).await;
    assert_eq!(r.json["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    // Without one (or with a bad one), a fresh trace id is made per request.
    let a = f.post("/v1/calc/calc.WhoAmI", "").await.json["trace_id"].clone();
    let b = f.post("/v1/calc/calc.WhoAmI", "").await.json["trace_id"].clone();
    assert!(a.is_string() && b.is_string() && a != b, "{a} {b}");
    f.stop().await;
}
