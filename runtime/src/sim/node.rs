//! A simulated node: the runtime's real membership (foca) and reachability
//! judge, its service table, its connections' peers and its open asks; and
//! what the world does for it (start, crash, periodic duties, membership's
//! effects, dials), as the remoting driver does for a real node.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::connection::Shake;
use super::net::End;
use super::world::{Ev, Tick, World};
use crate::remote::frame::{Frame, NodeInfo, ServiceAd};
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
        // has the seed list n0, n1, ... (a static seed list naming every
        // node, the same on each), so n0 is the first seed: the only node
        // that may be up alone (`remote/join.rs`).
        let has_seeds =
            !(i == 0 && incarnation == 1) && self.sabotage != super::Sabotage::NoJoinStep;
        let mut join = JoinGate::new(&Self::name(i), incarnation, self.base + self.now, has_seeds);
        join.set_first_seed(i == 0);
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
            join,
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
}
