//! `msa bench remote` end to end with the real binary (debug build, tiny
//! sizes): it starts its own child process, prints one JSON line per
//! scenario with the documented fields (with `--tls`, plaintext and TLS of
//! the same run and their ratio), refuses fewer than 3 rounds, and its
//! child never outlives it.

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

fn run_tiny(extra: &[&str]) -> Vec<String> {
    let mut cmd = msa();
    cmd.args([
        "bench",
        "remote",
        "--messages",
        "2000",
        "--asks",
        "100",
        "--rounds",
        "3",
        "--json",
    ]);
    cmd.args(extra);
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
    lines
}

fn check_ask_row(ask: &serde_json::Value, scenario: &str, cpus: &str) {
    assert_eq!(ask["scenario"], scenario);
    assert_eq!(ask["cpus"], cpus);
    assert_eq!(ask["messages"], 100);
    assert_eq!(ask["rounds"], 3);
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
        positive(ask, f);
    }
    assert!(positive(ask, "p99_us") >= positive(ask, "pooled_p50_us"));
    assert_eq!(ask["rounds_p50_us"].as_array().map(Vec::len), Some(3));
    assert_eq!(
        ask["baseline_rounds_p50_us"].as_array().map(Vec::len),
        Some(3)
    );
    assert_eq!(ask["rounds_p50_ratio"].as_array().map(Vec::len), Some(3));
    // The p50 is the median of the rounds' p50s.
    let mut rounds: Vec<f64> = ask["rounds_p50_us"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    rounds.sort_by(f64::total_cmp);
    assert!(
        (positive(ask, "p50_us") - rounds[1]).abs() < 0.0015,
        "{ask}"
    );
    assert_eq!(ask["target_p50_ratio"], 1.5);
    assert!(ask["meets_target"].is_boolean());
    assert!(ask["verdict"].is_string());
    assert!(ask["threads"].as_str().is_some_and(|t| !t.is_empty()));
}

#[test]
fn bench_remote_json_prints_tell_ask_and_natural_ask_lines_with_baselines() {
    let lines = run_tiny(&[]);
    assert_eq!(lines.len(), 3, "expected three JSON lines, got {lines:?}");

    let tell = fields_of(&lines[0]);
    assert_eq!(tell["scenario"], "remote_tell");
    assert_eq!(tell["cpus"], "idle");
    assert_eq!(tell["messages"], 2000);
    assert_eq!(tell["rounds"], 3);
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
    assert_eq!(tell["target_ratio"], 0.08);
    assert!(tell["meets_target"].is_boolean());
    assert!(tell["overloaded_retries"].is_number());

    check_ask_row(&fields_of(&lines[1]), "remote_ask", "idle");
    check_ask_row(&fields_of(&lines[2]), "remote_ask_natural", "idle");
    // Without --tls, no TLS fields.
    for l in &lines {
        assert!(fields_of(l).get("tls_ratio").is_none(), "{l}");
    }
}

#[test]
fn bench_remote_tls_measures_plaintext_and_tls_in_the_same_run_and_reports_their_ratio() {
    let lines = run_tiny(&["--tls"]);
    assert_eq!(lines.len(), 3, "expected three JSON lines, got {lines:?}");
    let rows: Vec<serde_json::Value> = lines.iter().map(|l| fields_of(l)).collect();
    // The plaintext fields are all there, as without --tls.
    assert_eq!(rows[0]["scenario"], "remote_tell");
    positive(&rows[0], "msgs_per_sec");
    positive(&rows[0], "baseline_msgs_per_sec");
    check_ask_row(&rows[1], "remote_ask", "idle");
    check_ask_row(&rows[2], "remote_ask_natural", "idle");
    for (row, target) in rows.iter().zip([0.6, 1.3, 1.3]) {
        positive(row, "tls_msgs_per_sec");
        positive(row, "tls_baseline_ratio");
        let ratio = positive(row, "tls_ratio");
        assert_eq!(row["tls_target_ratio"], target, "{row}");
        assert_eq!(
            row["tls_rounds_ratio"].as_array().map(Vec::len),
            Some(3),
            "{row}"
        );
        let meets = row["tls_meets_target"]
            .as_bool()
            .unwrap_or_else(|| panic!("no tls_meets_target in {row}"));
        // The verdict follows the ratio and the target's direction.
        let expected = if row["scenario"] == "remote_tell" {
            ratio >= target
        } else {
            ratio <= target
        };
        assert_eq!(meets, expected, "{row}");
        assert_eq!(row["tls_verdict"], if meets { "met" } else { "MISSED" });
    }
    // TLS throughput over plaintext throughput, from the medians.
    let tell = &rows[0];
    let r = positive(tell, "tls_msgs_per_sec") / positive(tell, "msgs_per_sec");
    assert!((r - positive(tell, "tls_ratio")).abs() < 0.002, "{tell}");
    // Asks: TLS p50 over plaintext p50.
    for ask in &rows[1..] {
        let r = positive(ask, "tls_p50_us") / positive(ask, "p50_us");
        assert!((r - positive(ask, "tls_ratio")).abs() < 0.01, "{ask}");
        assert_eq!(ask["tls_rounds_p50_us"].as_array().map(Vec::len), Some(3));
    }
}

#[test]
fn bench_remote_keep_awake_says_so_in_every_row_and_in_its_html_report() {
    let html =
        std::env::temp_dir().join(format!("msa-cli-test-{}-remote.html", std::process::id()));
    let _ = std::fs::remove_file(&html);
    let lines = run_tiny(&["--keep-awake", "--html", html.to_str().unwrap()]);
    assert_eq!(lines.len(), 3, "expected three JSON lines, got {lines:?}");
    for l in &lines {
        assert_eq!(fields_of(l)["cpus"], "kept awake", "{l}");
    }
    let report = std::fs::read_to_string(&html).unwrap();
    let _ = std::fs::remove_file(&html);
    crate::cli_bench_html::check_report(
        &report,
        &[
            "remote_tell",
            "remote_ask",
            "remote_ask_natural",
            "raw TCP baseline",
            "p90",
        ],
    );
}

#[test]
fn bench_remote_refuses_fewer_than_3_rounds() {
    let out = msa()
        .args(["bench", "remote", "--rounds", "2", "--json"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("at least 3 rounds"), "{err}");
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
        "3",
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
