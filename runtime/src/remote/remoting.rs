//! The remoting layer of a node: the listener, dialers with reconnect, one
//! data connection per peer with a batching writer, inbound dispatch, and a
//! second connection per peer for membership (the lane, [`lane`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::RwLock;
use tokio::sync::mpsc;

mod config;
mod connect;
mod connection;
mod dispatch;
mod error;
mod grid;
mod io;
mod join_driver;
mod lane;
mod live;
mod membership_driver;
mod operator;
mod reach;
mod seeds;
mod split_brain;
mod status;
#[cfg(test)]
mod tests;
mod tls;
mod writer;

use super::frame::{Frame, NodeInfo};
use super::handshake::{HandshakeConfig, PROTOCOLS};
use super::inbound::LocalNode;
use super::membership::Member;
use super::peer::Peer;
use super::stats::RemoteStats;
use super::transport::Transport;
#[cfg(test)]
pub(crate) use config::DEFAULT_DETECTION;
pub use config::{
    RemoteConfig, DEFAULT_DISCOVERY_INTERVAL, DEFAULT_HANDSHAKE_TIMEOUT,
    DEFAULT_MAX_CONTROL_QUEUE_BYTES, DEFAULT_MAX_DATA_QUEUE_BYTES, DEFAULT_MAX_INBOUND_ASKS,
    DEFAULT_MAX_PENDING_HANDSHAKES, DEFAULT_PEER_STALL_TIMEOUT,
};
use error::ConnectionError;
pub(crate) use live::LiveFetchError;
pub(crate) use status::{client_exchange, fetch_status};

/// The remoting state of one node.
#[derive(Debug)]
pub(crate) struct Remoting {
    pub(crate) cfg: RemoteConfig,
    pub(crate) local: NodeInfo,
    pub(crate) stats: Arc<RemoteStats>,
    peers: RwLock<HashMap<String, Arc<Peer>>>,
    node: Weak<dyn LocalNode>,
    transport: Arc<dyn Transport>,
    closing: AtomicBool,
    closed: tokio::sync::watch::Sender<bool>,
    membership: parking_lot::Mutex<Option<mpsc::UnboundedSender<MembershipInput>>>,
    /// The latest membership view (name → member, status), kept by the loop.
    view: parking_lot::Mutex<Vec<(NodeInfo, &'static str)>>,
    /// Established connections still running (shutdown waits for them to
    /// flush their `Leaving`).
    conns: std::sync::atomic::AtomicUsize,
    conns_done: tokio::sync::Notify,
    /// Membership changes for subscribers.
    events: tokio::sync::broadcast::Sender<super::status::ClusterEvent>,
    /// Addresses being dialed for membership, so each is dialed once at a time.
    dialing: parking_lot::Mutex<std::collections::HashSet<String>>,
    /// Ids of membership lanes (so a replaced lane cannot detach its successor).
    next_lane: std::sync::atomic::AtomicU64,
    /// This node's service table version: bumped at every registry change,
    /// gossiped, and carried by every table and data-connection ping.
    table_version: AtomicU64,
    /// Which members this node reaches, and the others' reports.
    reach: parking_lot::Mutex<super::reachability::Reachability>,
    /// Whether a connection to another node was ever established (until
    /// then, the seeds' tables are pending).
    ever_connected: AtomicBool,
    /// Members (name, incarnation) that left gracefully: their state is
    /// `removed` (see `status.rs`).
    removed: parking_lot::Mutex<std::collections::BTreeSet<(String, u64)>>,
    /// The split-brain resolver and the members it counts.
    sbr: parking_lot::Mutex<split_brain::SbrState>,
    /// Set while the split-brain resolver has this node downed.
    self_downed: AtomicBool,
    /// The join step (`remote/join.rs`) and what it is stepped with.
    join: parking_lot::Mutex<join_driver::JoinDriver>,
    /// Set while the join step has this node `up` (admitted).
    joined: AtomicBool,
    /// When a connection over the handshake cap was last logged and how
    /// many were closed since, so a flood logs once a second.
    over_cap_log: parking_lot::Mutex<(Option<std::time::Instant>, u64)>,
    /// Carries out operators' service requests (installed by the node).
    pub(crate) service_operator: std::sync::OnceLock<Arc<dyn super::ServiceOperator>>,
    /// Makes this node's live report for other nodes (installed by the node).
    pub(crate) live_source: std::sync::OnceLock<Arc<dyn super::live_source::LiveSource>>,
    /// The grid every periodic timer of this node falls on (`grid.rs`).
    grid: grid::Grid,
}

/// Counts an established connection until it ends.
struct ConnGuard<'a>(&'a std::sync::atomic::AtomicUsize, &'a tokio::sync::Notify);

impl Drop for ConnGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
        self.1.notify_waiters();
    }
}

/// Inputs of the membership task.
#[derive(Debug)]
pub(crate) enum MembershipInput {
    Announce(NodeInfo),
    Data(Vec<u8>),
    Timer(foca::Timer<Member>),
    /// Gossip this version of our own service table.
    Publish(u64),
    /// Gossip this node's reachability report.
    PublishReach(super::reachability::ReachReport),
    /// Gossip this node's join state.
    PublishJoin(super::join::JoinState),
    /// Announce again to known nodes that are not active members.
    Rejoin,
    /// Declare this member down (an operator's `msa cluster down`).
    Down(String),
    /// Renew this node's membership identity (the split-brain resolver
    /// downed it).
    RenewIdentity,
    Leave,
}

fn nonce() -> [u8; 32] {
    let mut n = [0u8; 32];
    if getrandom::fill(&mut n).is_err() {
        // No OS randomness: fall back to time and address entropy (logged).
        tracing::warn!("getrandom failed; using a weaker nonce");
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        n[..16].copy_from_slice(&t.to_le_bytes());
    }
    n
}

impl Remoting {
    /// The remoting state of `local`; `has_seeds`: it has seeds (or a
    /// discovery) to join through, else it founds the cluster and is `up`
    /// at once.
    pub(crate) fn new(
        cfg: RemoteConfig,
        local: NodeInfo,
        node: Weak<dyn LocalNode>,
        transport: Arc<dyn Transport>,
        has_seeds: bool,
    ) -> Self {
        let sbr = split_brain::SbrState::new(&local.name, cfg.split_brain);
        let join = join_driver::JoinDriver::new(&local.name, local.incarnation, has_seeds);
        Self {
            local,
            stats: Arc::new(RemoteStats::default()),
            peers: RwLock::new(HashMap::new()),
            node,
            transport,
            closing: AtomicBool::new(false),
            closed: tokio::sync::watch::channel(false).0,
            membership: parking_lot::Mutex::new(None),
            view: parking_lot::Mutex::new(Vec::new()),
            events: tokio::sync::broadcast::channel(1024).0,
            conns: std::sync::atomic::AtomicUsize::new(0),
            conns_done: tokio::sync::Notify::new(),
            dialing: parking_lot::Mutex::new(std::collections::HashSet::new()),
            next_lane: std::sync::atomic::AtomicU64::new(1),
            table_version: AtomicU64::new(1),
            reach: parking_lot::Mutex::new(super::reachability::Reachability::new(
                cfg.unreachable_after(),
            )),
            ever_connected: AtomicBool::new(false),
            removed: parking_lot::Mutex::new(std::collections::BTreeSet::new()),
            sbr: parking_lot::Mutex::new(sbr),
            self_downed: AtomicBool::new(false),
            join: parking_lot::Mutex::new(join),
            joined: AtomicBool::new(!has_seeds),
            service_operator: std::sync::OnceLock::new(),
            live_source: std::sync::OnceLock::new(),
            over_cap_log: parking_lot::Mutex::new((None, 0)),
            grid: grid::Grid::of_system_clock(),
            cfg,
        }
    }

    fn hs_config(&self) -> HandshakeConfig {
        HandshakeConfig {
            cluster: self.cfg.cluster.clone(),
            secret: self.cfg.secret.clone().unwrap_or_default(),
            local: self.local.clone(),
            protocols: PROTOCOLS,
        }
    }

    /// Waits (bounded) until every connection has flushed and closed.
    pub(crate) async fn wait_closed(&self, bound: Duration) {
        let wait = async {
            loop {
                let notified = self.conns_done.notified();
                if self.conns.load(Ordering::Acquire) == 0 {
                    return;
                }
                notified.await;
            }
        };
        let _ = tokio::time::timeout(bound, wait).await;
    }

    /// Subscribes to membership changes.
    pub(crate) fn subscribe(
        &self,
    ) -> tokio::sync::broadcast::Receiver<super::status::ClusterEvent> {
        self.events.subscribe()
    }

    fn emit(&self, e: super::status::ClusterEvent) {
        let _ = self.events.send(e);
    }

    /// Connected peers.
    /// Counters of every open connection, by peer name.
    pub(crate) fn connection_stats(&self) -> Vec<super::stats::ConnectionSnapshot> {
        let mut v: Vec<_> = self
            .peers
            .read()
            .values()
            .map(|p| p.conn.snapshot(&p.info.name))
            .collect();
        v.sort_by(|a, b| a.peer.cmp(&b.peer));
        v
    }

    pub(crate) fn peers(&self) -> Vec<NodeInfo> {
        let mut v: Vec<NodeInfo> = self.peers.read().values().map(|p| p.info.clone()).collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Remote asks waiting for replies, over all peers.
    pub(crate) fn pending(&self) -> usize {
        self.peers.read().values().map(|p| p.pending()).sum()
    }

    pub(crate) fn peer(&self, name: &str) -> Option<Arc<Peer>> {
        self.peers.read().get(name).cloned()
    }

    /// Tells every peer this node is leaving (a graceful stop's first step),
    /// without closing anything: they take its services out of their
    /// routing at once, while the calls already on their way here, and the
    /// replies to them, still travel.
    pub(crate) fn announce_leaving(&self) {
        for p in self.peers.read().values() {
            let _ = p.send(Frame::Leaving);
        }
    }

    /// Stops accepting and dialing; closes every connection.
    pub(crate) fn close(&self) {
        // Tell every peer this is a graceful leave, not a crash.
        for p in self.peers.read().values() {
            let _ = p.send(Frame::Leaving);
        }
        self.to_membership(MembershipInput::Leave);
        self.closing.store(true, Ordering::Release);
        self.closed.send_replace(true);
        let peers: Vec<_> = self.peers.write().drain().map(|(_, p)| p).collect();
        for p in peers {
            p.mark_down();
        }
    }

    fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }
}
