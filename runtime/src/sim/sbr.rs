//! The split-brain resolver in the simulation: the real
//! [`SplitBrainResolver`] (`remote/split_brain.rs`), stepped at every
//! reachability judgement with the view its driver builds
//! (`remote/remoting/split_brain.rs`, modelled): the members counted are
//! those membership held alive (or connected peers) until downed here; a
//! member foca holds down, or suspects while the judge finds it silent, or
//! holds alive while it is silent to this node's whole side, is unreachable
//! (`split_brain::counts_reachable`, shared with the runtime's driver). The winner downs the others through membership; the loser
//! downs itself (refuses calls, drops every peer's table) and rejoins when
//! the resolver would no longer down it over what it sees. The resolver
//! also gets the unreachable pairs of the whole cluster (this node's and
//! the gossiped reports), so a partial cut's indirectly connected ends are
//! downed (`step_with_pairs`, as Akka's SBR).
//!
//! The invariant: while the cuts form a clean partition (or none, or the
//! scripted partial cut) and nothing changed for the detection bound plus
//! `stable_after` plus slack, the nodes that are not downed agree on every
//! key's owner among the nodes that serve.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::remote::frame::NodeInfo;
use crate::remote::split_brain::{
    counts_reachable, indirectly_connected, SbrDecision, SbrMember, SplitBrainConfig,
    SplitBrainResolver,
};

use super::check::Violation;
use super::node::{DEAD_AFTER, HEARTBEAT};
use super::world::World;

/// Keys of the keyed service the ownership check looks at.
pub(crate) const KEYS: u64 = 64;

/// After the last change of the network or of the nodes, how long before
/// two owners of a key are a violation, beyond `stable_after`: the
/// judge's bound, a judgement's period and time for the verdicts to apply.
const SLACK: Duration = Duration::from_secs(3);

/// One node's resolver state.
#[derive(Debug)]
pub(crate) struct SbrNode {
    resolver: SplitBrainResolver,
    /// Members counted (name → newest info), this node excluded.
    members: BTreeMap<String, NodeInfo>,
    /// Members downed here, not counted until membership reports them up.
    downed: BTreeSet<String>,
    /// The resolver downed this node (until it rejoins).
    pub(crate) self_downed: bool,
    /// When it downed itself.
    self_downed_at: Option<Instant>,
}

impl SbrNode {
    /// A resolver for `me` under `config`.
    pub(crate) fn new(me: &str, config: SplitBrainConfig) -> Self {
        Self {
            resolver: SplitBrainResolver::new(me, config),
            members: BTreeMap::new(),
            downed: BTreeSet::new(),
            self_downed: false,
            self_downed_at: None,
        }
    }

    /// Membership reported `info` up: it counts again.
    pub(crate) fn member_up(&mut self, info: &NodeInfo) {
        self.downed.remove(&info.name);
        if self
            .members
            .get(&info.name)
            .is_none_or(|m| m.incarnation <= info.incarnation)
        {
            self.members.insert(info.name.clone(), info.clone());
        }
    }
}

impl World {
    /// One step of node `i`'s resolver (after its judgement).
    pub(crate) fn sbr_step(&mut self, i: usize) {
        let now = self.base + self.now;
        let count = self.nodes.len();
        let Some(n) = self.nodes[i].as_mut() else {
            return;
        };
        let Some(sbr) = n.sbr.as_mut() else {
            // No resolver: converged when the judge finds nobody silent.
            n.converged = n.reach.unreachable().is_empty();
            return;
        };
        let view = n.membership.view();
        let live = |s: &str| matches!(s, "alive" | "suspect");
        for (info, status) in &view {
            if info.name != n.info.name && live(status) && !sbr.downed.contains(&info.name) {
                sbr.member_up(info);
            }
        }
        for p in n.peers.values() {
            if !sbr.downed.contains(&p.info.name) && !sbr.members.contains_key(&p.info.name) {
                sbr.members.insert(p.info.name.clone(), p.info.clone());
            }
        }
        // The members the judge still remembers silent (a self-downed node
        // waits for news from them, as the runtime's driver).
        let remembered: BTreeSet<String> = (0..count)
            .map(World::name)
            .filter(|name| *name != n.info.name && n.reach.remembers_silent(name, now))
            .collect();
        let mut members = vec![SbrMember {
            name: n.info.name.clone(),
            address: n.info.addr.clone(),
            age: n.info.incarnation,
            reachable: true,
        }];
        // Every member, joining ones included: whom a downed node sees
        // before it comes back.
        let mut all = members.clone();
        // The members this node reaches: a member foca holds alive is
        // unreachable only if none of them reaches it either (as the
        // runtime's driver, `Reachability::silent_to_side`).
        let side: Vec<String> = view
            .iter()
            .filter(|(info, s)| {
                info.name != n.info.name && live(s) && !n.reach.is_unreachable(&info.name)
            })
            .map(|(info, _)| info.name.clone())
            .collect();
        for (name, info) in &sbr.members {
            let status = view
                .iter()
                .find(|(v, _)| v.name == *name && v.incarnation >= info.incarnation)
                .map(|(_, s)| *s);
            let cut = n.reach.is_unreachable(name);
            let connected = !sbr.self_downed
                && n.peers
                    .values()
                    .any(|p| p.info.name == *name && p.info.incarnation >= info.incarnation);
            let side_cut = cut && n.reach.silent_to_side(name, &side);
            let reachable = counts_reachable(status, cut, side_cut, connected);
            // A member not known up (joining, downed by its resolver, or
            // not heard of yet) counts
            // only as a member of the other side, when it is unreachable:
            // this side never counts more of itself than the other side
            // counts of it (remote/join.rs).
            let member = SbrMember {
                name: name.clone(),
                address: info.addr.clone(),
                age: info.incarnation,
                reachable,
            };
            all.push(member.clone());
            let gate = self.sabotage != super::Sabotage::NoJoinStep;
            if gate && reachable && !n.join.counts(name, info.incarnation) {
                continue;
            }
            members.push(member);
        }
        n.converged = members.iter().all(|m| m.reachable);
        // The unreachable pairs of the whole cluster (this node's own
        // observations and the members' gossiped reports): a partial cut
        // is resolved by downing its indirectly connected ends.
        let names: Vec<String> = sbr.members.keys().cloned().collect();
        let pairs = n.reach.pairs(&n.info.name, &names);
        // The indirectly connected are found among every member, counted
        // or not (an end of the cut that downed itself first is still
        // one): they are downed, never counted for a side.
        let ic = indirectly_connected(&n.info.name, &all, &pairs);
        for m in &all {
            if ic.contains(&m.name) && !members.iter().any(|x| x.name == m.name) {
                members.push(m.clone());
            }
        }
        if !n.join.is_up() && !sbr.self_downed {
            // Joining: not a member yet, so no decision either.
            return;
        }
        let me = n.info.name.clone();
        // Members this resolver downed count as the other side until they
        // are known to know it (also for the rejoin check).
        for (name, incarnation) in sbr.resolver.unconfirmed() {
            if n.join.knows_it_was_downed(&name, incarnation) {
                sbr.resolver.confirm(&name);
            }
        }
        if sbr.self_downed {
            // Back only once heard from, since the self-down, by every
            // member it finds reachable or remembers silent (as the
            // runtime's driver, `SplitBrainResolver::may_rejoin`).
            let since = sbr.self_downed_at.unwrap_or(now);
            let heard: BTreeSet<String> = n
                .peers
                .values()
                .filter(|p| self.base + p.heard >= since)
                .map(|p| p.info.name.clone())
                .collect();
            if sbr
                .resolver
                .may_rejoin(&all, &pairs, &remembered, &heard, now)
            {
                sbr.resolver.reset();
                sbr.self_downed = false;
                sbr.self_downed_at = None;
                for p in n.peers.values_mut() {
                    p.table = None;
                    p.asked = 0;
                }
                self.note(&me, format_args!("split brain: rejoins"));
            }
            return;
        }
        match sbr.resolver.step_with_pairs(&members, &pairs, now) {
            Some(SbrDecision::DownUnreachable(names)) => {
                for name in &names {
                    if let Some(m) = sbr.members.remove(name) {
                        // Gossiped: it joins again, and counts here only
                        // once up in a later round.
                        n.join.downed(name, m.incarnation);
                    }
                    sbr.downed.insert(name.clone());
                    if let Some(p) = World::index(name).and_then(|j| n.peers.get_mut(&j)) {
                        p.table = None;
                    }
                }
                let mut effects = Vec::new();
                for name in &names {
                    effects.push(n.membership.down(name));
                }
                self.note(&me, format_args!("split brain: downs {names:?}"));
                for e in effects {
                    self.apply(i, e);
                }
            }
            Some(SbrDecision::DownSelf) => {
                sbr.self_downed = true;
                sbr.self_downed_at = Some(now);
                for p in n.peers.values_mut() {
                    p.table = None;
                }
                self.note(&me, format_args!("split brain: downs itself"));
            }
            _ => {}
        }
    }

    /// One step of node `i`'s join step (after its judgement and
    /// resolver): its admissions, and its own admission.
    pub(crate) fn join_step(&mut self, i: usize) {
        let now = self.base + self.now;
        let Some(n) = self.nodes[i].as_mut() else {
            return;
        };
        let mut seen: Vec<(String, u64)> = n
            .membership
            .view()
            .into_iter()
            .filter(|(info, s)| info.name != n.info.name && matches!(*s, "alive" | "suspect"))
            .map(|(info, _)| (info.name, info.incarnation))
            .collect();
        for p in n.peers.values() {
            if !seen.iter().any(|(s, _)| *s == p.info.name) {
                seen.push((p.info.name.clone(), p.info.incarnation));
            }
        }
        seen.sort();
        // What arrived from each peer: an admission waits for news from
        // every member counted since the joiner appeared.
        for p in n.peers.values() {
            n.join.heard_from(&p.info.name, self.base + p.heard);
        }
        let downed = n.self_downed();
        let step = n
            .join
            .step(now, &seen, n.converged, downed, n.last_seed_hang);
        let phase = n.join.phase().name();
        let effects = step.publish.map(|s| n.membership.publish_join(&s));
        if let Some(by) = &step.downed_by {
            // Down as if its own resolver had downed it (as the runtime's
            // driver): back only when its own rejoin check passes.
            if let Some(sbr) = n.sbr.as_mut() {
                sbr.self_downed = true;
                sbr.self_downed_at = Some(now);
                for p in n.peers.values_mut() {
                    p.table = None;
                }
            }
            self.note(
                &Self::name(i),
                format_args!("joined: {phase} (downed by {by}: downs itself)"),
            );
        }
        if let Some(alone) = step.up {
            let how = if alone { "alone" } else { "admitted" };
            self.note(&Self::name(i), format_args!("joined: {phase} ({how})"));
            self.changed = self.now;
        }
        if let Some(e) = effects {
            self.apply(i, e);
        }
    }

    /// How many nodes serve: neither downed nor joining (for the log).
    fn serving(&self) -> usize {
        self.nodes.iter().flatten().filter(|n| n.serving()).count()
    }

    /// Whether the cuts form a clean partition (two sides, every pair
    /// across cut both ways, nothing else) or none, with no link fault.
    fn clean_network(&self) -> bool {
        if !self.net.faults.is_empty() {
            return false;
        }
        let n = self.nodes.len();
        // Sides: j is on 0's side iff 0 ⇄ j passes.
        let side = |j: usize| self.net.passes(0, j);
        (0..n).all(|a| {
            (0..n).all(|b| {
                let across = side(a) != side(b);
                self.net.cut.contains(&(a, b)) == across
            })
        })
    }

    /// The ownership invariant at this step (with the resolver on).
    pub(crate) fn check_owners(&mut self) {
        let Some(config) = self.cfg.split_brain else {
            return;
        };
        let settle = (DEAD_AFTER / 2).max(HEARTBEAT * 2) + config.stable_after + SLACK;
        let scripted_cut = self.cfg.script == super::Script::PartialCut;
        if self.now < self.changed + settle || !(scripted_cut || self.clean_network()) {
            return;
        }
        for k in 0..KEYS {
            // An owner is a node that serves the key: a node downed (or
            // joining) that others still route to refuses every call, so
            // it owns nothing.
            let serves = |o: &usize| self.nodes[*o].as_ref().is_some_and(|n| n.serving());
            let mut owners: Vec<String> = (0..self.nodes.len())
                .filter_map(|i| self.owner(i, k))
                .filter(serves)
                .map(World::name)
                .collect();
            owners.sort();
            owners.dedup();
            if owners.len() > 1 {
                let serving = self.serving();
                self.note(
                    "sim",
                    format_args!("two owners of kv/{k}: {owners:?} ({serving} nodes serving)"),
                );
                self.checker.violations.push(Violation::TwoOwners {
                    key: format!("kv/{k}"),
                    owners,
                    at: self.now,
                });
                // Reported once per change of the network or nodes.
                self.changed = self.now;
                return;
            }
        }
    }
}
