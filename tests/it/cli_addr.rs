//! `msa node --listen/--advertise`: the real binary refuses to advertise an
//! unspecified address, advertises what it is told, and works over IPv6
//! (`msa cluster status` included).

use crate::support::*;

const SECRET: &str = "addr-cli-secret";

fn members(status: &serde_json::Value) -> Vec<(String, String)> {
    let mut v: Vec<_> = status["members"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            (
                m["name"].as_str().unwrap_or_default().to_string(),
                m["addr"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn msa_node_on_all_interfaces_without_advertise_exits_saying_what_to_set() {
    let out = run(&[
        "node",
        "--listen",
        "0.0.0.0:0",
        "--secret",
        SECRET,
        "--arbiters",
        "1",
        // Bounds the test should the node start after all.
        "--stop-on-stdin-eof",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("needs an advertise address"), "{stderr}");
    assert!(stderr.contains("--advertise"), "{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("msa-node "));
}

#[test]
fn msa_node_advertises_its_advertise_address_and_is_joined_there() {
    let mut cmd = msa();
    cmd.args([
        "node",
        "--name",
        "adv1",
        "--listen",
        "0.0.0.0:0",
        "--arbiters",
        "1",
    ])
    .env("MSA_ADVERTISE", "127.0.0.1:0")
    .env("MSA_SECRET", SECRET);
    let proc = Proc::spawn("adv1", cmd);
    let line = proc
        .line_where(READY_WAIT, |l| l.starts_with("msa-node "))
        .expect("adv1 ready");
    let ready = Ready::parse(&line).unwrap();
    let port: u16 = ready
        .addr
        .strip_prefix("127.0.0.1:")
        .unwrap_or_else(|| panic!("advertised 127.0.0.1: {line}"))
        .parse()
        .unwrap();
    assert_ne!(port, 0, "port 0 became the bound port: {line}");
    let two = NodeProc::start("adv2", SECRET, Some(&ready.addr), &[]);
    let want = vec![
        ("adv1".to_string(), ready.addr.clone()),
        ("adv2".to_string(), two.addr().to_string()),
    ];
    let mut last = None;
    assert!(
        eventually(READY_WAIT, || {
            last = status_json(&ready.addr, SECRET);
            last.as_ref().is_some_and(|s| members(s) == want)
        }),
        "cluster status through the advertised address: {last:?}"
    );
    drop(proc);
}

#[test]
fn msa_nodes_on_ipv6_loopback_join_and_report_status() {
    if let Err(e) = std::net::TcpListener::bind("[::1]:0") {
        eprintln!(
            "skipping msa_nodes_on_ipv6_loopback_join_and_report_status: no IPv6 loopback ({e})"
        );
        return;
    }
    let start = |name: &str, seed: Option<&str>| {
        let mut cmd = msa();
        cmd.args([
            "node",
            "--name",
            name,
            "--listen",
            "[::1]:0",
            "--arbiters",
            "1",
        ])
        .env("MSA_SECRET", SECRET);
        if let Some(s) = seed {
            cmd.args(["--seed", s]);
        }
        let proc = Proc::spawn(name, cmd);
        let line = proc
            .line_where(READY_WAIT, |l| l.starts_with("msa-node "))
            .unwrap_or_else(|| panic!("{name} ready"));
        (proc, Ready::parse(&line).unwrap())
    };
    let (_p1, r1) = start("v6one", None);
    assert!(r1.addr.starts_with("[::1]:"), "{r1:?}");
    let (_p2, r2) = start("v6two", Some(&r1.addr));
    let want = vec![
        ("v6one".to_string(), r1.addr.clone()),
        ("v6two".to_string(), r2.addr.clone()),
    ];
    let mut last = None;
    assert!(
        eventually(READY_WAIT, || {
            last = status_json(&r2.addr, SECRET);
            last.as_ref().is_some_and(|s| members(s) == want)
        }),
        "msa cluster status over [::1]: {last:?}"
    );
}
