//! An established data connection: its writer, its reader, and the
//! teardown when it ends.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, ReadHalf, WriteHalf};
use tokio::sync::mpsc;

use super::writer::{Lanes, WriterMode};
use super::{ConnGuard, ConnectionError, MembershipInput, Remoting};
use crate::remote::call_lane::CallLane;
use crate::remote::frame::{Frame, FrameDecoder, NodeInfo};
use crate::remote::handshake::QUIET_DATA_PROTOCOL;
use crate::remote::inbound::Inbound;
use crate::remote::peer::{Peer, QueueBounds};
use crate::remote::routes::InboundRoutes;
use crate::remote::transport::BoxStream;

/// Frames a connection's reader dispatches before it lets the other tasks of
/// its thread run.
const READER_TURN_FRAMES: u32 = 256;

/// Bytes a connection's reader asks the socket for at once.
const READ_BUF_BYTES: usize = 64 * 1024;

/// How often (in frames, or bytes decoded) a reader or writer reads the clock
/// to see whether its turn is over: small frames are cheap, so the clock is
/// read once per this many of them; a large one makes the next check come at
/// once.
pub(super) const CLOCK_EVERY_FRAMES: u32 = 32;
/// See [`CLOCK_EVERY_FRAMES`].
pub(super) const CLOCK_EVERY_BYTES: u64 = 16 * 1024;

/// One turn of a connection's reader on its thread: it ends after
/// [`READER_TURN_FRAMES`] frames or [`TURN_TIME`], whichever comes first.
struct Turn {
    frames: u32,
    started: Instant,
    /// The decoder's byte count at the last look at the clock.
    checked_at: u64,
}

impl Turn {
    fn new(consumed: u64) -> Self {
        Self {
            frames: 0,
            started: Instant::now(),
            checked_at: consumed,
        }
    }

    /// Counts the frame about to be decoded; `true` when the turn is over.
    /// `consumed` is the decoder's count of bytes decoded so far.
    fn is_over(&mut self, consumed: u64) -> bool {
        self.frames += 1;
        if self.frames >= READER_TURN_FRAMES {
            return true;
        }
        if self.frames.is_multiple_of(CLOCK_EVERY_FRAMES)
            || consumed - self.checked_at >= CLOCK_EVERY_BYTES
        {
            self.checked_at = consumed;
            return self.started.elapsed() >= TURN_TIME;
        }
        false
    }
}

/// The longest a connection's reader (decoding and handing on frames) or
/// writer (encoding a batch) runs before the other tasks of its thread get a
/// turn: large frames cost far more than small ones (a 64 KiB payload takes
/// milliseconds to decode in a debug build), so a frame count alone would
/// let a few of them hold the thread for seconds and starve membership.
pub(super) const TURN_TIME: Duration = Duration::from_millis(2);

impl Remoting {
    /// Reads the data connection's next bytes; `Err` once the peer was
    /// silent for `dead_after`. At [`QUIET_DATA_PROTOCOL`] the peer sends
    /// no heartbeat here while its membership lane carries frames, so
    /// silence counts what arrived on either (`Peer::last_heard`); an older
    /// peer pings here every heartbeat, and only this connection counts.
    async fn read_or_silent(
        &self,
        peer: &Peer,
        rd: &mut ReadHalf<BoxStream>,
        buf: &mut [u8],
    ) -> Result<std::io::Result<usize>, tokio::time::error::Elapsed> {
        let started = tokio::time::Instant::now();
        let quiet = peer.protocol >= QUIET_DATA_PROTOCOL;
        let deadline = || {
            let own = started + self.cfg.dead_after;
            if quiet {
                let heard = tokio::time::Instant::from_std(peer.last_heard());
                own.max(heard + self.cfg.dead_after)
            } else {
                own
            }
        };
        let read = rd.read(buf);
        tokio::pin!(read);
        loop {
            match tokio::time::timeout_at(deadline(), &mut read).await {
                Ok(r) => return Ok(r),
                // Heard on the lane meanwhile: wait on.
                Err(_) if tokio::time::Instant::now() < deadline() => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Runs an authenticated connection until it ends.
    pub(super) async fn established(
        self: Arc<Self>,
        info: NodeInfo,
        protocol: u32,
        dialer: String,
        mut rd: ReadHalf<BoxStream>,
        wr: WriteHalf<BoxStream>,
        mut dec: FrameDecoder,
    ) {
        if info.name == self.local.name {
            // A seed that is this node (a DNS seed lists every node, this
            // one too): nothing to wait for from it (`tables_pending`).
            self.ever_connected.store(true, Ordering::Release);
            tracing::warn!("connected to ourselves; closing");
            return;
        }
        let calls = Arc::new(CallLane::new(
            self.cfg.outbound_queue.max(16),
            self.cfg.max_frame_bytes,
        ));
        let (ctl_tx, ctl_rx) = mpsc::unbounded_channel::<Frame>();
        let bounds = QueueBounds {
            data_bytes: self.cfg.max_data_queue_bytes,
            control_bytes: self.cfg.max_control_queue_bytes,
            inbound_asks: self.cfg.max_inbound_asks.max(1),
        };
        let peer = Arc::new(Peer::new(
            info.clone(),
            protocol,
            dialer,
            calls.clone(),
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
            self.ever_connected.store(true, Ordering::Release);
            tracing::info!(peer = %info.name, addr = %info.addr, incarnation = info.incarnation, "connected");
            self.emit(crate::remote::status::ClusterEvent::Joined {
                member: info.clone(),
            });
            self.to_membership(MembershipInput::Announce(info.clone()));
            // The new peer gets our table at once (the others hear of the
            // new member from the membership gossip).
            self.send_table(&peer);
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
            data: calls,
        };
        let mut writer = actix_rt::spawn(self.clone().run_writer(peer.clone(), wr, lanes, mode_rx));

        // Reader: dispatch frames until the connection ends or goes silent.
        let mut buf = vec![0u8; READ_BUF_BYTES];
        let mut closed = self.closed.subscribe();
        // The (service, message) pairs the peer named on this connection.
        let mut routes = InboundRoutes::<Arc<Inbound>>::default();
        let reading = async {
            let mut turn = Turn::new(dec.consumed());
            // Frames decoded and not yet counted in the node's and the
            // connection's counters (counted before the reader waits).
            let mut uncounted = 0u64;
            let reason = 'read: loop {
                // Enough asks from this peer are being served: read no more
                // until one is answered (the peer's sends wait in TCP).
                while peer.serving_full() {
                    self.count_frames_in(&peer, &mut uncounted);
                    tokio::select! {
                        _ = peer.serve_slot_freed() => {}
                        _ = closed.changed() => break 'read ConnectionError::NodeLeft,
                    }
                }
                // Frames already buffered decode without touching the socket, so
                // nothing would make this task yield; and every tell it hands on
                // lets its instance run too (actix drains a mailbox to the end).
                // Taking turns keeps a flood of calls from starving the
                // writers, timers and membership that share this thread.
                if turn.is_over(dec.consumed()) {
                    self.count_frames_in(&peer, &mut uncounted);
                    tokio::task::yield_now().await;
                    turn = Turn::new(dec.consumed());
                }
                // A run of plain tells to one route is served as one batch
                // (one mailbox message for the run, `service/batch.rs`).
                let served = if let Some(route) = dec.plain_tell_route() {
                    let left = READER_TURN_FRAMES.saturating_sub(turn.frames);
                    let (taken, served) =
                        self.on_tell_run(&peer, route, &mut dec, &mut routes, left);
                    uncounted += u64::from(taken);
                    turn.frames += taken.saturating_sub(1);
                    served
                } else {
                    let f = match dec.next_incoming() {
                        Ok(Some(f)) => f,
                        Ok(None) => {
                            // The buffer is drained: wait for the socket (the
                            // only place the reader waits for the peer).
                            self.count_frames_in(&peer, &mut uncounted);
                            let read = tokio::select! {
                                r = self.read_or_silent(&peer, &mut rd, &mut buf) => r,
                                _ = closed.changed() => break ConnectionError::NodeLeft,
                            };
                            match read {
                                Ok(Ok(0)) => break ConnectionError::Closed,
                                Ok(Ok(n)) => {
                                    peer.heard();
                                    self.stats.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
                                    peer.conn.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
                                    dec.push(&buf[..n]);
                                    continue;
                                }
                                Ok(Err(e)) => {
                                    self.stats.malformed_frames.fetch_add(1, Ordering::Relaxed);
                                    break ConnectionError::from(e);
                                }
                                Err(_) => break ConnectionError::Silent(self.cfg.dead_after),
                            }
                        }
                        Err(e) => {
                            self.stats.malformed_frames.fetch_add(1, Ordering::Relaxed);
                            break ConnectionError::from(e);
                        }
                    };
                    uncounted += 1;
                    // A run of events counts in the turn as its events, as
                    // a run of tells does.
                    if let crate::remote::frame::Incoming::PublishRun(run) = &f {
                        let events = u32::try_from(run.events.len()).unwrap_or(u32::MAX);
                        turn.frames = turn.frames.saturating_add(events.saturating_sub(1));
                    }
                    self.on_incoming(&peer, f, &mut routes)
                };
                match served {
                    Ok(None) => {}
                    // A tell waits for room in its instance's
                    // mailbox: so does this connection (the
                    // peer's sends wait in TCP).
                    Ok(Some(wait)) => {
                        self.count_frames_in(&peer, &mut uncounted);
                        let queued = tokio::select! {
                            r = wait => r,
                            _ = closed.changed() => break 'read ConnectionError::NodeLeft,
                        };
                        if let Err(e) = queued {
                            tracing::debug!(error = ?e, "remote tell not delivered");
                        }
                    }
                    Err(reason) => break reason,
                }
                if peer.is_down() {
                    break ConnectionError::Replaced;
                }
                // A retired connection closes once idle both ways: no ask
                // of ours waits for a reply, none of the peer's is being
                // served, and the peer sends no more calls (its
                // `CallsDone` came: a call it sent before is read by now).
                if peer.is_retired()
                    && peer.peer_sends_no_calls()
                    && peer.pending() == 0
                    && !peer.replied_recently()
                    && self.successor_has_table(&info.name)
                {
                    break ConnectionError::RetiredIdle;
                }
            };
            self.count_frames_in(&peer, &mut uncounted);
            reason
        };
        // A peer that stopped reading ends the connection whatever the
        // reader is doing (it may be reading a flood of calls).
        let reason = tokio::select! {
            r = reading => r,
            why = peer.stalled() => ConnectionError::Stalled(why),
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
            if peer.is_leaving() {
                // A graceful leave is news, not a fault.
                tracing::info!(peer = %info.name, "peer left the cluster");
            } else if stalled.is_none() {
                tracing::warn!(peer = %info.name, %reason, "connection lost; node is down");
            }
            self.emit(if peer.is_leaving() {
                crate::remote::status::ClusterEvent::Left {
                    name: info.name.clone(),
                }
            } else {
                crate::remote::status::ClusterEvent::Down {
                    name: info.name.clone(),
                    reason: reason.to_string(),
                }
            });
            if let Some(node) = self.node.upgrade() {
                node.registry().drop_node(&info.name);
            }
        }
    }

    /// Adds `n` frames read from `peer` to the node's and the connection's
    /// counters, and zeroes `n`.
    fn count_frames_in(&self, peer: &Peer, n: &mut u64) {
        if *n > 0 {
            self.stats.frames_in.fetch_add(*n, Ordering::Relaxed);
            peer.conn.frames_in.fetch_add(*n, Ordering::Relaxed);
            *n = 0;
        }
    }

    /// Whether the connection that replaced a retired one to `name` (if
    /// any) has brought that node's table: until then the registry still
    /// routes calls over the retired connection, so it must stay open.
    fn successor_has_table(&self, name: &str) -> bool {
        self.peer(name).is_none_or(|p| p.has_seen_table())
    }
}
