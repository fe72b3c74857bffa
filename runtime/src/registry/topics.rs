//! The topics of one node: who subscribes here (type-erased sinks) and
//! which other nodes have subscribers (learned from their tables).
//!
//! The typed API (`Topic<E>`, its streams and service subscriptions) is the
//! `topic` module's; remoting delivers an event that arrived from another
//! node here ([`TopicHub::deliver_wire`]) and advertises
//! [`TopicHub::local_topics`] beside the service table.

use std::any::Any;
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwap;
use parking_lot::{Mutex, RwLock};

use super::PeerLink;

/// One published event as a sink gets it.
#[derive(Clone, Copy)]
pub(crate) enum TopicEvent<'a> {
    /// Published on this node: the publisher's value.
    Local(&'a (dyn Any + Send + Sync)),
    /// Arrived from another node: its bincode encoding.
    Wire(&'a [u8]),
}

/// A subscriber on this node, type-erased.
pub(crate) trait TopicSink: Send + Sync + std::fmt::Debug {
    /// Takes one event of type `wire` (its wire name); never blocks.
    fn deliver(&self, wire: &str, event: TopicEvent<'_>);
}

/// One topic's subscribers: local sinks and the remote nodes that have
/// some. Both lists are swapped whole on change, so a publish is two
/// atomic loads and no lock.
#[derive(Debug, Default)]
pub(crate) struct TopicState {
    sinks: ArcSwap<Vec<(u64, Arc<dyn TopicSink>)>>,
    remote: ArcSwap<Vec<Arc<dyn PeerLink>>>,
}

impl TopicState {
    /// The local subscribers now.
    pub(crate) fn sinks(&self) -> arc_swap::Guard<Arc<Vec<(u64, Arc<dyn TopicSink>)>>> {
        self.sinks.load()
    }

    /// The other nodes that have subscribers now (one copy goes to each).
    pub(crate) fn remote(&self) -> arc_swap::Guard<Arc<Vec<Arc<dyn PeerLink>>>> {
        self.remote.load()
    }
}

/// Counters of the topics of one node.
#[derive(Debug, Default)]
pub(crate) struct TopicCounters {
    /// Events published on this node.
    pub(crate) published: AtomicU64,
    /// Events handed to a local subscriber.
    pub(crate) delivered: AtomicU64,
    /// Events a local subscriber missed (its queue or mailbox was full).
    pub(crate) lagged: AtomicU64,
    /// Copies to another node refused (its connection was full or down).
    pub(crate) remote_dropped: AtomicU64,
    /// Events from another node that did not decode here.
    pub(crate) undecodable: AtomicU64,
}

/// The topics of one node.
#[derive(Default)]
pub(crate) struct TopicHub {
    topics: RwLock<HashMap<Arc<str>, Arc<TopicState>>>,
    /// Per other node: the link to it and the topics it subscribes to.
    remote_nodes: Mutex<HashMap<String, (Arc<dyn PeerLink>, BTreeSet<String>)>>,
    /// Local subscriber count per topic (what this node advertises).
    local_counts: Mutex<HashMap<String, usize>>,
    next_id: AtomicU64,
    /// Called when the set of locally subscribed topics changes (remoting
    /// re-advertises the node's table).
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

impl TopicHub {
    /// The state of `topic`, created empty on first use.
    pub(crate) fn state(&self, topic: &str) -> Arc<TopicState> {
        if let Some(s) = self.topics.read().get(topic) {
            return s.clone();
        }
        let mut map = self.topics.write();
        map.entry(Arc::from(topic)).or_default().clone()
    }

    /// Sets what runs when the locally subscribed topics change (once).
    pub(crate) fn set_on_change(&self, f: Box<dyn Fn() + Send + Sync>) {
        let _ = self.on_change.set(f);
    }

    fn changed(&self) {
        if let Some(f) = self.on_change.get() {
            f();
        }
    }

    /// Adds a local subscriber; the id removes it.
    pub(crate) fn subscribe(&self, topic: &str, sink: Arc<dyn TopicSink>) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let state = self.state(topic);
        state.sinks.rcu(|v| {
            let mut v = Vec::clone(v);
            v.push((id, sink.clone()));
            v
        });
        let first = {
            let mut counts = self.local_counts.lock();
            let n = counts.entry(topic.to_string()).or_insert(0);
            *n += 1;
            *n == 1
        };
        if first {
            self.changed();
        }
        id
    }

    /// Removes a local subscriber (no-op if it is gone already).
    pub(crate) fn unsubscribe(&self, topic: &str, id: u64) {
        let state = self.state(topic);
        let mut removed = false;
        state.sinks.rcu(|v| {
            let mut v = Vec::clone(v);
            let before = v.len();
            v.retain(|(i, _)| *i != id);
            removed = v.len() < before;
            v
        });
        if !removed {
            return;
        }
        let last = {
            let mut counts = self.local_counts.lock();
            match counts.get_mut(topic) {
                Some(n) if *n <= 1 => {
                    counts.remove(topic);
                    true
                }
                Some(n) => {
                    *n -= 1;
                    false
                }
                None => false,
            }
        };
        if last {
            self.changed();
        }
    }

    /// The topics that have subscribers on this node, sorted.
    pub(crate) fn local_topics(&self) -> Vec<String> {
        let mut v: Vec<String> = self.local_counts.lock().keys().cloned().collect();
        v.sort();
        v
    }

    /// Replaces what we know of `link`'s node's subscriptions.
    pub(crate) fn set_remote(&self, link: Arc<dyn PeerLink>, topics: Vec<String>) {
        let node = link.node_name().to_string();
        let mut nodes = self.remote_nodes.lock();
        let mut touched: BTreeSet<String> = topics.iter().cloned().collect();
        if let Some((_, old)) = nodes.get(&node) {
            touched.extend(old.iter().cloned());
        }
        if topics.is_empty() {
            nodes.remove(&node);
        } else {
            nodes.insert(node, (link, topics.into_iter().collect()));
        }
        self.rebuild(&nodes, touched);
    }

    /// Forgets `node`'s subscriptions (it left or is down).
    pub(crate) fn drop_node(&self, node: &str) {
        let mut nodes = self.remote_nodes.lock();
        if let Some((_, old)) = nodes.remove(node) {
            self.rebuild(&nodes, old);
        }
    }

    fn rebuild(
        &self,
        nodes: &HashMap<String, (Arc<dyn PeerLink>, BTreeSet<String>)>,
        topics: BTreeSet<String>,
    ) {
        for topic in topics {
            let mut links: Vec<(String, Arc<dyn PeerLink>)> = nodes
                .iter()
                .filter(|(_, (_, t))| t.contains(&topic))
                .map(|(n, (l, _))| (n.clone(), l.clone()))
                .collect();
            links.sort_by(|a, b| a.0.cmp(&b.0));
            self.state(&topic)
                .remote
                .store(Arc::new(links.into_iter().map(|(_, l)| l).collect()));
        }
    }

    /// The nodes that subscribe to `topic`, sorted.
    pub(crate) fn remote_subscribers(&self, topic: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .state(topic)
            .remote()
            .iter()
            .map(|l| l.node_name().to_string())
            .collect();
        v.sort();
        v
    }

    /// Hands an event to every local subscriber of `topic`.
    pub(crate) fn deliver_local(&self, state: &TopicState, wire: &str, event: TopicEvent<'_>) {
        let sinks = state.sinks();
        for (_, s) in sinks.iter() {
            s.deliver(wire, event);
        }
    }

    /// An event that arrived from another node: handed to the local
    /// subscribers (never forwarded again).
    pub(crate) fn deliver_wire(&self, topic: &str, wire: &str, payload: &[u8]) {
        let state = self.topics.read().get(topic).cloned();
        if let Some(state) = state {
            self.deliver_local(&state, wire, TopicEvent::Wire(payload));
        }
    }
}
