//! The shop's event stream as a user sees it: `msa cluster up` with the
//! gateway and auth on, a client reading `GET /v1/topics/shop.orders`
//! (server-sent events) while an order is placed through the gateway, and
//! the `notifications` service on node2 recording the same events.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::cli_gateway::{cluster_up, http, node_rows, token};
use crate::support::eventually;
use serde_json::{json, Value};

/// Opens the SSE endpoint for `topic` with `token`; answers the stream once
/// the gateway said `: subscribed` (so later events reach it), and what
/// was read so far.
fn open_sse(addr: &str, topic: &str, token: &str) -> (TcpStream, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let req = format!(
        "GET /v1/topics/{topic} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\
         Authorization: Bearer {token}\r\n\r\n"
    );
    s.write_all(req.as_bytes()).unwrap();
    let seen = read_until(&mut s, String::new(), Duration::from_secs(30), |t| {
        t.contains(": subscribed")
    });
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    assert!(
        seen.to_ascii_lowercase()
            .contains("content-type: text/event-stream"),
        "{seen}"
    );
    (s, seen)
}

/// Reads from `s` onto `text` until `done(text)` or the deadline (then it
/// panics with what it read).
fn read_until(
    s: &mut TcpStream,
    mut text: String,
    within: Duration,
    done: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 4096];
    while !done(&text) {
        assert!(Instant::now() < deadline, "timed out; read so far:\n{text}");
        match s.read(&mut buf) {
            Ok(0) => panic!("the stream ended; read so far:\n{text}"),
            Ok(n) => text.push_str(&String::from_utf8_lossy(&buf[..n])),
            // A read timeout: nothing yet, try again until the deadline.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("reading the stream: {e}; read so far:\n{text}"),
        }
    }
    text
}

/// The JSON `data:` of every `event: {name}` in an SSE text.
fn events(text: &str, name: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(l) = lines.next() {
        if l.trim_end() == format!("event: {name}") {
            if let Some(data) = lines.next().and_then(|d| d.strip_prefix("data: ")) {
                out.push(serde_json::from_str(data.trim_end()).unwrap_or(Value::Null));
            }
        }
    }
    out
}

#[test]
fn an_order_placed_through_the_gateway_shows_on_the_sse_stream_and_at_notifications() {
    let (_up, lines) = cluster_up(&[
        "--gateway",
        "127.0.0.1:0",
        "--jwt-secret",
        crate::cli_gateway::JWT_SECRET,
    ]);
    let rows = node_rows(&lines);
    assert_eq!(rows.len(), 3, "{lines:#?}");
    assert_eq!(rows[1][4], "inventory,notifications", "{lines:#?}");
    let addr = rows[0][5].strip_prefix("http://").unwrap().to_string();
    let alice = token("alice", &["customer"]);
    let staff = token("sam", &["staff"]);
    let nobody = token("eve", &["guest"]);

    // The events name customers and what they bought: staff only.
    for who in [&nobody, &alice] {
        let (status, _) = http(&addr, "GET", "/v1/topics/shop.orders", Some(who), "");
        assert_eq!(status, 403);
    }

    // node2's subscription reaches node1 with node2's service table: until
    // then events are not sent there (at most once). Place failing orders
    // (no stock moves) until notifications has one.
    let list = |body: &str| {
        http(
            &addr,
            "POST",
            "/v1/notifications/shop.ListNotifications",
            Some(&staff),
            body,
        )
    };
    let unicorn = json!({"sku": "unicorn", "qty": 1}).to_string();
    let warm = eventually(Duration::from_secs(30), || {
        http(&addr, "POST", "/orders", Some(&alice), &unicorn);
        list("{}").1["received"].as_u64().is_some_and(|n| n > 0)
    });
    assert!(warm, "notifications on node2 never received an event");
    let before = list("{}").1["received"].as_u64().unwrap();

    let (mut sse, seen) = open_sse(&addr, "shop.orders", &staff);
    let order = json!({"sku": "book", "qty": 2}).to_string();
    let (status, placed) = http(&addr, "POST", "/orders", Some(&alice), &order);
    assert_eq!(
        (status, &placed["status"]),
        (200, &json!("Confirmed")),
        "{placed}"
    );
    let (status, unknown) = http(&addr, "POST", "/orders", Some(&alice), &unicorn);
    assert_eq!(
        (status, &unknown["status"]),
        (200, &json!("UnknownSku")),
        "{unknown}"
    );

    let text = read_until(&mut sse, seen, Duration::from_secs(30), |t| {
        !events(t, "shop.OrderFailed").is_empty()
    });
    let ok = events(&text, "shop.OrderPlaced");
    assert_eq!(ok.len(), 1, "{text}");
    assert_eq!(ok[0]["id"], placed["id"], "{text}");
    assert_eq!(ok[0]["customer"], "alice", "{text}");
    assert_eq!(ok[0]["total_cents"], 2 * 1299, "{text}");
    assert_eq!(ok[0]["payment"], placed["payment"], "{text}");
    let bad = events(&text, "shop.OrderFailed");
    assert_eq!(bad[0]["id"], unknown["id"], "{text}");
    assert_eq!(bad[0]["status"], "UnknownSku", "{text}");

    // notifications on node2 subscribed too (across nodes): it recorded both.
    let mut log = Value::Null;
    let recorded = eventually(Duration::from_secs(20), || {
        let (status, l) = list(r#"{"limit":2}"#);
        log = l;
        status == 200 && log["received"] == before + 2
    });
    assert!(
        recorded,
        "notifications never recorded both events: {log:#}"
    );
    assert_eq!(log["notifications"].as_array().unwrap().len(), 2, "{log:#}");
    assert_eq!(
        log["notifications"][0]["Placed"]["id"], placed["id"],
        "{log:#}"
    );
    assert_eq!(
        log["notifications"][1]["Failed"]["status"], "UnknownSku",
        "{log:#}"
    );
}
