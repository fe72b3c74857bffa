//! Running a host (`msa node` is one): one node with its services until
//! Ctrl-C or SIGTERM.
//!
//! Once it listens, the node prints one line on stdout that scripts (and
//! `msa cluster up`) read to learn where it is:
//!
//! ```text
//! msa-node name=node1 addr=127.0.0.1:40123 incarnation=1763… services=kv,echo gateway=127.0.0.1:8080
//! ```
//!
//! (`grpc=` follows `gateway=` when it serves gRPC too, docs/grpc.md;
//! `gateway=` only when it runs the HTTP gateway: `--gateway` or a
//! `[gateway]` table; it is the bound address, so port 0 shows the real
//! port; ` ops=IP:PORT` likewise when it serves the operations endpoints.)
//! Its gateway reaches every service of the cluster: a message of a
//! service this node does not run is forwarded as JSON to a node that does.
//!
//! Logs go to stderr, as text or JSON lines (`--log-format`). On Ctrl-C or
//! SIGTERM the node drains: `/readyz` answers 503, the gateway answers new
//! calls 503 while those in flight finish (at most `shutdown.drain`), then
//! the gateway stops, the services stop after handling what they hold (new
//! calls, remote ones included, get a typed "shutting down" error), the
//! node leaves the cluster, and the process exits 0.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use tokio::signal::unix::{signal, Signal, SignalKind};

use super::config::{LogFormat, NodeConfig, ServiceConfig, ServiceKind};
use super::Registration;
use crate::actors::{counter, echo, kv, shop};
use crate::gateway::{Gateway, GatewayConfig, GatewayHandle, OpsHandle, OpsServer};
use crate::Node;

/// On SIGTERM, how long calls other nodes sent before they heard this node
/// is leaving are still served (a round trip and a frame's handling, with
/// room to spare), before their new calls are refused.
const LEAVE_NOTICE: Duration = Duration::from_millis(300);

/// How long services may drain when a failed start is undone.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Time for the leave and the thread joins on top of the drain.
const SHUTDOWN_SLACK: Duration = Duration::from_secs(3);

/// Bound on stopping the gateway (in-flight requests finish first).
const GATEWAY_STOP_BOUND: Duration = Duration::from_secs(3);

/// Sends log lines to stderr as text (coloured on a terminal) or JSON
/// lines; `RUST_LOG` overrides `default_filter`. A second call does nothing.
pub fn init_logging(format: LogFormat, default_filter: &str) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
}

/// What runs once the node is up: stopped in order on the way out.
struct Running {
    node: Node,
    gateway: Option<GatewayHandle>,
    ops: Option<OpsHandle>,
}

/// Runs a host until a stop signal: the node, the operations endpoints,
/// the configured services, then `extra`, then the gateway; the ready line;
/// the graceful stop.
pub(crate) async fn serve(
    cfg: NodeConfig,
    extra: Vec<Registration>,
    stop_on_stdin_eof: bool,
) -> anyhow::Result<()> {
    // Catch the signals before anything starts, so that an early one still
    // leads to a graceful stop.
    let mut stop = StopSignals::install().context("cannot catch SIGINT and SIGTERM")?;
    tracing::debug!(?cfg, "starting");
    let node = start(&cfg)?;
    // The probes answer from the start: alive, and not ready until the
    // services run.
    let ops_auth = cfg.gateway.as_ref().and_then(|g| g.auth.as_ref());
    let ops = match cfg
        .ops
        .map(|bind| start_ops(&node, bind, ops_auth))
        .transpose()
    {
        Ok(o) => o,
        Err(e) => {
            let _ = node.shutdown(SHUTDOWN_GRACE).await;
            return Err(e);
        }
    };
    let started = async {
        spawn_services(&node, &cfg.services, &cfg.access).await?;
        for register in extra {
            register(node.clone()).await?;
        }
        cfg.gateway
            .clone()
            .map(|g| start_gateway(&node, g))
            .transpose()
    };
    let gateway = match started.await {
        Ok(g) => g,
        Err(e) => {
            if let Some(o) = &ops {
                o.stop().await;
            }
            let _ = node.shutdown(SHUTDOWN_GRACE).await;
            return Err(e);
        }
    };
    if let Some(o) = &ops {
        o.set_started();
    }
    let reload = tls_reloader(&node)?;
    let ready = ReadyLine {
        name: cfg.name.clone(),
        addr: node.remote_addr().unwrap_or_default(),
        incarnation: node.node_info().map_or(0, |i| i.incarnation),
        services: ready_services(&cfg, &node),
        gateway: gateway.as_ref().map(|g| g.local_addr().to_string()),
        grpc: gateway
            .as_ref()
            .and_then(|g| g.grpc_addr())
            .map(|a| a.to_string()),
        ops: ops.as_ref().map(|o| o.local_addr().to_string()),
    };
    println!("{ready}");
    tracing::info!(node = %ready.name, addr = %ready.addr, "node ready");

    let why = tokio::select! {
        why = stop.next() => why,
        () = super::stdin_eof(), if stop_on_stdin_eof => "stdin closed",
    };
    if let Some(r) = reload {
        r.abort();
    }
    tracing::info!(
        reason = why,
        drain = ?cfg.drain,
        "stopping: refusing new calls, letting those in flight finish, then leaving the cluster"
    );
    stop_gracefully(Running { node, gateway, ops }, cfg.drain).await
}

/// The ready line's services: the configured ones in their order, then the
/// others the host registered, sorted.
fn ready_services(cfg: &NodeConfig, node: &Node) -> Vec<String> {
    let mut v: Vec<String> = cfg.services.iter().map(|s| s.name().to_string()).collect();
    for s in node.local_services() {
        if !v.contains(&s) {
            v.push(s);
        }
    }
    v
}

/// The graceful stop: other nodes told this one is leaving (their calls
/// refused after [`LEAVE_NOTICE`]), not ready, no new gateway
/// calls (503) while those in
/// flight finish (at most `drain`), the gateway stops, the services stop
/// after what they hold (at most `drain` again), the node leaves.
async fn stop_gracefully(r: Running, drain: Duration) -> anyhow::Result<()> {
    // Other nodes first take this node's services out of their routing;
    // the calls they had already sent are served during a short notice,
    // then their new calls are refused (typed: the node is going away).
    // Calls this node's services make while finishing go on. So a rolling
    // restart fails no call to a service that runs elsewhere too.
    r.node.announce_leaving();
    if let Some(o) = &r.ops {
        o.set_draining();
    }
    let refuse = async {
        tokio::time::sleep(LEAVE_NOTICE.min(drain)).await;
        r.node.refuse_remote_calls();
    };
    let gateway = async {
        if let Some(g) = &r.gateway {
            if !g.drain(drain).await {
                tracing::warn!(
                    in_flight = g.calls_in_flight(),
                    ?drain,
                    "gateway calls still in flight after the drain; stopping anyway"
                );
            }
            if tokio::time::timeout(GATEWAY_STOP_BOUND, g.stop())
                .await
                .is_err()
            {
                tracing::warn!("the gateway did not stop within {GATEWAY_STOP_BOUND:?}");
            }
        }
    };
    tokio::join!(refuse, gateway);
    let bound = drain.saturating_add(SHUTDOWN_SLACK);
    let result = match tokio::time::timeout(bound, r.node.shutdown(drain)).await {
        Ok(r) => r.context("shutdown failed"),
        Err(_) => Err(anyhow::anyhow!("shutdown did not finish within {bound:?}")),
    };
    if let Some(o) = &r.ops {
        o.stop().await;
    }
    result?;
    tracing::info!("left the cluster; exiting");
    Ok(())
}

/// Starts the operations endpoints on `bind`; the live view's data there
/// needs an admin token when the node's gateway has auth (`auth`).
fn start_ops(
    node: &Node,
    bind: SocketAddr,
    auth: Option<&crate::gateway::AuthConfig>,
) -> anyhow::Result<OpsHandle> {
    let handle = OpsServer::start_with_auth(node.clone(), bind, auth)
        .with_context(|| format!("cannot serve the operations endpoints on {bind}"))?;
    tracing::info!(addr = %handle.local_addr(), "operations endpoints ready");
    Ok(handle)
}

fn start(cfg: &NodeConfig) -> anyhow::Result<Node> {
    let mut b = Node::builder()
        .name(&cfg.name)
        .listen(cfg.listen)
        .cluster(&cfg.cluster)
        // A node that serves /metrics (gateway or ops) exports mailbox
        // depth too.
        .track_mailbox_depth(cfg.gateway.is_some() || cfg.ops.is_some());
    if let Some(ms) = cfg.failure_detection_ms {
        b = b.failure_detection(std::time::Duration::from_millis(ms));
    }
    if let Some(ms) = cfg.handshake_timeout_ms {
        b = b.handshake_timeout(std::time::Duration::from_millis(ms));
    }
    if let Some(n) = cfg.max_pending_handshakes {
        b = b.max_pending_handshakes(n);
    }
    if let Some(n) = cfg.arbiters {
        b = b.arbiters(n);
    }
    if let Some(p) = cfg.split_brain {
        b = b.split_brain(p);
    }
    if let Some(s) = &cfg.secret {
        b = b.secret(s.as_bytes());
    }
    if let Some(t) = &cfg.tls {
        let tls = crate::remote::TlsConfig::from_files(&t.ca, &t.cert, &t.key)
            .context("cannot set up mutual TLS")?;
        b = b.tls(tls);
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
    // The gateway's JWT settings also verify the tokens that calls from
    // other nodes carry: roles from there count only with a valid token.
    if let Some(auth) = cfg.gateway.as_ref().and_then(|g| g.auth.as_ref()) {
        let verifier =
            crate::gateway::JwtVerifier::new(auth).context("invalid gateway auth settings")?;
        b = b.identity_verifier(verifier);
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

async fn spawn_services(
    node: &Node,
    services: &[ServiceConfig],
    rules: &[super::config::AccessRuleConfig],
) -> anyhow::Result<()> {
    for s in services {
        let (name, n, max) = (s.name(), s.instance_count(), s.max_instance_count());
        let access = super::config::access_for(rules, name);
        // Config checks keep the shop services at their fixed names and
        // one instance each, and kv (sharded by key) at a fixed count.
        let spawned = match s.kind {
            ServiceKind::Kv => node.spawn(kv::kv_spec(name, n).access(access)).await,
            ServiceKind::Echo => {
                let spec = echo::echo_spec(name).instances(n).max_instances(max);
                node.spawn(spec.access(access)).await
            }
            ServiceKind::Counter => {
                let spec = counter::counter_spec(name).instances(n).max_instances(max);
                node.spawn(spec.access(access)).await
            }
            ServiceKind::Orders => node.spawn(shop::orders_spec().access(access)).await,
            ServiceKind::Inventory => node.spawn(shop::inventory_spec().access(access)).await,
            ServiceKind::Payments => node.spawn(shop::payments_spec().access(access)).await,
            ServiceKind::Notifications => {
                node.spawn(shop::notifications_spec().access(access)).await
            }
        };
        spawned.with_context(|| format!("cannot start service {s}"))?;
        tracing::info!(service = name, kind = %s.kind, instances = n, max_instances = max, "service started");
    }
    Ok(())
}

/// On SIGHUP, re-reads the node's TLS files (a task; `None` without TLS).
/// A reload that fails is logged and the running certificate stays.
fn tls_reloader(node: &Node) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    if node.tls_cert_expiry().is_none() {
        return Ok(None);
    }
    let mut hup = signal(SignalKind::hangup()).context("cannot catch SIGHUP")?;
    let node = node.clone();
    Ok(Some(tokio::spawn(async move {
        while hup.recv().await.is_some() {
            match node.reload_tls() {
                Ok(()) => tracing::info!(
                    expiry = node.tls_cert_expiry().unwrap_or_default(),
                    "SIGHUP: TLS files reloaded"
                ),
                Err(e) => {
                    tracing::error!(error = %e, "SIGHUP: TLS reload failed; the running certificate stays")
                }
            }
        }
    })))
}

/// Ctrl-C (SIGINT) and SIGTERM, caught instead of ending the process.
#[derive(Debug)]
pub struct StopSignals {
    int: Signal,
    term: Signal,
}

impl StopSignals {
    /// Catches both signals from now on.
    ///
    /// # Errors
    /// When a handler cannot be installed.
    pub fn install() -> std::io::Result<Self> {
        Ok(Self {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
        })
    }

    /// Waits for the next signal and names it.
    pub async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.int.recv() => "SIGINT",
            _ = self.term.recv() => "SIGTERM",
        }
    }
}

/// The line `msa node` prints on stdout once it listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadyLine {
    /// Node name.
    pub name: String,
    /// Remoting address, `ip:port`.
    pub addr: String,
    /// The node's incarnation.
    pub incarnation: u64,
    /// Names of the services it runs.
    pub services: Vec<String>,
    /// The gateway's bound address, `ip:port`, if it runs one.
    pub gateway: Option<String>,
    /// The gRPC ingress's bound address, `ip:port`, if it serves gRPC.
    pub grpc: Option<String>,
    /// The operations endpoints' bound address, if served.
    pub ops: Option<String>,
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
        if let Some(g) = &self.grpc {
            write!(f, " grpc={g}")?;
        }
        if let Some(o) = &self.ops {
            write!(f, " ops={o}")?;
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
            grpc: None,
            ops: None,
        };
        for field in rest.split_whitespace() {
            match field.split_once('=') {
                Some(("name", v)) => r.name = v.into(),
                Some(("addr", v)) => r.addr = v.into(),
                Some(("incarnation", v)) => {
                    r.incarnation = v.parse().map_err(|_| format!("bad incarnation: {v}"))?;
                }
                Some(("gateway", v)) => r.gateway = Some(v.into()),
                Some(("grpc", v)) => r.grpc = Some(v.into()),
                Some(("ops", v)) => r.ops = Some(v.into()),
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
            grpc: None,
            ops: None,
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
        let with_ops = ReadyLine {
            ops: Some("127.0.0.1:9090".into()),
            grpc: Some("127.0.0.1:50051".into()),
            ..with_gateway
        };
        let line = with_ops.to_string();
        assert!(
            line.ends_with(" gateway=127.0.0.1:8080 grpc=127.0.0.1:50051 ops=127.0.0.1:9090"),
            "{line}"
        );
        assert_eq!(line.parse::<ReadyLine>().unwrap(), with_ops);
    }
}
