//! `msa node`: run one node with ready services until Ctrl-C or SIGTERM.
//!
//! Once it listens, the node prints one line on stdout that scripts (and
//! `msa cluster up`) read to learn where it is:
//!
//! ```text
//! msa-node name=node1 addr=127.0.0.1:40123 incarnation=1763… services=kv,echo gateway=127.0.0.1:8080
//! ```
//!
//! (`gateway=` only when it runs the HTTP gateway: `--gateway` or a
//! `[gateway]` table; it is the bound address, so port 0 shows the real
//! port.) Its gateway reaches every service of the cluster: a message of a
//! service this node does not run is forwarded as JSON to a node that does.
//!
//! Logs go to stderr. On Ctrl-C or SIGTERM the node stops its gateway, then
//! its services (draining for up to [`SHUTDOWN_GRACE`]), leaves the cluster,
//! and exits 0.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use msa::actors::{counter, echo, kv, shop};
use msa::gateway::{Gateway, GatewayConfig, GatewayHandle};
use msa::Node;
use tokio::signal::unix::{signal, Signal, SignalKind};

use super::config::{NodeConfig, Overrides, ServiceConfig, ServiceKind};

/// How long services may drain on shutdown before they are killed.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Bound on the whole shutdown (drain, leave, join threads).
const SHUTDOWN_BOUND: Duration = Duration::from_secs(8);

/// Bound on stopping the gateway (in-flight requests finish first).
const GATEWAY_STOP_BOUND: Duration = Duration::from_secs(3);

/// Options of `msa node`. Each flag can also come from its `MSA_*`
/// variable; flags win over the environment, which wins over the file.
#[derive(Debug, Args)]
#[command(after_help = "\
Precedence: --config file < MSA_* environment < flags.
Without a secret the node may only listen on loopback (the default, 127.0.0.1:0).
Once listening, it prints `msa-node name=.. addr=.. incarnation=.. services=..` on stdout
(with ` gateway=IP:PORT` when it runs the HTTP gateway).")]
pub(crate) struct NodeArgs {
    /// TOML config file (name, listen, seeds, cluster, secret, arbiters, [[services]], [gateway])
    #[arg(long, short, env = "MSA_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Node name, unique in the cluster [default: node-<pid>]
    #[arg(long, env = "MSA_NAME")]
    name: Option<String>,
    /// Remoting address to listen on (port 0 picks a free one) [default: 127.0.0.1:0]
    #[arg(long, env = "MSA_LISTEN", value_name = "IP:PORT")]
    listen: Option<SocketAddr>,
    /// Seed node to join through (repeatable; MSA_SEEDS is comma-separated)
    #[arg(
        long = "seed",
        env = "MSA_SEEDS",
        value_delimiter = ',',
        value_name = "HOST:PORT"
    )]
    seeds: Vec<String>,
    /// Address other nodes dial to reach this one, when it differs from
    /// --listen (needed with 0.0.0.0; port 0 means the bound port)
    #[arg(long, env = "MSA_ADVERTISE", value_name = "HOST:PORT")]
    advertise: Option<String>,
    /// Resolve seed names again this often (500ms, 10s, 1m) [default: 10s]
    #[arg(long, env = "MSA_DISCOVERY_INTERVAL", value_name = "DURATION")]
    discovery_interval: Option<String>,
    /// DNS server for seed names [default: the system's resolver]
    #[arg(long, env = "MSA_DISCOVERY_DNS_SERVER", value_name = "IP:PORT")]
    dns_server: Option<SocketAddr>,
    /// Cluster name; nodes of other clusters are refused [default: msa]
    #[arg(long, env = "MSA_CLUSTER")]
    cluster: Option<String>,
    /// Shared cluster secret (prefer MSA_SECRET: flags show up in `ps`)
    #[arg(long, env = "MSA_SECRET", hide_env_values = true)]
    secret: Option<String>,
    /// Arbiter threads [default: one per core]
    #[arg(long, env = "MSA_ARBITERS")]
    arbiters: Option<usize>,
    /// Declare a crashed or partitioned member down within about this many
    /// milliseconds [default: 5000]
    #[arg(long, env = "MSA_FAILURE_DETECTION_MS")]
    failure_detection_ms: Option<u64>,
    /// Service to run, kind[:name[:instances]] with kind one of kv, echo,
    /// counter, orders, inventory, payments (repeatable; MSA_SERVICES is
    /// comma-separated; replaces the file's list)
    #[arg(
        long = "service",
        env = "MSA_SERVICES",
        value_delimiter = ',',
        value_name = "KIND[:NAME[:N]]"
    )]
    services: Vec<ServiceConfig>,
    /// Run the HTTP gateway on this address (port 0 picks a free one;
    /// overrides the file's [gateway] bind)
    #[arg(long, env = "MSA_GATEWAY", value_name = "IP:PORT")]
    gateway: Option<SocketAddr>,
    /// Turn gateway auth on: JWTs signed HS256 with this secret, its UTF-8
    /// bytes (prefer MSA_JWT_SECRET: flags show up in `ps`)
    #[arg(long, env = "MSA_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// Add the shop demo's access policy and routes (POST /orders, GET
    /// /orders/{id}) to the gateway
    #[arg(long)]
    demo_policy: bool,
    /// Stop gracefully when stdin reaches end of file (used by `msa cluster
    /// up`, so that nodes never outlive it)
    #[arg(long, hide = true)]
    stop_on_stdin_eof: bool,
}

impl NodeArgs {
    fn overrides(&self) -> Overrides {
        Overrides {
            name: self.name.clone(),
            listen: self.listen,
            seeds: self.seeds.clone(),
            advertise: self.advertise.clone(),
            discovery_interval: self.discovery_interval.clone(),
            dns_server: self.dns_server,
            cluster: self.cluster.clone(),
            secret: self.secret.clone(),
            arbiters: self.arbiters,
            failure_detection_ms: self.failure_detection_ms,
            services: self.services.clone(),
            gateway: self.gateway,
            jwt_secret: self.jwt_secret.clone(),
            demo_policy: self.demo_policy,
        }
    }
}

/// Runs `msa node`.
pub(crate) fn run(args: NodeArgs) -> anyhow::Result<()> {
    let cfg = NodeConfig::resolve(args.config.as_deref(), args.overrides())?;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(serve(cfg, args.stop_on_stdin_eof))
}

async fn serve(cfg: NodeConfig, stop_on_stdin_eof: bool) -> anyhow::Result<()> {
    // Catch the signals before anything starts, so that an early one still
    // leads to a graceful stop.
    let mut stop = StopSignals::install()?;
    tracing::debug!(?cfg, "starting");
    let node = start(&cfg)?;
    let gateway = match spawn_services(&node, &cfg.services).await.and_then(|()| {
        cfg.gateway
            .clone()
            .map(|g| start_gateway(&node, g))
            .transpose()
    }) {
        Ok(g) => g,
        Err(e) => {
            let _ = node.shutdown(SHUTDOWN_GRACE).await;
            return Err(e);
        }
    };
    let ready = ReadyLine {
        name: cfg.name.clone(),
        addr: node.remote_addr().unwrap_or_default(),
        incarnation: node.node_info().map_or(0, |i| i.incarnation),
        services: cfg.services.iter().map(|s| s.name().to_string()).collect(),
        gateway: gateway.as_ref().map(|g| g.local_addr().to_string()),
    };
    println!("{ready}");
    tracing::info!(node = %ready.name, addr = %ready.addr, "node ready");

    let why = tokio::select! {
        why = stop.next() => why,
        () = crate::cli::stdin::stdin_eof(), if stop_on_stdin_eof => "stdin closed",
    };
    tracing::info!(
        reason = why,
        "stopping: the gateway, then draining services, then leaving the cluster"
    );
    if let Some(g) = gateway {
        if tokio::time::timeout(GATEWAY_STOP_BOUND, g.stop())
            .await
            .is_err()
        {
            tracing::warn!("the gateway did not stop within {GATEWAY_STOP_BOUND:?}");
        }
    }
    match tokio::time::timeout(SHUTDOWN_BOUND, node.shutdown(SHUTDOWN_GRACE)).await {
        Ok(r) => r.context("shutdown failed")?,
        Err(_) => anyhow::bail!("shutdown did not finish within {SHUTDOWN_BOUND:?}"),
    }
    Ok(())
}

fn start(cfg: &NodeConfig) -> anyhow::Result<Node> {
    let mut b = Node::builder()
        .name(&cfg.name)
        .listen(cfg.listen)
        .cluster(&cfg.cluster)
        // A node with a gateway exports metrics, mailbox depth included.
        .track_mailbox_depth(cfg.gateway.is_some());
    if let Some(ms) = cfg.failure_detection_ms {
        b = b.failure_detection(std::time::Duration::from_millis(ms));
    }
    if let Some(n) = cfg.arbiters {
        b = b.arbiters(n);
    }
    if let Some(s) = &cfg.secret {
        b = b.secret(s.as_bytes());
    }
    if let Some(a) = &cfg.advertise {
        b = b.advertise(a);
    }
    if let Some(d) = cfg.discovery_interval {
        b = b.discovery_interval(d);
    }
    if let Some(d) = cfg.dns_server {
        b = b.dns_server(d);
    }
    for s in &cfg.seeds {
        b = b.seed(s);
    }
    b.start()
        .with_context(|| format!("cannot start node {}", cfg.name))
}

/// Starts the gateway on its configured address.
fn start_gateway(node: &Node, cfg: GatewayConfig) -> anyhow::Result<GatewayHandle> {
    let bind = cfg.bind;
    // A taken address is an error, never a silent move to another port: a
    // client following the docs would reach whatever holds the address.
    let handle = Gateway::start(node.clone(), cfg).with_context(|| {
        format!("cannot start the gateway on {bind} (is another gateway or cluster running? port 0 picks a free port)")
    })?;
    tracing::info!(addr = %handle.local_addr(), "gateway ready");
    Ok(handle)
}

async fn spawn_services(node: &Node, services: &[ServiceConfig]) -> anyhow::Result<()> {
    for s in services {
        let (name, n) = (s.name(), s.instance_count());
        // Config checks keep the shop services at their fixed names and
        // one instance each.
        let spawned = match s.kind {
            ServiceKind::Kv => node.spawn(kv::kv_spec(name, n)).await,
            ServiceKind::Echo => node.spawn(echo::echo_spec(name).instances(n)).await,
            ServiceKind::Counter => node.spawn(counter::counter_spec(name).instances(n)).await,
            ServiceKind::Orders => node.spawn(shop::orders_spec()).await,
            ServiceKind::Inventory => node.spawn(shop::inventory_spec()).await,
            ServiceKind::Payments => node.spawn(shop::payments_spec()).await,
        };
        spawned.with_context(|| format!("cannot start service {s}"))?;
        tracing::info!(service = name, kind = %s.kind, instances = n, "service started");
    }
    Ok(())
}

/// Ctrl-C (SIGINT) and SIGTERM, caught instead of ending the process.
#[derive(Debug)]
pub(crate) struct StopSignals {
    int: Signal,
    term: Signal,
}

impl StopSignals {
    /// Catches both signals from now on.
    ///
    /// # Errors
    /// When a handler cannot be installed.
    pub(crate) fn install() -> anyhow::Result<Self> {
        Ok(Self {
            int: signal(SignalKind::interrupt()).context("cannot catch SIGINT")?,
            term: signal(SignalKind::terminate()).context("cannot catch SIGTERM")?,
        })
    }

    /// Waits for the next signal and names it.
    pub(crate) async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.int.recv() => "SIGINT",
            _ = self.term.recv() => "SIGTERM",
        }
    }
}

/// The line `msa node` prints on stdout once it listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReadyLine {
    /// Node name.
    pub(crate) name: String,
    /// Remoting address, `ip:port`.
    pub(crate) addr: String,
    /// The node's incarnation.
    pub(crate) incarnation: u64,
    /// Names of the services it runs.
    pub(crate) services: Vec<String>,
    /// The gateway's bound address, `ip:port`, if it runs one.
    pub(crate) gateway: Option<String>,
}

impl ReadyLine {
    const PREFIX: &'static str = "msa-node ";
}

impl fmt::Display for ReadyLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}name={} addr={} incarnation={} services={}",
            Self::PREFIX,
            self.name,
            self.addr,
            self.incarnation,
            self.services.join(",")
        )?;
        if let Some(g) = &self.gateway {
            write!(f, " gateway={g}")?;
        }
        Ok(())
    }
}

impl FromStr for ReadyLine {
    type Err = String;

    fn from_str(line: &str) -> Result<Self, String> {
        let rest = line
            .strip_prefix(Self::PREFIX)
            .ok_or_else(|| format!("not a ready line: {line}"))?;
        let mut r = ReadyLine {
            name: String::new(),
            addr: String::new(),
            incarnation: 0,
            services: Vec::new(),
            gateway: None,
        };
        for field in rest.split_whitespace() {
            match field.split_once('=') {
                Some(("name", v)) => r.name = v.into(),
                Some(("addr", v)) => r.addr = v.into(),
                Some(("incarnation", v)) => {
                    r.incarnation = v.parse().map_err(|_| format!("bad incarnation: {v}"))?;
                }
                Some(("gateway", v)) => r.gateway = Some(v.into()),
                Some(("services", v)) => {
                    r.services = v
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(Into::into)
                        .collect();
                }
                _ => {}
            }
        }
        if r.name.is_empty() || r.addr.is_empty() {
            return Err(format!("ready line without name or addr: {line}"));
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_line_round_trips() {
        let r = ReadyLine {
            name: "node1".into(),
            addr: "127.0.0.1:4000".into(),
            incarnation: 42,
            services: vec!["kv".into(), "echo".into()],
            gateway: None,
        };
        let line = r.to_string();
        assert_eq!(
            line,
            "msa-node name=node1 addr=127.0.0.1:4000 incarnation=42 services=kv,echo"
        );
        assert_eq!(line.parse::<ReadyLine>().unwrap(), r);
        assert!("hello".parse::<ReadyLine>().is_err());
        let with_gateway = ReadyLine {
            gateway: Some("127.0.0.1:8080".into()),
            ..r
        };
        let line = with_gateway.to_string();
        assert!(
            line.ends_with(" services=kv,echo gateway=127.0.0.1:8080"),
            "{line}"
        );
        assert_eq!(line.parse::<ReadyLine>().unwrap(), with_gateway);
    }
}
