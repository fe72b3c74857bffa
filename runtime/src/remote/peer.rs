//! One remote node as this node sees it: its outbound queue, the asks
//! waiting for its replies, and its membership lane once that is up.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};

use super::call_lane::{CallLane, LaneRefusal, OutCall, OutPublish};
use super::frame::{Frame, NodeInfo, WireError};
use super::stats::RemoteStats;
use crate::error::CallError;

/// The reply to a remote ask: the encoded result, or the remote failure.
pub(crate) type RemoteReply = Result<Vec<u8>, WireError>;

/// Why a peer was found not reading what this node sends it (the
/// connection is then closed and counted as stalled).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum StallReason {
    /// A control frame did not fit in the control lane's byte bound.
    #[error("its control lane holds {queued} bytes (bound {bound}); a {kind} of {len} bytes did not fit")]
    ControlLaneFull {
        /// Bytes queued on the control lane.
        queued: u64,
        /// `RemoteConfig::max_control_queue_bytes`.
        bound: u64,
        /// The kind of the frame that did not fit.
        kind: &'static str,
        /// Its size.
        len: u64,
    },
    /// The socket took no bytes for `after` (the stall timeout).
    #[error("it took no bytes for {after:?}")]
    NoProgress {
        /// How long the writer waited.
        after: std::time::Duration,
    },
}

/// The byte bounds of a connection's two queues.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueueBounds {
    /// `RemoteConfig::max_data_queue_bytes`.
    pub(crate) data_bytes: usize,
    /// `RemoteConfig::max_control_queue_bytes`.
    pub(crate) control_bytes: usize,
    /// `RemoteConfig::max_inbound_asks`.
    pub(crate) inbound_asks: usize,
}

impl Default for QueueBounds {
    fn default() -> Self {
        Self {
            data_bytes: super::remoting::DEFAULT_MAX_DATA_QUEUE_BYTES,
            control_bytes: super::remoting::DEFAULT_MAX_CONTROL_QUEUE_BYTES,
            inbound_asks: super::remoting::DEFAULT_MAX_INBOUND_ASKS,
        }
    }
}

/// Whether `frame` takes the data lane (calls) rather than the control lane.
pub(crate) fn is_call(frame: &Frame) -> bool {
    matches!(
        frame,
        Frame::Tell { .. }
            | Frame::Ask { .. }
            | Frame::AskJson { .. }
            | Frame::AskBincode { .. }
            | Frame::Publish { .. }
            | Frame::PublishRun { .. }
            | Frame::GroupAsk { .. }
    )
}

/// What a frame counts against its queue's bound: an upper bound on its
/// encoded size plus the slot it takes in the queue, so that a lane full of
/// small replies is bounded in memory too (a slot is about 200 bytes, several
/// times a small reply's encoding).
pub(crate) fn queued_bytes(frame: &Frame) -> u64 {
    (frame.queued_len() + std::mem::size_of::<Frame>()) as u64
}

/// A connected remote node.
#[derive(Debug)]
pub(crate) struct Peer {
    pub(crate) info: NodeInfo,
    /// The protocol version the connection speaks (newer frames go only to
    /// peers that speak them).
    pub(crate) protocol: u32,
    /// Whether this side dialed the connection (decides duplicate connections).
    pub(crate) dialer: String,
    /// The data lane: tells and asks, encoded by their callers, bounded by
    /// frames and by `max_data_bytes`.
    calls: Arc<CallLane>,
    /// The control lane: replies, errors, membership, tables, pings. Never
    /// dropped behind a full queue of calls, written first, and bounded by
    /// `max_control_bytes` (counted in `conn.control_queued_bytes`).
    ctl: mpsc::UnboundedSender<Frame>,
    max_data_bytes: u64,
    max_control_bytes: u64,
    /// Why the peer was found not reading, once it was (set once).
    stalled: Mutex<Option<StallReason>>,
    /// Wakes the connection's reader when the peer is found stalled.
    stall_notify: tokio::sync::Notify,
    pending: Mutex<HashMap<u64, oneshot::Sender<RemoteReply>>>,
    next_id: AtomicU64,
    down: AtomicBool,
    leaving: AtomicBool,
    retired: AtomicBool,
    /// The peer's `CallsDone` arrived: it sends no more calls here.
    peer_calls_done: AtomicBool,
    /// Replies still being computed for asks that came in on this connection.
    serving: std::sync::atomic::AtomicUsize,
    /// The bound on `serving` (the reader waits at it).
    max_serving: usize,
    /// Wakes the reader waiting at `max_serving` when an ask is answered.
    serve_slot: tokio::sync::Notify,
    stats: Arc<RemoteStats>,
    /// This connection's own counters.
    pub(crate) conn: super::stats::ConnStats,
    /// The membership lane (its id and its writer's queue), while one is up.
    lane: Mutex<Option<(u64, mpsc::UnboundedSender<Frame>)>>,
    /// Whether the peer's service table has arrived on this connection.
    table_seen: AtomicBool,
    /// The version of the peer's table applied from this connection (0: none).
    table_version: AtomicU64,
    /// The newest version asked for with a `TableRequest`.
    table_asked: AtomicU64,
    /// The version of the peer's table in the registry (set once applied,
    /// after `table_version`; 0: none).
    table_applied: AtomicU64,
    /// Becomes `true` once the connection is down or retired: its lane
    /// closes and stops re-dialing.
    gone: tokio::sync::watch::Sender<bool>,
    /// Signalled when the writer took frames off the data lane (and when the
    /// connection goes down), for senders waiting for room in it.
    data_room: tokio::sync::Notify,
    /// When the connection was established (the origin of `heard_ms`).
    born: std::time::Instant,
    /// When bytes last arrived from the peer, on the data connection or its
    /// membership lane: milliseconds after `born` (reachability).
    heard_ms: AtomicU64,
    /// When the membership lane last wrote to the peer: milliseconds after
    /// `born`, plus one (0: never). Its data connection sends no heartbeat
    /// of its own while the lane carries frames ([`Peer::lane_carries`]).
    lane_wrote_ms: AtomicU64,
}

impl Peer {
    pub(crate) fn new(
        info: NodeInfo,
        protocol: u32,
        dialer: String,
        calls: Arc<CallLane>,
        ctl: mpsc::UnboundedSender<Frame>,
        bounds: QueueBounds,
        stats: Arc<RemoteStats>,
    ) -> Self {
        Self {
            info,
            protocol,
            dialer,
            calls,
            ctl,
            max_data_bytes: bounds.data_bytes as u64,
            max_control_bytes: bounds.control_bytes as u64,
            stalled: Mutex::new(None),
            stall_notify: tokio::sync::Notify::new(),
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            down: AtomicBool::new(false),
            leaving: AtomicBool::new(false),
            retired: AtomicBool::new(false),
            peer_calls_done: AtomicBool::new(false),
            serving: std::sync::atomic::AtomicUsize::new(0),
            max_serving: bounds.inbound_asks,
            serve_slot: tokio::sync::Notify::new(),
            stats,
            conn: Default::default(),
            lane: Mutex::new(None),
            table_seen: AtomicBool::new(false),
            table_version: AtomicU64::new(0),
            table_asked: AtomicU64::new(0),
            table_applied: AtomicU64::new(0),
            gone: tokio::sync::watch::channel(false).0,
            data_room: tokio::sync::Notify::new(),
            born: std::time::Instant::now(),
            heard_ms: AtomicU64::new(0),
            lane_wrote_ms: AtomicU64::new(0),
        }
    }

    /// Bytes arrived from the peer (its data connection or lane).
    pub(crate) fn heard(&self) {
        let ms = u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.heard_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// When bytes last arrived from the peer (the connection's start if none).
    pub(crate) fn last_heard(&self) -> std::time::Instant {
        self.born + std::time::Duration::from_millis(self.heard_ms.load(Ordering::Relaxed))
    }

    /// The membership lane wrote frames to the peer.
    pub(crate) fn lane_wrote(&self) {
        let ms = u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        self.lane_wrote_ms.fetch_max(ms + 1, Ordering::Relaxed);
    }

    /// Whether a membership lane is up and wrote to the peer within
    /// `within`: the peer hears from this node on it (its writer pings a
    /// lane that wrote nothing for a heartbeat), so a heartbeat of the data
    /// connection would tell it nothing new.
    pub(crate) fn lane_carries(&self, within: std::time::Duration) -> bool {
        let wrote = self.lane_wrote_ms.load(Ordering::Relaxed);
        if wrote == 0 || self.lane.lock().is_none() {
            return false;
        }
        let at = self.born + std::time::Duration::from_millis(wrote - 1);
        at.elapsed() <= within
    }

    /// The peer's services left the registry (it is unreachable): forget
    /// which table was applied, so the next version it announces (every
    /// ping carries one) is fetched and applied again.
    pub(crate) fn forget_table(&self) {
        self.table_version.store(0, Ordering::Release);
        self.table_asked.store(0, Ordering::Release);
        self.table_applied.store(0, Ordering::Release);
    }

    /// The peer's table of `version` is in the registry now.
    pub(crate) fn table_applied(&self, version: u64) {
        self.table_applied.fetch_max(version, Ordering::AcqRel);
    }

    /// Whether a table of the peer is in the registry (its services are
    /// routable from here).
    pub(crate) fn has_applied_table(&self) -> bool {
        self.table_applied.load(Ordering::Acquire) > 0
    }

    /// A duplicate connection: no new calls go on it; it closes once idle
    /// and the peer sends no more calls on it either.
    ///
    /// The peer gets `CallsDone` after the last call queued
    /// here, and later calls are refused (`NodeDown`; the caller picks
    /// the connection that replaced this one): the peer, which may not
    /// have retired this connection yet, keeps it open until then, and
    /// every call sent on it before the mark is read and served.
    pub(crate) fn retire(&self) {
        if self.retired.swap(true, Ordering::AcqRel) {
            return;
        }
        self.close_lane();
        let queued = &self.conn.data_queued_bytes;
        self.calls.seal(&Frame::CallsDone, |len| {
            queued.fetch_add(len, Ordering::Relaxed);
        });
    }

    /// The peer's `CallsDone` arrived on this connection.
    pub(crate) fn peer_calls_done(&self) {
        self.peer_calls_done.store(true, Ordering::Release);
    }

    /// Whether the peer sends no more calls on this connection: it sent
    /// `CallsDone`.
    pub(crate) fn peer_sends_no_calls(&self) -> bool {
        self.peer_calls_done.load(Ordering::Acquire)
    }

    /// A table of `version` arrived on this connection: `true` if it is
    /// newer than the one applied (and is now the one held), `false` if it is
    /// stale and must be ignored.
    pub(crate) fn accept_table(&self, version: u64) -> bool {
        let newer = self.table_version.fetch_max(version, Ordering::AcqRel) < version;
        if newer {
            self.table_seen.store(true, Ordering::Release);
        }
        newer
    }

    /// The version of the peer's table applied from this connection (0: none).
    pub(crate) fn table_version(&self) -> u64 {
        self.table_version.load(Ordering::Acquire)
    }

    /// The peer's table is at `version` (gossip or a ping said so): asks for
    /// it unless it is held or already asked for. `true` if a request went out.
    pub(crate) fn want_table(&self, version: u64) -> bool {
        if version <= self.table_version.load(Ordering::Acquire)
            || self.table_asked.fetch_max(version, Ordering::AcqRel) >= version
        {
            return false;
        }
        self.send(Frame::TableRequest).is_ok()
    }

    /// Whether the peer's service table arrived on this connection (so the
    /// registry routes calls over it rather than over a retired duplicate).
    pub(crate) fn has_seen_table(&self) -> bool {
        self.table_seen.load(Ordering::Acquire)
    }

    /// Resolves once this connection is down or retired.
    pub(crate) fn gone(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.gone.subscribe();
        async move {
            let _ = rx.wait_for(|gone| *gone).await;
        }
    }

    /// Ends the lane (if any) and stops it from being re-dialed.
    fn close_lane(&self) {
        self.gone.send_replace(true);
        self.lane.lock().take();
    }

    /// Makes `tx` the membership lane of this peer. A lane that was up
    /// already is dropped (its writer sees its queue close and ends it), so
    /// there is one lane per connection. `false` when the connection is gone.
    pub(crate) fn attach_lane(&self, id: u64, tx: mpsc::UnboundedSender<Frame>) -> bool {
        let mut lane = self.lane.lock();
        if self.is_down() || self.is_retired() {
            return false;
        }
        *lane = Some((id, tx));
        true
    }

    /// Forgets lane `id` (if it is still the current one).
    pub(crate) fn detach_lane(&self, id: u64) {
        let mut lane = self.lane.lock();
        if lane.as_ref().is_some_and(|(cur, _)| *cur == id) {
            *lane = None;
        }
    }

    /// Queues a membership frame: on the lane when it is up, else on this
    /// connection's control lane (startup, a lane being re-dialed).
    pub(crate) fn send_membership(&self, frame: Frame) -> Result<(), CallError> {
        if self.is_down() {
            return Err(self.node_down());
        }
        let frame = match self.lane.lock().as_ref() {
            Some((_, tx)) => match tx.send(frame) {
                Ok(()) => return Ok(()),
                Err(mpsc::error::SendError(f)) => f,
            },
            None => frame,
        };
        self.send(frame)
    }

    pub(crate) fn is_retired(&self) -> bool {
        self.retired.load(Ordering::Acquire)
    }

    /// An inbound ask on this connection started / finished being served.
    pub(crate) fn serving(&self, started: bool) {
        if started {
            self.serving.fetch_add(1, Ordering::AcqRel);
        } else if self.serving.fetch_sub(1, Ordering::AcqRel) >= self.max_serving {
            self.serve_slot.notify_one();
        }
    }

    /// Whether as many inbound asks as allowed are being served.
    pub(crate) fn serving_full(&self) -> bool {
        self.serving.load(Ordering::Acquire) >= self.max_serving
    }

    /// Resolves when an inbound ask is answered while at the bound.
    pub(crate) async fn serve_slot_freed(&self) {
        self.serve_slot.notified().await;
    }

    #[cfg(test)]
    pub(crate) fn serving_now(&self) -> usize {
        self.serving.load(Ordering::Acquire)
    }

    /// Whether replies are still owed on this connection.
    pub(crate) fn replied_recently(&self) -> bool {
        self.serving.load(Ordering::Acquire) > 0
    }

    /// The peer announced a graceful leave.
    pub(crate) fn mark_leaving(&self) {
        self.leaving.store(true, Ordering::Release);
    }

    pub(crate) fn is_leaving(&self) -> bool {
        self.leaving.load(Ordering::Acquire)
    }

    pub(crate) fn is_down(&self) -> bool {
        self.down.load(Ordering::Acquire)
    }

    fn node_down(&self) -> CallError {
        CallError::NodeDown {
            node: self.info.name.clone(),
        }
    }

    /// Queues a frame without waiting: a full queue fails fast.
    ///
    /// A call that finds the data lane full (by frames or by bytes) fails
    /// with `Overloaded`. A control frame that finds the control lane full
    /// is not queued either: the peer is not reading, so the frame is
    /// counted (`control_overflows`) and the connection is closed as
    /// stalled ([`Peer::stall`]). A lane that is empty takes one frame of
    /// any size.
    pub(crate) fn send(&self, frame: Frame) -> Result<(), CallError> {
        if self.is_down() {
            return Err(self.node_down());
        }
        if !is_call(&frame) {
            let len = queued_bytes(&frame);
            // Control frames take their own lane: a flood of tells must not
            // drop a reply or delay failure detection.
            let queued = &self.conn.control_queued_bytes;
            let before = queued.fetch_add(len, Ordering::Relaxed);
            if before > 0 && before + len > self.max_control_bytes {
                queued.fetch_sub(len, Ordering::Relaxed);
                self.stats.control_overflows.fetch_add(1, Ordering::Relaxed);
                self.stall(StallReason::ControlLaneFull {
                    queued: before,
                    bound: self.max_control_bytes,
                    kind: frame.kind(),
                    len,
                });
                return Err(self.overloaded());
            }
            return self.ctl.send(frame).map_err(|_| {
                queued.fetch_sub(len, Ordering::Relaxed);
                self.node_down()
            });
        }
        let mut frame = frame;
        self.calls
            .push_frame(&mut frame, |len| self.admit(len))
            .map_err(|e| self.refused(e, frame.service_name()))
    }

    /// Takes `len` bytes into the data lane's byte count if they fit (a
    /// lane with nothing queued takes a frame of any size).
    fn admit(&self, len: u64) -> bool {
        let queued = &self.conn.data_queued_bytes;
        let before = queued.fetch_add(len, Ordering::Relaxed);
        if before > 0 && before + len > self.max_data_bytes {
            queued.fetch_sub(len, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// The error a caller gets for a call the data lane refused.
    fn refused(&self, why: LaneRefusal, service: &str) -> CallError {
        match why {
            LaneRefusal::Full => {
                self.stats.overloaded.fetch_add(1, Ordering::Relaxed);
                self.overloaded()
            }
            LaneRefusal::Closed => self.node_down(),
            LaneRefusal::Frame(e) => CallError::Codec {
                service: service.to_string(),
                reason: e.to_string(),
            },
        }
    }

    /// Queues a tell (`call.id` `None`) or an ask's frame on the data lane,
    /// its payload encoded in place by `payload`.
    ///
    /// # Errors
    /// `NodeDown` when the connection is gone, `Overloaded` when the lane is
    /// full, `Codec` when the payload does not encode or the frame exceeds
    /// the frame limit.
    pub(crate) fn send_call(
        &self,
        call: OutCall<'_>,
        payload: impl FnOnce(&mut Vec<u8>) -> Result<(), crate::message::CodecError>,
    ) -> Result<(), CallError> {
        if self.is_down() {
            return Err(self.node_down());
        }
        self.calls
            .push_call(call, payload, |len| self.admit(len))
            .map_err(|e| self.refused(e, call.service))
    }

    /// Queues a topic event on the data lane (an event of a `PublishRun`
    /// frame, joining the run at the lane's end when it can), the event
    /// encoded in place by `payload`; never waits.
    ///
    /// # Errors
    /// As [`send_call`](Self::send_call).
    pub(crate) fn send_publish(
        &self,
        publish: OutPublish<'_>,
        payload: impl FnOnce(&mut Vec<u8>) -> Result<(), crate::message::CodecError>,
    ) -> Result<(), CallError> {
        if self.is_down() {
            return Err(self.node_down());
        }
        self.calls
            .push_publish(publish, payload, |len| self.admit(len))
            .map_err(|e| self.refused(e, ""))
    }

    /// Queues a call on the data lane, waiting for room when it is full
    /// (by bytes or by frames) rather than failing with `Overloaded`.
    ///
    /// # Errors
    /// [`CallError::NodeDown`] when the connection goes down first, `Codec`
    /// when the frame cannot be encoded.
    pub(crate) async fn send_waiting(&self, mut frame: Frame) -> Result<(), CallError> {
        loop {
            if self.is_down() {
                return Err(self.node_down());
            }
            // Listen first, then try: room made meanwhile is not missed.
            let room = self.data_room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            match self.calls.push_frame(&mut frame, |len| self.admit(len)) {
                Ok(()) => return Ok(()),
                Err(LaneRefusal::Full) => {}
                Err(e) => return Err(self.refused(e, frame.service_name())),
            }
            if self.is_down() {
                return Err(self.node_down());
            }
            room.await;
        }
    }

    /// The writer took frames off the data lane: senders waiting for room
    /// try again.
    pub(crate) fn data_room_made(&self) {
        self.data_room.notify_waiters();
    }

    fn overloaded(&self) -> CallError {
        CallError::Overloaded {
            node: self.info.name.clone(),
        }
    }

    /// The peer stopped reading (`why`): counts it once and wakes the
    /// connection's reader, which closes the connection.
    pub(crate) fn stall(&self, why: StallReason) {
        let mut stalled = self.stalled.lock();
        if stalled.is_none() {
            *stalled = Some(why);
            self.stats
                .stalled_connections
                .fetch_add(1, Ordering::Relaxed);
            self.stall_notify.notify_one();
        }
    }

    /// Why the peer was found stalled, if it was.
    pub(crate) fn stall_reason(&self) -> Option<StallReason> {
        self.stalled.lock().clone()
    }

    /// Resolves with the reason once the peer is found stalled.
    pub(crate) async fn stalled(&self) -> StallReason {
        loop {
            if let Some(why) = self.stall_reason() {
                return why;
            }
            self.stall_notify.notified().await;
        }
    }

    /// Registers an ask and queues its frame; the receiver yields the reply.
    pub(crate) fn ask(
        &self,
        make: impl FnOnce(u64) -> Frame,
    ) -> Result<(u64, oneshot::Receiver<RemoteReply>), CallError> {
        self.ask_with(|id| self.send(make(id)))
    }

    /// Registers an ask whose call is encoded in place on the data lane
    /// (see [`send_call`](Self::send_call)); the receiver yields the reply.
    pub(crate) fn ask_call(
        &self,
        call: OutCall<'_>,
        payload: impl FnOnce(&mut Vec<u8>) -> Result<(), crate::message::CodecError>,
    ) -> Result<(u64, oneshot::Receiver<RemoteReply>), CallError> {
        self.ask_with(|id| {
            self.send_call(
                OutCall {
                    id: Some(id),
                    ..call
                },
                payload,
            )
        })
    }

    fn ask_with(
        &self,
        send: impl FnOnce(u64) -> Result<(), CallError>,
    ) -> Result<(u64, oneshot::Receiver<RemoteReply>), CallError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().insert(id, tx);
        if let Err(e) = send(id) {
            self.pending.lock().remove(&id);
            return Err(e);
        }
        // The connection may have failed between the check and the insert.
        if self.is_down() {
            self.pending.lock().remove(&id);
            return Err(self.node_down());
        }
        Ok((id, rx))
    }

    /// Delivers a reply; a reply nobody waits for (timed out, dropped) is counted.
    pub(crate) fn complete(&self, id: u64, reply: RemoteReply) {
        let waiter = self.pending.lock().remove(&id);
        match waiter {
            Some(tx) => {
                if tx.send(reply).is_err() {
                    self.stats.late_replies.fetch_add(1, Ordering::Relaxed);
                }
            }
            None => {
                self.stats.late_replies.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Forgets an ask whose caller gave up.
    pub(crate) fn cancel(&self, id: u64) {
        self.pending.lock().remove(&id);
    }

    /// Asks waiting on this peer (for tests and metrics).
    pub(crate) fn pending(&self) -> usize {
        self.pending.lock().len()
    }

    /// The connection is gone: every waiting ask fails now with `NodeDown`
    /// (its receiver sees the sender dropped).
    pub(crate) fn mark_down(&self) {
        self.down.store(true, Ordering::Release);
        self.data_room.notify_waiters();
        self.close_lane();
        let waiting: Vec<_> = self.pending.lock().drain().collect();
        drop(waiting);
    }
}
