//! `msa cert` and mutual TLS with real `msa` processes: certificates made
//! by `msa cert dev`, two nodes forming a cluster over TLS with no secret,
//! `msa cluster status` working with the operator certificate and refused
//! with a node's or none, SIGHUP reloading the files (the expiry metric
//! moves), and `msa cluster up --tls`.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use crate::support::{eventually, http, msa, run, Proc, Ready, READY_WAIT};

fn dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("msa-cli-cert-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn p(d: &Path, f: &str) -> String {
    d.join(f).to_str().unwrap().to_string()
}

/// `msa node NAME` with TLS from `d` (no secret), optionally seeded.
fn tls_node(d: &Path, name: &str, seed: Option<&str>, extra: &[&str]) -> (Proc, Ready) {
    let mut cmd = msa();
    cmd.args(["node", "--name", name, "--listen", "127.0.0.1:0"])
        .args(["--arbiters", "1"])
        .args(["--tls-ca", &p(d, "ca.pem")])
        .args(["--tls-cert", &p(d, &format!("{name}.pem"))])
        .args(["--tls-key", &p(d, &format!("{name}.key"))])
        .args(extra);
    if let Some(s) = seed {
        cmd.args(["--seed", s]);
    }
    let proc = Proc::spawn(name, cmd);
    let line = proc
        .line_where(READY_WAIT, |l| l.starts_with("msa-node "))
        .unwrap_or_else(|| panic!("{name} printed no ready line"));
    let ready = Ready::parse(&line).unwrap();
    (proc, ready)
}

/// `msa cluster status --json` with the cert `who` from `d` (`None`: no TLS).
fn status(d: &Path, seed: &str, who: Option<&str>) -> Output {
    let mut cmd = msa();
    cmd.args([
        "cluster",
        "status",
        "--json",
        "--timeout",
        "3",
        "--seed",
        seed,
    ]);
    if let Some(w) = who {
        cmd.args(["--tls-ca", &p(d, "ca.pem")])
            .args(["--tls-cert", &p(d, &format!("{w}.pem"))])
            .args(["--tls-key", &p(d, &format!("{w}.key"))]);
    }
    cmd.stdin(Stdio::null()).output().unwrap()
}

fn alive(out: &Output) -> usize {
    if !out.status.success() {
        return 0;
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["status"] == "alive")
        .count()
}

fn expiry_metric(ops: &str) -> Option<i64> {
    let (code, body) = http(ops, "GET", "/metrics", "");
    assert_eq!(code, 200);
    body.lines()
        .filter(|l| l.starts_with("msa_tls_cert_expiry_seconds"))
        .find_map(|l| l.rsplit(' ').next()?.trim().parse().ok())
}

#[test]
fn msa_cert_help_documents_its_flags() {
    for (args, words) in [
        (
            &["cert", "--help"][..],
            &["ca", "node", "operator", "dev"][..],
        ),
        (
            &["cert", "node", "--help"],
            &["--out", "--ca-dir", "--days"],
        ),
        (
            &["cert", "dev", "--help"],
            &["--nodes", "--operator", "--out"],
        ),
        (
            &["cluster", "status", "--help"],
            &["--tls-ca", "--tls-cert", "--tls-key"],
        ),
        (&["cluster", "up", "--help"], &["--tls", "--tls-dir"]),
        (
            &["node", "--help"],
            &["--tls-ca", "--tls-cert", "--tls-key"],
        ),
    ] {
        let out = run(args);
        assert!(out.status.success(), "{args:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        for w in words {
            assert!(text.contains(w), "msa {args:?} does not mention {w}");
        }
    }
}

#[test]
fn two_nodes_form_a_cluster_over_tls_and_only_the_operator_cert_reads_its_status() {
    let d = dir("pair");
    let out = run(&[
        "cert",
        "dev",
        "--nodes",
        "n1,n2",
        "--out",
        d.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let (n1, r1) = tls_node(&d, "n1", None, &["--ops-bind", "127.0.0.1:0"]);
    let (_n2, _) = tls_node(&d, "n2", Some(&r1.addr), &[]);
    assert!(
        eventually(Duration::from_secs(20), || alive(&status(
            &d,
            &r1.addr,
            Some("operator")
        )) == 2),
        "two alive members seen with the operator certificate"
    );
    // A node's certificate cannot act as an operator; no TLS at all fails too.
    let out = status(&d, &r1.addr, Some("n2"));
    assert!(!out.status.success());
    let out = status(&d, &r1.addr, None);
    assert!(!out.status.success());
    assert!(eventually(Duration::from_secs(10), || {
        n1.stderr_lines()
            .iter()
            .any(|l| l.contains("certificate cannot act as an operator"))
    }));
    // The node still serves: status with the operator cert works.
    assert_eq!(alive(&status(&d, &r1.addr, Some("operator"))), 2);

    // Rotation: a new n1 certificate (another expiry), SIGHUP, the metric moves.
    let ops = r1.ops.clone().unwrap();
    let before = expiry_metric(&ops).expect("msa_tls_cert_expiry_seconds exported");
    let out = run(&[
        "cert",
        "node",
        "n1",
        "--out",
        d.to_str().unwrap(),
        "--days",
        "90",
    ]);
    assert!(out.status.success(), "{out:?}");
    n1.signal(nix::sys::signal::Signal::SIGHUP);
    assert!(
        eventually(Duration::from_secs(10), || expiry_metric(&ops)
            != Some(before)),
        "the expiry changed after SIGHUP"
    );
    // The log line is read from the child's stderr by another thread: wait
    // for it rather than expect it at the moment the metric moved.
    assert!(
        eventually(Duration::from_secs(10), || n1
            .stderr_lines()
            .iter()
            .any(|l| l.contains("SIGHUP: TLS files reloaded"))),
        "the reload was logged"
    );
    assert_eq!(alive(&status(&d, &r1.addr, Some("operator"))), 2);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn cluster_up_tls_makes_certificates_and_runs_the_nodes_with_them() {
    let d = dir("up");
    let state = d.join("state.json");
    std::fs::create_dir_all(&d).unwrap();
    let mut cmd = msa();
    cmd.args([
        "cluster",
        "up",
        "--nodes",
        "2",
        "--gateway",
        "127.0.0.1:0",
        "--tls",
    ])
    .args(["--state", state.to_str().unwrap()]);
    let p = Proc::spawn("cluster-up-tls", cmd);
    let mut lines = Vec::new();
    while let Some(l) = p.line(Duration::from_secs(60)) {
        let done = l.starts_with("status:");
        lines.push(l);
        if done {
            break;
        }
    }
    let seed = lines
        .iter()
        .find_map(|l| l.strip_prefix("seed:"))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no seed line in {lines:#?}"))
        .to_string();
    let status_line = lines.last().unwrap();
    assert!(status_line.contains("--tls-cert"), "{status_line}");
    let tls = d.join("tls");
    assert!(tls.join("node1.pem").exists() && tls.join("operator.key").exists());
    assert!(
        eventually(Duration::from_secs(20), || alive(&status(
            &tls,
            &seed,
            Some("operator")
        )) == 2),
        "two members over TLS"
    );
    // Without TLS the nodes refuse, whatever the secret.
    assert!(!status(&tls, &seed, None).status.success());
    drop(p);
    let _ = std::fs::remove_dir_all(&d);
}
