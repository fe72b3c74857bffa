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
//! seeds = ["127.0.0.1:7000"]     # nodes to join through
//! cluster = "msa"                # nodes of another cluster are refused
//! secret = "…"                   # better: MSA_SECRET; required off loopback
//! arbiters = 2                   # default: one per core
//! failure_detection_ms = 5000    # a dead member is declared down within ~this
//!
//! [[services]]
//! kind = "kv"                    # kv | echo | counter (the ready actors)
//! name = "kv"                    # default: the kind
//! instances = 2                  # default: 1
//! ```
//!
//! Lists (`seeds`, `services`) are replaced, not appended to, by a later
//! layer that sets them.

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::str::FromStr;

use anyhow::{bail, Context};
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
}

impl ServiceKind {
    /// Every kind, in the order `msa cluster up` spreads them over nodes.
    pub(crate) const ALL: [ServiceKind; 3] = [Self::Kv, Self::Echo, Self::Counter];

    /// The kind's name in configs and flags.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Kv => "kv",
            Self::Echo => "echo",
            Self::Counter => "counter",
        }
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
                format!("unknown service kind `{s}`, expected one of: kv, echo, counter")
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
    seeds: Option<Vec<String>>,
    cluster: Option<String>,
    secret: Option<String>,
    arbiters: Option<usize>,
    failure_detection_ms: Option<u64>,
    services: Option<Vec<ServiceConfig>>,
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
}

/// Everything `msa node` needs, resolved and checked.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct NodeConfig {
    /// The node's name in the cluster.
    pub(crate) name: String,
    /// The remoting address.
    pub(crate) listen: SocketAddr,
    /// Seed addresses to join through.
    pub(crate) seeds: Vec<String>,
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
}

/// Never prints the secret.
impl fmt::Debug for NodeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeConfig")
            .field("name", &self.name)
            .field("listen", &self.listen)
            .field("seeds", &self.seeds)
            .field("cluster", &self.cluster)
            .field("secret", &self.secret.as_ref().map(|_| "<set>"))
            .field("arbiters", &self.arbiters)
            .field("services", &self.services)
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
        let cfg = Self {
            name: over
                .name
                .or(file.name)
                .unwrap_or_else(|| format!("node-{}", std::process::id())),
            listen,
            seeds: non_empty(over.seeds).or(file.seeds).unwrap_or_default(),
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
        }
        Ok(())
    }
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
    }
}
