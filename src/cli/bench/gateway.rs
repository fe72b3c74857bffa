//! `msa bench gateway`: HTTP requests through the msa gateway, configured
//! as a user would run it (JWT auth, a policy, metrics), to a local echo
//! service, against a bare actix-web handler that returns the same JSON,
//! interleaved in the same run.
//!
//! One process holds everything: the msa node (its own arbiter threads) with
//! the echo service; the gateway (its own thread and actix System, and its
//! workers); the baseline server (likewise, with as many workers); and the
//! client, an awc client on this thread's own actix System, with C
//! keep-alive connections per side. Every request of the gateway side goes
//! the whole way: JWT verification, policy, JSON decode, the msa ask, JSON
//! encode and the request metrics.

mod baseline;
mod grpc_load;
mod live_view;
mod load;
mod report;
mod stack;

use anyhow::{bail, Context as _};
use clap::Args;
use msa::actors::echo::Ping;
use msa::RemoteMessage;

use super::local::progress;
use baseline::Baseline;
use grpc_load::GrpcLoad;
use live_view::LiveViewReader;
use report::LiveViewRound;

/// What the rounds measured: through the gateway, the bare baseline, over
/// gRPC (`--grpc`) and through the gateway with a live view open
/// (`--live-view`).
type Sides = (
    Vec<load::Round>,
    Vec<load::Round>,
    Vec<load::Round>,
    Vec<LiveViewRound>,
);
use load::Load;
use report::GatewayComparison;
use stack::{Stack, SERVICE};

/// Requests per side before the timed rounds (at most `--requests`).
const WARM_UP_REQUESTS: u64 = 2_000;

/// Options of `msa bench gateway`.
#[derive(Debug, Args)]
#[command(after_long_help = "\
What runs (one process, loopback):
  gateway   an msa node with the echo service (--arbiters threads) and the
            msa gateway in front (--workers actix-web workers, own thread
            and System) with HS256 JWT auth, a policy rule allowing the
            token's role to call `echo.Ping`, and its request metrics.
            Requests: POST /v1/echo/echo.Ping with body `seq`.
  baseline  a bare actix-web server (same worker count, own thread and
            System) whose one route decodes the body into echo.Ping with
            serde_json and answers the JSON of Pong: no msa, no auth.
  client    awc on this thread (its own actix System): --connections
            keep-alive connections per side sharing --requests requests,
            each with the bearer token (the baseline ignores it). A request
            counts only with status 200 and the body `seq`; failures are
            counted and reported loudly (and the command then fails).

After an untimed warm-up, each of --rounds rounds measures the baseline,
then the gateway; the report gives the median throughput of each side and
latency percentiles over all requests. Target: gateway ≥ 0.6× baseline.

Examples:
  msa bench gateway
  msa bench gateway --json > gateway.jsonl
  msa bench gateway --access-rules      # the echo service checks the role too
  msa bench gateway --grpc              # + the same calls over gRPC (target ≥ 0.5× HTTP)
  msa bench gateway --live-view         # + with a live-view stream open (target ≥ 0.9×)
  msa bench gateway --connections 64 --requests 200000 --rounds 5")]
pub(crate) struct GatewayArgs {
    /// Keep-alive connections per side (concurrent requests in flight).
    #[arg(long, short = 'c', value_name = "C", default_value_t = 32,
          value_parser = clap::value_parser!(u64).range(1..=10_000))]
    connections: u64,

    /// Requests per round per side.
    #[arg(long, short = 'n', value_name = "N", default_value_t = 100_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    requests: u64,

    /// Rounds; each measures the baseline, then the gateway. The median of
    /// each side is reported (use 3 or more).
    #[arg(long, short = 'r', value_name = "R", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..))]
    rounds: u32,

    /// actix-web workers of the gateway and of the baseline server (the
    /// gateway's default is 2).
    #[arg(long, value_name = "W", default_value_t = 2,
          value_parser = clap::value_parser!(u64).range(1..=64))]
    workers: u64,

    /// Arbiter threads of the msa node that runs the echo service.
    #[arg(long, value_name = "A", default_value_t = 1,
          value_parser = clap::value_parser!(u64).range(1..=64))]
    arbiters: u64,

    /// Print one JSON object on one line instead of a table, and no
    /// progress bar.
    #[arg(long)]
    json: bool,

    /// Also write a self-contained HTML report (charts of throughput and
    /// latency percentiles against the same-run baseline, the table, the
    /// machine, the command) to FILE.
    #[arg(long, value_name = "FILE")]
    html: Option<std::path::PathBuf>,

    /// Give the echo service access rules too (every message: the bench's
    /// role), so each request is also checked by the serving instance
    /// (docs/security.md, "Access rules at each service").
    #[arg(long)]
    access_rules: bool,

    /// Also measure the same calls over gRPC (`msa.v1.Gateway/Call` to the
    /// gateway's gRPC ingress, --workers threads, tonic's client with
    /// --connections HTTP/2 connections), after the HTTP gateway in each
    /// round; reported as gRPC ÷ HTTP gateway (target ≥ 0.5×, docs/grpc.md).
    #[arg(long)]
    grpc: bool,

    /// Also measure the gateway with one live-view stream open
    /// (`GET /v1/live/stream` with an admin token, read as the page at `/ui`
    /// reads it) in each round, after the gateway without it; reported as
    /// with ÷ without (target ≥ 0.9×, docs/live-view.md).
    #[arg(long)]
    live_view: bool,
}

/// Runs `msa bench gateway` and prints the report on stdout.
pub(crate) fn run(args: GatewayArgs) -> anyhow::Result<()> {
    let run_info = super::html::RunInfo::now();
    let comparison = actix_rt::System::new().block_on(bench(&args))?;
    let record = comparison.record();
    if args.json {
        print!("{}", report::json_line(&comparison)?);
    } else {
        print!("{}", report::table(&comparison));
    }
    if let Some(path) = &args.html {
        super::html::write(
            path,
            "msa bench gateway",
            &run_info,
            &report::html_sections(&comparison),
        )?;
    }
    if let Some(banner) = report::failure_banner(&record) {
        eprint!("{banner}");
        bail!("requests failed during the benchmark (see above)");
    }
    Ok(())
}

/// Starts both servers, measures, and stops both (also on failure).
async fn bench(args: &GatewayArgs) -> anyhow::Result<GatewayComparison> {
    let workers = usize::try_from(args.workers)?;
    let arbiters = usize::try_from(args.arbiters)?;
    let connections = usize::try_from(args.connections)?;
    // Setup, warm-up, then 2 measurements per round.
    let sides = 2 + u64::from(args.grpc) + u64::from(args.live_view);
    let bar = progress(args.json, 2 + sides * u64::from(args.rounds));
    bar.set_message("starting the node, the gateway and the baseline server");
    let stack = Stack::start(workers, arbiters, args.access_rules, args.grpc).await?;
    let baseline = match Baseline::start(workers) {
        Ok(b) => b,
        Err(e) => {
            let _ = stack.stop().await;
            return Err(e);
        }
    };
    bar.inc(1);
    let threads = format!(
        "client: {connections} connections per side from 1 thread (awc, own System); \
         gateway: {workers} actix-web worker thread(s) (own System) calling a node with \
         {arbiters} arbiter thread(s) running the echo instance{}; baseline: {workers} \
         actix-web worker thread(s) (own System); {} CPU(s), not pinned",
        if args.access_rules {
            " (with access rules)"
        } else {
            ""
        },
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let outcome = measure(args, &stack, &baseline, connections, &bar).await;
    bar.finish_and_clear();
    let stopped_baseline = baseline.stop().await;
    let stopped_stack = stack.stop().await;
    let (gateway, base, grpc, live_view) = outcome?;
    stopped_baseline.context("stopping the baseline server")?;
    stopped_stack.context("stopping the gateway and the node")?;
    Ok(GatewayComparison {
        threads,
        connections,
        workers,
        arbiters,
        gateway,
        baseline: base,
        grpc,
        live_view,
    })
}

/// The warm-up and the interleaved rounds.
async fn measure(
    args: &GatewayArgs,
    stack: &Stack,
    baseline: &Baseline,
    connections: usize,
    bar: &indicatif::ProgressBar,
) -> anyhow::Result<Sides> {
    let path = format!("/v1/{SERVICE}/{}", Ping::NAME);
    let gateway = Load::new(
        &format!("http://{}{path}", stack.local_addr()),
        &stack.token,
        connections,
    )?;
    let bare = Load::new(
        &format!("http://{}{path}", baseline.local_addr()),
        &stack.token,
        connections,
    )?;

    let grpc = match stack.grpc_addr() {
        Some(addr) => {
            Some(GrpcLoad::connect(addr, &stack.token, SERVICE, Ping::NAME, connections).await?)
        }
        None => None,
    };

    // Untimed: opens the connections and checks that both sides answer
    // right, so that a misconfiguration fails fast and plainly.
    bar.set_message("warm-up");
    let warm = args.requests.min(WARM_UP_REQUESTS);
    for (side, load) in [("baseline", &bare), ("gateway", &gateway)] {
        let r = load.round(warm).await?;
        if let Some(first) = r.first_failure {
            bail!(
                "{} of {warm} warm-up requests to the {side} failed; first: {first}",
                r.failures
            );
        }
    }
    if let Some(g) = &grpc {
        let r = g.round(warm).await?;
        if let Some(first) = r.first_failure {
            bail!(
                "{} of {warm} warm-up calls over gRPC failed; first: {first}",
                r.failures
            );
        }
    }
    bar.inc(1);

    let base_url = format!("http://{}", stack.local_addr());
    let mut with_live_view = Vec::new();
    let mut through_grpc = Vec::new();
    let mut through_gateway = Vec::new();
    let mut bare_rounds = Vec::new();
    for round in 1..=args.rounds {
        for (side, load, out) in [
            ("baseline", &bare, &mut bare_rounds),
            ("gateway", &gateway, &mut through_gateway),
        ] {
            bar.set_message(format!("{side} · round {round}/{}", args.rounds));
            let r = load
                .round(args.requests)
                .await
                .with_context(|| format!("{side}, round {round}"))?;
            out.push(r);
            bar.inc(1);
        }
        if let Some(g) = &grpc {
            bar.set_message(format!("grpc · round {round}/{}", args.rounds));
            let r = g
                .round(args.requests)
                .await
                .with_context(|| format!("grpc, round {round}"))?;
            through_grpc.push(r);
            bar.inc(1);
        }
        if args.live_view {
            bar.set_message(format!(
                "gateway + live view · round {round}/{}",
                args.rounds
            ));
            let reader = LiveViewReader::open(&base_url, &stack.admin_token)
                .with_context(|| format!("opening the live view, round {round}"))?;
            let r = gateway.round(args.requests).await;
            let snapshots = reader
                .finish()
                .with_context(|| format!("the live view, round {round}"))?;
            with_live_view.push(LiveViewRound {
                round: r.with_context(|| format!("gateway + live view, round {round}"))?,
                snapshots,
            });
            bar.inc(1);
        }
    }
    Ok((through_gateway, bare_rounds, through_grpc, with_live_view))
}
