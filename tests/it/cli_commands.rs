//! The `msa` command as a user runs it: help, config errors, `cluster
//! status` against a running node, and `cluster up` started and stopped.

use std::time::{Duration, Instant};

use crate::support::{msa, run, status_json, NodeProc, Proc, TempFile};

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn help_of_every_command_exits_zero_and_names_its_options() {
    let cases: [(&[&str], &[&str]); 4] = [
        (&["--help"], &["node", "cluster", "bench"]),
        (
            &["node", "--help"],
            &[
                "--config",
                "--name",
                "--listen",
                "--seed",
                "--cluster",
                "--secret",
                "MSA_SECRET",
                "--arbiters",
                "--service",
            ],
        ),
        (
            &["cluster", "up", "--help"],
            &["--nodes", "--base-port", "--secret", "--cluster"],
        ),
        (
            &["cluster", "status", "--help"],
            &["--seed", "--secret", "MSA_SECRET", "--json"],
        ),
    ];
    for (args, words) in cases {
        let out = run(args);
        assert!(out.status.success(), "msa {args:?}: {out:?}");
        let text = stdout(&out);
        for w in words {
            assert!(
                text.contains(w),
                "msa {args:?} does not mention {w}:\n{text}"
            );
        }
    }
}

#[test]
fn a_config_with_an_unknown_service_kind_is_refused_with_the_reason() {
    let f = TempFile::new(
        "unknown-kind",
        "name = \"n\"\n[[services]]\nkind = \"redis\"\n",
    );
    let out = run(&["node", "--config", f.path()]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains(f.path()), "{err}");
    assert!(err.contains("unknown variant `redis`"), "{err}");
    assert!(err.contains("`kv`, `echo`, `counter`"), "{err}");
}

#[test]
fn a_malformed_config_is_refused_with_the_file_and_line() {
    let f = TempFile::new("malformed", "name = \"n\"\nlisten = [unclosed\n");
    let out = run(&["node", "--config", f.path()]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("invalid config file"), "{err}");
    assert!(err.contains("line 2"), "{err}");

    let out = run(&["node", "--config", "/nonexistent/msa-node.toml"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("cannot read config file"),
        "{}",
        stderr(&out)
    );

    let out = run(&["node", "--service", "redis:cache"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("unknown service kind `redis`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_node_started_from_a_config_file_serves_its_services() {
    let f = TempFile::new(
        "good",
        "name = \"from-file\"\nlisten = \"127.0.0.1:0\"\n\
         [[services]]\nkind = \"kv\"\nname = \"store\"\ninstances = 2\n\
         [[services]]\nkind = \"counter\"\n",
    );
    let mut cmd = msa();
    cmd.args(["node", "--config", f.path()])
        .env("MSA_SECRET", "s3");
    let mut p = Proc::spawn("from-file", cmd);
    let line = p
        .line_where(crate::support::READY_WAIT, |l| l.starts_with("msa-node "))
        .expect("no ready line");
    let ready = crate::support::Ready::parse(&line).unwrap();
    assert_eq!(ready.name, "from-file");
    assert_eq!(ready.services, ["store", "counter"]);
    let status = status_json(&ready.addr, "s3").expect("status");
    assert_eq!(
        crate::support::service_nodes(&status, "store"),
        ["from-file"]
    );
    p.terminate();
    let s = p
        .wait_timeout(Duration::from_secs(10))
        .expect("node did not stop after SIGTERM");
    assert!(s.success(), "{s}");
}

/// The name and services a node started with `cmd` reports, then stops it.
fn ready_of(label: &str, cmd: std::process::Command) -> crate::support::Ready {
    let p = Proc::spawn(label, cmd);
    let line = p
        .line_where(crate::support::READY_WAIT, |l| l.starts_with("msa-node "))
        .unwrap_or_else(|| panic!("{label}: no ready line"));
    crate::support::Ready::parse(&line).unwrap()
}

#[test]
fn env_overrides_the_file_and_flags_override_env() {
    let f = TempFile::new(
        "layers",
        "name = \"file-name\"\n[[services]]\nkind = \"kv\"\n",
    );
    let mut cmd = msa();
    cmd.args(["node", "--config", f.path()]);
    let r = ready_of("file", cmd);
    assert_eq!(
        (r.name.as_str(), r.services.as_slice()),
        ("file-name", &["kv".to_string()][..])
    );

    let mut cmd = msa();
    cmd.args(["node", "--config", f.path()])
        .env("MSA_NAME", "env-name")
        .env("MSA_SERVICES", "echo:e1,counter:c1");
    let r = ready_of("env", cmd);
    assert_eq!(r.name, "env-name");
    assert_eq!(r.services, ["e1", "c1"]);

    let mut cmd = msa();
    cmd.args([
        "node",
        "--config",
        f.path(),
        "--name",
        "flag-name",
        "--service",
        "echo:e2",
    ])
    .env("MSA_NAME", "env-name")
    .env("MSA_SERVICES", "echo:e1");
    let r = ready_of("flags", cmd);
    assert_eq!(r.name, "flag-name");
    assert_eq!(r.services, ["e2"]);
}

#[test]
fn status_json_lists_members_and_services_and_a_wrong_secret_fails_clearly() {
    let secret = "status-test-secret";
    let n1 = NodeProc::start("st1", secret, None, &["kv:kv:2", "echo"]);
    let n2 = NodeProc::start("st2", secret, Some(n1.addr()), &["counter"]);

    // Both members and all services converge in the view of st1.
    let mut last = None;
    let ok = crate::support::eventually(Duration::from_secs(10), || {
        last = status_json(n1.addr(), secret);
        last.as_ref().is_some_and(|s| {
            s["members"].as_array().map_or(0, Vec::len) == 2
                && !crate::support::service_nodes(s, "counter").is_empty()
        })
    });
    assert!(ok, "no converged view: {last:?}");
    let status = last.unwrap();
    let obj = status.as_object().unwrap();
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["members", "services", "unreachable"]);
    assert_eq!(status["unreachable"], serde_json::json!([]));
    let members = status["members"].as_array().unwrap();
    for m in members {
        for k in [
            "name",
            "addr",
            "status",
            "incarnation",
            "reachability",
            "state",
        ] {
            assert!(!m[k].is_null(), "member without {k}: {m}");
        }
        assert_eq!(m["status"], "alive");
        assert_eq!(m["reachability"], "reachable");
        assert_eq!(m["state"], "up");
    }
    let me = members
        .iter()
        .find(|m| m["name"] == "st1")
        .expect("the queried node itself");
    assert_eq!(me["addr"], n1.addr());
    assert_eq!(me["incarnation"], n1.ready.incarnation);
    assert_eq!(crate::support::service_nodes(&status, "kv"), ["st1"]);
    assert_eq!(crate::support::service_nodes(&status, "echo"), ["st1"]);
    assert_eq!(crate::support::service_nodes(&status, "counter"), ["st2"]);

    // Exactly one JSON object on stdout.
    let out = msa()
        .args(["cluster", "status", "--json", "--seed", n2.addr()])
        .env("MSA_SECRET", secret)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(text.trim().lines().count(), 1, "{text}");
    serde_json::from_str::<msa::remote::ClusterStatus>(text.trim()).unwrap();

    // The human tables.
    let out = run(&["cluster", "status", "--seed", n1.addr(), "--secret", secret]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("MEMBER") && text.contains("SERVICE"),
        "{text}"
    );
    assert!(text.contains("st2") && text.contains("counter"), "{text}");

    // A wrong secret: non-zero exit, a reason, nothing on stdout.
    let out = run(&[
        "cluster",
        "status",
        "--json",
        "--seed",
        n1.addr(),
        "--secret",
        "wrong",
    ]);
    assert!(!out.status.success());
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(err.contains("authentication failed"), "{err}");
    assert!(err.contains("--secret"), "{err}");
    // The node still serves everyone else.
    assert!(status_json(n1.addr(), secret).is_some());
}

/// Starts `msa cluster up` with `extra` flags; returns the process and the
/// stdout lines up to and including `secret:`.
fn cluster_up(extra: &[&str]) -> (Proc, Vec<String>) {
    let mut cmd = msa();
    // A free port for the gateway: never the default 8080 in tests.
    cmd.args(["cluster", "up", "--nodes", "3", "--gateway", "127.0.0.1:0"])
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

fn field<'a>(lines: &'a [String], key: &str) -> &'a str {
    lines
        .iter()
        .find_map(|l| l.strip_prefix(key))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no `{key}` line in {lines:#?}"))
}

/// The rows of the node table: (name, pid, address, services).
fn node_rows(lines: &[String]) -> Vec<(String, i32, String, String)> {
    lines
        .iter()
        .filter(|l| l.starts_with("node"))
        .map(|l| {
            let c: Vec<&str> = l.split_whitespace().collect();
            (c[0].into(), c[1].parse().unwrap(), c[2].into(), c[3].into())
        })
        .collect()
}

fn gone(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_err()
}

#[test]
fn cluster_up_starts_three_nodes_and_stops_them_all_on_sigterm() {
    let (mut up, lines) = cluster_up(&[]);
    let rows = node_rows(&lines);
    let names: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(names, ["node1", "node2", "node3"], "{lines:#?}");
    let services: Vec<&str> = rows.iter().map(|r| r.3.as_str()).collect();
    assert_eq!(services, ["kv", "echo", "counter"]);
    let seed = field(&lines, "seed:");
    assert_eq!(seed, rows[0].2);
    let secret = field(&lines, "secret:");
    assert_eq!(secret.len(), 64, "a generated secret: {secret}");

    // The printed seed and secret work from "another terminal".
    let ok = crate::support::eventually(Duration::from_secs(10), || {
        status_json(seed, secret).is_some_and(|s| {
            ["kv", "echo", "counter"]
                .iter()
                .all(|svc| !crate::support::service_nodes(&s, svc).is_empty())
        })
    });
    assert!(ok, "the cluster never showed all demo services");

    let stopping = Instant::now();
    up.terminate();
    let status = up
        .wait_timeout(Duration::from_secs(10))
        .expect("cluster up did not stop within 10 s of SIGTERM");
    assert!(status.success(), "{status}");
    assert!(stopping.elapsed() <= Duration::from_secs(10));
    for (name, pid, ..) in &rows {
        assert!(gone(*pid), "{name} (pid {pid}) outlived cluster up");
    }
}

/// A base port `p` with `p..p + n` free right now.
fn free_port_range(n: u16) -> u16 {
    for _ in 0..50 {
        let first = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let p = first.local_addr().unwrap().port();
        if p.checked_add(n).is_none() {
            continue;
        }
        let rest: Result<Vec<_>, _> = (1..n)
            .map(|i| std::net::TcpListener::bind(("127.0.0.1", p + i)))
            .collect();
        if rest.is_ok() {
            return p;
        }
    }
    panic!("no free range of {n} ports");
}

#[test]
fn cluster_up_with_a_base_port_puts_node_k_on_port_p_plus_k_minus_1() {
    // Another process may take a port between the probe and the start: retry.
    for attempt in 1..=3 {
        let base = free_port_range(3);
        let (mut up, lines) = cluster_up(&[
            "--base-port",
            &base.to_string(),
            "--secret",
            "base-port-test-secret",
        ]);
        if !lines.iter().any(|l| l.starts_with("secret:")) {
            let status = up.wait_timeout(Duration::from_secs(15));
            eprintln!("attempt {attempt} with base port {base} failed: {status:?}");
            continue;
        }
        let addrs: Vec<String> = node_rows(&lines).into_iter().map(|r| r.2).collect();
        let want: Vec<String> = (0..3).map(|i| format!("127.0.0.1:{}", base + i)).collect();
        assert_eq!(addrs, want);
        assert!(
            !field(&lines, "secret:").contains("base-port-test-secret"),
            "a given secret is not printed"
        );
        assert!(status_json(&want[0], "base-port-test-secret").is_some());
        up.terminate();
        let status = up
            .wait_timeout(Duration::from_secs(10))
            .expect("did not stop");
        assert!(status.success(), "{status}");
        return;
    }
    panic!("cluster up --base-port failed 3 times");
}
