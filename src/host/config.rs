//! `NodeConfig`: what a host (`msa node`, or a binary of your own) runs, merged from three layers, later ones
//! winning field by field: a TOML file (`--config`), the environment
//! (`MSA_*`), and command-line flags. The environment names each key by one
//! rule (`env::var_name`: `ops.bind` → `MSA_OPS_BIND`) and is laid over the
//! file's table before it is checked; [`NodeConfig::resolve`] then lays the
//! flags over the result.
//!
//! A config file (every key optional):
//!
//! ```toml
//! name = "node1"                 # default: node-<pid>
//! listen = "127.0.0.1:7001"      # default: 127.0.0.1:0 (a free loopback port)
//! advertise = "10.0.0.5:0"      # what others dial; needed with listen 0.0.0.0 (port 0: the bound one)
//! seeds = ["127.0.0.1:7000"]     # nodes to join through; a name (msa-nodes.default.svc:7000)
//!                                # stands for all its addresses, re-resolved every discovery.interval
//! cluster = "msa"                # nodes of another cluster are refused
//! secret = "…"                   # better: MSA_SECRET; required off loopback
//! arbiters = 2                   # default: one per core
//! failure_detection_ms = 5000    # a dead member is declared down within ~this
//! handshake_timeout_ms = 5000    # an inbound connection not authenticated by then is closed
//! max_pending_handshakes = 256   # inbound connections in their handshake at once; more are closed
//! # secret_file = "/run/secrets/msa"  # the secret from a file (trailing newline trimmed); not with `secret`
//! log_format = "text"            # text | json (one JSON object per line)
//!
//! [tls]                          # mutual TLS between nodes (docs/security.md); all three or none
//! ca = "certs/ca.pem"            # MSA_TLS_CA / --tls-ca: the cluster CA
//! cert = "certs/node1.pem"       # MSA_TLS_CERT / --tls-cert: SAN URI msa://node/<name>
//! key = "certs/node1.key"        # MSA_TLS_KEY / --tls-key; SIGHUP re-reads the three
//!
//! [ops]                          # optional: /healthz, /readyz, /metrics on their own address
//! bind = "127.0.0.1:9090"
//!
//! [shutdown]
//! drain = "5s"                   # on SIGTERM: how long calls in flight may take to finish
//!
//! [split_brain]                  # MSA_SPLIT_BRAIN_STRATEGY, MSA_SPLIT_BRAIN_STABLE_AFTER, MSA_SPLIT_BRAIN_QUORUM_SIZE
//! strategy = "keep-majority"     # keep-majority | static-quorum | keep-oldest | off
//! stable_after = "5s"            # act once a partition was stable this long (ms, s, m, or a number of ms)
//! # quorum_size = 3              # static-quorum only (or strategy = "static-quorum:3")
//!
//! [discovery]                    # MSA_DISCOVERY_INTERVAL, MSA_DISCOVERY_DNS_SERVER
//! interval = "10s"               # re-resolve seed names this often (ms, s or m)
//! dns_server = "127.0.0.1:5353"  # default: the system's resolver configuration
//!
//! [[services]]
//! kind = "kv"                    # kv | echo | counter | orders | inventory | payments | notifications
//! name = "kv"                    # default: the kind
//! instances = 2                  # default: 1
//! max_instances = 4              # `msa service scale` may go up to it (default: instances)
//!
//! [gateway]                      # optional: serve HTTP (msa-gateway); every key optional
//! bind = "127.0.0.1:8080"        # --gateway / MSA_GATEWAY override it
//! workers = 2
//! max_body_bytes = 1048576
//! timeout_ms = 5000              # default: the node's ask timeout
//! max_concurrency = 1024         # calls in flight per route before 429
//! # body_timeout_ms = 10000; head_timeout_ms = 5000; max_header_bytes = 16384
//!
//! [grpc]                         # optional: gRPC beside the gateway (docs/grpc.md); needs [gateway]
//! bind = "127.0.0.1:50051"       # --grpc / MSA_GRPC override it
//! # workers = 2; max_message_bytes = 1048576; max_concurrency = 1024
//! # [grpc.tls] cert = "grpc.pem"; key = "grpc.key"; client_ca = "clients.pem" (optional: TLS)
//!
//! [gateway.tls]                  # optional: HTTPS (docs/gateway.md, "HTTPS")
//! cert = "gateway.crt"           # PEM chain; key = PEM key
//! key = "gateway.key"
//! # client_ca = "clients.pem"    # require client certificates from this CA
//!
//! [gateway.cors]                 # optional: browsers on these origins may call
//! allowed_origins = ["https://shop.example.com"]
//!
//! [gateway.auth]                 # JWT auth; without it every call is allowed
//! alg = "HS256"                  # HS256 | RS256 | ES256 (--jwt-secret S sets HS256 + S)
//! secret = "…"                   # HS256 key (UTF-8 bytes); better: MSA_JWT_SECRET
//! # public_key_pem = "…"         # RS256 / ES256
//! # jwks = "https://idp.example.com/.well-known/jwks.json"  # or a file; keys by `kid`
//! # audience = "shop-api"; issuer = "https://idp.example.com/"  # checked when set
//! # roles_claim = "roles"; leeway_secs = 60; admin_roles = ["admin"]
//!
//! [[gateway.policy]]             # with auth on, a call needs a matching rule
//! service = "orders"             # "*", "prefix.*" or exact
//! message = "shop.*"
//! roles = ["customer"]
//!
//! [[access]]                     # checked by this node's own instances (docs/security.md)
//! service = "payments"           # a service the config names
//! message = "shop.Charge"        # a wire name, or "*" for the service's default rule
//! roles = ["admin"]              # callers holding one of these roles...
//! services = ["orders"]          # ...or calls made by these services' handlers
//!
//! [[gateway.routes]]             # friendly paths besides POST /v1/{service}/{message}
//! method = "GET"
//! path = "/orders/{id}"          # {id} is merged into the JSON body
//! service = "orders"
//! message = "shop.GetOrder"
//! ```
//!
//! The shop services (`orders`, `inventory`, `payments`, `notifications`) find each other by
//! name, so they keep their kind's name and run one instance each (they hold
//! state). `msa node --demo-policy` adds the shop demo's policy and routes to
//! the gateway (see `src/cli/cluster/demo.rs`).
//!
//! Lists (`seeds`, `services`) are replaced, not appended to, by a later
//! layer that sets them.

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::str::FromStr;

use std::time::Duration;

use crate::gateway::{AuthConfig, GatewayConfig, GrpcConfig, JwtAlg};
use anyhow::{bail, Context};
use serde::Deserialize;

mod access;
pub(crate) mod env;
mod service;
mod split_brain;
mod tls;
pub(crate) use tls::TlsPaths;

pub(crate) use access::access_for;
pub use access::AccessRuleConfig;
pub use service::{ServiceConfig, ServiceKind};

/// The address a node listens on when nothing says otherwise: loopback, a
/// free port. It is the only kind of address a node without a secret may use.
pub(crate) const DEFAULT_LISTEN: &str = "127.0.0.1:0";

/// How log lines are written to stderr (`log_format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (coloured on a terminal).
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            _ => Err(format!("unknown log format `{s}`, expected text or json")),
        }
    }
}

/// The `[ops]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct OpsFile {
    bind: Option<String>,
}

/// The `[shutdown]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ShutdownFile {
    drain: Option<String>,
}

/// How long calls in flight may take to finish on SIGTERM when nothing
/// says otherwise.
pub(crate) const DEFAULT_DRAIN: Duration = Duration::from_secs(5);

/// The longest drain accepted.
const MAX_DRAIN: Duration = Duration::from_secs(3600);

/// A duration such as `500ms`, `5s`, `1.5s` or `2m`.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("`{s}` is not a duration such as 500ms, 5s or 2m");
    let t = s.trim();
    let (num, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else {
        return Err(bad());
    };
    let v: f64 = num.trim().parse().map_err(|_| bad())?;
    if !v.is_finite() || v < 0.0 {
        return Err(bad());
    }
    let d = Duration::try_from_secs_f64(v * scale).map_err(|_| bad())?;
    if d > MAX_DRAIN {
        return Err(format!("`{s}` is over the limit of {MAX_DRAIN:?}"));
    }
    Ok(d)
}

/// The file layer: every key optional, unknown keys refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    name: Option<String>,
    listen: Option<String>,
    advertise: Option<String>,
    discovery: Option<DiscoveryFile>,
    split_brain: Option<split_brain::SplitBrainFile>,
    seeds: Option<Vec<String>>,
    cluster: Option<String>,
    secret: Option<String>,
    secret_file: Option<String>,
    arbiters: Option<usize>,
    failure_detection_ms: Option<u64>,
    handshake_timeout_ms: Option<u64>,
    max_pending_handshakes: Option<usize>,
    log_format: Option<LogFormat>,
    services: Option<Vec<ServiceConfig>>,
    ops: Option<OpsFile>,
    shutdown: Option<ShutdownFile>,
    gateway: Option<GatewayConfig>,
    grpc: Option<GrpcConfig>,
    access: Option<Vec<AccessRuleConfig>>,

    tls: Option<tls::TlsFile>,
}

/// The flags layer (clap fills it; `None` or empty means "not set"). The
/// `--gateway` and `--jwt-secret` shortcuts also read `MSA_GATEWAY` and
/// `MSA_JWT_SECRET` (older names kept for compatibility).
#[derive(Debug, Default, Clone)]
pub(crate) struct Overrides {
    /// `--name` / `MSA_NAME`.
    pub(crate) name: Option<String>,
    /// `--listen` / `MSA_LISTEN`.
    pub(crate) listen: Option<SocketAddr>,
    /// `--seed` (repeatable) / `MSA_SEEDS` (comma-separated).
    pub(crate) seeds: Vec<String>,
    /// `--advertise` / `MSA_ADVERTISE`.
    pub(crate) advertise: Option<String>,
    /// `--discovery-interval` / `MSA_DISCOVERY_INTERVAL`.
    pub(crate) discovery_interval: Option<String>,
    /// `--dns-server` / `MSA_DISCOVERY_DNS_SERVER`.
    pub(crate) dns_server: Option<SocketAddr>,
    /// `--cluster` / `MSA_CLUSTER`.
    pub(crate) cluster: Option<String>,
    /// `--secret` / `MSA_SECRET`.
    pub(crate) secret: Option<String>,
    /// `--secret-file` / `MSA_SECRET_FILE`.
    pub(crate) secret_file: Option<std::path::PathBuf>,
    /// `--log-format` / `MSA_LOG_FORMAT`.
    pub(crate) log_format: Option<LogFormat>,
    /// `--ops-bind` / `MSA_OPS_BIND`: serve the operations endpoints here.
    pub(crate) ops_bind: Option<SocketAddr>,
    /// `--shutdown-drain` / `MSA_SHUTDOWN_DRAIN`.
    pub(crate) drain: Option<Duration>,
    /// `--arbiters` / `MSA_ARBITERS`.
    pub(crate) arbiters: Option<usize>,
    /// `--failure-detection-ms` / `MSA_FAILURE_DETECTION_MS`.
    pub(crate) failure_detection_ms: Option<u64>,
    /// `--service` (repeatable) / `MSA_SERVICES` (comma-separated).
    pub(crate) services: Vec<ServiceConfig>,
    /// `--gateway` / `MSA_GATEWAY`: run the gateway, bound here.
    pub(crate) gateway: Option<SocketAddr>,
    /// `--grpc` / `MSA_GRPC`: serve gRPC beside the gateway, bound here.
    pub(crate) grpc: Option<SocketAddr>,
    /// `--jwt-secret` / `MSA_JWT_SECRET`: gateway auth, HS256 with this secret.
    pub(crate) jwt_secret: Option<String>,
    /// `--tls-ca` / `MSA_TLS_CA`.
    pub(crate) tls_ca: Option<std::path::PathBuf>,
    /// `--tls-cert` / `MSA_TLS_CERT`.
    pub(crate) tls_cert: Option<std::path::PathBuf>,
    /// `--tls-key` / `MSA_TLS_KEY`.
    pub(crate) tls_key: Option<std::path::PathBuf>,
}

/// Everything `msa node` needs, resolved and checked.
#[derive(Clone)]
pub(crate) struct NodeConfig {
    /// The node's name in the cluster.
    pub(crate) name: String,
    /// The remoting address.
    pub(crate) listen: SocketAddr,
    /// Seed addresses to join through.
    pub(crate) seeds: Vec<String>,
    /// The address other nodes dial (`None`: the listen address).
    pub(crate) advertise: Option<String>,
    /// How often seed names are resolved again (`None`: 10 s).
    pub(crate) discovery_interval: Option<std::time::Duration>,
    /// The DNS server for seed names (`None`: the system's).
    pub(crate) dns_server: Option<SocketAddr>,
    /// The cluster name.
    pub(crate) cluster: String,
    /// The shared secret; `None` (without TLS) restricts the node to
    /// loopback.
    pub(crate) secret: Option<String>,
    /// Mutual TLS between nodes: the CA, certificate and key files.
    pub(crate) tls: Option<TlsPaths>,
    /// Arbiter threads (`None`: one per core).
    pub(crate) arbiters: Option<usize>,
    /// Failure-detection bound in milliseconds (`None`: 5,000).
    pub(crate) failure_detection_ms: Option<u64>,
    /// How long an inbound connection may take to authenticate, in
    /// milliseconds (`None`: the runtime's 5,000; docs/security.md).
    pub(crate) handshake_timeout_ms: Option<u64>,
    /// Inbound connections in their handshake at once (`None`: 256).
    pub(crate) max_pending_handshakes: Option<usize>,
    /// The split-brain policy (`None`: the node's default, keep-majority
    /// after 5 s).
    pub(crate) split_brain: Option<crate::remote::split_brain::SplitBrainConfig>,
    /// How log lines are written.
    pub(crate) log_format: LogFormat,
    /// Where the operations endpoints are served, if anywhere.
    pub(crate) ops: Option<SocketAddr>,
    /// On SIGTERM, how long calls in flight may take to finish.
    pub(crate) drain: Duration,
    /// The services to run.
    pub(crate) services: Vec<ServiceConfig>,
    /// The HTTP gateway to run after the services, if any.
    pub(crate) gateway: Option<GatewayConfig>,
    /// Access rules for the services the config names (`[[access]]`).
    pub(crate) access: Vec<AccessRuleConfig>,
}

/// Never prints a secret.
impl fmt::Debug for NodeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeConfig")
            .field("name", &self.name)
            .field("listen", &self.listen)
            .field("seeds", &self.seeds)
            .field("advertise", &self.advertise)
            .field("discovery_interval", &self.discovery_interval)
            .field("dns_server", &self.dns_server)
            .field("cluster", &self.cluster)
            .field("secret", &self.secret.as_ref().map(|_| "<set>"))
            .field("tls", &self.tls)
            .field("arbiters", &self.arbiters)
            .field("split_brain", &self.split_brain)
            .field("log_format", &self.log_format)
            .field("ops", &self.ops)
            .field("drain", &self.drain)
            .field("services", &self.services)
            .field("access", &self.access)
            .field("gateway", &self.gateway.as_ref().map(|g| g.bind))
            .field(
                "gateway_auth",
                &self
                    .gateway
                    .as_ref()
                    .and_then(|g| g.auth.as_ref())
                    .map(|a| a.alg),
            )
            .finish()
    }
}

impl NodeConfig {
    /// Reads the file at `path` (if any), lays the process's `MSA_*`
    /// variables and then `over` on top, and checks the result.
    ///
    /// # Errors
    /// An unreadable file, malformed TOML, an unknown key or service kind, a
    /// bad address or variable, zero arbiters or instances, two services with
    /// one name, or both a secret and a secret file.
    pub(crate) fn resolve(path: Option<&Path>, over: Overrides) -> anyhow::Result<Self> {
        Self::resolve_with(path, over, |v| std::env::var(v).ok())
    }

    /// [`resolve`](Self::resolve) with the environment read through `env`.
    pub(crate) fn resolve_with(
        path: Option<&Path>,
        over: Overrides,
        env: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Self> {
        let mut table = match path {
            Some(p) => Self::read(p)?,
            None => toml::Table::new(),
        };
        env::overlay(&mut table, env)?;
        let file: ConfigFile = table.try_into().with_context(|| match path {
            Some(p) => format!("invalid config (file {} and MSA_* variables)", p.display()),
            None => "invalid config (MSA_* variables)".to_string(),
        })?;
        let secret = resolve_secret(
            over.secret.clone().or(file.secret.clone()),
            over.secret_file
                .clone()
                .or(file.secret_file.clone().map(Into::into)),
        )?;
        let ops = match (
            over.ops_bind,
            file.ops.as_ref().and_then(|o| o.bind.as_ref()),
        ) {
            (Some(a), _) => Some(a),
            (None, Some(s)) => Some(
                s.parse()
                    .with_context(|| format!("`ops.bind = \"{s}\"` is not an ip:port address"))?,
            ),
            (None, None) => None,
        };
        let drain = match (
            over.drain,
            file.shutdown.as_ref().and_then(|d| d.drain.as_ref()),
        ) {
            (Some(d), _) => d,
            (None, Some(s)) => parse_duration(s)
                .map_err(anyhow::Error::msg)
                .context("invalid shutdown.drain")?,
            (None, None) => DEFAULT_DRAIN,
        };
        let listen = match (over.listen, file.listen) {
            (Some(a), _) => a,
            (None, Some(s)) => s
                .parse()
                .with_context(|| format!("`listen = \"{s}\"` is not an ip:port address"))?,
            (None, None) => DEFAULT_LISTEN.parse()?,
        };
        let gateway = resolve_gateway(file.gateway, file.grpc, &over)?;
        let (discovery_interval, dns_server) =
            DiscoveryFile::resolve(file.discovery.unwrap_or_default(), &over)?;
        let split_brain = file.split_brain.unwrap_or_default().resolve()?;
        let tls = file.tls.unwrap_or_default().resolve(
            over.tls_ca.clone(),
            over.tls_cert.clone(),
            over.tls_key.clone(),
        )?;
        let cfg = Self {
            name: over
                .name
                .or(file.name)
                .unwrap_or_else(|| format!("node-{}", std::process::id())),
            listen,
            seeds: non_empty(over.seeds).or(file.seeds).unwrap_or_default(),
            advertise: over.advertise.or(file.advertise),
            discovery_interval,
            dns_server,
            cluster: over
                .cluster
                .or(file.cluster)
                .unwrap_or_else(|| "msa".into()),
            secret,
            tls,
            arbiters: over.arbiters.or(file.arbiters),
            failure_detection_ms: over.failure_detection_ms.or(file.failure_detection_ms),
            handshake_timeout_ms: file.handshake_timeout_ms,
            max_pending_handshakes: file.max_pending_handshakes,
            split_brain,
            log_format: over.log_format.or(file.log_format).unwrap_or_default(),
            ops,
            drain,
            services: non_empty(over.services)
                .or(file.services)
                .unwrap_or_default(),
            gateway,
            access: file.access.unwrap_or_default(),
        };
        cfg.check()?;
        Ok(cfg)
    }

    fn read(path: &Path) -> anyhow::Result<toml::Table> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
    }

    fn check(&self) -> anyhow::Result<()> {
        if self.name.is_empty() {
            bail!("the node name must not be empty");
        }
        if self.arbiters == Some(0) {
            bail!("arbiters must be at least 1");
        }
        if self.handshake_timeout_ms == Some(0) {
            bail!("handshake_timeout_ms must be more than 0");
        }
        if self.max_pending_handshakes == Some(0) {
            bail!("max_pending_handshakes must be at least 1 (0 would refuse every peer)");
        }
        if self.secret.is_none() && self.tls.is_none() && !self.listen.ip().is_loopback() {
            bail!(
                "listening on {} needs a cluster secret (--secret or MSA_SECRET) or mutual TLS \
                 (--tls-ca/--tls-cert/--tls-key, [tls]); without either a node may only listen \
                 on loopback",
                self.listen
            );
        }
        let mut seen = std::collections::HashSet::new();
        for s in &self.services {
            if s.instances == Some(0) {
                bail!("service `{}` must have at least 1 instance", s.name());
            }
            if let Some(max) = s.max_instances {
                if max < s.instance_count() {
                    bail!(
                        "service `{}`: max_instances {max} is below its {} instances",
                        s.name(),
                        s.instance_count()
                    );
                }
            }
            if s.kind == ServiceKind::Kv && s.max_instance_count() != s.instance_count() {
                bail!(
                    "service `{}` of kind kv cannot scale (max_instances {}): its keys are \
                     sharded over its {} instances",
                    s.name(),
                    s.max_instance_count(),
                    s.instance_count()
                );
            }
            if !seen.insert(s.name()) {
                bail!("service name `{}` is used twice", s.name());
            }
            if s.kind.is_shop() && s.name() != s.kind.as_str() {
                bail!(
                    "service `{}` of kind `{}` must be named `{}`: the shop services call each other by name",
                    s.name(),
                    s.kind,
                    s.kind
                );
            }
            if s.kind.is_shop() && s.max_instance_count() != 1 {
                bail!(
                    "service `{}` runs one instance (it holds the shop's state), not {}",
                    s.name(),
                    s.max_instance_count()
                );
            }
        }
        for r in &self.access {
            r.check()?;
        }
        Ok(())
    }
}

/// The gateway: the file's `[gateway]` table, with `--gateway` as its bind
/// address (a flag alone starts one with the defaults) and `--jwt-secret`
/// as its HS256 secret.
fn resolve_gateway(
    file: Option<GatewayConfig>,
    grpc: Option<GrpcConfig>,
    over: &Overrides,
) -> anyhow::Result<Option<GatewayConfig>> {
    let grpc = match (grpc, over.grpc) {
        (Some(g), Some(bind)) => Some(GrpcConfig { bind, ..g }),
        (None, Some(bind)) => Some(GrpcConfig {
            bind,
            ..GrpcConfig::default()
        }),
        (g, None) => g,
    };
    let mut gateway = match (file, over.gateway) {
        (Some(mut g), Some(bind)) => {
            g.bind = bind;
            g
        }
        (Some(g), None) => g,
        (None, Some(bind)) => GatewayConfig {
            bind,
            ..GatewayConfig::default()
        },
        (None, None) => {
            if over.jwt_secret.is_some() {
                bail!("--jwt-secret (or MSA_JWT_SECRET) needs a gateway: add --gateway IP:PORT or a [gateway] table");
            }
            if grpc.is_some() {
                bail!("[grpc] (or --grpc, MSA_GRPC) needs a gateway, whose auth and policy it shares: add --gateway IP:PORT or a [gateway] table");
            }
            return Ok(None);
        }
    };
    gateway.grpc = grpc;
    if let Some(secret) = over.jwt_secret.as_ref().filter(|s| !s.is_empty()) {
        gateway.auth = Some(match gateway.auth.take() {
            Some(a) => AuthConfig {
                alg: Some(JwtAlg::HS256),
                secret: Some(secret.clone()),
                public_key_pem: None,
                ..a
            },
            None => AuthConfig::hs256(secret.clone()),
        });
    }
    Ok(Some(gateway))
}

/// The `[discovery]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DiscoveryFile {
    interval: Option<String>,
    dns_server: Option<String>,
}

impl DiscoveryFile {
    /// The interval and DNS server, flags and environment winning.
    fn resolve(
        self,
        over: &Overrides,
    ) -> anyhow::Result<(Option<std::time::Duration>, Option<SocketAddr>)> {
        let interval = match over.discovery_interval.as_ref().or(self.interval.as_ref()) {
            Some(s) => Some(parse_interval(s).with_context(|| {
                format!("discovery interval `{s}` is not a duration like 500ms, 10s or 1m")
            })?),
            None => None,
        };
        let dns = match (over.dns_server, self.dns_server) {
            (Some(a), _) => Some(a),
            (None, Some(s)) => Some(s.parse().with_context(|| {
                format!("`discovery.dns_server = \"{s}\"` is not an ip:port address")
            })?),
            (None, None) => None,
        };
        Ok((interval, dns))
    }
}

/// `500ms`, `10s`, `1m` (a positive whole number and a unit).
fn parse_interval(s: &str) -> anyhow::Result<std::time::Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().context("no number")?;
    let d = match unit.trim() {
        "ms" => std::time::Duration::from_millis(n),
        "s" => std::time::Duration::from_secs(n),
        "m" => std::time::Duration::from_secs(n.saturating_mul(60)),
        u => bail!("unknown unit `{u}` (ms, s or m)"),
    };
    if d.is_zero() {
        bail!("must be more than 0");
    }
    Ok(d)
}

/// The cluster secret: given as is, or read from a file (a Kubernetes
/// Secret mounted as one), its trailing newline trimmed. Both is an error:
/// which one wins would be a guess.
fn resolve_secret(
    secret: Option<String>,
    file: Option<std::path::PathBuf>,
) -> anyhow::Result<Option<String>> {
    let secret = secret.filter(|s| !s.is_empty());
    let file = file.filter(|f| !f.as_os_str().is_empty());
    match (secret, file) {
        (Some(_), Some(_)) => bail!(
            "both a secret and a secret file are set (secret / MSA_SECRET / --secret and \
             secret_file / MSA_SECRET_FILE / --secret-file): set one"
        ),
        (Some(s), None) => Ok(Some(s)),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read the secret file {}", path.display()))?;
            let s = text.trim_end_matches(['\n', '\r']);
            if s.is_empty() {
                bail!("the secret file {} is empty", path.display());
            }
            Ok(Some(s.to_string()))
        }
        (None, None) => Ok(None),
    }
}

fn non_empty<T>(v: Vec<T>) -> Option<Vec<T>> {
    (!v.is_empty()).then_some(v)
}

#[cfg(test)]
mod tests;
