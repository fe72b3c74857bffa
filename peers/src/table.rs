//! Runs every cell and prints one table: each peer's figure and msa's
//! figure divided by it.

use crate::peer::Peer;
use crate::placement::{measure, Placement};
use crate::scenario::{Measurement, Scenario};
use crate::spawn;
use crate::Options;

/// One row: a metric in a placement, one median figure per peer.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) metric: &'static str,
    pub(crate) placement: &'static str,
    pub(crate) unit: &'static str,
    pub(crate) values: Vec<(Peer, f64)>,
}

/// Runs every scenario for every peer and placement, `rounds` times each,
/// interleaving the peers within a round so that a change in the machine's
/// load hits them alike.
pub(crate) fn measure_all(o: &Options) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for placement in Placement::ALL {
        let scenarios = [
            Scenario::Tell { n: o.tells },
            Scenario::Ask { n: o.asks },
            Scenario::FanIn { n: o.tells },
        ];
        for scenario in scenarios {
            let mut runs: Vec<(Peer, Vec<Measurement>)> =
                o.peers.iter().map(|p| (*p, Vec::new())).collect();
            for round in 0..o.rounds {
                for (peer, ms) in &mut runs {
                    eprintln!(
                        "{} {:?} {} round {}",
                        placement.name(),
                        scenario,
                        peer.name(),
                        round + 1
                    );
                    ms.push(measure(*peer, placement, scenario)?);
                }
            }
            let pick = |f: &dyn Fn(&Measurement) -> f64| -> Vec<(Peer, f64)> {
                runs.iter()
                    .map(|(p, ms)| (*p, median(ms.iter().map(f).collect())))
                    .collect()
            };
            let place = placement.name();
            match scenario {
                Scenario::Tell { .. } => rows.push(Row {
                    metric: "tell",
                    placement: place,
                    unit: "M msg/s",
                    values: pick(&|m| m.per_sec() / 1e6),
                }),
                Scenario::FanIn { .. } => rows.push(Row {
                    metric: "fan-in (8 senders)",
                    placement: place,
                    unit: "M msg/s",
                    values: pick(&|m| m.per_sec() / 1e6),
                }),
                Scenario::Ask { .. } => {
                    rows.push(Row {
                        metric: "ask p50",
                        placement: place,
                        unit: "µs",
                        values: pick(&|m| m.quantile_us(0.5).unwrap_or(f64::NAN)),
                    });
                    rows.push(Row {
                        metric: "ask p99",
                        placement: place,
                        unit: "µs",
                        values: pick(&|m| m.quantile_us(0.99).unwrap_or(f64::NAN)),
                    });
                }
            }
        }
    }
    if o.spawn > 0 {
        let mut time = Vec::new();
        let mut memory = Vec::new();
        for peer in &o.peers {
            eprintln!("spawn {} x{}", peer.name(), o.spawn);
            let out = spawn::in_child(*peer, o.spawn)?;
            time.push((*peer, out.elapsed.as_secs_f64() * 1e3));
            memory.push((*peer, out.bytes_per_actor / 1024.0));
        }
        let metric = "spawn + 1 msg each";
        rows.push(Row {
            metric,
            placement: "same-thread",
            unit: "ms",
            values: time,
        });
        rows.push(Row {
            metric: "memory per actor",
            placement: "same-thread",
            unit: "KiB",
            values: memory,
        });
    }
    Ok(rows)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Prints the table (see [`render`]).
pub(crate) fn print(o: &Options, rows: &[Row]) {
    print!("{}", render(o, rows));
}

/// The table as Markdown: each cell is the peer's figure and, in brackets,
/// msa's figure divided by it.
pub(crate) fn render(o: &Options, rows: &[Row]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "tells {} per run, asks {}, spawn {}, median of {} rounds; (×) = msa ÷ peer \
         (throughput: < 1 means msa is slower; time, latency, memory: > 1 means msa is slower)",
        o.tells, o.asks, o.spawn, o.rounds
    );
    let mut header = String::from("| metric | placement | unit |");
    let mut rule = String::from("|---|---|---|");
    for p in &o.peers {
        header.push_str(&format!(" {} |", p.name()));
        rule.push_str("---|");
    }
    let _ = writeln!(out, "{header}\n{rule}");
    for r in rows {
        let msa = r
            .values
            .iter()
            .find(|(p, _)| *p == Peer::Msa)
            .map_or(f64::NAN, |(_, v)| *v);
        let mut line = format!("| {} | {} | {} |", r.metric, r.placement, r.unit);
        for (p, v) in &r.values {
            if *p == Peer::Msa {
                line.push_str(&format!(" {v:.3} |"));
            } else {
                line.push_str(&format!(" {v:.3} ({:.2}×) |", msa / v));
            }
        }
        let _ = writeln!(out, "{line}");
    }
    out
}
