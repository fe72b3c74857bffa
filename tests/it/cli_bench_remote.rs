//! `msa bench remote` end to end with the real binary (debug build, tiny
//! sizes): it starts its own child process, prints one JSON line per
//! scenario with the documented fields, and its child never outlives it.

use std::time::{Duration, Instant};

use crate::support::{msa, Proc};

/// Bound on a whole tiny run (debug build, shared 2-core machine).
const RUN_BOUND: Duration = Duration::from_secs(120);

fn fields_of(line: &str) -> serde_json::Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

fn positive(v: &serde_json::Value, field: &str) -> f64 {
    let x = v[field]
        .as_f64()
        .unwrap_or_else(|| panic!("`{field}` missing or not a number in {v}"));
    assert!(x > 0.0, "`{field}` is {x} in {v}");
    x
}

#[test]
fn bench_remote_json_prints_tell_and_ask_lines_with_baselines() {
    let mut cmd = msa();
    cmd.args([
        "bench",
        "remote",
        "--messages",
        "2000",
        "--asks",
        "200",
        "--rounds",
        "1",
        "--json",
    ]);
    // Killed (and with it, through its closed stdin, its child) if the test fails.
    let mut bench = Proc::spawn("bench", cmd);
    let status = bench
        .wait_timeout(RUN_BOUND)
        .unwrap_or_else(|| panic!("msa bench remote did not finish within {RUN_BOUND:?}"));
    assert!(status.success(), "msa bench remote failed: {status}");
    let mut lines = Vec::new();
    while let Some(l) = bench.line(Duration::from_secs(2)) {
        lines.push(l);
    }
    assert_eq!(lines.len(), 2, "expected two JSON lines, got {lines:?}");

    let tell = fields_of(&lines[0]);
    assert_eq!(tell["scenario"], "remote_tell");
    assert_eq!(tell["messages"], 2000);
    assert_eq!(tell["rounds"], 1);
    for f in [
        "secs",
        "msgs_per_sec",
        "baseline_secs",
        "baseline_msgs_per_sec",
        "ratio",
    ] {
        positive(&tell, f);
    }
    assert!(tell["threads"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(tell["meets_target"].is_boolean());
    assert!(tell["overloaded_retries"].is_number());

    let ask = fields_of(&lines[1]);
    assert_eq!(ask["scenario"], "remote_ask");
    assert_eq!(ask["messages"], 200);
    for f in [
        "secs",
        "msgs_per_sec",
        "baseline_msgs_per_sec",
        "ratio",
        "p50_us",
        "p99_us",
        "baseline_p50_us",
        "baseline_p99_us",
        "p50_ratio",
    ] {
        positive(&ask, f);
    }
    assert!(positive(&ask, "p99_us") >= positive(&ask, "p50_us"));
    assert!(ask["meets_target"].is_boolean());
}

/// The pids of the live (not zombie) children of `parent` whose command
/// line contains `needle`.
fn children_of(parent: u32, needle: &str) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // `pid (comm) state ppid ...`; comm may contain spaces.
            let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
            let mut it = after.split_whitespace();
            let state = it.next().unwrap_or("");
            let ppid = it.next().and_then(|p| p.parse::<u32>().ok());
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            ppid == Some(parent)
                && state != "Z"
                && String::from_utf8_lossy(&cmdline).contains(needle)
        })
        .collect()
}

/// Whether `pid` still runs (gone or a zombie both count as ended).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
            after.split_whitespace().next() != Some("Z")
        }
        Err(_) => false,
    }
}

#[test]
fn bench_remote_child_exits_when_the_bench_is_killed() {
    let mut cmd = msa();
    // Far more work than the test waits for: it is killed mid-run.
    cmd.args([
        "bench",
        "remote",
        "--messages",
        "1000000000",
        "--rounds",
        "1",
        "--json",
    ]);
    let mut bench = Proc::spawn("bench", cmd);
    let parent = bench.child.id();
    let deadline = Instant::now() + RUN_BOUND;
    let child = loop {
        if let Some(pid) = children_of(parent, "--serve").first() {
            break *pid;
        }
        assert!(
            Instant::now() < deadline,
            "the bench started no `--serve` child within {RUN_BOUND:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    bench.kill9();
    let ok = crate::support::eventually(Duration::from_secs(15), || !alive(child));
    if !ok {
        // Do not leave it behind.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(child).unwrap()),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    assert!(ok, "the child {child} outlived the killed bench by 15 s");
}
