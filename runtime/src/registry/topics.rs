//! The topics of one node: who subscribes here (type-erased sinks, plain
//! or in a consumer group) and who subscribes on other nodes (learned from
//! their `Topics` frames), with the routes a publish follows.
//!
//! The typed API (`Topic<E>`, its streams and service subscriptions) is the
//! `topic` module's; remoting delivers an event that arrived from another
//! node here ([`TopicHub::deliver_wire`]) and advertises
//! [`TopicHub::local_ads`] after the service table.

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use super::topic_counters::TopicCounters;
use super::topic_state::TopicState;
use super::PeerLink;
use crate::error::CallError;
use crate::message::{key_hash, mix64};

/// One published event as a sink gets it.
#[derive(Clone, Copy)]
pub(crate) enum TopicEvent<'a> {
    /// Published on this node: the publisher's value.
    Local(&'a (dyn Any + Send + Sync)),
    /// Arrived from another node: its bincode encoding.
    Wire(&'a [u8]),
}

/// One event of a run that arrived from another node (`Frame::PublishRun`):
/// its bincode encoding, whether plain subscribers take it, and the
/// consumer-group members here that take it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WireEvent<'a> {
    pub(crate) payload: &'a [u8],
    pub(crate) plain: bool,
    pub(crate) members: Vec<u64>,
}

/// A subscriber on this node, type-erased.
pub(crate) trait TopicSink: Send + Sync + std::fmt::Debug {
    /// Takes one event of type `wire` (its wire name); never blocks.
    fn deliver(&self, wire: &str, event: TopicEvent<'_>);

    /// Takes the events of a run from another node (their encodings, all
    /// of type `wire`, in order); never blocks. One by one unless the sink
    /// does better (a service subscriber queues them as one batch).
    fn deliver_run(&self, wire: &str, payloads: &mut dyn Iterator<Item = &[u8]>) {
        for p in payloads {
            self.deliver(wire, TopicEvent::Wire(p));
        }
    }

    /// The sink itself, for a caller that knows its concrete type (a
    /// process group's ask reaches a local member through it).
    fn as_any(&self) -> Option<&(dyn Any + Send + Sync)> {
        None
    }

    /// The local service this sink tells, when the subscriber is a whole
    /// service: the subscription ends with that service
    /// ([`TopicHub::service_ended`]).
    fn ends_with_service(&self) -> Option<&str> {
        None
    }

    /// Serves an ask from another node to this subscriber (a process
    /// group member): the message `wire` encoded as `payload`, answered
    /// within `timeout` with its encoded result.
    fn ask_wire(
        &self,
        wire: &str,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<WireAsk, CallError> {
        let _ = (payload, timeout);
        Err(CallError::Codec {
            service: String::new(),
            reason: format!("this member does not answer `{wire}`"),
        })
    }
}

/// An ask served for another node: yields the encoded result.
pub(crate) type WireAsk = Pin<Box<dyn Future<Output = Result<Vec<u8>, CallError>> + Send>>;

/// One topic's subscribers on a node, as that node advertises them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TopicAd {
    pub(crate) topic: String,
    /// Whether it has subscribers outside any group (they get every event).
    pub(crate) plain: bool,
    /// Consumer groups: name and the ids of its members on that node.
    pub(crate) groups: Vec<(String, Vec<u64>)>,
}

/// A local subscriber.
#[derive(Debug, Clone)]
pub(crate) struct LocalSub {
    pub(crate) id: u64,
    pub(crate) group: Option<Arc<str>>,
    pub(crate) sink: Arc<dyn TopicSink>,
}

/// Another node with subscribers to a topic.
#[derive(Debug, Clone)]
pub(crate) struct RemoteSubs {
    pub(crate) link: Arc<dyn PeerLink>,
    /// It has plain subscribers: every event goes there.
    pub(crate) plain: bool,
}

/// One member of a consumer group, anywhere in the cluster.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    /// Index into [`Routes::remote`]; `None`: a member on this node.
    pub(crate) remote: Option<usize>,
    pub(crate) id: u64,
    /// Hash of (node, id), mixed with an event's key to score the member.
    pub(crate) hash: u64,
}

/// A consumer group of a topic and its members across the cluster.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    pub(crate) name: Arc<str>,
    pub(crate) members: Vec<Member>,
}

impl Group {
    /// The member that takes the event with `key` (rendezvous hashing: the
    /// highest score; a member leaving moves only its own keys).
    pub(crate) fn pick(&self, key: u64) -> Option<&Member> {
        self.members
            .iter()
            .max_by_key(|m| (mix64(key ^ m.hash), m.hash))
    }
}

/// The routes a publish follows, swapped whole on every change.
#[derive(Debug, Default)]
pub(crate) struct Routes {
    /// Names this value among all routes of the process
    /// ([`TopicState::set_routes`] draws it).
    pub(crate) version: u64,
    pub(crate) local: Vec<LocalSub>,
    pub(crate) remote: Vec<RemoteSubs>,
    pub(crate) groups: Vec<Group>,
}

/// Another node's link and its ads by topic.
type NodeAds = (Arc<dyn PeerLink>, HashMap<String, TopicAd>);

#[derive(Default)]
struct Known {
    /// Per topic, the local subscribers.
    local: HashMap<String, Vec<LocalSub>>,
    /// Per other node: its link and its ads by topic.
    remote: BTreeMap<String, NodeAds>,
}

/// The topics of one node.
pub(crate) struct TopicHub {
    node: String,
    topics: RwLock<HashMap<Arc<str>, Arc<TopicState>>>,
    known: Mutex<Known>,
    next_id: AtomicU64,
    /// Called when what this node advertises changes (remoting
    /// re-advertises the node's table and topics).
    on_change: OnceLock<Box<dyn Fn() + Send + Sync>>,
    pub(crate) counters: TopicCounters,
}

impl std::fmt::Debug for TopicHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopicHub")
            .field("topics", &self.topics.read().len())
            .finish()
    }
}

fn member_hash(node: &str, id: u64) -> u64 {
    key_hash(format!("{node}/{id}").as_bytes())
}

impl TopicHub {
    pub(crate) fn new(node: &str) -> Self {
        Self {
            node: node.to_string(),
            topics: RwLock::default(),
            known: Mutex::default(),
            next_id: AtomicU64::new(1),
            on_change: OnceLock::new(),
            counters: TopicCounters::default(),
        }
    }

    /// This node's name.
    pub(crate) fn node_name(&self) -> &str {
        &self.node
    }

    /// The state of `topic`, created empty on first use.
    pub(crate) fn state(&self, topic: &str) -> Arc<TopicState> {
        if let Some(s) = self.topics.read().get(topic) {
            return s.clone();
        }
        let mut map = self.topics.write();
        map.entry(Arc::from(topic)).or_default().clone()
    }

    /// Sets what runs when what this node advertises changes (once).
    pub(crate) fn set_on_change(&self, f: Box<dyn Fn() + Send + Sync>) {
        let _ = self.on_change.set(f);
    }

    fn changed(&self) {
        if let Some(f) = self.on_change.get() {
            f();
        }
    }

    /// Adds a local subscriber (in `group`, if named); the id removes it.
    pub(crate) fn subscribe(
        &self,
        topic: &str,
        group: Option<&str>,
        sink: Arc<dyn TopicSink>,
    ) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        {
            let mut known = self.known.lock();
            known
                .local
                .entry(topic.to_string())
                .or_default()
                .push(LocalSub {
                    id,
                    group: group.map(Arc::from),
                    sink,
                });
            self.rebuild(&known, topic);
        }
        self.changed();
        id
    }

    /// Removes a local subscriber (no-op if it is gone already).
    pub(crate) fn unsubscribe(&self, topic: &str, id: u64) {
        {
            let mut known = self.known.lock();
            let Some(subs) = known.local.get_mut(topic) else {
                return;
            };
            let before = subs.len();
            subs.retain(|s| s.id != id);
            if subs.len() == before {
                return;
            }
            if subs.is_empty() {
                known.local.remove(topic);
            }
            self.rebuild(&known, topic);
        }
        self.changed();
    }

    /// Removes every subscription (topic subscriber or process-group
    /// member) made for the whole local service `service`: it stopped for
    /// good or its supervisor gave up, so nothing will take its events
    /// again. Called by the service's supervisor before the name is free
    /// for a new service. The node re-advertises, so other nodes stop
    /// sending copies for it.
    pub(crate) fn service_ended(&self, service: &str) {
        let mut removed = 0;
        {
            let mut known = self.known.lock();
            if known.local.is_empty() {
                return;
            }
            let mut touched = Vec::new();
            for (topic, subs) in known.local.iter_mut() {
                let before = subs.len();
                subs.retain(|s| s.sink.ends_with_service() != Some(service));
                if subs.len() != before {
                    removed += before - subs.len();
                    touched.push(topic.clone());
                }
            }
            for topic in &touched {
                if known.local.get(topic).is_some_and(Vec::is_empty) {
                    known.local.remove(topic);
                }
                self.rebuild(&known, topic);
            }
        }
        if removed > 0 {
            tracing::info!(
                service,
                subscriptions = removed,
                "the service ended: its topic subscriptions and group memberships are removed"
            );
            self.changed();
        }
    }

    /// What this node advertises: its topics with subscribers, sorted. A
    /// process group's internal topic is advertised with its members only
    /// (a plain subscriber there, e.g. a JSON subscription by that name,
    /// gets nothing and would make peers refuse the whole frame).
    pub(crate) fn local_ads(&self) -> Vec<TopicAd> {
        let known = self.known.lock();
        let mut v: Vec<TopicAd> = known
            .local
            .iter()
            .filter_map(|(topic, subs)| {
                let mut groups: BTreeMap<String, Vec<u64>> = BTreeMap::new();
                for s in subs {
                    if let Some(g) = &s.group {
                        groups.entry(g.to_string()).or_default().push(s.id);
                    }
                }
                let internal = topic.starts_with(super::group_ads::GROUP_TOPIC_PREFIX);
                if internal && groups.is_empty() {
                    return None;
                }
                Some(TopicAd {
                    topic: topic.clone(),
                    plain: !internal && subs.iter().any(|s| s.group.is_none()),
                    groups: groups.into_iter().collect(),
                })
            })
            .collect();
        v.sort_by(|a, b| a.topic.cmp(&b.topic));
        v
    }

    /// Replaces what we know of `link`'s node's subscriptions.
    pub(crate) fn set_remote(&self, link: Arc<dyn PeerLink>, ads: Vec<TopicAd>) {
        let node = link.node_name().to_string();
        let mut known = self.known.lock();
        let mut touched: BTreeSet<String> = ads.iter().map(|a| a.topic.clone()).collect();
        if let Some((_, old)) = known.remote.get(&node) {
            touched.extend(old.keys().cloned());
        }
        if ads.is_empty() {
            known.remote.remove(&node);
        } else {
            let ads = ads.into_iter().map(|a| (a.topic.clone(), a)).collect();
            known.remote.insert(node, (link, ads));
        }
        for t in touched {
            self.rebuild(&known, &t);
        }
    }

    /// Forgets `node`'s subscriptions (it left or is down).
    pub(crate) fn drop_node(&self, node: &str) {
        let mut known = self.known.lock();
        if let Some((_, old)) = known.remote.remove(node) {
            for t in old.keys() {
                self.rebuild(&known, t);
            }
        }
    }

    fn rebuild(&self, known: &Known, topic: &str) {
        let local = known.local.get(topic).cloned().unwrap_or_default();
        let mut groups: BTreeMap<Arc<str>, Vec<Member>> = BTreeMap::new();
        for s in &local {
            if let Some(g) = &s.group {
                groups.entry(g.clone()).or_default().push(Member {
                    remote: None,
                    id: s.id,
                    hash: member_hash(&self.node, s.id),
                });
            }
        }
        let mut remote = Vec::new();
        for (node, (link, ads)) in &known.remote {
            let Some(ad) = ads.get(topic) else { continue };
            let index = remote.len();
            remote.push(RemoteSubs {
                link: link.clone(),
                plain: ad.plain,
            });
            for (g, ids) in &ad.groups {
                let members = groups.entry(Arc::from(g.as_str())).or_default();
                for &id in ids {
                    members.push(Member {
                        remote: Some(index),
                        id,
                        hash: member_hash(node, id),
                    });
                }
            }
        }
        let groups = groups
            .into_iter()
            .map(|(name, members)| Group { name, members })
            .collect();
        self.state(topic).set_routes(Routes {
            version: 0,
            local,
            remote,
            groups,
        });
    }

    /// The nodes that subscribe to `topic`, sorted.
    pub(crate) fn remote_subscribers(&self, topic: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .state(topic)
            .routes()
            .remote
            .iter()
            .map(|r| r.link.node_name().to_string())
            .collect();
        v.sort();
        v
    }

    /// Members of `group` of `topic`, cluster-wide: (node, member id), sorted.
    pub(crate) fn group_members(&self, topic: &str, group: &str) -> Vec<(String, u64)> {
        let routes = self.state(topic).routes();
        let mut v: Vec<(String, u64)> = routes
            .groups
            .iter()
            .filter(|g| &*g.name == group)
            .flat_map(|g| g.members.iter())
            .map(|m| {
                let node = m.remote.map_or(self.node.clone(), |i| {
                    routes.remote[i].link.node_name().to_string()
                });
                (node, m.id)
            })
            .collect();
        v.sort();
        v
    }

    /// Hands an event to the local plain subscribers (if `plain`) and to
    /// the local group members whose ids are in `members`.
    pub(crate) fn deliver_local(
        &self,
        routes: &Routes,
        wire: &str,
        event: TopicEvent<'_>,
        plain: bool,
        members: &[u64],
    ) {
        for s in &routes.local {
            let take = match s.group {
                None => plain,
                Some(_) => members.contains(&s.id),
            };
            if take {
                s.sink.deliver(wire, event);
            }
        }
    }

    /// An ask from another node to the local member `member` of `topic`
    /// (a process group's internal topic).
    pub(crate) fn ask_member(
        &self,
        topic: &str,
        member: u64,
        wire: &str,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<WireAsk, CallError> {
        let state = self.topics.read().get(topic).cloned();
        let sink = state.and_then(|s| {
            s.routes()
                .local
                .iter()
                .find(|l| l.id == member && l.group.is_some())
                .map(|l| l.sink.clone())
        });
        match sink {
            Some(sink) => sink.ask_wire(wire, payload, timeout),
            None => Err(CallError::NoInstance {
                service: format!("group member {member} on {}", self.node),
            }),
        }
    }

    /// A run of events that arrived from another node: the topic looked up
    /// once, and each local subscriber handed the events it takes (a plain
    /// one those marked `plain`, a group member those that name it) in one
    /// call, in order (never forwarded again).
    pub(crate) fn deliver_wire_run(&self, topic: &str, wire: &str, events: &[WireEvent<'_>]) {
        let state = self.topics.read().get(topic).cloned();
        let Some(state) = state else { return };
        let routes = state.routes();
        for s in &routes.local {
            let mut taken = events
                .iter()
                .filter(|e| match s.group {
                    None => e.plain,
                    Some(_) => e.members.contains(&s.id),
                })
                .map(|e| e.payload);
            s.sink.deliver_run(wire, &mut taken);
        }
    }

    /// An event that arrived from another node: handed to the local
    /// subscribers it names (never forwarded again).
    pub(crate) fn deliver_wire(
        &self,
        topic: &str,
        wire: &str,
        payload: &[u8],
        plain: bool,
        members: &[u64],
    ) {
        let state = self.topics.read().get(topic).cloned();
        if let Some(state) = state {
            let routes = state.routes();
            self.deliver_local(&routes, wire, TopicEvent::Wire(payload), plain, members);
        }
    }
}
