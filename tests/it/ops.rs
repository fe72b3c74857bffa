//! The operations endpoints of `msa node` processes (`--ops-bind`,
//! `MSA_OPS_BIND`): probes and node-labelled metrics on every node, gateway
//! or not; `/readyz` saying what is missing; JSON logs; the secret from a
//! file.

use std::process::Stdio;
use std::time::Duration;

use crate::support::{
    eventually, http, msa, service_nodes, status_json, Proc, Ready, TempFile, READY_WAIT,
};

const SECRET: &str = "ops-test-secret";
const BOUND: Duration = Duration::from_secs(30);

fn start(name: &str, mut cmd: std::process::Command) -> (Proc, Ready) {
    cmd.args(["--name", name, "--listen", "127.0.0.1:0", "--arbiters", "1"]);
    let p = Proc::spawn(name, cmd);
    let line = p
        .line_where(READY_WAIT, |l| l.starts_with("msa-node "))
        .unwrap_or_else(|| panic!("{name} printed no ready line"));
    let ready = Ready::parse(&line).unwrap_or_else(|| panic!("bad ready line {line}"));
    (p, ready)
}

/// The samples of `metric` in a Prometheus text scrape, as (labels, value).
fn samples(text: &str, metric: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (name, labels) = series.split_once('{').unwrap_or((series, ""));
            if name != metric {
                return None;
            }
            Some((
                labels.trim_end_matches('}').to_string(),
                value.parse().ok()?,
            ))
        })
        .collect()
}

#[test]
fn every_node_serves_probes_and_metrics_of_its_own_services_labelled_with_its_name() {
    // node1: kv, the gateway and the ops endpoints from flags.
    let mut cmd = msa();
    cmd.args(["node", "--service", "kv", "--gateway", "127.0.0.1:0"])
        .args(["--ops-bind", "127.0.0.1:0"])
        .env("MSA_SECRET", SECRET);
    let (_n1, r1) = start("ops1", cmd);
    // node2: echo, no gateway; ops address and secret from the environment
    // (the secret through a file, as a mounted Kubernetes Secret).
    let secret_file = TempFile::new("ops-secret", &format!("{SECRET}\n"));
    let mut cmd = msa();
    cmd.args(["node", "--service", "echo", "--seed", &r1.addr])
        .env("MSA_OPS_BIND", "127.0.0.1:0")
        .env("MSA_SECRET_FILE", secret_file.path());
    let (_n2, r2) = start("ops2", cmd);
    assert!(r2.gateway.is_none());
    let (gw, ops1, ops2) = (
        r1.gateway.clone().expect("node1 runs the gateway"),
        r1.ops.clone().expect("node1 prints ops="),
        r2.ops.clone().expect("node2 prints ops="),
    );

    for ops in [&ops1, &ops2] {
        assert_eq!(http(ops, "GET", "/healthz", "").0, 200);
        assert!(
            eventually(BOUND, || http(ops, "GET", "/readyz", "").0 == 200),
            "{ops} never ready: {:?}",
            http(ops, "GET", "/readyz", "")
        );
    }
    // node1 knows echo on node2 (the secret file worked; readiness covers
    // only the members a node knows, so wait for it)...
    assert!(
        eventually(BOUND, || status_json(&r1.addr, SECRET)
            .is_some_and(|s| !service_nodes(&s, "echo").is_empty())),
        "node1 never saw echo"
    );
    // ...and its gateway reaches it.
    for _ in 0..3 {
        assert_eq!(
            http(&gw, "POST", "/v1/echo/echo.Echo", "\"hi\""),
            (200, "\"hi\"".to_string())
        );
    }

    let m2 = http(&ops2, "GET", "/metrics", "").1;
    assert_eq!(
        samples(&m2, "msa_service_messages_total"),
        [(r#"node="ops2",service="echo""#.to_string(), 3.0)],
        "{m2}"
    );
    // A node that serves /metrics counts mailbox depth, gateway or not.
    assert_eq!(samples(&m2, "msa_service_mailbox_depth").len(), 1, "{m2}");
    let m1 = http(&ops1, "GET", "/metrics", "").1;
    assert_eq!(
        samples(&m1, "msa_service_messages_total"),
        [(r#"node="ops1",service="kv""#.to_string(), 0.0)],
        "node1 reports a service it does not run: {m1}"
    );
    // The gateway's /metrics: the same node view, plus its requests.
    let g1 = http(&gw, "GET", "/metrics", "").1;
    assert_eq!(
        samples(&g1, "msa_service_messages_total"),
        [(r#"node="ops1",service="kv""#.to_string(), 0.0)],
        "{g1}"
    );
    assert!(!samples(&g1, "msa_gateway_requests_total").is_empty());
    assert!(samples(&m1, "msa_gateway_requests_total").is_empty());
    for (text, name) in [(&m1, "ops1"), (&m2, "ops2"), (&g1, "ops1")] {
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            assert!(
                line.contains(&format!("node=\"{name}\"")),
                "a series without node=\"{name}\": {line}"
            );
        }
    }
    assert_eq!(http(&ops1, "GET", "/v1/echo/echo.Echo", "").0, 404);
}

#[test]
fn readyz_says_what_is_missing_while_the_seeds_are_unreachable() {
    // A seed nobody listens on: a port bound, then freed.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap().to_string();
    drop(dead);
    let mut cmd = msa();
    cmd.args(["node", "--seed", &dead_addr, "--ops-bind", "127.0.0.1:0"])
        .env("MSA_SECRET", SECRET);
    let (_n, r) = start("lonely", cmd);
    let ops = r.ops.expect("ops=");
    assert_eq!(http(&ops, "GET", "/healthz", "").0, 200);
    let (status, body) = http(&ops, "GET", "/readyz", "");
    assert_eq!(status, 503, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "not_ready");
    let reasons = v["reasons"].to_string();
    assert!(reasons.contains("no live member"), "{reasons}");
}

#[test]
fn a_taken_ops_address_is_an_error_not_a_move() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = msa()
        .args(["node", "--name", "x", "--ops-bind", &addr])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot serve the operations endpoints"),
        "{err}"
    );
}

#[test]
fn json_logs_are_one_object_per_line_and_bad_formats_are_refused() {
    // The node stops at once (stdin at EOF), logging its start and stop.
    let out = msa()
        .args(["node", "--name", "jsonlog", "--service", "echo"])
        .args(["--log-format", "json", "--stop-on-stdin-eof"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert!(lines.len() >= 3, "too few log lines: {err}");
    for line in &lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(v["level"].is_string() && v["message"].is_string(), "{line}");
    }
    assert!(err.contains("\"node ready\""), "{err}");

    // The same from the environment and from a file; a bad value is refused.
    let out = msa()
        .args(["node", "--name", "jsonlog2", "--stop-on-stdin-eof"])
        .env("MSA_LOG_FORMAT", "json")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && err.lines().all(|l| l.starts_with('{')),
        "{err}"
    );
    let cfg = TempFile::new("ops-logfmt", "log_format = \"xml\"\n");
    let out = msa()
        .args(["node", "--config", cfg.path()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("unknown variant `xml`"),
        "{err}"
    );
}
