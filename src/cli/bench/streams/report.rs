//! The report of `msa bench streams`: medians over rounds, the issue's
//! targets (publish ≥ 0.8× tell in the same run), a table, JSON lines, and
//! the charts of `--html`, all from one [`StreamsRecord`] per scenario.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use super::super::html::{BarChart, Group, Section, Unit};
use super::super::report::{median, round3, round6, si, thousands, verdict};

/// Publish throughput at least this share of the tells' in the same run.
pub(crate) const TARGET_RATIO: f64 = 0.8;

/// A scenario of `msa bench streams`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum StreamsScenario {
    /// One local subscribing service vs tells to it.
    Publish1,
    /// `--subscribers` local subscribing services vs a tell to each.
    Fanout,
    /// One subscribing service in another process vs remote tells to it.
    Remote1,
}

impl StreamsScenario {
    /// Every scenario, in the order they run.
    pub(crate) const ALL: [Self; 3] = [Self::Publish1, Self::Fanout, Self::Remote1];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Publish1 => "publish1",
            Self::Fanout => "fanout",
            Self::Remote1 => "remote1",
        }
    }

    /// Where the sides ran, for the report.
    fn placement(self) -> &'static str {
        match self {
            Self::Publish1 | Self::Fanout => {
                "one thread: a local node, its subscribing services and the publishing task"
            }
            Self::Remote1 => {
                "two processes on loopback (msa bench remote's): publishing/telling loop on \
                 the caller node's 1 arbiter with its connection; the subscribing service on \
                 the child's node (1 arbiter)"
            }
        }
    }

    /// What msa aims for in deliveries/s (reported, no verdict hangs on it).
    fn aim(self) -> Option<f64> {
        match self {
            Self::Publish1 => None,
            Self::Fanout => Some(10_000_000.0),
            Self::Remote1 => Some(1_000_000.0),
        }
    }
}

/// One timed run of one side.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Run {
    pub(crate) elapsed: Duration,
    /// Sends made again after the connection had no room (remote only).
    pub(crate) retries: u64,
}

/// Every round of both sides of one scenario.
#[derive(Debug)]
pub(crate) struct StreamsComparison {
    pub(crate) scenario: StreamsScenario,
    pub(crate) events: u64,
    pub(crate) subscribers: u64,
    pub(crate) publish: Vec<Run>,
    pub(crate) tell: Vec<Run>,
}

/// One JSON line.
#[derive(Debug, Serialize)]
pub(crate) struct StreamsRecord {
    scenario: &'static str,
    threads: &'static str,
    events: u64,
    subscribers: u64,
    /// Events × subscribers per round per side.
    deliveries: u64,
    rounds: usize,
    publish_secs: f64,
    /// Deliveries per second by publishing (median of the rounds).
    publish_per_sec: f64,
    tell_secs: f64,
    /// Deliveries per second by telling (median of the rounds).
    tell_per_sec: f64,
    /// `publish_per_sec` ÷ `tell_per_sec`.
    ratio: f64,
    rounds_publish_per_sec: Vec<f64>,
    rounds_tell_per_sec: Vec<f64>,
    target_ratio: f64,
    meets_target: bool,
    verdict: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    aim_per_sec: Option<f64>,
    /// Remote: median per round of publishes made again after a dropped copy.
    #[serde(skip_serializing_if = "Option::is_none")]
    publish_retries: Option<f64>,
    /// Remote: median per round of tells made again after `Overloaded`.
    #[serde(skip_serializing_if = "Option::is_none")]
    tell_retries: Option<f64>,
}

impl StreamsComparison {
    pub(crate) fn record(&self) -> StreamsRecord {
        let deliveries = self.events * self.subscribers;
        let rates = |runs: &[Run]| -> Vec<f64> {
            runs.iter()
                .map(|r| deliveries as f64 / r.elapsed.as_secs_f64().max(f64::MIN_POSITIVE))
                .collect()
        };
        let secs = |runs: &[Run]| -> f64 {
            median(
                &runs
                    .iter()
                    .map(|r| r.elapsed.as_secs_f64())
                    .collect::<Vec<_>>(),
            )
        };
        let retries = |runs: &[Run]| -> f64 {
            median(&runs.iter().map(|r| r.retries as f64).collect::<Vec<_>>())
        };
        let (p, t) = (rates(&self.publish), rates(&self.tell));
        let (pm, tm) = (median(&p), median(&t));
        let ratio = pm / tm;
        let meets = ratio >= TARGET_RATIO;
        let remote = self.scenario == StreamsScenario::Remote1;
        StreamsRecord {
            scenario: self.scenario.name(),
            threads: self.scenario.placement(),
            events: self.events,
            subscribers: self.subscribers,
            deliveries,
            rounds: self.publish.len(),
            publish_secs: round6(secs(&self.publish)),
            publish_per_sec: pm.round(),
            tell_secs: round6(secs(&self.tell)),
            tell_per_sec: tm.round(),
            ratio: round3(ratio),
            rounds_publish_per_sec: p.iter().map(|r| r.round()).collect(),
            rounds_tell_per_sec: t.iter().map(|r| r.round()).collect(),
            target_ratio: TARGET_RATIO,
            meets_target: meets,
            verdict: verdict(meets),
            aim_per_sec: self.scenario.aim(),
            publish_retries: remote.then(|| retries(&self.publish)),
            tell_retries: remote.then(|| retries(&self.tell)),
        }
    }
}

/// One JSON object per scenario, one per line.
pub(crate) fn json_lines(comparisons: &[StreamsComparison]) -> serde_json::Result<String> {
    let mut out = String::new();
    for c in comparisons {
        out.push_str(&serde_json::to_string(&c.record())?);
        out.push('\n');
    }
    Ok(out)
}

/// The human-readable report.
pub(crate) fn table(comparisons: &[StreamsComparison]) -> String {
    let mut out = String::new();
    let rounds = comparisons.first().map_or(0, |c| c.publish.len());
    let _ = writeln!(
        out,
        "Publish vs tell of the same events to the same services, median of {rounds} round(s)\n\
         per side; deliveries/s = events x subscribers / time; ratio = publish ÷ tell."
    );
    let [a, b, c, d, e, f] = [
        "scenario",
        "events",
        "subscribers",
        "publish/s",
        "tell/s",
        "ratio",
    ];
    let _ = writeln!(out, "{a:<9} {b:>10} {c:>11} {d:>11} {e:>11} {f:>7}  target");
    for c in comparisons {
        let r = c.record();
        let retries = match (r.publish_retries, r.tell_retries) {
            (Some(p), Some(t)) => format!("; retries (median) publish {p:.0}, tell {t:.0}"),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "{:<9} {:>10} {:>11} {:>11} {:>11} {:>6.2}×  ≥{:.2} {}{}",
            r.scenario,
            thousands(r.events),
            r.subscribers,
            si(r.publish_per_sec),
            si(r.tell_per_sec),
            r.ratio,
            r.target_ratio,
            r.verdict,
            retries
        );
    }
    for c in comparisons {
        let _ = writeln!(out, "{}: {}.", c.scenario.name(), c.scenario.placement());
    }
    out
}

/// The charts of `msa bench streams --html`; the table follows them.
pub(crate) fn html_sections(comparisons: &[StreamsComparison]) -> Vec<Section> {
    let mut chart = BarChart::new(
        "Deliveries per second: publish to a topic vs tell, same run",
        Unit::PerSec("deliveries/s"),
    );
    for c in comparisons {
        let r = c.record();
        chart = chart.group(Group::new(
            format!(
                "{} ({} subscriber(s)), ratio {:.2}× (target ≥ {:.1}×: {})",
                r.scenario, r.subscribers, r.ratio, r.target_ratio, r.verdict
            ),
            &[("publish", r.publish_per_sec), ("tell", r.tell_per_sec)],
        ));
    }
    vec![Section::new("msa bench streams: topics vs tells")
        .chart(chart)
        .text(table(comparisons))]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(millis: &[u64]) -> Vec<Run> {
        millis
            .iter()
            .map(|&m| Run {
                elapsed: Duration::from_millis(m),
                retries: 1,
            })
            .collect()
    }

    #[test]
    fn ratio_is_of_the_median_deliveries_per_second() {
        let c = StreamsComparison {
            scenario: StreamsScenario::Remote1,
            events: 1_000,
            subscribers: 1,
            // 1,000 events: publish medians 2 s (500/s), tell 1 s (1,000/s).
            publish: runs(&[1_000, 2_000, 4_000]),
            tell: runs(&[1_000, 1_000, 1_000]),
        };
        let r = c.record();
        assert_eq!(r.publish_per_sec, 500.0);
        assert_eq!(r.tell_per_sec, 1_000.0);
        assert_eq!(r.ratio, 0.5);
        assert!(!r.meets_target);
        assert_eq!(r.verdict, "MISSED");
        assert_eq!(r.publish_retries, Some(1.0));
        let v: serde_json::Value = serde_json::from_str(&json_lines(&[c]).unwrap()).unwrap();
        assert_eq!(v["scenario"], "remote1");
        assert_eq!(v["aim_per_sec"], 1_000_000.0);
    }

    #[test]
    fn fanout_counts_every_subscriber() {
        let c = StreamsComparison {
            scenario: StreamsScenario::Fanout,
            events: 100,
            subscribers: 10,
            publish: runs(&[1_000]),
            tell: runs(&[1_000]),
        };
        let r = c.record();
        assert_eq!(r.deliveries, 1_000);
        assert_eq!(r.publish_per_sec, 1_000.0);
        assert!(r.meets_target);
        assert!(r.publish_retries.is_none());
        let t = table(&[c]);
        assert!(t.contains("fanout") && t.contains("met"), "{t}");
    }
}
