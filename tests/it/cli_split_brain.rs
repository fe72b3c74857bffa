//! The split-brain resolver across real `msa node` processes (issue 10
//! item 2): `msa cluster partition node1,node2 node3` leaves node3 alone;
//! after `split_brain.stable_after` (1 s here, set by
//! `MSA_SPLIT_BRAIN_STABLE_AFTER`) it downs itself: its own `msa cluster
//! status` says `down`, its gateway answers 503 and its `/readyz` 503;
//! node1 and node2 list it down; after `msa cluster heal` it rejoins.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::support::{eventually, msa, service_nodes, status_json, Proc, Ready, READY_WAIT};
use serde_json::Value;

const SECRET: &str = "cli-sbr-test-secret";
const BOUND: Duration = Duration::from_secs(40);

/// One HTTP/1.1 request on a fresh connection: the status and the body as
/// JSON (`Null` when it is not).
fn http(addr: &str, method: &str, path: &str, body: &str) -> (u16, Value) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw);
    let (head, rest) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = rest
        .find('{')
        .and_then(|i| rest.get(i..=rest.rfind('}')?))
        .unwrap_or(rest);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// `(status, state)` of `member` in a status.
fn member(status: &Value, name: &str) -> (String, String) {
    status["members"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["name"] == name)
        .map(|m| {
            (
                m["status"].as_str().unwrap_or("").to_string(),
                m["state"].as_str().unwrap_or("").to_string(),
            )
        })
        .unwrap_or_default()
}

#[test]
fn a_node_alone_in_a_partition_downs_itself_answers_503_and_rejoins_after_the_heal() {
    let mut nodes: Vec<(Proc, Ready)> = Vec::new();
    let mut gateway = String::new();
    for (name, service) in [("node1", "kv"), ("node2", "echo"), ("node3", "counter")] {
        let mut cmd = msa();
        cmd.args(["node", "--name", name, "--listen", "127.0.0.1:0"])
            .args(["--arbiters", "1", "--service", service])
            .args(["--failure-detection-ms", "2000"])
            .env("MSA_SECRET", SECRET)
            .env("MSA_SPLIT_BRAIN_STABLE_AFTER", "1000");
        if let Some((_, seed)) = nodes.first() {
            let seed: &Ready = seed;
            cmd.args(["--seed", &seed.addr]);
        }
        if name == "node3" {
            cmd.args(["--gateway", "127.0.0.1:0"]);
        }
        let p = Proc::spawn(name, cmd);
        let line = p
            .line_where(READY_WAIT, |l| l.starts_with("msa-node "))
            .unwrap_or_else(|| panic!("{name} printed no ready line"));
        if let Some(g) = line
            .split_whitespace()
            .find_map(|f| f.strip_prefix("gateway="))
        {
            gateway = g.to_string();
        }
        nodes.push((p, Ready::parse(&line).unwrap()));
    }
    let addr = |i: usize| nodes[i].1.addr.clone();
    let view = |i: usize| status_json(&addr(i), SECRET);
    let formed = || {
        (0..3).all(|i| {
            view(i).is_some_and(|v| {
                ["node1", "node2", "node3"]
                    .iter()
                    .all(|n| member(&v, n) == ("alive".into(), "up".into()))
                    && ["kv", "echo", "counter"]
                        .iter()
                        .all(|s| !service_nodes(&v, s).is_empty())
            })
        })
    };
    assert!(eventually(BOUND, formed), "the cluster never formed");
    assert_eq!(http(&gateway, "POST", "/v1/echo/echo.Ping", "7").0, 200);

    let cli = |args: &[&str]| {
        let out = msa()
            .args(["cluster"])
            .args(args)
            .args(["--seed", &addr(0), "--timeout", "5"])
            .env("MSA_SECRET", SECRET)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
    };
    cli(&["partition", "node1,node2", "node3"]);
    let cut = Instant::now();
    let mut last = None;
    let downed = eventually(BOUND, || {
        last = view(2);
        last.as_ref()
            .is_some_and(|v| member(v, "node3") == ("down".into(), "down".into()))
    });
    assert!(downed, "node3 never downed itself: {last:?}");
    eprintln!("node3 downed itself {:?} after the cut", cut.elapsed());
    let majority = eventually(BOUND, || {
        (0..2).all(|i| view(i).is_some_and(|v| member(&v, "node3").0 == "down"))
    });
    assert!(majority, "node1 and node2 do not hold node3 down");

    // node3's gateway: 503 at once, naming the reason; not ready.
    let t = Instant::now();
    let (code, body) = http(&gateway, "POST", "/v1/counter/counter.Get", "null");
    assert_eq!(code, 503, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .contains("split-brain"),
        "{body}"
    );
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    let (code, body) = http(&gateway, "GET", "/readyz", "");
    assert_eq!(code, 503, "{body}");
    assert!(body.to_string().contains("split-brain"), "{body}");

    cli(&["heal"]);
    let healed = Instant::now();
    assert!(eventually(BOUND, formed), "no agreement after the heal");
    assert!(
        eventually(BOUND, || http(&gateway, "GET", "/readyz", "").0 == 200
            && http(&gateway, "POST", "/v1/echo/echo.Ping", "7").0 == 200),
        "node3's gateway did not come back"
    );
    eprintln!(
        "node3 back and every view agrees {:?} after the heal",
        healed.elapsed()
    );
}
