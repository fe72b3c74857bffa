//! `NodeConfig`: what `msa node` runs, merged from three layers, later ones
//! winning field by field: a TOML file (`--config`), the environment
//! (`MSA_*`), and command-line flags. clap merges the last two (a flag beats
//! its `MSA_*` variable); [`NodeConfig::resolve`] lays the result over the
//! file.
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
//!
//! [discovery]                    # MSA_DISCOVERY_INTERVAL, MSA_DISCOVERY_DNS_SERVER
//! interval = "10s"               # re-resolve seed names this often (ms, s or m)
//! dns_server = "127.0.0.1:5353"  # default: the system's resolver configuration
//!
//! [[services]]
//! kind = "kv"                    # kv | echo | counter | orders | inventory | payments
//! name = "kv"                    # default: the kind
//! instances = 2                  # default: 1
//!
//! [gateway]                      # optional: serve HTTP (msa-gateway); every key optional
//! bind = "127.0.0.1:8080"        # --gateway / MSA_GATEWAY override it
//! workers = 2
//! max_body_bytes = 1048576
//! timeout_ms = 5000              # default: the node's ask timeout
//! max_concurrency = 1024         # calls in flight per route before 429
//!
//! [gateway.auth]                 # JWT auth; without it every call is allowed
//! alg = "HS256"                  # HS256 | RS256 | ES256 (--jwt-secret S sets HS256 + S)
//! secret = "…"                   # HS256 key (UTF-8 bytes); better: MSA_JWT_SECRET
//! # public_key_pem = "…"         # RS256 / ES256
//! # roles_claim = "roles"; leeway_secs = 60; admin_roles = ["admin"]
//!
//! [[gateway.policy]]             # with auth on, a call needs a matching rule
//! service = "orders"             # "*", "prefix.*" or exact
//! message = "shop.*"
//! roles = ["customer"]
//!
//! [[gateway.routes]]             # friendly paths besides POST /v1/{service}/{message}
//! method = "GET"
//! path = "/orders/{id}"          # {id} is merged into the JSON body
//! service = "orders"
//! message = "shop.GetOrder"
//! ```
//!
//! The shop services (`orders`, `inventory`, `payments`) find each other by
//! name, so they keep their kind's name and run one instance each (they hold
//! state). `--demo-policy` adds the shop demo's policy and routes to the
//! gateway (see `cluster/demo.rs`).
//!
//! Lists (`seeds`, `services`) are replaced, not appended to, by a later
//! layer that sets them.

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::str::FromStr;

use anyhow::{bail, Context};
use msa::gateway::{AuthConfig, GatewayConfig, JwtAlg};
use serde::Deserialize;

/// The address a node listens on when nothing says otherwise: loopback, a
/// free port. It is the only kind of address a node without a secret may use.
pub(crate) const DEFAULT_LISTEN: &str = "127.0.0.1:0";

/// A ready actor from `msa-actors` that a node can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ServiceKind {
    /// `msa::actors::kv`: a key-value store sharded by key.
    Kv,
    /// `msa::actors::echo`: answers `Ping` and `Echo`.
    Echo,
    /// `msa::actors::counter`: adds and reads a number.
    Counter,
    /// `msa::actors::shop` orders: places orders through inventory and payments.
    Orders,
    /// `msa::actors::shop` inventory: stock and reservations.
    Inventory,
    /// `msa::actors::shop` payments: charges up to a limit.
    Payments,
}

impl ServiceKind {
    /// Every kind.
    pub(crate) const ALL: [ServiceKind; 6] = [
        Self::Kv,
        Self::Echo,
        Self::Counter,
        Self::Orders,
        Self::Inventory,
        Self::Payments,
    ];

    /// The plain demo services, in the order `msa cluster up` spreads them
    /// over nodes.
    pub(crate) const DEMO: [ServiceKind; 3] = [Self::Kv, Self::Echo, Self::Counter];

    /// The shop services, in the order `msa cluster up` spreads them.
    pub(crate) const SHOP: [ServiceKind; 3] = [Self::Orders, Self::Inventory, Self::Payments];

    /// The kind's name in configs and flags.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Kv => "kv",
            Self::Echo => "echo",
            Self::Counter => "counter",
            Self::Orders => "orders",
            Self::Inventory => "inventory",
            Self::Payments => "payments",
        }
    }

    /// Whether this is a shop service (fixed name, one stateful instance).
    pub(crate) fn is_shop(self) -> bool {
        Self::SHOP.contains(&self)
    }
}

impl fmt::Display for ServiceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ServiceKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown service kind `{s}`, expected one of: \
                     kv, echo, counter, orders, inventory, payments"
                )
            })
    }
}

/// One service a node runs: which ready actor, under which name, how many
/// instances.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServiceConfig {
    /// Which ready actor.
    pub(crate) kind: ServiceKind,
    /// The service name (default: the kind's name).
    #[serde(default)]
    name: Option<String>,
    /// Number of instances (default 1).
    #[serde(default)]
    pub(crate) instances: Option<usize>,
}

impl ServiceConfig {
    /// A service of `kind` named after it, with the default instance count.
    pub(crate) fn of(kind: ServiceKind) -> Self {
        Self {
            kind,
            name: None,
            instances: None,
        }
    }

    /// The service name.
    pub(crate) fn name(&self) -> &str {
        self.name.as_deref().unwrap_or(self.kind.as_str())
    }

    /// The number of instances to run.
    pub(crate) fn instance_count(&self) -> usize {
        self.instances.unwrap_or(1)
    }
}

/// `kind[:name[:instances]]`, as `--service` and `MSA_SERVICES` take it.
impl FromStr for ServiceConfig {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut parts = s.split(':');
        let kind = parts.next().unwrap_or_default().parse()?;
        let name = parts.next().filter(|n| !n.is_empty()).map(str::to_string);
        let instances = match parts.next() {
            Some(n) => Some(
                n.parse()
                    .map_err(|_| format!("`{n}` is not a number of instances (in `{s}`)"))?,
            ),
            None => None,
        };
        if parts.next().is_some() {
            return Err(format!(
                "`{s}` has too many parts; expected kind[:name[:instances]]"
            ));
        }
        Ok(Self {
            kind,
            name,
            instances,
        })
    }
}

impl fmt::Display for ServiceConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.name())?;
        if let Some(n) = self.instances {
            write!(f, ":{n}")?;
        }
        Ok(())
    }
}

/// The file layer: every key optional, unknown keys refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    name: Option<String>,
    listen: Option<String>,
    advertise: Option<String>,
    discovery: Option<DiscoveryFile>,
    seeds: Option<Vec<String>>,
    cluster: Option<String>,
    secret: Option<String>,
    arbiters: Option<usize>,
    failure_detection_ms: Option<u64>,
    services: Option<Vec<ServiceConfig>>,
    gateway: Option<GatewayConfig>,
}

/// The env-and-flags layer (clap fills it; `None` or empty means "not set").
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
    /// `--arbiters` / `MSA_ARBITERS`.
    pub(crate) arbiters: Option<usize>,
    /// `--failure-detection-ms` / `MSA_FAILURE_DETECTION_MS`.
    pub(crate) failure_detection_ms: Option<u64>,
    /// `--service` (repeatable) / `MSA_SERVICES` (comma-separated).
    pub(crate) services: Vec<ServiceConfig>,
    /// `--gateway` / `MSA_GATEWAY`: run the gateway, bound here.
    pub(crate) gateway: Option<SocketAddr>,
    /// `--jwt-secret` / `MSA_JWT_SECRET`: gateway auth, HS256 with this secret.
    pub(crate) jwt_secret: Option<String>,
    /// `--demo-policy`: add the shop demo's policy and routes to the gateway.
    pub(crate) demo_policy: bool,
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
    /// The shared secret; `None` restricts the node to loopback.
    pub(crate) secret: Option<String>,
    /// Arbiter threads (`None`: one per core).
    pub(crate) arbiters: Option<usize>,
    /// Failure-detection bound in milliseconds (`None`: 5,000).
    pub(crate) failure_detection_ms: Option<u64>,
    /// The services to run.
    pub(crate) services: Vec<ServiceConfig>,
    /// The HTTP gateway to run after the services, if any.
    pub(crate) gateway: Option<GatewayConfig>,
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
            .field("arbiters", &self.arbiters)
            .field("services", &self.services)
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
    /// Reads the file at `path` (if any), lays `over` on top, and checks the
    /// result.
    ///
    /// # Errors
    /// An unreadable file, malformed TOML, an unknown key or service kind, a
    /// bad address, zero arbiters or instances, or two services with one name.
    pub(crate) fn resolve(path: Option<&Path>, over: Overrides) -> anyhow::Result<Self> {
        let file = match path {
            Some(p) => Self::read(p)?,
            None => ConfigFile::default(),
        };
        let listen = match (over.listen, file.listen) {
            (Some(a), _) => a,
            (None, Some(s)) => s
                .parse()
                .with_context(|| format!("`listen = \"{s}\"` is not an ip:port address"))?,
            (None, None) => DEFAULT_LISTEN.parse()?,
        };
        let gateway = resolve_gateway(file.gateway, &over)?;
        let (discovery_interval, dns_server) =
            DiscoveryFile::resolve(file.discovery.unwrap_or_default(), &over)?;
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
            secret: over.secret.or(file.secret).filter(|s| !s.is_empty()),
            arbiters: over.arbiters.or(file.arbiters),
            failure_detection_ms: over.failure_detection_ms.or(file.failure_detection_ms),
            services: non_empty(over.services)
                .or(file.services)
                .unwrap_or_default(),
            gateway,
        };
        cfg.check()?;
        Ok(cfg)
    }

    fn read(path: &Path) -> anyhow::Result<ConfigFile> {
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
        if self.secret.is_none() && !self.listen.ip().is_loopback() {
            bail!(
                "listening on {} needs a cluster secret (--secret or MSA_SECRET); \
                 without one a node may only listen on loopback",
                self.listen
            );
        }
        let mut seen = std::collections::HashSet::new();
        for s in &self.services {
            if s.instances == Some(0) {
                bail!("service `{}` must have at least 1 instance", s.name());
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
            if s.kind.is_shop() && s.instance_count() != 1 {
                bail!(
                    "service `{}` runs one instance (it holds the shop's state), not {}",
                    s.name(),
                    s.instance_count()
                );
            }
        }
        Ok(())
    }
}

/// The gateway: the file's `[gateway]` table, with `--gateway` as its bind
/// address (a flag alone starts one with the defaults), `--jwt-secret` as
/// its HS256 secret, and the demo policy and routes added on
/// `--demo-policy`.
fn resolve_gateway(
    file: Option<GatewayConfig>,
    over: &Overrides,
) -> anyhow::Result<Option<GatewayConfig>> {
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
            if over.demo_policy {
                bail!("--demo-policy needs a gateway: add --gateway IP:PORT or a [gateway] table");
            }
            return Ok(None);
        }
    };
    if let Some(secret) = over.jwt_secret.as_ref().filter(|s| !s.is_empty()) {
        gateway.auth = Some(match gateway.auth.take() {
            Some(a) => AuthConfig {
                alg: JwtAlg::HS256,
                secret: Some(secret.clone()),
                public_key_pem: None,
                ..a
            },
            None => AuthConfig {
                alg: JwtAlg::HS256,
                secret: Some(secret.clone()),
                public_key_pem: None,
                roles_claim: "roles".into(),
                leeway_secs: 60,
                admin_roles: vec!["admin".into()],
            },
        });
    }
    if over.demo_policy {
        gateway.policy.extend(crate::cli::cluster::demo_policy());
        gateway.routes.extend(crate::cli::cluster::demo_routes());
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

fn non_empty<T>(v: Vec<T>) -> Option<Vec<T>> {
    (!v.is_empty()).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_toml(text: &str) -> anyhow::Result<NodeConfig> {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("msa-config-test-{}-{n}.toml", std::process::id()));
        std::fs::write(&path, text)?;
        let r = NodeConfig::resolve(Some(&path), Overrides::default());
        let _ = std::fs::remove_file(&path);
        r
    }

    #[test]
    fn service_flags_parse_kind_name_and_instances() {
        let s: ServiceConfig = "kv:store:3".parse().unwrap();
        assert_eq!(
            (s.kind, s.name(), s.instance_count()),
            (ServiceKind::Kv, "store", 3)
        );
        let s: ServiceConfig = "echo".parse().unwrap();
        assert_eq!((s.name(), s.instance_count()), ("echo", 1));
        assert!("redis:x"
            .parse::<ServiceConfig>()
            .unwrap_err()
            .contains("unknown service kind"));
        assert!("kv:x:many".parse::<ServiceConfig>().is_err());
        assert!("kv:x:1:2".parse::<ServiceConfig>().is_err());
    }

    #[test]
    fn flags_win_over_the_file_field_by_field() {
        let path =
            std::env::temp_dir().join(format!("msa-config-layers-{}.toml", std::process::id()));
        std::fs::write(
            &path,
            "name = \"from-file\"\ncluster = \"c1\"\nseeds = [\"127.0.0.1:1\"]\n\
             [[services]]\nkind = \"kv\"\ninstances = 2\n",
        )
        .unwrap();
        let over = Overrides {
            name: Some("from-flag".into()),
            services: vec!["echo:e".parse().unwrap()],
            ..Overrides::default()
        };
        let cfg = NodeConfig::resolve(Some(&path), over).unwrap();
        let _ = std::fs::remove_file(&path);
        assert_eq!(cfg.name, "from-flag");
        assert_eq!(cfg.cluster, "c1");
        assert_eq!(cfg.seeds, ["127.0.0.1:1"]);
        assert_eq!(cfg.services.len(), 1);
        assert_eq!(cfg.services[0].name(), "e");
        assert_eq!(cfg.listen, DEFAULT_LISTEN.parse().unwrap());
    }

    #[test]
    fn advertise_and_discovery_come_from_the_file_and_flags_win() {
        let cfg = from_toml(
            "secret = \"s\"\nlisten = \"0.0.0.0:7000\"\nadvertise = \"10.0.0.5:0\"\n\
             seeds = [\"msa-nodes.default.svc:7000\"]\n\
             [discovery]\ninterval = \"500ms\"\ndns_server = \"127.0.0.1:5353\"\n",
        )
        .unwrap();
        assert_eq!(cfg.advertise.as_deref(), Some("10.0.0.5:0"));
        assert_eq!(cfg.seeds, ["msa-nodes.default.svc:7000"]);
        assert_eq!(
            cfg.discovery_interval,
            Some(std::time::Duration::from_millis(500))
        );
        assert_eq!(cfg.dns_server, Some("127.0.0.1:5353".parse().unwrap()));
        let over = Overrides {
            advertise: Some("[fd00::5]:7000".into()),
            discovery_interval: Some("2m".into()),
            dns_server: Some("127.0.0.1:53".parse().unwrap()),
            ..Overrides::default()
        };
        let (i, d) = DiscoveryFile {
            interval: Some("1s".into()),
            dns_server: Some("127.0.0.1:5353".into()),
        }
        .resolve(&over)
        .unwrap();
        assert_eq!(i, Some(std::time::Duration::from_secs(120)));
        assert_eq!(d, Some("127.0.0.1:53".parse().unwrap()));
        for bad in ["10", "10h", "0s", "s", "-1s"] {
            let e = format!(
                "{:#}",
                from_toml(&format!("[discovery]\ninterval = \"{bad}\"\n")).unwrap_err()
            );
            assert!(e.contains("is not a duration"), "{bad}: {e}");
        }
        let e = format!(
            "{:#}",
            from_toml("[discovery]\ndns_server = \"resolver:53\"\n").unwrap_err()
        );
        assert!(e.contains("not an ip:port"), "{e}");
        let e = format!("{:#}", from_toml("[discovery]\nttl = 1\n").unwrap_err());
        assert!(e.contains("unknown field `ttl`"), "{e}");
    }

    #[test]
    fn bad_files_are_refused_with_the_reason() {
        let e = format!(
            "{:#}",
            from_toml("[[services]]\nkind = \"redis\"\n").unwrap_err()
        );
        assert!(e.contains("unknown variant `redis`"), "{e}");
        let e = format!("{:#}", from_toml("name = \n").unwrap_err());
        assert!(e.contains("invalid config file"), "{e}");
        let e = format!("{:#}", from_toml("nmae = \"x\"\n").unwrap_err());
        assert!(e.contains("unknown field `nmae`"), "{e}");
        let e = format!(
            "{:#}",
            from_toml("listen = \"0.0.0.0:7000\"\n").unwrap_err()
        );
        assert!(e.contains("needs a cluster secret"), "{e}");
        let e = format!(
            "{:#}",
            from_toml("[[services]]\nkind = \"kv\"\n[[services]]\nkind = \"kv\"\n").unwrap_err()
        );
        assert!(e.contains("used twice"), "{e}");
        let e = format!(
            "{:#}",
            from_toml("[[services]]\nkind = \"orders\"\nname = \"o2\"\n").unwrap_err()
        );
        assert!(e.contains("must be named `orders`"), "{e}");
        let e = format!(
            "{:#}",
            from_toml("[[services]]\nkind = \"inventory\"\ninstances = 2\n").unwrap_err()
        );
        assert!(e.contains("runs one instance"), "{e}");
        let e = format!("{:#}", from_toml("[gateway]\nbnid = \"x\"\n").unwrap_err());
        assert!(e.contains("unknown field `bnid`"), "{e}");
    }

    #[test]
    fn shop_kinds_parse_by_name() {
        for kind in ServiceKind::SHOP {
            let s: ServiceConfig = kind.as_str().parse().unwrap();
            assert_eq!((s.kind, s.name()), (kind, kind.as_str()));
            assert!(kind.is_shop());
        }
        assert!(!ServiceKind::Kv.is_shop());
        assert_eq!(ServiceKind::ALL.len(), 6);
    }

    #[test]
    fn the_gateway_table_and_flags_combine() {
        let cfg = from_toml(
            "[gateway]\nbind = \"127.0.0.1:9000\"\nworkers = 1\n\
             [[gateway.routes]]\nmethod = \"GET\"\npath = \"/x\"\nservice = \"echo\"\nmessage = \"echo.Ping\"\n",
        )
        .unwrap();
        let g = cfg.gateway.unwrap();
        assert_eq!((g.bind.port(), g.workers, g.routes.len()), (9000, 1, 1));
        assert!(g.auth.is_none());
        assert!(from_toml("name = \"n\"\n").unwrap().gateway.is_none());

        let over = Overrides {
            gateway: Some("127.0.0.1:0".parse().unwrap()),
            jwt_secret: Some("s3cret".into()),
            demo_policy: true,
            ..Overrides::default()
        };
        let cfg = NodeConfig::resolve(None, over).unwrap();
        let g = cfg.gateway.clone().unwrap();
        assert_eq!(g.bind.port(), 0);
        let auth = g.auth.unwrap();
        assert_eq!(
            (auth.alg, auth.secret.as_deref()),
            (JwtAlg::HS256, Some("s3cret"))
        );
        assert_eq!(auth.admin_roles, ["admin"]);
        assert!(!g.policy.is_empty() && g.routes.len() == 2);
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("s3cret"), "{shown}");

        for over in [
            Overrides {
                jwt_secret: Some("s".into()),
                ..Overrides::default()
            },
            Overrides {
                demo_policy: true,
                ..Overrides::default()
            },
        ] {
            let e = format!("{:#}", NodeConfig::resolve(None, over).unwrap_err());
            assert!(e.contains("needs a gateway"), "{e}");
        }
    }
}
