//! The split-brain resolver's driver (see `remote/split_brain.rs`): feeds
//! it this node's view at every reachability judgement and carries out its
//! decisions.
//!
//! * **Unreachable, for the resolver**, is a member foca holds down (or no
//!   longer lists), or one foca suspects and this node's own reachability
//!   judge finds silent (`remote/reachability.rs`): the other side of a
//!   clean partition, seen within the judge's 1.5 s (so both sides start
//!   their timers at about the same time). A member only this node cannot
//!   reach while SWIM keeps it alive through a third node (a partial cut)
//!   is not counted unreachable: downing by policy there would have both
//!   ends of the cut down each other (Akka downs the "indirectly connected"
//!   nodes; not done here), so a partial cut stays reported, not resolved.
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
//! * **Down itself.** The losing side sets the `self_downed` flag: inbound
//!   calls are refused with `CallError::Downed` at once, local callers of
//!   remote services get it at once too (every remote route is dropped and
//!   no table is applied while downed), the gateway answers 503 and
//!   `/readyz` 503, the status shows the node `down`. Its membership
//!   identity is renewed at once: foca declares the old identity down, and
//!   the node is a member again only when a member accepts the new one,
//!   that is after the heal. It then rejoins when its resolver no longer
//!   decides `DownSelf` over what it sees (the others alive and reachable):
//!   the flag is cleared, every peer's table is fetched again.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::{MembershipInput, Remoting};
use crate::error::CallError;
use crate::remote::frame::NodeInfo;
use crate::remote::split_brain::{
    decide, SbrDecision, SbrMember, SplitBrainConfig, SplitBrainResolver,
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
}

impl SbrState {
    pub(crate) fn new(me: &str, config: SplitBrainConfig) -> Self {
        Self {
            resolver: SplitBrainResolver::new(me, config),
            members: BTreeMap::new(),
            downed: BTreeMap::new(),
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
        let peers: Vec<(NodeInfo, bool)> = self
            .peers
            .read()
            .values()
            .map(|p| (p.info.clone(), p.is_leaving() || p.is_down()))
            .collect();
        let unreachable: Vec<String> = self.reach.lock().unreachable();
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
        for (info, gone) in &peers {
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
                    !*gone && p.name == *name && p.incarnation >= info.incarnation
                });
            let alive = match status {
                Some("alive") => true,
                Some("suspect") => !cut_from_here,
                _ => connected && !cut_from_here,
            };
            members.push(SbrMember {
                name: name.clone(),
                address: info.addr.clone(),
                age: info.incarnation,
                reachable: alive,
            });
        }
        let config = *st.resolver.config();
        if downed {
            // Back once the resolver would no longer down us over what we
            // see: someone alive and reachable, and our side not the losing
            // one.
            let someone = members
                .iter()
                .any(|m| m.name != self.local.name && m.reachable);
            if someone
                && decide(&config.strategy, &self.local.name, &members) != SbrDecision::DownSelf
            {
                st.resolver.reset();
                drop(st);
                self.rejoin_after_self_down();
            }
            return;
        }
        let Some(decision) = st.resolver.step(&members, now) else {
            return;
        };
        match decision {
            SbrDecision::DownUnreachable(names) => {
                for name in &names {
                    if let Some(m) = st.members.remove(name) {
                        st.downed.insert(name.clone(), m.incarnation);
                    }
                }
                drop(st);
                for name in names {
                    self.stats.split_brain_downs.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        member = %name,
                        strategy = %config.strategy,
                        stable_after = ?config.stable_after,
                        "split-brain resolver: downing a member on the other side of a partition"
                    );
                    self.emit(ClusterEvent::Down {
                        name: name.clone(),
                        reason: format!("downed by the split-brain resolver ({})", config.strategy),
                    });
                    if let Some(node) = self.node.upgrade() {
                        node.registry().drop_node(&name);
                    }
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
        self.self_downed.store(true, Ordering::Release);
        self.stats.self_downs.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            strategy = %config.strategy,
            stable_after = ?config.stable_after,
            "split-brain resolver: this node is on the losing side of a partition and downs itself; \
             it serves no calls from other nodes until it rejoins after the heal"
        );
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
        tracing::info!("split-brain resolver: rejoined the cluster after the heal; serving again");
        // Every peer's table is fetched again (the next ping asks for it).
        for p in self.peers.read().values() {
            p.forget_table();
        }
        self.emit(ClusterEvent::Rejoined);
    }
}
