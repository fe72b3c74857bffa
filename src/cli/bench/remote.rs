//! `msa bench remote`: msa's remote tell and ask between two processes on
//! loopback, against a raw tokio TCP stream between the same two processes,
//! interleaved in the same run.
//!
//! This process starts a child (`msa bench remote --serve`, the same
//! executable) that runs a node with a sink service and a raw TCP server,
//! then runs its own node (the caller) seeded with the child's address. The
//! timed loops of both sides run as tasks on the caller node's one arbiter,
//! the thread that also runs its connection to the child; in the child, the
//! connection and the sink instance share the node's one arbiter. The raw
//! baseline likewise has one thread per end.

mod child;
mod measure;
mod raw;
mod report;
mod serve;
mod service;

use std::future::Future;
use std::time::{Duration, Instant};

use actix::ArbiterHandle;
use anyhow::{anyhow, bail, ensure, Context as _};
use clap::Args;
use indicatif::ProgressBar;
use msa_runtime::Node;

use super::local::progress;
use child::{generate_secret, SinkProcess};
use measure::Measurement;
use raw::RawClient;
use report::{RemoteComparison, RemoteScenario};
use service::{site_spec, WhereAreYou, SINK, SITE};

/// The child's node name.
const SINK_NODE: &str = "bench-sink";
/// Arbiter threads of the child's node (connection and sink share it).
const SINK_ARBITERS: usize = 1;
/// The caller node's name.
const CALLER_NODE: &str = "client";
/// Arbiter threads of the caller's node (loops and connection share it).
const CALLER_ARBITERS: usize = 1;

/// How long the caller may take to see the sink service.
const DISCOVERY_WAIT: Duration = Duration::from_secs(15);
/// Bound on any one measurement.
const MEASUREMENT_BOUND: Duration = Duration::from_secs(90);
/// How long nodes may drain at the end.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Where the sides run, for the report.
const THREADS: &str = "msa: caller loop + its connection's reader and writer on the caller \
node's 1 arbiter; sink node: reader, writer and sink instance on its 1 arbiter. \
raw: client loop on the caller node's arbiter, server on the child's main thread";

/// Options of `msa bench remote`.
#[derive(Debug, Args)]
#[command(after_long_help = "\
Scenarios (two processes on loopback: this one and a child it starts):
  remote_tell  N one-way `node.service(\"sink\").tell(Hit(i))` (a u64 message) to
               the child's sink; a tell that finds the connection's outbound
               queue full (Overloaded) is retried after a yield and counted.
               The clock stops when an ask for the sink's count confirms all N.
               Baseline: N 36-byte frames over a plain tokio TCP stream,
               flushed every 1,024, then a count request.
  remote_ask   sequential asks of a u64 echo, each timed (p50/p99).
               Baseline: ping-pong of 36-byte frames on the raw stream.

Each round runs msa tell, raw tell, msa ask, raw ask; the report gives the
median of each side's rounds, and latency percentiles over all round trips.
Targets: tell ≥ 1,000,000 msg/s (stretch ≥ 10% of raw); ask p50 ≤ 2× raw p50.

Examples:
  msa bench remote
  msa bench remote --json > remote.jsonl
  msa bench remote --messages 200000 --asks 5000 --rounds 5")]
pub(crate) struct RemoteArgs {
    /// One-way messages per measurement of `remote_tell`.
    #[arg(long, short = 'n', value_name = "N", default_value_t = 1_000_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    messages: u64,

    /// Sequential round trips per measurement of `remote_ask`.
    #[arg(long, value_name = "N", default_value_t = 20_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    asks: u64,

    /// Rounds; each measures msa and raw TCP for both scenarios. The median
    /// of each side is reported (use 3 or more).
    #[arg(long, short = 'r', value_name = "R", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..))]
    rounds: u32,

    /// Print one JSON object per scenario per line instead of a table, and
    /// no progress bar.
    #[arg(long)]
    json: bool,

    /// Internal: be the child process (sink node and raw server; reads
    /// MSA_SECRET, prints its addresses, stops when stdin closes).
    #[arg(long, hide = true)]
    serve: bool,
}

/// Runs `msa bench remote` (or, with `--serve`, its child).
pub(crate) fn run(args: RemoteArgs) -> anyhow::Result<()> {
    if args.serve {
        return serve::run();
    }
    let comparisons = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(bench(&args))?;
    if args.json {
        print!("{}", report::json_lines(&comparisons)?);
    } else {
        print!("{}", report::table(&comparisons));
    }
    Ok(())
}

/// Starts both processes, measures, and stops both (also on failure).
async fn bench(args: &RemoteArgs) -> anyhow::Result<Vec<RemoteComparison>> {
    // Setup, then 4 measurements per round.
    let bar = progress(args.json, 1 + 4 * u64::from(args.rounds));
    bar.set_message("starting the sink process and the caller node");
    let secret = generate_secret()?;
    let sink = SinkProcess::start(&secret)?;
    let node = Node::builder()
        .name(CALLER_NODE)
        .arbiters(CALLER_ARBITERS)
        .listen(([127, 0, 0, 1], 0).into())
        .secret(secret.into_bytes())
        .seed(sink.ready.addr.clone())
        .start()
        .context("starting the caller node")?;
    // This node calls types it does not serve: their derive declares them.

    let outcome = measure_all(&node, &sink.ready.raw, args, &bar).await;
    bar.finish_and_clear();
    let stopped = tokio::time::timeout(SHUTDOWN_GRACE * 3, node.shutdown(SHUTDOWN_GRACE)).await;
    let child = sink.stop();
    let comparisons = outcome?;
    stopped
        .map_err(|_| anyhow!("the caller node did not stop in time"))?
        .context("stopping the caller node")?;
    let status = child?;
    ensure!(status.success(), "the sink process exited with {status}");
    Ok(comparisons)
}

async fn measure_all(
    node: &Node,
    raw_addr: &str,
    args: &RemoteArgs,
    bar: &ProgressBar,
) -> anyhow::Result<Vec<RemoteComparison>> {
    wait_for_sink(node).await?;
    // A local helper answers with the arbiter it runs on: the caller node's
    // only arbiter, which also runs its connection.
    node.spawn(site_spec())
        .await
        .context("spawning the helper service")?;
    let arbiter = node
        .service(SITE)
        .ask(WhereAreYou)
        .await
        .context("asking the helper service for its arbiter")?;
    let addr = raw_addr.to_string();
    let mut raw = on_arbiter(&arbiter, async move { RawClient::connect(&addr).await }).await??;

    // Untimed warm-up of both paths (connections, buffers, code).
    let warm_tells = args.messages.min(10_000);
    let warm_asks = args.asks.min(1_000);
    let sink = node.service(SINK);
    on_arbiter(&arbiter, measure::tell(sink.clone(), warm_tells)).await??;
    on_arbiter(&arbiter, measure::ask(sink.clone(), warm_asks)).await??;
    let (back, r) = on_arbiter(&arbiter, async move {
        let r = async {
            raw.one_way(warm_tells).await?;
            raw.ping_pong(warm_asks).await
        }
        .await;
        (raw, r)
    })
    .await?;
    raw = back;
    r?;
    bar.inc(1);

    let mut tell = RemoteComparison {
        scenario: RemoteScenario::Tell,
        threads: THREADS.into(),
        msa: Vec::new(),
        raw: Vec::new(),
    };
    let mut ask = RemoteComparison {
        scenario: RemoteScenario::Ask,
        threads: THREADS.into(),
        msa: Vec::new(),
        raw: Vec::new(),
    };
    for round in 1..=args.rounds {
        let step = |what: &str| {
            bar.set_message(format!("{what} · round {round}/{}", args.rounds));
        };
        let context = |what: &str| format!("{what} (round {round})");

        step("remote_tell · msa");
        let m = on_arbiter(&arbiter, measure::tell(sink.clone(), args.messages))
            .await?
            .with_context(|| context("remote_tell, msa"))?;
        tell.msa.push(m);
        bar.inc(1);

        step("remote_tell · raw TCP");
        let messages = args.messages;
        let (back, m) = raw_round(&arbiter, raw, move |mut c| async move {
            let r = c.one_way(messages).await;
            (c, r)
        })
        .await?;
        raw = back;
        tell.raw
            .push(m.with_context(|| context("remote_tell, raw TCP"))?);
        bar.inc(1);

        step("remote_ask · msa");
        let m = on_arbiter(&arbiter, measure::ask(sink.clone(), args.asks))
            .await?
            .with_context(|| context("remote_ask, msa"))?;
        ask.msa.push(m);
        bar.inc(1);

        step("remote_ask · raw TCP");
        let asks = args.asks;
        let (back, m) = raw_round(&arbiter, raw, move |mut c| async move {
            let r = c.ping_pong(asks).await;
            (c, r)
        })
        .await?;
        raw = back;
        ask.raw
            .push(m.with_context(|| context("remote_ask, raw TCP"))?);
        bar.inc(1);
    }
    Ok(vec![tell, ask])
}

/// Runs one raw measurement on the arbiter: the client goes there and back.
async fn raw_round<F, Fut>(
    arbiter: &ArbiterHandle,
    client: RawClient,
    f: F,
) -> anyhow::Result<(RawClient, anyhow::Result<Measurement>)>
where
    F: FnOnce(RawClient) -> Fut,
    Fut: Future<Output = (RawClient, anyhow::Result<Measurement>)> + Send + 'static,
{
    on_arbiter(arbiter, f(client)).await
}

/// Waits (bounded) until the caller's registry lists a remote sink instance.
async fn wait_for_sink(node: &Node) -> anyhow::Result<()> {
    let deadline = Instant::now() + DISCOVERY_WAIT;
    while node.remote_instances(SINK).is_empty() {
        if Instant::now() >= deadline {
            bail!(
                "the caller node saw no `{SINK}` instance within {DISCOVERY_WAIT:?} (peers: {:?})",
                node.peers()
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

/// Runs `fut` as a task on `arbiter` and waits (bounded) for its output.
async fn on_arbiter<T, Fut>(arbiter: &ArbiterHandle, fut: Fut) -> anyhow::Result<T>
where
    T: Send + 'static,
    Fut: Future<Output = T> + Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = arbiter.spawn(async move {
        let _ = tx.send(fut.await);
    });
    ensure!(spawned, "the caller node's arbiter has stopped");
    match tokio::time::timeout(MEASUREMENT_BOUND, rx).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(_)) => bail!("the measuring task ended without a result (it panicked?)"),
        Err(_) => bail!("a measurement took longer than {MEASUREMENT_BOUND:?}"),
    }
}
