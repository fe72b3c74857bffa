//! Reachability from this node (see `remote/reachability.rs`): the periodic
//! judgement, what it does to routing, why a call found no instance, and
//! which members' tables are still missing.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{MembershipInput, Remoting};
use crate::error::CallError;
use crate::remote::frame::NodeInfo;
use crate::remote::reachability::Observation;

/// A report is gossiped again after this many judgements without change, so
/// a node that missed it (or joined later) hears it.
const REPORT_EVERY_TICKS: u32 = 16;

impl Remoting {
    /// Members this node expects to reach: those membership holds alive or
    /// suspect, and connected peers it has not reported yet (not leaving,
    /// and not left: a graceful leave is not a cut).
    pub(super) fn expected_members(&self) -> Vec<NodeInfo> {
        let mut v: Vec<NodeInfo> = self
            .view
            .lock()
            .iter()
            .filter(|(i, s)| i.name != self.local.name && matches!(*s, "alive" | "suspect"))
            .map(|(i, _)| i.clone())
            .collect();
        {
            let removed = self.removed.lock();
            v.retain(|i| !removed.contains(&(i.name.clone(), i.incarnation)));
        }
        for p in self.peers.read().values() {
            if !p.is_leaving() && !p.is_down() && !v.iter().any(|i| i.name == p.info.name) {
                v.push(p.info.clone());
            }
        }
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v.dedup_by(|a, b| a.name == b.name);
        v
    }

    /// Judges reachability every `heartbeat / 2` until the node closes (every
    /// heartbeat while there is no member to judge): an idle node of three
    /// wakes for it 4 times a second, not 8.
    pub(super) async fn reachability_loop(self: Arc<Self>) {
        let every = (self.cfg.heartbeat / 2).max(Duration::from_millis(10));
        // On the node's grid, with the connections' heartbeat ticks.
        let mut tick = self.grid.interval(every);
        let mut closed = self.closed.subscribe();
        let mut quiet = 0u32;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = closed.changed() => return,
            }
            if self.is_closing() {
                return;
            }
            let now = Instant::now();
            let changed = self.judge_reachability(now);
            self.split_brain_step(now);
            self.join_step(now);
            // Nobody to judge (a lone node): look again after a heartbeat
            // rather than twice as often, so an idle node sleeps. A
            // member that appears is judged within one heartbeat, well inside
            // the detection bound.
            if self.expected_members().is_empty() {
                let next = tokio::time::Instant::now() + self.cfg.heartbeat.max(every);
                tick.reset_at(self.grid.nearest(next, every));
            }
            quiet += 1;
            if changed || quiet >= REPORT_EVERY_TICKS {
                quiet = 0;
                let report = self
                    .reach
                    .lock()
                    .own_report(&self.local.name, self.local.incarnation);
                self.to_membership(MembershipInput::PublishReach(report));
            }
        }
    }

    /// One judgement at `now`: `true` if a member changed.
    pub(super) fn judge_reachability(&self, now: Instant) -> bool {
        let observed: Vec<Observation> = self
            .expected_members()
            .into_iter()
            .map(|info| {
                let heard = self
                    .peer(&info.name)
                    .filter(|p| !p.is_down() && p.info.incarnation >= info.incarnation)
                    .map(|p| p.last_heard());
                Observation {
                    name: info.name,
                    incarnation: info.incarnation,
                    heard,
                }
            })
            .collect();
        let changes = self.reach.lock().step(now, &observed);
        for name in &changes.unreachable {
            self.stats.unreachable_marks.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                member = %name,
                after = ?self.cfg.unreachable_after(),
                "member unreachable from this node; its services leave routing here"
            );
            if let Some(p) = self.peer(name) {
                p.forget_table();
            }
            if let Some(node) = self.node.upgrade() {
                node.registry().drop_node(name);
            }
        }
        for name in &changes.reachable {
            tracing::info!(member = %name, "member reachable again from this node");
            // Its table was forgotten when it became unreachable: fetch it
            // now rather than at its next data-connection ping, which a
            // connection with a live membership lane sends only once in a
            // few heartbeats (`writer.rs`, `Heartbeat`).
            if let Some(p) = self.peer(name) {
                if !p.is_down() && !p.has_applied_table() {
                    let _ = p.send(crate::remote::frame::Frame::TableRequest);
                }
            }
        }
        !changes.is_empty()
    }

    /// Why no instance of `service` could be picked, when reachability or
    /// missing tables explain it: `Unreachable` if its last known table from
    /// a member this node cannot reach listed it, else `TablesPending` while
    /// some member's table has not arrived (only when `pending` is set: the
    /// service is not known at all). Counted.
    pub(crate) fn why_missing(&self, service: &str, pending: bool) -> Option<CallError> {
        if let Some(e) = self.refusal() {
            return Some(e);
        }
        let host = self.reach.lock().unreachable_host(service);
        match host {
            Some(node) => Some(self.counted(CallError::Unreachable { node })),
            None if pending => self.pending_on(service, self.tables_pending()),
            None => None,
        }
    }

    /// Why a service known here has no instance to call, when reachability
    /// or a table being fetched again explains it: `Unreachable` as in
    /// [`why_missing`](Self::why_missing), else `TablesPending` while a
    /// member this node is connected to has not sent its table again (just
    /// after this node is admitted it fetches every table again, and a
    /// member reachable again after a moment unreachable sends its table
    /// anew: the service's instances may be in it). A member whose
    /// connection is down is not waited for (its instances are gone:
    /// `NoInstance`). Counted.
    pub(crate) fn why_no_instance(&self, service: &str) -> Option<CallError> {
        if let Some(e) = self.why_missing(service, false) {
            return Some(e);
        }
        let nodes: Vec<String> = self
            .tables_pending()
            .into_iter()
            .filter(|name| self.peer(name).is_some_and(|p| !p.is_down()))
            .collect();
        self.pending_on(service, nodes)
    }

    /// `TablesPending` for `service` while `nodes` (members whose table has
    /// not arrived) is not empty, counted; `None` when it is.
    fn pending_on(&self, service: &str, nodes: Vec<String>) -> Option<CallError> {
        if nodes.is_empty() {
            return None;
        }
        Some(self.counted(CallError::TablesPending {
            service: service.to_string(),
            nodes,
        }))
    }

    /// `e`, counted as a call refused for reachability or missing tables.
    fn counted(&self, e: CallError) -> CallError {
        self.stats.unreachable_calls.fetch_add(1, Ordering::Relaxed);
        e
    }

    /// The members this node expects to reach whose service table it does
    /// not hold yet, sorted (members it cannot reach are reported as
    /// unreachable instead, not here).
    ///
    /// Expected members are those membership holds alive or suspect,
    /// connected peers, and members a peer's table named in the last
    /// `connect_timeout + unreachable_after` (they are being dialed). Before this node has
    /// connected to anyone, its seeds are pending, named by address (its own
    /// address excluded; a seed that turns out to be this node counts as
    /// a connection).
    pub(crate) fn tables_pending(&self) -> Vec<String> {
        if !self.ever_connected.load(Ordering::Acquire) && !self.cfg.seeds.is_empty() {
            let mut seeds = self.cfg.seeds.clone();
            seeds.retain(|s| *s != self.local.addr);
            seeds.sort();
            seeds.dedup();
            return seeds;
        }
        let mut names: Vec<String> = self
            .expected_members()
            .into_iter()
            .map(|i| i.name)
            .collect();
        // Locks are taken one at a time (never the view's under this one's).
        let in_view: Vec<String> = self
            .view
            .lock()
            .iter()
            .map(|(i, _)| i.name.clone())
            .collect();
        let mut reach = self.reach.lock();
        for name in reach.learned(Instant::now(), self.learned_for()) {
            let known = in_view.contains(&name);
            if !known && !names.contains(&name) && name != self.local.name {
                names.push(name);
            }
        }
        names.sort();
        names.retain(|name| !reach.is_unreachable(name));
        drop(reach);
        names.retain(|name| {
            self.peer(name)
                .is_none_or(|p| p.is_down() || !p.has_applied_table())
        });
        names
    }

    /// How long a member named in a peer's table counts as expected while
    /// this node dials it: the dial's bound plus the unreachable bound.
    fn learned_for(&self) -> Duration {
        self.cfg.connect_timeout + self.cfg.unreachable_after()
    }

    /// Whether this node can reach `name` (itself included).
    pub(crate) fn reachable(&self, name: &str) -> bool {
        !self.reach.lock().is_unreachable(name)
    }

    /// Every unreachable pair `[observer, subject]` this node knows of.
    pub(crate) fn unreachable_pairs(&self) -> Vec<[String; 2]> {
        let mut members: Vec<String> = self
            .expected_members()
            .into_iter()
            .map(|i| i.name)
            .collect();
        members.push(self.local.name.clone());
        self.reach.lock().pairs(&self.local.name, &members)
    }
}
