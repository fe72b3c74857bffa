//! `msa bench local`: msa against raw actix in one process, interleaved.

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::html::{self, RunInfo, Section};
use super::report::{self, Comparison};
use super::scenario::{
    measure, round_robin_table, shutdown_table, AskLoop, OneWay, RoundRobin, Scenario, ShutdownRun,
    Side, SpawnComparison, SpawnRun,
};

/// Options of `msa bench local`.
#[derive(Debug, Args)]
#[command(after_long_help = "\
Scenarios:
  spawn   N supervised actors (instances of one service, children of its one
          supervisor) on a node with --arbiters threads, one message each,
          vs N plain actix actors on as many arbiters; reports time, resident
          memory per actor (/proc/self/statm) and peak RSS (VmHWM). Runs once
          per side per round (msa, raw, msa, ... for --rounds rounds), each in
          a fresh child process, so that memory freed by earlier work cannot
          mask its growth; each side's median round (by total time) is
          reported. Target (issue 12): ≤ 1.5 KiB per actor and ≤ 1.5× raw
          actix's total time.
  tell    one sender, one actor, one thread: ServiceRef::tell vs Addr::do_send.
          The actor's count is checked at the end; the clock stops then.
  ask     sequential round trips on one thread: ServiceRef::ask(..).await vs
          Addr::send(..).await; every round trip goes into a latency histogram.
  fan_in  --senders tasks on the actor's thread share --messages tells.
  services  (only with --services N[,N..]; then the only scenario run) N
          services of one instance each on a node with --arbiters threads,
          spawned 512 at a time; times the spawn and the node's shutdown
          (the root stops them one after another, last first). Each N runs
          in the same process, one after another; the table gives each
          time against the first row's. Target: linear (100k services
          ≤ 12× the time of 10k).
  round_robin  (only with --instances N[,N..]; then the only scenario run)
          one sender round-robins --messages tells over N instances of one
          service vs over N raw actix addresses (a Vec<Addr>, the same
          loop), all on one thread; interleaved rounds, medians. Target:
          ≥ 0.8× raw actix for 1, 100 and 10,000 instances.

Each compared scenario runs msa, then raw actix, then msa again, ... for
--rounds rounds, each measurement on a fresh thread with its own actix System;
the median of each side is reported. Targets: tell and ask ≥ 0.8× raw actix,
spawn ≤ 2 KiB per actor.

Examples:
  msa bench local
  msa bench local --json > bench.jsonl
  msa bench local --only tell,ask --rounds 15
  msa bench local --only spawn --actors 20000 --arbiters 0
  msa bench local --services 10000,100000
  msa bench local --instances 1,100,10000 --rounds 5")]
pub(crate) struct LocalArgs {
    /// Messages per measurement in the `tell` and `fan_in` scenarios.
    #[arg(long, short = 'n', value_name = "N", default_value_t = 1_000_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    messages: u64,

    /// Sequential round trips per measurement in the `ask` scenario.
    #[arg(long, value_name = "N", default_value_t = 200_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    asks: u64,

    /// Sender tasks in the `fan_in` scenario (all on the actor's thread).
    #[arg(long, short = 'k', value_name = "K", default_value_t = 4,
          value_parser = clap::value_parser!(u64).range(1..))]
    senders: u64,

    /// Actors started in the `spawn` scenario.
    #[arg(long, value_name = "N", default_value_t = 100_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    actors: u64,

    /// Arbiter threads of the `spawn` scenario's node (0: a local node on
    /// the driving thread).
    #[arg(long, value_name = "N", default_value_t = 2)]
    arbiters: usize,

    /// Run the `services` scenario (only it) once per N given: spawn N
    /// services, time the spawn and the node's shutdown.
    #[arg(long, value_name = "N", value_delimiter = ',',
          value_parser = clap::value_parser!(u64).range(1..))]
    services: Vec<u64>,

    /// Run the `round_robin` scenario (only it) once per N given: tells
    /// round-robin over N instances vs over N raw actix addresses.
    #[arg(long, value_name = "N", value_delimiter = ',',
          value_parser = clap::value_parser!(u64).range(1..))]
    instances: Vec<u64>,

    /// Rounds per compared scenario; each round measures msa, then raw
    /// actix. The median of each side is reported (use 3 or more; the
    /// default of 9 keeps a round or two disturbed by a shared machine from
    /// deciding the median).
    #[arg(long, short = 'r', value_name = "R", default_value_t = 9,
          value_parser = clap::value_parser!(u32).range(1..))]
    rounds: u32,

    /// Run only these scenarios (comma-separated; default: all).
    #[arg(long, value_enum, value_delimiter = ',', value_name = "SCENARIO")]
    only: Vec<Scenario>,

    /// Print one JSON object per scenario per line instead of a table, and
    /// no progress bar.
    #[arg(long)]
    json: bool,

    /// Also write a self-contained HTML report (charts of throughput and
    /// latency percentiles against the same-run baselines, the table, the
    /// machine, the command) to FILE.
    #[arg(long, value_name = "FILE")]
    html: Option<std::path::PathBuf>,

    /// Internal: run only the spawn scenario for one side, in this process,
    /// and print its raw outcome (the child process of the spawn scenario).
    #[arg(long, hide = true, value_enum, value_name = "SIDE")]
    spawn_only: Option<Side>,
}

impl LocalArgs {
    fn selected(&self) -> Vec<Scenario> {
        Scenario::ALL
            .into_iter()
            .filter(|s| self.only.is_empty() || self.only.contains(s))
            .collect()
    }
}

pub(super) fn progress(json: bool, steps: u64) -> ProgressBar {
    if json {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(steps), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("[{elapsed_precise}] {bar:30} {pos}/{len} {msg}")
    {
        bar.set_style(style);
    }
    bar
}

/// Runs the selected scenarios and prints the report on stdout.
pub(crate) fn run(args: LocalArgs) -> anyhow::Result<()> {
    let run_info = RunInfo::now();
    let actors = usize::try_from(args.actors)?;
    let spawn_run = |side| SpawnRun {
        side,
        actors,
        arbiters: args.arbiters,
    };
    if let Some(side) = args.spawn_only {
        // The child process of the spawn scenario: one side, no progress bar.
        let outcome = spawn_run(side).run_here()?;
        println!("{}", serde_json::to_string(&outcome)?);
        return Ok(());
    }
    if !args.services.is_empty() {
        return run_services(&args, &run_info);
    }
    if !args.instances.is_empty() {
        return run_round_robin(&args, &run_info);
    }

    let scenarios = args.selected();
    let compared: Vec<Scenario> = scenarios
        .iter()
        .copied()
        .filter(|s| *s != Scenario::Spawn)
        .collect();
    let do_spawn = scenarios.contains(&Scenario::Spawn);
    let steps = (u64::from(do_spawn) + compared.len() as u64) * 2 * u64::from(args.rounds);
    let bar = progress(args.json, steps);

    let mut spawn: Option<SpawnComparison> = None;
    if do_spawn {
        let run = |side: Side| {
            bar.set_message(format!("spawn · {} · {actors} actors", side.name()));
            let outcome = spawn_run(side)
                .run_in_child()
                .map_err(|e| e.context(format!("scenario spawn ({})", side.name())));
            bar.inc(1);
            outcome
        };
        // Alternated, each run in a fresh process; the median of each side.
        let (mut msa, mut raw) = (Vec::new(), Vec::new());
        for _ in 0..args.rounds {
            msa.push(run(Side::Msa)?);
            raw.push(run(Side::Raw)?);
        }
        spawn = SpawnComparison::from_rounds(msa, raw);
    }

    let mut comparisons: Vec<Comparison> = compared
        .iter()
        .map(|&scenario| Comparison {
            scenario,
            threads: match scenario {
                Scenario::FanIn => format!("same-thread ({} sender tasks)", args.senders),
                _ => "same-thread".into(),
            },
            senders: if scenario == Scenario::FanIn {
                args.senders
            } else {
                1
            },
            msa: Vec::new(),
            raw: Vec::new(),
        })
        .collect();
    for round in 1..=args.rounds {
        for c in &mut comparisons {
            for side in [Side::Msa, Side::Raw] {
                bar.set_message(format!(
                    "{} · {} · round {round}/{}",
                    c.scenario.name(),
                    side.name(),
                    args.rounds
                ));
                let m = match c.scenario {
                    Scenario::Ask => measure(side, AskLoop { asks: args.asks }),
                    // tell and fan_in (spawn is not compared).
                    _ => measure(
                        side,
                        OneWay {
                            messages: args.messages,
                            senders: c.senders,
                        },
                    ),
                }
                .map_err(|e| {
                    e.context(format!(
                        "scenario {} ({}, round {round})",
                        c.scenario.name(),
                        side.name()
                    ))
                })?;
                match side {
                    Side::Msa => c.msa.push(m),
                    Side::Raw => c.raw.push(m),
                }
                bar.inc(1);
            }
        }
    }
    bar.finish_and_clear();

    if args.json {
        print!("{}", report::json_lines(spawn.as_ref(), &comparisons)?);
    } else {
        print!("{}", report::table(spawn.as_ref(), &comparisons));
    }
    if let Some(path) = &args.html {
        html::write(
            path,
            "msa bench local",
            &run_info,
            &report::html_sections(spawn.as_ref(), &comparisons),
        )?;
    }
    Ok(())
}

/// The `services` scenario: one run per N, in this process, in order.
fn run_services(args: &LocalArgs, run_info: &RunInfo) -> anyhow::Result<()> {
    let bar = progress(args.json, args.services.len() as u64);
    let mut runs = Vec::new();
    for &n in &args.services {
        let services = usize::try_from(n)?;
        bar.set_message(format!("services · {services}"));
        let outcome = ShutdownRun {
            services,
            arbiters: args.arbiters,
        }
        .run_here()
        .map_err(|e| e.context(format!("scenario services ({services})")))?;
        bar.inc(1);
        runs.push(outcome);
    }
    bar.finish_and_clear();
    if args.json {
        for r in &runs {
            println!("{}", serde_json::to_string(r)?);
        }
    } else {
        print!("{}", shutdown_table(&runs));
    }
    if let Some(path) = &args.html {
        let s = Section::new("msa bench local --services").text(shutdown_table(&runs));
        html::write(path, "msa bench local --services", run_info, &[s])?;
    }
    Ok(())
}

/// The `round_robin` scenario: one comparison per N, in this process.
fn run_round_robin(args: &LocalArgs, run_info: &RunInfo) -> anyhow::Result<()> {
    let bar = progress(args.json, args.instances.len() as u64);
    let mut runs = Vec::new();
    for &n in &args.instances {
        let instances = usize::try_from(n)?;
        bar.set_message(format!("round_robin · {instances} instances"));
        let outcome = RoundRobin {
            messages: args.messages,
            instances,
        }
        .compare(args.rounds)
        .map_err(|e| e.context(format!("scenario round_robin ({instances})")))?;
        bar.inc(1);
        runs.push(outcome);
    }
    bar.finish_and_clear();
    if args.json {
        for r in &runs {
            println!("{}", serde_json::to_string(r)?);
        }
    } else {
        print!("{}", round_robin_table(&runs));
    }
    if let Some(path) = &args.html {
        let s = Section::new("msa bench local --instances").text(round_robin_table(&runs));
        html::write(path, "msa bench local --instances", run_info, &[s])?;
    }
    Ok(())
}
