//! DNS seeds: a seed whose host is a name is resolved to all its addresses,
//! at every discovery round.
//!
//! The resolver is Hickory DNS (`hickory-resolver`): a pure-Rust stub
//! resolver on tokio, maintained by the Hickory DNS project, that returns
//! every A and AAAA record of a name (the standard library's
//! `ToSocketAddrs` goes through the blocking libc resolver and gives no
//! control over the server or the timeout), honours record TTLs, reads
//! `/etc/resolv.conf` (so Kubernetes search domains apply) and can be
//! pointed at one server (`dns_server`, used by the tests).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use hickory_resolver::config::{LookupIpStrategy, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::TokioResolver;
use parking_lot::Mutex;

use super::{Discovery, DiscoveryError, SeedsFuture};
use crate::remote::address::split_host_port;

/// Seeds in which a name stands for all its A and AAAA records.
///
/// A seed whose host is an IP address is returned as it is; a seed
/// `name:port` is resolved at every call to `ip:port` for each address the
/// name has (`[v6]:port` for IPv6). When a name cannot be resolved (the
/// server is down, or the name has no records yet), its last answer is
/// kept (the seed as given, for the transport to resolve when it dials,
/// while it has never resolved) and the failure logged at warn.
///
/// # Examples
/// ```
/// use msa_runtime::remote::discovery::{Discovery, DnsSeeds};
/// # actix_rt::System::new().block_on(async {
/// let seeds = DnsSeeds::new(["10.0.0.1:7000", "[fd00::1]:7000"], None);
/// assert_eq!(
///     seeds.seeds().await.unwrap(),
///     ["10.0.0.1:7000", "[fd00::1]:7000"]
/// );
/// # });
/// ```
pub struct DnsSeeds {
    seeds: Vec<String>,
    dns_server: Option<SocketAddr>,
    /// Built at the first name to resolve.
    resolver: Mutex<Option<TokioResolver>>,
    /// The last answer for each name seed.
    last: Mutex<HashMap<String, Vec<String>>>,
}

impl std::fmt::Debug for DnsSeeds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsSeeds")
            .field("seeds", &self.seeds)
            .field("dns_server", &self.dns_server)
            .finish_non_exhaustive()
    }
}

impl DnsSeeds {
    /// Resolves names in `seeds` with the system's resolver configuration
    /// (`/etc/resolv.conf`, and `/etc/hosts`), or with the one server at
    /// `dns_server` (UDP, then TCP) when given.
    pub fn new<S: Into<String>>(
        seeds: impl IntoIterator<Item = S>,
        dns_server: Option<SocketAddr>,
    ) -> Self {
        Self {
            seeds: seeds.into_iter().map(Into::into).collect(),
            dns_server,
            resolver: Mutex::new(None),
            last: Mutex::new(HashMap::new()),
        }
    }

    fn resolver(&self) -> Result<TokioResolver, String> {
        let mut slot = self.resolver.lock();
        if let Some(r) = &*slot {
            return Ok(r.clone());
        }
        let mut builder = match self.dns_server {
            Some(server) => {
                let mut ns = NameServerConfig::udp_and_tcp(server.ip());
                for c in &mut ns.connections {
                    c.port = server.port();
                }
                TokioResolver::builder_with_config(
                    ResolverConfig::from_parts(None, Vec::new(), vec![ns]),
                    TokioRuntimeProvider::default(),
                )
            }
            None => TokioResolver::builder_tokio()
                .map_err(|e| format!("cannot read the system resolver configuration: {e}"))?,
        };
        builder.options_mut().ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        let r = builder.build().map_err(|e| e.to_string())?;
        *slot = Some(r.clone());
        Ok(r)
    }

    /// Resolves one name seed to `ip:port` strings, sorted.
    async fn resolve(&self, host: &str, port: u16) -> Result<Vec<String>, String> {
        let resolver = self.resolver()?;
        let found = resolver.lookup_ip(host).await.map_err(|e| e.to_string())?;
        let mut out: Vec<String> = found
            .iter()
            .map(|ip| SocketAddr::new(ip, port).to_string())
            .collect();
        out.sort();
        out.dedup();
        if out.is_empty() {
            return Err("no A or AAAA records".into());
        }
        Ok(out)
    }
}

impl Discovery for DnsSeeds {
    fn seeds(&self) -> SeedsFuture<'_> {
        Box::pin(async move {
            let mut out = Vec::new();
            for seed in &self.seeds {
                let name = match split_host_port(seed) {
                    Ok((host, port)) if host.parse::<IpAddr>().is_err() => (host, port),
                    // An address, or something the transport will refuse
                    // when it dials (and say why).
                    _ => {
                        out.push(seed.clone());
                        continue;
                    }
                };
                match self.resolve(name.0, name.1).await {
                    Ok(addrs) => {
                        tracing::debug!(%seed, ?addrs, "seed resolved");
                        self.last.lock().insert(seed.clone(), addrs.clone());
                        out.extend(addrs);
                    }
                    Err(reason) => {
                        // Never resolved yet: dial the name as given, so the
                        // transport's own resolver (the OS's) gets a say.
                        let kept = self
                            .last
                            .lock()
                            .get(seed)
                            .cloned()
                            .unwrap_or_else(|| vec![seed.clone()]);
                        tracing::warn!(
                            %seed,
                            error = %DiscoveryError::Resolve { name: seed.clone(), reason },
                            kept = ?kept,
                            "seed name not resolved; keeping its last addresses"
                        );
                        out.extend(kept);
                    }
                }
            }
            let mut seen = std::collections::HashSet::new();
            out.retain(|a| seen.insert(a.clone()));
            Ok(out)
        })
    }
}
