//! Names → live service instances; watch for changes.
//!
//! A service's entry is created once, when it is first spawned, and never
//! replaced: its instance slots change as instances die and restart. A
//! [`ServiceRef`](crate::ServiceRef) caches the entry, so the hot path is one
//! `arc-swap` load of the slot it routes to, with no lock and no hashing.

mod batch_room;
mod entry;
mod group_ads;
mod monitor;
mod topic_counters;
mod topic_state;
mod topics;
mod watch;

pub(crate) use batch_room::BatchRoom;
pub(crate) use entry::{
    Instance, InstanceGuard, MessageType, PeerLink, RemoteInstance, ServiceEntry,
};
pub use entry::{InstanceId, ServiceState};
pub(crate) use group_ads::{
    check_group_ads, check_name as check_group_name, group_topic, member_label, parse_label,
};
pub use monitor::MonitorReason;
pub(crate) use topic_state::TopicState;
pub(crate) use topics::{Routes, TopicAd, TopicEvent, TopicHub, TopicSink, WireAsk, WireEvent};
pub use watch::{RegistryEvent, RegistryWatch};

/// Why remote instances went away: their node left or was declared down.
pub(crate) const NODE_DOWN: &str = "node down";
/// Why remote instances went away: their node's table no longer lists them.
pub(crate) const LEFT_TABLE: &str = "left the table";

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::Arc;

use crate::message::wire_codec::WireCodec;

use parking_lot::{Mutex, RwLock};
use tokio::sync::broadcast;

use crate::error::SpawnError;

/// Capacity of the watch channel: a watcher that falls further behind is told
/// how many events it missed.
const WATCH_CAPACITY: usize = 4096;

/// The registry of one node.
#[derive(Debug)]
pub(crate) struct Registry {
    services: RwLock<HashMap<Arc<str>, Arc<ServiceEntry>>>,
    wire_names: Mutex<HashMap<&'static str, &'static str>>,
    codecs: RwLock<HashMap<TypeId, WireCodec>>,
    /// The same codecs by wire name, for JSON callers.
    by_name: RwLock<HashMap<&'static str, WireCodec>>,
    node: String,
    events: broadcast::Sender<RegistryEvent>,
    /// Set once the node shuts down; entries inserted later are closed too.
    closed: std::sync::atomic::AtomicBool,
    /// Topic subscribers, here and on other nodes.
    pub(crate) topics: TopicHub,
}

impl Registry {
    pub(crate) fn new(node: &str) -> Self {
        let (events, _) = broadcast::channel(WATCH_CAPACITY);
        Self {
            services: RwLock::new(HashMap::new()),
            wire_names: Mutex::new(HashMap::new()),
            codecs: RwLock::new(HashMap::new()),
            by_name: RwLock::new(HashMap::new()),
            node: node.to_string(),
            events,
            closed: std::sync::atomic::AtomicBool::new(false),
            topics: TopicHub::new(node),
        }
    }

    /// Records how message types cross the wire (all or none claimed first).
    pub(crate) fn register_codecs(&self, codecs: impl IntoIterator<Item = (TypeId, WireCodec)>) {
        let mut by_type = self.codecs.write();
        let mut by_name = self.by_name.write();
        for (t, c) in codecs {
            by_type.insert(t, c);
            by_name.insert(c.wire_name, c);
        }
    }

    /// The wire functions of the message type with this wire name.
    pub(crate) fn codec_by_name(&self, wire_name: &str) -> Option<WireCodec> {
        self.by_name.read().get(wire_name).copied()
    }

    /// Wire names `service` handles, locally or on any node, sorted.
    pub(crate) fn service_messages(&self, service: &str) -> Vec<String> {
        let Some(e) = self.get(service) else {
            return Vec::new();
        };
        let mut v: Vec<String> = e
            .types
            .iter()
            .filter_map(|t| t.wire.map(|w| w.wire_name.to_string()))
            .chain(e.remote_message_names())
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// The wire functions of a message type: declared with
    /// `#[derive(RemoteMessage)]`, or registered on this node (a hand-written
    /// `RemoteMessage` impl handled here or passed to `register_message`).
    pub(crate) fn codec(&self, t: TypeId) -> Option<WireCodec> {
        crate::message::declared::codec(t).or_else(|| self.codecs.read().get(&t).copied())
    }

    /// The entry for `name`, created without local instances if the service
    /// only runs elsewhere.
    pub(crate) fn get_or_insert_remote(&self, name: &str, keyed: bool) -> Arc<ServiceEntry> {
        if let Some(e) = self.get(name) {
            return e;
        }
        let mut map = self.services.write();
        map.entry(Arc::from(name))
            .or_insert_with(|| {
                let e = ServiceEntry::new(Arc::from(name), Box::new([]), keyed, 0, &self.node);
                e.set_state(ServiceState::Running);
                if self.closed.load(std::sync::atomic::Ordering::Relaxed) {
                    e.close();
                }
                Arc::new(e)
            })
            .clone()
    }

    /// Every entry (a snapshot).
    pub(crate) fn entries(&self) -> Vec<Arc<ServiceEntry>> {
        self.services.read().values().cloned().collect()
    }

    /// Forgets every instance of `node` (it left or was declared down).
    pub(crate) fn drop_node(&self, node: &str) {
        let entries: Vec<Arc<ServiceEntry>> = self.services.read().values().cloned().collect();
        for e in entries {
            let change = e.set_remote(node, Vec::new());
            self.publish_remote(e.name(), node, change, NODE_DOWN);
        }
        self.topics.drop_node(node);
    }

    pub(crate) fn publish_remote(
        &self,
        service: &str,
        node: &str,
        (added, removed): (Vec<usize>, Vec<usize>),
        why: &str,
    ) {
        // Removals first: a restarted instance reads as "gone, then back".
        for slot in removed {
            self.publish(RegistryEvent::RemoteRemoved {
                service: service.to_string(),
                node: node.to_string(),
                slot,
                reason: why.to_string(),
            });
        }
        for slot in added {
            self.publish(RegistryEvent::RemoteAdded {
                service: service.to_string(),
                node: node.to_string(),
                slot,
            });
        }
    }

    /// O(1) lookup by name.
    pub(crate) fn get(&self, name: &str) -> Option<Arc<ServiceEntry>> {
        self.services.read().get(name).cloned()
    }

    /// Names of all services, sorted.
    pub(crate) fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.services.read().keys().map(|k| k.to_string()).collect();
        v.sort();
        v
    }

    /// Claims wire names for `(wire name, type name)` pairs; all or none.
    pub(crate) fn claim_wire_names(
        &self,
        names: &[(&'static str, &'static str)],
    ) -> Result<(), SpawnError> {
        let mut map = self.wire_names.lock();
        let mut local: HashMap<&'static str, &'static str> = HashMap::new();
        for &(wire, ty) in names {
            let existing = map.get(wire).or_else(|| local.get(wire)).copied();
            match existing {
                Some(first) if first != ty => {
                    return Err(SpawnError::DuplicateWireName {
                        name: wire,
                        first,
                        second: ty,
                    })
                }
                _ => {
                    local.insert(wire, ty);
                }
            }
        }
        map.extend(local);
        Ok(())
    }

    /// Inserts a new entry; fails if the name is taken.
    pub(crate) fn insert(&self, entry: Arc<ServiceEntry>) -> Result<(), SpawnError> {
        let mut map = self.services.write();
        if let Some(old) = map.get(entry.name()) {
            if !old.is_replaceable() {
                return Err(SpawnError::DuplicateService {
                    service: entry.name().to_string(),
                    owner: old.owner().to_string(),
                });
            }
            entry.inherit(old);
        }
        if self.closed.load(std::sync::atomic::Ordering::Relaxed) {
            entry.close();
        }
        map.insert(Arc::from(entry.name()), entry);
        Ok(())
    }

    /// Sends every call on this node's entries down the general path, which
    /// refuses it: the node is shutting down. (The local fast path reads one
    /// flag per entry instead of the node's as well.)
    pub(crate) fn close(&self) {
        let map = self.services.write();
        self.closed
            .store(true, std::sync::atomic::Ordering::Relaxed);
        for e in map.values() {
            e.close();
        }
    }

    pub(crate) fn publish(&self, event: RegistryEvent) {
        // No receiver is not an error: nobody watches.
        let _ = self.events.send(event);
    }

    /// [`Self::publish`] the event `make` returns, made only if someone
    /// watches (a service's name is copied into every event: a spawn of
    /// 100k instances made and dropped 100k strings nobody read). A watch
    /// that subscribes meanwhile may miss it, as it would miss a `publish`
    /// made just before it subscribed.
    pub(crate) fn publish_with(&self, make: impl FnOnce() -> RegistryEvent) {
        if self.events.receiver_count() > 0 {
            self.publish(make());
        }
    }

    pub(crate) fn watch(&self) -> RegistryWatch {
        RegistryWatch::new(self.events.subscribe())
    }

    /// A watch that first yields the current entries as events (`Added`
    /// per running local instance, `RemoteAdded` per remote one, `Failed`
    /// per failed service; by service name), then the changes. It
    /// subscribes before it reads, so no change is missed; one made while
    /// the snapshot was read may be reported twice.
    pub(crate) fn watch_with_snapshot(&self) -> RegistryWatch {
        let rx = self.events.subscribe();
        let mut entries = self.entries();
        entries.sort_by(|a, b| a.name().cmp(b.name()));
        let mut snapshot = Vec::new();
        for e in entries {
            let service = e.name().to_string();
            if e.state() == ServiceState::Failed {
                snapshot.push(RegistryEvent::Failed {
                    service: service.clone(),
                });
            }
            for instance in e.live_instances() {
                snapshot.push(RegistryEvent::Added {
                    service: service.clone(),
                    instance,
                });
            }
            for (node, slot) in e.remote_instances() {
                snapshot.push(RegistryEvent::RemoteAdded {
                    service: service.clone(),
                    node,
                    slot,
                });
            }
        }
        RegistryWatch::with_snapshot(rx, snapshot)
    }
}
