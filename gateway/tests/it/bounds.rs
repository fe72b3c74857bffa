//! Request bounds against hostile clients, with raw TCP clients: a slow
//! body holds no concurrency permit (others are not 429) and is cut off
//! with 408; a head that never finishes is closed; an oversized head or too
//! many headers get 431.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;
use msa_gateway::GatewayConfig;

/// Reads until the peer closes or `bound` passes; returns what arrived and
/// whether the connection was closed.
async fn read_until_closed(s: &mut TcpStream, bound: Duration) -> (String, bool) {
    let deadline = Instant::now() + bound;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), false),
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// Sends `head` (a full request head) and reads the answer's status line.
async fn status_of(addr: std::net::SocketAddr, head: &[u8]) -> (String, bool) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    // The server may answer and close before the head is all written.
    let _ = s.write_all(head).await;
    read_until_closed(&mut s, Duration::from_secs(10)).await
}

#[actix_rt::test]
async fn slow_bodies_hold_no_permits_and_get_408() {
    let f = Fixture::start(GatewayConfig {
        max_concurrency: 4,
        body_timeout_ms: 1_500,
        ..config()
    })
    .await;
    let addr = f.gateway.local_addr();
    // Ten times the route's permits: clients that declare 100 bytes and send 1.
    let mut slow = Vec::new();
    for _ in 0..40 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"POST /v1/calc/calc.Add HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
            .await
            .unwrap();
        slow.push(s);
    }
    let t0 = Instant::now();
    // Everyone else is served meanwhile, never 429.
    for _ in 0..20 {
        let r = f.post("/v1/calc/calc.Add", r#"{"a":1,"b":2}"#).await;
        assert_eq!(r.status, 200, "{r:?}");
    }
    assert!(
        t0.elapsed() < Duration::from_millis(1_500),
        "served only after the slow bodies timed out: {:?}",
        t0.elapsed()
    );
    // Each slow client gets 408 after the body timeout and is closed.
    for mut s in slow {
        let (answer, closed) = read_until_closed(&mut s, Duration::from_secs(10)).await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("request_timeout"), "{answer}");
        assert!(closed, "the connection stayed open");
    }
    let metrics = f.send("GET", "/metrics", None, "").await;
    let text = String::from_utf8_lossy(&metrics.raw).into_owned();
    assert!(
        text.lines()
            .any(|l| l.starts_with("msa_gateway_refused_total{")
                && l.contains("reason=\"body_timeout\"")
                && l.ends_with(" 40")),
        "{text}"
    );
    f.stop().await;
}

#[actix_rt::test]
async fn a_head_that_never_finishes_is_closed_after_the_head_timeout() {
    let f = Fixture::start(GatewayConfig {
        head_timeout_ms: 500,
        ..config()
    })
    .await;
    let addr = f.gateway.local_addr();
    let mut s = TcpStream::connect(addr).await.unwrap();
    let t0 = Instant::now();
    // Slowloris: a request line and one header, then nothing more.
    s.write_all(b"POST /v1/calc/calc.Add HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let (answer, closed) = read_until_closed(&mut s, Duration::from_secs(10)).await;
    let after = t0.elapsed();
    assert!(closed, "still open after {after:?}: {answer}");
    assert!(after >= Duration::from_millis(400), "{after:?}");
    assert!(after < Duration::from_secs(5), "{after:?}");
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
    // An idle connection that sends nothing at all is closed too.
    let mut idle = TcpStream::connect(addr).await.unwrap();
    let (_, closed) = read_until_closed(&mut idle, Duration::from_secs(10)).await;
    assert!(closed);
    // Others are served.
    assert_eq!(
        f.post("/v1/calc/calc.Add", r#"{"a":1,"b":2}"#).await.status,
        200
    );
    f.stop().await;
}

fn head_with(headers: &str) -> Vec<u8> {
    format!(
        "POST /v1/calc/calc.Add HTTP/1.1\r\nHost: x\r\nContent-Length: 13\r\n{headers}\r\n{{\"a\":1,\"b\":2}}"
    )
    .into_bytes()
}

#[actix_rt::test]
async fn oversized_heads_are_431() {
    let f = Fixture::start(GatewayConfig {
        max_header_bytes: 4096,
        ..config()
    })
    .await;
    let addr = f.gateway.local_addr();
    // Within the limit: served.
    let (ok, _) = status_of(
        addr,
        &head_with(&format!(
            "X-Pad: {}\r\nConnection: close\r\n",
            "a".repeat(3000)
        )),
    )
    .await;
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    // Over the gateway's limit: 431 from the gateway, JSON and counted.
    let (big, _) = status_of(
        addr,
        &head_with(&format!("X-Pad: {}\r\n", "a".repeat(5000))),
    )
    .await;
    assert!(big.starts_with("HTTP/1.1 431"), "{big}");
    assert!(big.contains("headers_too_large"), "{big}");
    // Over actix-http's own 128 KiB head buffer: 431 and closed.
    let (huge, closed) = status_of(
        addr,
        &head_with(&format!("X-Pad: {}\r\n", "a".repeat(200 * 1024))),
    )
    .await;
    assert!(
        huge.starts_with("HTTP/1.1 431") || huge.is_empty(),
        "{huge}"
    );
    assert!(closed);
    let metrics = f.send("GET", "/metrics", None, "").await;
    let text = String::from_utf8_lossy(&metrics.raw).into_owned();
    assert!(text.contains("reason=\"headers_too_large\""), "{text}");
    f.stop().await;
}

#[actix_rt::test]
async fn too_many_headers_are_431() {
    let f = Fixture::start(config()).await;
    let addr = f.gateway.local_addr();
    let many = |n: usize| (0..n).map(|i| format!("X-H{i}: v\r\n")).collect::<String>();
    let (ok, _) = status_of(
        addr,
        &head_with(&format!("{}Connection: close\r\n", many(50))),
    )
    .await;
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    let (answer, closed) = status_of(addr, &head_with(&many(200))).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    assert!(closed);
    assert_eq!(
        f.post("/v1/calc/calc.Add", r#"{"a":1,"b":2}"#).await.status,
        200
    );
    f.stop().await;
}

#[actix_rt::test]
async fn connections_beyond_max_connections_wait_until_one_closes() {
    let f = Fixture::start(GatewayConfig {
        workers: 1,
        max_connections: 3,
        head_timeout_ms: 30_000,
        ..config()
    })
    .await;
    let addr = f.gateway.local_addr();
    // Three silent connections take every slot (each is served: a request
    // on it is answered, then it stays open).
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        held.push(s);
    }
    // A fourth is not served while they stay open...
    let mut fourth = TcpStream::connect(addr).await.unwrap();
    fourth
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 512];
    let early = tokio::time::timeout(Duration::from_millis(500), fourth.read(&mut buf)).await;
    assert!(early.is_err(), "served beyond max_connections: {early:?}");
    // ...and is, once one of them closes.
    drop(held.pop());
    let (answer, _) = read_until_closed(&mut fourth, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    drop(held);
    f.stop().await;
}
