//! `msa bench streams`'s `remote1` scenario on this bench's machinery: the
//! same child process (its sink service also subscribes to a topic), the
//! same one-arbiter caller node, the same timed loop on that arbiter. Each
//! round publishes N [`Hit`]s to the topic, whose one subscriber is the
//! child's sink, and tells N [`Hit`]s to that same sink (the order of the
//! two alternates from round to round).

use std::time::Instant;

use anyhow::{bail, ensure, Context as _};
use indicatif::ProgressBar;
use msa_runtime::{Node, Topic};

use super::child::{generate_secret, SinkProcess};
use super::measure::{self, Measurement};
use super::service::{site_spec, Hit, WhereAreYou, SINK, SITE};
use super::{on_arbiter, start_caller, stop_node, wait_for_sink, DISCOVERY_WAIT, SINK_NODE};

/// The topic the child's sink subscribes to.
const TOPIC: &str = "bench.hits";

/// Every round of both sides.
#[derive(Debug)]
pub(crate) struct PublishVsTell {
    /// Events published to the topic (one remote subscriber).
    pub(crate) publish: Vec<Measurement>,
    /// Remote tells of the same message to the same service.
    pub(crate) tell: Vec<Measurement>,
}

/// Starts the child and the caller node, measures `rounds` rounds of
/// `events` events each way, and stops both (also on failure).
pub(crate) fn publish_vs_tell(
    events: u64,
    rounds: u32,
    bar: &ProgressBar,
) -> anyhow::Result<PublishVsTell> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async {
            bar.set_message("remote1 · starting the subscriber process and the caller node");
            let secret = generate_secret()?;
            let child = SinkProcess::start(&secret, None, Some(TOPIC))?;
            let node = start_caller(false, &secret, &child.ready.addr, None)?;
            let outcome = measure_rounds(&node, events, rounds, bar).await;
            let stopped = stop_node(node).await;
            let exited = child.stop();
            let out = outcome?;
            stopped?;
            let status = exited?;
            ensure!(
                status.success(),
                "the subscriber process exited with {status}"
            );
            Ok(out)
        })
}

/// Waits (bounded) until this node knows the child's node subscribes to `topic`.
async fn wait_for_subscriber(topic: &Topic<Hit>) -> anyhow::Result<()> {
    let deadline = Instant::now() + DISCOVERY_WAIT;
    while !topic.remote_subscribers().iter().any(|n| n == SINK_NODE) {
        if Instant::now() >= deadline {
            bail!(
                "the caller node saw no subscriber of `{TOPIC}` on {SINK_NODE} within \
                 {DISCOVERY_WAIT:?} (it knows of {:?})",
                topic.remote_subscribers()
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    Ok(())
}

async fn measure_rounds(
    node: &Node,
    events: u64,
    rounds: u32,
    bar: &ProgressBar,
) -> anyhow::Result<PublishVsTell> {
    wait_for_sink(node).await?;
    let topic = node.topic::<Hit>(TOPIC);
    wait_for_subscriber(&topic).await?;
    node.spawn(site_spec())
        .await
        .context("spawning the helper service")?;
    let arbiter = node
        .service(SITE)
        .ask(WhereAreYou)
        .await
        .context("asking the helper service for its arbiter")?;
    let sink = node.service(SINK);
    let publish = |n: u64| {
        on_arbiter(
            &arbiter,
            measure::publish(node.clone(), topic.clone(), sink.clone(), n),
        )
    };
    let tell = |n: u64| on_arbiter(&arbiter, measure::tell(sink.clone(), n));
    // Untimed warm-up of both paths.
    let warm = events.min(10_000);
    publish(warm).await??;
    tell(warm).await??;
    let mut out = PublishVsTell {
        publish: Vec::new(),
        tell: Vec::new(),
    };
    for round in 1..=rounds {
        let publish_first = round % 2 == 1;
        for publishing in [publish_first, !publish_first] {
            let what = if publishing { "publish" } else { "tell" };
            bar.set_message(format!("remote1 · {what} · round {round}/{rounds}"));
            let context = || format!("remote1, {what} (round {round})");
            if publishing {
                out.publish
                    .push(publish(events).await?.with_context(context)?);
            } else {
                out.tell.push(tell(events).await?.with_context(context)?);
            }
            bar.inc(1);
        }
    }
    Ok(out)
}
