//! The join step's driver (see `remote/join.rs`): a [`JoinGate`] per
//! node, stepped after every reachability judgement (after the split-brain
//! resolver's step), its state gossiped through membership (the custom
//! broadcast tagged `0xfe`), and what follows from it:
//!
//! * **Not a member** while joining (or downed by the resolver): calls
//!   from other nodes are refused with `CallError::Joining` (`Downed` when
//!   downed), the node's own callers of services on other nodes and of
//!   keyed services get the same error at once, other nodes' tables are not
//!   applied, and it sends no table of its own (the members hold it as
//!   pending and route nothing to it).
//! * **Downed by another node's resolver** (it hears so in that node's
//!   gossiped state, `JoinState::downs`): it joins again in a new round,
//!   so it counts for nobody until admitted (seed 329 of `msa sim`).
//! * **Up**: its table version is bumped (the members fetch its full table
//!   as they hear the version), and every peer's table is fetched again
//!   at once.
//! * **Seeds that hang.** A node with seeds is `up` alone (no member to
//!   admit it) only once no seed's dial has hung for `JOIN_ALONE_AFTER`:
//!   a seed whose last dial timed out counts as hanging until a dial to it
//!   is answered (connected, or refused).
//! * **Only the first seed founds.** Up alone at all only if the node has
//!   no seeds or its own advertised address is the first address of its
//!   discovery's latest answer (`JoinGate::set_first_seed`, set by the seed
//!   loop at every round); any other node with seeds joins until a member
//!   admits it (seed 101624 of `msa sim`).

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::{MembershipInput, Remoting};
use crate::error::CallError;
use crate::remote::frame::Frame;
use crate::remote::join::{JoinGate, JoinPhase, JoinState};

/// One node's join step and what it is stepped with.
#[derive(Debug)]
pub(crate) struct JoinDriver {
    gate: JoinGate,
    /// Every member the resolver counts was reachable at the last step.
    converged: bool,
    /// Seeds whose last dial hung (timed out unanswered).
    hanging: BTreeSet<String>,
    /// When a seed's dial last hung, or when the last hanging seed
    /// answered.
    last_hang: Option<Instant>,
}

impl JoinDriver {
    /// The join step of `me` at `incarnation`: `up` at once without seeds.
    pub(crate) fn new(me: &str, incarnation: u64, has_seeds: bool) -> Self {
        Self {
            gate: JoinGate::new(me, incarnation, Instant::now(), has_seeds),
            converged: false,
            hanging: BTreeSet::new(),
            last_hang: None,
        }
    }
}

impl Remoting {
    /// Whether this node is still joining the cluster (started, or back
    /// after the split-brain resolver downed it, and not admitted yet).
    pub(crate) fn is_joining(&self) -> bool {
        !self.joined.load(Ordering::Acquire) && !self.is_self_downed()
    }

    /// Whether this node serves as a member: `up`, and not downed.
    pub(crate) fn is_member(&self) -> bool {
        self.joined.load(Ordering::Acquire) && !self.is_self_downed()
    }

    /// The error a call gets while this node is not a member (downed or
    /// joining), counted; `None` while it is one.
    pub(crate) fn refusal(&self) -> Option<CallError> {
        if self.is_self_downed() {
            return Some(self.downed_error());
        }
        if self.joined.load(Ordering::Acquire) {
            return None;
        }
        self.stats.downed_calls.fetch_add(1, Ordering::Relaxed);
        Some(CallError::Joining {
            node: self.local.name.clone(),
        })
    }

    /// The refusal as it travels back to a caller on another node.
    pub(super) fn refusal_error(&self) -> CallError {
        self.refusal().unwrap_or_else(|| self.downed_error())
    }

    /// The phase `name` at `incarnation` gossiped last (`None`: not heard).
    pub(super) fn join_phase_of(&self, name: &str, incarnation: u64) -> Option<JoinPhase> {
        self.join.lock().gate.phase_of(name, incarnation)
    }

    /// Whether `name` at `incarnation` counts on its own side for the
    /// split-brain resolver (known `up`, or downed).
    pub(super) fn join_counts(&self, name: &str, incarnation: u64) -> bool {
        self.join.lock().gate.counts(name, incarnation)
    }

    /// Whether this node's resolver downed `name` at `incarnation` (or a
    /// later one) and it has not come back in a later round since.
    pub(super) fn downed_here(&self, name: &str, incarnation: u64) -> bool {
        self.join.lock().gate.downed_at(name, incarnation)
    }

    /// Whether `name`, downed here at `incarnation`, is known to know it
    /// (`JoinGate::knows_it_was_downed`).
    pub(super) fn knows_it_was_downed(&self, name: &str, incarnation: u64) -> bool {
        self.join.lock().gate.knows_it_was_downed(name, incarnation)
    }

    /// Whether every member the resolver counts is reachable (an `up`
    /// member admits joining ones only then).
    pub(super) fn set_converged(&self, converged: bool) {
        self.join.lock().converged = converged;
    }

    /// This node's resolver downed these members (name, incarnation).
    pub(super) fn join_downed(&self, downed: &[(String, u64)]) {
        let mut j = self.join.lock();
        for (name, incarnation) in downed {
            j.gate.downed(name, *incarnation);
        }
    }

    /// Join states heard in the gossip.
    pub(super) fn on_join_states(&self, states: Vec<JoinState>) {
        let mut j = self.join.lock();
        for s in states {
            j.gate.on_state(s);
        }
    }

    /// Whether this node's own address is the first of its seeds (the
    /// discovery's latest answer): only then may it be `up` alone.
    pub(super) fn join_first_seed(&self, first: bool) {
        self.join.lock().gate.set_first_seed(first);
    }

    /// A dial to seed `addr` hung (`true`: no answer within the connect
    /// timeout) or was answered (`false`: connected, or refused).
    pub(super) fn seed_dial(&self, addr: &str, hung: bool) {
        let mut j = self.join.lock();
        let changed = if hung {
            j.hanging.insert(addr.to_string())
        } else {
            j.hanging.remove(addr)
        };
        if hung || changed {
            j.last_hang = Some(Instant::now());
        }
    }

    /// One join step at `now` (after the judgement and the resolver).
    pub(super) fn join_step(&self, now: Instant) {
        if self.is_closing() {
            return;
        }
        let mut seen: Vec<(String, u64)> = self
            .expected_members()
            .into_iter()
            .map(|i| (i.name, i.incarnation))
            .collect();
        seen.sort();
        // What arrived from each member since: an admission waits for news
        // from every member counted since the joiner appeared (an admission
        // must not race a cut its judge has not seen yet).
        let heard: Vec<(String, Instant)> = seen
            .iter()
            .filter_map(|(name, incarnation)| {
                self.peer(name)
                    .filter(|p| !p.is_down() && p.info.incarnation >= *incarnation)
                    .map(|p| (name.clone(), p.last_heard()))
            })
            .collect();
        let downed = self.is_self_downed();
        let mut j = self.join.lock();
        for (name, at) in &heard {
            j.gate.heard_from(name, *at);
        }
        // A seed hanging right now keeps the node joining.
        let hang = if j.hanging.is_empty() {
            j.last_hang
        } else {
            Some(now)
        };
        let converged = j.converged;
        let step = j.gate.step(now, &seen, converged, downed, hang);
        let up = j.gate.is_up();
        drop(j);
        let was = self.joined.swap(up, Ordering::AcqRel);
        if let Some(by) = &step.downed_by {
            // Down as if its own resolver had downed it: it stops serving
            // and calling across the cluster, and comes back only when its
            // own rejoin check passes (not while it is still an end of a
            // partial cut: a new round admitted at once by a member that
            // had just downed it brought an end back inside the cut).
            if !downed {
                self.downed_by_another(by);
            }
        }
        if let Some(s) = step.publish {
            self.to_membership(MembershipInput::PublishJoin(s));
        }
        if up && !was {
            self.now_up(step.up == Some(true));
        }
    }

    /// This node was just admitted (or is up alone): it advertises its
    /// services (a new table version) and fetches every peer's table.
    fn now_up(&self, alone: bool) {
        let how = if alone {
            "alone: the first seed (or no seeds), no member to admit it and no seed dial hanging"
        } else {
            "admitted by every member it sees"
        };
        tracing::info!(how, "joined the cluster: up; serving as a member");
        for p in self.peers.read().values() {
            p.forget_table();
            let _ = p.send(Frame::TableRequest);
        }
        self.publish_table();
    }
}
