//! `ServiceRef`: a location-transparent handle to a service by name.
//!
//! This file holds the handle itself (its constructors and the entry it
//! resolves through); the calls are in the submodules, by concept:
//! `route` decides where a call goes; `ask` and `tell` are the two kinds
//! of call, with `bounded` for sends that wait for room and `inbound` for
//! calls served for other nodes; `remote_leg` sends to an instance on
//! another node; `timeout` ties an ask to its deadline; `errors` maps
//! failures to [`CallError`].

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use actix::Message;

use super::send::SendFns;
use super::NodeShared;
use crate::error::CallError;
use crate::registry::ServiceEntry;

mod ask;
mod bounded;
mod errors;
mod inbound;
mod remote_leg;
mod route;
mod tell;
mod tell_run;
mod timeout;

pub use ask::{Ask, AskFuture};
pub(crate) use bounded::FullTell;

/// A handle to a service, by name. Cheap to clone, `Send + Sync`.
///
/// It resolves through the registry, never through a stale address: calls
/// keep working across restarts. Local calls pass the message to the
/// instance's mailbox as is (no serialization).
///
/// # Examples
/// ```
/// # use msa_runtime::prelude::*;
/// # #[derive(actix::Message)] #[rtype(result = "u32")] struct Ping;
/// # #[derive(Default)] struct Pong; impl Service for Pong {}
/// # impl Handler<Ping> for Pong {
/// #     fn handle(&mut self, _: Ping, _: &mut ServiceContext<'_, Self>) -> Reply<Self, u32> { Reply::ready(1) }
/// # }
/// # #[tokio::main] async fn main() {
/// let node = Node::builder().arbiters(1).start().unwrap();
/// node.spawn(ServiceSpec::new("pong", Pong::default).handles_local::<Ping>()).await.unwrap();
/// let pong = node.service("pong");
/// assert_eq!(pong.ask(Ping).await, Ok(1));
/// let quick = pong.ask(Ping).timeout(std::time::Duration::from_millis(50)).await;
/// assert_eq!(quick, Ok(1));
/// node.shutdown(std::time::Duration::from_secs(1)).await.unwrap();
/// # }
/// ```
#[derive(Clone)]
pub struct ServiceRef {
    node: Arc<NodeShared>,
    name: Arc<str>,
    entry: OnceLock<Arc<ServiceEntry>>,
    /// Serves inbound remote calls: never forwards to another node.
    local_only: bool,
}

/// The entry a call uses: the cached one, or a fresh lookup when a local
/// spawn replaced the remote-only entry this handle cached.
enum EntryRef<'a> {
    Cached(&'a Arc<ServiceEntry>),
    Fresh(Arc<ServiceEntry>),
}

impl std::ops::Deref for EntryRef<'_> {
    type Target = Arc<ServiceEntry>;
    #[inline]
    fn deref(&self) -> &Arc<ServiceEntry> {
        match self {
            Self::Cached(e) => e,
            Self::Fresh(e) => e,
        }
    }
}

impl std::fmt::Debug for ServiceRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceRef")
            .field("name", &self.name)
            .finish()
    }
}

/// The send functions of `M` registered on `entry`.
#[inline]
fn fns<M>(entry: &ServiceEntry, index: usize) -> Option<SendFns<M>>
where
    M: Message + Send + 'static,
    M::Result: Send,
{
    entry.types[index]
        .send
        .as_deref()
        .and_then(|f| f.downcast_ref::<SendFns<M>>())
        .copied()
}

impl ServiceRef {
    pub(crate) fn new(node: Arc<NodeShared>, name: &str) -> Self {
        Self {
            node,
            name: Arc::from(name),
            entry: OnceLock::new(),
            local_only: false,
        }
    }

    /// A handle that only reaches this node's instances (for serving calls
    /// that came from another node).
    pub(crate) fn local_only(node: Arc<NodeShared>, entry: Arc<ServiceEntry>) -> Self {
        let mut r = Self::with_entry(node, entry);
        r.local_only = true;
        r
    }

    pub(crate) fn with_entry(node: Arc<NodeShared>, entry: Arc<ServiceEntry>) -> Self {
        let cell = OnceLock::new();
        let name = entry.name_arc().clone();
        let _ = cell.set(entry);
        Self {
            node,
            name,
            entry: cell,
            local_only: false,
        }
    }

    /// The service name.
    pub fn name(&self) -> &str {
        &self.name
    }

    #[inline]
    /// Records the latency of an ask served for an outside caller (a JSON
    /// call, a remote node) in the service's histogram.
    pub(crate) fn record_ask_latency(&self, d: Duration) {
        if let Ok(e) = self.entry() {
            e.stats.ask_latency.record(d);
        }
    }

    fn entry(&self) -> Result<EntryRef<'_>, CallError> {
        if let Some(e) = self.entry.get() {
            if !e.is_replaced() {
                return Ok(EntryRef::Cached(e));
            }
        }
        let e = self
            .node
            .registry
            .get(&self.name)
            .ok_or_else(|| self.unknown_service())?;
        if self.entry.get().is_none() {
            return Ok(EntryRef::Cached(self.entry.get_or_init(|| e)));
        }
        Ok(EntryRef::Fresh(e))
    }

    /// The entry for the local fast path: cached, round-robin, no remote
    /// instance, not shutting down. `None` sends the call down the general
    /// path.
    #[inline]
    fn fast_entry(&self) -> Option<&ServiceEntry> {
        // The flag is also set while the node shuts down (`Registry::close`).
        self.entry
            .get()
            .map(|e| &**e)
            .filter(|e| !e.needs_slow_path())
    }
}
