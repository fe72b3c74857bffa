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
//! * a member counts a joining (or not yet known `Up`) member only when it
//!   cannot reach it, as a member of the *other* side: a side never counts
//!   more of itself than the other side counts of it, so both sides cannot
//!   both win.
//!
//! **Alone.** A node with no seeds founds the cluster: `Up` at once. A node
//! with seeds that sees no member but joining ones (or none) is `Up` by
//! itself once no dial to a seed has hung for [`JOIN_ALONE_AFTER`] (every
//! seed refused the dial, nothing listens there, or answered and is joining
//! too) and no joining node it sees has a lower name (that one is `Up` and
//! admits the others). A dial that hangs (a cut network) keeps it joining.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// How long a node with seeds and no member to admit it waits, with no
/// seed dial hanging, before it is `Up` by itself.
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
    admits: Vec<Admit>,
    /// The newest state heard of each other node.
    states: BTreeMap<String, JoinState>,
    quiet: u32,
}

/// What one [`JoinGate::step`] changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct JoinStep {
    /// This node just became `Up`; `alone` if no member admitted it.
    pub(crate) up: Option<bool>,
    /// A state to gossip (changed, or due again).
    pub(crate) publish: Option<JoinState>,
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
            admits: Vec::new(),
            states: BTreeMap::new(),
            quiet: 0,
        }
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
        }
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
    /// on its own side (`Up`, or downed by the resolver: a member all the
    /// same until it rejoins).
    pub(crate) fn counts(&self, name: &str, incarnation: u64) -> bool {
        matches!(
            self.phase_of(name, incarnation),
            Some(JoinPhase::Up | JoinPhase::Down)
        )
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
        let before = (self.phase, self.admits.clone());
        match (self.phase, downed) {
            (_, true) if self.phase != JoinPhase::Joining => self.phase = JoinPhase::Down,
            (JoinPhase::Down, false) => {
                // Back after a heal: a member again only once admitted, as
                // a restarted node (it may come back into a partition).
                self.phase = JoinPhase::Joining;
                self.round += 1;
                self.started = now;
                // It knows a cluster now: no longer its founder.
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
        self.admits = if self.phase == JoinPhase::Up && converged {
            seen.iter()
                .filter(|(n, _)| *n != self.me)
                .filter_map(|(n, i)| {
                    let s = self.states.get(n).filter(|s| s.incarnation >= *i)?;
                    (s.phase == JoinPhase::Joining).then(|| (n.clone(), s.incarnation, s.round))
                })
                .collect()
        } else {
            Vec::new()
        };
        self.quiet += 1;
        let first = self.seq == 0;
        if first || (self.phase, self.admits.clone()) != before || self.quiet >= REPUBLISH_EVERY {
            self.quiet = 0;
            self.seq += 1;
            out.publish = Some(self.state());
        }
        out
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
        // seen). The founder is Up at once; otherwise, once no seed dial
        // has hung for `JOIN_ALONE_AFTER` (the seeds refuse, or answer and
        // are joining themselves), the lowest-named of the joining nodes
        // seen is Up and admits the others.
        if seen
            .iter()
            .any(|(n, i)| *n != self.me && self.phase_of(n, *i) != Some(JoinPhase::Joining))
        {
            return None;
        }
        let quiet_since = last_seed_hang.map_or(self.started, |h| h.max(self.started));
        let alone = !self.has_seeds || now.duration_since(quiet_since) >= JOIN_ALONE_AFTER;
        let lowest = seen.iter().all(|(n, _)| *n >= self.me);
        (alone && lowest).then_some(true)
    }
}

#[cfg(test)]
mod tests;
