//! Reachability per pair of nodes (issue 10 item 3).
//!
//! SWIM's indirect probes keep a member alive as long as *someone* reaches
//! it, so in a partial cut (A ⇄ C cut, B reaches both) every member stays
//! `alive` while A and C cannot talk. Each node therefore also judges, by
//! itself, which members it reaches: a member is **unreachable from here**
//! when membership holds it alive (or suspect) and nothing arrived from it on
//! this node's own connections (the data connection and the membership lane,
//! whose pings come every `heartbeat`) for `unreachable_after`, or when this
//! node has had no connection to it at all for that long. Its services then
//! leave this node's routing, and calls that only it could serve fail at once
//! with [`CallError::Unreachable`](crate::CallError). It is reachable again
//! as soon as something arrives from it.
//!
//! Each node gossips what it observes ([`ReachReport`]: the members it cannot
//! reach) with foca's custom broadcasts, so every node can list the
//! unreachable pairs of the whole cluster (`ClusterStatus::unreachable`).
//!
//! [`Reachability`] is sans-IO: the remoting layer feeds it observations and
//! the time, and acts on what it reports.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// What the remoting layer observed of one member it expects to reach (a
/// member membership holds alive or suspect).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Observation {
    /// The member's name.
    pub(crate) name: String,
    /// Its incarnation.
    pub(crate) incarnation: u64,
    /// When something last arrived from it on one of this node's own
    /// connections (`None`: no connection).
    pub(crate) heard: Option<Instant>,
}

/// What changed at a [`Reachability::step`].
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Changes {
    /// Members that became unreachable from this node.
    pub(crate) unreachable: Vec<String>,
    /// Members that became reachable again.
    pub(crate) reachable: Vec<String>,
}

impl Changes {
    /// Whether nothing changed.
    pub(crate) fn is_empty(&self) -> bool {
        self.unreachable.is_empty() && self.reachable.is_empty()
    }
}

#[derive(Debug)]
struct Track {
    incarnation: u64,
    /// The last time the member was heard from (or first expected).
    since: Instant,
    unreachable: bool,
}

/// One node's judgement of which members it reaches, and what it knows of
/// the others' judgements.
#[derive(Debug)]
pub(crate) struct Reachability {
    after: Duration,
    members: BTreeMap<String, Track>,
    /// The service names of each member's last applied table (kept while the
    /// member is unreachable, to tell a caller why a service is missing).
    services: BTreeMap<String, (u64, Vec<String>)>,
    /// Each observer's newest report (observer → report).
    reports: BTreeMap<String, ReachReport>,
    /// The version of this node's own next report.
    next_version: u64,
    /// Members named in peers' tables (their connected peers), with when
    /// (see [`learned`](Self::learned)).
    learned: BTreeMap<String, Instant>,
    /// Members judged unreachable that dropped out of the observations
    /// (membership held them down for a moment: an identity renewed after a
    /// split-brain self-down), with their incarnation and when they were
    /// last heard from. One that comes back at that incarnation, still
    /// unheard, is unreachable again at once rather than after another
    /// grace of `after`: otherwise the two ends of a partial cut, both
    /// renewing, each saw the other reachable for a moment and came back
    /// while the cut lasted (`split_brain::a_partial_cut_...` under load).
    forgotten: BTreeMap<String, (u64, Instant)>,
    /// Every member that dropped out of the observations (reachable or
    /// not), with when it was last heard from: whether it fell silent is
    /// still known for a while ([`remembers_silent`](Self::remembers_silent)).
    dropped: BTreeMap<String, Instant>,
}

/// How long an unreachable member that dropped out of the observations is
/// remembered, in multiples of the unreachable bound.
const FORGOTTEN_FOR: u32 = 20;

impl Reachability {
    /// A tracker that declares a member unreachable after `after` without
    /// news from it.
    pub(crate) fn new(after: Duration) -> Self {
        Self {
            after,
            members: BTreeMap::new(),
            services: BTreeMap::new(),
            reports: BTreeMap::new(),
            next_version: 1,
            learned: BTreeMap::new(),
            forgotten: BTreeMap::new(),
            dropped: BTreeMap::new(),
        }
    }

    /// A peer's table named `name` among its members at `now`.
    pub(crate) fn learn(&mut self, name: &str, now: Instant) {
        self.learned.insert(name.to_string(), now);
    }

    /// Members learned from peers' tables within `within` of `now`, sorted
    /// (older ones are forgotten).
    pub(crate) fn learned(&mut self, now: Instant, within: Duration) -> Vec<String> {
        self.learned
            .retain(|_, at| now.saturating_duration_since(*at) < within);
        self.learned.keys().cloned().collect()
    }

    /// Takes the observations of every member this node expects to reach
    /// (others are forgotten) at `now`; reports what changed.
    pub(crate) fn step(&mut self, now: Instant, observed: &[Observation]) -> Changes {
        let mut changes = Changes::default();
        let forgotten = &mut self.forgotten;
        let dropped = &mut self.dropped;
        let keep_for = self.after * FORGOTTEN_FOR;
        forgotten.retain(|_, (_, since)| now.saturating_duration_since(*since) < keep_for);
        dropped.retain(|_, since| now.saturating_duration_since(*since) < keep_for);
        self.members.retain(|name, t| {
            let keep = observed.iter().any(|o| &o.name == name);
            if !keep {
                dropped.insert(name.clone(), t.since);
                if t.unreachable {
                    forgotten.insert(name.clone(), (t.incarnation, t.since));
                }
            }
            keep
        });
        for o in observed {
            dropped.remove(&o.name);
            let t = self.members.entry(o.name.clone()).or_insert_with(|| {
                // Back at the incarnation judged unreachable: silent since
                // it was last heard from, so judged at once (below).
                let since = match forgotten.remove(&o.name) {
                    Some((incarnation, since)) if incarnation == o.incarnation => since,
                    _ => now,
                };
                Track {
                    incarnation: o.incarnation,
                    since,
                    unreachable: false,
                }
            });
            if o.incarnation > t.incarnation {
                // A restarted member starts afresh.
                *t = Track {
                    incarnation: o.incarnation,
                    since: now,
                    unreachable: t.unreachable,
                };
            }
            if let Some(h) = o.heard {
                t.since = t.since.max(h);
            }
            let silent = now.saturating_duration_since(t.since) >= self.after;
            if silent && !t.unreachable {
                t.unreachable = true;
                changes.unreachable.push(o.name.clone());
            } else if !silent && t.unreachable {
                t.unreachable = false;
                changes.reachable.push(o.name.clone());
            }
        }
        let tracked = &self.members;
        self.services.retain(|name, _| tracked.contains_key(name));
        changes
    }

    /// Whether this node cannot reach `name`.
    pub(crate) fn is_unreachable(&self, name: &str) -> bool {
        self.members.get(name).is_some_and(|t| t.unreachable)
    }

    /// Whether `name` is silent to this node's whole side: this node judges
    /// it unreachable, and so does the newest report of every member of
    /// `side` (the other members this node reaches: alive or suspect in
    /// membership and not silent here). A member only this node cannot
    /// reach while another member of its side does (a partial cut: SWIM
    /// keeps it alive through that member) is not; a member with no report
    /// yet vouches for every member (the cautious side).
    ///
    /// The split-brain resolver's driver counts a member foca still holds
    /// alive unreachable when this holds: the other side of a clean
    /// partition is then counted within the judge's bound plus a gossip
    /// round of the cut, on both sides, rather than one member per foca
    /// probe (a lone node suspects the others one by one, and each one
    /// restarted its stable-after timer: issue 10's late self-downs).
    pub(crate) fn silent_to_side(&self, name: &str, side: &[String]) -> bool {
        self.is_unreachable(name)
            && side.iter().filter(|o| *o != name).all(|o| {
                self.reports
                    .get(o)
                    .is_some_and(|r| r.unreachable.iter().any(|s| s == name))
            })
    }

    /// Whether this node finds `name` silent at `now` and still remembers
    /// it: judged unreachable, or dropped out of the observations (membership
    /// holds it down for a moment, its connection closed) within the memory
    /// (`FORGOTTEN_FOR` bounds after its last news) and not heard within the
    /// bound since. A member never observed, or forgotten, is not.
    ///
    /// The split-brain resolver's driver reads it: a node that downed
    /// itself comes back only once it has heard again from every member it
    /// remembers silent (`SplitBrainResolver::may_rejoin`).
    pub(crate) fn remembers_silent(&self, name: &str, now: Instant) -> bool {
        match self.members.get(name) {
            Some(t) => t.unreachable,
            None => self
                .dropped
                .get(name)
                .is_some_and(|since| now.saturating_duration_since(*since) >= self.after),
        }
    }

    /// The members this node cannot reach, sorted.
    pub(crate) fn unreachable(&self) -> Vec<String> {
        self.members
            .iter()
            .filter(|(_, t)| t.unreachable)
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// Remembers the services of `name`'s table (applied to the registry).
    pub(crate) fn record_services(&mut self, name: &str, incarnation: u64, services: Vec<String>) {
        self.services
            .insert(name.to_string(), (incarnation, services));
    }

    /// The first unreachable member (by name) whose last table listed
    /// `service`.
    pub(crate) fn unreachable_host(&self, service: &str) -> Option<String> {
        self.services
            .iter()
            .filter(|(name, _)| self.is_unreachable(name))
            .find(|(_, (_, s))| s.iter().any(|x| x == service))
            .map(|(name, _)| name.clone())
    }

    /// This node's report, with a fresh version.
    pub(crate) fn own_report(&mut self, observer: &str, incarnation: u64) -> ReachReport {
        let version = self.next_version;
        self.next_version += 1;
        ReachReport {
            observer: observer.to_string(),
            incarnation,
            version,
            unreachable: self.unreachable(),
        }
    }

    /// Another node's report (from gossip): kept if newer than the one held.
    pub(crate) fn on_report(&mut self, r: ReachReport) {
        match self.reports.get(&r.observer) {
            Some(old) if old.rank() >= r.rank() => {}
            _ => {
                self.reports.insert(r.observer.clone(), r);
            }
        }
    }

    /// Every unreachable pair `[observer, subject]` known here, sorted: this
    /// node's own observations (`me`) and the reports of `members` (others'
    /// reports are ignored: a member down or gone judges nothing).
    pub(crate) fn pairs(&self, me: &str, members: &[String]) -> Vec<[String; 2]> {
        let mut v: Vec<[String; 2]> = self
            .unreachable()
            .into_iter()
            .map(|s| [me.to_string(), s])
            .collect();
        for (observer, r) in &self.reports {
            if observer == me || !members.contains(observer) {
                continue;
            }
            for s in &r.unreachable {
                if members.contains(s) || s == me {
                    v.push([observer.clone(), s.clone()]);
                }
            }
        }
        v.sort();
        v.dedup();
        v
    }
}

/// One node's observation, as gossiped: the members it cannot reach.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ReachReport {
    /// The node that observed.
    pub(crate) observer: String,
    /// Its incarnation.
    pub(crate) incarnation: u64,
    /// Bumped at every report of that incarnation.
    pub(crate) version: u64,
    /// The members it cannot reach, sorted.
    pub(crate) unreachable: Vec<String>,
}

impl ReachReport {
    /// (incarnation, version): a higher rank replaces a lower one.
    pub(crate) fn rank(&self) -> (u64, u64) {
        (self.incarnation, self.version)
    }
}

#[cfg(test)]
mod tests;
