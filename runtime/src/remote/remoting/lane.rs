//! The membership lane: a second authenticated connection per peer that
//! carries only foca's messages (and pings that keep it honest), so failure
//! detection never waits behind calls already in the data connection's TCP
//! stream and kernel buffers.
//!
//! The node that dialed the kept data connection also dials the lane, with
//! the same handshake (`Hello { kind: Membership }`), and re-dials it with
//! backoff while that data connection lives; the other side binds an inbound
//! lane to its data connection from the same node and incarnation, and
//! refuses it when there is none. A lane ends with its data connection (down,
//! retired as a duplicate, or closed because this node leaves). While no lane
//! is up, membership frames take the data connection's control lane, so
//! nothing is lost at startup or during a re-dial; inbound membership frames
//! from either path feed foca alike.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{ReadHalf, WriteHalf};
use tokio::sync::mpsc;

use super::io::read_frame_counted;
use super::writer::{write_progress, WriteError};
use super::{ConnGuard, ConnectionError, MembershipInput, Remoting};
use crate::remote::frame::{encode_into, ConnKind, Frame, FrameDecoder, NodeInfo};
use crate::remote::peer::Peer;
use crate::remote::stats::ConnStats;
use crate::remote::transport::BoxStream;

/// Largest batch the lane writer gathers before writing.
const LANE_BATCH_BYTES: usize = 64 * 1024;

/// Detaches a lane from its peer when the lane ends, however it ends.
struct Attached<'a> {
    peer: &'a Peer,
    id: u64,
}

impl Drop for Attached<'_> {
    fn drop(&mut self) {
        self.peer.detach_lane(self.id);
    }
}

impl Remoting {
    /// Keeps a membership lane open to `peer` (a data connection this node
    /// dialed) until that connection is down or retired or this node closes:
    /// dials it, and re-dials it with exponential backoff when it drops.
    pub(super) async fn lane_dial_loop(self: Arc<Self>, peer: Arc<Peer>) {
        let gone = peer.gone();
        tokio::pin!(gone);
        let mut closed = self.closed.subscribe();
        let mut backoff = Duration::from_millis(50);
        loop {
            if self.is_closing() || peer.is_down() || peer.is_retired() {
                break;
            }
            let started = Instant::now();
            tokio::select! {
                r = self.lane_attempt(&peer) => match r {
                    Ok(reason) => {
                        tracing::debug!(peer = %peer.info.name, %reason, "membership lane ended");
                    }
                    Err(reason) => {
                        tracing::debug!(peer = %peer.info.name, %reason, "membership lane not opened");
                    }
                },
                _ = &mut gone => break,
                _ = closed.wait_for(|c| *c) => break,
            }
            if started.elapsed() > self.cfg.reconnect_max {
                // It ran for a while: a fresh drop, not a failing dial.
                backoff = Duration::from_millis(50);
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = &mut gone => break,
                _ = closed.wait_for(|c| *c) => break,
            }
            backoff = (backoff * 2).min(self.cfg.reconnect_max);
        }
    }

    /// Dials, authenticates and runs one lane to `peer`; `Ok` with why it
    /// ended once it ran, `Err` when it could not be opened.
    async fn lane_attempt(
        self: &Arc<Self>,
        peer: &Arc<Peer>,
    ) -> Result<ConnectionError, ConnectionError> {
        let addr = peer.info.addr.clone();
        let stream = tokio::time::timeout(
            self.cfg.connect_timeout,
            self.transport.connect(addr.clone()),
        )
        .await
        .map_err(|_| ConnectionError::DialTimedOut { addr: addr.clone() })?
        .map_err(|source| ConnectionError::Dial {
            addr: addr.clone(),
            source,
        })?;
        let (info, _, rd, wr, dec) = self
            .dial_handshake(stream, ConnKind::Membership, &addr)
            .await?;
        if info != peer.info {
            return Err(ConnectionError::PeerChanged {
                addr,
                name: info.name,
                incarnation: info.incarnation,
            });
        }
        Ok(self.run_lane(peer, rd, wr, dec).await)
    }

    /// Serves an inbound lane: it belongs to the data connection from the
    /// same node and incarnation, and is closed when there is none.
    pub(super) async fn lane_inbound(
        self: Arc<Self>,
        info: NodeInfo,
        rd: ReadHalf<BoxStream>,
        wr: WriteHalf<BoxStream>,
        dec: FrameDecoder,
    ) {
        let peer = match self.peer(&info.name) {
            Some(p) if p.info == info && !p.is_down() && !p.is_retired() => p,
            _ => {
                tracing::debug!(peer = %info.name, "membership lane without a data connection; closed");
                return;
            }
        };
        let reason = self.run_lane(&peer, rd, wr, dec).await;
        tracing::debug!(peer = %info.name, %reason, "inbound membership lane ended");
    }

    /// Runs an authenticated lane until it fails, falls silent for
    /// `dead_after`, is replaced, or its data connection goes. Returns why.
    async fn run_lane(
        self: &Arc<Self>,
        peer: &Arc<Peer>,
        mut rd: ReadHalf<BoxStream>,
        mut wr: WriteHalf<BoxStream>,
        mut dec: FrameDecoder,
    ) -> ConnectionError {
        let id = self.next_lane.fetch_add(1, Ordering::Relaxed);
        let (tx, mut rx) = mpsc::unbounded_channel::<Frame>();
        if !peer.attach_lane(id, tx) {
            return ConnectionError::DataConnectionGone;
        }
        let _attached = Attached { peer, id };
        self.conns.fetch_add(1, Ordering::AcqRel);
        let _open = ConnGuard(&self.conns, &self.conns_done);
        tracing::debug!(peer = %peer.info.name, "membership lane up");

        let writer = async {
            let mut out = Vec::with_capacity(4 * 1024);
            let mut tick = tokio::time::interval(self.cfg.heartbeat);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let first = tokio::select! {
                    biased;
                    f = rx.recv() => match f {
                        // A lane that carries frames needs no ping: the
                        // next one is due a heartbeat after this write
                        // (issue 12: an idle node of three wakes less).
                        Some(f) => { tick.reset(); f }
                        // Replaced by another lane, or the peer is gone.
                        None => return ConnectionError::LaneReplaced,
                    },
                    _ = tick.tick() => Frame::Ping { id: 0, table: 0 },
                };
                out.clear();
                let mut frames = 0u64;
                let mut next = Some(first);
                while let Some(f) = next.take() {
                    match encode_into(&f, self.cfg.max_frame_bytes, &mut out) {
                        Ok(()) => frames += 1,
                        Err(e) => tracing::warn!(error = %e, kind = f.kind(), "frame not sent"),
                    }
                    if out.len() < LANE_BATCH_BYTES {
                        next = rx.try_recv().ok();
                    }
                }
                match write_progress(&mut wr, &out, self.cfg.peer_stall_timeout).await {
                    // The data connection sends no heartbeat while the
                    // lane carries frames (`writer.rs`, `Heartbeat`).
                    Ok(()) => peer.lane_wrote(),
                    Err(e @ WriteError::Stalled { .. }) => {
                        // Its queue grows while the peer does not read: close it.
                        self.stats
                            .stalled_connections
                            .fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(peer = %peer.info.name, error = %e, "peer stopped reading its membership lane; lane closed");
                        return e.into();
                    }
                    Err(e) => return e.into(),
                }
                self.stats.frames_out.fetch_add(frames, Ordering::Relaxed);
                self.stats
                    .bytes_out
                    .fetch_add(out.len() as u64, Ordering::Relaxed);
            }
        };

        let reader = async {
            // The node-wide counters count the lane; the per-connection ones
            // describe the data connection.
            let lane_conn = ConnStats::default();
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let read = tokio::time::timeout(
                    self.cfg.dead_after,
                    read_frame_counted(
                        &mut rd,
                        &mut dec,
                        &mut buf,
                        Some((&self.stats, &lane_conn)),
                    ),
                )
                .await;
                match read {
                    Ok(Ok(f)) => {
                        self.stats.frames_in.fetch_add(1, Ordering::Relaxed);
                        peer.heard();
                        match f {
                            Frame::Membership { payload } => {
                                self.to_membership(MembershipInput::Data(payload));
                            }
                            Frame::Ping { .. } | Frame::Pong { .. } => {}
                            other => {
                                return ConnectionError::ProtocolViolation {
                                    kind: other.kind(),
                                    place: "on the membership lane",
                                }
                            }
                        }
                    }
                    Ok(Err(reason)) => {
                        if !reason.is_closed() {
                            self.stats.malformed_frames.fetch_add(1, Ordering::Relaxed);
                        }
                        return reason;
                    }
                    Err(_) => return ConnectionError::LaneSilent(self.cfg.dead_after),
                }
            }
        };

        let mut closed = self.closed.subscribe();
        let reason = tokio::select! {
            r = reader => r,
            r = writer => r,
            _ = peer.gone() => ConnectionError::DataConnectionGone,
            _ = closed.wait_for(|c| *c) => ConnectionError::NodeLeft,
        };
        // Dropping both halves closes the stream; the other side sees EOF.
        reason
    }
}
