//! Process groups (OTP's `pg`, ractor's `pg`): service instances (or whole
//! services) join a named group on their node; any node lists the group's
//! members cluster-wide and sends to all of them or to one.
//!
//! A group is carried by the topic machinery itself: group `g` of message
//! type `M` is the internal topic `"\u{1}pg:g\u{1}" + M::NAME`, and each
//! member is a consumer-group member of that topic under its label
//! (`service#slot.incarnation`, or `service`). So membership travels in
//! `Frame::Topics` with the service table (replace-on-table, re-advertised
//! on every change, sent to a node that connects later), a member's node
//! going down drops its members with the rest of its ads, and a send to
//! members on another node is one `Frame::Publish` per node naming them.
//! See docs/streams.md, "Groups".

use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use actix::dev::SendError;
use actix::{AsyncContext, Recipient};

use super::sinks::{typed, ServiceSink};
use super::{live_peer, send_remote, Unsubscribe};
use crate::error::CallError;
use crate::message::{codec, RemoteMessage};
use crate::metadata::Metadata;
use crate::registry::{self, InstanceId, TopicEvent, TopicSink, TopicState, WireAsk};
use crate::remote::frame::Frame;
use crate::remote::wire_error::CallSite;
use crate::service::{Envelope, Handler, HandlerFailure, NodeShared, ServiceContext, ServiceRef};

/// Why a group operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GroupError {
    /// The group name is empty, longer than 255 bytes or holds a control
    /// character.
    #[error("invalid group name {name:?}: {reason}")]
    InvalidName {
        /// The name given (cut to its first 64 characters).
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The group has no member anywhere (as this node knows it).
    #[error("group `{group}` has no member")]
    NoMember {
        /// The group.
        group: String,
    },
    /// The ask to the chosen member failed.
    #[error(transparent)]
    Call(#[from] CallError),
}

/// One member of a group, as [`Group::members`] lists it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub struct GroupMember {
    /// The node it runs on.
    pub node: String,
    /// Its service.
    pub service: String,
    /// The instance that joined (`None`: the service joined as a whole,
    /// with [`Group::join_service`]).
    pub instance: Option<InstanceId>,
    /// Its membership id on its node (a member that joins again is a new
    /// member).
    pub id: u64,
}

/// A membership: the member leaves the group when it is dropped (keep it
/// in the service's state: an instance that ends drops it and leaves).
#[derive(Debug)]
pub struct GroupMembership {
    group: Arc<str>,
    guard: Unsubscribe,
}

impl GroupMembership {
    /// The group joined.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// This membership's id on this node (as [`GroupMember::id`]).
    pub fn id(&self) -> u64 {
        self.guard.id
    }

    /// Leaves the group now (the same as dropping it).
    pub fn leave(self) {}
}

/// A process group of members that take messages of type `M`
/// ([`Node::group`](crate::Node::group)).
pub struct Group<M> {
    node: Arc<NodeShared>,
    name: Arc<str>,
    topic: Arc<str>,
    state: Arc<TopicState>,
    _message: PhantomData<fn(M)>,
}

impl<M> Clone for Group<M> {
    fn clone(&self) -> Self {
        Self {
            node: self.node.clone(),
            name: self.name.clone(),
            topic: self.topic.clone(),
            state: self.state.clone(),
            _message: PhantomData,
        }
    }
}

impl<M> std::fmt::Debug for Group<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Group").field("name", &self.name).finish()
    }
}

fn invalid(name: &str, reason: &'static str) -> GroupError {
    GroupError::InvalidName {
        name: name.chars().take(64).collect(),
        reason,
    }
}

impl<M: RemoteMessage + Clone + Sync> Group<M> {
    pub(crate) fn new(node: Arc<NodeShared>, name: &str) -> Result<Self, GroupError> {
        registry::check_group_name(name).map_err(|r| invalid(name, r))?;
        node.registry.register_codecs([(
            std::any::TypeId::of::<M>(),
            crate::message::wire_codec::wire_codec::<M>(),
        )]);
        let topic = registry::group_topic(name, M::NAME);
        let state = node.registry.topics.state(&topic);
        Ok(Self {
            node,
            name: Arc::from(name),
            topic: Arc::from(topic),
            state,
            _message: PhantomData,
        })
    }

    /// The group's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Joins a service as a whole: a message for this member is told to
    /// the service (any of its instances, as a `tell` routes). Lasts while
    /// the membership is held and the service exists.
    pub fn join_service(&self, service: &ServiceRef) -> GroupMembership
    where
        <M as actix::Message>::Result: Send,
    {
        let sink = Arc::new(ServiceSink::<M>::new(service.clone(), self.node.clone()));
        self.join(registry::member_label(service.name(), None), sink)
    }

    fn join(&self, label: String, sink: Arc<dyn TopicSink>) -> GroupMembership {
        let id = self
            .node
            .registry
            .topics
            .subscribe(&self.topic, Some(&label), sink);
        GroupMembership {
            group: self.name.clone(),
            guard: Unsubscribe {
                node: self.node.clone(),
                topic: self.topic.clone(),
                id,
            },
        }
    }

    /// The members, cluster-wide, as this node knows them now (sorted by
    /// node, service, instance). Eventually consistent: a member that
    /// joined on another node shows once that node's table reached here.
    pub fn members(&self) -> Vec<GroupMember> {
        let routes = self.state.routes();
        let hub = &self.node.registry.topics;
        let mut v = Vec::new();
        for g in &routes.groups {
            let Some((service, instance)) = registry::parse_label(&g.name) else {
                continue;
            };
            for m in &g.members {
                let node = match m.remote {
                    None => hub.node_name().to_string(),
                    Some(i) => match routes.remote.get(i) {
                        Some(r) => r.link.node_name().to_string(),
                        None => continue,
                    },
                };
                v.push(GroupMember {
                    node,
                    service: service.to_string(),
                    instance,
                    id: m.id,
                });
            }
        }
        v.sort();
        v
    }

    /// The members on this node only (OTP's `get_local_members`).
    pub fn local_members(&self) -> Vec<GroupMember> {
        let here = self.node.registry.topics.node_name().to_string();
        let mut v = self.members();
        v.retain(|m| m.node == here);
        v
    }

    /// Tells `msg` to every member, here and on other nodes; returns how
    /// many members it was addressed to. One encoded copy goes to each
    /// other node with members (it hands it to them there). Never waits:
    /// a member whose mailbox is full misses it (counted in
    /// [`TopicStats::lagged`](crate::TopicStats::lagged)), a node whose
    /// connection is full or down misses it (`remote_dropped`).
    pub fn tell_all(&self, msg: M) -> usize {
        let routes = self.state.routes();
        let here: Vec<u64> = routes
            .local
            .iter()
            .filter(|s| s.group.is_some())
            .map(|s| s.id)
            .collect();
        let mut count = here.len();
        let mut there = vec![Vec::new(); routes.remote.len()];
        for g in &routes.groups {
            for m in &g.members {
                if let Some(ids) = m.remote.and_then(|i| there.get_mut(i)) {
                    ids.push(m.id);
                    count += 1;
                }
            }
        }
        let hub = &self.node.registry.topics;
        hub.deliver_local(&routes, M::NAME, TopicEvent::Local(&msg), false, &here);
        send_remote(&self.node, &self.topic, &routes, &msg, false, &mut there);
        count
    }

    /// Tells `msg` to one member: a member on this node if there is one
    /// (round-robin over them), else one on another node (round-robin over
    /// all of them). Returns the member chosen.
    ///
    /// # Errors
    /// [`GroupError::NoMember`] when the group has no member.
    pub fn tell_one(&self, msg: M) -> Result<GroupMember, GroupError> {
        let routes = self.state.routes();
        let hub = &self.node.registry.topics;
        let key = self.state.next_key();
        let local: Vec<_> = routes.local.iter().filter(|s| s.group.is_some()).collect();
        if let Some(s) = pick(&local, key) {
            hub.deliver_local(&routes, M::NAME, TopicEvent::Local(&msg), false, &[s.id]);
            let label = s.group.as_deref().unwrap_or_default();
            return Ok(self.member(label, hub.node_name(), s.id));
        }
        let remote: Vec<_> = routes
            .groups
            .iter()
            .flat_map(|g| g.members.iter().map(move |m| (&g.name, m)))
            .filter_map(|(label, m)| Some((label, m.remote?, m.id)))
            .collect();
        let Some(&(label, i, id)) = pick(&remote, key) else {
            return Err(GroupError::NoMember {
                group: self.name.to_string(),
            });
        };
        let mut there = vec![Vec::new(); routes.remote.len()];
        if let Some(ids) = there.get_mut(i) {
            ids.push(id);
        }
        send_remote(&self.node, &self.topic, &routes, &msg, false, &mut there);
        let node = routes.remote.get(i).map_or("", |r| r.link.node_name());
        Ok(self.member(label, node, id))
    }

    fn member(&self, label: &str, node: &str, id: u64) -> GroupMember {
        let (service, instance) = registry::parse_label(label).unwrap_or((label, None));
        GroupMember {
            node: node.to_string(),
            service: service.to_string(),
            instance,
            id,
        }
    }

    /// Asks one member and waits for its reply, within the node's default
    /// timeout: a member on this node if there is one (round-robin over
    /// them), else one on another node (round-robin over all of them; the
    /// ask travels as a `GroupAsk` frame to that member's node).
    ///
    /// # Errors
    /// [`GroupError::NoMember`] when the group has no member,
    /// [`GroupError::Call`] when the ask fails (the member left meanwhile:
    /// `NoInstance`; its node went down: `NodeDown`; a timeout...).
    pub async fn ask_one(&self, msg: M) -> Result<M::Result, GroupError>
    where
        M::Result: Send,
    {
        let key = self.state.next_key();
        let target = {
            let routes = self.state.routes();
            let local: Vec<_> = routes.local.iter().filter(|s| s.group.is_some()).collect();
            match pick(&local, key) {
                Some(s) => Target::Local(s.sink.clone()),
                None => {
                    let remote: Vec<_> = routes
                        .groups
                        .iter()
                        .flat_map(|g| g.members.iter().map(move |m| (&g.name, m)))
                        .filter_map(|(label, m)| Some((label, m.remote?, m.id)))
                        .collect();
                    let Some(&(label, i, id)) = pick(&remote, key) else {
                        return Err(GroupError::NoMember {
                            group: self.name.to_string(),
                        });
                    };
                    let Some(link) = routes.remote.get(i).map(|r| r.link.clone()) else {
                        return Err(GroupError::NoMember {
                            group: self.name.to_string(),
                        });
                    };
                    let node = link.node_name().to_string();
                    Target::Remote(link, self.member(label, &node, id))
                }
            }
        };
        match target {
            Target::Local(sink) => self.ask_local(&sink, msg).await,
            Target::Remote(link, member) => self.ask_remote(&link, &member, msg).await,
        }
    }

    /// Asks every member, here and on other nodes, at once, and waits for
    /// all the replies (each within the node's default timeout): one
    /// result per member, sorted by member. A member that leaves meanwhile
    /// answers with an error; one that joins meanwhile is not asked.
    pub async fn ask_all(&self, msg: M) -> Vec<(GroupMember, Result<M::Result, GroupError>)>
    where
        M::Result: Send,
    {
        let targets: Vec<(GroupMember, Target)> = {
            let routes = self.state.routes();
            let here = self.node.registry.topics.node_name();
            let mut v = Vec::new();
            for s in &routes.local {
                if let Some(label) = &s.group {
                    v.push((
                        self.member(label, here, s.id),
                        Target::Local(s.sink.clone()),
                    ));
                }
            }
            for g in &routes.groups {
                for m in &g.members {
                    let Some(r) = m.remote.and_then(|i| routes.remote.get(i)) else {
                        continue;
                    };
                    let member = self.member(&g.name, r.link.node_name(), m.id);
                    v.push((member.clone(), Target::Remote(r.link.clone(), member)));
                }
            }
            v
        };
        let asks = targets.into_iter().map(|(member, target)| {
            let msg = msg.clone();
            async move {
                let r = match target {
                    Target::Local(sink) => self.ask_local(&sink, msg).await,
                    Target::Remote(link, m) => self.ask_remote(&link, &m, msg).await,
                };
                (member, r)
            }
        });
        let mut out = futures_util::future::join_all(asks).await;
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Asks a local member through its sink.
    async fn ask_local(&self, sink: &Arc<dyn TopicSink>, msg: M) -> Result<M::Result, GroupError>
    where
        M::Result: Send,
    {
        let any = sink.as_any();
        if let Some(m) = any.and_then(|a| a.downcast_ref::<InstanceSink<M>>()) {
            return m.ask(msg).await;
        }
        if let Some(s) = any.and_then(|a| a.downcast_ref::<ServiceSink<M>>()) {
            return Ok(s.service().ask(msg).await?);
        }
        // Not reached: every local member is one of the two sinks above.
        Err(GroupError::NoMember {
            group: self.name.to_string(),
        })
    }
}

/// Where an ask goes: a local member's sink, or a member on another node.
enum Target {
    Local(Arc<dyn TopicSink>),
    Remote(Arc<dyn registry::PeerLink>, GroupMember),
}

impl<M: RemoteMessage + Clone + Sync> Group<M> {
    /// Asks `member` on the node at the other end of `link`.
    async fn ask_remote(
        &self,
        link: &Arc<dyn registry::PeerLink>,
        member: &GroupMember,
        msg: M,
    ) -> Result<M::Result, GroupError> {
        let timeout = self.node.default_timeout;
        let service = member.service.as_str();
        let node_down = || CallError::NodeDown {
            node: member.node.clone(),
        };
        let peer = live_peer(&self.node, link).ok_or_else(node_down)?;
        let payload = codec::encode(&msg).map_err(|e| CallError::Codec {
            service: service.to_string(),
            reason: e.to_string(),
        })?;
        let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        let (id, rx) = peer.ask(|id| Frame::GroupAsk {
            id,
            topic: self.topic.to_string(),
            member: member.id,
            message: M::NAME.to_string(),
            timeout_ms,
            payload,
        })?;
        let site = CallSite {
            service,
            message: std::any::type_name::<M>(),
            node: &member.node,
            timeout,
        };
        let reply = match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => return Err(node_down().into()),
            Err(_) => {
                peer.cancel(id);
                return Err(CallError::Timeout {
                    service: service.to_string(),
                    after: timeout,
                }
                .into());
            }
        };
        match reply {
            Ok(bytes) => codec::decode::<M::Result>(&bytes).map_err(|e| {
                GroupError::Call(CallError::Codec {
                    service: service.to_string(),
                    reason: format!("the reply does not decode as the result type: {e}"),
                })
            }),
            Err(e) => Err(e.into_call_error(&site).into()),
        }
    }
}

/// The `key`-th of `v` (modulo its length).
fn pick<T>(v: &[T], key: u64) -> Option<&T> {
    if v.is_empty() {
        None
    } else {
        v.get((key % v.len() as u64) as usize)
    }
}

impl<S: crate::service::Service> ServiceContext<'_, S> {
    /// Joins this instance to the group `group` of messages `M` (docs/streams.md,
    /// "Groups"): a message sent to the member reaches this instance.
    /// Keep the [`GroupMembership`] in the service's state: the instance
    /// leaves when it ends (or when the membership is dropped).
    ///
    /// # Errors
    /// [`GroupError::InvalidName`] for a bad group name.
    pub fn join_group<M>(&mut self, group: &str) -> Result<GroupMembership, GroupError>
    where
        S: Handler<M>,
        M: RemoteMessage + Clone + Sync,
        M::Result: Send,
    {
        let g = Group::<M>::new(self.node_shared().clone(), group)?;
        let recipient = self.actix().address().recipient::<Envelope<M>>();
        let sink = Arc::new(InstanceSink::<M> {
            recipient,
            service: Arc::from(self.service_name()),
            node: self.node_shared().clone(),
            gone: AtomicBool::new(false),
        });
        let label = registry::member_label(self.service_name(), Some(self.instance()));
        Ok(g.join(label, sink))
    }
}

/// A member that is one local instance: messages go to its mailbox.
struct InstanceSink<M: actix::Message + Send + 'static>
where
    M::Result: Send,
{
    recipient: Recipient<Envelope<M>>,
    service: Arc<str>,
    node: Arc<NodeShared>,
    gone: AtomicBool,
}

impl<M: actix::Message + Send + 'static> std::fmt::Debug for InstanceSink<M>
where
    M::Result: Send,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstanceSink")
            .field("service", &self.service)
            .finish()
    }
}

impl<M: RemoteMessage + Clone + Sync> InstanceSink<M>
where
    M::Result: Send,
{
    async fn ask(&self, msg: M) -> Result<M::Result, GroupError> {
        let timeout = self.node.default_timeout;
        let deadline_ms = self.node.deadlines.clock().after(timeout);
        let r = ask_instance(
            self.recipient.clone(),
            self.service.to_string(),
            msg,
            deadline_ms,
            timeout,
        );
        Ok(r.await?)
    }
}

/// Asks one instance through its mailbox, within `timeout`.
async fn ask_instance<M: RemoteMessage>(
    recipient: Recipient<Envelope<M>>,
    service: String,
    msg: M,
    deadline_ms: u64,
    timeout: std::time::Duration,
) -> Result<M::Result, CallError> {
    let env = Envelope {
        msg,
        meta: Metadata::with_deadline_ms(deadline_ms),
    };
    let e = match tokio::time::timeout(timeout, recipient.send(env)).await {
        Ok(Ok(Ok(v))) => return Ok(v),
        Err(_) | Ok(Ok(Err(HandlerFailure::Expired))) => CallError::Timeout {
            service,
            after: timeout,
        },
        Ok(Err(_closed)) => CallError::InstanceDied { service },
        Ok(Ok(Err(HandlerFailure::Panicked(message)))) => {
            CallError::HandlerPanicked { service, message }
        }
        Ok(Ok(Err(HandlerFailure::Denied(reason)))) => {
            CallError::PermissionDenied { service, reason }
        }
    };
    Err(e)
}

impl<M: RemoteMessage + Clone + Sync> TopicSink for InstanceSink<M>
where
    M::Result: Send,
{
    fn deliver(&self, wire: &str, event: TopicEvent<'_>) {
        if self.gone.load(Ordering::Relaxed) {
            return;
        }
        if matches!(event, TopicEvent::Wire(_)) && guarded::<M>(&self.node, &self.service) {
            tracing::debug!(service = %self.service, message = M::NAME, "group tell from another node refused: the message has an access rule");
            return;
        }
        let Some(msg) = typed::<M>(&self.node, wire, event) else {
            return;
        };
        let c = &self.node.registry.topics.counters;
        let env = Envelope {
            msg,
            meta: Metadata::new(),
        };
        match self.recipient.try_send(env) {
            Ok(()) => {
                c.delivered(1);
            }
            Err(SendError::Full(_)) => {
                c.lagged.fetch_add(1, Ordering::Relaxed);
            }
            Err(SendError::Closed(_)) => {
                self.gone.store(true, Ordering::Relaxed);
                tracing::debug!(service = %self.service, "group member gone: no more messages to it");
            }
        }
    }

    fn as_any(&self) -> Option<&(dyn std::any::Any + Send + Sync)> {
        Some(self)
    }

    fn ask_wire(
        &self,
        wire: &str,
        payload: &[u8],
        timeout: std::time::Duration,
    ) -> Result<WireAsk, CallError> {
        let service = self.service.to_string();
        let msg = decode_for::<M>(&self.node, &service, wire, payload)?;
        let deadline_ms = self.node.deadlines.clock().after(timeout);
        let recipient = self.recipient.clone();
        Ok(Box::pin(async move {
            let v = ask_instance(recipient, service.clone(), msg, deadline_ms, timeout).await?;
            encode_result::<M>(&service, &v)
        }))
    }
}

/// Whether `service` on this node has an access rule for `M`: a group send
/// from another node carries no identity, so such a message is refused
/// to it (as an anonymous call from another node is, `service/serve.rs`).
pub(super) fn guarded<M: 'static>(node: &NodeShared, service: &str) -> bool {
    node.registry.get(service).is_some_and(|e| {
        e.type_index(std::any::TypeId::of::<M>())
            .and_then(|i| e.types.get(i))
            .is_some_and(|t| t.access.is_some())
    })
}

/// An ask's message from another node, decoded for a member taking `M`
/// (refused when the member's service guards `M` with an access rule).
pub(super) fn decode_for<M: RemoteMessage>(
    node: &NodeShared,
    service: &str,
    wire: &str,
    payload: &[u8],
) -> Result<M, CallError> {
    if guarded::<M>(node, service) {
        return Err(CallError::PermissionDenied {
            service: service.to_string(),
            reason: format!(
                "`{}` has an access rule and a group ask from another node carries no identity",
                M::NAME
            ),
        });
    }
    if wire != M::NAME {
        return Err(CallError::Codec {
            service: service.to_string(),
            reason: format!("the group member takes `{}`, not `{wire}`", M::NAME),
        });
    }
    codec::decode(payload).map_err(|e| CallError::Codec {
        service: service.to_string(),
        reason: e.to_string(),
    })
}

/// A served ask's result, encoded for the caller's node.
pub(super) fn encode_result<M: RemoteMessage>(
    service: &str,
    v: &M::Result,
) -> Result<Vec<u8>, CallError> {
    codec::encode(v).map_err(|e| CallError::Codec {
        service: service.to_string(),
        reason: e.to_string(),
    })
}
