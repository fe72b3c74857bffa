//! The join step (issue 10): a (re)started node is `Joining` until the
//! members admit it, then `Up`, as Akka's `Joining` → `Up`. Sans-IO: the
//! caller steps it with explicit time, the members it sees and whether its
//! own view has converged; admissions travel in membership's gossip
//! ([`JoinState`], one item per node, newest wins).
//!
//! Why: a node that crashed during a partition, was downed on one side and
//! restarted on the other, was counted by the side it restarted on but not
//! by the side that had downed it; both sides then won the split-brain
//! decision and both served the same keys (docs/RELIABILITY.md). With the
//! join step:
//!
//! * a joining node does not count for the split-brain decision, owns no
//!   key and serves no call as a member;
//! * an `Up` member **admits** the joining members it sees (and has heard
//!   the join state of) only while its view has converged (every member it
//!   counts is reachable); a node the resolver downed (`Down`) admits
//!   nobody, and joins again (a new round) when it comes back after the
//!   heal, as a restarted node does;
//! * a joining node is `Up` once **every** member it sees that is not
//!   itself joining or downed admits it: one member cut off from it (the
//!   other side of a partition) keeps it joining;
//! * an admission **waits for fresh news**: a member admits a joining
//!   member only once it has heard from every other member it counts
//!   (`Up`) since it first saw that one joining ([`JoinGate::heard_from`]).
//!   Otherwise an admission races a cut: a partition that has just begun
//!   is not yet judged (the judge needs its bound of silence), the view
//!   still looks converged, and the joiner would count on one side while
//!   the other side, which never saw it back, does not count it at all
//!   (seed 778 of `msa sim`, docs/RELIABILITY.md). A driver that never
//!   calls `heard_from` keeps the earlier rule (converged is enough);
//!   the simulation and the runtime's driver both call it;
//! * a member counts a joining (or not yet known `Up`) member only when it
//!   cannot reach it, as a member of the *other* side: a side never counts
//!   more of itself than the other side counts of it, so both sides cannot
//!   both win;
//! * a member **downed by another node's resolver** is down: the downer
//!   gossips whom it downed, at which incarnation and round
//!   ([`JoinState::downs`]), does not count it on its own side until it is
//!   `Up` in a later round, and the downed node, once it hears of it, is
//!   `Down` and its driver downs itself as if its own resolver had; it
//!   joins again (a new round, `Joining`) only when its own rejoin check
//!   passes. Without the down a member the resolver downed without downing
//!   itself (its own timer had not run out: seed 329 of `msa sim`) came
//!   back through membership's renewed identity at once, still `Up`, and
//!   counted again on the side it was now on while the side that downed it
//!   never counted it: both sides won. Starting the new round at once (the
//!   rule until 2026-12-06) was not enough either: an end of a partial cut
//!   that heard of its down before its own resolver downed it was joining
//!   at once, and the member that had just downed it, alone and converged,
//!   admitted it again inside the cut; the end then downed itself while
//!   that member routed its keys to it (the partial-cut test in
//!   `tests/it/split_brain.rs`, about 1 run in 10 with both cores busy).
//!
//! **Alone.** A node with no seeds founds the cluster: `Up` at once. Only
//! the **first seed** may found it otherwise, as in Akka (only the first
//! node of `seed-nodes` joins itself): a node whose own address is the
//! first of its seeds ([`JoinGate::set_first_seed`]) and that sees no
//! member but joining ones (or none) is `Up` by itself once no dial to a
//! seed has hung for [`JOIN_ALONE_AFTER`] (every seed refused the dial,
//! nothing listens there, or answered and is joining too), whatever the
//! names of the joining nodes it sees (they are not first seeds: on
//! Kubernetes the first seed is the pod whose IP sorts first, not the
//! lowest-named one, and deferring to a lower name would leave every pod
//! joining). A founder (no seeds) downed and back defers to a lower-named
//! joining node it sees (that one is `Up` and admits the others).
//! A dial that hangs (a cut network) keeps it joining. **Every other node
//! with seeds joins until a member admits it, however long that takes**:
//! a node whose dials are refused cannot tell a cluster that is not there
//! from one it is cut off from (a crashed seed refuses, a live one across
//! a partition may too), and coming up alone beside a live cluster gives
//! every key two owners (seed 101624 of `msa sim`: a node restarted into a
//! partition, its seeds refusing, was `up` alone beside the cluster).
//! A node with no seeds counts as its own first seed (downed and back, it
//! may found the cluster again).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// How long the first seed, with no member to admit it, waits with no
/// seed dial hanging before it is `Up` by itself (other nodes never are).
pub(crate) const JOIN_ALONE_AFTER: Duration = Duration::from_secs(5);

/// Every this many steps without a change, a node gossips its state again
/// (so that a node started since hears it).
const REPUBLISH_EVERY: u32 = 4;

/// A node's place in the join step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum JoinPhase {
    /// Started (or restarted): not a member yet.
    Joining,
    /// Admitted: counts, owns keys, serves.
    Up,
    /// Downed by the split-brain resolver: admits nobody.
    Down,
}

impl JoinPhase {
    /// The name `msa cluster status` shows (`joining`, `up`, `down`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Joining => "joining",
            Self::Up => "up",
            Self::Down => "down",
        }
    }
}

/// One node's join state, as gossiped: its phase and the joining members
/// it admits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct JoinState {
    /// The node.
    pub(crate) node: String,
    /// Its incarnation.
    pub(crate) incarnation: u64,
    /// Bumped at every gossip of this state (newest wins).
    pub(crate) seq: u64,
    /// Its phase.
    pub(crate) phase: JoinPhase,
    /// Its join round: bumped each time it joins again (after the
    /// split-brain resolver downed it), so that an admission of an earlier
    /// round does not count.
    pub(crate) round: u64,
    /// The joining members it admits: (name, incarnation, round).
    pub(crate) admits: Vec<Admit>,
    /// The members its split-brain resolver downed and that have not come
    /// back in a later round yet: (name, incarnation, round). A node that
    /// finds itself here at its current round joins again.
    pub(crate) downs: Vec<Admit>,
}

/// An admission: the joining member's name, incarnation and round.
pub(crate) type Admit = (String, u64, u64);

impl JoinState {
    /// Its rank: a newer incarnation, then a newer sequence number, wins.
    pub(crate) fn rank(&self) -> (u64, u64) {
        (self.incarnation, self.seq)
    }
}

/// A member as the join step sees it: its name and incarnation.
pub(crate) type Seen = (String, u64);

/// One node's join step.
#[derive(Debug)]
pub(crate) struct JoinGate {
    me: String,
    incarnation: u64,
    phase: JoinPhase,
    seq: u64,
    round: u64,
    started: Instant,
    has_seeds: bool,
    /// Started without seeds: it founded the cluster, and may found it
    /// again (downed and back).
    founder: bool,
    /// Its own address is the first of its seeds (it may found the cluster).
    first_seed: bool,
    admits: Vec<Admit>,
    /// Members this node's resolver downed (see [`JoinState::downs`]).
    downs: Vec<Admit>,
    /// The newest state heard of each other node.
    states: BTreeMap<String, JoinState>,
    quiet: u32,
    /// When something last arrived from each member (fed by
    /// [`heard_from`](Self::heard_from)); empty: not tracked by the driver.
    heard: BTreeMap<String, Instant>,
    /// Each joining member seen, (incarnation, round), with when this node
    /// first saw it joining so.
    joiners: BTreeMap<String, (u64, u64, Instant)>,
}

/// What one [`JoinGate::step`] changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct JoinStep {
    /// This node just became `Up`; `alone` if no member admitted it.
    pub(crate) up: Option<bool>,
    /// A state to gossip (changed, or due again).
    pub(crate) publish: Option<JoinState>,
    /// Another node's resolver downed this node (named): it joins again,
    /// in a new round.
    pub(crate) downed_by: Option<String>,
}

impl JoinGate {
    /// The join step of `me` at `incarnation`, started at `now`: `Up` at
    /// once without seeds (it founds the cluster), `Joining` otherwise.
    pub(crate) fn new(me: &str, incarnation: u64, now: Instant, has_seeds: bool) -> Self {
        Self {
            me: me.to_string(),
            incarnation,
            phase: if has_seeds {
                JoinPhase::Joining
            } else {
                JoinPhase::Up
            },
            seq: 0,
            round: 0,
            started: now,
            has_seeds,
            founder: !has_seeds,
            first_seed: false,
            admits: Vec::new(),
            downs: Vec::new(),
            states: BTreeMap::new(),
            quiet: 0,
            heard: BTreeMap::new(),
            joiners: BTreeMap::new(),
        }
    }

    /// Whether this node is the first of its seeds (its own address is the
    /// first one its discovery answers): only then may it be `Up` with no
    /// member to admit it. A node without seeds always is; the driver sets
    /// this at every discovery round (a DNS answer changes as nodes come and
    /// go).
    pub(crate) fn set_first_seed(&mut self, first: bool) {
        self.first_seed = first;
    }

    /// Something arrived from `name` at `at` (on any of this node's own
    /// connections). A driver that calls this for every member it hears
    /// makes admissions wait for news from every member counted since the
    /// joiner appeared (see the module's docs); call it before
    /// [`step`](Self::step).
    pub(crate) fn heard_from(&mut self, name: &str, at: Instant) {
        let e = self.heard.entry(name.to_string()).or_insert(at);
        *e = (*e).max(at);
    }

    /// This node's phase.
    pub(crate) fn phase(&self) -> JoinPhase {
        self.phase
    }

    /// Whether this node is `Up` (admitted, and not downed).
    pub(crate) fn is_up(&self) -> bool {
        self.phase == JoinPhase::Up
    }

    /// This node's state as it would gossip it now.
    pub(crate) fn state(&self) -> JoinState {
        JoinState {
            node: self.me.clone(),
            incarnation: self.incarnation,
            seq: self.seq,
            phase: self.phase,
            round: self.round,
            admits: self.admits.clone(),
            downs: self.downs.clone(),
        }
    }

    /// This node's split-brain resolver downed `name` at `incarnation`: it
    /// no longer counts on this node's side until it is `Up` in a later
    /// round (or a newer incarnation), and the downed node hears of it in
    /// this node's gossiped state and joins again.
    pub(crate) fn downed(&mut self, name: &str, incarnation: u64) {
        let round = self
            .states
            .get(name)
            .filter(|s| s.incarnation == incarnation)
            .map_or(0, |s| s.round);
        self.downs.retain(|(n, _, _)| n != name);
        self.downs.push((name.to_string(), incarnation, round));
        self.downs.sort();
        // Gossiped at the next step.
        self.quiet = REPUBLISH_EVERY;
    }

    /// Whether `name` at `incarnation` and `round` is one this node
    /// downed and that has not come back since.
    fn downed_here(&self, name: &str, incarnation: u64, round: u64) -> bool {
        self.downs
            .iter()
            .any(|(n, i, r)| n == name && (incarnation, round) <= (*i, *r))
    }

    /// Whether this node downed `name` at `incarnation` or a later one, in
    /// any round, and has not heard it come back since (such entries are
    /// forgotten once its state shows a later round or incarnation).
    pub(crate) fn downed_at(&self, name: &str, incarnation: u64) -> bool {
        self.downs
            .iter()
            .any(|(n, i, _)| n == name && incarnation <= *i)
    }

    /// Whether `name`, downed here at `incarnation`, is known to know it:
    /// its gossiped state shows it downed itself (`Down`), or back in a
    /// later round or incarnation (it heard of the down and joins again, or
    /// restarted), or this node never recorded the down.
    pub(crate) fn knows_it_was_downed(&self, name: &str, incarnation: u64) -> bool {
        !self.downed_at(name, incarnation)
            || self.phase_of(name, incarnation) == Some(JoinPhase::Down)
    }

    /// The member whose gossiped state says it downed this node at its
    /// current incarnation and round, if any.
    fn downed_by(&self) -> Option<String> {
        let me = (self.me.clone(), self.incarnation, self.round);
        self.states
            .values()
            .find(|s| s.downs.contains(&me))
            .map(|s| s.node.clone())
    }

    /// A state heard in the gossip (older ones and our own are ignored).
    pub(crate) fn on_state(&mut self, s: JoinState) {
        if s.node == self.me {
            return;
        }
        if self
            .states
            .get(&s.node)
            .is_none_or(|old| old.rank() < s.rank())
        {
            self.states.insert(s.node.clone(), s);
        }
    }

    /// The phase of `name` at `incarnation` as last heard (`None`: not
    /// heard at that incarnation or a newer one).
    pub(crate) fn phase_of(&self, name: &str, incarnation: u64) -> Option<JoinPhase> {
        self.states
            .get(name)
            .filter(|s| s.incarnation >= incarnation)
            .map(|s| s.phase)
    }

    /// Whether `name` at `incarnation` is known to be a member that counts
    /// on its own side: `Up`. A member the resolver downed does not (it
    /// serves nothing until admitted again; a side that had downed it does
    /// not count it either, so counting it here could make both sides win:
    /// seed 553 of `msa sim`); like a joining one, it counts only when
    /// unreachable, as a member of the other side.
    ///
    /// A member this node's resolver downed does not count either until it
    /// is `Up` again in a later round ([`downed`](Self::downed)).
    pub(crate) fn counts(&self, name: &str, incarnation: u64) -> bool {
        self.states
            .get(name)
            .filter(|s| s.incarnation >= incarnation)
            .is_some_and(|s| {
                s.phase == JoinPhase::Up && !self.downed_here(name, s.incarnation, s.round)
            })
    }

    /// One step at `now`, over the members this node sees (`seen`: alive in
    /// its membership view, or connected), with `converged` (every member
    /// it counts is reachable), `downed` (the split-brain resolver downed
    /// it) and `last_seed_hang` (when a dial to a seed last hung: no answer
    /// within the connect timeout, as across a cut network).
    pub(crate) fn step(
        &mut self,
        now: Instant,
        seen: &[Seen],
        converged: bool,
        downed: bool,
        last_seed_hang: Option<Instant>,
    ) -> JoinStep {
        let mut out = JoinStep::default();
        let before = (self.phase, self.admits.clone(), self.downs.clone());
        // Downed by another node's resolver (while not downed by our own):
        // down, as if this node's own resolver had downed it. Its driver
        // downs itself (`downed_by`), so it comes back only when its own
        // rejoin check passes, in a new round, admitted again; a driver
        // that does not starts the new round at the next step.
        if !downed && self.phase != JoinPhase::Down {
            if let Some(by) = self.downed_by() {
                self.phase = JoinPhase::Down;
                out.downed_by = Some(by);
            }
        }
        // Downed members that came back in a later round (or restarted)
        // are forgotten.
        let states = &self.states;
        self.downs.retain(|(n, i, r)| {
            states
                .get(n)
                .is_none_or(|s| (s.incarnation, s.round) <= (*i, *r))
        });
        match (self.phase, downed) {
            // Just downed by another node: down for this step at least.
            _ if out.downed_by.is_some() => {}
            (_, true) if self.phase != JoinPhase::Joining => self.phase = JoinPhase::Down,
            (JoinPhase::Down, false) => {
                // Back after a heal: a member again only once admitted, as
                // a restarted node (it may come back into a partition).
                self.phase = JoinPhase::Joining;
                self.round += 1;
                self.started = now;
                // It knows a cluster now: not up at once (a founder may still
                // be up alone after `JOIN_ALONE_AFTER`).
                self.has_seeds = true;
            }
            (JoinPhase::Joining, _) => {
                if let Some(alone) = self.admitted(now, seen, last_seed_hang) {
                    self.phase = JoinPhase::Up;
                    out.up = Some(alone);
                }
            }
            _ => {}
        }
        let joining: Vec<Admit> = seen
            .iter()
            .filter(|(n, _)| *n != self.me)
            .filter_map(|(n, i)| {
                let s = self.states.get(n).filter(|s| s.incarnation >= *i)?;
                (s.phase == JoinPhase::Joining).then(|| (n.clone(), s.incarnation, s.round))
            })
            .collect();
        self.joiners
            .retain(|n, (i, r, _)| joining.iter().any(|j| j.0 == *n && j.1 == *i && j.2 == *r));
        for (n, i, r) in &joining {
            self.joiners.entry(n.clone()).or_insert((*i, *r, now));
        }
        self.admits = if self.phase == JoinPhase::Up && converged {
            joining
                .into_iter()
                .filter(|j| self.fresh_since_seen(&j.0, seen))
                .collect()
        } else {
            Vec::new()
        };
        self.quiet += 1;
        let first = self.seq == 0;
        let now_state = (self.phase, self.admits.clone(), self.downs.clone());
        if first || now_state != before || self.quiet >= REPUBLISH_EVERY {
            self.quiet = 0;
            self.seq += 1;
            out.publish = Some(self.state());
        }
        out
    }

    /// Whether every other member this node counts (`Up`, in `seen`) has
    /// been heard from since `joiner` was first seen joining (always true
    /// when the driver does not track what it hears).
    fn fresh_since_seen(&self, joiner: &str, seen: &[Seen]) -> bool {
        if self.heard.is_empty() {
            return true;
        }
        let Some(&(_, _, since)) = self.joiners.get(joiner) else {
            return false;
        };
        seen.iter()
            .filter(|(n, i)| *n != self.me && n != joiner && self.counts(n, *i))
            .all(|(n, _)| self.heard.get(n).is_some_and(|h| *h > since))
    }

    /// Whether a joining node may be `Up` now: `Some(false)` if every
    /// member it must hear from admits it, `Some(true)` if it may be `Up`
    /// alone, `None` to keep joining.
    fn admitted(
        &self,
        now: Instant,
        seen: &[Seen],
        last_seed_hang: Option<Instant>,
    ) -> Option<bool> {
        let mut required = 0;
        for (name, inc) in seen.iter().filter(|(n, _)| *n != self.me) {
            match self.states.get(name).filter(|s| s.incarnation >= *inc) {
                Some(s) if matches!(s.phase, JoinPhase::Joining | JoinPhase::Down) => {}
                Some(s) if s.phase == JoinPhase::Up => {
                    let me = (self.me.clone(), self.incarnation, self.round);
                    if !s.admits.contains(&me) {
                        return None;
                    }
                    required += 1;
                }
                // Not heard yet: it must admit us first.
                _ => return None,
            }
        }
        if required > 0 {
            return Some(false);
        }
        // Nobody to admit us: every member seen is joining too (or none is
        // seen). The founder is Up at once; otherwise only the first seed,
        // once no seed dial has hung for `JOIN_ALONE_AFTER` (the seeds
        // refuse, or answer and are joining themselves), is Up and admits
        // the others (a founder without seeds, downed and back, only if it
        // has the lowest name of the joining nodes seen). Any other node
        // keeps joining (seed 101624 of `msa sim`).
        if seen
            .iter()
            .any(|(n, i)| *n != self.me && self.phase_of(n, *i) != Some(JoinPhase::Joining))
        {
            return None;
        }
        let quiet_since = last_seed_hang.map_or(self.started, |h| h.max(self.started));
        let alone = !self.has_seeds
            || ((self.founder || self.first_seed)
                && now.duration_since(quiet_since) >= JOIN_ALONE_AFTER);
        let lowest = seen.iter().all(|(n, _)| *n >= self.me);
        (alone && (self.first_seed || lowest)).then_some(true)
    }
}

#[cfg(test)]
mod tests;
