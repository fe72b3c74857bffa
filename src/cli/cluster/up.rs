//! `msa cluster up`: N `msa node` processes on loopback, the demo services
//! spread across them, stopped together on Ctrl-C or SIGTERM.
//!
//! node1 also runs the HTTP gateway with the shop demo's policy and routes
//! (`--gateway`, default [`DEFAULT_GATEWAY`]; a taken address fails the
//! start, so a client never reaches another cluster's gateway by mistake;
//! auth on with `--jwt-secret`).
//!
//! node1 starts first; the others seed it. A node that dies is reported
//! (name, exit status) and not restarted; the others keep running. On
//! Ctrl-C or SIGTERM every node gets SIGTERM and [`STOP_WAIT`] to leave the
//! cluster gracefully; stragglers are then killed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{anyhow, bail};
use clap::Args;
use nix::sys::signal::Signal;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::plan::{plan, NodePlan};
use super::process::{Exited, GatewayLaunch, Launch, NodeProcess};
use super::{secret, state, table};
use crate::cli::node::{ReadyLine, StopSignals};

/// How long nodes may take to stop after SIGTERM before they are killed
/// (under the 10 s `cluster up` promises, kill included).
const STOP_WAIT: Duration = Duration::from_secs(9);

/// How long the nodes may take to form the cluster after their ready
/// lines (joined and routing every service) before the summary is printed
/// anyway, with a warning.
const FORM_WAIT: Duration = Duration::from_secs(20);

/// How long a node may take to print its ready line.
const READY_WAIT: Duration = Duration::from_secs(30);

/// Where node1's gateway listens unless `--gateway` says otherwise.
const DEFAULT_GATEWAY: &str = "127.0.0.1:8080";

/// The port of node1's gRPC ingress when `--grpc` is not given (gRPC's
/// customary one), unless the gateway's port is 0.
const DEFAULT_GRPC_PORT: u16 = 50051;

/// Options of `msa cluster up`.
#[derive(Debug, Args)]
#[command(after_help = "\
Prints a table of the nodes, the seed address and the cluster secret (generated unless given), \
so that `msa cluster status --seed ADDR --secret S` works from another terminal. \
Node logs are streamed on stderr, prefixed with the node name (RUST_LOG sets their level).
node1 runs the HTTP gateway with the shop demo: POST /orders, GET /orders/{id}, POST /v1/{service}/{message}; \
the live view is at /ui on it (the `ui:` line; docs/live-view.md).
With --jwt-secret, calls need `Authorization: Bearer <token>` (`msa token --sub alice --role customer`).")]
pub(crate) struct UpArgs {
    /// Number of node processes (named node1..nodeN)
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=100))]
    nodes: u16,
    /// Remoting port of node1; nodeK listens on P+K-1 [default: free ports]
    #[arg(long, value_name = "P", value_parser = clap::value_parser!(u16).range(1..))]
    base_port: Option<u16>,
    /// Cluster secret [default: 32 random bytes, hex, printed]
    #[arg(long, env = "MSA_SECRET", hide_env_values = true)]
    secret: Option<String>,
    /// Cluster name
    #[arg(long, env = "MSA_CLUSTER", default_value = "msa")]
    cluster: String,
    /// Address of the HTTP gateway on node1 (port 0 picks a free one)
    /// [default: 127.0.0.1:8080; if it is taken, `cluster up` fails]
    #[arg(long, value_name = "IP:PORT")]
    gateway: Option<SocketAddr>,
    /// Address of the gRPC ingress beside node1's gateway (docs/grpc.md)
    /// [default: the gateway's IP, port 50051; port 0 when the gateway's is 0]
    #[arg(long, value_name = "IP:PORT")]
    grpc: Option<SocketAddr>,
    /// Turn gateway auth on: JWTs signed HS256 with this secret (its UTF-8
    /// bytes); get tokens with `msa token`
    #[arg(long, env = "MSA_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// Where to write the cluster's state (addresses, pids, secret) for
    /// the fault commands (`msa cluster partition`, `kill`, ...); removed
    /// at exit [default: $XDG_RUNTIME_DIR/msa/cluster.json, else
    /// <tmp>/msa-<uid>/cluster.json]
    #[arg(long, env = "MSA_STATE", value_name = "FILE")]
    state: Option<std::path::PathBuf>,
    /// Mutual TLS between the nodes: make a development CA, a certificate
    /// per node and an operator certificate (as `msa cert dev`) in
    /// --tls-dir, and start the nodes with them
    #[arg(long)]
    tls: bool,
    /// Where --tls keeps the certificates (a CA already there is reused)
    /// [default: a `tls` directory beside the state file]
    #[arg(long, value_name = "DIR", requires = "tls")]
    tls_dir: Option<std::path::PathBuf>,
}

impl UpArgs {
    /// What node1's gateway is started with.
    fn gateway(&self) -> anyhow::Result<GatewayLaunch<'_>> {
        let bind: SocketAddr = match self.gateway {
            Some(a) => a,
            None => DEFAULT_GATEWAY.parse()?,
        };
        let grpc = self.grpc.unwrap_or_else(|| {
            let port = if bind.port() == 0 {
                0
            } else {
                DEFAULT_GRPC_PORT
            };
            SocketAddr::new(bind.ip(), port)
        });
        Ok(GatewayLaunch {
            bind,
            grpc,
            jwt_secret: self.jwt_secret.as_deref().filter(|s| !s.is_empty()),
        })
    }
}

/// Runs `msa cluster up`.
pub(crate) fn run(args: UpArgs) -> anyhow::Result<()> {
    if let Some(p) = args.base_port {
        if u32::from(p) + u32::from(args.nodes) - 1 > u32::from(u16::MAX) {
            bail!("--base-port {p} leaves no room for {} nodes", args.nodes);
        }
    }
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(up(args))
}

async fn up(args: UpArgs) -> anyhow::Result<()> {
    let mut stop = StopSignals::install()?;
    let (secret, generated) = match args.secret.clone().filter(|s| !s.is_empty()) {
        Some(s) => (s, false),
        // Mutual TLS authenticates the nodes: no secret unless given.
        None if args.tls => (String::new(), false),
        None => (secret::generate()?, true),
    };
    let plans = plan(usize::from(args.nodes), args.base_port);
    let gateway = args.gateway()?;
    let state_path = args.state.clone().unwrap_or_else(state::default_path);
    let tls_dir = match (args.tls, &args.tls_dir) {
        (false, _) => None,
        (true, Some(d)) => Some(d.clone()),
        (true, None) => Some(
            state_path
                .parent()
                .map_or_else(|| std::path::PathBuf::from("tls"), |p| p.join("tls")),
        ),
    };
    if let Some(d) = &tls_dir {
        let names: Vec<String> = plans.iter().map(|p| p.name.clone()).collect();
        crate::cli::cert::dev(d, &names, "operator", 30)
            .map_err(|e| e.context("cannot make the cluster's certificates"))?;
    }
    let (exits_tx, exits) = mpsc::unbounded_channel();
    let mut nodes = Nodes {
        procs: Vec::new(),
        exits,
        exits_tx,
    };
    let started = tokio::select! {
        r = nodes.start(&plans, &args.cluster, &secret, gateway, tls_dir.as_deref()) => r,
        why = stop.next() => Err(anyhow!("{why} while starting")),
    };
    let ready = match started {
        Ok(r) => r,
        Err(e) => {
            nodes.stop(&mut stop).await;
            return Err(e.context("the cluster did not start"));
        }
    };
    // Print once the cluster has formed (every node up and routing every
    // service), so that what follows the summary can call anywhere.
    let formed = tokio::select! {
        r = super::formed::wait_formed(&ready, &args.cluster, &secret, tls_dir.as_deref(), FORM_WAIT) => r,
        why = stop.next() => {
            eprintln!("msa cluster: {why}: stopping {} node(s)", nodes.procs.len());
            nodes.stop(&mut stop).await;
            return Ok(());
        }
    };
    if let Err(why) = formed {
        eprintln!("msa cluster: the cluster has not formed within {FORM_WAIT:?} ({why}); going on");
    }
    print_summary(
        &args,
        &ready,
        &nodes.procs,
        generated.then_some(&secret),
        tls_dir.as_deref(),
    );
    let wrote_state = write_state(
        &state_path,
        &args.cluster,
        &secret,
        &ready,
        &nodes.procs,
        tls_dir.as_deref(),
    );

    let mut running = nodes.procs.len();
    loop {
        tokio::select! {
            why = stop.next() => {
                eprintln!("msa cluster: {why}: stopping {running} node(s)");
                break;
            }
            Some(e) = nodes.exits.recv() => {
                running -= 1;
                nodes.forget(&e.name);
                eprintln!(
                    "msa cluster: {} exited unexpectedly ({}); not restarting it, {running} node(s) still running",
                    e.name,
                    describe(&e)
                );
                if running == 0 {
                    if wrote_state {
                        let _ = std::fs::remove_file(&state_path);
                    }
                    bail!("every node has exited");
                }
            }
        }
    }
    nodes.stop(&mut stop).await;
    if wrote_state {
        let _ = std::fs::remove_file(&state_path);
    }
    Ok(())
}

/// Writes the state file for the fault commands; whether it was written
/// (a failure is reported, not fatal).
fn write_state(
    path: &std::path::Path,
    cluster: &str,
    secret: &str,
    ready: &[ReadyLine],
    procs: &[NodeProcess],
    tls_dir: Option<&std::path::Path>,
) -> bool {
    let st = state::ClusterState {
        cluster: cluster.to_string(),
        secret: secret.to_string(),
        seed: ready.first().map(|r| r.addr.clone()).unwrap_or_default(),
        nodes: ready
            .iter()
            .map(|r| state::NodeState {
                name: r.name.clone(),
                addr: r.addr.clone(),
                pid: procs.iter().find(|p| p.name == r.name).map_or(0, |p| p.pid),
            })
            .collect(),
        tls_dir: tls_dir.map(std::path::Path::to_path_buf),
    };
    match state::write(path, &st) {
        Ok(()) => {
            eprintln!(
                "msa cluster: state for the fault commands in {}",
                path.display()
            );
            true
        }
        Err(e) => {
            eprintln!("msa cluster: cannot write the state file: {e:#}");
            false
        }
    }
}

/// The children, and the channel their exits arrive on.
struct Nodes {
    procs: Vec<NodeProcess>,
    exits: mpsc::UnboundedReceiver<Exited>,
    exits_tx: mpsc::UnboundedSender<Exited>,
}

impl Nodes {
    /// Starts node1 (with the gateway), waits for its address, then the
    /// others seeding it.
    async fn start(
        &mut self,
        plans: &[NodePlan],
        cluster: &str,
        secret: &str,
        gateway: GatewayLaunch<'_>,
        tls_dir: Option<&std::path::Path>,
    ) -> anyhow::Result<Vec<ReadyLine>> {
        let Some((first, rest)) = plans.split_first() else {
            return Ok(Vec::new());
        };
        let mut launch = Launch {
            cluster,
            secret,
            seed: None,
            gateway: Some(gateway),
            tls_dir,
        };
        let seed = self.spawn(first, launch)?.await?;
        launch.seed = Some(&seed.addr);
        launch.gateway = None;
        let mut waits = Vec::new();
        for p in rest {
            waits.push(self.spawn(p, launch)?);
        }
        let mut ready = vec![seed.clone()];
        for w in waits {
            ready.push(w.await?);
        }
        Ok(ready)
    }

    /// Starts one node; the returned future resolves to its ready line.
    fn spawn(
        &mut self,
        plan: &NodePlan,
        launch: Launch<'_>,
    ) -> anyhow::Result<impl std::future::Future<Output = anyhow::Result<ReadyLine>>> {
        let (proc, ready) = NodeProcess::spawn(plan, launch, self.exits_tx.clone())?;
        self.procs.push(proc);
        let name = plan.name.clone();
        Ok(async move {
            match tokio::time::timeout(READY_WAIT, ready).await {
                Ok(Ok(r)) => Ok(r),
                Ok(Err(_)) => Err(anyhow!(
                    "{name} exited before it was ready (see its log above)"
                )),
                Err(_) => Err(anyhow!("{name} was not ready within {READY_WAIT:?}")),
            }
        })
    }

    /// Drops a node that has exited.
    fn forget(&mut self, name: &str) {
        self.procs.retain(|p| p.name != name);
    }

    /// SIGTERM to every node, up to [`STOP_WAIT`] for them to exit (cut
    /// short by another Ctrl-C or SIGTERM), then SIGKILL to the rest.
    async fn stop(&mut self, signals: &mut StopSignals) {
        let mut alive: HashMap<String, NodeProcess> =
            self.procs.drain(..).map(|p| (p.name.clone(), p)).collect();
        for p in alive.values() {
            p.signal(Signal::SIGTERM);
        }
        let deadline = Instant::now() + STOP_WAIT;
        let hurry = tokio::select! {
            () = self.reap(&mut alive, deadline) => None,
            why = signals.next() => Some(why),
        };
        if alive.is_empty() {
            return;
        }
        for p in alive.values() {
            match hurry {
                Some(why) => eprintln!("msa cluster: {why} again; killing {}", p.name),
                None => eprintln!(
                    "msa cluster: {} did not stop within {STOP_WAIT:?}; killing it",
                    p.name
                ),
            }
            p.signal(Signal::SIGKILL);
        }
        self.reap(&mut alive, Instant::now() + Duration::from_secs(1))
            .await;
        // Whatever is left is killed when its handle drops (kill_on_drop).
    }

    /// Reports exits until `alive` is empty or `deadline` passes.
    async fn reap(&mut self, alive: &mut HashMap<String, NodeProcess>, deadline: Instant) {
        while !alive.is_empty() {
            match tokio::time::timeout_at(deadline, self.exits.recv()).await {
                Ok(Some(e)) => {
                    if alive.remove(&e.name).is_some() {
                        eprintln!("msa cluster: {} stopped ({})", e.name, describe(&e));
                    }
                }
                Ok(None) | Err(_) => return,
            }
        }
    }
}

fn describe(e: &Exited) -> String {
    match &e.status {
        Ok(s) => s.to_string(),
        Err(err) => format!("cannot tell how: {err}"),
    }
}

fn print_summary(
    args: &UpArgs,
    ready: &[ReadyLine],
    procs: &[NodeProcess],
    generated_secret: Option<&String>,
    tls_dir: Option<&std::path::Path>,
) {
    let rows: Vec<Vec<String>> = ready
        .iter()
        .map(|r| {
            let pid = procs
                .iter()
                .find(|p| p.name == r.name)
                .map_or_else(String::new, |p| p.pid.to_string());
            let (demo, shop) = split_services(&r.services);
            let gateway = r
                .gateway
                .as_ref()
                .map_or_else(String::new, |a| format!("http://{a}"));
            vec![r.name.clone(), pid, r.addr.clone(), demo, shop, gateway]
        })
        .collect();
    let seed = ready.first().map_or("", |r| r.addr.as_str());
    let gateway = match ready.first().and_then(|r| r.gateway.as_deref()) {
        Some(a) if args.jwt_secret.as_deref().is_some_and(|s| !s.is_empty()) => {
            format!("http://{a} (auth on: tokens from `msa token --sub NAME --role ROLE`)")
        }
        Some(a) => format!("http://{a} (auth off: --jwt-secret turns it on)"),
        None => "none".to_string(),
    };
    let live_view = live_view_line(
        ready.first().and_then(|r| r.gateway.as_deref()),
        args.jwt_secret.as_deref().is_some_and(|s| !s.is_empty()),
    );
    let grpc = ready.first().and_then(|r| r.grpc.as_deref()).map_or_else(
        || "none".to_string(),
        |a| format!("{a} (msa.v1.Gateway, plaintext HTTP/2)"),
    );
    let cluster_flag = if args.cluster == "msa" {
        String::new()
    } else {
        format!(" --cluster {}", args.cluster)
    };
    let secret = match generated_secret {
        Some(s) => s.clone(),
        None if args.tls && args.secret.as_deref().is_none_or(str::is_empty) => {
            "none (mutual TLS authenticates the nodes)".to_string()
        }
        None => "(as given with --secret or MSA_SECRET)".to_string(),
    };
    let mut secret_flag = generated_secret.map_or_else(String::new, |s| format!(" --secret {s}"));
    if let Some(d) = tls_dir {
        let f = |n: &str| d.join(n).display().to_string();
        secret_flag.push_str(&format!(
            " --tls-ca {} --tls-cert {} --tls-key {}",
            f("ca.pem"),
            f("operator.pem"),
            f("operator.key")
        ));
    }
    println!(
        "msa cluster \"{}\" is up: {} node(s) on loopback\n\n{}\nseed:    {seed}\ngateway: {gateway}\nui:      {live_view}\ngrpc:    {grpc}\n\
         secret:  {secret}\n\
         status:  msa cluster status --seed {seed}{secret_flag}{cluster_flag}\n\
         Ctrl-C or SIGTERM stops every node.",
        args.cluster,
        ready.len(),
        table::render(
            &["NODE", "PID", "ADDRESS", "SERVICES", "SHOP", "GATEWAY"],
            &rows
        ),
    );
    let _ = std::io::Write::flush(&mut std::io::stdout());
}

/// The value of the summary's `ui:` line: the live view's URL on node1's
/// gateway (docs/live-view.md), and what it asks for.
fn live_view_line(gateway: Option<&str>, auth: bool) -> String {
    match gateway {
        Some(a) if auth => format!(
            "http://{a}/ui (the live view: enter an admin token, `msa token --sub NAME --role admin`)"
        ),
        Some(a) => format!("http://{a}/ui (the live view)"),
        None => "none (no gateway)".to_string(),
    }
}

/// A node's services as two table cells: the plain demo services, and the
/// shop services (`-` for none, so that the columns stay aligned).
fn split_services(services: &[String]) -> (String, String) {
    let is_shop = |s: &&String| {
        crate::cli::config::ServiceKind::SHOP
            .iter()
            .any(|k| k.as_str() == s.as_str())
    };
    let (shop, demo): (Vec<&String>, Vec<&String>) = services.iter().partition(is_shop);
    let cell = |v: Vec<&String>| {
        if v.is_empty() {
            "-".to_string()
        } else {
            v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",")
        }
    };
    (cell(demo), cell(shop))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shop_services_get_their_own_column() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            split_services(&s(&["kv", "orders"])),
            ("kv".into(), "orders".into())
        );
        assert_eq!(
            split_services(&s(&["kv", "echo", "orders", "payments"])),
            ("kv,echo".into(), "orders,payments".into())
        );
        assert_eq!(split_services(&s(&["echo"])), ("echo".into(), "-".into()));
        assert_eq!(split_services(&[]), ("-".into(), "-".into()));
    }

    #[test]
    fn the_live_view_is_the_gateways_ui_path() {
        assert_eq!(
            live_view_line(Some("127.0.0.1:8080"), false),
            "http://127.0.0.1:8080/ui (the live view)"
        );
        let with_auth = live_view_line(Some("127.0.0.1:8080"), true);
        assert!(
            with_auth.starts_with("http://127.0.0.1:8080/ui ")
                && with_auth.contains("--role admin"),
            "{with_auth}"
        );
        assert_eq!(live_view_line(None, true), "none (no gateway)");
    }

    #[test]
    fn exits_are_described_by_their_status() {
        use std::os::unix::process::ExitStatusExt;
        let e = Exited {
            name: "node2".into(),
            status: Ok(std::process::ExitStatus::from_raw(9)),
        };
        assert!(describe(&e).contains("signal: 9"), "{}", describe(&e));
    }
}
