//! The simulated network: connections between nodes carrying encoded frames
//! as byte streams, per directed link delay, cuts (one-way or both ways),
//! dropped whole frames, and resets. Its state is ordered maps only.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::remote::frame::FrameDecoder;

/// One end of a connection: its node and that node's incarnation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct End {
    pub(crate) node: usize,
    pub(crate) incarnation: u64,
}

/// An open connection (after the handshake).
#[derive(Debug)]
pub(crate) struct Conn {
    /// The dialer.
    pub(crate) a: End,
    /// The listener.
    pub(crate) b: End,
    /// Per direction (0: a → b, 1: b → a): the arrival time of the last
    /// frame sent, so a stream stays in order.
    last_arrival: [Duration; 2],
    /// Per direction: the receiver's decoder of the byte stream.
    pub(crate) decoders: [FrameDecoder; 2],
}

impl Conn {
    /// The direction index of frames sent by `from` (`None`: not an end).
    pub(crate) fn direction(&self, from: usize) -> Option<usize> {
        if self.a.node == from {
            Some(0)
        } else if self.b.node == from {
            Some(1)
        } else {
            None
        }
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

/// Faults of one directed link.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LinkFault {
    /// Extra one-way delay.
    pub(crate) delay: Duration,
    /// Probability of dropping a whole frame.
    pub(crate) drop: f64,
}

/// A frame held on a cut link: its connection and bytes.
pub(crate) type Held = (u64, Vec<u8>);

/// Links, connections and faults.
#[derive(Debug, Default)]
pub(crate) struct Net {
    pub(crate) conns: BTreeMap<u64, Conn>,
    next_conn: u64,
    /// Directed links `(from, to)` that carry nothing.
    pub(crate) cut: BTreeSet<(usize, usize)>,
    /// Directed links with extra delay or loss.
    pub(crate) faults: BTreeMap<(usize, usize), LinkFault>,
    /// The base one-way latency.
    pub(crate) latency: Duration,
    /// Frames sent on a cut link, held (as the transport's fault layer
    /// holds them) until the cut heals or their connection closes.
    pub(crate) held: BTreeMap<(usize, usize), Vec<Held>>,
}

/// What became of a frame handed to the network.
#[derive(Debug, PartialEq)]
pub(crate) enum Sent {
    /// It arrives at this time.
    At(Duration),
    /// The link is cut: it waits for the heal.
    Held,
    /// The link dropped it (or the connection is closed).
    Lost(&'static str),
}

impl Net {
    /// A network with `latency` one way.
    pub(crate) fn new(latency: Duration) -> Self {
        Self {
            latency,
            ..Self::default()
        }
    }

    /// Whether `from → to` carries frames.
    pub(crate) fn passes(&self, from: usize, to: usize) -> bool {
        !self.cut.contains(&(from, to))
    }

    /// Opens a connection; its id.
    pub(crate) fn open(&mut self, a: End, b: End, max_frame_bytes: usize) -> u64 {
        self.next_conn += 1;
        self.conns.insert(
            self.next_conn,
            Conn {
                a,
                b,
                last_arrival: [Duration::ZERO; 2],
                decoders: [
                    FrameDecoder::new(max_frame_bytes),
                    FrameDecoder::new(max_frame_bytes),
                ],
            },
        );
        self.next_conn
    }

    /// When a frame sent now by `from` on `conn` arrives; `jitter` and
    /// `roll` (in 0.0..1.0, for the drop) come from the world's generator.
    pub(crate) fn send(
        &mut self,
        conn: u64,
        from: usize,
        now: Duration,
        jitter: Duration,
        roll: f64,
        droppable: bool,
    ) -> Sent {
        let latency = self.latency;
        let Some(c) = self.conns.get_mut(&conn) else {
            return Sent::Lost("connection closed");
        };
        let Some(dir) = c.direction(from) else {
            return Sent::Lost("not an end");
        };
        let to = c.other(from).node;
        if self.cut.contains(&(from, to)) {
            return Sent::Held;
        }
        let fault = self.faults.get(&(from, to)).copied().unwrap_or_default();
        if droppable && fault.drop > 0.0 && roll < fault.drop {
            return Sent::Lost("frame dropped");
        }
        let at = (now + latency + jitter + fault.delay).max(c.last_arrival[dir]);
        c.last_arrival[dir] = at;
        Sent::At(at)
    }

    /// When a held frame released now by `from` on `conn` arrives (`None`:
    /// the connection closed meanwhile).
    pub(crate) fn release(&mut self, conn: u64, from: usize, now: Duration) -> Option<Duration> {
        let latency = self.latency;
        let c = self.conns.get_mut(&conn)?;
        let dir = c.direction(from)?;
        let at = (now + latency).max(c.last_arrival[dir]);
        c.last_arrival[dir] = at;
        Some(at)
    }

    /// The held frames of links no longer cut, in the order they were sent.
    pub(crate) fn releasable(&mut self) -> Vec<(usize, usize, u64, Vec<u8>)> {
        let free: Vec<(usize, usize)> = self
            .held
            .keys()
            .filter(|l| !self.cut.contains(l))
            .copied()
            .collect();
        let mut out = Vec::new();
        for l in free {
            for (conn, bytes) in self.held.remove(&l).unwrap_or_default() {
                out.push((l.0, l.1, conn, bytes));
            }
        }
        out
    }

    /// Closes `conn`; its ends, if it was open.
    pub(crate) fn close(&mut self, conn: u64) -> Option<(End, End)> {
        let c = self.conns.remove(&conn)?;
        for held in self.held.values_mut() {
            held.retain(|(id, _)| *id != conn);
        }
        Some((c.a, c.b))
    }

    /// Every open connection with `node` as an end.
    pub(crate) fn conns_of(&self, node: usize) -> Vec<u64> {
        self.conns
            .iter()
            .filter(|(_, c)| c.a.node == node || c.b.node == node)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Clears every cut and link fault.
    pub(crate) fn heal(&mut self) {
        self.cut.clear();
        self.faults.clear();
    }
}
