//! `--html FILE`: the peers' table as a self-contained HTML report, written
//! by msa's own report writer and charts (src/cli/bench/html.rs, included
//! with `#[path]` in main.rs): per metric, a chart of every peer's figure
//! in each placement and a chart of msa's figure divided by each peer's,
//! then the Markdown table itself. No script, no external reference.

use std::path::Path;

use crate::html::{self, BarChart, Group, RunInfo, Section, Unit};
use crate::peer::Peer;
use crate::table::{self, Row};
use crate::Options;

/// The chart unit for a row's unit and the factor that turns the row's
/// figures into it (`M msg/s` is charted in msg/s with an SI suffix).
fn chart_unit(unit: &str) -> Option<(Unit, f64)> {
    match unit {
        "M msg/s" => Some((Unit::PerSec("msg/s"), 1e6)),
        "µs" => Some((Unit::Micros, 1.0)),
        "ms" => Some((Unit::Millis, 1.0)),
        "KiB" => Some((Unit::KiB, 1.0)),
        _ => None,
    }
}

/// msa's figure in `row` (NaN when msa was not measured).
fn msa_value(row: &Row) -> f64 {
    row.values
        .iter()
        .find(|(p, _)| *p == Peer::Msa)
        .map_or(f64::NAN, |(_, v)| *v)
}

/// The report's sections: one per metric (in the table's order), then the
/// table.
pub(crate) fn sections(o: &Options, cpu_state: &str, rows: &[Row]) -> Vec<Section> {
    let mut metrics: Vec<&str> = Vec::new();
    for r in rows {
        if !metrics.contains(&r.metric) {
            metrics.push(r.metric);
        }
    }
    let mut out = Vec::new();
    for metric in metrics {
        let rows: Vec<&Row> = rows.iter().filter(|r| r.metric == metric).collect();
        let unit = rows.first().map_or("", |r| r.unit);
        let mut s = Section::new(format!("{metric} ({unit})"));
        let throughput = unit.ends_with("/s");
        s = s.note(if throughput {
            "Higher is better. Ratio: msa ÷ peer; below 1 means msa is slower."
        } else {
            "Lower is better. Ratio: msa ÷ peer; above 1 means msa is slower."
        });
        match chart_unit(unit) {
            Some((chart_unit, factor)) => {
                let mut figures = BarChart::new(format!("{metric}, by placement"), chart_unit);
                let mut ratios = BarChart::new(format!("{metric}: msa ÷ peer"), Unit::Ratio);
                for r in &rows {
                    let bars: Vec<(&str, f64)> = r
                        .values
                        .iter()
                        .map(|(p, v)| (p.name(), v * factor))
                        .collect();
                    figures = figures.group(Group::new(r.placement, &bars));
                    let msa = msa_value(r);
                    let ratio: Vec<(&str, f64)> = r
                        .values
                        .iter()
                        .filter(|(p, _)| *p != Peer::Msa)
                        .map(|(p, v)| (p.name(), msa / v))
                        .collect();
                    ratios = ratios.group(Group::new(r.placement, &ratio));
                }
                s = s.chart(figures).chart(ratios);
            }
            None => s = s.note(format!("No chart for the unit {unit:?}; see the table.")),
        }
        out.push(s);
    }
    out.push(
        Section::new("Table")
            .note(format!("CPU: {cpu_state}."))
            .text(table::render(o, rows)),
    );
    out
}

/// Writes the report to `path`.
pub(crate) fn write(
    path: &Path,
    run: &RunInfo,
    o: &Options,
    cpu_state: &str,
    rows: &[Row],
) -> anyhow::Result<()> {
    html::write(
        path,
        "msa against raw actix, ractor and kameo (msa-peers)",
        run,
        &sections(o, cpu_state, rows),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> Options {
        Options {
            tells: 1000,
            asks: 100,
            spawn: 10,
            rounds: 1,
            keep_awake: false,
            peers: Peer::ALL.to_vec(),
            html: None,
        }
    }

    fn row(metric: &'static str, placement: &'static str, unit: &'static str, v: [f64; 4]) -> Row {
        Row {
            metric,
            placement,
            unit,
            values: Peer::ALL.into_iter().zip(v).collect(),
        }
    }

    /// A fixed table renders one figures chart and one ratio chart per
    /// metric, every peer named, ratios msa ÷ peer, the table as text, and
    /// every name escaped.
    #[test]
    fn a_fixed_table_renders_charts_ratios_and_escaped_names() {
        let rows = [
            row("tell", "same-thread", "M msg/s", [2.0, 4.0, 1.0, 8.0]),
            row("tell", "<b>embedded</b>", "M msg/s", [1.0, 2.0, 1.0, 4.0]),
            row("ask p50", "same-thread", "µs", [10.0, 5.0, 20.0, 10.0]),
            row(
                "<script>alert(1)</script>",
                "same-thread",
                "KiB",
                [1.0, 1.0, 2.0, 4.0],
            ),
            row(
                "spawn + 1 msg each",
                "same-thread",
                "ms",
                [30.0, 15.0, 60.0, 30.0],
            ),
        ];
        let run = RunInfo::now();
        let html = html::render("peers", &run, &sections(&options(), "idle", &rows));
        // 4 metrics x (figures + ratios).
        assert_eq!(html.matches("<svg").count(), 8, "{html}");
        assert_eq!(html.matches("</svg>").count(), 8);
        for peer in ["msa", "actix", "ractor", "kameo"] {
            assert!(
                html.contains(&format!(">{peer}</text>")),
                "no bar for {peer}"
            );
        }
        // Figures in the charts' units, ratios msa ÷ peer.
        assert!(html.contains(">2.00M msg/s</text>"), "{html}");
        assert!(html.contains(">8.00M msg/s</text>"));
        assert!(html.contains(">10.0 µs</text>"));
        assert!(html.contains(">60.0 ms</text>"));
        assert!(html.contains(">4.00 KiB</text>"));
        assert!(html.contains(">0.50×</text>")); // tell, actix: 2 ÷ 4
        assert!(html.contains(">0.25×</text>")); // tell, kameo: 2 ÷ 8
        assert!(html.contains(">2.00×</text>")); // ask p50, actix: 10 ÷ 5
        assert!(html.contains("tell: msa ÷ peer"));
        // The table itself, escaped.
        assert!(html.contains("| tell | same-thread | M msg/s | 2.000 | 4.000 (0.50×) |"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("&lt;b&gt;embedded&lt;/b&gt;"));
        assert!(!html.contains("<script") && !html.contains("<b>"), "{html}");
        assert!(!html.contains("http://") && !html.contains("https://"));
    }

    /// An unknown unit gets a note instead of a chart.
    #[test]
    fn an_unknown_unit_is_noted_not_charted() {
        let rows = [row("odd", "same-thread", "furlongs", [1.0, 2.0, 3.0, 4.0])];
        let s = sections(&options(), "idle", &rows);
        assert!(s[0].charts.is_empty());
        assert!(s[0].notes.iter().any(|n| n.contains("furlongs")));
    }
}
