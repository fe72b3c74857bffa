//! Service tables: this node's services as it advertises them to peers, and
//! a peer's table applied to the registry. The registry knows nothing of
//! frames or connections; this is where its entries meet the wire form
//! ([`ServiceAd`]) and the connection that reaches them ([`Peer`]).

use std::sync::Arc;

use super::frame::ServiceAd;
use super::peer::Peer;
use crate::registry::{PeerLink, Registry, RemoteInstance, ServiceEntry};

/// The registry's service tables.
pub(crate) trait RegistryTables {
    /// This node's services as it advertises them.
    fn local_table(&self) -> Vec<ServiceAd>;
    /// Applies a peer's service table: its instances replace what we knew.
    fn apply_remote_table(&self, peer: &Arc<Peer>, services: Vec<ServiceAd>);
}

impl RegistryTables for Registry {
    fn local_table(&self) -> Vec<ServiceAd> {
        let mut v: Vec<ServiceAd> = self
            .entries()
            .iter()
            .filter(|e| !e.types.is_empty())
            .map(|e| ServiceAd {
                name: e.name().to_string(),
                slots: e
                    .live_instances()
                    .iter()
                    .map(|i| (i.slot as u32, i.incarnation))
                    .collect(),
                messages: e
                    .types
                    .iter()
                    .filter_map(|t| t.wire.map(|w| w.wire_name.to_string()))
                    .collect(),
                keyed: e.keyed_routing,
            })
            .filter(|ad| !ad.slots.is_empty())
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    fn apply_remote_table(&self, peer: &Arc<Peer>, services: Vec<ServiceAd>) {
        let node = peer.info.name.clone();
        let link: Arc<dyn PeerLink> = peer.clone();
        let mut seen = Vec::new();
        for ad in services {
            let entry = self.get_or_insert_remote(&ad.name, ad.keyed);
            let messages: Arc<[String]> = ad.messages.into();
            let now = ad
                .slots
                .iter()
                .map(|&(slot, incarnation)| {
                    Arc::new(RemoteInstance {
                        peer: link.clone(),
                        slot: slot as usize,
                        incarnation,
                        messages: messages.clone(),
                    })
                })
                .collect();
            self.publish_remote(
                &ad.name,
                &node,
                entry.set_remote(&node, now),
                "left the table",
            );
            seen.push(ad.name);
        }
        let entries: Vec<Arc<ServiceEntry>> = self.entries();
        for e in entries {
            if !seen.iter().any(|s| s == e.name()) {
                let change = e.set_remote(&node, Vec::new());
                self.publish_remote(e.name(), &node, change, "left the table");
            }
        }
    }
}

impl PeerLink for Peer {
    fn node_name(&self) -> &str {
        &self.info.name
    }

    fn into_any(self: Arc<Self>) -> Arc<dyn std::any::Any + Send + Sync> {
        self
    }
}

impl Peer {
    /// The connection behind a registry's [`PeerLink`] (every link the
    /// registry holds was made from a `Peer` by [`RegistryTables`]).
    pub(crate) fn of(link: &Arc<dyn PeerLink>) -> Option<Arc<Peer>> {
        link.clone().into_any().downcast::<Peer>().ok()
    }
}
