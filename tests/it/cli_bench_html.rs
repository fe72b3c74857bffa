//! `msa bench ... --html FILE` end to end with the real binary (debug
//! build, tiny sizes): the file is one well-formed document with inline SVG
//! charts naming the scenarios and their baselines, and nothing external.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::support::run;

/// A report file in the temp dir, removed when dropped.
struct Report(PathBuf);

impl Report {
    fn new(tag: &str) -> Report {
        let p =
            std::env::temp_dir().join(format!("msa-cli-test-{}-{tag}.html", std::process::id()));
        let _ = std::fs::remove_file(&p);
        Report(p)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }

    fn read(&self) -> String {
        std::fs::read_to_string(&self.0)
            .unwrap_or_else(|e| panic!("no report at {}: {e}", self.0.display()))
    }
}

impl Drop for Report {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Elements that have no end tag in HTML.
const VOID: [&str; 2] = ["meta", "br"];

/// Checks that every tag is closed in order, that no text holds a raw `<`
/// or `>`, and answers how many times each element occurs.
pub(crate) fn check_well_formed(html: &str) -> HashMap<String, usize> {
    let body = html
        .strip_prefix("<!DOCTYPE html>")
        .unwrap_or_else(|| panic!("no doctype: {}", &html[..html.len().min(80)]));
    let mut open: Vec<String> = Vec::new();
    let mut counts: HashMap<String, usize> = HashMap::new();
    let mut rest = body;
    while let Some(lt) = rest.find('<') {
        assert!(
            !rest[..lt].contains('>'),
            "a raw `>` in text: {:?}",
            &rest[..lt]
        );
        let gt = rest[lt..]
            .find('>')
            .unwrap_or_else(|| panic!("an unclosed tag at {:?}", &rest[lt..]))
            + lt;
        let tag = &rest[lt + 1..gt];
        assert!(!tag.contains('<'), "a raw `<` in text or a tag: {tag:?}");
        if let Some(name) = tag.strip_prefix('/') {
            let top = open
                .pop()
                .unwrap_or_else(|| panic!("</{name}> closes nothing"));
            assert_eq!(top, name, "</{name}> closes <{top}>");
        } else {
            let name = tag
                .split(|c: char| c.is_whitespace() || c == '/')
                .next()
                .unwrap()
                .to_string();
            assert!(!name.is_empty(), "an empty tag");
            *counts.entry(name.clone()).or_default() += 1;
            if !VOID.contains(&name.as_str()) && !tag.ends_with('/') {
                open.push(name);
            }
        }
        rest = &rest[gt + 1..];
    }
    assert!(open.is_empty(), "never closed: {open:?}");
    counts
}

/// What every report must be: one document, charts, nothing external.
pub(crate) fn check_report(html: &str, names: &[&str]) {
    let counts = check_well_formed(html);
    for el in [
        "html", "head", "body", "style", "title", "h1", "section", "pre",
    ] {
        assert!(counts.get(el).copied().unwrap_or(0) >= 1, "no <{el}>");
    }
    assert!(counts.get("svg").copied().unwrap_or(0) >= 1, "no <svg>");
    assert!(counts.get("rect").copied().unwrap_or(0) >= 2, "no bars");
    for n in names {
        assert!(html.contains(n), "no {n:?} in the report");
    }
    for external in [
        "http://", "https://", "//cdn", "<script", "<link", "<img", "src=",
    ] {
        assert!(!html.contains(external), "{external:?} in the report");
    }
    assert!(html.contains("load average"), "no machine load");
    assert!(html.contains("--html"), "no command line");
}

#[test]
fn bench_local_html_charts_throughput_and_latency_against_raw_actix() {
    let report = Report::new("local");
    let out = run(&[
        "bench",
        "local",
        "--only",
        "tell,ask",
        "--messages",
        "3000",
        "--asks",
        "300",
        "--rounds",
        "1",
        "--json",
        "--html",
        report.path(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The JSON lines are still printed.
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2);
    let html = report.read();
    check_report(
        &html,
        &[
            "tell",
            "ask",
            "msa",
            "raw actix",
            "p50",
            "p90",
            "p99",
            "max",
        ],
    );
    // One throughput chart, one latency chart (ask only).
    assert_eq!(check_well_formed(&html)["svg"], 2, "{html}");
}

#[test]
fn bench_local_html_refuses_an_unwritable_path() {
    let out = run(&[
        "bench",
        "local",
        "--only",
        "tell",
        "--messages",
        "100",
        "--rounds",
        "1",
        "--json",
        "--html",
        "/nonexistent-dir/report.html",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("writing the HTML report"), "{err}");
}
