//! Topics: typed events published to a name and delivered to every
//! subscriber of that name, on this node and on every other node of the
//! cluster (docs/streams.md).
//!
//! A [`Topic`] is a cheap handle made by [`Node::topic`](crate::Node::topic).
//! Publishing hands the event to each local subscriber's bounded queue
//! (never waiting: a full queue drops it and its subscriber is told how
//! many it missed) and sends one encoded copy to each other node that has
//! subscribers, which fans it out there. Which nodes have subscribers
//! travels beside their service tables (`Frame::Topics`).

mod group;
mod json;
mod queue;
mod sinks;

use std::marker::PhantomData;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::error::CallError;
use crate::message::{codec, KeyedMessage, RemoteMessage};
use crate::registry::{Routes, TopicEvent, TopicState};
use crate::remote::call_lane::OutPublish;
use crate::remote::peer::Peer;
use crate::service::{NodeShared, Service, ServiceContext, ServiceRef};

pub use group::{Group, GroupError, GroupMember, GroupMembership};
pub use json::{JsonEvent, JsonSubscription};
pub use queue::TopicItem;
use sinks::{QueueSink, ServiceSink};

/// Counters of a node's topics ([`Node::topic_stats`](crate::Node::topic_stats)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TopicStats {
    /// Events published on this node.
    pub published: u64,
    /// Events handed to a subscriber on this node (from here or elsewhere).
    pub delivered: u64,
    /// Events a subscriber on this node missed: its queue or its service's
    /// mailbox was full (each reported to a stream as `Lagged`).
    pub lagged: u64,
    /// Copies for another node dropped: its connection was full or down.
    pub remote_dropped: u64,
    /// Events from another node that did not decode here (a subscriber
    /// of another type under the same topic name).
    pub undecodable: u64,
    /// `Topics` frames from other nodes refused because a process group
    /// membership in them was malformed (docs/streams.md, "Groups").
    pub refused_ads: u64,
}

/// A named topic of events of type `E`: publish to it, subscribe to it.
///
/// # Examples
/// ```
/// # use msa_runtime::prelude::*;
/// # use msa_runtime::TopicItem;
/// # use serde::{Deserialize, Serialize};
/// #[derive(Debug, Clone, PartialEq, actix::Message, Serialize, Deserialize, RemoteMessage)]
/// #[msa(name = "doc.OrderPlaced")]
/// #[rtype(result = "()")]
/// struct OrderPlaced { id: u64 }
///
/// # #[tokio::main] async fn main() {
/// let node = Node::builder().arbiters(1).start().unwrap();
/// let topic = node.topic::<OrderPlaced>("orders.events");
/// let mut sub = topic.subscribe(16);
/// topic.publish(OrderPlaced { id: 7 });
/// assert_eq!(sub.next().await, TopicItem::Event(OrderPlaced { id: 7 }));
/// node.shutdown(std::time::Duration::from_secs(1)).await.unwrap();
/// # }
/// ```
pub struct Topic<E> {
    node: Arc<NodeShared>,
    name: Arc<str>,
    state: Arc<TopicState>,
    _event: PhantomData<fn(E)>,
}

impl<E> Clone for Topic<E> {
    fn clone(&self) -> Self {
        Self {
            node: self.node.clone(),
            name: self.name.clone(),
            state: self.state.clone(),
            _event: PhantomData,
        }
    }
}

impl<E> std::fmt::Debug for Topic<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Topic").field("name", &self.name).finish()
    }
}

impl<E: RemoteMessage + Clone + Sync> Topic<E> {
    pub(crate) fn new(node: Arc<NodeShared>, name: &str) -> Self {
        node.registry.register_codecs([(
            std::any::TypeId::of::<E>(),
            crate::message::wire_codec::wire_codec::<E>(),
        )]);
        let state = node.registry.topics.state(name);
        Self {
            node,
            name: Arc::from(name),
            state,
            _event: PhantomData,
        }
    }

    /// The topic's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Publishes `event` to every subscriber, here and on other nodes,
    /// and to one member of each consumer group (spread over the members:
    /// use [`publish_keyed`](Self::publish_keyed) to keep one key at one
    /// member). Never waits: a subscriber that is behind misses it (and is
    /// told), a node whose connection is full or down misses it (counted
    /// in [`TopicStats::remote_dropped`]). Events published by one caller
    /// reach each subscriber in the order published.
    #[inline]
    pub fn publish(&self, event: E) {
        self.state.with_routes(|routes| {
            // The key spreads the events over a group's members: with no
            // group, no key is drawn.
            let key = if routes.groups.is_empty() {
                0
            } else {
                self.state.next_key()
            };
            self.publish_routed(routes, event, key);
        });
    }

    /// [`publish`](Self::publish), with the event's routing key choosing
    /// the member of each consumer group (rendezvous hashing over the
    /// members cluster-wide): one key's events go to one member, in order,
    /// while the group's members stay the same.
    pub fn publish_keyed(&self, event: E)
    where
        E: KeyedMessage,
    {
        let key = event.routing_key();
        self.publish_with_key(event, key);
    }

    /// [`publish`](Self::publish) with an explicit routing key.
    pub fn publish_with_key(&self, event: E, key: u64) {
        self.state
            .with_routes(|routes| self.publish_routed(routes, event, key));
    }

    /// Publishes `event` along `routes` (`key` picks each group's member).
    fn publish_routed(&self, routes: &Routes, event: E, key: u64) {
        let hub = &self.node.registry.topics;
        if routes.groups.is_empty() {
            // No group: every plain subscriber takes it, here and there.
            // The copies for other nodes are encoded first, so that the
            // event itself can move into the last local subscriber.
            if !routes.remote.is_empty() {
                send_remote(&self.node, &self.name, routes, &event, true, &mut []);
            }
            let delivered = deliver_plain(routes, event);
            hub.counters.add(1, delivered);
            return;
        }
        hub.counters.add(1, 0);
        // One member per group: here, or on the node that holds it.
        let mut here: Vec<u64> = Vec::new();
        let mut there: Vec<Vec<u64>> = Vec::new();
        for g in &routes.groups {
            let Some(m) = g.pick(key) else { continue };
            match m.remote {
                None => here.push(m.id),
                Some(i) => {
                    if there.len() <= i {
                        there.resize(routes.remote.len(), Vec::new());
                    }
                    there[i].push(m.id);
                }
            }
        }
        hub.deliver_local(routes, E::NAME, TopicEvent::Local(&event), true, &here);
        send_remote(&self.node, &self.name, routes, &event, true, &mut there);
    }

    /// Subscribes a stream that holds up to `bound` events (at least 1);
    /// dropping it unsubscribes.
    pub fn subscribe(&self, bound: usize) -> Subscription<E> {
        self.subscribe_to(None, bound)
    }

    /// Subscribes a stream as a member of the consumer group `group`: the
    /// group's members share the topic's events, one member per event
    /// (docs/streams.md, "Consumer groups").
    pub fn subscribe_in_group(&self, group: &str, bound: usize) -> Subscription<E> {
        self.subscribe_to(Some(group), bound)
    }

    fn subscribe_to(&self, group: Option<&str>, bound: usize) -> Subscription<E> {
        let queue = Arc::new(queue::Queue::new(bound));
        let sink = Arc::new(QueueSink::<E>::new(queue.clone(), self.node.clone()));
        let id = self.node.registry.topics.subscribe(&self.name, group, sink);
        Subscription {
            queue,
            guard: Unsubscribe {
                node: self.node.clone(),
                topic: self.name.clone(),
                id,
            },
        }
    }

    /// Subscribes a service: each event is told to it as a message (its
    /// mailbox is the bound: an event it has no room for is dropped and
    /// counted in [`TopicStats::lagged`]). Lasts while the handle is held
    /// and the service exists: once a tell finds the service unknown or
    /// the node shutting down, the subscription delivers no more.
    pub fn subscribe_service(&self, service: &ServiceRef) -> ServiceSubscription
    where
        <E as actix::Message>::Result: Send,
    {
        self.subscribe_service_to(None, service)
    }

    /// [`subscribe_service`](Self::subscribe_service) as a member of the
    /// consumer group `group`.
    pub fn subscribe_service_in_group(
        &self,
        group: &str,
        service: &ServiceRef,
    ) -> ServiceSubscription
    where
        <E as actix::Message>::Result: Send,
    {
        self.subscribe_service_to(Some(group), service)
    }

    fn subscribe_service_to(&self, group: Option<&str>, service: &ServiceRef) -> ServiceSubscription
    where
        <E as actix::Message>::Result: Send,
    {
        let sink = Arc::new(ServiceSink::<E>::new(service.clone(), self.node.clone()));
        let id = self.node.registry.topics.subscribe(&self.name, group, sink);
        ServiceSubscription {
            _guard: Unsubscribe {
                node: self.node.clone(),
                topic: self.name.clone(),
                id,
            },
        }
    }

    /// The members of consumer group `group` of this topic, cluster-wide,
    /// as this node knows them: (node, member id), sorted.
    pub fn group_members(&self, group: &str) -> Vec<(String, u64)> {
        self.node.registry.topics.group_members(&self.name, group)
    }

    /// How many subscribers this topic has on this node (streams, services
    /// and JSON subscriptions, in groups or not).
    pub fn local_subscribers(&self) -> usize {
        self.state.routes().local.len()
    }

    /// The other nodes that have subscribers to this topic, as this node
    /// knows them (sorted).
    pub fn remote_subscribers(&self) -> Vec<String> {
        self.node.registry.topics.remote_subscribers(&self.name)
    }
}

/// Hands `event` to each local subscriber of `routes` (all plain: the
/// topic has no consumer group), in their order, moving it into the last;
/// returns how many took it (for the caller to count as delivered).
fn deliver_plain<E>(routes: &Routes, event: E) -> u64
where
    E: RemoteMessage + Clone + Sync,
    <E as actix::Message>::Result: Send,
{
    let Some((last, rest)) = routes.local.split_last() else {
        return 0;
    };
    let mut delivered = 0;
    for s in rest {
        delivered += deliver_typed(&s.sink, Owned::Borrowed(&event));
    }
    delivered + deliver_typed(&last.sink, Owned::Moved(event))
}

/// An event for one subscriber: the publisher's own (the last subscriber
/// takes it) or borrowed (cloned only if the subscriber takes `E`).
enum Owned<'a, E> {
    Moved(E),
    Borrowed(&'a E),
}

impl<E: Clone> Owned<'_, E> {
    fn take(self) -> E {
        match self {
            Owned::Moved(e) => e,
            Owned::Borrowed(e) => e.clone(),
        }
    }

    fn as_ref(&self) -> &E {
        match self {
            Owned::Moved(e) => e,
            Owned::Borrowed(e) => e,
        }
    }
}

/// Hands `event` to one local subscriber: straight to its service or
/// queue when it is one of type `E` (no type-erased delivery, no clone
/// when moved), else through its type-erased sink. Returns 1 when the
/// subscriber took it, 0 otherwise (it counted why).
#[inline]
fn deliver_typed<E>(sink: &Arc<dyn crate::registry::TopicSink>, event: Owned<'_, E>) -> u64
where
    E: RemoteMessage + Clone + Sync,
    <E as actix::Message>::Result: Send,
{
    if let Some(any) = sink.as_any() {
        if let Some(s) = any.downcast_ref::<ServiceSink<E>>() {
            return u64::from(s.tell_one(event.take()));
        }
        if let Some(q) = any.downcast_ref::<QueueSink<E>>() {
            return u64::from(q.push(event.take()));
        }
    }
    // Another kind of subscriber (JSON, a group member) counts itself.
    sink.deliver(E::NAME, TopicEvent::Local(event.as_ref()));
    0
}

/// Sends one encoded copy of `event` (published to `topic`) to each other
/// node of `routes` that takes it: its plain subscribers (when `plain` and
/// it has some) or the members `there` lists for it (by its index in
/// `routes.remote`). Never waits: a copy that cannot be queued is dropped
/// and counted (`remote_dropped`).
pub(crate) fn send_remote<E: RemoteMessage>(
    node: &NodeShared,
    topic: &str,
    routes: &Routes,
    event: &E,
    plain: bool,
    there: &mut [Vec<u64>],
) {
    let hub = &node.registry.topics;
    if routes.remote.is_empty() {
        return;
    }
    for (i, r) in routes.remote.iter().enumerate() {
        let members = there.get_mut(i).map(std::mem::take).unwrap_or_default();
        let plain = plain && r.plain;
        if !plain && members.is_empty() {
            continue;
        }
        let Some(peer) = live_peer(node, &r.link) else {
            continue;
        };
        // The event is written straight into the connection's lane, encoded
        // in place (joining the `PublishRun` of this topic at the lane's
        // end, if any): no `Frame`, no copies of the names.
        let publish = OutPublish {
            topic,
            message: E::NAME,
            plain,
            members: &members,
        };
        match peer.send_publish(publish, |out| codec::encode_append(event, out)) {
            Ok(()) => {}
            Err(e @ CallError::Codec { .. }) => {
                hub.counters.remote_dropped.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%topic, message = E::NAME, error = %e, "event not encodable: not sent to another node");
            }
            Err(e) => {
                hub.counters.remote_dropped.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%topic, node = %peer.info.name, error = %e, "event not sent");
            }
        }
    }
}

/// The connection to the node at the other end of `link` that carries new
/// frames: `link`'s own (the one its `Topics` came on) while it is neither
/// down nor retired, else the node's current one (a duplicate connection
/// replaced it, and the new one's `Topics` has not replaced `link` yet).
pub(crate) fn live_peer(
    node: &NodeShared,
    link: &Arc<dyn crate::registry::PeerLink>,
) -> Option<Arc<Peer>> {
    let own = Peer::of(link);
    if let Some(p) = own.as_ref().filter(|p| !p.is_down() && !p.is_retired()) {
        return Some(p.clone());
    }
    node.remote
        .as_ref()
        .and_then(|rem| rem.peer(link.node_name()))
        .filter(|p| !p.is_down())
        .or(own)
}

/// Removes a subscriber when dropped.
#[derive(Debug)]
pub(crate) struct Unsubscribe {
    pub(crate) node: Arc<NodeShared>,
    pub(crate) topic: Arc<str>,
    pub(crate) id: u64,
}

impl Drop for Unsubscribe {
    fn drop(&mut self) {
        self.node.registry.topics.unsubscribe(&self.topic, self.id);
    }
}

/// A stream subscriber ([`Topic::subscribe`]); dropping it unsubscribes.
#[derive(Debug)]
pub struct Subscription<E> {
    queue: Arc<queue::Queue<E>>,
    guard: Unsubscribe,
}

impl<E: Send + 'static> Subscription<E> {
    /// The next event (or the count of those missed), waiting for one.
    pub async fn next(&mut self) -> TopicItem<E> {
        self.queue.pop().await
    }

    /// The next event if one is queued.
    pub fn try_next(&mut self) -> Option<TopicItem<E>> {
        self.queue.try_pop()
    }

    /// The topic's name.
    pub fn topic(&self) -> &str {
        &self.guard.topic
    }

    /// The subscription as a [`futures_util::Stream`] (endless: it ends
    /// when dropped).
    pub fn into_stream(self) -> impl futures_util::Stream<Item = TopicItem<E>> + Send {
        futures_util::stream::unfold(self, |mut s| async move {
            let item = s.next().await;
            Some((item, s))
        })
    }
}

/// A service subscribed to a topic ([`Topic::subscribe_service`]);
/// dropping it unsubscribes.
#[derive(Debug)]
pub struct ServiceSubscription {
    _guard: Unsubscribe,
}

impl<S: Service> ServiceContext<'_, S> {
    /// The topic `name` of events `E` on this instance's node
    /// (docs/streams.md), to publish to or to subscribe a service to
    /// ([`Topic::subscribe_service`]). Cheap, but not free (it looks the
    /// topic up): keep it in the service's state, e.g. from
    /// [`Service::started`].
    pub fn topic<E: RemoteMessage + Clone + Sync>(&self, name: &str) -> Topic<E> {
        Topic::new(self.node_shared().clone(), name)
    }
}
