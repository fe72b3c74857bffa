//! Membership and failure detection with foca (SWIM).
//!
//! Why foca: it is sans-IO (no sockets, no clock of its own), so msa's
//! authenticated TCP connections carry its messages (membership cannot be
//! spoofed by an unauthenticated sender) and tests drive it with a fake
//! clock; Fly.io's Corrosion runs it in production. chitchat was the
//! alternative; it owns its UDP transport, which would need its own signing.
//!
//! Foca's LAN defaults detect a crash in about 6 s and take about two
//! minutes to reconverge after a healed partition (its periodic announce to
//! down members is 65 s). msa's defaults ([`membership_config`]): probe every
//! 500 ms with a 250 ms round trip budget, suspect → down after 1.5 s (a
//! crash is declared down in ≈ 3 s, ≤ 5 s), gossip every 250 ms, announce to a live member every
//! 5 s and to down members every 3 s (a healed partition reconverges well
//! within 15 s).

use std::collections::BTreeMap;
use std::num::{NonZeroU32, NonZeroUsize};
use std::time::Duration;

use foca::{
    AccumulatingRuntime, Config, Foca, OwnedNotification, PeriodicParams, PostcardCodec, Timer,
};
use rand::rngs::SmallRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use super::frame::NodeInfo;

mod table_gossip;
use table_gossip::TableGossip;
pub(crate) use table_gossip::TableVersion;

use super::join::JoinState;
use super::reachability::ReachReport;

/// A member's identity: the node, plus a bump to rejoin quickly after being
/// declared down. Its address is the node name; a restarted node (higher
/// incarnation) wins the name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) struct Member {
    pub(crate) info: NodeInfo,
    bump: u16,
}

impl Member {
    pub(crate) fn new(info: NodeInfo) -> Self {
        Self { info, bump: 0 }
    }
}

impl foca::Identity for Member {
    type Addr = String;

    fn renew(&self) -> Option<Self> {
        Some(Self {
            info: self.info.clone(),
            bump: self.bump.wrapping_add(1),
        })
    }

    fn addr(&self) -> String {
        self.info.name.clone()
    }

    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        (self.info.incarnation, self.bump) > (adversary.info.incarnation, adversary.bump)
    }
}

/// msa's membership timing (see the module docs) for the default 5 s bound.
#[cfg(test)]
pub(crate) fn membership_config() -> Config {
    membership_config_for(super::remoting::DEFAULT_DETECTION)
}

/// Membership timing for a failure-detection bound: a crashed member is
/// declared down within about `bound` (probe every bound/10, gossip every
/// bound/20, suspect → down after 0.3 × bound).
pub(crate) fn membership_config_for(bound: Duration) -> Config {
    let mut c = Config::new_lan(NonZeroU32::new(16).unwrap_or(NonZeroU32::MIN));
    c.probe_period = (bound / 10).max(Duration::from_millis(20));
    c.probe_rtt = (bound / 20).max(Duration::from_millis(10));
    c.suspect_to_down_after = (bound * 3 / 10).max(Duration::from_millis(50));
    c.max_packet_size = NonZeroUsize::new(64 * 1024).unwrap_or(NonZeroUsize::MIN);
    c.periodic_announce = Some(PeriodicParams {
        frequency: Duration::from_secs(5),
        num_members: NonZeroUsize::MIN,
    });
    // Gossip on the probe round trip's period (250 ms by default, foca's
    // LAN default is 200 ms): it falls on the heartbeat ticks' grid, so a
    // node with something to spread wakes for it no more often than it
    // wakes anyway (issue 12).
    c.periodic_gossip = Some(PeriodicParams {
        frequency: c.probe_rtt,
        num_members: NonZeroUsize::new(3).unwrap_or(NonZeroUsize::MIN),
    });
    c.periodic_announce_to_down_members = Some(PeriodicParams {
        frequency: Duration::from_secs(3),
        num_members: NonZeroUsize::new(2).unwrap_or(NonZeroUsize::MIN),
    });
    c
}

/// What the membership core asks the I/O layer to do.
#[derive(Debug, Default)]
pub(crate) struct Effects {
    pub(crate) send: Vec<(Member, Vec<u8>)>,
    pub(crate) timers: Vec<(Duration, Timer<Member>)>,
    pub(crate) up: Vec<Member>,
    pub(crate) down: Vec<Member>,
    /// Service table versions newer than any seen before (other nodes' and
    /// our own), learned from the gossip.
    pub(crate) tables: Vec<TableVersion>,
    /// Reachability reports newer than any seen before (ours included).
    pub(crate) reports: Vec<ReachReport>,
    /// Join states newer than any seen before (ours included).
    pub(crate) joins: Vec<JoinState>,
    /// Our identity was renewed (told we were down, or downed by the
    /// split-brain resolver): we rejoin as a new member.
    pub(crate) renewed: bool,
}

/// The sans-IO membership core: foca plus its effects.
pub(crate) struct Membership {
    foca: Foca<Member, PostcardCodec, SmallRng, TableGossip>,
    rt: AccumulatingRuntime<Member>,
    tables: std::sync::Arc<parking_lot::Mutex<Vec<TableVersion>>>,
    reports: std::sync::Arc<parking_lot::Mutex<Vec<ReachReport>>>,
    joins: std::sync::Arc<parking_lot::Mutex<Vec<JoinState>>>,
    /// Every other node ever met (its newest incarnation), so that a member
    /// foca holds down, or has forgotten, is announced to again until it is
    /// back ([`rejoin`](Self::rejoin)).
    known: BTreeMap<String, NodeInfo>,
    /// How often `rejoin` is called.
    rejoin_every: Duration,
    /// Members under suspicion, with the number of `rejoin` calls that saw
    /// them so (see `conclude_lost_suspicions`).
    suspicions: std::collections::HashMap<Member, u32>,
    /// A suspicion seen by this many `rejoin` calls has outlived foca's
    /// timer for it.
    stale_suspicion_ticks: u32,
}

impl std::fmt::Debug for Membership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Membership").finish_non_exhaustive()
    }
}

impl Membership {
    pub(crate) fn new(local: NodeInfo, config: Config, seed: u64) -> Self {
        let (gossip, tables) = TableGossip::new();
        let reports = gossip.reports.clone();
        let joins = gossip.joins.clone();
        let rejoin_every =
            (config.probe_period * 2).clamp(Duration::from_millis(50), Duration::from_secs(1));
        let outlived = config.suspect_to_down_after * 2 + config.probe_period * 4;
        let stale_suspicion_ticks =
            (outlived.as_millis() / rejoin_every.as_millis().max(1)) as u32 + 1;
        Self {
            foca: Foca::with_custom_broadcast(
                Member::new(local),
                config,
                SmallRng::seed_from_u64(seed),
                PostcardCodec,
                gossip,
            ),
            rt: AccumulatingRuntime::new(),
            tables,
            reports,
            joins,
            known: BTreeMap::new(),
            rejoin_every,
            suspicions: std::collections::HashMap::new(),
            stale_suspicion_ticks,
        }
    }

    /// How often the I/O layer calls [`rejoin`](Self::rejoin): two probe
    /// periods (a second with the default 5 s detection bound), between
    /// 50 ms and 1 s.
    pub(crate) fn rejoin_interval(&self) -> Duration {
        self.rejoin_every
    }

    /// Concludes suspicions that outlived foca's timer for them: foca drops
    /// its pending timers whenever it renews our identity or goes idle, and
    /// a member it suspected then stays `suspect` for good (unless the
    /// member hears of it and refutes). Such a suspicion ends as the timer
    /// would have ended it: the member is declared down (and then rejoins
    /// like any member declared down, with a renewed identity).
    fn conclude_lost_suspicions(&mut self) {
        let suspects: Vec<(Member, foca::Incarnation)> = self
            .foca
            .iter_membership_state()
            .filter(|m| m.state() == foca::State::Suspect)
            .map(|m| (m.id().clone(), m.incarnation()))
            .collect();
        self.suspicions
            .retain(|id, _| suspects.iter().any(|(s, _)| s == id));
        for (id, incarnation) in suspects {
            let seen = self.suspicions.entry(id.clone()).or_insert(0);
            *seen += 1;
            if *seen > self.stale_suspicion_ticks {
                tracing::debug!(member = %id.info.name, "suspicion outlived its timer; declaring down");
                self.suspicions.remove(&id);
                let down = foca::Member::new(id, incarnation, foca::State::Down);
                if let Err(e) = self
                    .foca
                    .apply_many(std::iter::once(down), true, &mut self.rt)
                {
                    tracing::debug!(error = %e, "stale suspicion not concluded");
                }
            }
        }
    }

    /// Announces us again to every known node that foca does not hold
    /// active (down, or not listed at all). Called periodically: this is
    /// what brings a healed partition back together, whatever state foca
    /// is in (see the "Healing" section of docs/cluster.md).
    pub(crate) fn rejoin(&mut self) -> Effects {
        self.conclude_lost_suspicions();
        let active: Vec<String> = self
            .foca
            .iter_members()
            .map(|m| m.id().info.name.clone())
            .collect();
        let absent: Vec<NodeInfo> = self
            .known
            .values()
            .filter(|k| !active.contains(&k.name))
            .cloned()
            .collect();
        for to in absent {
            if let Err(e) = self.foca.announce(Member::new(to), &mut self.rt) {
                tracing::debug!(error = %e, "announce failed");
            }
        }
        self.effects()
    }

    /// Remembers `info` as a node to rejoin (a newer incarnation replaces
    /// an older one; ourselves excluded).
    fn remember(&mut self, info: &NodeInfo) {
        if info.name == self.foca.identity().info.name || info.addr.is_empty() {
            return;
        }
        match self.known.get(&info.name) {
            Some(k) if k.incarnation >= info.incarnation => {}
            _ => {
                self.known.insert(info.name.clone(), info.clone());
            }
        }
    }

    /// Gossips a new version of our own service table: it rides on foca's
    /// messages from now on, and goes at once to a few members.
    pub(crate) fn publish_table(&mut self, version: TableVersion) -> Effects {
        if let Err(e) = self.foca.add_broadcast(&version.encode()) {
            tracing::debug!(error = %e, "table version not gossiped");
        } else if let Err(e) = self.foca.broadcast(&mut self.rt) {
            tracing::debug!(error = %e, "table version not broadcast");
        }
        self.effects()
    }

    /// Gossips this node's reachability report (the members it cannot
    /// reach), as `publish_table` does a table version.
    pub(crate) fn publish_reach(&mut self, report: &ReachReport) -> Effects {
        let item = table_gossip::encode_report(report);
        if let Err(e) = self.foca.add_broadcast(&item) {
            tracing::debug!(error = %e, "reachability not gossiped");
        } else if let Err(e) = self.foca.broadcast(&mut self.rt) {
            tracing::debug!(error = %e, "reachability not broadcast");
        }
        self.effects()
    }

    /// Gossips this node's join state (`remote/join.rs`), as
    /// `publish_table` does a table version.
    pub(crate) fn publish_join(&mut self, state: &JoinState) -> Effects {
        let item = table_gossip::encode_join(state);
        if let Err(e) = self.foca.add_broadcast(&item) {
            tracing::debug!(error = %e, "join state not gossiped");
        } else if let Err(e) = self.foca.broadcast(&mut self.rt) {
            tracing::debug!(error = %e, "join state not broadcast");
        }
        self.effects()
    }

    /// Declares the member named `name` down (an operator's request), as
    /// foca's own suspicion timer would: it is gossiped to the others.
    pub(crate) fn down(&mut self, name: &str) -> Effects {
        let found = self
            .foca
            .iter_membership_state()
            .find(|m| m.id().info.name == name)
            .map(|m| (m.id().clone(), m.incarnation()));
        if let Some((id, incarnation)) = found {
            let down = foca::Member::new(id, incarnation, foca::State::Down);
            if let Err(e) = self
                .foca
                .apply_many(std::iter::once(down), true, &mut self.rt)
            {
                tracing::debug!(error = %e, "member not downed");
            }
        }
        self.effects()
    }

    /// Gives this node a renewed identity at once (the split-brain resolver
    /// downed it): foca declares the old identity down to whoever it still
    /// reaches, and the node is a member again only once a member accepts
    /// the new identity (announced to every known node, now and at every
    /// rejoin tick), that is after the partition heals.
    pub(crate) fn renew_identity(&mut self) -> Effects {
        use foca::Identity as _;
        if let Some(new) = self.foca.identity().renew() {
            match self.foca.change_identity(new.clone(), &mut self.rt) {
                Ok(()) => foca::Runtime::notify(&mut self.rt, foca::Notification::Rejoin(&new)),
                Err(e) => tracing::debug!(error = %e, "identity not renewed"),
            }
        }
        self.effects()
    }

    /// Introduces us to `to` (called when a connection to it is up).
    pub(crate) fn announce(&mut self, to: NodeInfo) -> Effects {
        self.remember(&to);
        if let Err(e) = self.foca.announce(Member::new(to), &mut self.rt) {
            tracing::debug!(error = %e, "announce failed");
        }
        self.effects()
    }

    /// A membership message from a peer.
    pub(crate) fn data(&mut self, bytes: &[u8]) -> Effects {
        if let Err(e) = self.foca.handle_data(bytes, &mut self.rt) {
            tracing::debug!(error = %e, "bad membership message ignored");
        }
        self.effects()
    }

    /// A timer foca asked for has fired.
    pub(crate) fn timer(&mut self, t: Timer<Member>) -> Effects {
        if let Err(e) = self.foca.handle_timer(t, &mut self.rt) {
            tracing::debug!(error = %e, "membership timer failed");
        }
        self.effects()
    }

    /// Leaves the cluster gracefully.
    pub(crate) fn leave(&mut self) -> Effects {
        if let Err(e) = self.foca.leave_cluster(&mut self.rt) {
            tracing::debug!(error = %e, "leave failed");
        }
        self.effects()
    }

    /// Every member foca knows, with its state.
    pub(crate) fn view(&self) -> Vec<(NodeInfo, &'static str)> {
        self.foca
            .iter_membership_state()
            .map(|m| {
                let s = match m.state() {
                    foca::State::Alive => "alive",
                    foca::State::Suspect => "suspect",
                    foca::State::Down => "down",
                };
                (m.id().info.clone(), s)
            })
            .collect()
    }

    /// Members foca considers active.
    #[cfg(test)]
    pub(crate) fn members(&self) -> Vec<NodeInfo> {
        self.foca
            .iter_members()
            .map(|m| m.id().info.clone())
            .collect()
    }

    fn effects(&mut self) -> Effects {
        let mut e = Effects::default();
        let mut rejoined = false;
        while let Some(n) = self.rt.to_notify() {
            match n {
                OwnedNotification::MemberUp(m) => e.up.push(m),
                OwnedNotification::MemberDown(m) => e.down.push(m),
                OwnedNotification::Rejoin(_) => {
                    rejoined = true;
                    e.renewed = true;
                }
                _ => {}
            }
        }
        if rejoined {
            // Foca renewed our identity (the cluster had declared us down):
            // it starts over, with its timers stopped until a message
            // addressed to the new identity arrives. Announcing to every
            // known node brings those replies at once.
            tracing::info!("declared down by the cluster; rejoining with a renewed identity");
            let all: Vec<NodeInfo> = self.known.values().cloned().collect();
            for to in all {
                if let Err(e) = self.foca.announce(Member::new(to), &mut self.rt) {
                    tracing::debug!(error = %e, "announce failed");
                }
            }
        }
        while let Some((to, data)) = self.rt.to_send() {
            e.send.push((to, data.to_vec()));
        }
        while let Some((after, t)) = self.rt.to_schedule() {
            e.timers.push((after, t));
        }
        let seen: Vec<NodeInfo> = self
            .foca
            .iter_membership_state()
            .map(|m| m.id().info.clone())
            .collect();
        for info in &seen {
            self.remember(info);
        }
        e.tables = std::mem::take(&mut *self.tables.lock());
        e.reports = std::mem::take(&mut *self.reports.lock());
        e.joins = std::mem::take(&mut *self.joins.lock());
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, HashSet};

    fn info(name: &str, incarnation: u64) -> NodeInfo {
        NodeInfo {
            name: name.into(),
            addr: format!("{name}:1"),
            incarnation,
        }
    }

    /// A simulated cluster with a fake clock: timers and messages are queued
    /// and delivered in time order; `cut` drops all traffic of a node.
    struct Sim {
        nodes: BTreeMap<String, Membership>,
        now: Duration,
        /// (due, seq, node, event)
        queue: Vec<(Duration, u64, String, Ev)>,
        seq: u64,
        dead: HashSet<String>,
        downs: Vec<(Duration, String, String)>,
        ups: Vec<(Duration, String, String)>,
        /// (when, at, table version learned)
        tables: Vec<(Duration, String, TableVersion)>,
        /// Whether `rejoin` runs on its interval at every node (as the
        /// membership driver does).
        rejoin_ticks: bool,
        /// Nodes cut off from all others (their timers still run, unlike
        /// `dead` ones).
        cut: HashSet<String>,
        /// Model msa's connections (`None`: every message is delivered).
        /// A message to a node without a connection is dropped and a dial
        /// starts; a connection up announces both ways; a member declared
        /// down loses its connection; nodes re-dial their seed (`a`).
        links: Option<HashSet<(String, String)>>,
        dialing: HashSet<(String, String)>,
    }

    fn pair(a: &str, b: &str) -> (String, String) {
        if a < b {
            (a.to_string(), b.to_string())
        } else {
            (b.to_string(), a.to_string())
        }
    }

    enum Ev {
        Timer(Timer<Member>),
        Data(Vec<u8>),
        Rejoin,
        /// A dial from the first node of the target to the second completes.
        Connect,
        /// A node's seed dialer looks at its connection to `a`.
        SeedDial,
    }

    impl Sim {
        fn new(names: &[&str]) -> Self {
            Self::seeded(names, 0)
        }

        fn seeded(names: &[&str], seed: u64) -> Self {
            let mut s = Self {
                nodes: BTreeMap::new(),
                now: Duration::ZERO,
                queue: Vec::new(),
                seq: 0,
                dead: HashSet::new(),
                downs: Vec::new(),
                ups: Vec::new(),
                tables: Vec::new(),
                rejoin_ticks: false,
                cut: HashSet::new(),
                links: None,
                dialing: HashSet::new(),
            };
            for (i, n) in names.iter().enumerate() {
                s.nodes.insert(
                    n.to_string(),
                    Membership::new(info(n, 1), membership_config(), seed * 1_000 + i as u64 + 7),
                );
            }
            // Everyone announces to the first node.
            for n in names.iter().skip(1) {
                let e = s.nodes.get_mut(*n).unwrap().announce(info(names[0], 1));
                s.apply(n, e);
            }
            s
        }

        fn dial(&mut self, from: &str, to: &str) {
            if self
                .links
                .as_ref()
                .is_some_and(|l| l.contains(&pair(from, to)))
                || !self.dialing.insert(pair(from, to))
            {
                return;
            }
            self.seq += 1;
            self.queue.push((
                self.now + Duration::from_millis(5),
                self.seq,
                format!("{from}|{to}"),
                Ev::Connect,
            ));
        }

        fn apply(&mut self, at: &str, e: Effects) {
            for (to, data) in e.send {
                if let Some(links) = &self.links {
                    if !links.contains(&pair(at, &to.info.name)) {
                        // No connection: the message is lost, a dial starts.
                        self.dial(at, &to.info.name.clone());
                        continue;
                    }
                }
                self.seq += 1;
                // 1 ms network latency.
                self.queue.push((
                    self.now + Duration::from_millis(1),
                    self.seq,
                    format!("{}|{}", at, to.info.name),
                    Ev::Data(data),
                ));
            }
            for (after, t) in e.timers {
                self.seq += 1;
                self.queue
                    .push((self.now + after, self.seq, at.to_string(), Ev::Timer(t)));
            }
            for m in e.down {
                if let Some(l) = self.links.as_mut() {
                    l.remove(&pair(at, &m.info.name));
                }
                self.downs.push((self.now, at.to_string(), m.info.name));
            }
            for m in e.up {
                if self.links.is_some() {
                    self.dial(at, &m.info.name.clone());
                }
                self.ups.push((self.now, at.to_string(), m.info.name));
            }
            for t in e.tables {
                self.tables.push((self.now, at.to_string(), t));
            }
        }

        fn run_until(&mut self, until: Duration) {
            loop {
                self.queue.sort_by_key(|(due, seq, _, _)| (*due, *seq));
                if self.queue.first().is_none_or(|(due, ..)| *due > until) {
                    break;
                }
                let (due, _, target, ev) = self.queue.remove(0);
                self.now = due;
                let (from, to) = match target.split_once('|') {
                    Some((f, t)) => (Some(f.to_string()), t.to_string()),
                    None => (None, target.clone()),
                };
                if let Ev::Connect = ev {
                    let from = from.unwrap_or_default();
                    self.dialing.remove(&pair(&from, &to));
                    let cut = [&from, &to]
                        .iter()
                        .any(|n| self.cut.contains(*n) || self.dead.contains(*n));
                    if !cut {
                        if let Some(l) = self.links.as_mut() {
                            l.insert(pair(&from, &to));
                        }
                        // `established` announces on both sides.
                        for (x, y) in [(&from, &to), (&to, &from)] {
                            let e = self.nodes.get_mut(x.as_str()).unwrap().announce(info(y, 1));
                            self.apply(&x.clone(), e);
                        }
                    }
                    continue;
                }
                if let Ev::SeedDial = ev {
                    self.seq += 1;
                    let next = self.now + Duration::from_millis(700);
                    self.queue.push((next, self.seq, to.clone(), Ev::SeedDial));
                    self.dial(&to, "a");
                    continue;
                }
                let is_data = matches!(ev, Ev::Data(_));
                let cut = is_data
                    && (self.cut.contains(&to)
                        || from.as_ref().is_some_and(|f| self.cut.contains(f)));
                if cut
                    || self.dead.contains(&to)
                    || from.as_ref().is_some_and(|f| self.dead.contains(f))
                {
                    continue;
                }
                let Some(node) = self.nodes.get_mut(&to) else {
                    continue;
                };
                let e = match ev {
                    Ev::Timer(t) => node.timer(t),
                    Ev::Data(d) => node.data(&d),
                    Ev::Rejoin => {
                        self.seq += 1;
                        let next = self.now + node.rejoin_interval();
                        self.queue.push((next, self.seq, to.clone(), Ev::Rejoin));
                        node.rejoin()
                    }
                    Ev::Connect | Ev::SeedDial => continue,
                };
                self.apply(&to.clone(), e);
            }
            self.now = until;
        }
    }

    impl Sim {
        /// Starts every node's rejoin ticks (as the driver does).
        fn with_rejoin_ticks(mut self) -> Self {
            self.rejoin_ticks = true;
            let names: Vec<String> = self.nodes.keys().cloned().collect();
            for n in names {
                self.seq += 1;
                let first = self.now + self.nodes[&n].rejoin_interval();
                self.queue.push((first, self.seq, n, Ev::Rejoin));
            }
            self
        }

        /// Whether every node holds every other one alive.
        fn agree(&self) -> bool {
            self.nodes.iter().all(|(name, m)| {
                let view = m.view();
                self.nodes.keys().filter(|n| *n != name).all(|other| {
                    view.iter()
                        .any(|(i, st)| &i.name == other && *st == "alive")
                        && !view
                            .iter()
                            .any(|(i, st)| &i.name == other && *st != "alive")
                })
            })
        }

        /// Runs until the views agree; how long that took, or `None`
        /// within `bound`.
        fn time_to_agree(&mut self, bound: Duration) -> Option<Duration> {
            let from = self.now;
            while self.now < from + bound {
                if self.agree() {
                    return Some(self.now - from);
                }
                let step = self.now + Duration::from_millis(50);
                self.run_until(step);
            }
            self.agree().then(|| self.now - from)
        }
    }

    /// One node of three isolated until everyone declared everyone on the
    /// other side down, for `cut`, then healed.
    fn isolate_and_heal(seed: u64, cut: Duration, ticks: bool) -> Option<Duration> {
        let mut sim = Sim::seeded(&["a", "b", "c"], seed);
        // Connections as msa makes them: b and c dialed their seed a.
        sim.links = Some(HashSet::from([pair("a", "b"), pair("a", "c")]));
        for n in ["b", "c"] {
            sim.seq += 1;
            sim.queue
                .push((Duration::from_millis(700), sim.seq, n.into(), Ev::SeedDial));
        }
        if ticks {
            sim = sim.with_rejoin_ticks();
        }
        sim.run_until(Duration::from_secs(5));
        assert!(sim.agree(), "seed {seed}: formed");
        let isolated = ["a", "b", "c"][(seed % 3) as usize];
        sim.cut.insert(isolated.into());
        // Its connections fall silent and close.
        if let Some(l) = sim.links.as_mut() {
            l.retain(|(x, y)| x != isolated && y != isolated);
        }
        let until = sim.now + cut;
        sim.run_until(until);
        sim.cut.clear();
        let r = sim.time_to_agree(Duration::from_secs(120));
        if r.is_none() && ticks {
            for (n, m) in &sim.nodes {
                let view: Vec<_> = m
                    .foca
                    .iter_membership_state()
                    .map(|x| (x.id().info.name.clone(), x.id().bump, x.state()))
                    .collect();
                eprintln!("{n} (bump {}): {view:?}", m.foca.identity().bump);
            }
        }
        r
    }

    #[test]
    fn with_rejoin_ticks_an_isolated_member_is_back_within_15_seconds_for_every_seed() {
        let mut worst = Duration::ZERO;
        for seed in 0..200u64 {
            // Cuts from shorter than detection to well past it.
            let cut = Duration::from_millis(500 + (seed * 733) % 20_000);
            let took = isolate_and_heal(seed, cut, true)
                .unwrap_or_else(|| panic!("seed {seed}, cut {cut:?}: still split after 120 s"));
            assert!(
                took <= Duration::from_secs(15),
                "seed {seed}, cut {cut:?}: {took:?}"
            );
            worst = worst.max(took);
        }
        eprintln!("worst heal over 200 seeds: {worst:?}");
    }

    /// The root cause this module works around, kept reproducible: with
    /// foca's own announces only (no rejoin ticks), some heals never end
    /// (a member stays `suspect` in the views of nodes that renewed their
    /// identity, its suspicion timer dropped with their other timers).
    #[test]
    fn without_rejoin_ticks_some_heals_never_complete() {
        let split = (0..200u64)
            .filter(|seed| {
                let cut = Duration::from_millis(500 + (seed * 733) % 20_000);
                isolate_and_heal(*seed, cut, false).is_none()
            })
            .count();
        assert!(
            split > 0,
            "foca alone healed all 200: the workaround may be moot"
        );
    }

    #[test]
    fn members_join_through_one_node() {
        let mut sim = Sim::new(&["a", "b", "c", "d"]);
        sim.run_until(Duration::from_secs(5));
        for (name, m) in &sim.nodes {
            assert_eq!(m.members().len(), 3, "{name} sees everyone else");
        }
    }

    #[test]
    fn a_crashed_member_is_declared_down_within_5_seconds() {
        let mut sim = Sim::new(&["a", "b", "c", "d", "e"]);
        sim.run_until(Duration::from_secs(5));
        let crash_at = sim.now;
        sim.dead.insert("c".into());
        sim.run_until(crash_at + Duration::from_secs(10));
        for n in ["a", "b", "d", "e"] {
            let when = sim
                .downs
                .iter()
                .find(|(_, at, who)| at == n && who == "c")
                .map(|(t, ..)| *t - crash_at)
                .unwrap_or_else(|| panic!("{n} never declared c down"));
            assert!(when <= Duration::from_secs(5), "{n} took {when:?}");
        }
    }

    #[test]
    fn a_healed_partition_reconverges_within_15_seconds() {
        let mut sim = Sim::new(&["a", "b", "c", "d", "e"]);
        sim.run_until(Duration::from_secs(5));
        // Cut b off long enough to be declared down, then heal.
        sim.dead.insert("b".into());
        sim.run_until(Duration::from_secs(15));
        assert!(sim.downs.iter().any(|(_, at, who)| at == "a" && who == "b"));
        sim.dead.clear();
        let healed = sim.now;
        let before = sim.ups.len();
        sim.run_until(healed + Duration::from_secs(15));
        for (name, m) in &sim.nodes {
            assert_eq!(m.members().len(), 4, "{name} sees all four others again");
        }
        assert!(sim.ups.len() > before);
    }

    #[test]
    fn a_table_version_reaches_every_member_by_gossip() {
        let names = ["a", "b", "c", "d", "e", "f", "g", "h"];
        let mut sim = Sim::new(&names);
        sim.run_until(Duration::from_secs(5));
        let published = sim.now;
        let v = TableVersion {
            node: "c".into(),
            incarnation: 1,
            version: 4,
        };
        let e = sim.nodes.get_mut("c").unwrap().publish_table(v.clone());
        // The publisher pushes it at once to a few members, not to all.
        let direct = e.send.len();
        assert!(
            (1..names.len() - 1).contains(&direct),
            "{direct} direct sends"
        );
        sim.apply("c", e);
        sim.run_until(published + Duration::from_secs(3));
        for n in names.iter().filter(|n| **n != "c") {
            let when = sim
                .tables
                .iter()
                .find(|(_, at, t)| at == n && *t == v)
                .map(|(t, ..)| *t - published)
                .unwrap_or_else(|| panic!("{n} never learned c's table version"));
            assert!(when <= Duration::from_secs(2), "{n} took {when:?}");
        }
        // Each node reports it once, however often the gossip repeats it.
        let reports = sim.tables.iter().filter(|(_, _, t)| *t == v).count();
        assert_eq!(
            reports,
            names.len(),
            "once per node, the publisher included"
        );
    }
}
