//! `msa bench streams`: topics against plain tells, in the same process
//! and run (docs/streams.md, docs/BENCHMARKS.md).

use std::time::{Duration, Instant};

use anyhow::{ensure, Context as _};
use clap::Args;
use msa_runtime::{
    Handler, Node, RemoteMessage, Reply, Service, ServiceContext, ServiceRef, ServiceSpec,
};
use serde::{Deserialize, Serialize};

use super::scenario::on_own_system;
use super::services::YIELD_EVERY;

/// Options of `msa bench streams`.
#[derive(Debug, Args)]
#[command(after_long_help = "\
Scenarios (each on one thread, a local node, interleaved rounds, medians):
  publish1  N events published to a topic with one subscriber (a service,
            so that events arrive as messages) vs N tells of the same event
            to that service. Target: >= 0.8x the tells.
  fanout    N events published to a topic with S subscribing services vs
            S tells of each event (one to each service); reports
            deliveries/s (events x subscribers). Target: >= 0.8x.
The clock stops when every service has counted every delivery.

Not measured here (yet): one remote subscriber vs remote tell across two
processes.

Example:
  cargo run --release --bin msa -- bench streams")]
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

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Runs both scenarios and prints a table.
pub(crate) fn run(args: StreamsArgs) -> anyhow::Result<()> {
    println!("scenario   side      events   subscribers  median time   deliveries/s");
    for (name, subs) in [("publish1", 1), ("fanout", args.subscribers)] {
        let mut publish = Vec::new();
        let mut tell = Vec::new();
        for _ in 0..args.rounds {
            publish.push(measure(Side::Publish, args.events, subs)?);
            tell.push(measure(Side::Tell, args.events, subs)?);
        }
        let (p, t) = (median(publish), median(tell));
        let rate = |d: Duration| (args.events * subs) as f64 / d.as_secs_f64();
        println!(
            "{name:<10} publish  {:>8}  {subs:>11}  {:>10.1?}  {:>13.0}",
            args.events,
            p,
            rate(p)
        );
        println!(
            "{name:<10} tell     {:>8}  {subs:>11}  {:>10.1?}  {:>13.0}",
            args.events,
            t,
            rate(t)
        );
        println!(
            "{name:<10} publish/tell throughput: {:.2}x (target >= 0.80x)",
            rate(p) / rate(t)
        );
    }
    Ok(())
}
