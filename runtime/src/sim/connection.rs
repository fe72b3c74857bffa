//! A connection's life in the simulation, as the runtime's connection
//! task lives it (`remote/remoting/connect.rs`): a dial opens the pipes,
//! the handshake's sans-IO state machines (`remote/handshake.rs`) talk
//! through them, each end is connected when its own machine is done, and
//! gives up at its bound (the dialer's connect timeout, the listener's
//! handshake timeout).

use super::net::{End, BASE_LATENCY};
use super::node::{Peer, CONNECT_TIMEOUT, HANDSHAKE_TIMEOUT};
use super::world::{Ev, World};
use crate::remote::frame::{ConnKind, Frame, NodeInfo, Nonce};
use crate::remote::handshake::{
    Dialer, HandshakeConfig, HandshakeError, Listener, Step, PROTOCOLS,
};

/// The cluster the simulated nodes form, and its secret.
const CLUSTER: &str = "sim";
const SECRET: &[u8] = b"sim-cluster-secret";
/// The range of a receiver's read size (bytes per read of its stream).
const READ_BYTES: (usize, usize) = (16, 1024);

/// A connection in its handshake, as one end holds it (the runtime's
/// sans-IO state machines, `remote/handshake.rs`).
#[derive(Debug)]
pub(crate) enum Shake {
    /// This node dialed `to`.
    Dialing { to: usize, hs: Dialer },
    /// `from` dialed this node; `hello`: its `Hello` was read.
    Accepting {
        from: usize,
        hs: Listener,
        hello: bool,
    },
}

impl World {
    /// Dials `to` from `i` unless connected, dialing already, or in an
    /// inbound handshake from `to` (whose `Hello` it read).
    pub(crate) fn dial(&mut self, i: usize, to: usize) {
        let Some(n) = self.nodes[i].as_mut() else {
            return;
        };
        if to == i || to >= self.incarnations.len() || n.peers.contains_key(&to) {
            return;
        }
        let accepting = n
            .shakes
            .values()
            .any(|s| matches!(s, Shake::Accepting { from, hello: true, .. } if *from == to));
        if accepting || !n.dialing.insert(to) {
            return;
        }
        let from = n.end(i);
        if self.nodes[to].is_none() {
            // Nobody listens: refused after a round trip, as
            // `MemoryNetwork::connect` answers it.
            let rtt = BASE_LATENCY * 2 + self.net.round_trip(&i, &to);
            self.after(rtt, Ev::DialRefused { from, to });
            return;
        }
        self.connect(i, to);
    }

    /// A dial of `to` was refused (nobody listens): not a hang.
    pub(crate) fn dial_refused(&mut self, from: End, to: usize) {
        if let Some(n) = self.live(from) {
            n.dialing.remove(&to);
        }
    }

    /// The handshake config of node `i` (a wrong secret for the last node
    /// under [`Sabotage::WrongSecret`](super::Sabotage::WrongSecret)).
    fn hs_config(&self, i: usize) -> Option<HandshakeConfig> {
        let n = self.nodes[i].as_ref()?;
        let wrong = self.sabotage == super::Sabotage::WrongSecret && i + 1 == self.nodes.len();
        Some(HandshakeConfig {
            cluster: CLUSTER.into(),
            secret: if wrong {
                b"wrong".to_vec()
            } else {
                SECRET.to_vec()
            },
            local: n.info.clone(),
            protocols: PROTOCOLS,
        })
    }

    /// A nonce from the seeded generator.
    fn nonce(&mut self) -> Nonce {
        let mut out = [0u8; 32];
        for part in out.chunks_mut(8) {
            part.copy_from_slice(&self.rng.next_u64().to_le_bytes());
        }
        out
    }

    /// Opens a connection from `i` to `to` (which runs): both ends start
    /// their handshake, and the dialer writes its `Hello` into the pipe.
    /// The dialer gives up after `CONNECT_TIMEOUT`, the listener after
    /// `HANDSHAKE_TIMEOUT`, as the runtime's connection task does.
    fn connect(&mut self, i: usize, to: usize) {
        let (Some(cd), Some(cl)) = (self.hs_config(i), self.hs_config(to)) else {
            return;
        };
        let (Some(ea), Some(eb)) = (
            self.nodes[i].as_ref().map(|n| n.end(i)),
            self.nodes[to].as_ref().map(|n| n.end(to)),
        ) else {
            return;
        };
        // Each receiver's read size, picked by the seed: small enough that
        // frames arrive split over reads.
        let (lo, hi) = (READ_BYTES.0 as u64, READ_BYTES.1 as u64);
        let read_bytes = [
            self.rng.range(lo, hi) as usize,
            self.rng.range(lo, hi) as usize,
        ];
        let conn = self.net.open(
            ea,
            eb,
            crate::remote::frame::DEFAULT_MAX_HANDSHAKE_FRAME_BYTES,
            read_bytes,
        );
        let (nd, nl) = (self.nonce(), self.nonce());
        let (dialer, hello) = Dialer::start(cd, ConnKind::Data, nd);
        if let Some(n) = self.nodes[i].as_mut() {
            n.shakes.insert(conn, Shake::Dialing { to, hs: dialer });
        }
        if let Some(n) = self.nodes[to].as_mut() {
            let hs = Listener::new(cl, nl);
            let hello = false;
            n.shakes
                .insert(conn, Shake::Accepting { from: i, hs, hello });
        }
        self.note(
            &Self::name(i),
            format_args!("dial {} (conn {conn})", Self::name(to)),
        );
        self.send(i, conn, &hello);
        self.after(CONNECT_TIMEOUT, Ev::ShakeTimeout { at: ea, conn });
        self.after(HANDSHAKE_TIMEOUT, Ev::ShakeTimeout { at: eb, conn });
    }

    /// The handshake of `conn` at `at` is not done by its bound: that end
    /// gives up and closes. A dialer's give-up is a hang (what the join
    /// step's seed rule reads).
    pub(crate) fn shake_timeout(&mut self, at: End, conn: u64) {
        let hang = self.base + self.now;
        let Some(n) = self.live(at) else { return };
        let Some(s) = n.shakes.get(&conn) else { return };
        if matches!(s, Shake::Dialing { .. }) {
            n.last_seed_hang = Some(hang);
        }
        self.close_conn(conn, at.node, "no handshake within its timeout");
    }

    /// Node `i` reads a handshake frame on `conn` (from `from`): its state
    /// machine answers, finishes (the connection is established at this
    /// end) or refuses (the listener sends the refusal; the end closes).
    pub(crate) fn shake(&mut self, i: usize, from: usize, conn: u64, frame: Frame) {
        let Some(n) = self.nodes[i].as_mut() else {
            return;
        };
        let Some(s) = n.shakes.get_mut(&conn) else {
            return;
        };
        let (step, listening) = match s {
            Shake::Dialing { hs, .. } => (hs.on_frame(frame), false),
            Shake::Accepting { hs, hello, .. } => {
                *hello = true;
                (hs.on_frame(frame), true)
            }
        };
        match step {
            Ok(Step::Send(f)) => self.send(i, conn, &f),
            Ok(Step::Done(f, out)) => {
                if let Some(Shake::Dialing { to, .. }) = n.shakes.remove(&conn) {
                    n.dialing.remove(&to);
                }
                if let Some(f) = f {
                    self.send(i, conn, &f);
                }
                self.establish(i, from, conn, out.peer);
            }
            Err(e) => {
                self.note(
                    &Self::name(i),
                    format_args!("handshake with {} failed: {e}", Self::name(from)),
                );
                let refuse = listening || e == HandshakeError::BadProof;
                if refuse {
                    self.send(i, conn, &Listener::refusal(&e));
                }
                self.close_conn(conn, i, "handshake failed");
            }
        }
    }

    /// The handshake of `conn` is done at `i`: `j` is its peer. Node `i`
    /// announces it to membership and sends its table, as the handshake's
    /// end does in the runtime. Of two connections to the same incarnation
    /// of a peer (both dialed at once), both ends keep the one dialed by
    /// the lower index, as the runtime keeps the one dialed by the smaller
    /// name; the other closes here (the runtime retires it).
    fn establish(&mut self, i: usize, j: usize, conn: u64, info: NodeInfo) {
        let Some(old) = self.nodes[i]
            .as_ref()
            .map(|n| n.peers.get(&j).map(|p| (p.conn, p.info.incarnation)))
        else {
            return;
        };
        if let Some((old, inc)) = old.filter(|(old, _)| *old != conn) {
            let dialer = |c: u64| self.net.conns.get(&c).map_or(usize::MAX, |c| c.dialer());
            if inc == info.incarnation && dialer(old) < dialer(conn) {
                self.close_conn(conn, i, "duplicate connection");
                return;
            }
            self.close_conn(old, i, "duplicate connection");
        }
        self.net
            .authenticated(conn, i, crate::remote::DEFAULT_MAX_FRAME_BYTES);
        self.note(
            &Self::name(i),
            format_args!("connected to {} (conn {conn})", info.name),
        );
        let now = self.now;
        let e = self.nodes[i].as_mut().map(|n| {
            n.peers.insert(
                j,
                Peer {
                    conn,
                    info: info.clone(),
                    heard: now,
                    table: None,
                    asked: 0,
                },
            );
            n.membership.announce(info)
        });
        if let Some(e) = e {
            self.apply(i, e);
        }
        if let Some(f) = self.nodes[i].as_ref().map(|n| Frame::Table {
            version: n.version,
            services: n.services.clone(),
            members: Vec::new(),
        }) {
            self.send(i, conn, &f);
        }
    }
}
