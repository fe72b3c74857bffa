//! Names → live service instances; watch for changes.
//!
//! A service's entry is created once, when it is first spawned, and never
//! replaced: its instance slots change as instances die and restart. A
//! [`ServiceRef`](crate::ServiceRef) caches the entry, so the hot path is one
//! `arc-swap` load of the slot it routes to, with no lock and no hashing.

mod entry;
mod watch;

pub(crate) use entry::{ErasedRecipient, Instance, InstanceGuard, MessageType, ServiceEntry};
pub use entry::{InstanceId, ServiceState};
pub use watch::{RegistryEvent, RegistryWatch};

use std::collections::HashMap;
use std::sync::Arc;

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
    events: broadcast::Sender<RegistryEvent>,
}

impl Registry {
    pub(crate) fn new() -> Self {
        let (events, _) = broadcast::channel(WATCH_CAPACITY);
        Self {
            services: RwLock::new(HashMap::new()),
            wire_names: Mutex::new(HashMap::new()),
            events,
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
        if map.contains_key(entry.name()) {
            return Err(SpawnError::DuplicateService {
                service: entry.name().to_string(),
            });
        }
        map.insert(Arc::from(entry.name()), entry);
        Ok(())
    }

    pub(crate) fn publish(&self, event: RegistryEvent) {
        // No receiver is not an error: nobody watches.
        let _ = self.events.send(event);
    }

    pub(crate) fn watch(&self) -> RegistryWatch {
        RegistryWatch::new(self.events.subscribe())
    }
}
