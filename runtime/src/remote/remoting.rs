//! The remoting layer of a node: the listener, dialers with reconnect, one
//! data connection per peer with a batching writer, inbound dispatch, and a
//! second connection per peer for membership (the lane, [`lane`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::RwLock;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::mpsc;

mod lane;
mod writer;

use super::frame::{encode_into, ConnKind, Frame, FrameDecoder, NodeInfo, WireError};
use super::handshake::{
    Dialer, HandshakeConfig, HandshakeError, Listener as HsListener, Step, PROTOCOLS,
};
use super::inbound::{resolved, Inbound, ServeDeadline};
use super::membership::{Effects, Member, Membership, TableVersion};
use super::peer::{Peer, QueueBounds};
use super::routes::InboundRoutes;
use super::stats::RemoteStats;
use super::transport::{BoxStream, Listener, Transport};
use super::wire::WireMetaExt;
use crate::node::NodeShared;
use crate::service::ServiceRef;
use crate::CallError;
use writer::{Lanes, WriterMode};

/// The default failure-detection bound.
pub(crate) const DEFAULT_DETECTION: Duration = Duration::from_secs(5);

/// The default bound of a connection's data lane (64 MiB).
pub const DEFAULT_MAX_DATA_QUEUE_BYTES: usize = 64 * 1024 * 1024;

/// The default bound of a connection's control lane (16 MiB).
pub const DEFAULT_MAX_CONTROL_QUEUE_BYTES: usize = 16 * 1024 * 1024;

/// The default time after which a peer that stopped reading is closed (10 s).
pub const DEFAULT_PEER_STALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The default bound on asks from one connection served at once (8,192).
pub const DEFAULT_MAX_INBOUND_ASKS: usize = 8_192;

/// Remoting settings of a node.
#[derive(Debug, Clone)]
pub struct RemoteConfig {
    /// Cluster name; nodes of another cluster are refused.
    pub cluster: String,
    /// Shared cluster secret (HMAC key). Without one, only loopback is allowed.
    pub secret: Option<Vec<u8>>,
    /// Largest frame accepted or sent.
    pub max_frame_bytes: usize,
    /// Frames queued per connection before `tell` fails with `Overloaded`.
    pub outbound_queue: usize,
    /// Bytes the data lane of a connection (tells and asks to the peer) may
    /// hold, each frame counting an upper bound on its encoded size plus its
    /// slot in the queue (about 200 bytes); past it a call fails with `Overloaded`, as past
    /// `outbound_queue` frames. Default 64 MiB.
    pub max_data_queue_bytes: usize,
    /// Bytes the control lane of a connection (replies, errors,
    /// tables, pings, membership until the lane is up) may hold, counted as
    /// for `max_data_queue_bytes`. A control
    /// frame that does not fit means the peer is not reading: it is counted
    /// (`control_overflows`) and the connection is closed as stalled.
    /// Default 16 MiB.
    pub max_control_queue_bytes: usize,
    /// A peer whose connection takes no bytes for this long while some are
    /// waiting (it stopped reading its socket) is closed as stalled
    /// (`stalled_connections`). Default 10 s.
    pub peer_stall_timeout: Duration,
    /// Asks from one connection served at once. At the bound the
    /// connection's reader waits until one is answered, so a peer that
    /// sends asks faster than they are served (or never reads the replies)
    /// is held back by TCP instead of piling up work here. Default 8,192.
    pub max_inbound_asks: usize,
    /// Addresses to dial at start (and to re-dial while they are unreachable).
    pub seeds: Vec<String>,
    /// Idle connections send a ping this often.
    pub heartbeat: Duration,
    /// A connection silent for this long is closed and its node declared down.
    pub dead_after: Duration,
    /// Upper bound of the re-dial backoff.
    pub reconnect_max: Duration,
    /// Bound on connecting and on the handshake.
    pub connect_timeout: Duration,
    /// A crashed or partitioned member is declared down within about this
    /// long (drives foca's probe and suspicion timing).
    pub failure_detection: Duration,
}

impl Default for RemoteConfig {
    fn default() -> Self {
        Self {
            cluster: "msa".into(),
            secret: None,
            max_frame_bytes: super::frame::DEFAULT_MAX_FRAME_BYTES,
            outbound_queue: 65_536,
            max_data_queue_bytes: DEFAULT_MAX_DATA_QUEUE_BYTES,
            max_control_queue_bytes: DEFAULT_MAX_CONTROL_QUEUE_BYTES,
            peer_stall_timeout: DEFAULT_PEER_STALL_TIMEOUT,
            max_inbound_asks: DEFAULT_MAX_INBOUND_ASKS,
            seeds: Vec::new(),
            heartbeat: Duration::from_millis(500),
            dead_after: Duration::from_secs(3),
            reconnect_max: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(3),
            failure_detection: DEFAULT_DETECTION,
        }
    }
}

/// The remoting state of one node.
#[derive(Debug)]
pub(crate) struct Remoting {
    pub(crate) cfg: RemoteConfig,
    pub(crate) local: NodeInfo,
    pub(crate) stats: Arc<RemoteStats>,
    peers: RwLock<HashMap<String, Arc<Peer>>>,
    node: Weak<NodeShared>,
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
    pub(crate) fn new(
        cfg: RemoteConfig,
        local: NodeInfo,
        node: Weak<NodeShared>,
        transport: Arc<dyn Transport>,
    ) -> Self {
        Self {
            cfg,
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

    /// Accepts connections until the node closes.
    pub(crate) async fn accept_loop(self: Arc<Self>, mut listener: Box<dyn Listener>) {
        let mut closed = self.closed.subscribe();
        while !self.is_closing() {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = closed.changed() => break,
            };
            match accepted {
                Ok((stream, from)) => {
                    let me = self.clone();
                    actix_rt::spawn(async move { me.inbound(stream, from).await });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    /// Dials `addr` until connected, and again whenever the connection drops,
    /// with exponential backoff, until the node closes.
    pub(crate) async fn dial_loop(self: Arc<Self>, addr: String) {
        let mut backoff = Duration::from_millis(50);
        while !self.is_closing() {
            match tokio::time::timeout(
                self.cfg.connect_timeout,
                self.transport.connect(addr.clone()),
            )
            .await
            {
                Ok(Ok(stream)) => match self.clone().outbound(stream, &addr).await {
                    Ok(()) => backoff = Duration::from_millis(50),
                    Err(e) => tracing::warn!(%addr, error = %e, "connection to seed failed"),
                },
                Ok(Err(e)) => tracing::debug!(%addr, error = %e, "dial failed"),
                Err(_) => tracing::debug!(%addr, "dial timed out"),
            }
            if self.is_closing() {
                break;
            }
            let mut closed = self.closed.subscribe();
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = closed.changed() => break,
            }
            backoff = (backoff * 2).min(self.cfg.reconnect_max);
        }
    }

    async fn read_frame(
        &self,
        rd: &mut ReadHalf<BoxStream>,
        dec: &mut FrameDecoder,
        buf: &mut [u8],
    ) -> Result<Frame, String> {
        let conn = super::stats::ConnStats::default();
        read_frame_counted(rd, dec, buf, Some((&self.stats, &conn))).await
    }

    async fn write_frame(&self, wr: &mut WriteHalf<BoxStream>, f: &Frame) -> Result<(), String> {
        let n = write_raw(wr, f, self.cfg.max_frame_bytes).await?;
        self.stats.bytes_out.fetch_add(n as u64, Ordering::Relaxed);
        Ok(())
    }

    async fn inbound(self: Arc<Self>, stream: BoxStream, from: String) {
        let (mut rd, mut wr) = tokio::io::split(stream);
        let mut dec = FrameDecoder::new(self.cfg.max_frame_bytes);
        let mut buf = vec![0u8; 64 * 1024];
        let mut hs = HsListener::new(self.hs_config(), nonce());
        let handshake = async {
            loop {
                let frame = self.read_frame(&mut rd, &mut dec, &mut buf).await?;
                match hs.on_frame(frame) {
                    Ok(Step::Send(f)) => self.write_frame(&mut wr, &f).await?,
                    Ok(Step::Done(f, out)) => {
                        if let Some(f) = f {
                            self.write_frame(&mut wr, &f).await?;
                        }
                        tracing::debug!(%from, peer = %out.peer.name, protocol = out.protocol, "inbound handshake done");
                        return Ok(out.peer);
                    }
                    Err(e) => {
                        let _ = self.write_frame(&mut wr, &HsListener::refusal(&e)).await;
                        return Err(e.to_string());
                    }
                }
            }
        };
        let outcome = tokio::time::timeout(self.cfg.connect_timeout, handshake).await;
        match outcome {
            Ok(Ok(peer)) if hs.kind() == ConnKind::Membership => {
                self.lane_inbound(peer, rd, wr, dec).await;
            }
            Ok(Ok(peer)) if peer.addr.is_empty() => self.serve_client(peer, rd, wr, dec).await,
            Ok(Ok(peer)) => {
                let dialer = peer.name.clone();
                self.established(peer, dialer, rd, wr, dec).await;
            }
            Ok(Err(reason)) => {
                self.stats
                    .handshake_failures
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%from, %reason, "refused an inbound connection");
            }
            Err(_) => {
                self.stats
                    .handshake_failures
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%from, "inbound handshake timed out");
            }
        }
    }

    async fn outbound(self: Arc<Self>, stream: BoxStream, addr: &str) -> Result<(), String> {
        let (peer, rd, wr, dec) = self.dial_handshake(stream, ConnKind::Data, addr).await?;
        let dialer = self.local.name.clone();
        self.established(peer, dialer, rd, wr, dec).await;
        Ok(())
    }

    /// The dialing side of the handshake on a fresh stream (bounded by
    /// `connect_timeout`; failures are counted): the authenticated peer and
    /// the stream, ready for frames.
    async fn dial_handshake(
        &self,
        stream: BoxStream,
        kind: ConnKind,
        addr: &str,
    ) -> Result<
        (
            NodeInfo,
            ReadHalf<BoxStream>,
            WriteHalf<BoxStream>,
            FrameDecoder,
        ),
        String,
    > {
        let (mut rd, mut wr) = tokio::io::split(stream);
        let mut dec = FrameDecoder::new(self.cfg.max_frame_bytes);
        let mut buf = vec![0u8; 64 * 1024];
        let (mut hs, hello) = Dialer::start(self.hs_config(), kind, nonce());
        let handshake = async {
            self.write_frame(&mut wr, &hello).await?;
            loop {
                let frame = self.read_frame(&mut rd, &mut dec, &mut buf).await?;
                match hs.on_frame(frame) {
                    Ok(Step::Send(f)) => self.write_frame(&mut wr, &f).await?,
                    Ok(Step::Done(_, out)) => {
                        tracing::debug!(%addr, peer = %out.peer.name, protocol = out.protocol, "outbound handshake done");
                        return Ok(out.peer);
                    }
                    Err(e @ HandshakeError::BadProof) => {
                        let _ = self.write_frame(&mut wr, &HsListener::refusal(&e)).await;
                        return Err(e.to_string());
                    }
                    Err(e) => return Err(e.to_string()),
                }
            }
        };
        let peer = match tokio::time::timeout(self.cfg.connect_timeout, handshake).await {
            Ok(Ok(peer)) => peer,
            Ok(Err(reason)) => {
                self.stats
                    .handshake_failures
                    .fetch_add(1, Ordering::Relaxed);
                return Err(format!("handshake with {addr} failed: {reason}"));
            }
            Err(_) => {
                self.stats
                    .handshake_failures
                    .fetch_add(1, Ordering::Relaxed);
                return Err(format!("handshake with {addr} timed out"));
            }
        };
        Ok((peer, rd, wr, dec))
    }

    /// Runs an authenticated connection until it ends.
    async fn established(
        self: Arc<Self>,
        info: NodeInfo,
        dialer: String,
        mut rd: ReadHalf<BoxStream>,
        wr: WriteHalf<BoxStream>,
        mut dec: FrameDecoder,
    ) {
        if info.name == self.local.name {
            tracing::warn!("connected to ourselves; closing");
            return;
        }
        let (tx, rx) = mpsc::channel::<Frame>(self.cfg.outbound_queue.max(16));
        let (ctl_tx, ctl_rx) = mpsc::unbounded_channel::<Frame>();
        let bounds = QueueBounds {
            data_bytes: self.cfg.max_data_queue_bytes,
            control_bytes: self.cfg.max_control_queue_bytes,
            inbound_asks: self.cfg.max_inbound_asks.max(1),
        };
        let peer = Arc::new(Peer::new(
            info.clone(),
            dialer,
            tx,
            ctl_tx,
            bounds,
            self.stats.clone(),
        ));
        // One connection per peer: of two, keep the one dialed by the smaller
        // name (both sides decide alike); a newer incarnation replaces an older.
        // The other one is retired, not cut: it still carries the replies to
        // calls already made on it, and closes once idle.
        let keep_new = {
            let mut peers = self.peers.write();
            let keep_new = match peers.get(&info.name) {
                Some(old)
                    if !old.is_down()
                        && old.info.incarnation == info.incarnation
                        && old.dialer != peer.dialer
                        && old.dialer < peer.dialer =>
                {
                    false
                }
                Some(old) => {
                    if old.info.incarnation == info.incarnation && !old.is_down() {
                        old.retire();
                    } else {
                        old.mark_down();
                    }
                    true
                }
                None => true,
            };
            if keep_new {
                peers.insert(info.name.clone(), peer.clone());
            } else {
                peer.retire();
            }
            keep_new
        };
        self.conns.fetch_add(1, Ordering::AcqRel);
        let _open = ConnGuard(&self.conns, &self.conns_done);
        if keep_new {
            tracing::info!(peer = %info.name, addr = %info.addr, incarnation = info.incarnation, "connected");
            self.emit(super::status::ClusterEvent::Joined {
                member: info.clone(),
            });
            self.to_membership(MembershipInput::Announce(info.clone()));
            // The new peer gets our table at once (the others hear of the
            // new member from the membership gossip).
            let _ = peer.send(self.table());
            if peer.dialer == self.local.name {
                // The dialer of the connection also keeps its membership lane.
                actix_rt::spawn(self.clone().lane_dial_loop(peer.clone()));
            }
        } else {
            tracing::debug!(peer = %info.name, "duplicate connection retired");
        }

        // Writer: batch whatever is queued into one write, flush when the queue is empty.
        let (mode, mode_rx) = tokio::sync::watch::channel(WriterMode::Run);
        let lanes = Lanes {
            control: ctl_rx,
            data: rx,
        };
        let mut writer = actix_rt::spawn(self.clone().run_writer(peer.clone(), wr, lanes, mode_rx));

        // Reader: dispatch frames until the connection ends or goes silent.
        let mut buf = vec![0u8; 64 * 1024];
        let mut closed = self.closed.subscribe();
        let mut since_yield = 0u32;
        let mut turn = std::time::Instant::now();
        // The (service, message) pairs the peer named on this connection.
        let mut routes = InboundRoutes::<Arc<Inbound>>::default();
        let reading = async {
            'read: loop {
                // Enough asks from this peer are being served: read no more
                // until one is answered (the peer's sends wait in TCP).
                while peer.serving_full() {
                    tokio::select! {
                        _ = peer.serve_slot_freed() => {}
                        _ = closed.changed() => break 'read "this node left".to_string(),
                    }
                }
                // Frames already buffered decode without touching the socket, so
                // nothing would make this task yield; and every tell it hands on
                // lets its instance run too (actix drains a mailbox to the end).
                // Taking turns keeps a flood of calls from starving the
                // writers, timers and membership that share this thread.
                since_yield += 1;
                if since_yield >= READER_TURN_FRAMES || turn.elapsed() >= TURN_TIME {
                    since_yield = 0;
                    tokio::task::yield_now().await;
                    turn = std::time::Instant::now();
                }
                let frame = tokio::select! {
                    f = tokio::time::timeout(
                        self.cfg.dead_after,
                        read_frame_counted(&mut rd, &mut dec, &mut buf, Some((&self.stats, &peer.conn))),
                    ) => f,
                    _ = closed.changed() => break "this node left".to_string(),
                };
                match frame {
                    Ok(Ok(f)) => {
                        self.stats.frames_in.fetch_add(1, Ordering::Relaxed);
                        peer.conn.frames_in.fetch_add(1, Ordering::Relaxed);
                        match self.on_frame(&peer, f, &mut routes) {
                            Ok(None) => {}
                            // A tell waits for room in its instance's
                            // mailbox: so does this connection (the
                            // peer's sends wait in TCP).
                            Ok(Some(wait)) => {
                                let queued = tokio::select! {
                                    r = wait => r,
                                    _ = closed.changed() => break 'read "this node left".to_string(),
                                };
                                if let Err(e) = queued {
                                    tracing::debug!(error = ?e, "remote tell not delivered");
                                }
                            }
                            Err(reason) => break reason,
                        }
                    }
                    Ok(Err(reason)) => {
                        if reason != "connection closed" {
                            self.stats.malformed_frames.fetch_add(1, Ordering::Relaxed);
                        }
                        break reason;
                    }
                    Err(_) => break format!("silent for {:?}", self.cfg.dead_after),
                }
                if peer.is_down() {
                    break "replaced or closed".into();
                }
                if peer.is_retired()
                    && peer.pending() == 0
                    && !peer.replied_recently()
                    && self.successor_has_table(&info.name)
                {
                    break "retired duplicate connection, idle".into();
                }
            }
        };
        // A peer that stopped reading ends the connection whatever the
        // reader is doing (it may be reading a flood of calls).
        let reason: String = tokio::select! {
            r = reading => r,
            why = peer.stalled() => format!("stalled: {why}"),
        };
        let mut written = false;
        if peer.stall_reason().is_none() {
            // Let the writer flush what is queued (bounded), then stop it.
            mode.send_replace(WriterMode::Drain);
            written = tokio::time::timeout(Duration::from_millis(500), &mut writer)
                .await
                .is_ok();
            if !written {
                tracing::debug!(peer = %info.name, "writer did not drain in time");
            }
        }
        if !written {
            // A stalled peer gets nothing more: its writer stops mid-write
            // (and releases what is queued).
            mode.send_replace(WriterMode::Stop);
            if tokio::time::timeout(Duration::from_secs(1), &mut writer)
                .await
                .is_err()
            {
                writer.abort();
            }
        }
        peer.mark_down();
        let stalled = peer.stall_reason();
        if let Some(why) = &stalled {
            tracing::warn!(peer = %info.name, reason = %why, "peer stopped reading; connection closed");
        }
        let removed = {
            let mut peers = self.peers.write();
            match peers.get(&info.name) {
                Some(p) if Arc::ptr_eq(p, &peer) => {
                    peers.remove(&info.name);
                    true
                }
                _ => false,
            }
        };
        if removed {
            if stalled.is_none() {
                tracing::warn!(peer = %info.name, %reason, "connection lost; node is down");
            }
            self.emit(if peer.is_leaving() {
                super::status::ClusterEvent::Left {
                    name: info.name.clone(),
                }
            } else {
                super::status::ClusterEvent::Down {
                    name: info.name.clone(),
                    reason: reason.clone(),
                }
            });
            if let Some(node) = self.node.upgrade() {
                node.registry.drop_node(&info.name);
            }
        }
    }

    /// This node's service table.
    pub(crate) fn table(&self) -> Frame {
        // The version is read before the registry: a table is never labelled
        // newer than its contents (a change made meanwhile bumps it again).
        let version = self.table_version.load(Ordering::Acquire);
        let services = self
            .node
            .upgrade()
            .map(|n| n.registry.local_table())
            .unwrap_or_default();
        Frame::Table {
            version,
            services,
            members: self.peers(),
        }
    }

    /// A local registry change: bumps the table version and gossips it;
    /// peers fetch the table over their connection when they hear of it.
    pub(crate) fn publish_table(&self) {
        let v = self.table_version.fetch_add(1, Ordering::AcqRel) + 1;
        self.to_membership(MembershipInput::Publish(v));
    }

    /// Handles one frame of a data connection; a tell that must wait for
    /// mailbox room comes back as the wait (the reader reads no more until
    /// it is over). `Err` closes the connection.
    fn on_frame(
        self: &Arc<Self>,
        peer: &Arc<Peer>,
        f: Frame,
        routes: &mut InboundRoutes<Arc<Inbound>>,
    ) -> Result<Option<super::wire::BoxFuture<Result<(), CallError>>>, String> {
        let Some(node) = self.node.upgrade() else {
            return Err("node gone".into());
        };
        match f {
            Frame::Ping { id, table } => {
                let _ = peer.send(Frame::Pong { id });
                // Anti-entropy: a version the gossip did not bring is fetched.
                peer.want_table(table);
            }
            Frame::TableRequest => {
                let _ = peer.send(self.table());
            }
            Frame::Pong { .. } => {}
            Frame::Reply { id, payload } => peer.complete(id, Ok(payload)),
            Frame::Error { id, error } => peer.complete(id, Err(error)),
            Frame::Table {
                version,
                services,
                members,
            } => {
                if peer.accept_table(version) {
                    node.registry.apply_remote_table(peer, services);
                } else {
                    tracing::debug!(peer = %peer.info.name, version, "stale service table ignored");
                }
                self.learn_members(members);
            }
            Frame::Tell {
                route,
                meta,
                payload,
            } => {
                let mut slot = self.route_of(routes, route)?;
                let route = slot.get();
                let deadline = meta
                    .timeout_ms
                    .map(|ms| ServeDeadline::new(&node, Some(ms)));
                let mut meta = meta.into_metadata();
                if let Some(d) = deadline {
                    meta.set_deadline_ms(d.deadline_ms);
                }
                let served =
                    resolved(&node, route).and_then(|inbound| inbound.serve_tell(&payload, meta));
                match served {
                    Ok(wait) => return Ok(wait),
                    Err(e) => {
                        tracing::debug!(service = %route.service, message = %route.message, error = ?e, "remote tell not delivered");
                    }
                }
            }
            Frame::Ask {
                id,
                route,
                meta,
                payload,
            } => {
                let mut slot = self.route_of(routes, route)?;
                let route = slot.get();
                // The one deadline of the call: the caller's time left, plus slack.
                let deadline = ServeDeadline::new(&node, meta.timeout_ms);
                if let Some((trace_id, _)) = meta.trace {
                    tracing::debug!(
                        trace_id = %format_args!("{trace_id:032x}"),
                        from = %peer.info.name,
                        service = %route.service,
                        message = %route.message,
                        "remote ask"
                    );
                }
                let served = resolved(&node, route).and_then(|inbound| {
                    inbound.serve_ask(&payload, meta.into_metadata(), deadline)
                });
                match served {
                    Ok(fut) => {
                        let peer = peer.clone();
                        peer.serving(true);
                        actix_rt::spawn(async move {
                            let frame = match fut.await {
                                Ok(payload) => Frame::Reply { id, payload },
                                Err(error) => Frame::Error { id, error },
                            };
                            let _ = peer.send(frame);
                            peer.serving(false);
                        });
                    }
                    Err(error) => {
                        let _ = peer.send(Frame::Error { id, error });
                    }
                }
            }
            Frame::AskJson {
                id,
                service,
                message,
                meta,
                body,
            } => {
                let deadline = ServeDeadline::new(&node, meta.timeout_ms);
                let mut meta = meta.into_metadata();
                meta.set_deadline_ms(deadline.deadline_ms);
                match serve_ask_json(&node, &service, &message, meta, &body, deadline.timeout) {
                    Ok(fut) => {
                        let peer = peer.clone();
                        peer.serving(true);
                        actix_rt::spawn(async move {
                            let frame = match fut.await {
                                Ok(payload) => Frame::Reply { id, payload },
                                Err(e) => Frame::Error {
                                    id,
                                    error: WireError::from_call(&e),
                                },
                            };
                            let _ = peer.send(frame);
                            peer.serving(false);
                        });
                    }
                    Err(error) => {
                        let _ = peer.send(Frame::Error { id, error });
                    }
                }
            }
            Frame::Membership { payload } => self.to_membership(MembershipInput::Data(payload)),
            Frame::Leaving => peer.mark_leaving(),
            other => {
                return Err(format!(
                    "protocol violation: `{}` after the handshake",
                    other.kind()
                ))
            }
        }
        Ok(None)
    }

    /// The route a call frame names; a broken id rule is counted and ends
    /// the connection.
    fn route_of<'a>(
        &self,
        routes: &'a mut InboundRoutes<Arc<Inbound>>,
        route: super::frame::Route,
    ) -> Result<super::routes::RouteSlot<'a, Arc<Inbound>>, String> {
        routes.lookup(route).map_err(|e| {
            self.stats.route_errors.fetch_add(1, Ordering::Relaxed);
            format!("protocol violation: {e}")
        })
    }

    /// Whether the connection that replaced a retired one to `name` (if
    /// any) has brought that node's table: until then the registry still
    /// routes calls over the retired connection, so it must stay open.
    fn successor_has_table(&self, name: &str) -> bool {
        self.peer(name).is_none_or(|p| p.has_seen_table())
    }

    /// Dials members learned from peers that we are not connected to; of two
    /// nodes, only the one with the smaller name dials, so they meet once.
    fn learn_members(self: &Arc<Self>, members: Vec<NodeInfo>) {
        if self.is_closing() {
            return;
        }
        for m in members {
            if m.name == self.local.name || self.local.name > m.name || self.peer(&m.name).is_some()
            {
                continue;
            }
            let me = self.clone();
            actix_rt::spawn(async move {
                if let Ok(Ok(stream)) = tokio::time::timeout(
                    me.cfg.connect_timeout,
                    me.transport.connect(m.addr.clone()),
                )
                .await
                {
                    if let Err(e) = me.clone().outbound(stream, &m.addr).await {
                        tracing::debug!(peer = %m.name, error = %e, "could not reach a learned member");
                    }
                }
            });
        }
    }
}

impl Remoting {
    fn to_membership(&self, input: MembershipInput) {
        if let Some(tx) = self.membership.lock().as_ref() {
            let _ = tx.send(input);
        }
    }

    /// Runs foca: feeds it connections' membership frames and its timers,
    /// carries out what it asks (send, schedule) and acts on its verdicts:
    /// a member declared down loses its connection and its registry entries.
    pub(crate) async fn membership_loop(self: Arc<Self>) {
        let (tx, mut rx) = mpsc::unbounded_channel();
        *self.membership.lock() = Some(tx.clone());
        let seed = u64::from_le_bytes(nonce()[..8].try_into().unwrap_or([7; 8]));
        let config = super::membership::membership_config_for(self.cfg.failure_detection);
        let mut core = Membership::new(self.local.clone(), config, seed);
        // Members already connected before the loop started.
        for p in self.peers() {
            let e = core.announce(p);
            self.apply_membership(e, &tx);
        }
        while let Some(input) = rx.recv().await {
            let leaving = matches!(input, MembershipInput::Leave);
            let e = match input {
                MembershipInput::Announce(to) => core.announce(to),
                MembershipInput::Data(d) => core.data(&d),
                MembershipInput::Timer(t) => core.timer(t),
                MembershipInput::Publish(version) => core.publish_table(TableVersion {
                    node: self.local.name.clone(),
                    incarnation: self.local.incarnation,
                    version,
                }),
                MembershipInput::Leave => core.leave(),
            };
            self.apply_membership(e, &tx);
            *self.view.lock() = core.view();
            if leaving {
                break;
            }
        }
    }

    fn apply_membership(self: &Arc<Self>, e: Effects, tx: &mpsc::UnboundedSender<MembershipInput>) {
        for (to, payload) in e.send {
            match self.peer(&to.info.name) {
                Some(p) if !p.is_down() => {
                    let _ = p.send_membership(Frame::Membership { payload });
                }
                _ => self.dial_member(&to.info),
            }
        }
        for (after, t) in e.timers {
            let tx = tx.clone();
            actix_rt::spawn(async move {
                tokio::time::sleep(after).await;
                let _ = tx.send(MembershipInput::Timer(t));
            });
        }
        for t in e.tables {
            // A newer table of a peer we are connected to: fetch it.
            let fetching = self.peer(&t.node).is_some_and(|p| {
                p.info.incarnation == t.incarnation && !p.is_down() && p.want_table(t.version)
            });
            if fetching {
                tracing::debug!(peer = %t.node, version = t.version, "fetching a newer service table");
            }
        }
        for m in e.up {
            tracing::info!(member = %m.info.name, incarnation = m.info.incarnation, "member up");
            if self.peer(&m.info.name).is_none() {
                self.dial_member(&m.info);
            }
        }
        for m in e.down {
            tracing::warn!(member = %m.info.name, incarnation = m.info.incarnation, "member declared down");
            if self.peer(&m.info.name).is_some() {
                self.emit(super::status::ClusterEvent::Down {
                    name: m.info.name.clone(),
                    reason: "declared down by failure detection".into(),
                });
            }
            self.declare_down(&m);
        }
    }

    /// A member foca declared down: close its connection (failing its asks
    /// with `NodeDown`) and drop its instances.
    fn declare_down(&self, m: &Member) {
        let removed = {
            let mut peers = self.peers.write();
            match peers.get(&m.info.name) {
                Some(p) if p.info.incarnation <= m.info.incarnation => peers.remove(&m.info.name),
                _ => None,
            }
        };
        if let Some(p) = removed {
            p.mark_down();
        }
        if let Some(node) = self.node.upgrade() {
            node.registry.drop_node(&m.info.name);
        }
    }

    /// Dials a member (once at a time per address) so membership and calls can reach it.
    fn dial_member(self: &Arc<Self>, info: &NodeInfo) {
        if self.is_closing() || info.addr.is_empty() || info.name == self.local.name {
            return;
        }
        if !self.dialing.lock().insert(info.addr.clone()) {
            return;
        }
        let me = self.clone();
        let addr = info.addr.clone();
        actix_rt::spawn(async move {
            let conn =
                tokio::time::timeout(me.cfg.connect_timeout, me.transport.connect(addr.clone()))
                    .await;
            me.dialing.lock().remove(&addr);
            if let Ok(Ok(stream)) = conn {
                if let Err(e) = me.clone().outbound(stream, &addr).await {
                    tracing::debug!(%addr, error = %e, "could not reach a member");
                }
            }
        });
    }
}

impl Remoting {
    /// This node's view of the cluster.
    pub(crate) fn status(&self) -> super::status::ClusterStatus {
        use super::status::{MemberView, ServiceView};
        let mut members: Vec<MemberView> = vec![MemberView {
            name: self.local.name.clone(),
            addr: self.local.addr.clone(),
            status: if self.is_closing() { "left" } else { "alive" }.into(),
            incarnation: self.local.incarnation,
        }];
        let connected = self.peers();
        for (info, status) in self.view.lock().iter() {
            if info.name != self.local.name && !members.iter().any(|m| m.name == info.name) {
                members.push(MemberView {
                    name: info.name.clone(),
                    addr: info.addr.clone(),
                    status: (*status).into(),
                    incarnation: info.incarnation,
                });
            }
        }
        // Connected peers foca has not reported yet are alive.
        for info in connected {
            if !members.iter().any(|m| m.name == info.name) {
                members.push(MemberView {
                    name: info.name.clone(),
                    addr: info.addr.clone(),
                    status: "alive".into(),
                    incarnation: info.incarnation,
                });
            }
        }
        members.sort_by(|a, b| a.name.cmp(&b.name));
        let services = self
            .node
            .upgrade()
            .map(|n| {
                n.registry
                    .names()
                    .into_iter()
                    .filter_map(|name| {
                        let e = n.registry.get(&name)?;
                        let mut nodes: Vec<String> =
                            e.remote_instances().into_iter().map(|(n, _)| n).collect();
                        if !e.live_instances().is_empty() {
                            nodes.push(self.local.name.clone());
                        }
                        nodes.sort();
                        nodes.dedup();
                        (!nodes.is_empty()).then_some(ServiceView { name, nodes })
                    })
                    .collect()
            })
            .unwrap_or_default();
        super::status::ClusterStatus { members, services }
    }

    /// Serves a client connection (no membership, no tables): status
    /// requests and calls.
    async fn serve_client(
        self: Arc<Self>,
        info: NodeInfo,
        mut rd: ReadHalf<BoxStream>,
        mut wr: WriteHalf<BoxStream>,
        mut dec: FrameDecoder,
    ) {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let frame = match tokio::time::timeout(
                self.cfg.dead_after * 10,
                self.read_frame(&mut rd, &mut dec, &mut buf),
            )
            .await
            {
                Ok(Ok(f)) => f,
                _ => break,
            };
            let reply = match frame {
                Frame::StatusRequest => Frame::Status {
                    status: self.status(),
                },
                Frame::Ping { id, .. } => Frame::Pong { id },
                other => {
                    tracing::debug!(client = %info.name, kind = other.kind(), "client frame not served");
                    break;
                }
            };
            // A client that stops reading is let go after the stall timeout.
            let write = self.write_frame(&mut wr, &reply);
            if !matches!(
                tokio::time::timeout(self.cfg.peer_stall_timeout, write).await,
                Ok(Ok(()))
            ) {
                break;
            }
        }
    }
}

/// Connects to `seed` as a client, authenticates, asks for the cluster view.
pub(crate) async fn fetch_status(
    transport: &dyn Transport,
    seed: &str,
    cluster: &str,
    secret: &[u8],
    timeout: Duration,
) -> Result<super::status::ClusterStatus, super::status::StatusError> {
    use super::status::StatusError;
    let addr = seed.to_string();
    let work = async {
        let stream = transport
            .connect(addr.clone())
            .await
            .map_err(|e| StatusError::Connect {
                addr: addr.clone(),
                reason: e.to_string(),
            })?;
        let (mut rd, mut wr) = tokio::io::split(stream);
        let cfg = HandshakeConfig {
            cluster: cluster.to_string(),
            secret: secret.to_vec(),
            local: NodeInfo {
                name: format!("msa-client-{}", std::process::id()),
                addr: String::new(),
                incarnation: 0,
            },
            protocols: PROTOCOLS,
        };
        let proto = |reason: String| StatusError::Protocol {
            addr: addr.clone(),
            reason,
        };
        let hs_err = |reason: String| StatusError::Handshake {
            addr: addr.clone(),
            reason,
        };
        let mut dec = FrameDecoder::new(super::frame::DEFAULT_MAX_FRAME_BYTES);
        let mut buf = vec![0u8; 64 * 1024];
        let (mut hs, hello) = Dialer::start(cfg, ConnKind::Data, nonce());
        write_raw(&mut wr, &hello, super::frame::DEFAULT_MAX_FRAME_BYTES)
            .await
            .map_err(proto)?;
        loop {
            let f = read_raw(&mut rd, &mut dec, &mut buf).await.map_err(proto)?;
            match hs.on_frame(f) {
                Ok(Step::Send(f)) => {
                    write_raw(&mut wr, &f, super::frame::DEFAULT_MAX_FRAME_BYTES)
                        .await
                        .map_err(proto)?;
                }
                Ok(Step::Done(..)) => break,
                Err(e) => return Err(hs_err(e.to_string())),
            }
        }
        write_raw(
            &mut wr,
            &Frame::StatusRequest,
            super::frame::DEFAULT_MAX_FRAME_BYTES,
        )
        .await
        .map_err(proto)?;
        loop {
            match read_raw(&mut rd, &mut dec, &mut buf).await.map_err(proto)? {
                Frame::Status { status } => return Ok(status),
                // A node may greet with membership or tables first; skip them.
                _ => continue,
            }
        }
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| StatusError::Protocol {
            addr: seed.to_string(),
            reason: format!("no answer within {timeout:?}"),
        })?
}

/// Writes one frame and flushes; returns the bytes written.
async fn write_raw(wr: &mut WriteHalf<BoxStream>, f: &Frame, max: usize) -> Result<usize, String> {
    let mut out = Vec::new();
    encode_into(f, max, &mut out).map_err(|e| e.to_string())?;
    wr.write_all(&out).await.map_err(|e| e.to_string())?;
    wr.flush().await.map_err(|e| e.to_string())?;
    Ok(out.len())
}

async fn read_raw(
    rd: &mut ReadHalf<BoxStream>,
    dec: &mut FrameDecoder,
    buf: &mut [u8],
) -> Result<Frame, String> {
    read_frame_counted(rd, dec, buf, None).await
}

/// Reads the next frame, counting bytes in when given counters.
async fn read_frame_counted(
    rd: &mut ReadHalf<BoxStream>,
    dec: &mut FrameDecoder,
    buf: &mut [u8],
    stats: Option<(&RemoteStats, &super::stats::ConnStats)>,
) -> Result<Frame, String> {
    loop {
        if let Some(f) = dec.next_frame().map_err(|e| e.to_string())? {
            return Ok(f);
        }
        let n = rd.read(buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed".into());
        }
        if let Some((node, conn)) = stats {
            node.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
            conn.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
        }
        dec.push(&buf[..n]);
    }
}

/// Frames a connection's reader dispatches before it lets the other tasks of
/// its thread run.
const READER_TURN_FRAMES: u32 = 256;

/// The longest a connection's reader (decoding and handing on frames) or
/// writer (encoding a batch) runs before the other tasks of its thread get a
/// turn: large frames cost far more than small ones (a 64 KiB payload takes
/// milliseconds to decode in a debug build), so a frame count alone would
/// let a few of them hold the thread for seconds and starve membership.
const TURN_TIME: Duration = Duration::from_millis(2);

/// Serves a forwarded JSON ask: decoded here, by the service's own
/// registration, then called as any ask is (a keyed service routes it on to
/// the instance that owns its key, wherever that is).
fn serve_ask_json(
    node: &Arc<NodeShared>,
    service: &str,
    message: &str,
    meta: crate::Metadata,
    body: &[u8],
    timeout: Duration,
) -> Result<crate::json::JsonReply, WireError> {
    let codec = Inbound::resolve(node, service, message)
        .map_err(|e| match e {
            WireError::UnhandledMessage { .. } => {
                WireError::Json(super::wire_error::WireJsonError::UnknownMessage)
            }
            other => other,
        })?
        .codec();
    let svc = ServiceRef::new(node.clone(), service);
    (codec.serve_json)(svc, crate::json::JsonBody::Bytes(body), meta, Some(timeout))
        .map_err(|e| WireError::Json(super::wire_error::WireJsonError::from_json_error(&e)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prelude::*;

    mod inbound;
    mod stall;
    use super::super::frame::Route;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, actix::Message, Serialize, Deserialize)]
    #[rtype(result = "u64")]
    struct Double(u64);
    impl RemoteMessage for Double {
        const NAME: &'static str = "wire-test.Double";
    }
    struct Doubler;
    impl Service for Doubler {}
    impl Handler<Double> for Doubler {
        fn handle(&mut self, m: Double, _: &mut ServiceContext<'_, Self>) -> Reply<Self, u64> {
            Reply::ready(m.0 * 2)
        }
    }

    const SECRET: &[u8] = b"wire-secret";
    const MAX: usize = super::super::frame::DEFAULT_MAX_FRAME_BYTES;

    /// A raw peer: handshakes as a member, then speaks frames by hand.
    struct RawPeer {
        rd: ReadHalf<BoxStream>,
        wr: WriteHalf<BoxStream>,
        dec: FrameDecoder,
        buf: Vec<u8>,
    }

    impl RawPeer {
        async fn connect(addr: &str) -> Self {
            Self::open(addr, ConnKind::Data, SECRET).await.unwrap()
        }

        /// Handshakes as member `raw` for a connection of `kind`.
        async fn open(addr: &str, kind: ConnKind, secret: &[u8]) -> Result<Self, String> {
            let s: BoxStream = Box::new(tokio::net::TcpStream::connect(addr).await.unwrap());
            Self::over(s, kind, secret).await
        }

        /// Handshakes as member `raw` on `s`.
        async fn over(s: BoxStream, kind: ConnKind, secret: &[u8]) -> Result<Self, String> {
            let (mut rd, mut wr) = tokio::io::split(s);
            let mut dec = FrameDecoder::new(super::super::frame::DEFAULT_MAX_FRAME_BYTES);
            let mut buf = vec![0u8; 64 * 1024];
            let cfg = HandshakeConfig {
                cluster: "msa".into(),
                secret: secret.to_vec(),
                local: NodeInfo {
                    name: "raw".into(),
                    addr: "127.0.0.1:9".into(),
                    incarnation: 1,
                },
                protocols: PROTOCOLS,
            };
            let (mut hs, hello) = Dialer::start(cfg, kind, [3; 32]);
            write_raw(&mut wr, &hello, MAX).await?;
            loop {
                let f = read_raw(&mut rd, &mut dec, &mut buf).await?;
                match hs.on_frame(f).map_err(|e| e.to_string())? {
                    Step::Send(f) => {
                        write_raw(&mut wr, &f, MAX).await?;
                    }
                    Step::Done(..) => break,
                }
            }
            Ok(Self { rd, wr, dec, buf })
        }

        /// The next frame, or why the connection ended (bounded wait).
        async fn next(&mut self) -> Result<Frame, String> {
            tokio::time::timeout(
                Duration::from_secs(10),
                read_raw(&mut self.rd, &mut self.dec, &mut self.buf),
            )
            .await
            .expect("a frame or the end within 10 s")
        }

        /// Reads until the node closes the connection; fails on a frame
        /// `allowed` rejects.
        async fn closed(&mut self, allowed: impl Fn(&Frame) -> bool) -> String {
            loop {
                match self.next().await {
                    Ok(f) => assert!(allowed(&f), "unexpected {f:?}"),
                    Err(reason) => return reason,
                }
            }
        }

        async fn ask(&mut self, id: u64, service: &str, message: &str, payload: Vec<u8>) -> Frame {
            let route = Route::Once {
                service: service.into(),
                message: message.into(),
            };
            self.ask_by(id, route, payload).await
        }

        async fn ask_by(&mut self, id: u64, route: Route, payload: Vec<u8>) -> Frame {
            let f = Frame::Ask {
                id,
                route,
                meta: super::super::frame::WireMeta::default(),
                payload,
            };
            write_raw(&mut self.wr, &f, MAX).await.unwrap();
            loop {
                match read_raw(&mut self.rd, &mut self.dec, &mut self.buf)
                    .await
                    .unwrap()
                {
                    f @ (Frame::Reply { .. } | Frame::Error { .. }) => return f,
                    _ => continue, // tables, membership, pings
                }
            }
        }
    }

    async fn node() -> (Node, String) {
        let node = Node::builder()
            .name("wire")
            .arbiters(1)
            .listen("127.0.0.1:0".parse().unwrap())
            .secret(SECRET)
            .start()
            .unwrap();
        node.spawn(ServiceSpec::new("doubler", || Doubler).handles::<Double>())
            .await
            .unwrap();
        let addr = node.remote_addr().unwrap();
        (node, addr)
    }

    #[tokio::test]
    async fn bad_calls_on_the_wire_get_typed_errors_and_the_connection_lives_on() {
        let (node, addr) = node().await;
        let mut p = RawPeer::connect(&addr).await;
        let ok = crate::codec::encode(&Double(21)).unwrap();
        assert_eq!(
            p.ask(1, "doubler", "wire-test.Double", ok.clone()).await,
            Frame::Reply {
                id: 1,
                payload: crate::codec::encode(&42u64).unwrap()
            }
        );
        assert_eq!(
            p.ask(2, "nope", "wire-test.Double", ok.clone()).await,
            Frame::Error {
                id: 2,
                error: WireError::UnknownService
            }
        );
        assert_eq!(
            p.ask(3, "doubler", "wire-test.Unknown", ok.clone()).await,
            Frame::Error {
                id: 3,
                error: WireError::UnhandledMessage {
                    message: "wire-test.Unknown".into()
                }
            }
        );
        assert!(matches!(
            p.ask(4, "doubler", "wire-test.Double", vec![0xff; 11])
                .await,
            Frame::Error {
                id: 4,
                error: WireError::Codec { .. }
            }
        ));
        // The same connection still serves.
        assert!(matches!(
            p.ask(5, "doubler", "wire-test.Double", ok).await,
            Frame::Reply { id: 5, .. }
        ));
        node.shutdown(Duration::from_secs(5)).await.unwrap();
    }

    #[tokio::test]
    async fn calls_named_once_are_served_by_id_and_a_bad_id_closes_the_connection() {
        let (node, addr) = node().await;
        let mut p = RawPeer::connect(&addr).await;
        let ok = |n: u64| crate::codec::encode(&Double(n)).unwrap();
        let named = Route::Named {
            id: 7,
            service: "doubler".into(),
            message: Double::NAME.into(),
        };
        let reply = |id, n: u64| Frame::Reply {
            id,
            payload: crate::codec::encode(&(n * 2)).unwrap(),
        };
        assert_eq!(p.ask_by(1, named, ok(1)).await, reply(1, 1));
        for i in 2..50 {
            assert_eq!(p.ask_by(i, Route::Id(7), ok(i)).await, reply(i, i));
        }
        // A route to an unknown service is bound all the same: its calls fail.
        let nowhere = Route::Named {
            id: 8,
            service: "nope".into(),
            message: Double::NAME.into(),
        };
        assert_eq!(
            p.ask_by(60, nowhere, ok(1)).await,
            Frame::Error {
                id: 60,
                error: WireError::UnknownService
            }
        );
        assert_eq!(
            p.ask_by(61, Route::Id(8), ok(1)).await,
            Frame::Error {
                id: 61,
                error: WireError::UnknownService
            }
        );
        // An id never named: a protocol error, counted; the connection closes.
        let before = node.remote_stats().route_errors;
        p.send(Frame::Ask {
            id: 62,
            route: Route::Id(9),
            meta: super::super::frame::WireMeta::default(),
            payload: ok(1),
        })
        .await;
        p.closed(|f| !matches!(f, Frame::Reply { .. } | Frame::Error { .. }))
            .await;
        assert_eq!(node.remote_stats().route_errors, before + 1);
        // An id beyond the limit, on a new connection.
        let mut p = RawPeer::connect(&addr).await;
        p.send(Frame::Tell {
            route: Route::Named {
                id: super::super::routes::MAX_ROUTES as u32,
                service: "doubler".into(),
                message: Double::NAME.into(),
            },
            meta: super::super::frame::WireMeta::default(),
            payload: ok(1),
        })
        .await;
        p.closed(|f| !matches!(f, Frame::Reply { .. } | Frame::Error { .. }))
            .await;
        assert_eq!(node.remote_stats().route_errors, before + 2);
        // A new connection starts a fresh table: id 7 is unknown there...
        let mut p = RawPeer::connect(&addr).await;
        let again = Route::Named {
            id: 7,
            service: "doubler".into(),
            message: Double::NAME.into(),
        };
        // ...and may be named again.
        assert_eq!(p.ask_by(1, again, ok(3)).await, reply(1, 3));
        node.shutdown(Duration::from_secs(5)).await.unwrap();
    }

    impl RawPeer {
        async fn send(&mut self, f: Frame) {
            write_raw(&mut self.wr, &f, MAX).await.unwrap();
        }

        /// Skips frames until `pick` takes one.
        async fn until<T>(&mut self, mut pick: impl FnMut(Frame) -> Option<T>) -> T {
            loop {
                if let Some(t) = pick(self.next().await.unwrap()) {
                    return t;
                }
            }
        }
    }

    fn table_of(f: Frame) -> Option<(u64, Vec<String>)> {
        match f {
            Frame::Table {
                version, services, ..
            } => Some((version, services.into_iter().map(|s| s.name).collect())),
            _ => None,
        }
    }

    #[tokio::test]
    async fn newer_table_versions_are_fetched_and_stale_tables_ignored() {
        let (node, addr) = node().await;
        let mut watch = node.watch();
        let mut p = RawPeer::connect(&addr).await;
        // The node hands its table to a new connection at once.
        let (v1, names) = p.until(table_of).await;
        assert_eq!(names, ["doubler"]);

        // A registry change: the node's pings name a newer version (the
        // gossip would too), and a request fetches the new table.
        node.spawn(ServiceSpec::new("second", || Doubler).handles::<Double>())
            .await
            .unwrap();
        p.until(|f| matches!(f, Frame::Ping { table, .. } if table > v1).then_some(()))
            .await;
        p.send(Frame::TableRequest).await;
        let (v2, mut names) = p.until(table_of).await;
        names.sort();
        assert!(v2 > v1);
        assert_eq!(names, ["doubler", "second"]);

        // The other way round: a peer whose ping names a version the node
        // does not hold is asked for its table, once.
        p.send(Frame::Ping { id: 0, table: 5 }).await;
        p.until(|f| matches!(f, Frame::TableRequest).then_some(()))
            .await;
        let ad = |slots: Vec<(u32, u64)>| super::super::frame::ServiceAd {
            name: "far".into(),
            slots,
            messages: vec![Double::NAME.into()],
            keyed: false,
        };
        p.send(Frame::Table {
            version: 5,
            services: vec![ad(vec![(0, 1)])],
            members: Vec::new(),
        })
        .await;
        // A stale table (older version) is ignored; a newer one applies.
        p.send(Frame::Table {
            version: 3,
            services: Vec::new(),
            members: Vec::new(),
        })
        .await;
        p.send(Frame::Table {
            version: 6,
            services: vec![ad(vec![(0, 1), (1, 1)])],
            members: Vec::new(),
        })
        .await;
        let mut events = Vec::new();
        while !events.iter().any(|e| {
            matches!(e, crate::RegistryEvent::RemoteAdded { service, slot: 1, .. } if service == "far")
        }) {
            events.push(tokio::time::timeout(Duration::from_secs(10), watch.next()).await.unwrap().unwrap());
        }
        assert!(
            !events
                .iter()
                .any(|e| matches!(e, crate::RegistryEvent::RemoteRemoved { .. })),
            "the stale table was applied: {events:?}"
        );
        assert_eq!(
            node.remote_instances("far"),
            [("raw".to_string(), 0), ("raw".to_string(), 1)]
        );
        // Pings naming a version already held ask for nothing.
        p.send(Frame::Ping { id: 0, table: 6 }).await;
        p.send(Frame::Ping { id: 7, table: 6 }).await;
        p.until(|f| match f {
            Frame::TableRequest => panic!("asked again for a table it holds"),
            Frame::Pong { id: 7 } => Some(()),
            _ => None,
        })
        .await;
        node.shutdown(Duration::from_secs(5)).await.unwrap();
    }

    #[tokio::test]
    async fn oversized_or_truncated_frames_close_only_that_connection() {
        let (node, addr) = node().await;
        // A 4 GiB length prefix after the handshake.
        let mut bad = RawPeer::connect(&addr).await;
        bad.wr.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
        bad.wr.flush().await.unwrap();
        // The node closes the connection: reads end in an error (EOF).
        let closed = async {
            loop {
                if let Err(e) = read_raw(&mut bad.rd, &mut bad.dec, &mut bad.buf).await {
                    return e;
                }
            }
        };
        let reason = tokio::time::timeout(Duration::from_secs(5), closed)
            .await
            .unwrap();
        assert!(!reason.is_empty());
        let t0 = std::time::Instant::now();
        while node.remote_stats().malformed_frames == 0 {
            assert!(t0.elapsed() < Duration::from_secs(5), "counted");
            tokio::task::yield_now().await;
        }
        // A truncated frame, then the peer goes away.
        let mut cut = RawPeer::connect(&addr).await;
        cut.wr.write_all(&[0, 0, 1, 0, 1, 2, 3]).await.unwrap();
        drop(cut);
        // Everyone else is still served.
        let mut good = RawPeer::connect(&addr).await;
        let ok = crate::codec::encode(&Double(4)).unwrap();
        assert!(matches!(
            good.ask(1, "doubler", "wire-test.Double", ok).await,
            Frame::Reply { .. }
        ));
        node.shutdown(Duration::from_secs(5)).await.unwrap();
    }

    #[tokio::test]
    async fn a_membership_lane_carries_only_membership_and_lives_with_its_data_connection() {
        let (node, addr) = node().await;
        // A lane from a member without a data connection is closed at once.
        let mut orphan = RawPeer::open(&addr, ConnKind::Membership, SECRET)
            .await
            .unwrap();
        orphan.closed(|_| false).await;
        // With a data connection, the lane is bound to it: the node pings on it.
        let mut data = RawPeer::connect(&addr).await;
        let mut lane = RawPeer::open(&addr, ConnKind::Membership, SECRET)
            .await
            .unwrap();
        loop {
            match lane.next().await.unwrap() {
                Frame::Ping { .. } => break,
                Frame::Membership { .. } => continue,
                f => panic!("only membership and pings on a lane, got {f:?}"),
            }
        }
        // Membership from the lane is accepted (foca ignores what it cannot read).
        let junk = Frame::Membership {
            payload: vec![1, 2, 3],
        };
        write_raw(&mut lane.wr, &junk, MAX).await.unwrap();
        // A call on the lane is a protocol violation: that lane closes...
        let ask = Frame::Ask {
            id: 1,
            route: Route::Once {
                service: "doubler".into(),
                message: "wire-test.Double".into(),
            },
            meta: super::super::frame::WireMeta::default(),
            payload: crate::codec::encode(&Double(1)).unwrap(),
        };
        write_raw(&mut lane.wr, &ask, MAX).await.unwrap();
        lane.closed(|f| matches!(f, Frame::Ping { .. } | Frame::Membership { .. }))
            .await;
        // ...and the data connection serves on.
        let ok = crate::codec::encode(&Double(5)).unwrap();
        assert!(matches!(
            data.ask(2, "doubler", "wire-test.Double", ok).await,
            Frame::Reply { id: 2, .. }
        ));
        // A new lane closes when its data connection goes.
        let mut lane = RawPeer::open(&addr, ConnKind::Membership, SECRET)
            .await
            .unwrap();
        assert!(matches!(lane.next().await, Ok(Frame::Ping { .. })));
        drop(data);
        lane.closed(|f| matches!(f, Frame::Ping { .. } | Frame::Membership { .. }))
            .await;
        node.shutdown(Duration::from_secs(5)).await.unwrap();
    }

    #[tokio::test]
    async fn a_lane_with_a_wrong_secret_or_an_old_protocol_is_refused() {
        let (node, addr) = node().await;
        let before = node.remote_stats().handshake_failures;
        let r = RawPeer::open(&addr, ConnKind::Membership, b"not-the-secret").await;
        assert!(r.is_err_and(|e| e.contains("authentication failed")));
        // A `Hello` of the previous protocol (2: tables without versions) is
        // refused with a reason.
        let s: BoxStream = Box::new(tokio::net::TcpStream::connect(&addr).await.unwrap());
        let (rd, mut wr) = tokio::io::split(s);
        let hello = Frame::LegacyHello {
            protocol: 2,
            cluster: "msa".into(),
            node: NodeInfo {
                name: "old".into(),
                addr: "127.0.0.1:9".into(),
                incarnation: 1,
            },
            nonce: [1; 32],
            kind: ConnKind::Data,
        };
        write_raw(&mut wr, &hello, MAX).await.unwrap();
        let mut raw = RawPeer {
            rd,
            wr,
            dec: FrameDecoder::new(MAX),
            buf: vec![0; 1024],
        };
        match raw.next().await.unwrap() {
            Frame::Refused { reason } => assert!(
                reason.contains("protocol") && reason.contains("2..=2"),
                "{reason}"
            ),
            f => panic!("expected a refusal, got {f:?}"),
        }
        let t0 = std::time::Instant::now();
        while node.remote_stats().handshake_failures < before + 2 {
            assert!(t0.elapsed() < Duration::from_secs(5), "both counted");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        node.shutdown(Duration::from_secs(5)).await.unwrap();
    }

    /// Accepts one connection on `l` and handshakes as member `raw` at
    /// `addr`; returns it and the kind its dialer declared.
    async fn accept_raw(l: &tokio::net::TcpListener, addr: &str) -> (RawPeer, ConnKind) {
        let (s, _) = tokio::time::timeout(Duration::from_secs(10), l.accept())
            .await
            .expect("a connection within 10 s")
            .unwrap();
        let s: BoxStream = Box::new(s);
        let (rd, wr) = tokio::io::split(s);
        let mut raw = RawPeer {
            rd,
            wr,
            dec: FrameDecoder::new(MAX),
            buf: vec![0; 64 * 1024],
        };
        let cfg = HandshakeConfig {
            cluster: "msa".into(),
            secret: SECRET.to_vec(),
            local: NodeInfo {
                name: "raw".into(),
                addr: addr.into(),
                incarnation: 1,
            },
            protocols: PROTOCOLS,
        };
        let mut hs = HsListener::new(cfg, [4; 32]);
        loop {
            let f = raw.next().await.unwrap();
            match hs.on_frame(f).unwrap() {
                Step::Send(f) => write_raw(&mut raw.wr, &f, MAX).await.unwrap(),
                Step::Done(f, _) => {
                    if let Some(f) = f {
                        write_raw(&mut raw.wr, &f, MAX).await.unwrap();
                    }
                    return (raw, hs.kind());
                }
            };
        }
    }

    #[tokio::test]
    async fn the_dialer_opens_the_lane_and_redials_it_while_the_data_connection_lives() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let raw_addr = l.local_addr().unwrap().to_string();
        let node = Node::builder()
            .name("wire")
            .arbiters(1)
            .listen("127.0.0.1:0".parse().unwrap())
            .secret(SECRET)
            .seed(raw_addr.clone())
            .start()
            .unwrap();
        let (data, kind) = accept_raw(&l, &raw_addr).await;
        assert_eq!(kind, ConnKind::Data);
        let (lane, kind) = accept_raw(&l, &raw_addr).await;
        assert_eq!(kind, ConnKind::Membership, "the dialer also opens the lane");
        // The lane drops while the data connection lives: it is dialed again.
        drop(lane);
        let (mut lane, kind) = accept_raw(&l, &raw_addr).await;
        assert_eq!(kind, ConnKind::Membership);
        assert!(matches!(
            lane.next().await,
            Ok(Frame::Ping { .. } | Frame::Membership { .. })
        ));
        // The data connection goes: so does its lane.
        drop(data);
        lane.closed(|f| matches!(f, Frame::Ping { .. } | Frame::Membership { .. }))
            .await;
        node.shutdown(Duration::from_secs(5)).await.unwrap();
    }
}
