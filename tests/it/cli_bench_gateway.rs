//! `msa bench gateway` end to end with the real binary (debug build, tiny
//! sizes): it starts the node, the gateway and the baseline server in its
//! own process, and prints one JSON line with the documented fields, or a
//! table.

use std::time::Duration;

use crate::support::{msa, Proc};

/// Bound on a whole tiny run (debug build, shared 2-core machine).
const RUN_BOUND: Duration = Duration::from_secs(120);

fn positive(v: &serde_json::Value, field: &str) -> f64 {
    let x = v[field]
        .as_f64()
        .unwrap_or_else(|| panic!("`{field}` missing or not a number in {v}"));
    assert!(x > 0.0, "`{field}` is {x} in {v}");
    x
}

/// Runs `msa bench gateway args..` and returns its stdout lines.
fn bench_gateway(args: &[&str]) -> Vec<String> {
    let mut cmd = msa();
    cmd.args(["bench", "gateway"]).args(args);
    // Killed if the test fails.
    let mut bench = Proc::spawn("bench", cmd);
    let status = bench
        .wait_timeout(RUN_BOUND)
        .unwrap_or_else(|| panic!("msa bench gateway did not finish within {RUN_BOUND:?}"));
    assert!(status.success(), "msa bench gateway failed: {status}");
    let mut lines = Vec::new();
    while let Some(l) = bench.line(Duration::from_secs(2)) {
        lines.push(l);
    }
    lines
}

#[test]
fn bench_gateway_json_prints_one_line_with_gateway_and_baseline_figures() {
    let lines = bench_gateway(&[
        "--requests",
        "200",
        "--connections",
        "4",
        "--rounds",
        "1",
        "--json",
    ]);
    assert_eq!(lines.len(), 1, "expected one JSON line, got {lines:?}");
    let v: serde_json::Value =
        serde_json::from_str(&lines[0]).unwrap_or_else(|e| panic!("not JSON ({e}): {}", lines[0]));

    assert_eq!(v["scenario"], "gateway");
    assert_eq!(v["requests"], 200);
    assert_eq!(v["messages"], 200);
    assert_eq!(v["connections"], 4);
    assert_eq!(v["rounds"], 1);
    // Every request of both sides got 200 and the expected body.
    assert_eq!(v["failures"], 0, "{v}");
    assert_eq!(v["baseline_failures"], 0, "{v}");
    for f in [
        "secs",
        "requests_per_sec",
        "p50_us",
        "p99_us",
        "baseline_secs",
        "baseline_requests_per_sec",
        "baseline_p50_us",
        "baseline_p99_us",
        "ratio",
    ] {
        positive(&v, f);
    }
    assert!(positive(&v, "p99_us") >= positive(&v, "p50_us"));
    let ratio = positive(&v, "ratio");
    let expected = positive(&v, "requests_per_sec") / positive(&v, "baseline_requests_per_sec");
    assert!(
        (ratio - expected).abs() < 0.01,
        "ratio {ratio} vs {expected}"
    );
    assert_eq!(v["target_ratio"], 0.6);
    assert!(v["meets_target"].is_boolean());
    assert_eq!(v["rounds_requests_per_sec"].as_array().unwrap().len(), 1);
    assert_eq!(
        v["baseline_rounds_requests_per_sec"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert!(v["threads"].as_str().is_some_and(|t| t.contains("gateway")));
}

#[test]
fn bench_gateway_prints_a_table_by_default_and_html_on_request() {
    let html =
        std::env::temp_dir().join(format!("msa-cli-test-{}-gateway.html", std::process::id()));
    let _ = std::fs::remove_file(&html);
    let lines = bench_gateway(&[
        "--requests",
        "100",
        "--connections",
        "2",
        "--rounds",
        "1",
        "--html",
        html.to_str().unwrap(),
    ]);
    let text = lines.join("\n");
    for needle in ["gateway ", "baseline ", "ratio ", "Threads: "] {
        assert!(text.contains(needle), "no `{needle}` in:\n{text}");
    }
    assert!(!text.contains("FAILED"), "{text}");
    let report = std::fs::read_to_string(&html).unwrap();
    let _ = std::fs::remove_file(&html);
    crate::cli_bench_html::check_report(
        &report,
        &["msa gateway", "bare actix-web", "p50", "p90", "p99", "max"],
    );
}

#[test]
fn bench_gateway_with_access_rules_checks_every_request_at_the_service_too() {
    let lines = bench_gateway(&[
        "--requests",
        "200",
        "--connections",
        "4",
        "--rounds",
        "1",
        "--access-rules",
        "--json",
    ]);
    assert_eq!(lines.len(), 1, "expected one JSON line, got {lines:?}");
    let v: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    // Every request passed the service's rule (a refusal would be a 403,
    // counted as a failure, and the command would fail).
    assert_eq!(v["failures"], 0, "{v}");
    assert_eq!(v["messages"], 200);
    assert!(v["threads"]
        .as_str()
        .is_some_and(|t| t.contains("with access rules")));
}

#[test]
fn bench_gateway_live_view_measures_the_gateway_with_a_live_view_stream_open() {
    // Enough requests that each round outlasts the stream's first
    // snapshots (four a second): the reader must have seen some.
    let lines = bench_gateway(&[
        "--requests",
        "2000",
        "--connections",
        "4",
        "--rounds",
        "2",
        "--live-view",
        "--json",
    ]);
    assert_eq!(lines.len(), 1, "expected one JSON line, got {lines:?}");
    let v: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    let l = &v["live_view"];
    assert_eq!(l["failures"], 0, "{v}");
    positive(l, "requests_per_sec");
    positive(l, "ratio_to_gateway");
    assert_eq!(l["target_ratio"], 0.9);
    assert!(l["meets_target"].is_boolean());
    let snapshots = l["rounds_snapshots"].as_array().unwrap();
    assert_eq!(snapshots.len(), 2, "{v}");
    // The stream was live in every round: the admin token was accepted and
    // snapshots arrived (opening waits for the first one).
    assert!(
        snapshots.iter().all(|s| s.as_u64().is_some_and(|n| n >= 1)),
        "{v}"
    );
    assert_eq!(l["rounds_requests_per_sec"].as_array().unwrap().len(), 2);
}
