//! The report of `msa bench remote`: medians over rounds, the targets of
//! the cluster issue, a table or JSON lines.
//!
//! Every comparison is a same-run ratio: msa and its baseline are measured
//! in the same rounds, in the same CPU state, and the verdicts compare
//! ratios only (absolute figures move with the machine's load and, for
//! anything that wakes a thread, with whether the CPUs idle).

use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::super::html::{BarChart, Group, Section, Unit};
use super::super::report::{median, round3, round6, si, thousands, verdict, Percentiles};
use super::awake::Cpus;
use super::measure::Measurement;
use super::raw::FRAME_BYTES;

/// One-way remote tell throughput at least this share of the raw TCP
/// one-way baseline.
pub(crate) const TARGET_TELL_RATIO: f64 = 0.08;
/// The absolute one-way tell throughput msa aims for (reported, not a verdict).
pub(crate) const AIM_TELL_MSGS_PER_SEC: f64 = 2_500_000.0;
/// Ask p50 at most this many times its baseline's p50 (both `remote_ask`
/// against the raw ping-pong and `remote_ask_natural` against the hand-off
/// ping-pong).
pub(crate) const TARGET_ASK_P50_RATIO: f64 = 1.5;
/// `--tls`: tell throughput over mutual TLS at least this share of
/// plaintext msa's in the same run (issue 13).
pub(crate) const TARGET_TLS_TELL_RATIO: f64 = 0.6;
/// `--tls`: ask p50 over mutual TLS at most this many times plaintext msa's
/// in the same run (issue 13).
pub(crate) const TARGET_TLS_ASK_P50_RATIO: f64 = 1.3;

/// A scenario of `msa bench remote`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RemoteScenario {
    /// One-way tells vs one-way raw frames.
    Tell,
    /// Sequential asks on the caller node's arbiter vs raw ping-pong on it.
    Ask,
    /// Sequential asks from outside a node built with its defaults vs raw
    /// ping-pong handed to a client thread.
    AskNatural,
}

impl RemoteScenario {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Tell => "remote_tell",
            Self::Ask => "remote_ask",
            Self::AskNatural => "remote_ask_natural",
        }
    }

    fn baseline(self) -> String {
        let frames =
            format!("raw tokio TCP, {FRAME_BYTES}-byte frames (4-byte length + 32-byte body)");
        match self {
            Self::Tell => format!("{frames}, one-way, flushed every 1,024"),
            Self::Ask => format!("{frames}, ping-pong on the caller node's arbiter"),
            Self::AskNatural => format!(
                "{frames}, ping-pong by a client on a thread of its own; the timing loop on \
                 the main thread hands each ping over a channel and gets the reply back \
                 through a oneshot"
            ),
        }
    }
}

/// All rounds of one scenario, both sides.
#[derive(Debug)]
pub(crate) struct RemoteComparison {
    pub(crate) scenario: RemoteScenario,
    /// Where each side ran.
    pub(crate) threads: String,
    /// Whether the CPUs idled or were kept awake.
    pub(crate) cpus: Cpus,
    pub(crate) msa: Vec<Measurement>,
    pub(crate) raw: Vec<Measurement>,
    /// msa over mutual TLS in the same rounds (`--tls`; empty without).
    pub(crate) tls: Vec<Measurement>,
}

impl RemoteComparison {
    pub(crate) fn new(scenario: RemoteScenario, threads: &str, cpus: Cpus) -> Self {
        Self {
            scenario,
            threads: threads.into(),
            cpus,
            msa: Vec::new(),
            raw: Vec::new(),
            tls: Vec::new(),
        }
    }
}

/// One side, summarised over its rounds.
#[derive(Debug)]
struct Summary {
    messages: u64,
    secs: f64,
    msgs_per_sec: f64,
    rounds_msgs_per_sec: Vec<f64>,
    retries: f64,
    /// Each round's p50 in µs.
    rounds_p50_us: Vec<f64>,
    /// The median of `rounds_p50_us`.
    p50_us: Option<f64>,
    /// (p50, p99, p99.9) in µs over every round trip of every round.
    pooled_us: Option<(f64, f64, f64)>,
    /// The same histogram's percentiles, with p90 and max (for charts).
    pooled: Option<Percentiles>,
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
    let rounds_p50_us: Vec<f64> = rounds
        .iter()
        .filter_map(|m| m.latency_ns.as_ref())
        .map(|h| us(h, 0.5))
        .collect();
    Summary {
        messages: rounds.first().map_or(0, |m| m.messages),
        secs: median(&secs),
        msgs_per_sec: median(&rates),
        rounds_msgs_per_sec: rates,
        retries: median(&retries),
        p50_us: (!rounds_p50_us.is_empty()).then(|| median(&rounds_p50_us)),
        rounds_p50_us,
        pooled: merged.as_ref().map(Percentiles::of),
        pooled_us: merged.map(|h| (us(&h, 0.5), us(&h, 0.99), us(&h, 0.999))),
    }
}

/// One JSON line.
#[derive(Debug, Serialize)]
pub(crate) struct RemoteRecord {
    scenario: &'static str,
    /// "idle", or "kept awake" (`--keep-awake`).
    cpus: &'static str,
    threads: String,
    messages: u64,
    rounds: usize,
    secs: f64,
    msgs_per_sec: f64,
    baseline: String,
    baseline_secs: f64,
    baseline_msgs_per_sec: f64,
    /// msa ÷ baseline throughput.
    ratio: f64,
    rounds_msgs_per_sec: Vec<f64>,
    baseline_rounds_msgs_per_sec: Vec<f64>,
    /// Tell: the lowest `ratio` msa aims for.
    #[serde(skip_serializing_if = "Option::is_none")]
    target_ratio: Option<f64>,
    /// Tell: the absolute throughput msa aims for (no verdict hangs on it).
    #[serde(skip_serializing_if = "Option::is_none")]
    aim_msgs_per_sec: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    meets_aim: Option<bool>,
    /// Tell: median per round of tells retried after `Overloaded`.
    #[serde(skip_serializing_if = "Option::is_none")]
    overloaded_retries: Option<f64>,
    /// Ask: the median of the rounds' p50s.
    #[serde(skip_serializing_if = "Option::is_none")]
    p50_us: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    baseline_p50_us: Option<f64>,
    /// Ask: `p50_us` ÷ `baseline_p50_us`.
    #[serde(skip_serializing_if = "Option::is_none")]
    p50_ratio: Option<f64>,
    /// Ask: the highest `p50_ratio` msa aims for.
    #[serde(skip_serializing_if = "Option::is_none")]
    target_p50_ratio: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    rounds_p50_us: Vec<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    baseline_rounds_p50_us: Vec<f64>,
    /// Ask: each round's msa p50 ÷ the same round's baseline p50.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    rounds_p50_ratio: Vec<f64>,
    /// Ask: percentiles over every round trip of every round.
    #[serde(skip_serializing_if = "Option::is_none")]
    pooled_p50_us: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    p99_us: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    p999_us: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    baseline_pooled_p50_us: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    baseline_p99_us: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    baseline_p999_us: Option<f64>,
    /// The target in words.
    target: String,
    meets_target: bool,
    /// "met" or "MISSED".
    verdict: &'static str,
    /// `--tls`: msa over mutual TLS, measured in the same rounds.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    tls: Option<TlsRecord>,
}

/// The `--tls` fields of a row: msa over mutual TLS against plaintext msa
/// of the same rounds.
#[derive(Debug, Serialize)]
pub(crate) struct TlsRecord {
    tls_msgs_per_sec: f64,
    tls_rounds_msgs_per_sec: Vec<f64>,
    /// TLS msa ÷ baseline throughput.
    tls_baseline_ratio: f64,
    /// Ask: the median of the rounds' p50s over TLS.
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_p50_us: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tls_rounds_p50_us: Vec<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_p99_us: Option<f64>,
    /// Tell: TLS msg/s ÷ plaintext msg/s (medians over the rounds). Ask:
    /// TLS p50 ÷ plaintext p50.
    tls_ratio: f64,
    /// The same ratio round by round (each round measures both).
    tls_rounds_ratio: Vec<f64>,
    /// Tell: the lowest `tls_ratio` aimed for; ask: the highest.
    tls_target_ratio: f64,
    /// The TLS target in words.
    tls_target: String,
    tls_meets_target: bool,
    /// "met" or "MISSED".
    tls_verdict: &'static str,
}

impl RemoteComparison {
    /// The `--tls` fields, when TLS was measured.
    fn tls_record(&self, msa: &Summary, raw: &Summary) -> Option<TlsRecord> {
        if self.tls.is_empty() {
            return None;
        }
        let tls = summarize(&self.tls);
        let tell = self.scenario == RemoteScenario::Tell;
        let (ratio, rounds_ratio, target_ratio, target, meets) = if tell {
            let ratio = tls.msgs_per_sec / msa.msgs_per_sec;
            (
                ratio,
                pairwise(&tls.rounds_msgs_per_sec, &msa.rounds_msgs_per_sec),
                TARGET_TLS_TELL_RATIO,
                format!("TLS ≥ {TARGET_TLS_TELL_RATIO:.1}× plaintext msg/s"),
                ratio >= TARGET_TLS_TELL_RATIO,
            )
        } else {
            let ratio = match (tls.p50_us, msa.p50_us) {
                (Some(t), Some(m)) => t / m,
                _ => f64::NAN,
            };
            (
                ratio,
                pairwise(&tls.rounds_p50_us, &msa.rounds_p50_us),
                TARGET_TLS_ASK_P50_RATIO,
                format!("TLS p50 ≤ {TARGET_TLS_ASK_P50_RATIO:.1}× plaintext p50"),
                ratio <= TARGET_TLS_ASK_P50_RATIO,
            )
        };
        Some(TlsRecord {
            tls_msgs_per_sec: tls.msgs_per_sec.round(),
            tls_rounds_msgs_per_sec: tls.rounds_msgs_per_sec.iter().map(|r| r.round()).collect(),
            tls_baseline_ratio: round3(tls.msgs_per_sec / raw.msgs_per_sec),
            tls_p50_us: tls.p50_us.map(round3),
            tls_rounds_p50_us: tls.rounds_p50_us.iter().copied().map(round3).collect(),
            tls_p99_us: tls.pooled_us.map(|(_, p99, _)| round3(p99)),
            tls_ratio: round3(ratio),
            tls_rounds_ratio: rounds_ratio,
            tls_target_ratio: target_ratio,
            tls_target: target,
            tls_meets_target: meets,
            tls_verdict: verdict(meets),
        })
    }
}

/// `a[i] ÷ b[i]` round by round, rounded.
fn pairwise(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| round3(x / y)).collect()
}

impl RemoteComparison {
    pub(crate) fn record(&self) -> RemoteRecord {
        let msa = summarize(&self.msa);
        let raw = summarize(&self.raw);
        let ratio = msa.msgs_per_sec / raw.msgs_per_sec;
        let pooled = |s: &Summary, i: usize| s.pooled_us.map(|(a, b, c)| round3([a, b, c][i]));
        let p50_ratio = match (msa.p50_us, raw.p50_us) {
            (Some(m), Some(r)) => Some(m / r),
            _ => None,
        };
        let tell = self.scenario == RemoteScenario::Tell;
        let (target, meets_target) = if tell {
            (
                format!("msa ≥ {TARGET_TELL_RATIO:.2}× raw TCP msg/s"),
                ratio >= TARGET_TELL_RATIO,
            )
        } else {
            (
                format!("p50 ≤ {TARGET_ASK_P50_RATIO:.1}× baseline p50"),
                p50_ratio.is_some_and(|r| r <= TARGET_ASK_P50_RATIO),
            )
        };
        RemoteRecord {
            scenario: self.scenario.name(),
            cpus: self.cpus.label(),
            threads: self.threads.clone(),
            messages: msa.messages,
            rounds: self.msa.len(),
            secs: round6(msa.secs),
            msgs_per_sec: msa.msgs_per_sec.round(),
            baseline: self.scenario.baseline(),
            baseline_secs: round6(raw.secs),
            baseline_msgs_per_sec: raw.msgs_per_sec.round(),
            ratio: round3(ratio),
            rounds_msgs_per_sec: msa.rounds_msgs_per_sec.iter().map(|r| r.round()).collect(),
            baseline_rounds_msgs_per_sec: raw
                .rounds_msgs_per_sec
                .iter()
                .map(|r| r.round())
                .collect(),
            target_ratio: tell.then_some(TARGET_TELL_RATIO),
            aim_msgs_per_sec: tell.then_some(AIM_TELL_MSGS_PER_SEC),
            meets_aim: tell.then_some(msa.msgs_per_sec >= AIM_TELL_MSGS_PER_SEC),
            overloaded_retries: tell.then_some(msa.retries),
            p50_us: msa.p50_us.map(round3),
            baseline_p50_us: raw.p50_us.map(round3),
            p50_ratio: p50_ratio.map(round3),
            target_p50_ratio: (!tell).then_some(TARGET_ASK_P50_RATIO),
            rounds_p50_ratio: msa
                .rounds_p50_us
                .iter()
                .zip(&raw.rounds_p50_us)
                .map(|(m, r)| round3(m / r))
                .collect(),
            rounds_p50_us: msa.rounds_p50_us.iter().copied().map(round3).collect(),
            baseline_rounds_p50_us: raw.rounds_p50_us.iter().copied().map(round3).collect(),
            pooled_p50_us: pooled(&msa, 0),
            p99_us: pooled(&msa, 1),
            p999_us: pooled(&msa, 2),
            baseline_pooled_p50_us: pooled(&raw, 0),
            baseline_p99_us: pooled(&raw, 1),
            baseline_p999_us: pooled(&raw, 2),
            target,
            meets_target,
            verdict: verdict(meets_target),
            tls: self.tls_record(&msa, &raw),
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
        "Two processes on loopback, {rounds} interleaved rounds per side. Throughput: median of\n\
         the rounds; baseline = raw tokio TCP with {FRAME_BYTES}-byte frames in the same rounds;\n\
         ratio = msa ÷ baseline."
    );
    let [a, b, c, d, e, f] = [
        "scenario",
        "CPUs",
        "messages",
        "msa msg/s",
        "base msg/s",
        "ratio",
    ];
    let _ = writeln!(
        out,
        "{a:<19} {b:<10} {c:>11} {d:>11} {e:>11} {f:>8}  target"
    );
    for r in &records {
        let target = match r.target_ratio {
            Some(_) => format!(
                "{} {}; aim {} msg/s {}",
                r.target,
                verdict(r.meets_target),
                si(r.aim_msgs_per_sec.unwrap_or(f64::NAN)),
                if r.meets_aim == Some(true) {
                    "reached"
                } else {
                    "not reached"
                }
            ),
            None => "(see latency)".into(),
        };
        let _ = writeln!(
            out,
            "{:<19} {:<10} {:>11} {:>11} {:>11} {:>7.3}×  {}",
            r.scenario,
            r.cpus,
            thousands(r.messages),
            si(r.msgs_per_sec),
            si(r.baseline_msgs_per_sec),
            r.ratio,
            target
        );
    }
    let asks: Vec<&RemoteRecord> = records.iter().filter(|r| r.p50_us.is_some()).collect();
    if !asks.is_empty() {
        let _ = writeln!(
            out,
            "\nRound-trip latency in µs, msa / baseline. p50: median of the rounds' p50s;\n\
             p99 and p99.9: over every round trip of every round."
        );
        let [a, b, c, d, e, f, g] = [
            "scenario",
            "CPUs",
            "p50",
            "p50 ratio",
            "rounds' ratios",
            "p99",
            "p99.9",
        ];
        let _ = writeln!(
            out,
            "{a:<19} {b:<10} {c:>15} {d:>10} {e:>21} {f:>17} {g:>17}  target"
        );
        for r in asks {
            let pair = |a: Option<f64>, b: Option<f64>| {
                format!(
                    "{:.1} / {:.1}",
                    a.unwrap_or(f64::NAN),
                    b.unwrap_or(f64::NAN)
                )
            };
            let ratios = r
                .rounds_p50_ratio
                .iter()
                .map(|x| format!("{x:.2}"))
                .collect::<Vec<_>>()
                .join(" ");
            let _ = writeln!(
                out,
                "{:<19} {:<10} {:>15} {:>9.2}× {:>21} {:>17} {:>17}  {} {}",
                r.scenario,
                r.cpus,
                pair(r.p50_us, r.baseline_p50_us),
                r.p50_ratio.unwrap_or(f64::NAN),
                ratios,
                pair(r.p99_us, r.baseline_p99_us),
                pair(r.p999_us, r.baseline_p999_us),
                r.target,
                r.verdict
            );
        }
    }
    let tls: Vec<(&RemoteRecord, &TlsRecord)> = records
        .iter()
        .filter_map(|r| Some((r, r.tls.as_ref()?)))
        .collect();
    if !tls.is_empty() {
        let _ = writeln!(
            out,
            "\nOver mutual TLS, same rounds (plaintext and TLS nodes take turns at going first).\n\
             tls ratio: tell = TLS msg/s ÷ plaintext msg/s; asks = TLS p50 ÷ plaintext p50."
        );
        let [a, b, c, d, e, f] = [
            "scenario",
            "TLS msg/s",
            "TLS p50 µs",
            "tls ratio",
            "rounds' ratios",
            "TLS/base",
        ];
        let _ = writeln!(
            out,
            "{a:<19} {b:>11} {c:>11} {d:>10} {e:>21} {f:>9}  target"
        );
        for (r, t) in tls {
            let ratios = t
                .tls_rounds_ratio
                .iter()
                .map(|x| format!("{x:.2}"))
                .collect::<Vec<_>>()
                .join(" ");
            let p50 = t
                .tls_p50_us
                .map_or_else(|| "-".into(), |p| format!("{p:.1}"));
            let _ = writeln!(
                out,
                "{:<19} {:>11} {:>11} {:>9.3}× {:>21} {:>8.3}×  {} {}",
                r.scenario,
                si(t.tls_msgs_per_sec),
                p50,
                t.tls_ratio,
                ratios,
                t.tls_baseline_ratio,
                t.tls_target,
                t.tls_verdict
            );
        }
    }
    for r in records.iter().filter(|r| r.overloaded_retries.is_some()) {
        let _ = writeln!(
            out,
            "\n{}: {} tells per round (median) found the outbound queue full and were retried.",
            r.scenario,
            thousands(r.overloaded_retries.unwrap_or(0.0) as u64)
        );
    }
    let _ = writeln!(out, "\nBaselines and threads:");
    for r in &records {
        let _ = writeln!(
            out,
            "  {}: baseline {}.\n    Threads: {}",
            r.scenario, r.baseline, r.threads
        );
    }
    out
}

/// The charts of `msa bench remote --html`, from the same records and
/// summaries as the table, which follows them.
pub(crate) fn html_sections(comparisons: &[RemoteComparison]) -> Vec<Section> {
    let records: Vec<RemoteRecord> = comparisons.iter().map(RemoteComparison::record).collect();
    let rounds = records.first().map_or(0, |r| r.rounds);
    let mut throughput = BarChart::new(
        format!("Throughput (median of {rounds} interleaved rounds per side)"),
        Unit::PerSec("msg/s"),
    );
    for r in &records {
        let mut bars = vec![
            ("msa", r.msgs_per_sec),
            ("raw TCP baseline", r.baseline_msgs_per_sec),
        ];
        if let Some(t) = &r.tls {
            bars.push(("msa over mutual TLS", t.tls_msgs_per_sec));
        }
        throughput = throughput.group(Group::new(
            format!("{} (CPUs {}), ratio {:.3}×", r.scenario, r.cpus, r.ratio),
            &bars,
        ));
    }
    let mut section = Section::new("msa bench remote: two processes on loopback")
        .note(
            "Baseline: raw tokio TCP between the same two processes, measured in the same \
             rounds; ratio = msa ÷ baseline.",
        )
        .chart(throughput);
    for c in comparisons {
        let mut sides = vec![
            ("msa", summarize(&c.msa).pooled),
            ("raw TCP baseline", summarize(&c.raw).pooled),
        ];
        if !c.tls.is_empty() {
            sides.push(("msa over mutual TLS", summarize(&c.tls).pooled));
        }
        let sides: Vec<(&str, Percentiles)> = sides
            .into_iter()
            .filter_map(|(n, p)| Some((n, p?)))
            .collect();
        let Some(first) = sides.first() else { continue };
        let mut chart = BarChart::new(
            format!(
                "{}: round-trip latency over every round trip of every round",
                c.scenario.name()
            ),
            Unit::Micros,
        )
        .scaled_per_group();
        for (i, (label, _)) in first.1.charted().into_iter().enumerate() {
            let bars: Vec<(&str, f64)> =
                sides.iter().map(|(n, p)| (*n, p.charted()[i].1)).collect();
            chart = chart.group(Group::new(label, &bars));
        }
        section = section.chart(chart);
    }
    vec![section.text(table(comparisons))]
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::measure::latency_histogram;
    use super::*;

    fn ask_round(p50_ns: u64) -> Measurement {
        let mut h = latency_histogram().unwrap();
        for _ in 0..10 {
            h.record(p50_ns).unwrap();
        }
        Measurement {
            messages: 10,
            elapsed: Duration::from_millis(1),
            latency_ns: Some(h),
            retries: 0,
        }
    }

    #[test]
    fn ask_p50_is_the_median_of_the_rounds_p50s() {
        let mut c = RemoteComparison::new(RemoteScenario::AskNatural, "t", Cpus::KeptAwake);
        // A slow outlier round must not move the p50.
        c.msa = [10_000, 11_000, 90_000].map(ask_round).to_vec();
        c.raw = [8_000, 8_000, 8_000].map(ask_round).to_vec();
        let r = c.record();
        assert_eq!(r.scenario, "remote_ask_natural");
        assert_eq!(r.cpus, "kept awake");
        let p50 = r.p50_us.unwrap();
        assert!((10.9..=11.1).contains(&p50), "p50 {p50}");
        assert_eq!(r.rounds_p50_us.len(), 3);
        assert_eq!(r.rounds_p50_ratio.len(), 3);
        // 11 / 8 = 1.375 ≤ 1.5.
        assert!(r.meets_target, "{r:?}");
        assert_eq!(r.verdict, "met");
        // Without --tls, no TLS fields.
        assert!(r.tls.is_none());
    }

    fn tell_round(per_sec: u64) -> Measurement {
        Measurement {
            messages: per_sec,
            elapsed: Duration::from_secs(1),
            latency_ns: None,
            retries: 0,
        }
    }

    #[test]
    fn tls_ratio_compares_tls_with_plaintext_of_the_same_rounds() {
        let mut c = RemoteComparison::new(RemoteScenario::Tell, "t", Cpus::Idle);
        c.msa = [1_000_000, 1_200_000, 1_100_000].map(tell_round).to_vec();
        c.tls = [500_000, 720_000, 660_000].map(tell_round).to_vec();
        c.raw = [10_000_000; 3].map(tell_round).to_vec();
        let t = c.record().tls.expect("TLS fields");
        // Medians: 660k / 1.1M = 0.6, the target exactly.
        assert!((t.tls_ratio - 0.6).abs() < 1e-9, "{t:?}");
        assert_eq!(t.tls_rounds_ratio, vec![0.5, 0.6, 0.6]);
        assert_eq!(t.tls_target_ratio, TARGET_TLS_TELL_RATIO);
        assert!(t.tls_meets_target, "{t:?}");
        c.tls[2] = tell_round(600_000);
        let t = c.record().tls.unwrap();
        assert!(!t.tls_meets_target, "{t:?}");
        assert_eq!(t.tls_verdict, "MISSED");

        let mut a = RemoteComparison::new(RemoteScenario::Ask, "t", Cpus::Idle);
        a.msa = [10_000, 10_000, 10_000].map(ask_round).to_vec();
        a.raw = [8_000, 8_000, 8_000].map(ask_round).to_vec();
        a.tls = [12_000, 14_000, 30_000].map(ask_round).to_vec();
        let rec = a.record();
        let t = rec.tls.as_ref().unwrap();
        // Median TLS p50 14 µs ÷ 10 µs = 1.4 > 1.3.
        assert!((t.tls_ratio - 1.4).abs() < 0.01, "{t:?}");
        assert!(!t.tls_meets_target);
        let json = serde_json::to_value(&rec).unwrap();
        assert_eq!(json["tls_target_ratio"], 1.3);
        assert_eq!(json["tls_meets_target"], false);
        assert!(table(&[a]).contains("TLS p50 ≤ 1.3× plaintext p50 MISSED"));
    }
}
