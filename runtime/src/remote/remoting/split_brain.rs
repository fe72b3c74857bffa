//! The split-brain resolver's driver (see `remote/split_brain.rs`): feeds
//! it this node's view at every reachability judgement and carries out its
//! decisions.
//!
//! * **Unreachable, for the resolver** (`split_brain::counts_reachable`),
//!   is a member foca holds down (or no longer lists), one foca suspects
//!   and this node's own reachability judge finds silent
//!   (`remote/reachability.rs`), or one foca still holds alive that is
//!   silent to this node's whole side: judged silent here and reported
//!   unreachable by every other member this node reaches
//!   (`Reachability::silent_to_side`). So the other side of a clean
//!   partition is counted whole within the judge's 1.5 s and a gossip
//!   round, on both sides (both start their timers at about the same time),
//!   not one member per foca probe (a lone node suspects the others one at
//!   a time, and each one restarted the timer). A member only this node
//!   cannot reach while another member of its side reaches it (a partial
//!   cut, SWIM keeping it alive through that member) is not counted
//!   unreachable: downing by policy there would have both ends of the cut
//!   down each other.
//! * **Partial cuts** are resolved as Akka's SBR does: the resolver also
//!   gets the unreachable pairs of the whole cluster (this node's own
//!   judgement and the reports members gossip, `Reachability::pairs`), and
//!   the members that are both an observer and a subject of a pair (the
//!   **indirectly connected**, `split_brain::indirectly_connected`) are
//!   downed after `stable_after`: each end of the cut downs itself, every
//!   other node downs both. They are found among every member, counted or
//!   not (an end that downed itself first, or came back joining, is still
//!   one), and never count for a side. A self-downed end stays down while
//!   it is still indirectly connected (`decide_with_pairs`), so it rejoins
//!   only after the heal.
//! * **The members it counts.** foca declares a member down on its own
//!   (failure detection) within a few seconds of a cut, which would make the
//!   other side of a partition vanish from the view before the resolver
//!   could count it. So the driver keeps its own list: every member foca
//!   has held alive (or a connected peer), until it is downed here (by the
//!   resolver or an operator), leaves gracefully, or is replaced by a newer
//!   incarnation. A member foca holds down is counted as unreachable.
//! * **Down the others.** The winning side declares the members it cannot
//!   reach down, as `msa cluster down` does (foca gossips the verdict, their
//!   connections close, their services leave routing). They are counted
//!   again once foca reports them up (a renewed identity, after the heal).
//! * **Unconfirmed downs.** The members a decision downed still count, as
//!   unreachable members of the other side, until this node knows they
//!   know (their join state gossips them `down`, or back in a later round:
//!   `JoinGate::knows_it_was_downed`, `SplitBrainResolver::confirm`): a
//!   decision taken on a stale view (a partition that began just before,
//!   not yet judged) must not leave a minority serving alone.
//! * **Down itself.** The losing side sets the `self_downed` flag: inbound
//!   calls are refused with `CallError::Downed` at once, local callers of
//!   remote services get it at once too (every remote route is dropped and
//!   no table is applied while downed), the gateway answers 503 and
//!   `/readyz` 503, the status shows the node `down`. Its membership
//!   identity is renewed at once: foca declares the old identity down, and
//!   the node is a member again only when a member accepts the new one,
//!   that is after the heal. It then rejoins when its resolver no longer
//!   decides `DownSelf` over what it sees (the others alive and reachable):
//!   the flag is cleared; it is then `joining` (a new round of the join
//!   step, `remote/remoting/join_driver.rs`) until the members admit it,
//!   and every peer's table is fetched again once it is `up`.
//! * **Downed by another node.** A node that hears (in the join states'
//!   gossip) that another node's resolver downed it before its own did
//!   downs itself the same way (`downed_by_another`), and comes back by the
//!   same rejoin check: an end of a partial cut stays down while the cut
//!   lasts however it learnt of its down.
//! * **Joining members.** A member not known `up` (joining, or whose join
//!   state has not been heard) counts only when it is unreachable, as a
//!   member of the other side; a joining node itself decides nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::{MembershipInput, Remoting};
use crate::error::CallError;
use crate::remote::frame::NodeInfo;
use crate::remote::split_brain::{
    counts_reachable, indirectly_connected, SbrDecision, SbrMember, SplitBrainConfig,
    SplitBrainResolver,
};
use crate::remote::status::ClusterEvent;

/// The resolver and the members it counts.
#[derive(Debug)]
pub(crate) struct SbrState {
    resolver: SplitBrainResolver,
    /// Members counted (name → newest info), this node excluded.
    members: BTreeMap<String, NodeInfo>,
    /// Members downed here (by the resolver or an operator), with their
    /// incarnation: not counted again until foca reports them up.
    downed: BTreeMap<String, u64>,
    /// When this node downed itself (until it rejoins): it comes back only
    /// once it has heard since then from every member it finds reachable
    /// or remembers silent.
    self_downed_at: Option<Instant>,
}

/// A connected peer as the resolver's step sees it.
struct PeerSeen {
    info: NodeInfo,
    /// When something last arrived from it.
    heard: Instant,
}

impl SbrState {
    pub(crate) fn new(me: &str, config: SplitBrainConfig) -> Self {
        Self {
            resolver: SplitBrainResolver::new(me, config),
            members: BTreeMap::new(),
            downed: BTreeMap::new(),
            self_downed_at: None,
        }
    }
}

impl Remoting {
    /// Whether the split-brain resolver downed this node (until it rejoins).
    pub(crate) fn is_self_downed(&self) -> bool {
        self.self_downed.load(Ordering::Acquire)
    }

    /// The error a call gets while this node is downed (counted).
    pub(crate) fn downed_error(&self) -> CallError {
        self.stats.downed_calls.fetch_add(1, Ordering::Relaxed);
        CallError::Downed {
            node: self.local.name.clone(),
        }
    }

    /// foca reported `info` up (joined, or back with a renewed identity):
    /// it counts again.
    pub(super) fn sbr_member_up(&self, info: &NodeInfo) {
        if info.name == self.local.name {
            return;
        }
        let mut st = self.sbr.lock();
        st.downed.remove(&info.name);
        match st.members.get(&info.name) {
            Some(m) if m.incarnation > info.incarnation => {}
            _ => {
                st.members.insert(info.name.clone(), info.clone());
            }
        }
    }

    /// An operator downed `name`: it no longer counts.
    pub(super) fn sbr_forget(&self, name: &str) {
        let mut st = self.sbr.lock();
        if let Some(m) = st.members.remove(name) {
            st.downed.insert(name.to_string(), m.incarnation);
        }
    }

    /// One step of the resolver at `now` (after a reachability judgement).
    pub(super) fn split_brain_step(&self, now: Instant) {
        if self.is_closing() {
            return;
        }
        // Copies first: no other lock is held under the resolver's.
        let view = self.view.lock().clone();
        let removed = self.removed.lock().clone();
        let peers: Vec<(PeerSeen, bool)> = self
            .peers
            .read()
            .values()
            .map(|p| {
                let seen = PeerSeen {
                    info: p.info.clone(),
                    heard: p.last_heard(),
                };
                (seen, p.is_leaving() || p.is_down())
            })
            .collect();
        let unreachable: Vec<String> = self.reach.lock().unreachable();
        // The unreachable pairs of the whole cluster: this node's own and
        // the reports of every member it knows of (`indirectly_connected`
        // keeps only those between members it counts or sees).
        let mut known: Vec<String> = view.iter().map(|(i, _)| i.name.clone()).collect();
        known.extend(peers.iter().map(|(p, _)| p.info.name.clone()));
        known.sort();
        known.dedup();
        let pairs = self.reach.lock().pairs(&self.local.name, &known);
        // The members known or counted that the judge still remembers
        // silent (a self-downed node waits for news from them).
        let counted: Vec<String> = self.sbr.lock().members.keys().cloned().collect();
        let remembered: BTreeSet<String> = {
            let reach = self.reach.lock();
            counted
                .iter()
                .chain(known.iter())
                .filter(|n| reach.remembers_silent(n, now))
                .cloned()
                .collect()
        };
        // The members this node reaches: a member foca holds alive is
        // unreachable only if none of them reaches it either
        // (`Reachability::silent_to_side`), so the other side of a clean
        // partition is counted at once, not one member per foca probe.
        let side: Vec<String> = view
            .iter()
            .filter(|(i, s)| {
                i.name != self.local.name
                    && matches!(*s, "alive" | "suspect")
                    && !unreachable.contains(&i.name)
            })
            .map(|(i, _)| i.name.clone())
            .collect();
        let silent_to_side: BTreeSet<String> = {
            let reach = self.reach.lock();
            unreachable
                .iter()
                .filter(|n| reach.silent_to_side(n, &side))
                .cloned()
                .collect()
        };
        let mut st = self.sbr.lock();
        let live = |s: &str| matches!(s, "alive" | "suspect");
        for (info, status) in &view {
            if info.name != self.local.name && live(status) && !st.downed.contains_key(&info.name) {
                let newer = st
                    .members
                    .get(&info.name)
                    .is_none_or(|m| m.incarnation <= info.incarnation);
                if newer {
                    st.members.insert(info.name.clone(), info.clone());
                }
            }
        }
        for (PeerSeen { info, .. }, gone) in &peers {
            if *gone {
                continue;
            }
            if !st.downed.contains_key(&info.name) && !st.members.contains_key(&info.name) {
                st.members.insert(info.name.clone(), info.clone());
            }
        }
        // Graceful leavers no longer count.
        st.members
            .retain(|name, info| !removed.contains(&(name.clone(), info.incarnation)));
        let mut members = vec![SbrMember {
            name: self.local.name.clone(),
            address: self.local.addr.clone(),
            age: self.local.incarnation,
            reachable: true,
        }];
        // Every member, joining ones included: whom a downed node sees
        // before it comes back.
        let mut all = members.clone();
        let downed = self.is_self_downed();
        for (name, info) in &st.members {
            let status = view
                .iter()
                .find(|(i, _)| i.name == *name && i.incarnation >= info.incarnation)
                .map(|(_, s)| *s);
            let cut_from_here = unreachable.contains(name);
            // A connected peer foca has not reported yet counts as alive,
            // except for a downed node: it is back only once membership
            // took it back.
            let connected = !downed
                && peers.iter().any(|(p, gone)| {
                    !*gone && p.info.name == *name && p.info.incarnation >= info.incarnation
                });
            let side_cut = silent_to_side.contains(name);
            let alive = counts_reachable(status, cut_from_here, side_cut, connected);
            let member = SbrMember {
                name: name.clone(),
                address: info.addr.clone(),
                age: info.incarnation,
                reachable: alive,
            };
            all.push(member.clone());
            // A member not known up (joining, or not heard of yet) counts
            // only as a member of the other side, when it is unreachable:
            // a side never counts more of itself than the other side
            // counts of it (remote/join.rs).
            if alive && !self.join_counts(name, info.incarnation) {
                continue;
            }
            members.push(member);
        }
        self.set_converged(members.iter().all(|m| m.reachable));
        // The indirectly connected are found among every member, counted
        // or not (an end of the cut that downed itself first is still
        // one): they are downed, never counted for a side.
        let ic = indirectly_connected(&self.local.name, &all, &pairs);
        for m in &all {
            if ic.contains(&m.name) && !members.iter().any(|x| x.name == m.name) {
                members.push(m.clone());
            }
        }
        let config = *st.resolver.config();
        if !downed && self.is_joining() {
            // Joining: not a member yet, so no decision either.
            return;
        }
        // Members this resolver downed count as the other side until they
        // are known to know it (also for the rejoin check below).
        for (name, incarnation) in st.resolver.unconfirmed() {
            if self.knows_it_was_downed(&name, incarnation) {
                st.resolver.confirm(&name);
            }
        }
        if downed {
            // Back once the resolver would no longer down us over what we
            // see (every member, joining ones included, and the members it
            // downed that do not know it yet): someone alive and reachable,
            // every member reachable or still remembered silent heard from
            // on our own connections since we downed ourselves, our side
            // not the losing one, and this node no longer an end of a
            // partial cut (`SplitBrainResolver::may_rejoin`).
            let since = st.self_downed_at.unwrap_or(now);
            let heard: BTreeSet<String> = peers
                .iter()
                .filter(|(p, gone)| !*gone && p.heard >= since)
                .map(|(p, _)| p.info.name.clone())
                .collect();
            if st
                .resolver
                .may_rejoin(&all, &pairs, &remembered, &heard, now)
            {
                st.resolver.reset();
                st.self_downed_at = None;
                drop(st);
                self.rejoin_after_self_down();
            }
            return;
        }
        let Some(decision) = st.resolver.step_with_pairs(&members, &pairs, now) else {
            return;
        };
        match decision {
            SbrDecision::DownUnreachable(names) => {
                let mut incarnations = Vec::new();
                for name in &names {
                    if let Some(m) = st.members.remove(name) {
                        st.downed.insert(name.clone(), m.incarnation);
                        incarnations.push((name.clone(), m.incarnation));
                    }
                }
                drop(st);
                // Gossiped in the join state: the downed member joins
                // again, and counts here only once up in a later round.
                self.join_downed(&incarnations);
                for name in names {
                    tracing::warn!(
                        member = %name,
                        strategy = %config.strategy,
                        stable_after = ?config.stable_after,
                        "split-brain resolver: downing a member on the other side of a partition"
                    );
                    // Out of routing before anyone hears of it: whoever
                    // reacts to the event routes nothing there.
                    if let Some(node) = self.node.upgrade() {
                        node.registry().drop_node(&name);
                    }
                    // Counted once out of routing, before the event.
                    self.stats.split_brain_downs.fetch_add(1, Ordering::Relaxed);
                    self.emit(ClusterEvent::Down {
                        name: name.clone(),
                        reason: format!("downed by the split-brain resolver ({})", config.strategy),
                    });
                    self.to_membership(MembershipInput::Down(name));
                }
            }
            SbrDecision::DownSelf => {
                drop(st);
                self.down_self(&config);
            }
            SbrDecision::NoAction => {}
        }
    }

    /// This node's side lost: it stops serving and calling across the
    /// cluster, and renews its membership identity.
    pub(super) fn down_self(&self, config: &SplitBrainConfig) {
        tracing::warn!(
            node = %self.local.name,
            strategy = %config.strategy,
            stable_after = ?config.stable_after,
            "split-brain resolver: this node is on the losing side of a partition and downs itself; \
             it serves no calls from other nodes until it rejoins after the heal"
        );
        self.go_down(config);
    }

    /// Another node's resolver downed this node (its gossiped join state
    /// says so) before this node's own did: it goes down the same way, and
    /// rejoins when its own resolver's rejoin check passes.
    pub(super) fn downed_by_another(&self, by: &str) {
        let config = *self.sbr.lock().resolver.config();
        tracing::warn!(
            node = %self.local.name,
            by = %by,
            "downed by another node's split-brain resolver: this node downs itself; \
             it serves no calls from other nodes until it rejoins (in a new round, admitted again)"
        );
        self.go_down(&config);
    }

    /// Stops serving and calling across the cluster (every remote route
    /// dropped, no table applied) and renews the membership identity.
    fn go_down(&self, config: &SplitBrainConfig) {
        self.sbr.lock().self_downed_at = Some(Instant::now());
        self.self_downed.store(true, Ordering::Release);
        self.stats.self_downs.fetch_add(1, Ordering::Relaxed);
        let node = self.node.upgrade();
        for p in self.peers.read().values() {
            p.forget_table();
            if let Some(n) = &node {
                n.registry().drop_node(&p.info.name);
            }
        }
        self.emit(ClusterEvent::SelfDowned {
            strategy: config.strategy.to_string(),
        });
        self.to_membership(MembershipInput::RenewIdentity);
    }

    /// The partition healed and the cluster took this node back.
    fn rejoin_after_self_down(&self) {
        self.self_downed.store(false, Ordering::Release);
        tracing::info!(
            node = %self.local.name,
            "split-brain resolver: back after the heal; joining again (serving once the members admit it)"
        );
        // Every peer's table is fetched again (once it is up, see
        // `join_driver.rs`).
        for p in self.peers.read().values() {
            p.forget_table();
        }
        self.emit(ClusterEvent::Rejoined);
    }
}
