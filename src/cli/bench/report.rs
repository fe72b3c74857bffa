//! Turning measurements into medians, and medians into a table or JSON lines.

use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

pub(super) use super::html::si;
use super::html::{BarChart, Group, Section, Unit};
use super::scenario::{Measurement, Scenario, SpawnComparison};

/// The msa ÷ raw actix throughput ratio msa aims for, where there is one.
fn target_ratio(scenario: Scenario) -> Option<f64> {
    match scenario {
        Scenario::Tell | Scenario::Ask => Some(0.8),
        Scenario::FanIn | Scenario::Spawn => None,
    }
}

/// The resident memory per spawned supervised actor msa aims to stay
/// under, in KiB: issue 12's target (it was 2.0 KiB before).
const TARGET_KIB_PER_ACTOR: f64 = 1.5;

/// All rounds of one compared scenario.
#[derive(Debug)]
pub(crate) struct Comparison {
    pub(crate) scenario: Scenario,
    /// Where senders and sink ran, e.g. "same-thread".
    pub(crate) threads: String,
    pub(crate) senders: u64,
    pub(crate) msa: Vec<Measurement>,
    pub(crate) raw: Vec<Measurement>,
}

/// The median side of a comparison.
#[derive(Debug)]
pub(super) struct SideSummary {
    pub(super) messages: u64,
    pub(super) secs: f64,
    pub(super) msgs_per_sec: f64,
    pub(super) rounds_msgs_per_sec: Vec<f64>,
    /// Percentiles over every round trip of every round.
    pub(super) latency_us: Option<Percentiles>,
}

/// Latency percentiles of a histogram of nanoseconds, in µs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Percentiles {
    pub(super) p50: f64,
    pub(super) p90: f64,
    pub(super) p99: f64,
    pub(super) p999: f64,
    pub(super) max: f64,
}

impl Percentiles {
    pub(super) fn of(h: &Histogram<u64>) -> Self {
        let us = |q: f64| h.value_at_quantile(q) as f64 / 1_000.0;
        Self {
            p50: us(0.5),
            p90: us(0.9),
            p99: us(0.99),
            p999: us(0.999),
            max: h.max() as f64 / 1_000.0,
        }
    }

    /// p50, p90, p99 and max, labelled, for a chart.
    pub(super) fn charted(&self) -> [(&'static str, f64); 4] {
        [
            ("p50", self.p50),
            ("p90", self.p90),
            ("p99", self.p99),
            ("max", self.max),
        ]
    }
}

pub(super) fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

pub(super) fn summarize(rounds: &[Measurement]) -> SideSummary {
    let rates: Vec<f64> = rounds.iter().map(Measurement::msgs_per_sec).collect();
    let secs: Vec<f64> = rounds.iter().map(|m| m.elapsed.as_secs_f64()).collect();
    let mut merged: Option<Histogram<u64>> = None;
    for h in rounds.iter().filter_map(|m| m.latency_ns.as_ref()) {
        match &mut merged {
            None => merged = Some(h.clone()),
            // Same bounds everywhere, so adding cannot fail; if it did, the
            // percentiles would cover fewer rounds, not be wrong.
            Some(m) => drop(m.add(h)),
        }
    }
    SideSummary {
        messages: rounds.first().map_or(0, |m| m.messages),
        secs: median(&secs),
        msgs_per_sec: median(&rates),
        rounds_msgs_per_sec: rates,
        latency_us: merged.as_ref().map(Percentiles::of),
    }
}

/// One JSON line of a compared scenario.
#[derive(Debug, Serialize)]
struct ComparisonRecord {
    scenario: &'static str,
    threads: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    senders: Option<u64>,
    messages: u64,
    rounds: usize,
    secs: f64,
    msgs_per_sec: f64,
    baseline_secs: f64,
    baseline_msgs_per_sec: f64,
    ratio: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_ratio: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    meets_target: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    p50_us: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    p99_us: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    p999_us: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    baseline_p50_us: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    baseline_p99_us: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    baseline_p999_us: Option<f64>,
    rounds_msgs_per_sec: Vec<f64>,
    baseline_rounds_msgs_per_sec: Vec<f64>,
}

/// The JSON line of the spawn scenario.
#[derive(Debug, Serialize)]
struct SpawnRecord {
    scenario: &'static str,
    threads: String,
    actors: usize,
    messages: u64,
    /// Spawn plus delivery.
    secs: f64,
    /// Delivery of one message per actor.
    msgs_per_sec: f64,
    spawn_secs: f64,
    actors_per_sec: f64,
    deliver_secs: f64,
    shutdown_secs: f64,
    rss_before_kib: u64,
    rss_after_kib: u64,
    kib_per_actor: f64,
    peak_rss_kib: u64,
    target_kib_per_actor: f64,
    meets_target: bool,
    /// Raw actix: spawn plus delivery.
    baseline_secs: f64,
    baseline_kib_per_actor: f64,
    baseline_peak_rss_kib: u64,
    /// msa ÷ raw actix resident memory per actor.
    kib_ratio: f64,
    /// Rounds per side (each a fresh process); the figures above are each
    /// side's median round by total time.
    rounds: usize,
    /// msa ÷ raw actix total time (median rounds).
    time_ratio: f64,
    /// msa's total of each round, in the order run.
    rounds_secs: Vec<f64>,
    /// Raw actix's total of each round.
    baseline_rounds_secs: Vec<f64>,
}

/// Rounds a figure for output to 3 decimals (µs at ns resolution).
pub(super) fn round3(x: f64) -> f64 {
    (x * 1e3).round() / 1e3
}

/// Rounds seconds for output to 6 decimals (µs resolution).
pub(super) fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

impl Comparison {
    fn record(&self) -> ComparisonRecord {
        let msa = summarize(&self.msa);
        let raw = summarize(&self.raw);
        let ratio = msa.msgs_per_sec / raw.msgs_per_sec;
        let target = target_ratio(self.scenario);
        let lat =
            |s: &SideSummary, i: usize| s.latency_us.map(|p| round3([p.p50, p.p99, p.p999][i]));
        ComparisonRecord {
            scenario: self.scenario.name(),
            threads: self.threads.clone(),
            senders: (self.scenario == Scenario::FanIn).then_some(self.senders),
            messages: msa.messages,
            rounds: self.msa.len(),
            secs: round6(msa.secs),
            msgs_per_sec: msa.msgs_per_sec.round(),
            baseline_secs: round6(raw.secs),
            baseline_msgs_per_sec: raw.msgs_per_sec.round(),
            ratio: round3(ratio),
            target_ratio: target,
            meets_target: target.map(|t| ratio >= t),
            p50_us: lat(&msa, 0),
            p99_us: lat(&msa, 1),
            p999_us: lat(&msa, 2),
            baseline_p50_us: lat(&raw, 0),
            baseline_p99_us: lat(&raw, 1),
            baseline_p999_us: lat(&raw, 2),
            rounds_msgs_per_sec: msa.rounds_msgs_per_sec.iter().map(|r| r.round()).collect(),
            baseline_rounds_msgs_per_sec: raw
                .rounds_msgs_per_sec
                .iter()
                .map(|r| r.round())
                .collect(),
        }
    }
}

impl SpawnComparison {
    fn record(&self) -> SpawnRecord {
        let Self {
            msa,
            raw,
            msa_rounds,
            raw_rounds,
        } = self;
        let secs = |v: &[std::time::Duration]| v.iter().map(|d| round3(d.as_secs_f64())).collect();
        let kib = msa.kib_per_actor();
        let per_sec = |n: usize, d: std::time::Duration| (n as f64 / d.as_secs_f64()).round();
        SpawnRecord {
            scenario: Scenario::Spawn.name(),
            threads: msa.placement(),
            actors: msa.actors,
            messages: msa.actors as u64,
            secs: round3(msa.total().as_secs_f64()),
            msgs_per_sec: per_sec(msa.actors, msa.deliver),
            spawn_secs: round3(msa.spawn.as_secs_f64()),
            actors_per_sec: per_sec(msa.actors, msa.spawn),
            deliver_secs: round3(msa.deliver.as_secs_f64()),
            shutdown_secs: round3(msa.shutdown.as_secs_f64()),
            rss_before_kib: msa.rss_before_kib,
            rss_after_kib: msa.rss_after_kib,
            kib_per_actor: round3(kib),
            peak_rss_kib: msa.peak_rss_kib,
            target_kib_per_actor: TARGET_KIB_PER_ACTOR,
            meets_target: kib <= TARGET_KIB_PER_ACTOR,
            baseline_secs: round3(raw.total().as_secs_f64()),
            baseline_kib_per_actor: round3(raw.kib_per_actor()),
            baseline_peak_rss_kib: raw.peak_rss_kib,
            kib_ratio: round3(kib / raw.kib_per_actor()),
            rounds: msa_rounds.len(),
            time_ratio: round3(msa.total().as_secs_f64() / raw.total().as_secs_f64()),
            rounds_secs: secs(msa_rounds),
            baseline_rounds_secs: secs(raw_rounds),
        }
    }
}

/// One JSON object per scenario, one per line.
pub(crate) fn json_lines(
    spawn: Option<&SpawnComparison>,
    comparisons: &[Comparison],
) -> anyhow::Result<String> {
    let mut out = String::new();
    if let Some(s) = spawn {
        out.push_str(&serde_json::to_string(&s.record())?);
        out.push('\n');
    }
    for c in comparisons {
        out.push_str(&serde_json::to_string(&c.record())?);
        out.push('\n');
    }
    Ok(out)
}

/// `1234567` as `1,234,567`.
pub(super) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// A rate with an SI suffix: `12.35M`, `987.6k`.
pub(super) fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "MISSED"
    }
}

/// The human-readable report.
pub(crate) fn table(spawn: Option<&SpawnComparison>, comparisons: &[Comparison]) -> String {
    let mut out = String::new();
    if !comparisons.is_empty() {
        let rounds = comparisons.first().map_or(0, |c| c.msa.len());
        let _ = writeln!(
            out,
            "Throughput: median of {rounds} interleaved round(s) per side; ratio = msa ÷ raw actix."
        );
        let [a, b, c, d, e, f, g] = [
            "scenario",
            "threads",
            "messages",
            "msa msg/s",
            "raw msg/s",
            "ratio",
            "target",
        ];
        let _ = writeln!(out, "{a:<8} {b:<28} {c:>11} {d:>11} {e:>11} {f:>7}  {g}");
        for c in comparisons {
            let r = c.record();
            let target = match (r.target_ratio, r.meets_target) {
                (Some(t), Some(ok)) => format!("≥{t:.2} {}", verdict(ok)),
                _ => "-".into(),
            };
            let _ = writeln!(
                out,
                "{:<8} {:<28} {:>11} {:>11} {:>11} {:>6.2}×  {}",
                r.scenario,
                r.threads,
                thousands(r.messages),
                si(r.msgs_per_sec),
                si(r.baseline_msgs_per_sec),
                r.ratio,
                target
            );
        }
        let with_latency: Vec<_> = comparisons
            .iter()
            .map(Comparison::record)
            .filter(|r| r.p50_us.is_some())
            .collect();
        if !with_latency.is_empty() {
            let _ = writeln!(
                out,
                "\nRound-trip latency in µs, over all rounds (msa / raw actix):"
            );
            let [a, b, c, d] = ["scenario", "p50", "p99", "p99.9"];
            let _ = writeln!(out, "{a:<8} {b:>17} {c:>17} {d:>17}");
            let pair = |a: Option<f64>, b: Option<f64>| {
                format!(
                    "{:.2} / {:.2}",
                    a.unwrap_or(f64::NAN),
                    b.unwrap_or(f64::NAN)
                )
            };
            for r in with_latency {
                let _ = writeln!(
                    out,
                    "{:<8} {:>17} {:>17} {:>17}",
                    r.scenario,
                    pair(r.p50_us, r.baseline_p50_us),
                    pair(r.p99_us, r.baseline_p99_us),
                    pair(r.p999_us, r.baseline_p999_us)
                );
            }
        }
    }
    if let Some(s) = spawn {
        let r = s.record();
        if !out.is_empty() {
            out.push('\n');
        }
        let _ = writeln!(
            out,
            "spawn, {} (median of {} rounds per side, each a fresh process):",
            r.threads, r.rounds
        );
        let _ = writeln!(
            out,
            "  msa: {} supervised actors (instances of one service) up in {:.3} s ({} actors/s)",
            thousands(r.actors as u64),
            r.spawn_secs,
            si(r.actors_per_sec)
        );
        let _ = writeln!(
            out,
            "       one message each, all handled in {:.3} s ({} msg/s); total {:.3} s; shutdown {:.3} s",
            r.deliver_secs,
            si(r.msgs_per_sec),
            r.secs,
            r.shutdown_secs
        );
        let _ = writeln!(
            out,
            "       RSS {:.1} → {:.1} MiB: {:.3} KiB per actor (target ≤ {:.1} KiB: {}); peak RSS {:.1} MiB",
            r.rss_before_kib as f64 / 1024.0,
            r.rss_after_kib as f64 / 1024.0,
            r.kib_per_actor,
            r.target_kib_per_actor,
            verdict(r.meets_target),
            r.peak_rss_kib as f64 / 1024.0
        );
        let _ = writeln!(
            out,
            "  raw actix, same actors and messages: total {:.3} s; {:.3} KiB per actor; peak RSS {:.1} MiB",
            r.baseline_secs,
            r.baseline_kib_per_actor,
            r.baseline_peak_rss_kib as f64 / 1024.0
        );
        let _ = writeln!(
            out,
            "  msa ÷ raw actix: {:.2}× the memory per actor, {:.2}× the time",
            r.kib_ratio,
            r.secs / r.baseline_secs
        );
    }
    out
}

/// The charts of `msa bench local --html`, from the same records as the
/// table, which follows them.
pub(crate) fn html_sections(
    spawn: Option<&SpawnComparison>,
    comparisons: &[Comparison],
) -> Vec<Section> {
    let mut section = Section::new("msa bench local: msa vs raw actix, in the same run");
    if !comparisons.is_empty() {
        let rounds = comparisons.first().map_or(0, |c| c.msa.len());
        let mut chart = BarChart::new(
            format!("Throughput (median of {rounds} interleaved round(s) per side)"),
            Unit::PerSec("msg/s"),
        );
        for c in comparisons {
            let r = c.record();
            chart = chart.group(Group::new(
                format!("{} ({}), ratio {:.2}×", r.scenario, r.threads, r.ratio),
                &[
                    ("msa", r.msgs_per_sec),
                    ("raw actix", r.baseline_msgs_per_sec),
                ],
            ));
        }
        section = section.chart(chart);
        for c in comparisons {
            let (msa, raw) = (summarize(&c.msa), summarize(&c.raw));
            if let (Some(m), Some(r)) = (msa.latency_us, raw.latency_us) {
                let mut chart = BarChart::new(
                    format!("{}: round-trip latency over all rounds", c.scenario.name()),
                    Unit::Micros,
                )
                .scaled_per_group();
                for ((label, mv), (_, rv)) in m.charted().into_iter().zip(r.charted()) {
                    chart = chart.group(Group::new(label, &[("msa", mv), ("raw actix", rv)]));
                }
                section = section.chart(chart);
            }
        }
    }
    if let Some(s) = spawn {
        let r = s.record();
        section = section.chart(
            BarChart::new(
                format!(
                    "spawn: resident memory per actor, {} actors (target ≤ {TARGET_KIB_PER_ACTOR} KiB)",
                    thousands(r.actors as u64)
                ),
                Unit::KiB,
            )
            .group(Group::new(
                "KiB per actor",
                &[
                    ("msa", r.kib_per_actor),
                    ("raw actix", r.baseline_kib_per_actor),
                ],
            )),
        );
    }
    vec![section.text(table(spawn, comparisons))]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn si_picks_a_suffix() {
        assert_eq!(si(12_345_678.0), "12.35M");
        assert_eq!(si(987_600.0), "987.6k");
        assert_eq!(si(12.0), "12");
    }
}
