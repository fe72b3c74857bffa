//! `msa bench streams`: topics against plain tells in the same run: on one
//! thread of a local node, and across two processes (docs/streams.md,
//! docs/BENCHMARKS.md).

mod report;

use std::time::{Duration, Instant};

use anyhow::{ensure, Context as _};
use clap::Args;
use msa_runtime::{
    Handler, Node, RemoteMessage, Reply, Service, ServiceContext, ServiceRef, ServiceSpec,
};
use serde::{Deserialize, Serialize};

use super::html::{self, RunInfo};
use super::local::progress;
use super::scenario::on_own_system;
use super::services::YIELD_EVERY;
use report::{Run, StreamsComparison, StreamsScenario};

/// Options of `msa bench streams`.
#[derive(Debug, Args)]
#[command(after_long_help = "\
Scenarios (interleaved rounds, the side that goes first alternating; medians):
  publish1  N events published to a topic with one subscriber (a service,
            so that events arrive as messages) vs N tells of the same event
            to that service, on one thread of a local node.
            Target: >= 0.8x the tells.
  fanout    N events published to a topic with S subscribing services vs
            S tells of each event (one to each service); reports
            deliveries/s (events x subscribers). Target: >= 0.8x; aim 10M/s.
  remote1   two processes on loopback (the child and caller node of
            `msa bench remote`): N events published on the caller node to a
            topic whose one subscriber is the sink service in the child, vs N
            remote tells of the same message (a u64) to that same service.
            Both loops run on the caller node's one arbiter, beside its
            connection; a copy the connection had no room for is published
            again after a yield (and counted), as a tell is after
            Overloaded. Target: >= 0.8x the tells; aim 1M events/s.
The clock stops when every subscribing service has counted every delivery.

Examples:
  cargo run --release --bin msa -- bench streams
  msa bench streams --only remote1 --events 1000000 --rounds 5
  msa bench streams --json --html streams.html")]
pub(crate) struct StreamsArgs {
    /// Events per measurement.
    #[arg(long, short = 'n', value_name = "N", default_value_t = 200_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    events: u64,
    /// Subscribers of the `fanout` scenario.
    #[arg(long, value_name = "S", default_value_t = 100,
          value_parser = clap::value_parser!(u64).range(1..))]
    subscribers: u64,
    /// Rounds (each measures both sides); medians are reported.
    #[arg(long, short = 'r', value_name = "R", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..))]
    rounds: u32,
    /// Run only these scenarios (comma-separated; default: all).
    #[arg(long, value_enum, value_delimiter = ',', value_name = "SCENARIO")]
    only: Vec<StreamsScenario>,
    /// Print one JSON object per scenario per line instead of a table, and
    /// no progress bar.
    #[arg(long)]
    json: bool,
    /// Also write a self-contained HTML report (a chart of publish vs tell
    /// per scenario, the table, the machine, the command) to FILE.
    #[arg(long, value_name = "FILE")]
    html: Option<std::path::PathBuf>,
}

/// The benchmark's event.
#[derive(Debug, Clone, Copy, actix::Message, Serialize, Deserialize, RemoteMessage)]
#[msa(name = "bench.Event")]
#[rtype(result = "()")]
struct Event(u64);

/// How many events a counter has seen.
#[derive(Debug, Clone, Copy, actix::Message, Serialize, Deserialize, RemoteMessage)]
#[msa(name = "bench.Seen")]
#[rtype(result = "u64")]
struct Seen;

#[derive(Default)]
struct Counter(u64);
impl Service for Counter {}
impl Handler<Event> for Counter {
    fn handle(&mut self, _: Event, _: &mut ServiceContext<'_, Self>) -> Reply<Self, ()> {
        self.0 += 1;
        Reply::ready(())
    }
}
impl Handler<Seen> for Counter {
    fn handle(&mut self, _: Seen, _: &mut ServiceContext<'_, Self>) -> Reply<Self, u64> {
        Reply::ready(self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Publish,
    Tell,
}

/// One measurement: `events` events to `subs` counting services, by
/// publishing or by telling each; returns the elapsed time.
fn measure(side: Side, events: u64, subs: u64) -> anyhow::Result<Duration> {
    on_own_system(move || async move {
        let node = Node::builder()
            .name("bench-streams")
            .start_local()
            .context("starting a local msa node")?;
        let mut refs: Vec<ServiceRef> = Vec::new();
        for i in 0..subs {
            let spec = ServiceSpec::new(format!("counter-{i}"), Counter::default)
                .handles::<Event>()
                .handles::<Seen>()
                .mailbox_capacity(usize::try_from(events)?.max(1024));
            refs.push(node.spawn(spec).await.context("spawning a counter")?);
        }
        let topic = node.topic::<Event>("bench.events");
        let _subs: Vec<_> = refs.iter().map(|r| topic.subscribe_service(r)).collect();
        let refs2 = refs.clone();
        let elapsed = actix_rt::spawn(async move {
            let start = Instant::now();
            for i in 1..=events {
                match side {
                    Side::Publish => topic.publish(Event(i)),
                    Side::Tell => {
                        for r in &refs2 {
                            r.tell(Event(i))?;
                        }
                    }
                }
                if i % YIELD_EVERY == 0 {
                    tokio::task::yield_now().await;
                }
            }
            for r in &refs2 {
                let seen = r.ask(Seen).await?;
                // A publish delivers to the subscriptions: the tell side's
                // services are subscribed too but get no publish.
                ensure!(seen == events, "a counter saw {seen} of {events} events");
            }
            Ok::<_, anyhow::Error>(start.elapsed())
        })
        .await
        .context("the measuring task panicked")??;
        node.shutdown(Duration::from_secs(10))
            .await
            .context("shutting the node down")?;
        Ok(elapsed)
    })
}

/// Runs the selected scenarios and prints the report.
pub(crate) fn run(args: StreamsArgs) -> anyhow::Result<()> {
    let run_info = RunInfo::now();
    let scenarios: Vec<StreamsScenario> = StreamsScenario::ALL
        .into_iter()
        .filter(|s| args.only.is_empty() || args.only.contains(s))
        .collect();
    let bar = progress(
        args.json,
        scenarios.len() as u64 * 2 * u64::from(args.rounds),
    );
    let mut comparisons = Vec::new();
    for scenario in scenarios {
        let subscribers = match scenario {
            StreamsScenario::Fanout => args.subscribers,
            _ => 1,
        };
        let mut c = StreamsComparison {
            scenario,
            events: args.events,
            subscribers,
            publish: Vec::new(),
            tell: Vec::new(),
        };
        if scenario == StreamsScenario::Remote1 {
            let rounds = super::remote::publish_vs_tell(args.events, args.rounds, &bar)
                .context("scenario remote1")?;
            let run = |m: &super::remote::RemoteMeasurement| Run {
                elapsed: m.elapsed,
                retries: m.retries,
            };
            c.publish = rounds.publish.iter().map(run).collect();
            c.tell = rounds.tell.iter().map(run).collect();
        } else {
            for round in 1..=args.rounds {
                // The side that goes first alternates by round (as
                // `remote1`'s do): the first measurement of a process pays
                // for its allocator's and caches' warm-up.
                let order = if round % 2 == 1 {
                    [Side::Publish, Side::Tell]
                } else {
                    [Side::Tell, Side::Publish]
                };
                for side in order {
                    bar.set_message(format!(
                        "{} · {side:?} · round {round}/{}",
                        scenario.name(),
                        args.rounds
                    ));
                    let elapsed = measure(side, args.events, subscribers).with_context(|| {
                        format!("scenario {} ({side:?}, round {round})", scenario.name())
                    })?;
                    let run = Run {
                        elapsed,
                        retries: 0,
                    };
                    match side {
                        Side::Publish => c.publish.push(run),
                        Side::Tell => c.tell.push(run),
                    }
                    bar.inc(1);
                }
            }
        }
        comparisons.push(c);
    }
    bar.finish_and_clear();
    if args.json {
        print!("{}", report::json_lines(&comparisons)?);
    } else {
        print!("{}", report::table(&comparisons));
    }
    if let Some(path) = &args.html {
        html::write(
            path,
            "msa bench streams",
            &run_info,
            &report::html_sections(&comparisons),
        )?;
    }
    Ok(())
}
