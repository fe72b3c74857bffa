//! The ready-made services a host runs (`[[services]]`, `--service`,
//! `MSA_SERVICES`): their kinds and how each is named and sized.

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

/// A ready-made service from [`msa::actors`](crate::actors) that a host runs
/// when its config lists it (`[[services]]`, `--service`, `MSA_SERVICES`),
/// beside the services it registers itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceKind {
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
    /// `msa::actors::shop` notifications: records the orders' events
    /// (topic `shop.orders`).
    Notifications,
}

impl ServiceKind {
    /// Every kind.
    pub const ALL: [ServiceKind; 7] = [
        Self::Kv,
        Self::Echo,
        Self::Counter,
        Self::Orders,
        Self::Inventory,
        Self::Payments,
        Self::Notifications,
    ];

    /// The plain demo services, in the order `msa cluster up` spreads them
    /// over nodes.
    pub const DEMO: [ServiceKind; 3] = [Self::Kv, Self::Echo, Self::Counter];

    /// The shop services, in the order `msa cluster up` spreads them.
    pub const SHOP: [ServiceKind; 4] = [
        Self::Orders,
        Self::Inventory,
        Self::Payments,
        Self::Notifications,
    ];

    /// The kind's name in configs and flags.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Kv => "kv",
            Self::Echo => "echo",
            Self::Counter => "counter",
            Self::Orders => "orders",
            Self::Inventory => "inventory",
            Self::Payments => "payments",
            Self::Notifications => "notifications",
        }
    }

    /// Whether this is a shop service (fixed name, one stateful instance).
    pub fn is_shop(self) -> bool {
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
                     kv, echo, counter, orders, inventory, payments, notifications"
                )
            })
    }
}

/// One service a node runs: which ready actor, under which name, how many
/// instances.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// Which ready actor.
    pub kind: ServiceKind,
    /// The service name (default: the kind's name).
    #[serde(default)]
    name: Option<String>,
    /// Number of instances (default 1).
    #[serde(default)]
    pub instances: Option<usize>,
    /// The most instances `msa service scale` (`Node::scale`) may run
    /// (default: `instances`): `ServiceSpec::max_instances`.
    #[serde(default)]
    pub max_instances: Option<usize>,
}

impl ServiceConfig {
    /// A service of `kind` named after it, with the default instance count.
    pub fn of(kind: ServiceKind) -> Self {
        Self {
            kind,
            name: None,
            instances: None,
            max_instances: None,
        }
    }

    /// The service name.
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or(self.kind.as_str())
    }

    /// The number of instances to run.
    pub fn instance_count(&self) -> usize {
        self.instances.unwrap_or(1)
    }

    /// The most instances the service may be scaled to (at least
    /// [`instance_count`](Self::instance_count)).
    pub fn max_instance_count(&self) -> usize {
        self.max_instances.unwrap_or(0).max(self.instance_count())
    }

    /// As a `[[services]]` entry.
    pub(crate) fn to_table(&self) -> toml::Table {
        let mut t = toml::Table::new();
        t.insert("kind".into(), self.kind.as_str().into());
        if let Some(n) = &self.name {
            t.insert("name".into(), n.as_str().into());
        }
        if let Some(n) = self.instances {
            t.insert(
                "instances".into(),
                i64::try_from(n).unwrap_or(i64::MAX).into(),
            );
        }
        if let Some(n) = self.max_instances {
            t.insert(
                "max_instances".into(),
                i64::try_from(n).unwrap_or(i64::MAX).into(),
            );
        }
        t
    }
}

/// `kind[:name[:instances[:max_instances]]]`, as `--service` and
/// `MSA_SERVICES` take it.
impl FromStr for ServiceConfig {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut parts = s.split(':');
        let kind = parts.next().unwrap_or_default().parse()?;
        let name = parts.next().filter(|n| !n.is_empty()).map(str::to_string);
        let mut count = |what: &str| match parts.next() {
            Some(n) => n
                .parse()
                .map(Some)
                .map_err(|_| format!("`{n}` is not a number of {what} (in `{s}`)")),
            None => Ok(None),
        };
        let instances = count("instances")?;
        let max_instances = count("max_instances")?;
        if parts.next().is_some() {
            return Err(format!(
                "`{s}` has too many parts; expected kind[:name[:instances[:max_instances]]]"
            ));
        }
        Ok(Self {
            kind,
            name,
            instances,
            max_instances,
        })
    }
}

impl fmt::Display for ServiceConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.name())?;
        match (self.instances, self.max_instances) {
            (Some(n), Some(m)) => write!(f, ":{n}:{m}")?,
            (None, Some(m)) => write!(f, ":{}:{m}", self.instance_count())?,
            (Some(n), None) => write!(f, ":{n}")?,
            (None, None) => {}
        }
        Ok(())
    }
}
