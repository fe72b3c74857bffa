//! The simulated network, on the in-memory transport's sans-IO core
//! (`remote/transport/memory/`): the link rules between nodes (cuts one
//! way or both, added latency) are a [`LinkRules`], and each direction of
//! a connection is a [`PipeCore`] stamped in simulated time, so a frame's
//! encoded bytes travel exactly as they do between `MemoryNetwork` nodes:
//! delayed by the link's latency, held by a cut and released in order by
//! the heal. A connection's life is the core's too: an end that closes
//! shuts its writing pipe down (the other end reads what it holds, then
//! the end of the stream: not across a cut) and leaves its reading pipe
//! (what it held is gone); a reset empties both pipes and both ends read
//! the end at once. What the core does not model stays here: which frames
//! are dropped whole (decided before the write), and the delivery events
//! (at most one pending per direction, at the pipe's next readable time,
//! or at once for the end of the stream). Its state is ordered maps only.

use std::collections::BTreeMap;
use std::ops::Deref;
use std::time::Duration;

use crate::remote::frame::{Frame, FrameDecoder};
use crate::remote::transport::memory::link::LinkRules;
use crate::remote::transport::memory::pipe::{PipeCore, Read, Wrote};
use crate::remote::transport::memory::PIPE_BYTES;

/// The one-way latency every link has before any added delay: the time
/// from a node's send to its bytes entering the link.
pub(crate) const BASE_LATENCY: Duration = Duration::from_millis(1);

/// One end of a connection: its node and that node's incarnation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct End {
    pub(crate) node: usize,
    pub(crate) incarnation: u64,
}

/// One direction of an open connection.
#[derive(Debug)]
struct Direction {
    /// The bytes on their way: the core's pipe, in simulated time.
    pipe: PipeCore<Duration>,
    /// The receiver's decoder of the byte stream.
    decoder: FrameDecoder,
    /// How many bytes the receiver reads at a time (picked by the seed:
    /// a frame may arrive split over reads, as over TCP).
    read_bytes: usize,
    /// When the delivery event scheduled for this direction fires (at most
    /// one is pending).
    wake: Option<Duration>,
}

/// A connection, from the dial (its handshake runs through its pipes)
/// until both ends closed it.
#[derive(Debug)]
pub(crate) struct Conn {
    /// The dialer.
    pub(crate) a: End,
    /// The listener.
    pub(crate) b: End,
    /// Per direction: 0 is a → b, 1 is b → a.
    dirs: [Direction; 2],
    /// Whether each end (a, b) still holds its stream.
    open: [bool; 2],
}

impl Conn {
    /// The direction index of bytes sent by `from` (`None`: not an end).
    fn direction(&self, from: usize) -> Option<usize> {
        if self.a.node == from {
            Some(0)
        } else if self.b.node == from {
            Some(1)
        } else {
            None
        }
    }

    /// The dialer of this connection.
    pub(crate) fn dialer(&self) -> usize {
        self.a.node
    }

    /// The other end from `me`.
    pub(crate) fn other(&self, me: usize) -> End {
        if self.a.node == me {
            self.b
        } else {
            self.a
        }
    }
}

/// A directed link with a fault besides a cut: an added delay (the core's
/// latency of the link) or drops.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LinkFault {
    /// Probability of dropping a whole frame (zero on a link only
    /// delayed).
    pub(crate) drop: f64,
}

/// A delivery event to schedule: bytes become readable at `to` on `conn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Wake {
    pub(crate) conn: u64,
    pub(crate) to: usize,
    pub(crate) at: Duration,
}

/// What became of a frame handed to the network.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Sent {
    /// Written; schedule this delivery (none was pending).
    Deliver(Wake),
    /// Written; a delivery is pending already, or the link is cut (the
    /// heal schedules it).
    Queued,
    /// Not written: dropped whole, or the connection is closed (by this
    /// end, reset, or the reader went).
    Lost(&'static str),
    /// Not written: the pipe is full (a cut held too much), as a blocked
    /// writer; the connection must close.
    Full,
}

/// What a delivery handed to the receiver.
#[derive(Debug)]
pub(crate) struct Received {
    /// The receiver.
    pub(crate) me: End,
    /// The sender.
    pub(crate) from: End,
    /// The frames decoded, in order.
    pub(crate) frames: Vec<Frame>,
    /// The stream is corrupt (the connection must close).
    pub(crate) bad: Option<String>,
    /// The stream ended (after `frames`): the other end closed, or a
    /// reset.
    pub(crate) eof: bool,
    /// The next delivery of this direction, if bytes wait for their time.
    pub(crate) next: Option<Wake>,
}

/// Links, connections and faults.
///
/// The link rules are read through the network (`net.cut`, [`LinkRules`]'s
/// fields, by [`Deref`]) and changed only by its methods, which apply them
/// to every open connection.
#[derive(Debug, Default)]
pub(crate) struct Net {
    pub(crate) conns: BTreeMap<u64, Conn>,
    next_conn: u64,
    /// Cuts and added latency of directed links `(from, to)`.
    rules: LinkRules<usize>,
    /// Directed links with a delay or drops (what the split-brain check
    /// calls a link fault).
    pub(crate) faults: BTreeMap<(usize, usize), LinkFault>,
}

impl Deref for Net {
    type Target = LinkRules<usize>;

    fn deref(&self) -> &LinkRules<usize> {
        &self.rules
    }
}

impl Net {
    /// Whether `from → to` delivers (is not cut).
    pub(crate) fn passes(&self, from: usize, to: usize) -> bool {
        self.rules.passes(&from, &to)
    }

    /// Opens a connection from `a` (the dialer) to `b`; its id. The
    /// receivers read `read_bytes` at a time (a → b, b → a) and decode
    /// frames of at most `max_frame_bytes` (the handshake's bound, until
    /// [`authenticated`](Self::authenticated)).
    pub(crate) fn open(
        &mut self,
        a: End,
        b: End,
        max_frame_bytes: usize,
        read_bytes: [usize; 2],
    ) -> u64 {
        self.next_conn += 1;
        let dir = |from: usize, to: usize, read_bytes: usize| Direction {
            pipe: PipeCore::new(PIPE_BYTES, self.rules.link(&from, &to)),
            decoder: FrameDecoder::new(max_frame_bytes),
            read_bytes: read_bytes.max(1),
            wake: None,
        };
        let dirs = [
            dir(a.node, b.node, read_bytes[0]),
            dir(b.node, a.node, read_bytes[1]),
        ];
        self.conns.insert(
            self.next_conn,
            Conn {
                a,
                b,
                dirs,
                open: [true, true],
            },
        );
        self.next_conn
    }

    /// `from` writes a frame's `bytes` on `conn` at `now`; `jitter` (added
    /// to the base latency) and `roll` (in 0.0..1.0, for the drop) come
    /// from the world's generator. Only a `droppable` frame may be dropped.
    pub(crate) fn send(
        &mut self,
        conn: u64,
        from: usize,
        now: Duration,
        (jitter, roll): (Duration, f64),
        droppable: bool,
        bytes: &[u8],
    ) -> Sent {
        let Some(c) = self.conns.get_mut(&conn) else {
            return Sent::Lost("connection closed");
        };
        let Some(d) = c.direction(from) else {
            return Sent::Lost("not an end");
        };
        if !c.open[d] {
            return Sent::Lost("connection closed");
        }
        let to = c.other(from).node;
        let drop = self.faults.get(&(from, to)).map_or(0.0, |f| f.drop);
        if droppable && drop > 0.0 && roll < drop {
            return Sent::Lost("frame dropped");
        }
        let dir = &mut c.dirs[d];
        if dir.pipe.room() < bytes.len() {
            return Sent::Full;
        }
        match dir.pipe.write(now + BASE_LATENCY + jitter, bytes) {
            Ok(Wrote::Bytes(_)) => {}
            Ok(Wrote::Full) => return Sent::Full,
            Err(_) => return Sent::Lost("connection closed"),
        }
        match Self::schedule(dir, conn, to, now) {
            Some(w) => Sent::Deliver(w),
            None => Sent::Queued,
        }
    }

    /// The delivery to schedule for `dir` (of `conn`, to `to`) at `now`:
    /// at the pipe's next readable time, or now if the reader would find
    /// the end of the stream; none if one is pending or nothing is
    /// readable (empty, or cut).
    fn schedule(dir: &mut Direction, conn: u64, to: usize, now: Duration) -> Option<Wake> {
        if dir.wake.is_some() {
            return None;
        }
        let at = dir
            .pipe
            .readable_at()
            .or_else(|| dir.pipe.ended().then_some(now))?;
        dir.wake = Some(at);
        Some(Wake { conn, to, at })
    }

    /// The delivery event for `to` on `conn` fires at `now`: `to` reads
    /// what is readable, `read_bytes` at a time, into its decoder. `None`
    /// if the connection is closed.
    pub(crate) fn receive(&mut self, conn: u64, to: usize, now: Duration) -> Option<Received> {
        let c = self.conns.get_mut(&conn)?;
        let (me, from, d) = if c.b.node == to {
            (c.b, c.a, 0)
        } else if c.a.node == to {
            (c.a, c.b, 1)
        } else {
            return None;
        };
        // The reader's end: 1 - d (a reads direction 1).
        if !c.open[1 - d] {
            return None;
        }
        let dir = &mut c.dirs[d];
        dir.wake = None;
        let mut frames = Vec::new();
        let mut bad = None;
        let mut eof = false;
        while bad.is_none() {
            let decoder = &mut dir.decoder;
            match dir.pipe.read(now, dir.read_bytes, |b| decoder.push(b)) {
                Read::Data(_) => {}
                Read::Eof => {
                    eof = true;
                    break;
                }
                Read::Until(_) | Read::Wait => break,
            }
            loop {
                match dir.decoder.next_frame() {
                    Ok(Some(f)) => frames.push(f),
                    Ok(None) => break,
                    Err(e) => {
                        bad = Some(e.to_string());
                        break;
                    }
                }
            }
        }
        let next = if eof {
            None
        } else {
            Self::schedule(dir, conn, to, now)
        };
        Some(Received {
            me,
            from,
            frames,
            bad,
            eof,
            next,
        })
    }

    /// `node`'s end of `conn` is authenticated: its decoder takes frames
    /// up to `max` from now on (as the connection task's `authenticated`).
    pub(crate) fn authenticated(&mut self, conn: u64, node: usize, max: usize) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        // The reader's direction: b reads 0, a reads 1.
        let Some(d) = c.direction(node).map(|d| 1 - d) else {
            return;
        };
        c.dirs[d].decoder.set_max(max);
    }

    /// Cuts `from → to` (bytes on it are held until the heal).
    pub(crate) fn cut_one_way(&mut self, from: usize, to: usize) {
        self.rules.cut_one_way(from, to);
        let _none = self.apply(Duration::ZERO);
    }

    /// Cuts `a → b` and `b → a`.
    pub(crate) fn cut(&mut self, a: usize, b: usize) {
        self.rules.cut_one_way(a, b);
        self.rules.cut_one_way(b, a);
        let _none = self.apply(Duration::ZERO);
    }

    /// Adds `delay` to the latency of `from → to` (bytes written from now
    /// on).
    pub(crate) fn set_delay(&mut self, from: usize, to: usize, delay: Duration) {
        self.rules.set_latency_one_way(from, to, delay);
        self.faults.entry((from, to)).or_default();
        let _none = self.apply(Duration::ZERO);
    }

    /// Makes `from → to` drop a `droppable` frame with probability `p`.
    pub(crate) fn set_drop(&mut self, from: usize, to: usize, p: f64) {
        self.faults.entry((from, to)).or_default().drop = p;
    }

    /// Heals every cut; the deliveries of what was held, to schedule.
    #[must_use]
    pub(crate) fn heal_cuts(&mut self, now: Duration) -> Vec<Wake> {
        self.rules.heal_all();
        self.apply(now)
    }

    /// Clears every added delay and drop.
    pub(crate) fn clear_faults(&mut self) {
        self.rules.clear_latency();
        self.faults.clear();
        let _none = self.apply(Duration::ZERO);
    }

    /// Heals every cut and clears every delay and drop; the deliveries to
    /// schedule.
    #[must_use]
    pub(crate) fn heal(&mut self, now: Duration) -> Vec<Wake> {
        self.clear_faults();
        self.heal_cuts(now)
    }

    /// Applies the rules to every open connection; the deliveries that a
    /// heal made due.
    fn apply(&mut self, now: Duration) -> Vec<Wake> {
        let mut wakes = Vec::new();
        for (id, c) in &mut self.conns {
            let (a, b) = (c.a.node, c.b.node);
            for (d, (from, to)) in [(a, b), (b, a)].into_iter().enumerate() {
                let dir = &mut c.dirs[d];
                dir.pipe.set_link(self.rules.link(&from, &to));
                // Only a reader still there is woken (1 - d reads d).
                if c.open[1 - d] {
                    wakes.extend(Self::schedule(dir, *id, to, now));
                }
            }
        }
        wakes
    }

    /// `node` closes its end of `conn` (as a stream dropped): the other end
    /// reads what the pipe holds, then the end of the stream (a cut holds
    /// both); what `node` had not read is gone. Its ends and the delivery
    /// to schedule for the other end, if `node`'s end was open.
    pub(crate) fn close(
        &mut self,
        conn: u64,
        node: usize,
        now: Duration,
    ) -> Option<(End, End, Option<Wake>)> {
        let c = self.conns.get_mut(&conn)?;
        let d = c.direction(node)?;
        if !c.open[d] {
            return None;
        }
        c.open[d] = false;
        let (me, other) = (if d == 0 { c.a } else { c.b }, c.other(node));
        c.dirs[d].pipe.shutdown();
        c.dirs[1 - d].pipe.reader_gone();
        c.dirs[1 - d].wake = None;
        let wake = if c.open[1 - d] {
            Self::schedule(&mut c.dirs[d], conn, other.node, now)
        } else {
            None
        };
        if c.open == [false, false] {
            self.conns.remove(&conn);
        }
        Some((me, other, wake))
    }

    /// Resets `conn`: both pipes lose what they held, and each end still
    /// there reads the end of the stream at its next read (the deliveries
    /// to schedule, one per end).
    pub(crate) fn reset(&mut self, conn: u64, now: Duration) -> Vec<Wake> {
        let Some(c) = self.conns.get_mut(&conn) else {
            return Vec::new();
        };
        let (a, b) = (c.a.node, c.b.node);
        let mut wakes = Vec::new();
        for (d, to) in [b, a].into_iter().enumerate() {
            let dir = &mut c.dirs[d];
            dir.pipe.reset();
            // A delivery pending for bytes now gone reads the end instead.
            dir.wake = None;
            if c.open[1 - d] {
                wakes.extend(Self::schedule(dir, conn, to, now));
            }
        }
        wakes
    }

    /// Every connection whose end at `node` is still open.
    pub(crate) fn conns_of(&self, node: usize) -> Vec<u64> {
        self.conns
            .iter()
            .filter(|(_, c)| (c.a.node == node && c.open[0]) || (c.b.node == node && c.open[1]))
            .map(|(id, _)| *id)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::remote::frame::encode_into;
    use crate::remote::DEFAULT_MAX_FRAME_BYTES;

    const MS: Duration = Duration::from_millis(1);

    /// A connection n0 → n1 whose receivers read `read` bytes at a time.
    fn net(read: usize) -> (Net, u64) {
        let mut net = Net::default();
        let end = |node| End {
            node,
            incarnation: 1,
        };
        let conn = net.open(end(0), end(1), DEFAULT_MAX_FRAME_BYTES, [read, read]);
        (net, conn)
    }

    fn ping(id: u64) -> Vec<u8> {
        let mut bytes = Vec::new();
        encode_into(
            &Frame::Ping { id, table: 1 },
            DEFAULT_MAX_FRAME_BYTES,
            &mut bytes,
        )
        .unwrap();
        bytes
    }

    fn ids(r: &Received) -> Vec<u64> {
        r.frames
            .iter()
            .map(|f| match f {
                Frame::Ping { id, .. } => *id,
                _ => u64::MAX,
            })
            .collect()
    }

    #[test]
    fn frames_arrive_after_the_latency_split_over_reads_and_in_order() {
        let (mut net, conn) = net(3);
        net.set_delay(0, 1, 10 * MS);
        let sent = net.send(conn, 0, MS, (Duration::ZERO, 0.9), true, &ping(1));
        let wake = Wake {
            conn,
            to: 1,
            at: MS + BASE_LATENCY + 10 * MS,
        };
        assert_eq!(sent, Sent::Deliver(wake));
        // One delivery pending: the next frame queues behind it.
        assert_eq!(
            net.send(conn, 0, 2 * MS, (Duration::ZERO, 0.9), true, &ping(2)),
            Sent::Queued
        );
        let r = net.receive(conn, 1, wake.at).unwrap();
        assert_eq!(ids(&r), [1], "read 3 bytes at a time, decoded whole");
        assert_eq!(r.next.map(|w| w.at), Some(wake.at + MS));
        let r = net.receive(conn, 1, wake.at + MS).unwrap();
        assert_eq!(ids(&r), [2]);
        assert_eq!(r.next, None);
    }

    #[test]
    fn a_cut_holds_what_was_sent_and_not_read_until_the_heal() {
        let (mut net, conn) = net(64);
        let Sent::Deliver(w) = net.send(conn, 0, MS, (Duration::ZERO, 0.9), true, &ping(1)) else {
            panic!("not delivered");
        };
        net.cut_one_way(0, 1);
        assert_eq!(
            net.send(conn, 0, 2 * MS, (Duration::ZERO, 0.9), true, &ping(2)),
            Sent::Queued
        );
        // Back the other way: not cut.
        assert!(matches!(
            net.send(conn, 1, 2 * MS, (Duration::ZERO, 0.9), true, &ping(3)),
            Sent::Deliver(_)
        ));
        let r = net.receive(conn, 1, w.at).unwrap();
        assert!(
            r.frames.is_empty() && r.next.is_none(),
            "held, even frame 1"
        );
        let wakes = net.heal_cuts(Duration::from_secs(1));
        assert_eq!(
            wakes,
            [Wake {
                conn,
                to: 1,
                at: w.at
            }]
        );
        let r = net.receive(conn, 1, Duration::from_secs(1)).unwrap();
        assert_eq!(ids(&r), [1, 2], "released in order");
    }

    #[test]
    fn only_droppable_frames_drop_and_a_closed_connection_takes_nothing() {
        let (mut net, conn) = net(64);
        net.set_drop(0, 1, 0.5);
        assert_eq!(
            net.send(conn, 0, MS, (Duration::ZERO, 0.4), true, &ping(1)),
            Sent::Lost("frame dropped")
        );
        assert!(matches!(
            net.send(conn, 0, MS, (Duration::ZERO, 0.4), false, &ping(2)),
            Sent::Deliver(_)
        ));
        assert!(net.close(conn, 0, MS).is_some());
        assert_eq!(
            net.send(conn, 0, MS, (Duration::ZERO, 0.9), true, &ping(3)),
            Sent::Lost("connection closed")
        );
        assert!(net.close(conn, 1, MS).is_some());
        assert!(net.receive(conn, 1, MS).is_none());
        assert!(net.conns.is_empty(), "both ends closed: gone");
    }

    #[test]
    fn a_graceful_close_delivers_what_was_in_flight_then_the_end() {
        let (mut net, conn) = net(5);
        let Sent::Deliver(w) = net.send(conn, 0, MS, (Duration::ZERO, 0.9), true, &ping(1)) else {
            panic!("not delivered");
        };
        assert_eq!(
            net.send(conn, 0, MS, (Duration::ZERO, 0.9), true, &ping(2)),
            Sent::Queued
        );
        // n0 closes before n1 read anything: nothing more to schedule (a
        // delivery is pending), and n0 can write no more.
        let (me, other, wake) = net.close(conn, 0, MS).unwrap();
        assert_eq!((me.node, other.node, wake), (0, 1, None));
        assert_eq!(
            net.send(conn, 0, MS, (Duration::ZERO, 0.9), true, &ping(3)),
            Sent::Lost("connection closed")
        );
        let r = net.receive(conn, 1, w.at).unwrap();
        assert_eq!(ids(&r), [1, 2], "what was in flight arrives");
        assert!(r.eof, "then the end of the stream");
        // n1 may still write until it reads the end; n0 reads nothing more.
        assert!(net.receive(conn, 0, w.at).is_none());
        assert!(net.close(conn, 1, w.at).is_some());
        assert!(net.conns.is_empty());
    }

    #[test]
    fn a_close_across_a_cut_is_held_with_the_bytes_until_the_heal() {
        let (mut net, conn) = net(64);
        net.cut_one_way(0, 1);
        assert_eq!(
            net.send(conn, 0, MS, (Duration::ZERO, 0.9), true, &ping(1)),
            Sent::Queued
        );
        let (_, _, wake) = net.close(conn, 0, 2 * MS).unwrap();
        assert_eq!(wake, None, "the end does not cross the cut");
        let at = Duration::from_secs(2);
        let wakes = net.heal_cuts(at);
        assert_eq!(wakes.len(), 1);
        let r = net.receive(conn, 1, at).unwrap();
        assert_eq!(ids(&r), [1]);
        assert!(r.eof);
    }

    #[test]
    fn a_reset_loses_what_the_pipes_held_and_each_end_reads_the_end() {
        let (mut net, conn) = net(64);
        let Sent::Deliver(w) = net.send(conn, 0, MS, (Duration::ZERO, 0.9), true, &ping(1)) else {
            panic!("not delivered");
        };
        assert!(matches!(
            net.send(conn, 1, MS, (Duration::ZERO, 0.9), true, &ping(2)),
            Sent::Deliver(_)
        ));
        let wakes = net.reset(conn, 2 * MS);
        assert_eq!(
            wakes,
            [
                Wake {
                    conn,
                    to: 1,
                    at: 2 * MS
                },
                Wake {
                    conn,
                    to: 0,
                    at: 2 * MS
                }
            ],
            "each end learns at its own delivery"
        );
        for to in [1, 0] {
            let r = net.receive(conn, to, w.at).unwrap();
            assert!(r.frames.is_empty() && r.eof, "n{to}: nothing but the end");
        }
        assert_eq!(
            net.send(conn, 0, 3 * MS, (Duration::ZERO, 0.9), true, &ping(3)),
            Sent::Lost("connection closed")
        );
    }
}
