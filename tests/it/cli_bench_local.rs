//! `msa bench local`'s scale scenarios (issue 12), small and in a debug
//! build: they run, check their own work, and print what they measured.

use crate::support::run;

fn json_lines(args: &[&str]) -> Vec<serde_json::Value> {
    let out = run(args);
    assert!(
        out.status.success(),
        "msa {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

#[test]
fn the_services_scenario_spawns_and_shuts_down_each_count() {
    let lines = json_lines(&[
        "bench",
        "local",
        "--services",
        "20,200",
        "--arbiters",
        "1",
        "--json",
    ]);
    assert_eq!(lines.len(), 2, "{lines:?}");
    for (line, n) in lines.iter().zip([20, 200]) {
        assert_eq!(line["scenario"], "services");
        assert_eq!(line["services"], n);
        assert!(line["spawn_s"].as_f64().unwrap() > 0.0, "{line}");
        assert!(line["shutdown_s"].as_f64().unwrap() > 0.0, "{line}");
    }
}

#[test]
fn the_round_robin_scenario_compares_both_sides_per_instance_count() {
    let lines = json_lines(&[
        "bench",
        "local",
        "--instances",
        "1,40",
        "--messages",
        "4000",
        "--rounds",
        "1",
        "--json",
    ]);
    assert_eq!(lines.len(), 2, "{lines:?}");
    for (line, n) in lines.iter().zip([1, 40]) {
        assert_eq!(line["scenario"], "round_robin");
        assert_eq!(line["instances"], n);
        assert_eq!(line["messages"], 4000);
        assert!(line["msa_msgs_per_sec"].as_f64().unwrap() > 0.0, "{line}");
        assert!(line["raw_msgs_per_sec"].as_f64().unwrap() > 0.0, "{line}");
        assert!(line["ratio"].as_f64().unwrap() > 0.0, "{line}");
    }
}

#[test]
fn a_zero_count_is_refused() {
    let out = run(&["bench", "local", "--services", "0"]);
    assert!(!out.status.success());
    let out = run(&["bench", "local", "--instances", "0"]);
    assert!(!out.status.success());
}
