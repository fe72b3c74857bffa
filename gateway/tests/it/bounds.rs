//! Request bounds against hostile clients, with raw TCP clients: a slow
//! body holds no concurrency permit (others are not 429) and is cut off
//! with 408; a head that never finishes is closed; an oversized head or too
//! many headers get 431; a thousand silent or slow connections neither
//! exhaust the gateway nor block real callers, and are closed in time.

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

/// How many hostile connections the thousand-connection test opens.
const HOSTILE: usize = 1_000;
/// Bound on each wait of the thousand-connection test.
const WAIT: Duration = Duration::from_secs(20);

/// File descriptors this process holds (the gateway runs in it).
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Resident set size of this process in bytes (`VmRSS` in /proc/self/status).
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .map(|v| v.trim().parse().unwrap())
        .unwrap();
    kib * 1024
}

/// What a hostile connection does before it holds its socket open.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Hostile {
    /// Connects and sends nothing.
    Silent,
    /// A request line and one header; the head never ends.
    SlowHead,
    /// A whole head with a valid token declaring 100 bytes of body, then one.
    SlowBody,
}

/// Opens one hostile connection of `kind`.
async fn hostile(addr: std::net::SocketAddr, kind: Hostile, token: &str) -> (Hostile, TcpStream) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    match kind {
        Hostile::Silent => {}
        Hostile::SlowHead => s
            .write_all(b"POST /v1/calc/calc.Add HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap(),
        Hostile::SlowBody => s
            .write_all(
                format!(
                    "POST /v1/calc/calc.Add HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
                     Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{"
                )
                .as_bytes(),
            )
            .await
            .unwrap(),
    }
    (kind, s)
}

/// One authorised call on a connection of its own (as a caller arriving
/// during the attack would make it); its answer and how long it took.
async fn fresh_call(addr: std::net::SocketAddr, token: &str) -> (String, Duration) {
    let t0 = Instant::now();
    let body = r#"{"a":1,"b":2}"#;
    let head = format!(
        "POST /v1/calc/calc.Add HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let (answer, _) = status_of(addr, head.as_bytes()).await;
    (answer, t0.elapsed())
}

#[actix_rt::test]
async fn a_thousand_silent_or_slow_connections_neither_exhaust_the_gateway_nor_block_callers() {
    use msa_gateway::{hs256_token, AuthConfig, PolicyRule};
    // The test holds 1,000 client sockets and the gateway their 1,000 ends.
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap();
    if limit < 2 * HOSTILE as u64 + 512 {
        eprintln!("skipped: RLIMIT_NOFILE hard limit {limit} is below what 1,000 connections need");
        return;
    }
    const SECRET: &str = "hostile-gateway-secret";
    let (head_timeout, body_timeout) = (Duration::from_secs(3), Duration::from_secs(3));
    // Fewer permits than slow bodies: were a permit taken before the body
    // arrived, every real call would be 429.
    let permits = 16;
    let f = Fixture::start(GatewayConfig {
        auth: Some(AuthConfig::hs256(SECRET)),
        policy: vec![PolicyRule {
            service: "calc".into(),
            message: "calc.Add".into(),
            roles: vec!["customer".into()],
        }],
        head_timeout_ms: head_timeout.as_millis() as u64,
        body_timeout_ms: body_timeout.as_millis() as u64,
        max_concurrency: permits,
        ..config()
    })
    .await;
    let addr = f.gateway.local_addr();
    let token = hs256_token(SECRET, "alice", &["customer"], Duration::from_secs(600)).unwrap();
    let admin = hs256_token(SECRET, "ops", &["admin"], Duration::from_secs(600)).unwrap();
    // A real caller, once before the attack (its pooled connection is part
    // of the baseline).
    let call = || {
        f.send(
            "POST",
            "/v1/calc/calc.Add",
            Some(&token),
            r#"{"a":1,"b":2}"#,
        )
    };
    assert_eq!(call().await.status, 200);
    let (answer, _) = fresh_call(addr, &token).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let (fds0, rss0) = (open_fds(), rss_bytes());

    // A third each: silent, slow heads, slow bodies.
    let kinds = [Hostile::Silent, Hostile::SlowHead, Hostile::SlowBody];
    let opened_at = Instant::now();
    let mut held =
        futures_util::future::join_all((0..HOSTILE).map(|i| hostile(addr, kinds[i % 3], &token)))
            .await;
    let opened = opened_at.elapsed();
    // The gateway accepted them: it holds the other end of each (one
    // descriptor per connection per side).
    eventually(
        "the gateway holds every hostile connection",
        WAIT,
        || async { open_fds() + 64 >= fds0 + 2 * HOSTILE },
    )
    .await;

    // While they are open, real callers are served at once, every time:
    // on the caller's pooled connection and on connections of their own.
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        let t0 = Instant::now();
        let r = tokio::time::timeout(Duration::from_secs(5), call())
            .await
            .expect("a real call hung");
        assert_eq!((r.status, &r.json), (200, &serde_json::json!(3)), "{r:?}");
        slowest = slowest.max(t0.elapsed());
        let (answer, took) = fresh_call(addr, &token).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("\r\n\r\n3"), "{answer}");
        slowest = slowest.max(took);
    }
    assert!(
        slowest < Duration::from_secs(1),
        "a real call took {slowest:?}"
    );
    let (fds_held, rss_held) = (open_fds(), rss_bytes());
    let served_within = opened_at.elapsed();
    // All of that happened while the hostile connections were still held
    // (none of the gateway's timeouts had passed yet).
    assert!(
        served_within < head_timeout.min(body_timeout),
        "the real calls ended {served_within:?} after the attack began, after the timeouts"
    );
    // Bounded: no more than a descriptor per connection per side, and a
    // few tens of KiB per connection.
    assert!(
        fds_held <= fds0 + 2 * HOSTILE + 64,
        "{fds_held} descriptors, {fds0} before"
    );
    assert!(
        rss_held.saturating_sub(rss0) < 64 << 20,
        "RSS grew from {} MB to {} MB",
        rss0 >> 20,
        rss_held >> 20
    );

    // After the head and body timeouts the gateway closes every one of them:
    // 408 on each slow body, 408 or a bare close on the others.
    let bound = head_timeout.max(body_timeout) + Duration::from_secs(10);
    let ends = futures_util::future::join_all(held.iter_mut().map(|(kind, s)| async move {
        let (answer, closed) = read_until_closed(s, bound).await;
        (*kind, answer, closed)
    }))
    .await;
    let closed_after = opened_at.elapsed();
    for (kind, answer, closed) in &ends {
        assert!(
            closed,
            "{kind:?} still open after {closed_after:?}: {answer}"
        );
        match kind {
            Hostile::SlowBody => {
                assert!(answer.starts_with("HTTP/1.1 408"), "{kind:?}: {answer}");
                assert!(answer.contains("request_timeout"), "{kind:?}: {answer}");
            }
            _ => assert!(
                answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
                "{kind:?}: {answer}"
            ),
        }
    }
    // The gateway let go of its ends while the test still holds its own.
    eventually("the gateway released its descriptors", WAIT, || async {
        open_fds() <= fds0 + HOSTILE + 64
    })
    .await;
    let fds_closed = open_fds();
    let slow_bodies = ends.iter().filter(|e| e.0 == Hostile::SlowBody).count();
    drop(ends);
    drop(held);
    eventually("descriptors back near the baseline", WAIT, || async {
        open_fds() <= fds0 + 64
    })
    .await;
    // Every slow body was read under the timeout (it passed the token and
    // the policy first) and counted.
    let metrics = f.send("GET", "/metrics", Some(&admin), "").await;
    let text = String::from_utf8_lossy(&metrics.raw).into_owned();
    assert!(
        text.lines()
            .any(|l| l.starts_with("msa_gateway_refused_total{")
                && l.contains("reason=\"body_timeout\"")
                && l.ends_with(&format!(" {slow_bodies}"))),
        "{text}"
    );
    assert_eq!(call().await.status, 200);
    eprintln!(
        "{HOSTILE} hostile connections opened in {opened:?}; real calls served in at most \
         {slowest:?}; descriptors {fds0} before, {fds_held} held, {fds_closed} once the gateway \
         closed its ends (after {closed_after:?}); RSS {} MB before, {} MB held",
        rss0 >> 20,
        rss_held >> 20,
    );
    f.stop().await;
}
