//! Service-table versions gossiped through foca's custom broadcasts.
//!
//! A service table outgrows foca's packets, so only its version travels in
//! the gossip: `(node, incarnation, version)`, a few dozen bytes. A node that
//! learns of a version newer than the table it holds fetches the table over
//! the authenticated TCP connection (`Frame::TableRequest`).

use std::collections::HashMap;
use std::sync::Arc;

use foca::{BroadcastHandler, Invalidates};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::Member;
use crate::message::codec;

/// One node's service table version, as gossiped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TableVersion {
    /// The node whose table it is.
    pub(crate) node: String,
    /// That node's incarnation (a restarted node starts its versions anew).
    pub(crate) incarnation: u64,
    /// The table's version, bumped at every change of the node's registry.
    pub(crate) version: u64,
}

impl TableVersion {
    fn rank(&self) -> (u64, u64) {
        (self.incarnation, self.version)
    }

    /// The gossip item's bytes.
    pub(crate) fn encode(&self) -> Vec<u8> {
        codec::encode(self).unwrap_or_default()
    }
}

impl Invalidates for TableVersion {
    /// A newer version of the same node's table replaces an older one in
    /// foca's backlog.
    fn invalidates(&self, other: &Self) -> bool {
        self.node == other.node && self.rank() >= other.rank()
    }
}

/// Why a gossip item was refused.
#[derive(Debug, thiserror::Error)]
#[error("bad table version in gossip: {0}")]
pub(crate) struct BadTableVersion(String);

/// Foca's broadcast handler: keeps the newest version seen per node and
/// reports every newer one to the I/O layer (through `news`).
#[derive(Debug, Default)]
pub(crate) struct TableGossip {
    newest: HashMap<String, (u64, u64)>,
    news: Arc<Mutex<Vec<TableVersion>>>,
}

impl TableGossip {
    /// A handler and the queue it reports news to.
    pub(crate) fn new() -> (Self, Arc<Mutex<Vec<TableVersion>>>) {
        let news = Arc::new(Mutex::new(Vec::new()));
        (
            Self {
                newest: HashMap::new(),
                news: news.clone(),
            },
            news,
        )
    }
}

impl BroadcastHandler<Member> for TableGossip {
    type Key = TableVersion;
    type Error = BadTableVersion;

    fn receive_item(
        &mut self,
        data: &[u8],
        _sender: Option<&Member>,
    ) -> Result<Option<TableVersion>, BadTableVersion> {
        let v: TableVersion = codec::decode(data).map_err(|e| BadTableVersion(e.to_string()))?;
        let known = self.newest.get(&v.node).copied();
        if known.is_some_and(|k| k >= v.rank()) {
            // Old news: neither reported nor passed on again.
            return Ok(None);
        }
        self.newest.insert(v.node.clone(), v.rank());
        self.news.lock().push(v.clone());
        Ok(Some(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tv(node: &str, incarnation: u64, version: u64) -> TableVersion {
        TableVersion {
            node: node.into(),
            incarnation,
            version,
        }
    }

    #[test]
    fn only_newer_versions_are_news_and_passed_on() {
        let (mut h, news) = TableGossip::new();
        // Whether the handler passes the version on as news.
        let mut passed = |node: &str, incarnation: u64, version: u64| {
            h.receive_item(&tv(node, incarnation, version).encode(), None)
                .unwrap()
                .is_some()
        };
        assert!(passed("a", 1, 2));
        assert!(!passed("a", 1, 2));
        assert!(!passed("a", 1, 1));
        assert!(passed("a", 1, 3));
        // A restarted node starts over at version 1 and still wins.
        assert!(passed("a", 2, 1));
        assert!(passed("b", 1, 1));
        let got: Vec<_> = news
            .lock()
            .drain(..)
            .map(|v| (v.node, v.incarnation, v.version))
            .collect();
        assert_eq!(
            got,
            [
                ("a".to_string(), 1, 2),
                ("a".to_string(), 1, 3),
                ("a".to_string(), 2, 1),
                ("b".to_string(), 1, 1)
            ]
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let (mut h, news) = TableGossip::new();
        assert!(h.receive_item(&[0xff; 3], None).is_err());
        assert!(news.lock().is_empty());
    }

    #[test]
    fn a_newer_version_replaces_an_older_one_of_the_same_node_only() {
        assert!(tv("a", 1, 3).invalidates(&tv("a", 1, 2)));
        assert!(!tv("a", 1, 2).invalidates(&tv("a", 1, 3)));
        assert!(tv("a", 2, 1).invalidates(&tv("a", 1, 9)));
        assert!(!tv("b", 1, 9).invalidates(&tv("a", 1, 1)));
    }
}
