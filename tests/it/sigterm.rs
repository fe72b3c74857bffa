//! A graceful stop of a real `msa node` process on SIGTERM: a call in
//! flight finishes, new calls are refused with 503, `/readyz` turns 503,
//! the process exits 0, and the other node sees it leave. (Other nodes'
//! calls refused with a typed error from the first moment:
//! runtime/tests/it/shutdown.rs, `refused_remote_calls_...`.)

use std::time::{Duration, Instant};

use crate::support::{eventually, http, msa, service_nodes, status_json, Proc, Ready, READY_WAIT};

const SECRET: &str = "sigterm-test-secret";
const BOUND: Duration = Duration::from_secs(30);
/// What `msa cluster slow` adds to every frame term2 receives: the call in
/// flight takes at least this long.
const DELAY: Duration = Duration::from_secs(2);

fn start(name: &str, mut cmd: std::process::Command) -> (Proc, Ready) {
    cmd.args(["--name", name, "--listen", "127.0.0.1:0", "--arbiters", "1"])
        // Detection far slower than the test: whatever term2 notices within
        // BOUND comes from term1's leave, not from failure detection.
        .args(["--failure-detection-ms", "120000"])
        .env("MSA_SECRET", SECRET);
    let p = Proc::spawn(name, cmd);
    let line = p
        .line_where(READY_WAIT, |l| l.starts_with("msa-node "))
        .unwrap_or_else(|| panic!("{name} printed no ready line"));
    (p, Ready::parse(&line).unwrap())
}

/// The value of the unlabelled-but-`node` gauge `metric` in a scrape.
fn gauge(text: &str, metric: &str) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(metric) && l[metric.len()..].starts_with('{'))
        .find_map(|l| l.rsplit_once(' ')?.1.parse().ok())
}

/// `msa cluster slow term2 --delay delay`, through term2 itself.
fn slow(term2: &str, delay: &str) {
    let out = msa()
        .args(["cluster", "slow", "term2", "--delay", delay])
        .args(["--seed", term2, "--timeout", "20"])
        .env("MSA_SECRET", SECRET)
        .output()
        .unwrap();
    assert!(out.status.success(), "msa cluster slow {delay}: {out:?}");
}

#[test]
fn sigterm_finishes_the_call_in_flight_refuses_new_ones_and_leaves() {
    let mut cmd = msa();
    cmd.args(["node", "--service", "kv", "--gateway", "127.0.0.1:0"])
        .args(["--ops-bind", "127.0.0.1:0", "--shutdown-drain", "20s"]);
    let (mut term1, r1) = start("term1", cmd);
    let mut cmd = msa();
    cmd.args(["node", "--service", "echo", "--seed", &r1.addr]);
    let (term2, r2) = start("term2", cmd);
    let (gw, ops) = (r1.gateway.clone().unwrap(), r1.ops.clone().unwrap());
    // term1 knows term2 (readiness covers the members a node knows)...
    assert!(
        eventually(BOUND, || status_json(&r1.addr, SECRET)
            .is_some_and(|s| !service_nodes(&s, "echo").is_empty())),
        "term1 never saw echo"
    );
    // ...and is ready.
    assert!(
        eventually(BOUND, || http(&ops, "GET", "/readyz", "").0 == 200),
        "term1 never ready"
    );
    assert_eq!(http(&gw, "POST", "/v1/echo/echo.Echo", "\"x\"").0, 200);

    // Every frame term2 receives now waits DELAY: a call to echo through
    // term1's gateway stays in flight that long.
    slow(&r2.addr, "2s");
    let slow_call = {
        let gw = gw.clone();
        std::thread::spawn(move || {
            let t = Instant::now();
            let r = http(&gw, "POST", "/v1/echo/echo.Echo", "\"slow\"");
            (r, t.elapsed())
        })
    };
    assert!(
        eventually(BOUND, || {
            gauge(
                &http(&gw, "GET", "/metrics", "").1,
                "msa_gateway_calls_in_flight",
            ) == Some(1.0)
        }),
        "the slow call never showed as in flight"
    );

    term1.terminate();
    // New calls, even to term1's own kv, are refused while the slow call
    // is still in flight; /readyz says why.
    assert!(
        eventually(BOUND, || {
            let (status, body) = http(&gw, "POST", "/v1/kv/kv.Get", r#"{"key":"k"}"#);
            status == 503 && body.contains("shutting down")
        }),
        "a new call after SIGTERM was not refused with 503"
    );
    let (status, body) = http(&ops, "GET", "/readyz", "");
    assert!(
        status == 503 && body.contains("shutting down"),
        "{status} {body}"
    );

    let ((status, body), took) = slow_call.join().unwrap();
    // Clearing the delay releases held frames at once, so only now.
    slow(&r2.addr, "0");
    assert_eq!(
        (status, body.as_str()),
        (200, "\"slow\""),
        "the call in flight"
    );
    assert!(took >= DELAY, "the call was not slowed: {took:?}");
    let exit = term1.wait_timeout(BOUND).expect("term1 did not exit");
    assert!(exit.success(), "term1 exited with {exit}");

    // term2 sees term1 leave: its services gone at once, and a leave in
    // its log, never a crash ("node is down"); its failure detection
    // (120 s) is far slower than BOUND.
    let left = |l: &String| l.contains("peer left the cluster") && l.contains("term1");
    assert!(
        eventually(BOUND, || term2.stderr_lines().iter().any(left)),
        "term2 never logged term1's leave"
    );
    assert!(
        !term2
            .stderr_lines()
            .iter()
            .any(|l| l.contains("node is down") && l.contains("term1")),
        "term2 took term1's leave for a crash"
    );
    assert!(
        eventually(BOUND, || status_json(&r2.addr, SECRET)
            .is_some_and(|s| !s["services"].to_string().contains("\"kv\""))),
        "term2 still lists term1's kv"
    );
}
