//! The report of `msa bench remote`: medians over rounds, the targets of
//! the cluster issue, a table or JSON lines.

use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::super::report::{median, round3, round6, si, thousands, verdict};
use super::measure::Measurement;
use super::raw::FRAME_BYTES;

/// One-way tell throughput msa aims for (u64 message, loopback, 2 processes).
const TARGET_TELL_MSGS_PER_SEC: f64 = 1_000_000.0;
/// Stretch goal for tells: this share of the raw TCP baseline.
const STRETCH_TELL_RATIO: f64 = 0.10;
/// Remote ask p50 at most this many times the raw TCP ping-pong p50.
const TARGET_ASK_P50_RATIO: f64 = 2.0;

/// A scenario of `msa bench remote`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RemoteScenario {
    /// One-way tells vs one-way raw frames.
    Tell,
    /// Sequential asks vs raw ping-pong.
    Ask,
}

impl RemoteScenario {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Tell => "remote_tell",
            Self::Ask => "remote_ask",
        }
    }
}

/// All rounds of one scenario, both sides.
#[derive(Debug)]
pub(crate) struct RemoteComparison {
    pub(crate) scenario: RemoteScenario,
    /// Where each side ran.
    pub(crate) threads: String,
    pub(crate) msa: Vec<Measurement>,
    pub(crate) raw: Vec<Measurement>,
}

/// One side, summarised over its rounds.
#[derive(Debug)]
struct Summary {
    messages: u64,
    secs: f64,
    msgs_per_sec: f64,
    rounds_msgs_per_sec: Vec<f64>,
    retries: f64,
    /// (p50, p99, p99.9) in µs over every round trip of every round.
    latency_us: Option<(f64, f64, f64)>,
    rounds_p50_us: Vec<f64>,
}

fn us(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1_000.0
}

fn summarize(rounds: &[Measurement]) -> Summary {
    let rates: Vec<f64> = rounds.iter().map(Measurement::msgs_per_sec).collect();
    let secs: Vec<f64> = rounds.iter().map(|m| m.elapsed.as_secs_f64()).collect();
    let retries: Vec<f64> = rounds.iter().map(|m| m.retries as f64).collect();
    let mut merged: Option<Histogram<u64>> = None;
    for h in rounds.iter().filter_map(|m| m.latency_ns.as_ref()) {
        match &mut merged {
            None => merged = Some(h.clone()),
            // Same bounds everywhere, so adding cannot fail.
            Some(m) => drop(m.add(h)),
        }
    }
    Summary {
        messages: rounds.first().map_or(0, |m| m.messages),
        secs: median(&secs),
        msgs_per_sec: median(&rates),
        rounds_msgs_per_sec: rates,
        retries: median(&retries),
        latency_us: merged.map(|h| (us(&h, 0.5), us(&h, 0.99), us(&h, 0.999))),
        rounds_p50_us: rounds
            .iter()
            .filter_map(|m| m.latency_ns.as_ref())
            .map(|h| round3(us(h, 0.5)))
            .collect(),
    }
}

/// One JSON line.
#[derive(Debug, Serialize)]
pub(crate) struct RemoteRecord {
    scenario: &'static str,
    threads: String,
    messages: u64,
    rounds: usize,
    secs: f64,
    msgs_per_sec: f64,
    baseline: String,
    baseline_secs: f64,
    baseline_msgs_per_sec: f64,
    /// msa ÷ raw TCP throughput.
    ratio: f64,
    rounds_msgs_per_sec: Vec<f64>,
    baseline_rounds_msgs_per_sec: Vec<f64>,
    /// Tell: one-way throughput msa aims for.
    #[serde(skip_serializing_if = "Option::is_none")]
    target_msgs_per_sec: Option<f64>,
    /// Tell: the stretch goal, as a share of the raw baseline.
    #[serde(skip_serializing_if = "Option::is_none")]
    stretch_ratio: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    meets_stretch: Option<bool>,
    /// Tell: median per round of tells retried after `Overloaded`.
    #[serde(skip_serializing_if = "Option::is_none")]
    overloaded_retries: Option<f64>,
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
    /// Ask: msa p50 ÷ raw TCP ping-pong p50.
    #[serde(skip_serializing_if = "Option::is_none")]
    p50_ratio: Option<f64>,
    /// Ask: the highest `p50_ratio` msa aims for.
    #[serde(skip_serializing_if = "Option::is_none")]
    target_p50_ratio: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    rounds_p50_us: Vec<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    baseline_rounds_p50_us: Vec<f64>,
    meets_target: bool,
}

impl RemoteComparison {
    pub(crate) fn record(&self) -> RemoteRecord {
        let msa = summarize(&self.msa);
        let raw = summarize(&self.raw);
        let ratio = msa.msgs_per_sec / raw.msgs_per_sec;
        let lat = |s: &Summary, i: usize| s.latency_us.map(|(a, b, c)| round3([a, b, c][i]));
        let p50_ratio = match (msa.latency_us, raw.latency_us) {
            (Some((m, _, _)), Some((r, _, _))) => Some(m / r),
            _ => None,
        };
        let tell = self.scenario == RemoteScenario::Tell;
        let meets_target = if tell {
            msa.msgs_per_sec >= TARGET_TELL_MSGS_PER_SEC
        } else {
            p50_ratio.is_some_and(|r| r <= TARGET_ASK_P50_RATIO)
        };
        RemoteRecord {
            scenario: self.scenario.name(),
            threads: self.threads.clone(),
            messages: msa.messages,
            rounds: self.msa.len(),
            secs: round6(msa.secs),
            msgs_per_sec: msa.msgs_per_sec.round(),
            baseline: format!(
                "raw tokio TCP, {FRAME_BYTES}-byte frames (4-byte length + 32-byte body), {}",
                if tell {
                    "one-way, flushed every 1,024"
                } else {
                    "ping-pong"
                }
            ),
            baseline_secs: round6(raw.secs),
            baseline_msgs_per_sec: raw.msgs_per_sec.round(),
            ratio: round3(ratio),
            rounds_msgs_per_sec: msa.rounds_msgs_per_sec.iter().map(|r| r.round()).collect(),
            baseline_rounds_msgs_per_sec: raw
                .rounds_msgs_per_sec
                .iter()
                .map(|r| r.round())
                .collect(),
            target_msgs_per_sec: tell.then_some(TARGET_TELL_MSGS_PER_SEC),
            stretch_ratio: tell.then_some(STRETCH_TELL_RATIO),
            meets_stretch: tell.then_some(ratio >= STRETCH_TELL_RATIO),
            overloaded_retries: tell.then_some(msa.retries),
            p50_us: lat(&msa, 0),
            p99_us: lat(&msa, 1),
            p999_us: lat(&msa, 2),
            baseline_p50_us: lat(&raw, 0),
            baseline_p99_us: lat(&raw, 1),
            baseline_p999_us: lat(&raw, 2),
            p50_ratio: p50_ratio.map(round3),
            target_p50_ratio: (!tell).then_some(TARGET_ASK_P50_RATIO),
            rounds_p50_us: msa.rounds_p50_us,
            baseline_rounds_p50_us: raw.rounds_p50_us,
            meets_target,
        }
    }
}

/// One JSON object per scenario, one per line.
pub(crate) fn json_lines(comparisons: &[RemoteComparison]) -> serde_json::Result<String> {
    let mut out = String::new();
    for c in comparisons {
        out.push_str(&serde_json::to_string(&c.record())?);
        out.push('\n');
    }
    Ok(out)
}

/// The human-readable report.
pub(crate) fn table(comparisons: &[RemoteComparison]) -> String {
    let mut out = String::new();
    let records: Vec<RemoteRecord> = comparisons.iter().map(RemoteComparison::record).collect();
    let rounds = records.first().map_or(0, |r| r.rounds);
    let _ = writeln!(
        out,
        "Two processes on loopback. Throughput: median of {rounds} interleaved round(s) per side;\n\
         baseline = raw tokio TCP with {FRAME_BYTES}-byte frames in the same run; ratio = msa ÷ raw."
    );
    let [a, b, c, d, e] = ["scenario", "messages", "msa msg/s", "raw msg/s", "ratio"];
    let _ = writeln!(out, "{a:<12} {b:>11} {c:>11} {d:>11} {e:>8}  target");
    for r in &records {
        let target = match (r.target_msgs_per_sec, r.target_p50_ratio) {
            (Some(t), _) => format!(
                "≥{} msg/s {}; stretch ≥{:.2}× raw {}",
                si(t),
                verdict(r.meets_target),
                r.stretch_ratio.unwrap_or(f64::NAN),
                verdict(r.meets_stretch.unwrap_or(false))
            ),
            (None, Some(t)) => format!("p50 ≤{t:.1}× raw p50 {}", verdict(r.meets_target)),
            (None, None) => "-".into(),
        };
        let _ = writeln!(
            out,
            "{:<12} {:>11} {:>11} {:>11} {:>7.3}×  {}",
            r.scenario,
            thousands(r.messages),
            si(r.msgs_per_sec),
            si(r.baseline_msgs_per_sec),
            r.ratio,
            target
        );
    }
    for r in records.iter().filter(|r| r.p50_us.is_some()) {
        let pair = |a: Option<f64>, b: Option<f64>| {
            format!(
                "{:.1} / {:.1}",
                a.unwrap_or(f64::NAN),
                b.unwrap_or(f64::NAN)
            )
        };
        let _ = writeln!(
            out,
            "\nRound-trip latency in µs over all rounds, msa ask / raw TCP ping-pong:"
        );
        let [a, b, c, d, e] = ["scenario", "p50", "p99", "p99.9", "p50 ratio"];
        let _ = writeln!(out, "{a:<12} {b:>15} {c:>15} {d:>15} {e:>10}");
        let _ = writeln!(
            out,
            "{:<12} {:>15} {:>15} {:>15} {:>9.2}×",
            r.scenario,
            pair(r.p50_us, r.baseline_p50_us),
            pair(r.p99_us, r.baseline_p99_us),
            pair(r.p999_us, r.baseline_p999_us),
            r.p50_ratio.unwrap_or(f64::NAN)
        );
    }
    for r in records.iter().filter(|r| r.overloaded_retries.is_some()) {
        let _ = writeln!(
            out,
            "\n{}: {} tells per round (median) found the outbound queue full and were retried.",
            r.scenario,
            thousands(r.overloaded_retries.unwrap_or(0.0) as u64)
        );
    }
    if let Some(r) = records.first() {
        let _ = writeln!(out, "Threads: {}", r.threads);
    }
    out
}
