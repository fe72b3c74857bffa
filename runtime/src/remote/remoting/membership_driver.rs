//! The membership driver: runs foca and acts on its verdicts.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::{nonce, MembershipInput, Remoting};
use crate::remote::frame::{Frame, NodeInfo};
use crate::remote::membership::{Effects, Member, Membership, TableVersion};

impl Remoting {
    pub(super) fn to_membership(&self, input: MembershipInput) {
        if let Some(tx) = self.membership.lock().as_ref() {
            let _ = tx.send(input);
        }
    }

    /// Runs foca: feeds it connections' membership frames and its timers,
    /// carries out what it asks (send, schedule) and acts on its verdicts:
    /// a member declared down loses its connection and its registry entries.
    pub(crate) async fn membership_loop(self: Arc<Self>) {
        let (tx, mut rx) = mpsc::unbounded_channel();
        *self.membership.lock() = Some(tx.clone());
        let seed = u64::from_le_bytes(nonce()[..8].try_into().unwrap_or([7; 8]));
        let config = crate::remote::membership::membership_config_for(self.cfg.failure_detection);
        let mut core = Membership::new(self.local.clone(), config, seed);
        // Rejoin ticks: announce again to known nodes that are not active
        // members (ends with the loop, when the channel closes).
        let every = core.rejoin_interval();
        let ticks = tx.clone();
        let mut tick = self.grid.interval(every);
        actix_rt::spawn(async move {
            tick.tick().await;
            loop {
                tick.tick().await;
                if ticks.send(MembershipInput::Rejoin).is_err() {
                    break;
                }
            }
        });
        actix_rt::spawn(self.clone().reachability_loop());
        // Members already connected before the loop started.
        for p in self.peers() {
            let e = core.announce(p);
            self.apply_membership(e, &tx);
        }
        while let Some(input) = rx.recv().await {
            let leaving = matches!(input, MembershipInput::Leave);
            let e = match input {
                MembershipInput::Announce(to) => core.announce(to),
                MembershipInput::Data(d) => core.data(&d),
                MembershipInput::Timer(t) => core.timer(t),
                MembershipInput::Publish(version) => core.publish_table(TableVersion {
                    node: self.local.name.clone(),
                    incarnation: self.local.incarnation,
                    version,
                }),
                MembershipInput::PublishReach(r) => core.publish_reach(&r),
                MembershipInput::PublishJoin(s) => core.publish_join(&s),
                MembershipInput::Rejoin => core.rejoin(),
                MembershipInput::Down(name) => core.down(&name),
                MembershipInput::RenewIdentity => core.renew_identity(),
                MembershipInput::Leave => core.leave(),
            };
            self.apply_membership(e, &tx);
            *self.view.lock() = core.view();
            if leaving {
                break;
            }
        }
    }

    /// The grid step a foca timer due `after` from now is rounded to (to
    /// the nearest point of the node's grid, `grid.rs`), so that it fires
    /// with the heartbeat ticks rather than in a wake-up of its own:
    ///
    /// - foca's periodic timers (probe, gossip, announces), when their
    ///   period is a multiple of half a heartbeat (all of them with the
    ///   default timing): half a heartbeat, the reachability judgement's
    ///   period. Only the first of each moves (by at most a quarter of a
    ///   heartbeat); the period stays as configured.
    /// - the others (a probe's round-trip check, suspect → down, forgetting
    ///   a down member) and periods that are not such multiples: a tenth of
    ///   half a heartbeat and of foca's probe round trip (25 ms by default),
    ///   so they move by at most half that.
    fn timer_step(
        &self,
        t: &foca::Timer<Member>,
        after: std::time::Duration,
    ) -> std::time::Duration {
        let fine = (self.cfg.heartbeat / 20).min(self.cfg.failure_detection / 200);
        let coarse = self.cfg.heartbeat / 2;
        let periodic = matches!(
            t,
            foca::Timer::ProbeRandomMember(_)
                | foca::Timer::PeriodicGossip(_)
                | foca::Timer::PeriodicAnnounce(_)
                | foca::Timer::PeriodicAnnounceDown(_)
        );
        let multiple = !coarse.is_zero()
            && after >= coarse
            && after.as_nanos().is_multiple_of(coarse.as_nanos());
        if periodic && multiple {
            coarse
        } else {
            fine
        }
    }

    fn apply_membership(self: &Arc<Self>, e: Effects, tx: &mpsc::UnboundedSender<MembershipInput>) {
        for (to, payload) in e.send {
            match self.peer(&to.info.name) {
                Some(p) if !p.is_down() => {
                    let _ = p.send_membership(Frame::Membership { payload });
                }
                _ => self.dial_member(&to.info),
            }
        }
        for (after, t) in e.timers {
            let tx = tx.clone();
            let at = self.grid.nearest(
                tokio::time::Instant::now() + after,
                self.timer_step(&t, after),
            );
            actix_rt::spawn(async move {
                tokio::time::sleep_until(at).await;
                let _ = tx.send(MembershipInput::Timer(t));
            });
        }
        for t in e.tables {
            // A newer table of a peer we are connected to: fetch it.
            let fetching = self.peer(&t.node).is_some_and(|p| {
                p.info.incarnation == t.incarnation && !p.is_down() && p.want_table(t.version)
            });
            if fetching {
                tracing::debug!(peer = %t.node, version = t.version, "fetching a newer service table");
            }
        }
        if !e.reports.is_empty() {
            let mut reach = self.reach.lock();
            for r in e.reports {
                reach.on_report(r);
            }
        }
        if !e.joins.is_empty() {
            self.on_join_states(e.joins);
        }
        if e.renewed {
            tracing::debug!("membership identity renewed");
        }
        for m in e.up {
            tracing::info!(member = %m.info.name, incarnation = m.info.incarnation, "member up");
            self.sbr_member_up(&m.info);
            if self.peer(&m.info.name).is_none() {
                self.dial_member(&m.info);
            }
        }
        for m in e.down {
            match self.peer(&m.info.name) {
                // Its graceful leave (foca's own leave, gossiped) came in
                // after its `Leaving` frame and before its connection
                // closed: news, not a fault (a CI run saw this order).
                Some(p) if p.is_leaving() => {
                    tracing::info!(member = %m.info.name, incarnation = m.info.incarnation, "member left");
                    self.emit(crate::remote::status::ClusterEvent::Left {
                        name: m.info.name.clone(),
                    });
                }
                Some(_) => {
                    tracing::warn!(member = %m.info.name, incarnation = m.info.incarnation, "member declared down");
                    self.emit(crate::remote::status::ClusterEvent::Down {
                        name: m.info.name.clone(),
                        reason: "declared down by failure detection".into(),
                    });
                }
                None => {
                    tracing::warn!(member = %m.info.name, incarnation = m.info.incarnation, "member declared down");
                }
            }
            self.declare_down(&m);
        }
    }

    /// A member foca declared down: close its connection (failing its asks
    /// with `NodeDown`) and drop its instances.
    fn declare_down(&self, m: &Member) {
        let removed = {
            let mut peers = self.peers.write();
            match peers.get(&m.info.name) {
                Some(p) if p.info.incarnation <= m.info.incarnation => peers.remove(&m.info.name),
                _ => None,
            }
        };
        if let Some(p) = removed {
            p.mark_down();
        }
        if let Some(node) = self.node.upgrade() {
            node.registry().drop_node(&m.info.name);
        }
    }

    /// Dials a member (once at a time per address) so membership and calls can reach it.
    fn dial_member(self: &Arc<Self>, info: &NodeInfo) {
        if self.is_closing() || info.addr.is_empty() || info.name == self.local.name {
            return;
        }
        if !self.dialing.lock().insert(info.addr.clone()) {
            return;
        }
        let me = self.clone();
        let addr = info.addr.clone();
        actix_rt::spawn(async move {
            let conn =
                tokio::time::timeout(me.cfg.connect_timeout, me.transport.connect(addr.clone()))
                    .await;
            me.dialing.lock().remove(&addr);
            if let Ok(Ok(stream)) = conn {
                if let Err(e) = me.clone().outbound(stream, &addr).await {
                    tracing::debug!(%addr, error = %e, "could not reach a member");
                }
            }
        });
    }
}
