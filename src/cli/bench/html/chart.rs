//! Inline SVG bar charts for the HTML report, written by hand: no script,
//! no stylesheet, no external reference (not even an `xmlns`, which inline
//! SVG in HTML does not need).
//!
//! A chart is groups of horizontal bars (a scenario, or a percentile), one
//! bar per series (msa, its baseline, ...), all on one linear scale whose
//! full width is the largest value of the chart. Every bar is labelled with
//! its series and its value, so the chart reads without a legend.

use std::fmt::Write as _;

use super::escape;

/// Width of the label column, in px.
const LABEL_W: f64 = 210.0;
/// Width of the longest bar, in px.
const BAR_W: f64 = 380.0;
/// Room for the value after a bar, in px.
const VALUE_W: f64 = 130.0;
/// Height of a bar row, in px.
const ROW_H: f64 = 20.0;
/// Height of a group's heading row, in px.
const HEAD_H: f64 = 22.0;
/// Height of the title row, in px.
const TITLE_H: f64 = 26.0;

/// Fill colours of the series, in order of first appearance.
const PALETTE: [&str; 6] = [
    "#2f6fb0", "#9a9a9a", "#d08a1e", "#3a9a5b", "#8d4fb0", "#b03a3a",
];

/// How a chart writes its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    /// A rate with an SI suffix and a unit, e.g. `1.23M msg/s`.
    PerSec(&'static str),
    /// Microseconds, e.g. `12.3 µs`.
    Micros,
    /// KiB, e.g. `1.88 KiB`.
    KiB,
    /// Milliseconds, e.g. `12.3 ms` (the peers' spawn time; msa's own
    /// benches chart none).
    #[allow(dead_code)]
    Millis,
    /// A ratio, e.g. `0.87×` (the peers' msa ÷ peer; msa's own benches
    /// chart none).
    #[allow(dead_code)]
    Ratio,
}

/// `x` with an SI suffix: `12.35M`, `987.6k`, `12`.
pub(crate) fn si(x: f64) -> String {
    if x >= 1e9 {
        format!("{:.2}G", x / 1e9)
    } else if x >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1}k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

impl Unit {
    fn format(self, v: f64) -> String {
        if !v.is_finite() {
            return "n/a".into();
        }
        match self {
            Self::PerSec(u) => format!("{} {u}", si(v)),
            Self::Micros => format!("{v:.1} µs"),
            Self::KiB => format!("{v:.2} KiB"),
            Self::Millis => format!("{v:.1} ms"),
            Self::Ratio => format!("{v:.2}×"),
        }
    }
}

/// One bar: a series' value within a group.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Bar {
    pub(crate) series: String,
    pub(crate) value: f64,
}

/// A group of bars under one heading.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Group {
    pub(crate) label: String,
    pub(crate) bars: Vec<Bar>,
}

impl Group {
    /// A group from `(series, value)` pairs.
    pub(crate) fn new(label: impl Into<String>, bars: &[(&str, f64)]) -> Self {
        Self {
            label: label.into(),
            bars: bars
                .iter()
                .map(|(s, v)| Bar {
                    series: (*s).to_string(),
                    value: *v,
                })
                .collect(),
        }
    }
}

/// A horizontal grouped bar chart.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BarChart {
    pub(crate) title: String,
    pub(crate) unit: Unit,
    pub(crate) groups: Vec<Group>,
    /// Each group on its own scale (its largest bar full width) rather than
    /// one scale for the chart: for latency percentiles, where the max would
    /// flatten every p50 bar.
    pub(crate) per_group: bool,
}

/// The length in px of a bar of `value` when `max` fills `width`: 0 for a
/// value that is not a positive finite number or when there is no positive
/// maximum; never longer than `width`.
pub(crate) fn bar_length(value: f64, max: f64, width: f64) -> f64 {
    if !(value.is_finite() && value > 0.0 && max.is_finite() && max > 0.0) {
        return 0.0;
    }
    (value / max * width).min(width)
}

impl BarChart {
    /// A chart with no groups yet.
    pub(crate) fn new(title: impl Into<String>, unit: Unit) -> Self {
        Self {
            title: title.into(),
            unit,
            groups: Vec::new(),
            per_group: false,
        }
    }

    /// Scales each group on its own (see [`BarChart::per_group`]).
    pub(crate) fn scaled_per_group(mut self) -> Self {
        self.per_group = true;
        self
    }

    /// Adds a group.
    pub(crate) fn group(mut self, g: Group) -> Self {
        self.groups.push(g);
        self
    }

    /// The largest finite value of `bars` (0 when there is none).
    fn max<'a>(bars: impl IntoIterator<Item = &'a Bar>) -> f64 {
        bars.into_iter()
            .map(|b| b.value)
            .filter(|v| v.is_finite())
            .fold(0.0, f64::max)
    }

    /// The series in order of first appearance (their colours).
    fn series(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for b in self.groups.iter().flat_map(|g| &g.bars) {
            if !out.contains(&b.series.as_str()) {
                out.push(&b.series);
            }
        }
        out
    }

    /// The chart as an `<svg>` element.
    pub(crate) fn svg(&self) -> String {
        let width = LABEL_W + BAR_W + VALUE_W;
        let bars: usize = self.groups.iter().map(|g| g.bars.len()).sum();
        let empty = bars == 0;
        let height = TITLE_H
            + if empty {
                ROW_H
            } else {
                self.groups.len() as f64 * HEAD_H + bars as f64 * ROW_H
            }
            + 6.0;
        let mut out = String::new();
        let _ = write!(
            out,
            "<svg class=\"chart\" width=\"{width}\" height=\"{height}\" \
             viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"{t}\">\
             <title>{t}</title>\
             <text x=\"0\" y=\"17\" class=\"ct\">{t}</text>",
            t = escape(&if self.per_group {
                format!("{} (bars scaled within each group)", self.title)
            } else {
                self.title.clone()
            })
        );
        if empty {
            let _ = write!(
                out,
                "<text x=\"0\" y=\"{}\" class=\"cv\">no data</text></svg>",
                TITLE_H + 14.0
            );
            return out;
        }
        let chart_max = Self::max(self.groups.iter().flat_map(|g| &g.bars));
        let series = self.series();
        let mut y = TITLE_H;
        for g in &self.groups {
            let _ = write!(
                out,
                "<text x=\"0\" y=\"{}\" class=\"cg\">{}</text>",
                y + 16.0,
                escape(&g.label)
            );
            y += HEAD_H;
            let max = if self.per_group {
                Self::max(&g.bars)
            } else {
                chart_max
            };
            for b in &g.bars {
                let i = series.iter().position(|s| *s == b.series).unwrap_or(0);
                let colour = PALETTE[i % PALETTE.len()];
                let len = bar_length(b.value, max, BAR_W);
                let _ = write!(
                    out,
                    "<text x=\"{lx}\" y=\"{ty}\" class=\"cl\" text-anchor=\"end\">{s}</text>\
                     <rect x=\"{LABEL_W}\" y=\"{ry}\" width=\"{len:.1}\" height=\"{h}\" \
                     fill=\"{colour}\"><title>{s}: {v}</title></rect>\
                     <text x=\"{vx:.1}\" y=\"{ty}\" class=\"cv\">{v}</text>",
                    lx = LABEL_W - 6.0,
                    ty = y + 14.0,
                    s = escape(&b.series),
                    ry = y + 3.0,
                    h = ROW_H - 6.0,
                    vx = LABEL_W + len + 6.0,
                    v = escape(&self.unit.format(b.value)),
                );
                y += ROW_H;
            }
        }
        out.push_str("</svg>");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_linearly_to_the_largest_value() {
        assert_eq!(bar_length(50.0, 100.0, 400.0), 200.0);
        assert_eq!(bar_length(100.0, 100.0, 400.0), 400.0);
        // Never past the full width, never negative or NaN.
        assert_eq!(bar_length(150.0, 100.0, 400.0), 400.0);
        assert_eq!(bar_length(-1.0, 100.0, 400.0), 0.0);
        assert_eq!(bar_length(f64::NAN, 100.0, 400.0), 0.0);
        assert_eq!(bar_length(f64::INFINITY, 100.0, 400.0), 0.0);
        assert_eq!(bar_length(5.0, 0.0, 400.0), 0.0);
    }

    #[test]
    fn the_longest_bar_fills_the_width_and_others_follow() {
        let c = BarChart::new("t", Unit::PerSec("msg/s")).group(Group::new(
            "tell",
            &[("msa", 2_000_000.0), ("raw", 4_000_000.0)],
        ));
        let svg = c.svg();
        assert!(svg.contains(&format!("width=\"{:.1}\"", BAR_W)), "{svg}");
        assert!(
            svg.contains(&format!("width=\"{:.1}\"", BAR_W / 2.0)),
            "{svg}"
        );
        assert!(svg.contains("2.00M msg/s") && svg.contains("4.00M msg/s"));
        // Two series, two colours.
        assert!(svg.contains(PALETTE[0]) && svg.contains(PALETTE[1]));
    }

    #[test]
    fn per_group_scaling_fills_the_width_in_every_group() {
        let c = BarChart::new("t", Unit::Micros)
            .group(Group::new("p50", &[("msa", 2.0), ("raw", 1.0)]))
            .group(Group::new("max", &[("msa", 4_000.0), ("raw", 40.0)]));
        let full = format!("width=\"{:.1}\"", BAR_W);
        // One scale: only the max bar is full width; p50's bars are slivers.
        assert_eq!(c.svg().matches(&full).count(), 1);
        let per_group = c.scaled_per_group().svg();
        assert_eq!(per_group.matches(&full).count(), 2, "{per_group}");
        assert!(per_group.contains(&format!("width=\"{:.1}\"", BAR_W / 2.0)));
    }

    #[test]
    fn an_empty_chart_says_so() {
        let svg = BarChart::new("nothing", Unit::Micros).svg();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("no data"));
        assert!(!svg.contains("<rect"));
        // A group with no bars is no data either.
        let svg = BarChart::new("n", Unit::Micros)
            .group(Group::new("g", &[]))
            .svg();
        assert!(svg.contains("no data"));
    }

    #[test]
    fn all_zero_or_missing_values_draw_empty_bars() {
        let svg = BarChart::new("z", Unit::Micros)
            .group(Group::new("p50", &[("msa", 0.0), ("raw", f64::NAN)]))
            .svg();
        assert_eq!(svg.matches("width=\"0.0\"").count(), 2, "{svg}");
        assert!(svg.contains("n/a"));
    }

    #[test]
    fn every_text_is_escaped() {
        let svg = BarChart::new("<script>&", Unit::KiB)
            .group(Group::new("a\"<b>", &[("x'<y>", 1.0)]))
            .svg();
        assert!(!svg.contains("<script>"), "{svg}");
        assert!(!svg.contains("<b>") && !svg.contains("<y>"), "{svg}");
        assert!(svg.contains("&lt;script&gt;&amp;"));
        assert!(svg.contains("a&quot;&lt;b&gt;"));
        assert!(svg.contains("x&#39;&lt;y&gt;"));
    }
}
