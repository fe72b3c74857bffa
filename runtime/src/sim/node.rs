//! A simulated node: the runtime's real membership (foca) and reachability
//! judge, its service table, its connections' peers and its open asks; and
//! what the world does for it (start, crash, periodic duties, membership's
//! effects, dials), as the remoting driver does for a real node.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::net::{End, BASE_LATENCY};
use super::world::{Ev, Tick, World};
use crate::remote::frame::{ConnKind, Frame, NodeInfo, Nonce, ServiceAd};
use crate::remote::handshake::{Dialer, HandshakeConfig, Listener, PROTOCOLS};
use crate::remote::join::JoinGate;
use crate::remote::membership::{membership_config_for, Effects, Member, Membership, TableVersion};
use crate::remote::reachability::{Observation, Reachability};

/// The timing the simulated nodes use: the runtime's defaults.
pub(crate) const HEARTBEAT: Duration = Duration::from_millis(500);
/// A connection silent this long is closed.
pub(crate) const DEAD_AFTER: Duration = Duration::from_secs(3);
/// Membership's failure-detection bound.
pub(crate) const DETECTION: Duration = Duration::from_secs(5);
/// The bound on a dial, its handshake included (the runtime's
/// `connect_timeout`).
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// The bound on an inbound handshake (the runtime's `handshake_timeout`).
pub(crate) const HANDSHAKE_TIMEOUT: Duration = crate::remote::remoting::DEFAULT_HANDSHAKE_TIMEOUT;
/// The cluster the simulated nodes form, and its secret.
const CLUSTER: &str = "sim";
const SECRET: &[u8] = b"sim-cluster-secret";
/// The range of a receiver's read size (bytes per read of its stream).
const READ_BYTES: (usize, usize) = (16, 1024);
/// A reachability report is gossiped again after this many quiet judgements.
const REPORT_EVERY_TICKS: u32 = 16;

/// A connected peer, as one node holds it.
#[derive(Debug)]
pub(crate) struct Peer {
    pub(crate) conn: u64,
    pub(crate) info: NodeInfo,
    /// When something last arrived from it.
    pub(crate) heard: Duration,
    /// Its service table (version, services), once fetched.
    pub(crate) table: Option<(u64, Vec<ServiceAd>)>,
    /// The highest table version asked for (as `Peer::want_table` keeps
    /// it: a version is asked for once per connection).
    pub(crate) asked: u64,
}

impl Peer {
    /// The peer's table is at `version`: `true` if a request must go out
    /// (not held, not asked for yet), as `remote/peer.rs` decides.
    pub(crate) fn want_table(&mut self, version: u64) -> bool {
        let held = self.table.as_ref().map_or(0, |t| t.0);
        if version <= held || self.asked >= version {
            return false;
        }
        self.asked = version;
        true
    }
}

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

/// An ask waiting for its reply.
#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) msg: u64,
    pub(crate) conn: u64,
    pub(crate) service: String,
    pub(crate) node: String,
    pub(crate) timeout: Duration,
}

/// One simulated node.
pub(crate) struct SimNode {
    pub(crate) info: NodeInfo,
    pub(crate) membership: Membership,
    pub(crate) reach: Reachability,
    pub(crate) version: u64,
    pub(crate) services: Vec<ServiceAd>,
    pub(crate) peers: BTreeMap<usize, Peer>,
    pub(crate) dialing: BTreeSet<usize>,
    /// Connections in their handshake, by id.
    pub(crate) shakes: BTreeMap<u64, Shake>,
    pub(crate) pending: BTreeMap<u64, Pending>,
    pub(crate) next_id: u64,
    quiet: u32,
    /// The split-brain resolver, when the policy is on.
    pub(crate) sbr: Option<super::sbr::SbrNode>,
    /// The join step (`remote/join.rs`): joining until admitted.
    pub(crate) join: JoinGate,
    /// When a dial to a seed last hung (no answer by the connect timeout).
    pub(crate) last_seed_hang: Option<std::time::Instant>,
    /// Whether every member this node counts was reachable at its last
    /// judgement (what an admission needs).
    pub(crate) converged: bool,
}

impl SimNode {
    /// Whether the split-brain resolver downed this node.
    pub(crate) fn self_downed(&self) -> bool {
        self.sbr.as_ref().is_some_and(|s| s.self_downed)
    }

    /// Whether this node serves as a member: admitted (`Up`) and not
    /// downed.
    pub(crate) fn serving(&self) -> bool {
        !self.self_downed() && self.join.is_up()
    }
}

impl std::fmt::Debug for SimNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimNode")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl SimNode {
    /// This node as an end of a connection.
    pub(crate) fn end(&self, index: usize) -> End {
        End {
            node: index,
            incarnation: self.info.incarnation,
        }
    }
}

/// The advertised form of a node's services at `version`.
pub(crate) fn table(names: &[String], extra: bool, incarnation: u64) -> Vec<ServiceAd> {
    let mut v: Vec<ServiceAd> = names
        .iter()
        .map(|n| ServiceAd {
            name: n.clone(),
            slots: vec![(0, incarnation)],
            messages: vec!["sim.Op".into()],
            keyed: n == "kv",
        })
        .collect();
    if extra {
        v.push(ServiceAd {
            name: "extra".into(),
            slots: vec![(0, incarnation)],
            messages: vec!["sim.Op".into()],
            keyed: false,
        });
    }
    v
}

impl World {
    /// Starts node `i` with a new incarnation.
    pub(crate) fn start(&mut self, i: usize) {
        self.incarnations[i] += 1;
        let incarnation = self.incarnations[i];
        let info = NodeInfo {
            name: Self::name(i),
            addr: format!("sim:{i}"),
            incarnation,
        };
        let seed = self.cfg.seed.wrapping_mul(1_000_003) ^ ((i as u64) << 32) ^ incarnation;
        // n0's first start founds the cluster (no seeds); every other start
        // has every other node as a seed, as a static seed list would.
        let has_seeds =
            !(i == 0 && incarnation == 1) && self.sabotage != super::Sabotage::NoJoinStep;
        let node = SimNode {
            info: info.clone(),
            membership: Membership::new(info, membership_config_for(DETECTION), seed),
            reach: Reachability::new((DEAD_AFTER / 2).max(HEARTBEAT * 2)),
            version: 1,
            services: table(&self.services[i], false, incarnation),
            peers: BTreeMap::new(),
            dialing: BTreeSet::new(),
            shakes: BTreeMap::new(),
            pending: BTreeMap::new(),
            next_id: 0,
            quiet: 0,
            sbr: self
                .cfg
                .split_brain
                .filter(|_| self.sabotage != super::Sabotage::NoResolver)
                .map(|c| super::sbr::SbrNode::new(&Self::name(i), c)),
            join: JoinGate::new(&Self::name(i), incarnation, self.base + self.now, has_seeds),
            last_seed_hang: None,
            converged: false,
        };
        self.changed = self.now;
        let rejoin = node.membership.rejoin_interval();
        let at = node.end(i);
        self.nodes[i] = Some(node);
        self.note(
            &Self::name(i),
            format_args!("start incarnation {incarnation}"),
        );
        let e = self.nodes[i].as_mut().map(|n| {
            n.membership.publish_table(TableVersion {
                node: n.info.name.clone(),
                incarnation,
                version: 1,
            })
        });
        if let Some(e) = e {
            self.apply(i, e);
        }
        let jitter = Duration::from_millis(self.rng.below(100));
        self.after(
            HEARTBEAT + jitter,
            Ev::Tick {
                at,
                tick: Tick::Heartbeat,
            },
        );
        self.after(
            HEARTBEAT / 2 + jitter,
            Ev::Tick {
                at,
                tick: Tick::Judge,
            },
        );
        self.after(
            rejoin + jitter,
            Ev::Tick {
                at,
                tick: Tick::Rejoin,
            },
        );
        self.after(
            jitter,
            Ev::Tick {
                at,
                tick: Tick::Seed,
            },
        );
    }

    /// Crashes node `i`: its state is lost, its connections reset.
    pub(crate) fn crash(&mut self, i: usize) {
        let Some(node) = self.nodes[i].take() else {
            return;
        };
        self.changed = self.now;
        self.note(
            &node.info.name,
            format_args!("crash incarnation {}", node.info.incarnation),
        );
        for (_, p) in node.pending {
            self.checker
                .ask_ended(p.msg, self.now, "CallerCrashed".into());
        }
        // Its streams are dropped: each peer reads what they held, then
        // their end (not across a cut).
        for conn in self.net.conns_of(i) {
            self.close_conn(conn, i, "crash");
        }
    }

    /// One periodic duty of the node `at`.
    pub(crate) fn tick(&mut self, at: End, tick: Tick) {
        let i = at.node;
        let every = match tick {
            Tick::Heartbeat => {
                self.heartbeat(i);
                HEARTBEAT
            }
            Tick::Judge => {
                self.judge(i);
                HEARTBEAT / 2
            }
            Tick::Rejoin => {
                let Some(n) = self.live(at) else { return };
                let every = n.membership.rejoin_interval();
                let e = n.membership.rejoin();
                self.apply(i, e);
                every
            }
            Tick::Seed => {
                let seed = usize::from(i == 0);
                let joining = self.live(at).is_some_and(|n| !n.join.is_up());
                // While joining, every seed (every other node) is dialed.
                let seeds: Vec<usize> = if joining {
                    (0..self.nodes.len()).filter(|j| *j != i).collect()
                } else {
                    vec![seed]
                };
                for seed in seeds {
                    let connected = self.live(at).is_some_and(|n| n.peers.contains_key(&seed));
                    if !connected {
                        self.dial(i, seed);
                    }
                }
                Duration::from_secs(1)
            }
        };
        self.after(every, Ev::Tick { at, tick });
    }

    /// Pings every peer; closes connections silent for `DEAD_AFTER`.
    fn heartbeat(&mut self, i: usize) {
        let now = self.now;
        let Some(n) = self.nodes[i].as_mut() else {
            return;
        };
        let mut silent = Vec::new();
        let mut pings = Vec::new();
        for p in n.peers.values() {
            if now.saturating_sub(p.heard) >= DEAD_AFTER {
                silent.push(p.conn);
            } else {
                pings.push(p.conn);
            }
        }
        let table = n.version;
        for conn in silent {
            self.close_conn(conn, i, "silent");
        }
        for conn in pings {
            let id = self.nodes[i].as_mut().map_or(0, |n| {
                n.next_id += 1;
                n.next_id
            });
            self.send(i, conn, &Frame::Ping { id, table });
        }
    }

    /// The reachability judgement, as `remoting/reach.rs` makes it.
    fn judge(&mut self, i: usize) {
        let base = self.base;
        let now = base + self.now;
        let Some(n) = self.nodes[i].as_mut() else {
            return;
        };
        let mut expected: Vec<NodeInfo> = n
            .membership
            .view()
            .into_iter()
            .filter(|(info, s)| info.name != n.info.name && matches!(*s, "alive" | "suspect"))
            .map(|(info, _)| info)
            .collect();
        for p in n.peers.values() {
            if !expected.iter().any(|e| e.name == p.info.name) {
                expected.push(p.info.clone());
            }
        }
        expected.sort_by(|a, b| a.name.cmp(&b.name));
        expected.dedup_by(|a, b| a.name == b.name);
        let observed: Vec<Observation> = expected
            .into_iter()
            .map(|info| {
                let heard = Self::index(&info.name)
                    .and_then(|j| n.peers.get(&j))
                    .filter(|p| p.info.incarnation >= info.incarnation)
                    .map(|p| base + p.heard);
                Observation {
                    name: info.name,
                    incarnation: info.incarnation,
                    heard,
                }
            })
            .collect();
        let changes = n.reach.step(now, &observed);
        for name in &changes.unreachable {
            if let Some(p) = Self::index(name).and_then(|j| n.peers.get_mut(&j)) {
                p.table = None;
                p.asked = 0;
            }
        }
        n.quiet += 1;
        let report = (!changes.is_empty() || n.quiet >= REPORT_EVERY_TICKS).then(|| {
            n.quiet = 0;
            let r = n.reach.own_report(&n.info.name, n.info.incarnation);
            n.membership.publish_reach(&r)
        });
        let name = Self::name(i);
        for u in &changes.unreachable {
            self.note(&name, format_args!("unreachable {u}"));
        }
        for r in &changes.reachable {
            self.note(&name, format_args!("reachable {r}"));
        }
        if let Some(e) = report {
            self.apply(i, e);
        }
        self.sbr_step(i);
        self.join_step(i);
    }

    /// Carries out what membership asked of node `i`, as the membership
    /// driver does.
    pub(crate) fn apply(&mut self, i: usize, e: Effects) {
        let now = self.now;
        let name = Self::name(i);
        for (to, payload) in e.send {
            let Some(j) = Self::index(&to.info.name) else {
                continue;
            };
            let conn = self.nodes[i]
                .as_ref()
                .and_then(|n| n.peers.get(&j))
                .map(|p| p.conn);
            match conn {
                Some(conn) => self.send(i, conn, &Frame::Membership { payload }),
                None => self.dial(i, j),
            }
        }
        let Some(at) = self.nodes[i].as_ref().map(|n| n.end(i)) else {
            return;
        };
        for (after, timer) in e.timers {
            self.at(now + after, Ev::Timer { at, timer });
        }
        for t in e.tables {
            let Some(j) = Self::index(&t.node) else {
                continue;
            };
            let fetch = self.nodes[i].as_mut().and_then(|n| {
                let p = n.peers.get_mut(&j)?;
                let want = p.info.incarnation == t.incarnation && p.want_table(t.version);
                want.then_some(p.conn)
            });
            if let Some(conn) = fetch {
                self.send(i, conn, &Frame::TableRequest);
            }
        }
        if let Some(n) = self.nodes[i].as_mut() {
            for r in e.reports {
                n.reach.on_report(r);
            }
            for s in e.joins {
                n.join.on_state(s);
            }
        }
        for m in e.up {
            self.note(
                &name,
                format_args!("member up {} ({})", m.info.name, m.info.incarnation),
            );
            if let Some(sbr) = self.nodes[i].as_mut().and_then(|n| n.sbr.as_mut()) {
                sbr.member_up(&m.info);
            }
            if let Some(j) = Self::index(&m.info.name) {
                self.dial(i, j);
            }
        }
        for m in e.down {
            self.note(
                &name,
                format_args!("member down {} ({})", m.info.name, m.info.incarnation),
            );
            self.declare_down(i, &m);
        }
    }

    /// A member declared down: its connection closes.
    fn declare_down(&mut self, i: usize, m: &Member) {
        let conn = Self::index(&m.info.name).and_then(|j| {
            self.nodes[i]
                .as_ref()?
                .peers
                .get(&j)
                .filter(|p| p.info.incarnation <= m.info.incarnation)
                .map(|p| p.conn)
        });
        if let Some(conn) = conn {
            self.close_conn(conn, i, "declared down");
        }
    }

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
            Ok(crate::remote::handshake::Step::Send(f)) => self.send(i, conn, &f),
            Ok(crate::remote::handshake::Step::Done(f, out)) => {
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
                let refuse = listening || e == crate::remote::handshake::HandshakeError::BadProof;
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
