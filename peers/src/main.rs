//! `msa-peers`: msa against raw actix, ractor and kameo on the same
//! scenarios (tell, ask, fan-in, spawn) and placements (same thread,
//! embedded in an application's tokio multi-thread runtime), one table with
//! ratios. See docs/BENCHMARKS.md, "Peers".
//!
//! ```text
//! cargo run --release --manifest-path peers/Cargo.toml -- [options]
//!   -n N            one-way messages per tell / fan-in run (default 1000000)
//!   --asks N        round trips per ask run (default 100000)
//!   --spawn N       actors in the spawn scenario (default 100000; 0 skips it)
//!   --rounds R      runs of each cell; the table shows the median (default 3)
//!   --keep-awake    one lowest-priority busy thread per CPU during the runs
//!   --peers a,b     a subset of msa,actix,ractor,kameo
//!   --html FILE     also write a self-contained HTML report (charts of
//!                   each metric and of the ratios, then the table)
//! ```

mod cpu;
// msa's own HTML report writer and charts, shared rather than copied (it
// uses only std, anyhow and time); peers uses part of it.
#[allow(dead_code, unused_imports)]
#[path = "../../src/cli/bench/html.rs"]
mod html;
mod peer;
mod placement;
mod report;
mod scenario;
mod spawn;
mod table;

use std::path::PathBuf;

use anyhow::{bail, Context as _};

use peer::Peer;

/// The command line.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) tells: u64,
    pub(crate) asks: u64,
    pub(crate) spawn: u64,
    pub(crate) rounds: usize,
    pub(crate) keep_awake: bool,
    pub(crate) peers: Vec<Peer>,
    /// `--html FILE`: where to write the HTML report.
    pub(crate) html: Option<PathBuf>,
}

fn parse(mut args: impl Iterator<Item = String>) -> anyhow::Result<Options> {
    let mut o = Options {
        tells: 1_000_000,
        asks: 100_000,
        spawn: 100_000,
        rounds: 3,
        keep_awake: false,
        peers: Peer::ALL.to_vec(),
        html: None,
    };
    while let Some(a) = args.next() {
        let mut value = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "-n" => o.tells = value()?.parse()?,
            "--asks" => o.asks = value()?.parse()?,
            "--spawn" => o.spawn = value()?.parse()?,
            "--rounds" => o.rounds = value()?.parse::<usize>()?.max(1),
            "--keep-awake" => o.keep_awake = true,
            "--html" => o.html = Some(PathBuf::from(value()?)),
            "--peers" => {
                o.peers = value()?
                    .split(',')
                    .map(|p| Peer::parse(p).with_context(|| format!("unknown peer {p:?}")))
                    .collect::<anyhow::Result<_>>()?;
            }
            other => bail!("unknown argument {other:?} (see the top of peers/src/main.rs)"),
        }
    }
    if !o.peers.contains(&Peer::Msa) {
        o.peers.insert(0, Peer::Msa);
    }
    Ok(o)
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().map(String::as_str) == Some("spawn-child") {
        args.next();
        let peer = args.next().context("spawn-child needs a peer")?;
        let peer = Peer::parse(&peer).with_context(|| format!("unknown peer {peer:?}"))?;
        let n = args.next().context("spawn-child needs a count")?.parse()?;
        return spawn::child(peer, n);
    }
    let options = parse(args)?;
    let run = html::RunInfo::now();
    let load_before = cpu::load_average();
    let awake = options.keep_awake.then(cpu::KeepAwake::start).transpose()?;
    let rows = table::measure_all(&options)?;
    drop(awake);
    let cpu_state = if options.keep_awake {
        "kept awake (one nice-19 busy thread per CPU)"
    } else {
        "idle (nothing kept awake)"
    };
    println!(
        "CPU: {cpu_state}; {} CPUs; load average before {}, after {}",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        load_before.as_deref().unwrap_or("?"),
        cpu::load_average().as_deref().unwrap_or("?"),
    );
    table::print(&options, &rows);
    if let Some(path) = &options.html {
        report::write(path, &run, &options, cpu_state, &rows)?;
        println!("HTML report: {}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use placement::{measure, Placement};
    use scenario::Scenario;

    /// Every peer answers every scenario in every placement, and each run's
    /// own check (the sink counted every message) holds.
    #[test]
    fn every_peer_runs_every_scenario_in_every_placement() {
        for placement in Placement::ALL {
            for peer in Peer::ALL {
                for scenario in [
                    Scenario::Tell { n: 5_000 },
                    Scenario::Ask { n: 500 },
                    Scenario::FanIn { n: 5_000 },
                ] {
                    let m = measure(peer, placement, scenario).unwrap_or_else(|e| {
                        panic!("{} {} {scenario:?}: {e:#}", peer.name(), placement.name())
                    });
                    assert!(m.messages > 0 && m.per_sec() > 0.0);
                    if let Scenario::Ask { .. } = scenario {
                        assert!(m.quantile_us(0.5).is_some_and(|p50| p50 > 0.0));
                    }
                }
            }
        }
    }

    #[test]
    fn options_parse_and_refuse_unknown_peers() {
        let o = parse(
            ["--peers", "ractor", "--rounds", "0", "--html", "r.html"]
                .map(String::from)
                .into_iter(),
        )
        .unwrap();
        // msa is always measured (every ratio is against it); rounds >= 1.
        assert_eq!(o.peers, [Peer::Msa, Peer::Ractor]);
        assert_eq!(o.rounds, 1);
        assert_eq!(o.html.as_deref(), Some(std::path::Path::new("r.html")));
        assert!(parse(["--peers", "akka"].map(String::from).into_iter()).is_err());
        assert!(parse(["--bogus"].map(String::from).into_iter()).is_err());
    }
}
