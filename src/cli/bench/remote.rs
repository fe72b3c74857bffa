//! `msa bench remote`: msa's remote tell and ask between two processes on
//! loopback, against a raw tokio TCP stream between the same two processes,
//! interleaved in the same run.
//!
//! This process starts a child (`msa bench remote --serve`, the same
//! executable) that runs a node with a sink service and a raw TCP server,
//! then runs its own node (the caller) seeded with the child's address. The
//! timed loops of `remote_tell` and `remote_ask` run as tasks on the caller
//! node's one arbiter, the thread that also runs its connection to the
//! child; in the child, the connections and the sink instance share the
//! node's one arbiter. The raw baseline likewise has one thread per end.
//!
//! `remote_ask_natural` is msa as a user places it: a second caller node
//! built with its defaults (one arbiter per core), asked from the bench's
//! main thread, outside the node's arbiters. Its baseline hands each raw
//! ping to a client on a thread of its own and gets the reply back, so that
//! each round trip crosses threads as the ask does.
//!
//! `msa bench streams`'s `remote1` scenario runs on the same child and
//! caller node (`topic`): the child's sink also subscribes to a topic.

mod awake;
mod child;
mod measure;
mod raw;
mod report;
mod serve;
mod service;
mod topic;

use std::future::Future;
use std::time::{Duration, Instant};

use actix::ArbiterHandle;
use anyhow::{anyhow, bail, ensure, Context as _};
use clap::Args;
use indicatif::ProgressBar;
use msa_runtime::Node;

use super::local::progress;
use awake::{Cpus, KeepAwake};
use child::{generate_secret, SinkProcess};
use measure::Measurement;
pub(super) use measure::Measurement as RemoteMeasurement;
use raw::{HandoffClient, RawClient};
use report::{RemoteComparison, RemoteScenario};
use service::{site_spec, WhereAreYou, SINK, SITE};
pub(super) use topic::publish_vs_tell;

/// The child's node name.
const SINK_NODE: &str = "bench-sink";
/// The child's node over mutual TLS (`--tls`).
const SINK_TLS_NODE: &str = "bench-sink-tls";
/// The variable that hands the child the directory of `--tls`'s certificates.
const TLS_DIR_ENV: &str = "MSA_BENCH_TLS_DIR";
/// The variable that names the topic the child's sink subscribes to
/// (`msa bench streams`).
const TOPIC_ENV: &str = "MSA_BENCH_TOPIC";

/// The TLS settings of node `name` from the certificates `--tls` made in `dir`.
fn tls_config(dir: &std::path::Path, name: &str) -> anyhow::Result<msa::remote::TlsConfig> {
    msa::remote::TlsConfig::from_files(
        dir.join("ca.pem"),
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    )
    .with_context(|| format!("the TLS files of {name} in {}", dir.display()))
}
/// Arbiter threads of the child's node (connections and sink share it).
const SINK_ARBITERS: usize = 1;
/// The caller node's name.
const CALLER_NODE: &str = "client";
/// Arbiter threads of the caller's node (loops and connection share it).
const CALLER_ARBITERS: usize = 1;
/// The name of the caller node of `remote_ask_natural` (default arbiters).
const NATURAL_NODE: &str = "client-natural";
/// The caller node over mutual TLS (`--tls`).
const CALLER_TLS_NODE: &str = "client-tls";
/// The natural caller node over mutual TLS (`--tls`).
const NATURAL_TLS_NODE: &str = "client-natural-tls";

/// Fewest rounds: each p50 is the median of the rounds' p50s.
const MIN_ROUNDS: u32 = 3;
/// Measurements per round: msa and baseline of three scenarios.
const STEPS_PER_ROUND: u64 = 6;
/// Measurements per round `--tls` adds: msa over TLS in three scenarios.
const TLS_STEPS_PER_ROUND: u64 = 3;

/// How long the caller may take to see the sink service.
const DISCOVERY_WAIT: Duration = Duration::from_secs(15);
/// Bound on any one measurement.
const MEASUREMENT_BOUND: Duration = Duration::from_secs(90);
/// How long nodes may drain at the end.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Where the sides of `remote_tell` and `remote_ask` run, for the report.
const THREADS: &str = "msa: caller loop + its connection's reader and writer on the caller \
node's 1 arbiter; sink node: reader, writer and sink instance on its 1 arbiter. \
raw: client loop on the caller node's arbiter, server on the child's main thread";

/// Where the sides of `remote_ask_natural` run, for the report.
fn natural_threads(arbiters: usize) -> String {
    format!(
        "msa: ask loop on the bench's main thread (a current-thread tokio runtime of its \
         own, no arbiter); the natural caller node ({arbiters} default arbiter(s), one per \
         core) runs its connection on one of its arbiters; sink node: reader, writer and \
         sink instance on its 1 arbiter. raw: timing loop on the main thread, client on a \
         dedicated thread (a current-thread tokio runtime), each ping handed over a \
         channel and each reply back through a oneshot; server on the child's main thread"
    )
}

/// Options of `msa bench remote`.
#[derive(Debug, Args)]
#[command(after_long_help = "\
Scenarios (two processes on loopback: this one and a child it starts):
  remote_tell         N one-way `node.service(\"sink\").tell(Hit(i))` (a u64 message)
                      to the child's sink; a tell that finds the connection's
                      outbound queue full (Overloaded) is retried after a yield
                      and counted. The clock stops when an ask for the sink's
                      count confirms all N. Both loops run on the caller node's
                      1 arbiter, with its connection.
                      Baseline: N 36-byte frames over a plain tokio TCP stream,
                      flushed every 1,024, then a count request.
  remote_ask          sequential asks of a u64 echo, each timed, on that arbiter.
                      Baseline: ping-pong of 36-byte frames on the raw stream,
                      on the same arbiter.
  remote_ask_natural  msa's natural placement: a second caller node built as a
                      user would (name, listen, secret, seed; default arbiters,
                      one per core), asked from the bench's main thread, not
                      from one of its arbiters.
                      Baseline: raw ping-pong whose client runs on a thread of
                      its own; the main thread hands it each ping over a
                      channel and gets the reply back through a oneshot.

Each round runs msa then baseline for each scenario in turn (at least 3
rounds). Throughput is the median of the rounds; each p50 is the median of the
rounds' p50s (p99 and p99.9 pool every round trip of every round).

Targets (same-run ratios; the verdict says met or MISSED per row):
  remote_tell         msa ≥ 0.08× raw TCP msg/s (the absolute msg/s is
                      reported too; the aim is 2.5M msg/s)
  remote_ask          p50 ≤ 1.5× the raw ping-pong p50
  remote_ask_natural  p50 ≤ 1.5× the hand-off ping-pong p50

--tls adds, in every round, msa over mutual TLS (its own sink node in the
child and its own caller nodes, placed as the plaintext ones; plaintext and
TLS take turns at going first) and reports tls_ratio with its target:
  remote_tell         TLS msg/s ≥ 0.6× plaintext msg/s
  remote_ask(_natural) TLS p50 ≤ 1.3× plaintext p50

CPU state: waking a parked thread is much slower when the CPUs idle (on a
shared VM, ~50 µs), so anything that crosses threads moves several-fold with
the load. --keep-awake runs a nice-19 busy thread per CPU while measuring;
each row says \"cpus\": \"idle\" or \"kept awake\". Compare ratios within a run.

Examples:
  msa bench remote
  msa bench remote --json > remote.jsonl
  msa bench remote --keep-awake --json
  msa bench remote --tls
  msa bench remote --messages 200000 --asks 5000 --rounds 5")]
pub(crate) struct RemoteArgs {
    /// One-way messages per measurement of `remote_tell`.
    #[arg(long, short = 'n', value_name = "N", default_value_t = 1_000_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    messages: u64,

    /// Sequential round trips per measurement of `remote_ask` and
    /// `remote_ask_natural`.
    #[arg(long, value_name = "N", default_value_t = 20_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    asks: u64,

    /// Rounds (at least 3); each measures msa and its baseline for every
    /// scenario. Medians over the rounds are reported.
    #[arg(long, short = 'r', value_name = "R", default_value_t = MIN_ROUNDS,
          value_parser = parse_rounds)]
    rounds: u32,

    /// While measuring, keep every CPU awake with a nice-19 busy thread per
    /// CPU (each row then says "cpus": "kept awake" instead of "idle").
    #[arg(long)]
    keep_awake: bool,

    /// Also measure msa over mutual TLS in the same run: a second pair of
    /// nodes (certificates made as `msa cert dev` does, in a temporary
    /// directory) takes turns with the plaintext pair in every round, against
    /// the same raw TCP baseline; each row adds `tls_ratio` (TLS ÷ plaintext)
    /// and its target.
    #[arg(long)]
    tls: bool,

    /// Print one JSON object per scenario per line instead of a table, and
    /// no progress bar.
    #[arg(long)]
    json: bool,

    /// Also write a self-contained HTML report (charts of throughput and
    /// latency percentiles against the same-run baselines, the table, the
    /// machine, the command) to FILE.
    #[arg(long, value_name = "FILE")]
    html: Option<std::path::PathBuf>,

    /// Internal: be the child process (sink node and raw server; reads
    /// MSA_SECRET, prints its addresses, stops when stdin closes).
    #[arg(long, hide = true)]
    serve: bool,
}

/// `--rounds`: a whole number of at least [`MIN_ROUNDS`].
fn parse_rounds(s: &str) -> Result<u32, String> {
    let rounds: u32 = s
        .parse()
        .map_err(|e| format!("not a whole number of rounds: {e}"))?;
    if rounds < MIN_ROUNDS {
        return Err(format!(
            "at least {MIN_ROUNDS} rounds are needed: each p50 is the median of the rounds' p50s"
        ));
    }
    Ok(rounds)
}

/// Runs `msa bench remote` (or, with `--serve`, its child).
pub(crate) fn run(args: RemoteArgs) -> anyhow::Result<()> {
    if args.serve {
        return serve::run();
    }
    let run_info = super::html::RunInfo::now();
    let comparisons = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(bench(&args))?;
    if args.json {
        print!("{}", report::json_lines(&comparisons)?);
    } else {
        print!("{}", report::table(&comparisons));
    }
    if let Some(path) = &args.html {
        super::html::write(
            path,
            "msa bench remote",
            &run_info,
            &report::html_sections(&comparisons),
        )?;
    }
    Ok(())
}

/// The caller node of `remote_tell` and `remote_ask` (one arbiter), or of
/// `remote_ask_natural` (built as a user would: no `.arbiters(..)`); over
/// mutual TLS with the certificates in `tls`.
fn start_caller(
    natural: bool,
    secret: &str,
    seed: &str,
    tls: Option<&std::path::Path>,
) -> anyhow::Result<Node> {
    let name = match (natural, tls.is_some()) {
        (false, false) => CALLER_NODE,
        (true, false) => NATURAL_NODE,
        (false, true) => CALLER_TLS_NODE,
        (true, true) => NATURAL_TLS_NODE,
    };
    let mut builder = if natural {
        Node::builder().name(name)
    } else {
        Node::builder().name(name).arbiters(CALLER_ARBITERS)
    };
    if let Some(d) = tls {
        builder = builder.tls(tls_config(d, name)?);
    }
    builder
        .listen(([127, 0, 0, 1], 0).into())
        .secret(secret.as_bytes().to_vec())
        .seed(seed.to_string())
        .start()
        .with_context(|| format!("starting the {name} node"))
}

/// Stops a caller node (bounded).
async fn stop_node(node: Node) -> anyhow::Result<()> {
    let name = node.name().to_string();
    tokio::time::timeout(SHUTDOWN_GRACE * 3, node.shutdown(SHUTDOWN_GRACE))
        .await
        .map_err(|_| anyhow!("the {name} node did not stop in time"))?
        .with_context(|| format!("stopping the {name} node"))
}

/// The two caller nodes of one transport (plaintext, or mutual TLS).
struct Callers {
    /// One arbiter: `remote_tell` and `remote_ask`.
    node: Node,
    /// Default arbiters: `remote_ask_natural`.
    natural: Node,
}

impl Callers {
    fn start(secret: &str, seed: &str, tls: Option<&std::path::Path>) -> anyhow::Result<Self> {
        let node = start_caller(false, secret, seed, tls)?;
        match start_caller(true, secret, seed, tls) {
            Ok(natural) => Ok(Self { node, natural }),
            Err(e) => {
                // Not stopped here: dropping a node stops it.
                drop(node);
                Err(e)
            }
        }
    }

    async fn stop(self) -> anyhow::Result<()> {
        let natural = stop_node(self.natural).await;
        let node = stop_node(self.node).await;
        natural.and(node)
    }
}

/// Starts both processes, measures, and stops both (also on failure).
async fn bench(args: &RemoteArgs) -> anyhow::Result<Vec<RemoteComparison>> {
    // Setup, then the measurements of each round.
    let steps = if args.tls {
        STEPS_PER_ROUND + TLS_STEPS_PER_ROUND
    } else {
        STEPS_PER_ROUND
    };
    let bar = progress(args.json, 1 + steps * u64::from(args.rounds));
    bar.set_message("starting the sink process and the caller nodes");
    let secret = generate_secret()?;
    let tls_dir = if args.tls {
        let d = std::env::temp_dir().join(format!("msa-bench-tls-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let names = [SINK_TLS_NODE, CALLER_TLS_NODE, NATURAL_TLS_NODE].map(String::from);
        crate::cli::cert::dev(&d, &names, "operator", 1)?;
        Some(d)
    } else {
        None
    };
    let outcome = bench_with_sink(args, &secret, tls_dir.as_deref(), &bar).await;
    bar.finish_and_clear();
    if let Some(d) = &tls_dir {
        let _ = std::fs::remove_dir_all(d);
    }
    outcome
}

/// With the secret (and the TLS certificates) made: the child, the callers,
/// the measurements.
async fn bench_with_sink(
    args: &RemoteArgs,
    secret: &str,
    tls: Option<&std::path::Path>,
    bar: &ProgressBar,
) -> anyhow::Result<Vec<RemoteComparison>> {
    let sink = SinkProcess::start(secret, tls, None)?;
    let plain = Callers::start(secret, &sink.ready.addr, None)?;
    let secure = match (tls, &sink.ready.tls) {
        (Some(d), Some(seed)) => match Callers::start(secret, seed, Some(d)) {
            Ok(c) => Some(c),
            Err(e) => {
                let _ = plain.stop().await;
                return Err(e);
            }
        },
        (Some(_), None) => {
            let _ = plain.stop().await;
            bail!("the sink process started no TLS node");
        }
        _ => None,
    };
    let outcome = measure_with_cpus(&plain, secure.as_ref(), &sink.ready.raw, args, bar).await;
    let stopped_tls = match secure {
        Some(c) => c.stop().await,
        None => Ok(()),
    };
    let stopped = plain.stop().await;
    let child = sink.stop();
    let comparisons = outcome?;
    stopped?;
    stopped_tls?;
    let status = child?;
    ensure!(status.success(), "the sink process exited with {status}");
    Ok(comparisons)
}

/// Measures with the CPUs as `--keep-awake` asks: the busy threads run from
/// before the warm-up until the last measurement.
async fn measure_with_cpus(
    plain: &Callers,
    tls: Option<&Callers>,
    raw_addr: &str,
    args: &RemoteArgs,
    bar: &ProgressBar,
) -> anyhow::Result<Vec<RemoteComparison>> {
    let awake = if args.keep_awake {
        bar.set_message("starting a busy thread per CPU");
        let a = KeepAwake::start().context("keeping the CPUs awake")?;
        tracing::debug!(threads = a.threads(), "CPUs kept awake");
        Some(a)
    } else {
        None
    };
    let cpus = if awake.is_some() {
        Cpus::KeptAwake
    } else {
        Cpus::Idle
    };
    let outcome = measure_all(plain, tls, raw_addr, args, cpus, bar).await;
    drop(awake);
    outcome
}

/// One transport's callers, ready to measure: the sink seen, the arbiter
/// of the one-arbiter node found, every path warmed up.
struct Side {
    arbiter: ArbiterHandle,
    sink: msa_runtime::ServiceRef,
    natural_sink: msa_runtime::ServiceRef,
}

impl Side {
    async fn prepare(callers: &Callers, args: &RemoteArgs) -> anyhow::Result<Self> {
        wait_for_sink(&callers.node).await?;
        wait_for_sink(&callers.natural).await?;
        // A local helper answers with the arbiter it runs on: the caller
        // node's only arbiter, which also runs its connection.
        callers
            .node
            .spawn(site_spec())
            .await
            .context("spawning the helper service")?;
        let arbiter = callers
            .node
            .service(SITE)
            .ask(WhereAreYou)
            .await
            .context("asking the helper service for its arbiter")?;
        let side = Self {
            arbiter,
            sink: callers.node.service(SINK),
            natural_sink: callers.natural.service(SINK),
        };
        // Untimed warm-up of every path (connections, buffers, code).
        let warm_asks = args.asks.min(1_000);
        side.tell(args.messages.min(10_000)).await?;
        side.ask(warm_asks).await?;
        side.ask_natural(warm_asks).await?;
        Ok(side)
    }

    async fn tell(&self, messages: u64) -> anyhow::Result<Measurement> {
        on_arbiter(&self.arbiter, measure::tell(self.sink.clone(), messages)).await?
    }

    async fn ask(&self, asks: u64) -> anyhow::Result<Measurement> {
        on_arbiter(&self.arbiter, measure::ask(self.sink.clone(), asks)).await?
    }

    async fn ask_natural(&self, asks: u64) -> anyhow::Result<Measurement> {
        bounded(measure::ask(self.natural_sink.clone(), asks)).await?
    }
}

async fn measure_all(
    plain: &Callers,
    tls: Option<&Callers>,
    raw_addr: &str,
    args: &RemoteArgs,
    cpus: Cpus,
    bar: &ProgressBar,
) -> anyhow::Result<Vec<RemoteComparison>> {
    let msa = Side::prepare(plain, args).await?;
    let secure = match tls {
        Some(c) => Some(Side::prepare(c, args).await.context("over mutual TLS")?),
        None => None,
    };
    let arbiter = msa.arbiter.clone();
    let addr = raw_addr.to_string();
    let mut raw = on_arbiter(&arbiter, async move { RawClient::connect(&addr).await }).await??;
    let handoff = HandoffClient::start(raw_addr).await?;

    // Untimed warm-up of the baselines.
    let warm_tells = args.messages.min(10_000);
    let warm_asks = args.asks.min(1_000);
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
    bounded(handoff.ping_pong(warm_asks)).await??;
    bar.inc(1);

    let natural_threads = natural_threads(plain.natural.arbiters());
    let mut tell = RemoteComparison::new(RemoteScenario::Tell, THREADS, cpus);
    let mut ask = RemoteComparison::new(RemoteScenario::Ask, THREADS, cpus);
    let mut ask_natural = RemoteComparison::new(RemoteScenario::AskNatural, &natural_threads, cpus);
    for round in 1..=args.rounds {
        let step = |what: &str| {
            bar.set_message(format!("{what} · round {round}/{}", args.rounds));
        };
        let context = |what: &str| format!("{what} (round {round})");
        // Plaintext and TLS take turns at going first.
        let tls_first = round % 2 == 0;

        for over_tls in [tls_first, !tls_first] {
            match (&secure, over_tls) {
                (Some(s), true) => {
                    step("remote_tell · msa over TLS");
                    let m = s.tell(args.messages).await;
                    tell.tls
                        .push(m.with_context(|| context("remote_tell, msa over TLS"))?);
                }
                (_, false) => {
                    step("remote_tell · msa");
                    let m = msa.tell(args.messages).await;
                    tell.msa
                        .push(m.with_context(|| context("remote_tell, msa"))?);
                }
                (None, true) => continue,
            }
            bar.inc(1);
        }

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

        for over_tls in [tls_first, !tls_first] {
            match (&secure, over_tls) {
                (Some(s), true) => {
                    step("remote_ask · msa over TLS");
                    let m = s.ask(args.asks).await;
                    ask.tls
                        .push(m.with_context(|| context("remote_ask, msa over TLS"))?);
                }
                (_, false) => {
                    step("remote_ask · msa");
                    let m = msa.ask(args.asks).await;
                    ask.msa.push(m.with_context(|| context("remote_ask, msa"))?);
                }
                (None, true) => continue,
            }
            bar.inc(1);
        }

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

        for over_tls in [tls_first, !tls_first] {
            match (&secure, over_tls) {
                (Some(s), true) => {
                    step("remote_ask_natural · msa over TLS");
                    let m = s.ask_natural(args.asks).await;
                    ask_natural
                        .tls
                        .push(m.with_context(|| context("remote_ask_natural, msa over TLS"))?);
                }
                (_, false) => {
                    step("remote_ask_natural · msa");
                    let m = msa.ask_natural(args.asks).await;
                    ask_natural
                        .msa
                        .push(m.with_context(|| context("remote_ask_natural, msa"))?);
                }
                (None, true) => continue,
            }
            bar.inc(1);
        }

        step("remote_ask_natural · raw TCP hand-off");
        let m = bounded(handoff.ping_pong(args.asks))
            .await?
            .with_context(|| context("remote_ask_natural, raw TCP hand-off"))?;
        ask_natural.raw.push(m);
        bar.inc(1);
    }
    handoff.stop()?;
    Ok(vec![tell, ask, ask_natural])
}

/// Runs `fut` on this (the bench's main) thread, bounded.
async fn bounded<T>(fut: impl Future<Output = T>) -> anyhow::Result<T> {
    tokio::time::timeout(MEASUREMENT_BOUND, fut)
        .await
        .map_err(|_| anyhow!("a measurement took longer than {MEASUREMENT_BOUND:?}"))
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
