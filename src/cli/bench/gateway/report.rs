//! The report of `msa bench gateway`: medians over rounds (through the
//! shared `bench::report` summary), the issue's ≥ 0.6× target, failures, a
//! table or one JSON line.

use std::fmt::Write as _;

use serde::Serialize;

use super::super::html::{BarChart, Group, Section, Unit};
use super::super::report::{
    round3, round6, si, summarize, thousands, verdict, Percentiles, SideSummary,
};
use super::load::Round;

/// Gateway throughput ÷ bare handler throughput that msa aims for.
const TARGET_RATIO: f64 = 0.6;

/// gRPC `Call` throughput ÷ HTTP gateway throughput that msa aims for (issue 14).
const GRPC_TARGET_RATIO: f64 = 0.5;

/// Throughput with a live-view stream open ÷ without it that msa aims for
/// (issue 15).
const LIVE_VIEW_TARGET_RATIO: f64 = 0.9;

/// One round through the gateway with a live-view stream open.
#[derive(Debug)]
pub(crate) struct LiveViewRound {
    /// The requests, as for the gateway without it.
    pub(crate) round: Round,
    /// Snapshots the stream delivered while the round ran.
    pub(crate) snapshots: u64,
}

/// Every round of both sides, and how they ran.
#[derive(Debug)]
pub(crate) struct GatewayComparison {
    /// Where each side ran.
    pub(crate) threads: String,
    pub(crate) connections: usize,
    pub(crate) workers: usize,
    pub(crate) arbiters: usize,
    /// Through the msa gateway.
    pub(crate) gateway: Vec<Round>,
    /// The bare actix-web handler.
    pub(crate) baseline: Vec<Round>,
    /// The same calls over gRPC (`--grpc`; empty without it).
    pub(crate) grpc: Vec<Round>,
    /// Through the gateway with a live-view stream open (`--live-view`;
    /// empty without it).
    pub(crate) live_view: Vec<LiveViewRound>,
}

/// The JSON line.
#[derive(Debug, Serialize)]
pub(crate) struct GatewayRecord {
    scenario: &'static str,
    threads: String,
    connections: usize,
    workers: usize,
    arbiters: usize,
    /// Requests per round per side (also as `messages`, like other benches).
    requests: u64,
    messages: u64,
    rounds: usize,
    secs: f64,
    requests_per_sec: f64,
    msgs_per_sec: f64,
    p50_us: Option<f64>,
    p99_us: Option<f64>,
    p999_us: Option<f64>,
    baseline: &'static str,
    baseline_secs: f64,
    baseline_requests_per_sec: f64,
    baseline_msgs_per_sec: f64,
    baseline_p50_us: Option<f64>,
    baseline_p99_us: Option<f64>,
    baseline_p999_us: Option<f64>,
    /// Gateway ÷ bare handler throughput.
    ratio: f64,
    target_ratio: f64,
    /// The ratio reaches the target and no request failed on either side.
    meets_target: bool,
    rounds_requests_per_sec: Vec<f64>,
    baseline_rounds_requests_per_sec: Vec<f64>,
    /// Requests, over all rounds, without a 200 and the expected body.
    failures: u64,
    baseline_failures: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_failure: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    baseline_first_failure: Option<String>,
    /// `--grpc` only: the gRPC side.
    #[serde(skip_serializing_if = "Option::is_none")]
    grpc: Option<GrpcRecord>,
    /// `--live-view` only: the gateway with a live-view stream open.
    #[serde(skip_serializing_if = "Option::is_none")]
    live_view: Option<LiveViewRecord>,
}

/// The live-view side of the JSON line (`--live-view`).
#[derive(Debug, Serialize)]
pub(crate) struct LiveViewRecord {
    requests_per_sec: f64,
    p50_us: Option<f64>,
    p99_us: Option<f64>,
    p999_us: Option<f64>,
    rounds_requests_per_sec: Vec<f64>,
    /// Snapshots the stream delivered in each round.
    rounds_snapshots: Vec<u64>,
    /// With the live view ÷ without it (the gateway side of the same run).
    ratio_to_gateway: f64,
    target_ratio: f64,
    meets_target: bool,
    failures: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_failure: Option<String>,
}

/// The gRPC side of the JSON line (`--grpc`).
#[derive(Debug, Serialize)]
pub(crate) struct GrpcRecord {
    requests_per_sec: f64,
    p50_us: Option<f64>,
    p99_us: Option<f64>,
    p999_us: Option<f64>,
    rounds_requests_per_sec: Vec<f64>,
    /// gRPC ÷ HTTP gateway throughput.
    ratio_to_gateway: f64,
    target_ratio: f64,
    meets_target: bool,
    failures: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_failure: Option<String>,
}

/// What the baseline is, for the report.
const BASELINE: &str = "bare actix-web handler: same route, same worker count, \
serde_json decode of echo.Ping and encode of Pong; no msa, no auth, no metrics";

fn summary(rounds: &[Round]) -> (SideSummary, u64, Option<String>) {
    let ms: Vec<_> = rounds.iter().map(|r| r.measurement.clone()).collect();
    let failures = rounds.iter().map(|r| r.failures).sum();
    let first = rounds.iter().find_map(|r| r.first_failure.clone());
    (summarize(&ms), failures, first)
}

impl GatewayComparison {
    pub(crate) fn record(&self) -> GatewayRecord {
        let (msa, failures, first_failure) = summary(&self.gateway);
        let (raw, baseline_failures, baseline_first_failure) = summary(&self.baseline);
        let ratio = msa.msgs_per_sec / raw.msgs_per_sec;
        let lat =
            |s: &SideSummary, i: usize| s.latency_us.map(|p| round3([p.p50, p.p99, p.p999][i]));
        let rates = |s: &SideSummary| -> Vec<f64> {
            s.rounds_msgs_per_sec.iter().map(|r| r.round()).collect()
        };
        let grpc = (!self.grpc.is_empty()).then(|| {
            let (g, failures, first_failure) = summary(&self.grpc);
            let ratio = g.msgs_per_sec / msa.msgs_per_sec;
            GrpcRecord {
                requests_per_sec: g.msgs_per_sec.round(),
                p50_us: lat(&g, 0),
                p99_us: lat(&g, 1),
                p999_us: lat(&g, 2),
                rounds_requests_per_sec: rates(&g),
                ratio_to_gateway: round3(ratio),
                target_ratio: GRPC_TARGET_RATIO,
                meets_target: ratio >= GRPC_TARGET_RATIO && failures == 0,
                failures,
                first_failure,
            }
        });
        let live_view = (!self.live_view.is_empty()).then(|| {
            let rounds: Vec<Round> = self.live_view.iter().map(|l| l.round.clone()).collect();
            let (l, failures, first_failure) = summary(&rounds);
            let ratio = l.msgs_per_sec / msa.msgs_per_sec;
            LiveViewRecord {
                requests_per_sec: l.msgs_per_sec.round(),
                p50_us: lat(&l, 0),
                p99_us: lat(&l, 1),
                p999_us: lat(&l, 2),
                rounds_requests_per_sec: rates(&l),
                rounds_snapshots: self.live_view.iter().map(|l| l.snapshots).collect(),
                ratio_to_gateway: round3(ratio),
                target_ratio: LIVE_VIEW_TARGET_RATIO,
                meets_target: ratio >= LIVE_VIEW_TARGET_RATIO && failures == 0,
                failures,
                first_failure,
            }
        });
        GatewayRecord {
            scenario: "gateway",
            threads: self.threads.clone(),
            connections: self.connections,
            workers: self.workers,
            arbiters: self.arbiters,
            requests: msa.messages,
            messages: msa.messages,
            rounds: self.gateway.len(),
            secs: round6(msa.secs),
            requests_per_sec: msa.msgs_per_sec.round(),
            msgs_per_sec: msa.msgs_per_sec.round(),
            p50_us: lat(&msa, 0),
            p99_us: lat(&msa, 1),
            p999_us: lat(&msa, 2),
            baseline: BASELINE,
            baseline_secs: round6(raw.secs),
            baseline_requests_per_sec: raw.msgs_per_sec.round(),
            baseline_msgs_per_sec: raw.msgs_per_sec.round(),
            baseline_p50_us: lat(&raw, 0),
            baseline_p99_us: lat(&raw, 1),
            baseline_p999_us: lat(&raw, 2),
            ratio: round3(ratio),
            target_ratio: TARGET_RATIO,
            meets_target: ratio >= TARGET_RATIO && failures == 0 && baseline_failures == 0,
            rounds_requests_per_sec: rates(&msa),
            baseline_rounds_requests_per_sec: rates(&raw),
            failures,
            baseline_failures,
            first_failure,
            baseline_first_failure,
            grpc,
            live_view,
        }
    }
}

/// The JSON line, with its newline.
pub(crate) fn json_line(c: &GatewayComparison) -> serde_json::Result<String> {
    Ok(serde_json::to_string(&c.record())? + "\n")
}

/// The loud part of the report when requests failed; `None` when none did.
pub(crate) fn failure_banner(r: &GatewayRecord) -> Option<String> {
    let grpc_failures = r.grpc.as_ref().map_or(0, |g| g.failures);
    let live_failures = r.live_view.as_ref().map_or(0, |l| l.failures);
    if r.failures == 0 && r.baseline_failures == 0 && grpc_failures == 0 && live_failures == 0 {
        return None;
    }
    let total = r.requests * r.rounds as u64;
    let mut out = String::new();
    for (side, n, first) in [
        ("gateway", r.failures, &r.first_failure),
        ("baseline", r.baseline_failures, &r.baseline_first_failure),
        (
            "gRPC",
            grpc_failures,
            r.grpc.as_ref().map_or(&None, |g| &g.first_failure),
        ),
        (
            "gateway + live view",
            live_failures,
            r.live_view.as_ref().map_or(&None, |l| &l.first_failure),
        ),
    ] {
        if n > 0 {
            let _ = writeln!(
                out,
                "!!! FAILED: {} of {} {side} requests did not get 200 and the expected body; \
                 first: {}",
                thousands(n),
                thousands(total),
                first.as_deref().unwrap_or("?")
            );
        }
    }
    out.push_str("!!! The figures above are not a valid measurement.\n");
    Some(out)
}

/// The human-readable report.
pub(crate) fn table(c: &GatewayComparison) -> String {
    let r = c.record();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "HTTP over loopback, {} keep-alive connections; median of {} interleaved round(s) per side;\n\
         ratio = msa gateway ÷ bare actix-web handler, same run.",
        r.connections, r.rounds
    );
    let [a, b, c2, d, e, f, g] = [
        "side",
        "requests",
        "req/s",
        "p50 µs",
        "p99 µs",
        "p99.9 µs",
        "failed",
    ];
    let _ = writeln!(
        out,
        "{a:<9} {b:>10} {c2:>10} {d:>10} {e:>10} {f:>10} {g:>8}"
    );
    let row = |out: &mut String, side: &str, rps: f64, lat: [Option<f64>; 3], failed: u64| {
        let l = |x: Option<f64>| format!("{:.1}", x.unwrap_or(f64::NAN));
        let _ = writeln!(
            out,
            "{side:<9} {:>10} {:>10} {:>10} {:>10} {:>10} {:>8}",
            thousands(r.requests),
            si(rps),
            l(lat[0]),
            l(lat[1]),
            l(lat[2]),
            thousands(failed)
        );
    };
    row(
        &mut out,
        "gateway",
        r.requests_per_sec,
        [r.p50_us, r.p99_us, r.p999_us],
        r.failures,
    );
    row(
        &mut out,
        "baseline",
        r.baseline_requests_per_sec,
        [r.baseline_p50_us, r.baseline_p99_us, r.baseline_p999_us],
        r.baseline_failures,
    );
    let _ = writeln!(
        out,
        "ratio {:.3}×  (target ≥{:.1}× with no failures: {})",
        r.ratio,
        r.target_ratio,
        verdict(r.meets_target)
    );
    if let Some(g) = &r.grpc {
        row(
            &mut out,
            "grpc",
            g.requests_per_sec,
            [g.p50_us, g.p99_us, g.p999_us],
            g.failures,
        );
        let _ = writeln!(
            out,
            "grpc ÷ gateway {:.3}×  (target ≥{:.1}× with no failures: {})",
            g.ratio_to_gateway,
            g.target_ratio,
            verdict(g.meets_target)
        );
    }
    if let Some(l) = &r.live_view {
        row(
            &mut out,
            "live view",
            l.requests_per_sec,
            [l.p50_us, l.p99_us, l.p999_us],
            l.failures,
        );
        let _ = writeln!(
            out,
            "live view ÷ gateway {:.3}×  (one live-view stream open; snapshots per round: {:?}; \
             target ≥{:.1}× with no failures: {})",
            l.ratio_to_gateway,
            l.rounds_snapshots,
            l.target_ratio,
            verdict(l.meets_target)
        );
    }
    let _ = writeln!(out, "Baseline: {}.", r.baseline);
    let _ = writeln!(out, "Threads: {}.", r.threads);
    if let Some(banner) = failure_banner(&r) {
        out.push('\n');
        out.push_str(&banner);
    }
    out
}

/// The charts of `msa bench gateway --html`, from the same record and
/// summaries as the table, which follows them.
pub(crate) fn html_sections(c: &GatewayComparison) -> Vec<Section> {
    let r = c.record();
    let mut bars = vec![
        ("msa gateway", r.requests_per_sec),
        ("bare actix-web", r.baseline_requests_per_sec),
    ];
    if let Some(g) = &r.grpc {
        bars.push(("gRPC ingress", g.requests_per_sec));
    }
    if let Some(l) = &r.live_view {
        bars.push(("gateway + live view", l.requests_per_sec));
    }
    let mut section = Section::new("msa bench gateway: HTTP over loopback")
        .note(format!(
            "{} keep-alive connections, {} worker(s); median of {} interleaved round(s) per \
             side; ratio {:.3}× (target ≥ {:.1}×: {}).",
            r.connections,
            r.workers,
            r.rounds,
            r.ratio,
            r.target_ratio,
            verdict(r.meets_target)
        ))
        .chart(
            BarChart::new("Throughput", Unit::PerSec("req/s"))
                .group(Group::new(format!("gateway, ratio {:.2}×", r.ratio), &bars)),
        );
    let mut sides = vec![
        ("msa gateway", summary(&c.gateway).0.latency_us),
        ("bare actix-web", summary(&c.baseline).0.latency_us),
    ];
    if !c.grpc.is_empty() {
        sides.push(("gRPC ingress", summary(&c.grpc).0.latency_us));
    }
    let sides: Vec<(&str, Percentiles)> = sides
        .into_iter()
        .filter_map(|(n, p)| Some((n, p?)))
        .collect();
    if !sides.is_empty() {
        let mut chart = BarChart::new(
            "Request latency over all rounds (client side)",
            Unit::Micros,
        )
        .scaled_per_group();
        for i in 0..4 {
            let label = sides[0].1.charted()[i].0;
            let bars: Vec<(&str, f64)> =
                sides.iter().map(|(n, p)| (*n, p.charted()[i].1)).collect();
            chart = chart.group(Group::new(label, &bars));
        }
        section = section.chart(chart);
    }
    vec![section.text(table(c))]
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::cli::bench::scenario::Measurement;

    fn round(requests: u64, millis: u64, failures: u64) -> Round {
        let mut h = hdrhistogram::Histogram::new_with_bounds(1, 60_000_000_000, 3).unwrap();
        h.record(millis * 1_000).unwrap();
        Round {
            measurement: Measurement {
                messages: requests,
                elapsed: Duration::from_millis(millis),
                latency_ns: Some(h),
            },
            failures,
            first_failure: (failures > 0).then(|| "status 503".to_string()),
        }
    }

    fn comparison(gateway: Vec<Round>, baseline: Vec<Round>) -> GatewayComparison {
        GatewayComparison {
            threads: "t".into(),
            connections: 4,
            workers: 2,
            arbiters: 1,
            gateway,
            baseline,
            grpc: Vec::new(),
            live_view: Vec::new(),
        }
    }

    #[test]
    fn ratio_is_of_medians_and_target_needs_no_failures() {
        // Gateway: 1,000 requests in 2 s (median of 1, 2 and 4 s) = 500/s;
        // baseline: 1,000 in 1 s = 1,000/s.
        let c = comparison(
            vec![
                round(1_000, 1_000, 0),
                round(1_000, 2_000, 0),
                round(1_000, 4_000, 0),
            ],
            vec![
                round(1_000, 1_000, 0),
                round(1_000, 1_000, 0),
                round(1_000, 1_000, 0),
            ],
        );
        let r = c.record();
        assert_eq!(r.requests_per_sec, 500.0);
        assert_eq!(r.baseline_requests_per_sec, 1_000.0);
        assert_eq!(r.ratio, 0.5);
        assert!(!r.meets_target);
        assert!(failure_banner(&r).is_none());

        let ok = comparison(vec![round(1_000, 1_000, 0)], vec![round(1_000, 1_500, 0)]);
        assert!(ok.record().meets_target);
        let failed = comparison(vec![round(1_000, 1_000, 3)], vec![round(1_000, 1_500, 0)]);
        let r = failed.record();
        assert!(!r.meets_target);
        assert_eq!(r.failures, 3);
        let banner = failure_banner(&r).unwrap();
        assert!(banner.contains("FAILED: 3 of 1,000 gateway"), "{banner}");
        assert!(table(&failed).contains("FAILED"));
    }

    #[test]
    fn json_line_has_the_issue_fields() {
        let c = comparison(vec![round(10, 1, 0)], vec![round(10, 1, 0)]);
        let v: serde_json::Value = serde_json::from_str(&json_line(&c).unwrap()).unwrap();
        assert_eq!(v["scenario"], "gateway");
        for f in [
            "requests_per_sec",
            "p50_us",
            "p99_us",
            "baseline_requests_per_sec",
            "ratio",
            "rounds",
            "connections",
        ] {
            assert!(v[f].is_number(), "{f} in {v}");
        }
    }

    #[test]
    fn html_sections_chart_both_sides_from_the_record() {
        let c = comparison(vec![round(1_000, 2_000, 0)], vec![round(1_000, 1_000, 0)]);
        let s = html_sections(&c);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].charts.len(), 2, "throughput and latency");
        let svg = s[0].charts[0].svg();
        assert!(
            svg.contains("500 req/s") && svg.contains("1.0k req/s"),
            "{svg}"
        );
        assert!(s[0].charts[1].svg().contains("max"));
    }
}
