//! Discovery: where a node finds the seeds it joins the cluster through.
//!
//! A node asks its [`Discovery`] for the current seed addresses at start and
//! again every `discovery_interval`
//! ([`NodeBuilder::discovery_interval`](crate::NodeBuilder::discovery_interval)).
//! It dials every address newly found, keeps re-dialing (with backoff) those
//! it cannot reach, and stops dialing an address that is no longer found.
//! Membership gossip does the rest: one reachable seed is enough to learn
//! every member.
//!
//! Two implementations ship:
//! - [`StaticSeeds`]: a fixed list, dialed as given. The default on a
//!   transport other than TCP (where an address is not a DNS name).
//! - [`DnsSeeds`]: the default on TCP. A seed whose host is an IP address is
//!   used as it is; one whose host is a name (`msa-nodes.default.svc:7000`,
//!   a Kubernetes headless Service) is resolved to all its A and AAAA
//!   records, each dialed at the seed's port, and re-resolved at every
//!   round, so nodes that come and go behind the name are found.
//!
//! Anything else that knows where nodes run (Consul, etcd, a cloud API) plugs
//! in by implementing [`Discovery`] and passing it to
//! [`NodeBuilder::discovery`](crate::NodeBuilder::discovery).
//!
//! # Examples
//! ```
//! use msa_runtime::remote::discovery::{Discovery, DiscoveryError, SeedsFuture};
//!
//! /// Seeds from a service catalogue (here a stand-in closure).
//! #[derive(Debug)]
//! struct Catalogue;
//!
//! impl Discovery for Catalogue {
//!     fn seeds(&self) -> SeedsFuture<'_> {
//!         Box::pin(async {
//!             // e.g. GET /v1/health/service/msa?passing from a Consul agent;
//!             // here one loopback address where nothing listens.
//!             let healthy: Result<Vec<String>, String> = Ok(vec!["127.0.0.1:1".into()]);
//!             healthy.map_err(|reason| DiscoveryError::Other { reason })
//!         })
//!     }
//! }
//!
//! let node = msa_runtime::Node::builder()
//!     .arbiters(1)
//!     .discovery(Catalogue)
//!     .start()
//!     .unwrap();
//! node.shutdown_blocking(std::time::Duration::from_secs(1)).unwrap();
//! ```

use std::future::Future;
use std::pin::Pin;

mod dns;
mod static_seeds;

pub use dns::DnsSeeds;
pub use static_seeds::StaticSeeds;

/// The future [`Discovery::seeds`] returns.
pub type SeedsFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<String>, DiscoveryError>> + Send + 'a>>;

/// A source of seed addresses (`host:port`, `[v6]:port`, or whatever the
/// node's transport dials).
///
/// The node calls [`seeds`](Self::seeds) at start and every
/// `discovery_interval`; it dials each address in the answer that it is not
/// dialing yet and stops dialing those no longer in it. An error keeps the
/// previous answer (it is logged at warn): a discovery service that is down
/// for a moment does not make the node forget its seeds.
pub trait Discovery: Send + Sync + std::fmt::Debug + 'static {
    /// The current seed addresses.
    ///
    /// # Errors
    /// A [`DiscoveryError`] when the source cannot be asked.
    fn seeds(&self) -> SeedsFuture<'_>;
}

/// Why discovery could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// A seed's name could not be resolved.
    #[error("cannot resolve seed {name}: {reason}")]
    Resolve {
        /// The seed as configured.
        name: String,
        /// What the resolver said.
        reason: String,
    },
    /// Any other failure of a discovery source.
    #[error("seed discovery failed: {reason}")]
    Other {
        /// What went wrong.
        reason: String,
    },
}
