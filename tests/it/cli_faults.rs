//! Fault injection from the command line against real `msa node`
//! processes: `msa cluster partition` (both ways and one way), `heal`,
//! `slow`, `pause`/`resume` and `kill`, watched through `msa cluster
//! status` on every node and through calls to node1's HTTP gateway.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Output;
use std::time::{Duration, Instant};

use crate::support::{eventually, msa, service_nodes, status_json, Proc, Ready, READY_WAIT};
use serde_json::Value;

const SECRET: &str = "cli-faults-test-secret";

/// Detection and reconvergence bound held here (the runtime aims at 3 s
/// and 15 s; the margin absorbs a loaded 2-core machine).
const BOUND: Duration = Duration::from_secs(30);

/// node1 (kv, and the HTTP gateway), node2 (echo), node3 (counter).
struct Cluster {
    nodes: Vec<(Proc, Ready)>,
    gateway: String,
}

impl Cluster {
    fn start() -> Cluster {
        let mut nodes = Vec::new();
        let mut gateway = String::new();
        for (name, service) in [("node1", "kv"), ("node2", "echo"), ("node3", "counter")] {
            let mut cmd = msa();
            cmd.args(["node", "--name", name, "--listen", "127.0.0.1:0"])
                .args(["--arbiters", "1", "--service", service])
                .env("MSA_SECRET", SECRET);
            if let Some((_, seed)) = nodes.first() {
                let seed: &Ready = seed;
                cmd.args(["--seed", &seed.addr]);
            } else {
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
        let c = Cluster { nodes, gateway };
        assert!(
            eventually(BOUND, || c.converged()),
            "the cluster never formed"
        );
        c
    }

    fn addr(&self, i: usize) -> &str {
        &self.nodes[i].1.addr
    }

    /// `msa cluster <args> --seed node1 ...`.
    fn cli(&self, args: &[&str]) -> Output {
        let out = msa()
            .args(["cluster"])
            .args(args)
            .args(["--seed", self.addr(0), "--timeout", "5"])
            .env("MSA_SECRET", SECRET)
            .output()
            .unwrap();
        eprintln!(
            "msa cluster {args:?}: {}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Statuses of `members` as node `i` sees them (`None` if it did not
    /// answer).
    fn view(&self, i: usize) -> Option<Value> {
        status_json(self.addr(i), SECRET)
    }

    /// Every node answers and lists all three members alive and all three
    /// services.
    fn converged(&self) -> bool {
        (0..3).all(|i| {
            self.view(i).is_some_and(|v| {
                alive(&v).len() == 3
                    && ["kv", "echo", "counter"]
                        .iter()
                        .all(|s| !service_nodes(&v, s).is_empty())
            })
        })
    }
}

/// Names of the members a status lists as alive.
fn alive(status: &Value) -> Vec<String> {
    status["members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["status"] == "alive")
        .filter_map(|m| m["name"].as_str().map(str::to_string))
        .collect()
}

/// One HTTP/1.1 POST on a fresh connection: the status and the body as JSON.
fn post(addr: &str, path: &str, body: &str) -> (u16, Value) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
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

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_partition_splits_the_views_fails_calls_fast_and_a_heal_reunites_them() {
    let c = Cluster::start();
    assert_eq!(post(&c.gateway, "/v1/counter/counter.Get", "null").0, 200);

    let out = c.cli(&["partition", "node1,node2", "node3"]);
    assert!(out.status.success());
    let cut_at = Instant::now();
    let said = stdout(&out);
    assert!(
        said.contains("node1: drops frames from node3; drops frames to node3"),
        "{said}"
    );
    assert!(
        said.contains("node3: drops frames from node1,node2; drops frames to node1,node2"),
        "{said}"
    );

    // Each side reports the other down and drops its services.
    let mut last = None;
    let split = eventually(BOUND, || {
        let majority = (0..2).all(|i| {
            c.view(i).is_some_and(|v| {
                !alive(&v).contains(&"node3".to_string()) && service_nodes(&v, "counter").is_empty()
            })
        });
        last = c.view(2);
        // node3 lists node1 and node2 down; it may list itself down too
        // once its split-brain resolver downed it (5 s after the cut).
        majority
            && last.as_ref().is_some_and(|v| {
                let others = alive(v);
                !others.iter().any(|n| n == "node1" || n == "node2")
                    && service_nodes(v, "kv").is_empty()
            })
    });
    assert!(split, "the views did not split: node3 sees {last:?}");
    eprintln!("partition seen by both sides after {:?}", cut_at.elapsed());

    // The gateway on node1 answers a call to node3's counter with a typed
    // error, at once.
    let t = Instant::now();
    let (code, body) = post(&c.gateway, "/v1/counter/counter.Get", "null");
    eprintln!("call across the cut: {code} {body} in {:?}", t.elapsed());
    // 404 while node1 no longer knows the counter's messages, 503 while
    // it knows the service but has no instance to reach.
    assert!(code == 503 || code == 404, "{code} {body}");
    assert!(body["error"].is_string(), "{body}");
    assert!(t.elapsed() < Duration::from_secs(2));
    // Calls inside the majority still work.
    assert_eq!(post(&c.gateway, "/v1/echo/echo.Ping", "7").0, 200);

    let out = c.cli(&["heal"]);
    assert!(out.status.success());
    let healed_at = Instant::now();
    assert!(stdout(&out).contains("node3: drops frames from -; drops frames to -; delay 0 ms"));
    assert!(
        eventually(BOUND, || c.converged()),
        "no agreement after the heal"
    );
    eprintln!("every view agrees {:?} after the heal", healed_at.elapsed());
    assert!(eventually(BOUND, || post(
        &c.gateway,
        "/v1/counter/counter.Get",
        "null"
    )
    .0 == 200));
}

#[test]
fn a_one_way_cut_drops_only_one_direction_and_heals() {
    let c = Cluster::start();
    let out = c.cli(&["partition", "node1", "node3", "--one-way"]);
    assert!(out.status.success());
    let said = stdout(&out);
    assert!(
        said.contains("node1: drops frames from -; drops frames to node3"),
        "{said}"
    );
    assert!(
        said.contains("node3: drops frames from node1; drops frames to -"),
        "{said}"
    );
    // node3 hears nothing from node1 any more: their data connection dies
    // and node3 drops node1's kv. SWIM's indirect probes through node2
    // may keep node1 a live member in node3's view (a partial cut, not a
    // partition), and node2 still sees every service.
    let mut last = None;
    assert!(
        eventually(BOUND, || {
            last = c.view(2);
            last.as_ref()
                .is_some_and(|v| service_nodes(v, "kv").is_empty())
        }),
        "node3 still routes to node1's kv: {last:?}"
    );
    assert!(c.view(1).is_some_and(|v| ["kv", "echo", "counter"]
        .iter()
        .all(|s| !service_nodes(&v, s).is_empty())));
    assert!(c.cli(&["heal"]).status.success());
    assert!(
        eventually(BOUND, || c.converged()),
        "no agreement after the heal"
    );
}

/// The median of `n` calls' durations.
fn median_call(gateway: &str, n: usize) -> Duration {
    let mut v: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            let (code, body) = post(gateway, "/v1/echo/echo.Ping", "7");
            assert_eq!(code, 200, "{body}");
            t.elapsed()
        })
        .collect();
    v.sort();
    v[n / 2]
}

#[test]
fn slow_adds_its_delay_to_calls_through_that_node_until_the_heal() {
    let c = Cluster::start();
    let delay = Duration::from_millis(300);
    let before = median_call(&c.gateway, 7);
    let out = c.cli(&["slow", "node2", "--delay", "300ms"]);
    assert!(out.status.success());
    assert!(stdout(&out).contains("node2: drops frames from -; drops frames to -; delay 300 ms"));
    let slowed = median_call(&c.gateway, 7);
    eprintln!(
        "echo on node2 through the gateway: median {before:?} before, {slowed:?} with slow 300ms"
    );
    assert!(
        slowed >= before + delay - Duration::from_millis(20),
        "{before:?} → {slowed:?}"
    );
    // Calls to node1's own kv do not cross node2.
    let t = Instant::now();
    assert_eq!(post(&c.gateway, "/v1/kv/kv.Get", r#"{"key":"k"}"#).0, 200);
    assert!(t.elapsed() < delay, "kv on node1 slowed: {:?}", t.elapsed());
    assert!(c.cli(&["heal"]).status.success());
    let after = median_call(&c.gateway, 7);
    eprintln!("after the heal: median {after:?}");
    assert!(after < delay, "{after:?}");
}

#[test]
fn kill_removes_the_nodes_services_from_the_others() {
    let mut c = Cluster::start();
    let out = c.cli(&["kill", "node3"]);
    assert!(out.status.success());
    assert!(
        stdout(&out).contains("node3: killed (SIGKILL to pid"),
        "{}",
        stdout(&out)
    );
    let killed = Instant::now();
    let st = c.nodes[2]
        .0
        .wait_timeout(Duration::from_secs(5))
        .expect("node3 still runs");
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&st), Some(9));
    for i in 0..2 {
        assert!(
            eventually(BOUND, || c
                .view(i)
                .is_some_and(|v| service_nodes(&v, "counter").is_empty())),
            "counter still listed by node{}",
            i + 1
        );
    }
    eprintln!(
        "node3's services gone from node1 and node2 after {:?}",
        killed.elapsed()
    );
    // A heal reaches the live nodes and notes the dead one without failing.
    let out = c.cli(&["heal"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("node3: not reached"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn bad_fault_requests_are_refused_with_a_reason() {
    let c = Cluster::start();
    for (args, why) in [
        (
            &["partition", "node1", "nodeX"][..],
            "unknown node \"nodeX\"",
        ),
        (
            &["partition", "node1,node2", "node2"],
            "node2 is in both groups",
        ),
        (
            &["slow", "nodeY", "--delay", "10ms"],
            "unknown node \"nodeY\"",
        ),
        (&["slow", "node2", "--delay", "10"], "not a delay"),
        (&["kill", "nodeZ"], "unknown node \"nodeZ\""),
    ] {
        let out = c.cli(args);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(stderr(&out).contains(why), "{args:?}: {}", stderr(&out));
    }
    // A wrong secret: no change, a clear error.
    let out = msa()
        .args([
            "cluster",
            "heal",
            "--seed",
            c.addr(0),
            "--secret",
            "wrong",
            "--timeout",
            "3",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("cannot get the members"),
        "{}",
        stderr(&out)
    );
    // Nothing was cut by the refused requests.
    assert!(c.converged());
}

/// `msa cluster up` writes the state file; the fault commands find the
/// cluster through it (no --seed, no secret); pause and resume freeze and
/// thaw a node's process.
#[test]
fn pause_and_resume_through_the_state_file_of_cluster_up() {
    let state = std::env::temp_dir().join(format!("msa-faults-test-{}.json", std::process::id()));
    let state_arg = state.to_str().unwrap().to_string();
    let mut cmd = msa();
    cmd.args([
        "cluster",
        "up",
        "--nodes",
        "3",
        "--gateway",
        "127.0.0.1:0",
        "--state",
        &state_arg,
    ]);
    let mut up = Proc::spawn("cluster-up", cmd);
    assert!(
        up.line_where(Duration::from_secs(60), |l| l.starts_with("secret:"))
            .is_some(),
        "cluster up did not start"
    );
    assert!(
        eventually(BOUND, || state.exists()),
        "no state file at {state_arg}"
    );
    let text = std::fs::read_to_string(&state).unwrap();
    let st: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(st["nodes"].as_array().map(Vec::len), Some(3), "{text}");
    let node1 = st["seed"].as_str().unwrap().to_string();
    let secret = st["secret"].as_str().unwrap().to_string();
    let view = |addr: &str| status_json(addr, &secret);
    let cli = |args: &[&str]| {
        let out = msa()
            .args(["cluster"])
            .args(args)
            .args(["--state", &state_arg])
            .output()
            .unwrap();
        eprintln!(
            "msa cluster {args:?}: {}\n{}{}",
            out.status,
            stdout(&out),
            stderr(&out)
        );
        out
    };
    assert!(eventually(BOUND, || view(&node1).is_some_and(|v| alive(
        &v
    )
    .len()
        == 3)));

    let out = cli(&["pause", "node3"]);
    assert!(out.status.success());
    assert!(stdout(&out).contains("node3: paused (SIGSTOP to pid"));
    let paused = Instant::now();
    assert!(
        eventually(BOUND, || view(&node1)
            .is_some_and(|v| !alive(&v).contains(&"node3".into()))),
        "node1 still sees node3 alive"
    );
    eprintln!("paused node3 seen not alive after {:?}", paused.elapsed());

    let out = cli(&["resume", "node3"]);
    assert!(out.status.success());
    assert!(stdout(&out).contains("node3: resumed (SIGCONT to pid"));
    assert!(
        eventually(BOUND, || view(&node1).is_some_and(|v| alive(&v).len() == 3)),
        "node3 never came back"
    );
    // A partition through the state file too.
    assert!(cli(&["partition", "node1", "node2"]).status.success());
    assert!(cli(&["heal"]).status.success());

    up.terminate();
    assert!(
        up.wait_timeout(Duration::from_secs(20)).is_some(),
        "cluster up did not stop"
    );
    assert!(!state.exists(), "the state file outlived cluster up");
}

/// The state of `member` in a status, with its status.
fn member_state(status: &Value, member: &str) -> Option<(String, String)> {
    status["members"].as_array()?.iter().find_map(|m| {
        (m["name"] == member).then(|| {
            (
                m["status"].as_str().unwrap_or("?").to_string(),
                m["state"].as_str().unwrap_or("?").to_string(),
            )
        })
    })
}

#[test]
fn down_and_leave_take_nodes_out_over_the_operator_protocol() {
    let c = Cluster::start();
    // An unknown node is refused.
    let out = c.cli(&["down", "nodeX"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("nodeX"), "{}", stderr(&out));

    let out = c.cli(&["down", "node3"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let said = stdout(&out);
    assert!(said.contains("node1: declared node3 down"), "{said}");
    assert!(said.contains("node3: left the cluster"), "{said}");
    assert!(
        eventually(BOUND, || (0..2).all(|i| c.view(i).is_some_and(|v| {
            member_state(&v, "node3")
                .is_some_and(|(st, state)| st == "down" && (state == "down" || state == "removed"))
                && service_nodes(&v, "counter").is_empty()
        }))),
        "node3 not down on node1 and node2"
    );

    let out = c.cli(&["leave", "node2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("node2: left the cluster"));
    assert!(
        eventually(BOUND, || c.view(0).is_some_and(|v| {
            member_state(&v, "node2").is_some_and(|(_, state)| state == "removed")
                && service_nodes(&v, "echo").is_empty()
        })),
        "node2 not removed on node1"
    );
}
