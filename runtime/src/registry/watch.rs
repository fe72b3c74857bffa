//! A stream of registry changes.

use tokio::sync::broadcast;

use super::InstanceId;
use crate::lifecycle::ExitReason;

/// One change in the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegistryEvent {
    /// An instance started for the first time.
    Added {
        /// The service.
        service: String,
        /// The instance.
        instance: InstanceId,
    },
    /// An instance died or was stopped and left the registry.
    Removed {
        /// The service.
        service: String,
        /// The instance.
        instance: InstanceId,
        /// Why: `"stopped"`, `"panicked: …"`, `"start failed: …"`, `"killed"`
        /// (the [`exit`](RegistryEvent::Removed::exit) reason as text).
        reason: String,
        /// Why, typed.
        exit: ExitReason,
    },
    /// An instance came back after a restart (a fresh actor from the factory).
    Restarted {
        /// The service.
        service: String,
        /// The instance.
        instance: InstanceId,
    },
    /// The service's supervisor gave up (restart intensity exceeded).
    Failed {
        /// The service.
        service: String,
    },
    /// An instance on another node became reachable.
    RemoteAdded {
        /// The service.
        service: String,
        /// The node it runs on.
        node: String,
        /// Its slot there.
        slot: usize,
    },
    /// An instance on another node went away (it stopped, or its node is down).
    RemoteRemoved {
        /// The service.
        service: String,
        /// The node it ran on.
        node: String,
        /// Its slot there.
        slot: usize,
        /// Why.
        reason: String,
    },
    /// The watcher fell behind and missed this many events.
    Lagged {
        /// How many events were skipped.
        missed: u64,
    },
}

/// Receives [`RegistryEvent`]s; made by [`Node::watch`](crate::Node::watch).
#[derive(Debug)]
pub struct RegistryWatch {
    rx: broadcast::Receiver<RegistryEvent>,
    /// The snapshot still to hand out, first
    /// ([`Node::watch_with_snapshot`](crate::Node::watch_with_snapshot)).
    snapshot: std::collections::VecDeque<RegistryEvent>,
}

impl RegistryWatch {
    pub(crate) fn new(rx: broadcast::Receiver<RegistryEvent>) -> Self {
        Self {
            rx,
            snapshot: Default::default(),
        }
    }

    pub(crate) fn with_snapshot(
        rx: broadcast::Receiver<RegistryEvent>,
        snapshot: Vec<RegistryEvent>,
    ) -> Self {
        Self {
            rx,
            snapshot: snapshot.into(),
        }
    }

    /// How many snapshot events are still to come before the changes.
    pub fn snapshot_left(&self) -> usize {
        self.snapshot.len()
    }

    /// The next event, or `None` once the node is gone.
    pub async fn next(&mut self) -> Option<RegistryEvent> {
        if let Some(ev) = self.snapshot.pop_front() {
            return Some(ev);
        }
        match self.rx.recv().await {
            Ok(ev) => Some(ev),
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                Some(RegistryEvent::Lagged { missed })
            }
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }
}
