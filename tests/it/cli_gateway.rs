//! The shop demo as a user runs it: `msa cluster up` with the gateway and
//! auth on, tokens from `msa token`, and plain HTTP calls that cross the
//! three nodes (orders on node1 calls inventory on node2 and payments on
//! node3).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::support::{eventually, msa, run, Proc};
use serde_json::{json, Value};

pub(crate) const JWT_SECRET: &str = "cli-gateway-test-secret";

/// Starts `msa cluster up` with `extra` flags; returns the process and the
/// stdout lines up to and including `secret:`.
pub(crate) fn cluster_up(extra: &[&str]) -> (Proc, Vec<String>) {
    let mut cmd = msa();
    cmd.env_remove("MSA_JWT_SECRET")
        .env_remove("MSA_GATEWAY")
        .args(["cluster", "up", "--nodes", "3"])
        .args(extra);
    let p = Proc::spawn("cluster-up", cmd);
    let mut lines = Vec::new();
    while let Some(l) = p.line(Duration::from_secs(60)) {
        let done = l.starts_with("secret:");
        lines.push(l);
        if done {
            break;
        }
    }
    (p, lines)
}

/// The rows of the node table, split on whitespace.
pub(crate) fn node_rows(lines: &[String]) -> Vec<Vec<String>> {
    lines
        .iter()
        .filter(|l| l.starts_with("node"))
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

/// `msa token --sub sub --role r..`, signed with [`JWT_SECRET`].
pub(crate) fn token(sub: &str, roles: &[&str]) -> String {
    let mut args = vec![
        "token", "--secret", JWT_SECRET, "--sub", sub, "--ttl", "10m",
    ];
    for r in roles {
        args.extend(["--role", r]);
    }
    let out = run(&args);
    assert!(
        out.status.success(),
        "msa token failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let t = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(t.split('.').count(), 3, "a JWT: {t}");
    t
}

/// One HTTP/1.1 request on a fresh connection; answers the status and the
/// body parsed as JSON (`Value::Null` when it is not JSON).
pub(crate) fn http(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, Value) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let auth = token.map_or_else(String::new, |t| format!("Authorization: Bearer {t}\r\n"));
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{auth}\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw);
    let (head, rest) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {text:?}"));
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    });
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// Decodes a chunked HTTP/1.1 body.
fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// The node a service runs on, in a `/v1/cluster` answer.
fn nodes_of(cluster: &Value, service: &str) -> Vec<String> {
    cluster["services"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["name"] == service)
        .flat_map(|s| s["nodes"].as_array().cloned().unwrap_or_default())
        .filter_map(|n| n.as_str().map(str::to_string))
        .collect()
}

fn gone(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_err()
}

#[test]
fn the_shop_demo_places_and_reads_orders_across_nodes_with_roles_enforced() {
    let (mut up, lines) = cluster_up(&["--gateway", "127.0.0.1:0", "--jwt-secret", JWT_SECRET]);
    let rows = node_rows(&lines);
    assert_eq!(rows.len(), 3, "{lines:#?}");
    let shop: Vec<&str> = rows.iter().map(|r| r[4].as_str()).collect();
    assert_eq!(
        shop,
        ["orders", "inventory,notifications", "payments"],
        "{lines:#?}"
    );
    let gateway_cell = rows[0].get(5).unwrap_or_else(|| panic!("{lines:#?}"));
    let addr = gateway_cell.strip_prefix("http://").unwrap().to_string();
    assert_ne!(addr, "127.0.0.1:0", "the bound port is printed");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("gateway:") && l.contains(&addr) && l.contains("auth on")),
        "{lines:#?}"
    );
    // The live view's URL beside the gateway's (docs/live-view.md).
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("ui:") && l.contains(&format!("http://{addr}/ui "))),
        "{lines:#?}"
    );
    assert!(
        !lines.iter().any(|l| l.contains(JWT_SECRET)),
        "the JWT secret is not printed"
    );

    let (alice, bob, root) = (
        token("alice", &["customer"]),
        token("bob", &["staff"]),
        token("root", &["admin"]),
    );

    // Health needs no token.
    let (status, body) = http(&addr, "GET", "/healthz", None, "");
    assert_eq!((status, &body["status"]), (200, &json!("ok")));

    // The gateway's node sees the shop spread over the three nodes.
    let spread = eventually(Duration::from_secs(20), || {
        let (status, c) = http(&addr, "GET", "/v1/cluster", Some(&root), "");
        status == 200
            && nodes_of(&c, "orders") == ["node1"]
            && nodes_of(&c, "inventory") == ["node2"]
            && nodes_of(&c, "payments") == ["node3"]
    });
    assert!(spread, "the cluster view never showed the shop on node1..3");

    // Place an order as a customer: orders (node1) reserves on node2 and
    // charges on node3.
    let order = json!({"sku": "book", "qty": 2}).to_string();
    let (status, placed) = http(&addr, "POST", "/orders", Some(&alice), &order);
    assert_eq!(status, 200, "{placed}");
    assert_eq!(placed["status"], "Confirmed", "{placed}");
    assert_eq!(placed["customer"], "alice", "the identity reached orders");
    assert_eq!(placed["total_cents"], 2 * 1299);
    assert!(placed["payment"].as_str().unwrap().starts_with("pay-"));
    let id = placed["id"].as_u64().unwrap();

    // The live view (docs/live-view.md): the order is a trace crossing the
    // three nodes, orders → inventory → payments, under the gateway's hop.
    let mut snap = Value::Null;
    let traced = eventually(Duration::from_secs(10), || {
        let (status, s) = http(&addr, "GET", "/v1/live/snapshot", Some(&root), "");
        snap = s;
        status == 200
            && snap["traces"].as_array().is_some_and(|ts| {
                ts.iter().any(|t| {
                    let services = t["services"].as_array().cloned().unwrap_or_default();
                    t["nodes"] == json!(["node1", "node2", "node3"])
                        && ["orders", "inventory", "payments"]
                            .iter()
                            .all(|s| services.contains(&json!(s)))
                })
            })
    });
    assert!(
        traced,
        "no trace of the order over node1..3: {}",
        snap["traces"]
    );
    let (status, _) = http(&addr, "GET", "/v1/live/snapshot", Some(&alice), "");
    assert_eq!(status, 403, "the live view is for admins");

    // Read it back through the friendly route.
    let (status, read) = http(&addr, "GET", &format!("/orders/{id}"), Some(&alice), "");
    assert_eq!((status, &read), (200, &placed));

    // The payment on node3 was made for alice: identity crossed two hops.
    let get_payment = json!({"id": placed["payment"]}).to_string();
    let (status, payment) = http(
        &addr,
        "POST",
        "/v1/payments/shop.GetPayment",
        Some(&root),
        &get_payment,
    );
    assert_eq!(status, 200, "{payment}");
    assert_eq!(payment["customer"], "alice");

    // A declined payment releases the reservation on node2.
    let laptop = json!({"sku": "laptop", "qty": 1}).to_string();
    let (status, declined) = http(&addr, "POST", "/orders", Some(&alice), &laptop);
    assert_eq!(status, 200);
    assert_eq!(declined["status"], "PaymentDeclined", "{declined}");
    let (_, stock) = http(
        &addr,
        "POST",
        "/v1/inventory/shop.GetStock",
        Some(&alice),
        r#"{"sku":"laptop"}"#,
    );
    assert_eq!(
        (&stock["available"], &stock["reserved"]),
        (&json!(3), &json!(0))
    );

    // Inventory writes are for staff.
    let restock = json!({"sku": "book", "qty": 1}).to_string();
    let (status, body) = http(
        &addr,
        "POST",
        "/v1/inventory/shop.Restock",
        Some(&alice),
        &restock,
    );
    assert_eq!(
        (status, &body["error"]),
        (403, &json!("forbidden")),
        "{body}"
    );
    let (status, body) = http(
        &addr,
        "POST",
        "/v1/inventory/shop.Restock",
        Some(&bob),
        &restock,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["available"], 10 - 2 + 1);

    // Operations endpoints are for admins.
    let (status, _) = http(&addr, "GET", "/metrics", Some(&alice), "");
    assert_eq!(status, 403);
    let (status, _) = http(&addr, "GET", "/metrics", Some(&root), "");
    assert_eq!(status, 200);

    // No token, a bad token.
    let (status, body) = http(&addr, "POST", "/orders", None, &order);
    assert_eq!(
        (status, &body["error"]),
        (401, &json!("unauthorized")),
        "{body}"
    );
    let forged = format!("{}x", &alice[..alice.len() - 1]);
    let (status, _) = http(&addr, "POST", "/orders", Some(&forged), &order);
    assert_eq!(status, 401);

    // Unknown message or service: 404 for a caller allowed to call anything.
    let (status, body) = http(&addr, "POST", "/v1/orders/shop.Nope", Some(&root), "{}");
    assert_eq!(
        (status, &body["error"]),
        (404, &json!("not_found")),
        "{body}"
    );
    let (status, _) = http(
        &addr,
        "POST",
        "/v1/nosuch/shop.GetOrder",
        Some(&root),
        r#"{"id":1}"#,
    );
    assert_eq!(status, 404);

    // A malformed body: 400 for a caller allowed to place orders.
    let (status, body) = http(&addr, "POST", "/orders", Some(&alice), "{\"sku\": ");
    assert_eq!(
        (status, &body["error"]),
        (400, &json!("bad_request")),
        "{body}"
    );
    let (status, body) = http(&addr, "POST", "/orders", Some(&alice), r#"{"sku":"book"}"#);
    assert_eq!(status, 400, "a missing field: {body}");
    assert!(body["message"].as_str().unwrap().contains("qty"), "{body}");

    // Stop with Ctrl-C: everything exits.
    let pids: Vec<i32> = rows.iter().map(|r| r[1].parse().unwrap()).collect();
    up.signal(nix::sys::signal::Signal::SIGINT);
    let status = up
        .wait_timeout(Duration::from_secs(15))
        .expect("cluster up did not stop after SIGINT");
    assert!(status.success(), "{status}");
    for pid in pids {
        assert!(gone(pid), "node pid {pid} outlived cluster up");
    }
    assert!(
        TcpStream::connect(&addr).is_err(),
        "the gateway stopped listening"
    );
}

#[test]
fn a_node_with_a_gateway_flag_prints_its_bound_address_and_serves_without_auth() {
    let mut cmd = msa();
    cmd.env_remove("MSA_JWT_SECRET")
        .env_remove("MSA_GATEWAY")
        .args([
            "node",
            "--name",
            "solo",
            "--arbiters",
            "1",
            "--gateway",
            "127.0.0.1:0",
            "--demo-policy",
        ])
        .args(["--service", "orders", "--service", "inventory"])
        .args(["--service", "payments"]);
    let mut p = Proc::spawn("solo", cmd);
    let line = p
        .line_where(crate::support::READY_WAIT, |l| l.starts_with("msa-node "))
        .expect("no ready line");
    let addr = line
        .split_whitespace()
        .find_map(|f| f.strip_prefix("gateway="))
        .unwrap_or_else(|| panic!("no gateway in {line}"))
        .to_string();
    let order = json!({"sku": "mug", "qty": 1}).to_string();
    let (status, placed) = http(&addr, "POST", "/orders", None, &order);
    assert_eq!(status, 200, "{placed}");
    assert_eq!(
        (&placed["status"], &placed["customer"]),
        (&json!("Confirmed"), &json!("anonymous"))
    );
    let (status, unknown) = http(&addr, "GET", "/orders/999", None, "");
    assert_eq!(
        (status, unknown),
        (200, Value::Null),
        "an unknown order is null"
    );
    p.terminate();
    let status = p
        .wait_timeout(Duration::from_secs(15))
        .expect("did not stop");
    assert!(status.success(), "{status}");
}

#[test]
fn token_and_gateway_flags_are_checked() {
    let out = run(&["token", "--secret", "", "--sub", "a"]);
    assert!(!out.status.success());
    let out = run(&["token", "--secret", "s", "--sub", "a", "--ttl", "1w"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown unit"));
    let mut cmd = msa();
    cmd.env_remove("MSA_GATEWAY")
        .args(["node", "--jwt-secret", "s"])
        .stdin(std::process::Stdio::null());
    let out = cmd.output().unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("needs a gateway"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_taken_gateway_address_fails_the_node_and_cluster_up() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    // A node refuses to start, naming the address.
    let mut cmd = msa();
    cmd.env_remove("MSA_JWT_SECRET")
        .env_remove("MSA_GATEWAY")
        .args([
            "node",
            "--name",
            "fb",
            "--arbiters",
            "1",
            "--gateway",
            &addr,
        ])
        .stdin(std::process::Stdio::null());
    let out = cmd.output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot start the gateway") && err.contains(&addr),
        "{err}"
    );
    // So does `cluster up`: it never moves its gateway to another port, where
    // a client following the docs would not find it (and would reach
    // whatever holds the address instead).
    let mut cmd = msa();
    cmd.env_remove("MSA_JWT_SECRET")
        .env_remove("MSA_GATEWAY")
        .args(["cluster", "up", "--nodes", "1", "--gateway", &addr])
        .stdin(std::process::Stdio::null());
    let out = cmd.output().unwrap();
    assert!(
        !out.status.success(),
        "cluster up started on a taken gateway address"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("did not start") && err.contains(&addr),
        "{err}"
    );
    drop(taken);
}

/// A body for every message a demo service handles. A message missing here
/// fails the walk below, so a new demo message gets a sample.
fn sample_body(message: &str) -> Option<&'static str> {
    Some(match message {
        "echo.Ping" => "7",
        "echo.Echo" => r#""hi""#,
        "counter.Add" => "2",
        "counter.Get" | "counter.Reset" | "counter.Tick" => "null",
        "kv.Get" | "kv.Delete" => r#"{"key":"k"}"#,
        "kv.Put" => r#"{"key":"k","value":[1,2]}"#,
        "kv.List" => r#"{"prefix":""}"#,
        "shop.PlaceOrder" => r#"{"sku":"book","qty":1}"#,
        "shop.GetOrder" => r#"{"id":1}"#,
        "shop.GetStock" => r#"{"sku":"book"}"#,
        "shop.Restock" => r#"{"sku":"book","qty":1}"#,
        "shop.Reserve" => r#"{"sku":"pen","qty":1}"#,
        "shop.Commit" | "shop.Release" => r#"{"reservation":999}"#,
        "shop.Charge" => r#"{"order":1,"amount_cents":100}"#,
        "shop.GetPayment" => r#"{"id":"pay-1"}"#,
        "shop.ListNotifications" => r#"{"limit":5}"#,
        _ => return None,
    })
}

#[test]
fn every_message_the_cluster_lists_answers_through_the_gateway_on_node1() {
    let (mut up, lines) = cluster_up(&["--gateway", "127.0.0.1:0", "--jwt-secret", JWT_SECRET]);
    let rows = node_rows(&lines);
    let gateway_cell = rows[0].get(5).unwrap_or_else(|| panic!("{lines:#?}"));
    let addr = gateway_cell.strip_prefix("http://").unwrap().to_string();
    let root = token("root", &["admin"]);

    // Wait until node1 has every node's table: seven services with messages.
    let services = [
        "kv",
        "echo",
        "counter",
        "orders",
        "inventory",
        "payments",
        "notifications",
    ];
    let mut cluster = Value::Null;
    let complete = eventually(Duration::from_secs(30), || {
        let (status, c) = http(&addr, "GET", "/v1/cluster", Some(&root), "");
        cluster = c;
        status == 200
            && services.iter().all(|s| {
                cluster["services"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|v| {
                        v["name"] == *s && v["messages"].as_array().is_some_and(|m| !m.is_empty())
                    })
            })
    });
    assert!(complete, "node1 never listed every service: {cluster:#}");

    // Every listed message of every service answers through node1, whether
    // the service runs there (kv, orders) or not (all the others).
    let mut called = Vec::new();
    for svc in cluster["services"].as_array().unwrap() {
        let name = svc["name"].as_str().unwrap();
        for m in svc["messages"].as_array().unwrap() {
            let message = m["name"].as_str().unwrap();
            let body = sample_body(message)
                .unwrap_or_else(|| panic!("no sample body for `{message}`: add one"));
            let (status, reply) = http(
                &addr,
                "POST",
                &format!("/v1/{name}/{message}"),
                Some(&root),
                body,
            );
            assert_eq!(status, 200, "{name}/{message} answered {status}: {reply}");
            called.push(format!("{name}/{message}"));
        }
    }
    for expected in [
        "echo/echo.Ping",
        "counter/counter.Add",
        "inventory/shop.Restock",
        "payments/shop.Charge",
    ] {
        assert!(
            called.iter().any(|c| c == expected),
            "{expected} in {called:?}"
        );
    }
    // The schema of a message whose service runs elsewhere is still shown.
    let inventory = cluster["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "inventory")
        .unwrap();
    assert!(
        inventory["messages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["schema"].is_object()),
        "{inventory:#}"
    );

    // Bad input for a service on another node is refused by the node that
    // decodes it, with the same statuses as a local one.
    let (status, body) = http(&addr, "POST", "/v1/echo/echo.Ping", Some(&root), "nope");
    assert_eq!(
        (status, &body["error"]),
        (400, &json!("bad_request")),
        "{body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("malformed JSON"),
        "{body}"
    );
    let (status, body) = http(
        &addr,
        "POST",
        "/v1/inventory/shop.Restock",
        Some(&root),
        r#"{"sku":"book","qty":"many"}"#,
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("`qty`"),
        "{body}"
    );
    let (status, body) = http(&addr, "POST", "/v1/counter/counter.Nope", Some(&root), "1");
    assert_eq!(
        (status, &body["error"]),
        (404, &json!("not_found")),
        "{body}"
    );

    up.terminate();
    assert!(
        up.wait_timeout(Duration::from_secs(30)).is_some(),
        "cluster up exits"
    );
}
