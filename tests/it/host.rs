//! `examples/own_services.rs`, a binary built on `msa::host` with two
//! services of its own, run as a cluster of three processes: a gateway
//! node with no services, one running `tally`, one running `greeter`; calls
//! through the gateway reach greeter, which asks tally, across all three.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::support::{eventually, http, service_nodes, status_json, Proc, Ready, READY_WAIT};

const SECRET: &str = "host-test-secret";
const BOUND: Duration = Duration::from_secs(30);

/// Builds the example with cargo (once per test run) and returns its path.
fn example() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let out = Command::new(cargo)
                .args(["build", "--example", "own_services", "--features", "host"])
                .args(["--message-format", "short"])
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "cargo build --example own_services: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            // target/debug/deps/it-… → target/debug/examples/own_services
            let exe = std::env::current_exe().unwrap();
            let dir = exe.parent().and_then(|d| d.parent()).unwrap();
            dir.join("examples").join("own_services")
        })
        .clone()
}

fn start(name: &str, services: &str, seed: Option<&str>, extra: &[&str]) -> (Proc, Ready) {
    let mut cmd = Command::new(example());
    for (var, _) in std::env::vars_os() {
        if var.to_string_lossy().starts_with("MSA_") {
            cmd.env_remove(var);
        }
    }
    cmd.args(["--name", name, "--listen", "127.0.0.1:0", "--arbiters", "1"])
        .args(extra)
        .env("OWN_SERVICES", services)
        .env("MSA_SECRET", SECRET);
    if let Some(s) = seed {
        cmd.args(["--seed", s]);
    }
    let p = Proc::spawn(name, cmd);
    let line = p
        .line_where(READY_WAIT, |l| l.starts_with("msa-node "))
        .unwrap_or_else(|| panic!("{name} printed no ready line"));
    (p, Ready::parse(&line).unwrap())
}

#[test]
fn three_processes_of_a_host_binary_form_a_cluster_and_call_across_it() {
    let (_t, tally) = start("host-tally", "tally", None, &[]);
    assert_eq!(tally.services, ["tally"]);
    let (_g, greeter) = start("host-greeter", "greeter", Some(&tally.addr), &[]);
    assert_eq!(greeter.services, ["greeter"]);
    let (_w, gw) = start(
        "host-gw",
        "",
        Some(&tally.addr),
        &["--gateway", "127.0.0.1:0", "--ops-bind", "127.0.0.1:0"],
    );
    assert!(gw.services.is_empty(), "{:?}", gw.services);
    let (gateway, ops) = (gw.gateway.clone().unwrap(), gw.ops.clone().unwrap());
    // The gateway node knows all three members (readiness covers the
    // members a node knows, so wait for membership first)...
    assert!(
        eventually(BOUND, || status_json(&gw.addr, SECRET).is_some_and(|s| {
            ["greeter", "tally"]
                .iter()
                .all(|svc| !service_nodes(&s, svc).is_empty())
        })),
        "the gateway node never saw both services: {:?}",
        status_json(&gw.addr, SECRET)
    );
    // ...and is ready: it holds their service tables.
    assert!(
        eventually(BOUND, || http(&ops, "GET", "/readyz", "").0 == 200),
        "the gateway node never became ready: {:?}",
        http(&ops, "GET", "/readyz", "")
    );
    assert_eq!(
        http(
            &gateway,
            "POST",
            "/v1/greeter/greeter.Greet",
            r#"{"name":"ada"}"#
        ),
        (200, "\"hello ada (1)\"".to_string())
    );
    // The route the binary registered, with the path parameter.
    assert_eq!(
        http(&gateway, "GET", "/greet/ada", ""),
        (200, "\"hello ada (2)\"".to_string())
    );
    // Straight to tally, the third process.
    assert_eq!(
        http(
            &gateway,
            "POST",
            "/v1/tally/tally.Count",
            r#"{"word":"ada"}"#
        ),
        (200, "3".to_string())
    );
    // Bad input is the gateway's typed error, not a crash.
    let (status, body) = http(
        &gateway,
        "POST",
        "/v1/greeter/greeter.Greet",
        r#"{"nom":1}"#,
    );
    assert_eq!(status, 400, "{body}");
}

#[test]
fn a_host_binary_refuses_a_bad_config_with_the_reason() {
    let out = Command::new(example())
        .args(["--name", "x", "--log-format", "yaml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown log format"), "{err}");
}
