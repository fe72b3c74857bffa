//! `--html FILE`: one self-contained HTML file per run of `msa bench`: the
//! charts (inline SVG, see [`chart`]), the text report, the machine (cores,
//! load average before and after), the command line and the date. No
//! script, no external stylesheet, font or image: it opens offline.
//!
//! Each bench builds its [`Section`]s from the very result structs its
//! table and JSON lines come from; nothing here measures anything.
//!
//! Shared with the peers program (`peers/src/main.rs` includes this file
//! and its chart module with `#[path]`): it may use only std, `anyhow` and
//! `time`, nothing of msa's own.

// A path attribute, so that the file resolves alike when it is included
// with `#[path]` from peers/ (where a plain `mod chart;` would be looked
// for beside this file, not under html/).
#[path = "html/chart.rs"]
mod chart;

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;

pub(crate) use chart::{si, BarChart, Group, Unit};

/// Escapes text for HTML (element content and quoted attributes).
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One part of the report: a heading, notes, charts, and preformatted text
/// (the bench's own table).
#[derive(Debug, Clone, Default)]
pub(crate) struct Section {
    pub(crate) heading: String,
    pub(crate) notes: Vec<String>,
    pub(crate) charts: Vec<BarChart>,
    pub(crate) text: Option<String>,
}

impl Section {
    pub(crate) fn new(heading: impl Into<String>) -> Self {
        Self {
            heading: heading.into(),
            ..Self::default()
        }
    }

    pub(crate) fn note(mut self, n: impl Into<String>) -> Self {
        self.notes.push(n.into());
        self
    }

    pub(crate) fn chart(mut self, c: BarChart) -> Self {
        self.charts.push(c);
        self
    }

    pub(crate) fn text(mut self, t: impl Into<String>) -> Self {
        self.text = Some(t.into());
        self
    }
}

/// The machine and the run, noted when the bench starts.
#[derive(Debug, Clone)]
pub(crate) struct RunInfo {
    command: String,
    started: String,
    cores: usize,
    load_before: Option<String>,
}

/// The first three fields of /proc/loadavg (1, 5 and 15 minutes).
fn load_average() -> Option<String> {
    let s = std::fs::read_to_string("/proc/loadavg").ok()?;
    Some(s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
}

/// Now, in UTC, as `2026-12-05 23:10:00 UTC`.
fn now_utc() -> String {
    let t = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

impl RunInfo {
    /// Notes the command line, the date, the cores and the load now.
    pub(crate) fn now() -> Self {
        Self {
            command: std::env::args().collect::<Vec<_>>().join(" "),
            started: now_utc(),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            load_before: load_average(),
        }
    }
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;max-width:60em;color:#222}\
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ccc}\
dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}dt{font-weight:bold}\
dd{margin:0}pre{background:#f6f6f6;padding:1em;overflow-x:auto;font-size:.85em}\
svg.chart{display:block;margin:1em 0}.ct{font-weight:bold;font-size:14px}\
.cg{font-size:13px;font-weight:bold}.cl,.cv{font-size:12px}";

/// The whole report as one HTML document.
pub(crate) fn render(title: &str, run: &RunInfo, sections: &[Section]) -> String {
    let mut out = String::new();
    let t = escape(title);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>{t}</title><style>{STYLE}</style></head><body>\n<h1>{t}</h1>\n<dl>\
         <dt>command</dt><dd><code>{cmd}</code></dd>\
         <dt>started</dt><dd>{start}</dd><dt>finished</dt><dd>{end}</dd>\
         <dt>cores</dt><dd>{cores}</dd>\
         <dt>load average (1, 5, 15 min)</dt><dd>{lb} before, {la} after</dd></dl>\n",
        cmd = escape(&run.command),
        start = escape(&run.started),
        end = escape(&now_utc()),
        cores = run.cores,
        lb = escape(run.load_before.as_deref().unwrap_or("unknown")),
        la = escape(load_average().as_deref().unwrap_or("unknown")),
    );
    for s in sections {
        let _ = writeln!(out, "<section><h2>{}</h2>", escape(&s.heading));
        for n in &s.notes {
            let _ = writeln!(out, "<p>{}</p>", escape(n));
        }
        for c in &s.charts {
            out.push_str(&c.svg());
            out.push('\n');
        }
        if let Some(t) = &s.text {
            let _ = writeln!(out, "<pre>{}</pre>", escape(t));
        }
        out.push_str("</section>\n");
    }
    out.push_str("</body></html>\n");
    out
}

/// Writes the report to `path`.
pub(crate) fn write(
    path: &Path,
    title: &str,
    run: &RunInfo,
    sections: &[Section],
) -> anyhow::Result<()> {
    std::fs::write(path, render(title, run, sections))
        .with_context(|| format!("writing the HTML report to {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_the_five_characters() {
        assert_eq!(
            escape(r#"<a href="x">&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(escape("plain µs ×"), "plain µs ×");
    }

    #[test]
    fn a_report_is_one_document_with_its_sections_escaped() {
        let run = RunInfo {
            command: "msa bench <x>".into(),
            started: "then".into(),
            cores: 2,
            load_before: Some("1.00 0.50 0.25".into()),
        };
        let s = Section::new("tell & ask")
            .note("a <note>")
            .chart(
                BarChart::new("throughput", Unit::PerSec("msg/s"))
                    .group(Group::new("tell", &[("msa", 1.0)])),
            )
            .text("a | b <c>");
        let html = render("<title>", &run, &[s]);
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.trim_end().ends_with("</html>"));
        assert_eq!(html.matches("<svg").count(), 1);
        assert_eq!(html.matches("</svg>").count(), 1);
        for raw in ["<x>", "<note>", "<c>", "<title><title>"] {
            assert!(!html.contains(raw), "unescaped {raw} in {html}");
        }
        assert!(html.contains("tell &amp; ask"));
        assert!(html.contains("1.00 0.50 0.25 before"));
        assert!(!html.contains("http://") && !html.contains("https://"));
        assert!(!html.contains("<script"));
    }
}
