//! One remote node as this node sees it: its outbound queue, the asks
//! waiting for its replies, and its membership lane once that is up.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};

use super::frame::{Frame, NodeInfo, WireError};
use super::stats::RemoteStats;
use crate::error::CallError;

/// The reply to a remote ask: the encoded result, or the remote failure.
pub(crate) type RemoteReply = Result<Vec<u8>, WireError>;

/// A connected remote node.
#[derive(Debug)]
pub(crate) struct Peer {
    pub(crate) info: NodeInfo,
    /// Whether this side dialed the connection (decides duplicate connections).
    pub(crate) dialer: String,
    tx: mpsc::Sender<Frame>,
    /// The control lane: replies, errors, membership, tables, pings. Never
    /// dropped behind a full queue of calls, and written first.
    ctl: mpsc::UnboundedSender<Frame>,
    pending: Mutex<HashMap<u64, oneshot::Sender<RemoteReply>>>,
    next_id: AtomicU64,
    down: AtomicBool,
    leaving: AtomicBool,
    retired: AtomicBool,
    /// Replies still being computed for asks that came in on this connection.
    serving: std::sync::atomic::AtomicUsize,
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
    /// Becomes `true` once the connection is down or retired: its lane
    /// closes and stops re-dialing.
    gone: tokio::sync::watch::Sender<bool>,
}

impl Peer {
    pub(crate) fn new(
        info: NodeInfo,
        dialer: String,
        tx: mpsc::Sender<Frame>,
        ctl: mpsc::UnboundedSender<Frame>,
        stats: Arc<RemoteStats>,
    ) -> Self {
        Self {
            info,
            dialer,
            tx,
            ctl,
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            down: AtomicBool::new(false),
            leaving: AtomicBool::new(false),
            retired: AtomicBool::new(false),
            serving: std::sync::atomic::AtomicUsize::new(0),
            stats,
            conn: Default::default(),
            lane: Mutex::new(None),
            table_seen: AtomicBool::new(false),
            table_version: AtomicU64::new(0),
            table_asked: AtomicU64::new(0),
            gone: tokio::sync::watch::channel(false).0,
        }
    }

    /// A duplicate connection: no new calls go on it; it closes once idle.
    pub(crate) fn retire(&self) {
        self.retired.store(true, Ordering::Release);
        self.close_lane();
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
        } else {
            self.serving.fetch_sub(1, Ordering::AcqRel);
        }
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
    pub(crate) fn send(&self, frame: Frame) -> Result<(), CallError> {
        if self.is_down() {
            return Err(self.node_down());
        }
        if !matches!(
            frame,
            Frame::Tell { .. } | Frame::Ask { .. } | Frame::AskJson { .. }
        ) {
            // Control frames take their own unbounded lane: a flood of tells
            // must not drop a reply or delay failure detection.
            return self.ctl.send(frame).map_err(|_| self.node_down());
        }
        match self.tx.try_send(frame) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.stats.overloaded.fetch_add(1, Ordering::Relaxed);
                Err(CallError::Overloaded {
                    node: self.info.name.clone(),
                })
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(self.node_down()),
        }
    }

    /// Registers an ask and queues its frame; the receiver yields the reply.
    pub(crate) fn ask(
        &self,
        make: impl FnOnce(u64) -> Frame,
    ) -> Result<(u64, oneshot::Receiver<RemoteReply>), CallError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().insert(id, tx);
        if let Err(e) = self.send(make(id)) {
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
        self.close_lane();
        let waiting: Vec<_> = self.pending.lock().drain().collect();
        drop(waiting);
    }
}
