//! A data connection's writer: drains the control lane first, then takes
//! the call lane's bytes (encoded by the callers), into one buffer per
//! batch, and writes it with one syscall.
//!
//! It keeps the per-connection queued-bytes gauges honest: a frame's bytes
//! leave the gauge once the batch holding it is written, or when the writer
//! ends and drops what is left (it closes both lanes first, so nothing can
//! be queued behind it). A write that takes no bytes for
//! `peer_stall_timeout` means the peer stopped reading: the peer is marked
//! stalled and the writer ends.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncWriteExt, WriteHalf};
use tokio::sync::{mpsc, watch};

use super::connection::{CLOCK_EVERY_BYTES, CLOCK_EVERY_FRAMES, TURN_TIME};
use super::Remoting;
use crate::remote::call_lane::CallLane;
use crate::remote::frame::{encode_into, Frame};
use crate::remote::handshake::QUIET_DATA_PROTOCOL;
use crate::remote::peer::{is_call, queued_bytes, Peer, StallReason};
use crate::remote::transport::BoxStream;

/// Largest batch the writer gathers before writing.
const BATCH_BYTES: usize = 256 * 1024;

/// A batch at least this large makes the writer yield its thread after
/// writing it (a queue that refills as fast as it drains).
const YIELD_AFTER_BYTES: usize = 16 * 1024;

/// The writer yields its thread after this many writes in a row at the
/// latest, whatever their size.
const YIELD_AFTER_WRITES: u32 = 16;

/// When a writer yields its thread after a write: after a large batch,
/// and after [`YIELD_AFTER_WRITES`] writes in a row at the latest.
#[derive(Debug, Default)]
struct YieldPolicy {
    /// Writes since the writer last yielded.
    writes: u32,
}

impl YieldPolicy {
    /// Counts a write of `bytes`; `true` when the writer yields now.
    fn after_write(&mut self, bytes: usize) -> bool {
        self.writes += 1;
        if bytes >= YIELD_AFTER_BYTES || self.writes >= YIELD_AFTER_WRITES {
            self.writes = 0;
            return true;
        }
        false
    }
}

/// While the membership lane carries frames, a quiet data connection still
/// pings once in this many heartbeats (2 s by default): the ping carries
/// this node's table version, the peer's anti-entropy for a version its
/// gossip missed.
const ANTI_ENTROPY_TICKS: u32 = 4;

/// Whether a data connection's heartbeat tick sends a ping.
///
/// A connection at [`QUIET_DATA_PROTOCOL`] or later sends none while its
/// membership lane carries frames to the peer (the peer hears this node on
/// the lane, and its reader counts that before it closes the connection as
/// silent; issue 12: each ping woke both ends), except when this node's
/// table version changed since the last ping and once in
/// [`ANTI_ENTROPY_TICKS`]. Without a lane (startup, a lane being re-dialed)
/// or at an older protocol, it pings every heartbeat.
#[derive(Debug)]
struct Heartbeat {
    quiet: bool,
    every: u32,
    /// Ticks since the last ping.
    since: u32,
    /// The table version the last ping carried.
    table: Option<u64>,
}

impl Heartbeat {
    fn new(quiet: bool, every: u32) -> Self {
        Self {
            quiet,
            every: every.max(1),
            since: 0,
            table: None,
        }
    }

    /// A tick: `true` when it pings (`lane`: the lane carries frames;
    /// `table`: this node's table version now).
    fn ping_now(&mut self, lane: bool, table: u64) -> bool {
        self.since += 1;
        let ping = !self.quiet || !lane || self.table != Some(table) || self.since >= self.every;
        if ping {
            self.since = 0;
            self.table = Some(table);
        }
        ping
    }
}

/// What the connection asks of its writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum WriterMode {
    /// Write whatever is queued, and ping when idle.
    Run,
    /// Write out what is still queued (a `Leaving`), then stop.
    Drain,
    /// Stop now, even in the middle of a write.
    Stop,
}

/// The two queues a writer drains.
#[derive(Debug)]
pub(super) struct Lanes {
    /// Replies, errors, tables, pings: written first.
    pub(super) control: mpsc::UnboundedReceiver<Frame>,
    /// Tells and asks, already encoded.
    pub(super) data: Arc<CallLane>,
}

/// Why a write ended early.
#[derive(Debug, thiserror::Error)]
pub(super) enum WriteError {
    /// The socket failed.
    #[error("write failed: {0}")]
    Io(#[from] std::io::Error),
    /// The peer took no bytes for this long.
    #[error("the peer took no bytes for {after:?}")]
    Stalled {
        /// The stall timeout.
        after: Duration,
    },
}

/// Writes all of `buf` and flushes, failing with `Stalled` when one write
/// takes no bytes within `stall` (a slow reader that keeps reading is fine).
pub(super) async fn write_progress(
    wr: &mut WriteHalf<BoxStream>,
    buf: &[u8],
    stall: Duration,
) -> Result<(), WriteError> {
    let stalled = || WriteError::Stalled { after: stall };
    let mut pos = 0;
    while pos < buf.len() {
        match tokio::time::timeout(stall, wr.write(&buf[pos..])).await {
            Ok(Ok(0)) => return Err(std::io::Error::from(std::io::ErrorKind::WriteZero).into()),
            Ok(Ok(n)) => pos += n,
            Ok(Err(e)) => return Err(e.into()),
            Err(_) => return Err(stalled()),
        }
    }
    tokio::time::timeout(stall, wr.flush())
        .await
        .map_err(|_| stalled())??;
    Ok(())
}

/// Bytes taken from the lanes and not yet written, by lane.
#[derive(Debug, Default, Clone, Copy)]
struct Held {
    control: u64,
    data: u64,
}

impl Held {
    fn take(&mut self, f: &Frame) {
        let len = queued_bytes(f);
        if is_call(f) {
            self.data += len;
        } else {
            self.control += len;
        }
    }

    /// Bytes taken from the call lane.
    fn take_calls(&mut self, bytes: u64) {
        self.data += bytes;
    }

    /// Takes these bytes off the connection's gauges.
    fn release(&mut self, peer: &Peer) {
        peer.conn
            .control_queued_bytes
            .fetch_sub(self.control, Ordering::Relaxed);
        peer.conn
            .data_queued_bytes
            .fetch_sub(self.data, Ordering::Relaxed);
        if self.data > 0 {
            // Room in the data lane: wake the senders waiting for it.
            peer.data_room_made();
        }
        *self = Self::default();
    }
}

impl Remoting {
    /// Runs the writer of `peer`'s data connection until its lanes close,
    /// the socket fails, the peer stalls, or `mode` says stop.
    pub(super) async fn run_writer(
        self: Arc<Self>,
        peer: Arc<Peer>,
        mut wr: WriteHalf<BoxStream>,
        mut lanes: Lanes,
        mut mode: watch::Receiver<WriterMode>,
    ) {
        let stall = self.cfg.peer_stall_timeout;
        let mut out = Vec::with_capacity(64 * 1024);
        // On the node's grid: the ticks of every connection and the
        // reachability judgement fire in one wake-up.
        let mut tick = self.grid.interval(self.cfg.heartbeat);
        let mut beat = Heartbeat::new(peer.protocol >= QUIET_DATA_PROTOCOL, ANTI_ENTROPY_TICKS);
        let mut draining = false;
        let mut held = Held::default();
        let mut turns = YieldPolicy::default();
        loop {
            let first = if draining {
                None
            } else {
                tokio::select! {
                    // The connection's word first, then control: replies and
                    // membership never wait behind a backlog of calls.
                    biased;
                    changed = mode.changed() => {
                        match changed.map(|()| *mode.borrow_and_update()) {
                            Ok(WriterMode::Run) => {}
                            Ok(WriterMode::Drain) => draining = true,
                            Ok(WriterMode::Stop) | Err(_) => break,
                        }
                        continue;
                    }
                    f = lanes.control.recv() => match f {
                        Some(f) => { held.take(&f); Some(f) }
                        None => break,
                    },
                    () = lanes.data.ready() => None,
                    _ = tick.tick() => {
                        if peer.is_retired() && peer.peer_sends_no_calls() {
                            // A connection both ends retired goes quiet, so
                            // both ends close it. Until the peer's
                            // `CallsDone`, it may be the peer's current
                            // one: silence would close it as dead.
                            continue;
                        }
                        let table = self.table_version.load(Ordering::Acquire);
                        // Twice the heartbeat: the lane pings after a
                        // heartbeat without a write, and its tick may run
                        // just after this one.
                        let lane = peer.lane_carries(self.cfg.heartbeat * 2);
                        if !beat.ping_now(lane, table) {
                            continue;
                        }
                        // The writer's own ping: not queued, not counted.
                        Some(Frame::Ping { id: 0, table })
                    }
                }
            };
            out.clear();
            let mut frames = 0u64;
            let mut push = |f: &Frame, out: &mut Vec<u8>| match encode_into(
                f,
                self.cfg.max_frame_bytes,
                out,
            ) {
                Ok(()) => frames += 1,
                Err(e) => tracing::warn!(error = %e, kind = f.kind(), "frame not sent"),
            };
            let batch = std::time::Instant::now();
            if let Some(f) = &first {
                push(f, &mut out);
            }
            // Control frames first; the clock is read every few frames or
            // bytes, not per frame.
            let (mut n, mut checked_at) = (0u32, 0usize);
            while out.len() < BATCH_BYTES {
                n += 1;
                if n % CLOCK_EVERY_FRAMES == 0
                    || out.len() - checked_at >= CLOCK_EVERY_BYTES as usize
                {
                    checked_at = out.len();
                    if batch.elapsed() >= TURN_TIME {
                        break;
                    }
                }
                match lanes.control.try_recv() {
                    Ok(f) => {
                        held.take(&f);
                        push(&f, &mut out);
                    }
                    Err(_) => break,
                }
            }
            // Then every call queued so far, as the callers encoded them.
            let (bytes, calls) = lanes.data.take_into(&mut out);
            held.take_calls(bytes);
            frames += calls;
            if out.is_empty() {
                if draining {
                    break;
                }
                continue;
            }
            let written = tokio::select! {
                r = write_progress(&mut wr, &out, stall) => r,
                _ = mode.wait_for(|m| *m == WriterMode::Stop) => break,
            };
            match written {
                Ok(()) => {}
                Err(WriteError::Stalled { after }) => {
                    peer.stall(StallReason::NoProgress { after });
                    break;
                }
                Err(WriteError::Io(e)) => {
                    tracing::debug!(peer = %peer.info.name, error = %e, "write failed");
                    break;
                }
            }
            held.release(&peer);
            self.stats.frames_out.fetch_add(frames, Ordering::Relaxed);
            self.stats
                .bytes_out
                .fetch_add(out.len() as u64, Ordering::Relaxed);
            peer.conn.frames_out.fetch_add(frames, Ordering::Relaxed);
            peer.conn
                .bytes_out
                .fetch_add(out.len() as u64, Ordering::Relaxed);
            // A full queue refills as fast as it drains and the socket
            // takes whole batches without waiting: take turns with the
            // reader, timers and membership of this thread. A small batch
            // (a reply, an ask) does not: `yield_now` puts the writer back
            // only after the thread's next poll of the I/O driver, one more
            // `epoll_wait` and poll per round trip for nothing; the writer
            // waits on its lanes next, and still yields after a run of
            // small batches.
            if turns.after_write(out.len()) {
                tokio::task::yield_now().await;
            }
        }
        // Nothing more is queued behind this point: what is left is dropped
        // and leaves the gauges, which end at zero.
        lanes.control.close();
        held.take_calls(lanes.data.close());
        while let Ok(f) = lanes.control.try_recv() {
            held.take(&f);
        }
        held.release(&peer);
        drop(out);
        let _ = tokio::time::timeout(Duration::from_millis(100), wr.shutdown()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quiet_connection_pings_only_without_a_lane_or_with_news() {
        let mut b = Heartbeat::new(true, 4);
        // The first tick pings (the peer learns the table version).
        assert!(b.ping_now(true, 1));
        // The lane carries frames: no ping until the anti-entropy one.
        assert!(!b.ping_now(true, 1));
        assert!(!b.ping_now(true, 1));
        assert!(!b.ping_now(true, 1));
        assert!(b.ping_now(true, 1), "once in four heartbeats");
        assert!(!b.ping_now(true, 1));
        // A new table version goes out at the next tick.
        assert!(b.ping_now(true, 2));
        assert!(!b.ping_now(true, 2));
        // No lane: every heartbeat.
        assert!(b.ping_now(false, 2));
        assert!(b.ping_now(false, 2));
        // An older protocol pings every heartbeat, lane or not.
        let mut old = Heartbeat::new(false, 4);
        for _ in 0..6 {
            assert!(old.ping_now(true, 1));
        }
    }

    #[test]
    fn a_writer_yields_after_a_large_batch_and_after_a_run_of_small_ones() {
        let mut p = YieldPolicy::default();
        // A reply or an ask per write: no yield until the run is long.
        for i in 1..YIELD_AFTER_WRITES {
            assert!(!p.after_write(60), "small write {i}");
        }
        assert!(p.after_write(60), "the run's last write yields");
        // The count starts again after a yield.
        assert!(!p.after_write(60));
        // A batch as large as a full queue's yields at once, and
        // starts the count again.
        assert!(p.after_write(YIELD_AFTER_BYTES));
        assert!(p.after_write(BATCH_BYTES));
        for _ in 1..YIELD_AFTER_WRITES {
            assert!(!p.after_write(YIELD_AFTER_BYTES - 1));
        }
        assert!(p.after_write(1));
    }
}
