//! `msa bench streams` end to end with the real binary (debug build, tiny
//! sizes): the two-process `remote1` scenario publishes to a subscriber in
//! its child process and tells the same service, in the same run, and
//! reports both rates and their ratio (also as HTML).

use std::time::Duration;

use crate::support::{msa, Proc};

/// Bound on a whole tiny run (debug build, shared 2-core machine).
const RUN_BOUND: Duration = Duration::from_secs(120);

#[test]
fn bench_streams_remote1_compares_publish_with_remote_tell_between_two_processes() {
    let html =
        std::env::temp_dir().join(format!("msa-cli-test-{}-streams.html", std::process::id()));
    let _ = std::fs::remove_file(&html);
    let mut cmd = msa();
    cmd.args([
        "bench",
        "streams",
        "--only",
        "remote1",
        "--events",
        "3000",
        "--rounds",
        "2",
        "--json",
        "--html",
        html.to_str().unwrap(),
    ]);
    // Killed (and with it, through its closed stdin, its child) if the test fails.
    let mut bench = Proc::spawn("bench", cmd);
    let status = bench
        .wait_timeout(RUN_BOUND)
        .unwrap_or_else(|| panic!("msa bench streams did not finish within {RUN_BOUND:?}"));
    assert!(status.success(), "msa bench streams failed: {status}");
    let mut lines = Vec::new();
    while let Some(l) = bench.line(Duration::from_secs(2)) {
        lines.push(l);
    }
    assert_eq!(lines.len(), 1, "{lines:?}");
    let v: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(v["scenario"], "remote1");
    assert_eq!(v["events"], 3000);
    assert_eq!(v["subscribers"], 1);
    assert_eq!(v["rounds"], 2);
    for f in ["publish_per_sec", "tell_per_sec", "ratio"] {
        assert!(v[f].as_f64().unwrap() > 0.0, "{f} in {v}");
    }
    let r = v["publish_per_sec"].as_f64().unwrap() / v["tell_per_sec"].as_f64().unwrap();
    assert!((r - v["ratio"].as_f64().unwrap()).abs() < 0.002, "{v}");
    assert_eq!(v["target_ratio"], 0.8);
    assert_eq!(v["meets_target"], r >= 0.8);
    assert!(v["publish_retries"].is_number() && v["tell_retries"].is_number());
    assert_eq!(
        v["rounds_publish_per_sec"].as_array().map(Vec::len),
        Some(2)
    );
    assert!(v["threads"].as_str().unwrap().contains("two processes"));

    let report = std::fs::read_to_string(&html).unwrap();
    let _ = std::fs::remove_file(&html);
    super::cli_bench_html::check_report(&report, &["remote1", "publish", "tell"]);
}
