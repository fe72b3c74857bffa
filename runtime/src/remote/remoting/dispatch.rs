//! Frame dispatch on a data connection: calls served, replies completed,
//! tables applied, members learned.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::{ConnectionError, MembershipInput, Remoting};
use crate::remote::frame::{Frame, FrameDecoder, Incoming, NodeInfo, Route, WireError, WireMeta};
use crate::remote::inbound::{resolved, Inbound, LocalNode, ServeDeadline, TellRun};
use crate::remote::peer::Peer;
use crate::remote::routes::InboundRoutes;
use crate::remote::table::RegistryTables;
use crate::remote::wire::WireMetaExt;
use crate::CallError;

/// A served tell that waits for room in its instance's mailbox (the reader
/// waits with it).
pub(super) type TellWait = crate::remote::wire::BoxFuture<Result<(), CallError>>;

impl Remoting {
    /// This node's service table.
    pub(crate) fn table(&self) -> Frame {
        // The version is read before the registry: a table is never labelled
        // newer than its contents (a change made meanwhile bumps it again).
        let version = self.table_version.load(Ordering::Acquire);
        let services = self
            .node
            .upgrade()
            .map(|n| n.registry().local_table())
            .unwrap_or_default();
        Frame::Table {
            version,
            services,
            members: self.peers(),
        }
    }

    /// Sends this node's service table to `peer`, then the topics it has
    /// subscribers for (the same moments: on connect and when asked).
    /// Nothing while this node is not a member (joining, or downed): the
    /// peer holds its table as pending (its services are not routed here,
    /// a call to one is a retryable `TablesPending` there), and fetches it
    /// when it is up, as the version is bumped then (`join_driver.rs`).
    pub(crate) fn send_table(&self, peer: &Peer) {
        if !self.is_member() {
            tracing::debug!(peer = %peer.info.name, "table not sent: this node is downed or joining");
            return;
        }
        let _ = peer.send(self.table());
        let topics = self
            .node
            .upgrade()
            .map(|n| n.registry().topics.local_ads())
            .unwrap_or_default();
        let _ = peer.send(Frame::Topics { topics });
    }

    /// A local registry change: bumps the table version and gossips it;
    /// peers fetch the table over their connection when they hear of it.
    pub(crate) fn publish_table(&self) {
        let v = self.table_version.fetch_add(1, Ordering::AcqRel) + 1;
        self.to_membership(MembershipInput::Publish(v));
    }

    /// Handles one frame of a data connection; a tell that must wait for
    /// mailbox room comes back as the wait (the reader reads no more until
    /// it is over). `Err` closes the connection.
    pub(super) fn on_frame(
        self: &Arc<Self>,
        peer: &Arc<Peer>,
        f: Frame,
        routes: &mut InboundRoutes<Arc<Inbound>>,
    ) -> Result<Option<TellWait>, ConnectionError> {
        let Some(node) = self.node.upgrade() else {
            return Err(ConnectionError::NodeGone);
        };
        match f {
            Frame::Ping { id, table } => {
                // A heartbeat (id 0) is not answered: each end sends its
                // own, so a pong would only wake both ends once more per
                // heartbeat (issue 12: an idle node of three). A ping with
                // an id (a probe that waits for its answer) is.
                if id != 0 {
                    let _ = peer.send(Frame::Pong { id });
                }
                // Anti-entropy: a version the gossip did not bring is fetched.
                peer.want_table(table);
            }
            Frame::TableRequest => self.send_table(peer),
            Frame::Topics { topics } => {
                if !self.is_member() || peer.is_leaving() {
                    tracing::debug!(peer = %peer.info.name, "topics ignored: downed, joining or leaving");
                } else if let Err(reason) = crate::registry::check_group_ads(&topics) {
                    // A malformed group membership: the whole frame is
                    // refused (what we knew of the peer's topics stays).
                    node.registry()
                        .topics
                        .counters
                        .refused_ads
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(peer = %peer.info.name, %reason, "topics frame refused: malformed group membership");
                } else {
                    let link: Arc<dyn crate::registry::PeerLink> = peer.clone();
                    node.registry().topics.set_remote(link, topics);
                }
            }
            Frame::Publish {
                topic,
                message,
                payload,
                plain,
                members,
            } => {
                if self.is_member() {
                    node.registry()
                        .topics
                        .deliver_wire(&topic, &message, &payload, plain, &members);
                }
            }
            Frame::PublishRun {
                topic,
                message,
                events,
            } => {
                if self.is_member() {
                    let events: Vec<crate::registry::WireEvent<'_>> = events
                        .iter()
                        .map(|e| crate::registry::WireEvent {
                            payload: &e.payload,
                            plain: e.plain,
                            members: e.members.clone(),
                        })
                        .collect();
                    node.registry()
                        .topics
                        .deliver_wire_run(&topic, &message, &events);
                }
            }
            Frame::GroupAsk {
                id,
                topic,
                member,
                message,
                timeout_ms,
                payload,
            } => {
                let served = if let Some(e) = self.refusal() {
                    Err(e)
                } else {
                    let timeout = Duration::from_millis(timeout_ms.max(1));
                    node.registry()
                        .topics
                        .ask_member(&topic, member, &message, &payload, timeout)
                };
                match served {
                    Ok(fut) => reply_when_served(peer, id, fut),
                    Err(e) => {
                        let error = WireError::from_call(&e);
                        let _ = peer.send(Frame::Error { id, error });
                    }
                }
            }
            Frame::Pong { .. } => {}
            Frame::LiveRequest { id, query } => self.on_live_request(peer, id, &query),
            Frame::LiveReply { id, report } => peer.complete(id, Ok(report)),
            Frame::Reply { id, payload } => peer.complete(id, Ok(payload)),
            Frame::Error { id, error } => peer.complete(id, Err(error)),
            Frame::Table {
                version,
                services,
                members,
            } => {
                if !self.is_member() {
                    // Downed or joining: no route to another node until it
                    // is up (the tables are fetched again then).
                    tracing::debug!(peer = %peer.info.name, version, "table ignored: this node is downed or joining");
                } else if peer.is_leaving() {
                    // A leaving node's services stay out of routing.
                    tracing::debug!(peer = %peer.info.name, version, "table of a leaving peer ignored");
                } else if self.downed_here(&peer.info.name, peer.info.incarnation) {
                    // This node's resolver downed the peer at that
                    // incarnation: its services stay out of routing until
                    // it is admitted again (a table it sent before it knew,
                    // or after a dropped connection, must not bring them
                    // back; the partial-cut test in tests/it/split_brain.rs).
                    tracing::debug!(peer = %peer.info.name, version, "table of a member downed here ignored");
                } else if peer.accept_table(version) {
                    let names = services.iter().map(|ad| ad.name.clone()).collect();
                    self.reach.lock().record_services(
                        &peer.info.name,
                        peer.info.incarnation,
                        names,
                    );
                    node.registry().apply_remote_table(peer, services);
                    peer.table_applied(version);
                    if self.downed_here(&peer.info.name, peer.info.incarnation) {
                        // The resolver downed it while the table was being
                        // applied (it drops the node's routes after marking
                        // it downed, so one of the two drops comes last).
                        node.registry().drop_node(&peer.info.name);
                    }
                } else {
                    tracing::debug!(peer = %peer.info.name, version, "stale service table ignored");
                }
                {
                    let now = std::time::Instant::now();
                    let mut reach = self.reach.lock();
                    for m in &members {
                        if m.name != self.local.name {
                            reach.learn(&m.name, now);
                        }
                    }
                }
                self.learn_members(members);
            }
            Frame::Tell {
                route,
                meta,
                payload,
            } => return self.on_tell(&node, peer, routes, route, meta, &payload),
            Frame::Ask {
                id,
                route,
                meta,
                payload,
            } => self.on_ask(&node, peer, routes, id, route, meta, &payload)?,
            Frame::AskJson {
                id,
                service,
                message,
                meta,
                body,
            } => {
                if !self.is_member() {
                    let error = WireError::from_call(&self.refusal_error());
                    let _ = peer.send(Frame::Error { id, error });
                    return Ok(None);
                }
                let deadline = ServeDeadline::new(&*node, meta.timeout_ms);
                let mut meta = meta.verified_metadata(&*node, &peer.info.name);
                meta.set_deadline_ms(deadline.deadline_ms);
                match serve_ask_json(&node, &service, &message, meta, &body, deadline.timeout) {
                    Ok(fut) => reply_when_served(peer, id, fut),
                    Err(error) => {
                        let _ = peer.send(Frame::Error { id, error });
                    }
                }
            }
            Frame::AskBincode {
                id,
                service,
                message,
                meta,
                body,
            } => {
                // Downed or joining: refused, as a forwarded JSON ask is.
                if !self.is_member() {
                    let error = WireError::from_call(&self.refusal_error());
                    let _ = peer.send(Frame::Error { id, error });
                    return Ok(None);
                }
                let deadline = ServeDeadline::new(&*node, meta.timeout_ms);
                let mut meta = meta.verified_metadata(&*node, &peer.info.name);
                meta.set_deadline_ms(deadline.deadline_ms);
                let served =
                    node.clone()
                        .serve_bincode(&service, &message, meta, &body, deadline.timeout);
                match served {
                    Ok(fut) => reply_when_served(peer, id, fut),
                    Err(error) => {
                        let _ = peer.send(Frame::Error { id, error });
                    }
                }
            }
            Frame::Membership { payload } => self.to_membership(MembershipInput::Data(payload)),
            Frame::Leaving => {
                peer.mark_leaving();
                // Its state is `removed` from now on, whichever of its
                // connection's end and the membership verdict comes first.
                self.mark_removed(&peer.info);
                // No new call goes there: it may still be draining (replies
                // keep coming on this connection), but it takes no more.
                peer.forget_table();
                node.registry().drop_node(&peer.info.name);
                tracing::info!(peer = %peer.info.name, "peer is leaving; its services leave routing here");
            }
            Frame::CallsDone => peer.peer_calls_done(),
            other => {
                return Err(ConnectionError::ProtocolViolation {
                    kind: other.kind(),
                    place: "after the handshake",
                })
            }
        }
        Ok(None)
    }

    /// Handles one frame as the reader decoded it: calls with their payload
    /// borrowed from the read buffer, other frames by [`on_frame`](Self::on_frame).
    pub(super) fn on_incoming(
        self: &Arc<Self>,
        peer: &Arc<Peer>,
        f: Incoming<'_>,
        routes: &mut InboundRoutes<Arc<Inbound>>,
    ) -> Result<Option<TellWait>, ConnectionError> {
        match f {
            Incoming::Frame(f) => self.on_frame(peer, f, routes),
            Incoming::Publish(p) => {
                if self.is_member() {
                    let node = self.node.upgrade().ok_or(ConnectionError::NodeGone)?;
                    node.registry()
                        .topics
                        .deliver_wire(p.topic, p.message, p.payload, p.plain, &p.members);
                }
                Ok(None)
            }
            Incoming::PublishRun(run) => {
                // One lookup of the topic for the run, one pass per
                // subscriber (a service subscriber's batch).
                if self.is_member() {
                    let node = self.node.upgrade().ok_or(ConnectionError::NodeGone)?;
                    node.registry()
                        .topics
                        .deliver_wire_run(run.topic, run.message, &run.events);
                }
                Ok(None)
            }
            Incoming::Tell {
                route,
                meta,
                payload,
            } => {
                let node = self.node.upgrade().ok_or(ConnectionError::NodeGone)?;
                self.on_tell(&node, peer, routes, route, meta, payload)
            }
            Incoming::Ask {
                id,
                route,
                meta,
                payload,
            } => {
                let node = self.node.upgrade().ok_or(ConnectionError::NodeGone)?;
                self.on_ask(&node, peer, routes, id, route, meta, payload)?;
                Ok(None)
            }
        }
    }

    /// Serves the run of plain tells to `route` that starts at the
    /// decoder's next frame: at most `max` of them, as many as one local
    /// instance has room for, queued as one batch (`service/batch.rs`), or
    /// the wait for room. Always takes at least one frame; gives how many
    /// it took.
    pub(super) fn on_tell_run(
        &self,
        peer: &Arc<Peer>,
        route: u32,
        dec: &mut FrameDecoder,
        routes: &mut InboundRoutes<Arc<Inbound>>,
        max: u32,
    ) -> (u32, Result<Option<TellWait>, ConnectionError>) {
        let mut run = RunSource {
            dec,
            route,
            taken: 0,
            max: max.max(1),
        };
        let served = self.serve_run(peer, &mut run, routes);
        if run.taken == 0 {
            // Refused before its first tell was read: that one is dropped
            // (as a refused tell is), the next frame is read next.
            let _ = run.next_payload();
        }
        (run.taken, served)
    }

    fn serve_run(
        &self,
        peer: &Arc<Peer>,
        run: &mut RunSource<'_>,
        routes: &mut InboundRoutes<Arc<Inbound>>,
    ) -> Result<Option<TellWait>, ConnectionError> {
        let node = self.node.upgrade().ok_or(ConnectionError::NodeGone)?;
        let mut slot = self.route_of(routes, Route::Id(run.route))?;
        let route = slot.get();
        if self.is_self_downed() {
            tracing::debug!(service = %route.service, "remote tell refused: this node is downed");
            return Ok(None);
        }
        match resolved(&node, route).and_then(|inbound| inbound.clone().tell_run(run)) {
            Ok(wait) => Ok(wait),
            Err(e) => {
                tracing::debug!(service = %route.service, message = %route.message, error = ?e, from = %peer.info.name, "remote tell not delivered");
                Ok(None)
            }
        }
    }

    /// Serves a tell: queued on a local instance, or the wait for room.
    fn on_tell(
        &self,
        node: &Arc<dyn LocalNode>,
        peer: &Arc<Peer>,
        routes: &mut InboundRoutes<Arc<Inbound>>,
        route: Route,
        meta: WireMeta,
        payload: &[u8],
    ) -> Result<Option<TellWait>, ConnectionError> {
        let mut slot = self.route_of(routes, route)?;
        let route = slot.get();
        if !self.is_member() {
            let _ = self.refusal_error();
            tracing::debug!(service = %route.service, "remote tell refused: this node is downed or joining");
            return Ok(None);
        }
        let deadline = meta
            .timeout_ms
            .map(|ms| ServeDeadline::new(&**node, Some(ms)));
        let mut meta = meta.verified_metadata(&**node, &peer.info.name);
        if let Some(d) = deadline {
            meta.set_deadline_ms(d.deadline_ms);
        }
        match resolved(node, route).and_then(|inbound| inbound.serve_tell(payload, meta)) {
            Ok(wait) => Ok(wait),
            Err(e) => {
                tracing::debug!(service = %route.service, message = %route.message, error = ?e, "remote tell not delivered");
                Ok(None)
            }
        }
    }

    /// Serves an ask: its reply (or error) goes back on the control lane.
    #[allow(clippy::too_many_arguments)]
    fn on_ask(
        &self,
        node: &Arc<dyn LocalNode>,
        peer: &Arc<Peer>,
        routes: &mut InboundRoutes<Arc<Inbound>>,
        id: u64,
        route: Route,
        meta: WireMeta,
        payload: &[u8],
    ) -> Result<(), ConnectionError> {
        let mut slot = self.route_of(routes, route)?;
        let route = slot.get();
        if !self.is_member() {
            let error = WireError::from_call(&self.refusal_error());
            let _ = peer.send(Frame::Error { id, error });
            return Ok(());
        }
        // The one deadline of the call: the caller's time left, plus slack.
        let deadline = ServeDeadline::new(&**node, meta.timeout_ms);
        if let Some((trace_id, _)) = meta.trace {
            tracing::debug!(
                trace_id = %format_args!("{trace_id:032x}"),
                from = %peer.info.name,
                service = %route.service,
                message = %route.message,
                "remote ask"
            );
        }
        let served = resolved(node, route).and_then(|inbound| {
            inbound.serve_ask(
                payload,
                meta.verified_metadata(&**node, &peer.info.name),
                deadline,
            )
        });
        match served {
            Ok(fut) => {
                let peer = peer.clone();
                peer.serving(true);
                actix_rt::spawn(async move {
                    let frame = match fut.await {
                        Ok(payload) => Frame::Reply { id, payload },
                        Err(error) => Frame::Error { id, error },
                    };
                    let _ = peer.send(frame);
                    peer.serving(false);
                });
            }
            Err(error) => {
                let _ = peer.send(Frame::Error { id, error });
            }
        }
        Ok(())
    }

    /// The route a call frame names; a broken id rule is counted and ends
    /// the connection.
    fn route_of<'a>(
        &self,
        routes: &'a mut InboundRoutes<Arc<Inbound>>,
        route: Route,
    ) -> Result<crate::remote::routes::RouteSlot<'a, Arc<Inbound>>, ConnectionError> {
        routes.lookup(route).map_err(|e| {
            self.stats.route_errors.fetch_add(1, Ordering::Relaxed);
            ConnectionError::Route(e)
        })
    }

    /// Dials members learned from peers that we are not connected to; of two
    /// nodes, only the one with the smaller name dials, so they meet once.
    fn learn_members(self: &Arc<Self>, members: Vec<NodeInfo>) {
        if self.is_closing() {
            return;
        }
        for m in members {
            if m.name == self.local.name || self.local.name > m.name || self.peer(&m.name).is_some()
            {
                continue;
            }
            let me = self.clone();
            actix_rt::spawn(async move {
                if let Ok(Ok(stream)) = tokio::time::timeout(
                    me.cfg.connect_timeout,
                    me.transport.connect(m.addr.clone()),
                )
                .await
                {
                    if let Err(e) = me.clone().outbound(stream, &m.addr).await {
                        tracing::debug!(peer = %m.name, error = %e, "could not reach a learned member");
                    }
                }
            });
        }
    }
}

/// The plain tells to one route at the head of a reader's buffer.
struct RunSource<'a> {
    dec: &'a mut FrameDecoder,
    route: u32,
    /// Tells taken so far.
    taken: u32,
    /// Tells the run may take.
    max: u32,
}

impl TellRun for RunSource<'_> {
    fn next_payload(&mut self) -> Option<&[u8]> {
        if self.taken >= self.max {
            return None;
        }
        let p = self.dec.next_plain_tell(self.route)?;
        self.taken += 1;
        Some(p)
    }
}

/// Runs a served ask's reply future on this thread and sends its outcome
/// to `peer` as `Reply` or `Error` with the ask's `id`, the peer marked
/// serving meanwhile (a JSON ask and a group ask from another node).
fn reply_when_served(peer: &Arc<Peer>, id: u64, fut: crate::json::JsonReply) {
    let peer = peer.clone();
    peer.serving(true);
    actix_rt::spawn(async move {
        let frame = match fut.await {
            Ok(payload) => Frame::Reply { id, payload },
            Err(e) => Frame::Error {
                id,
                error: WireError::from_call(&e),
            },
        };
        let _ = peer.send(frame);
        peer.serving(false);
    });
}

/// Serves a forwarded JSON ask: decoded here, by the service's own
/// registration, then called as any ask is (a keyed service routes it on to
/// the instance that owns its key, wherever that is).
fn serve_ask_json(
    node: &Arc<dyn LocalNode>,
    service: &str,
    message: &str,
    meta: crate::Metadata,
    body: &[u8],
    timeout: Duration,
) -> Result<crate::json::JsonReply, WireError> {
    node.clone()
        .serve_json(service, message, meta, body, timeout)
}
