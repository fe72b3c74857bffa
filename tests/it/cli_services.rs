//! `msa service list|scale|restart --seed ADDR` against a real `msa node`
//! process, over the authenticated protocol (issue 12).

use std::process::{Output, Stdio};

use crate::support::{msa, NodeProc};
use serde_json::Value;

const SECRET: &str = "cli-services-test-secret";

/// `msa service <args> --seed addr --json` with `secret`.
fn service(addr: &str, secret: &str, args: &[&str]) -> Output {
    let out = msa()
        .arg("service")
        .args(args)
        .args(["--seed", addr, "--json", "--timeout", "30"])
        .env("MSA_SECRET", secret)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    eprintln!(
        "msa service {args:?}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// (state, instances, max) of `name` in a JSON report.
fn row(out: &Output, name: &str) -> (String, u64, u64) {
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = v["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("{name} not listed: {v}"));
    (
        s["state"].as_str().unwrap().to_string(),
        s["instances"].as_u64().unwrap(),
        s["max_instances"].as_u64().unwrap(),
    )
}

#[test]
fn an_operator_lists_scales_and_restarts_a_nodes_services() {
    let node = NodeProc::start("svc1", SECRET, None, &["echo:echo:3", "counter"]);
    let addr = node.addr().to_string();

    let list = service(&addr, SECRET, &["list"]);
    assert_eq!(row(&list, "echo"), ("running".into(), 3, 3));
    assert_eq!(row(&list, "counter"), ("running".into(), 1, 1));

    let down = service(&addr, SECRET, &["scale", "echo", "1"]);
    assert_eq!(row(&down, "echo"), ("running".into(), 1, 3));
    let up = service(&addr, SECRET, &["scale", "echo", "3"]);
    assert_eq!(row(&up, "echo"), ("running".into(), 3, 3));

    let restarted = service(&addr, SECRET, &["restart", "counter"]);
    assert_eq!(row(&restarted, "counter"), ("running".into(), 1, 1));

    // Refusals: beyond max_instances, an unknown service.
    let too_many = service(&addr, SECRET, &["scale", "echo", "4"]);
    assert!(!too_many.status.success());
    assert!(String::from_utf8_lossy(&too_many.stderr).contains("between 1 and 3"));
    let unknown = service(&addr, SECRET, &["restart", "nope"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("nope"));

    // The wrong credential is refused by the handshake; nothing changes.
    let wrong = service(&addr, "not-the-secret", &["scale", "echo", "1"]);
    assert!(!wrong.status.success());
    assert_eq!(
        row(&service(&addr, SECRET, &["list"]), "echo"),
        ("running".into(), 3, 3)
    );
    // The table form names the columns.
    let table = msa()
        .args(["service", "list", "--seed", &addr])
        .env("MSA_SECRET", SECRET)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("SERVICE") && text.contains("echo"), "{text}");
}

/// A service's `max_instances` from the node's config (here the
/// `--service kind:name:instances:max` flag, which fills the same field as a
/// `[[services]]` table's `max_instances`) lets `msa service scale` go beyond
/// the instances it started with, up to it and no further.
#[test]
fn scale_goes_beyond_instances_up_to_the_configured_max_instances() {
    let node = NodeProc::start("svc2", SECRET, None, &["echo:echo:1:4"]);
    let addr = node.addr().to_string();

    assert_eq!(
        row(&service(&addr, SECRET, &["list"]), "echo"),
        ("running".into(), 1, 4)
    );
    let up = service(&addr, SECRET, &["scale", "echo", "4"]);
    assert_eq!(row(&up, "echo"), ("running".into(), 4, 4));
    let too_many = service(&addr, SECRET, &["scale", "echo", "5"]);
    assert!(!too_many.status.success());
    assert!(String::from_utf8_lossy(&too_many.stderr).contains("between 1 and 4"));
}
