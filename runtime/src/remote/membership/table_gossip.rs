//! Service-table versions gossiped through foca's custom broadcasts.
//!
//! A service table outgrows foca's packets, so only its version travels in
//! the gossip: `(node, incarnation, version)`, a few dozen bytes. A node that
//! learns of a version newer than the table it holds fetches the table over
//! the authenticated TCP connection (`Frame::TableRequest`).
//!
//! The same handler carries each node's reachability report
//! ([`ReachReport`]): an item whose first byte is [`REACH_TAG`] (a byte no
//! encoded `TableVersion` starts with: it begins with a length varint, and
//! bincode's varints never start with 255), and each node's join state
//! ([`JoinState`], the join step of `remote/join.rs`): an item whose first
//! byte is [`JOIN_TAG`] (254: a varint starts with it only for a 128-bit
//! number, never for a length).

use std::collections::HashMap;
use std::sync::Arc;

use foca::{BroadcastHandler, Invalidates};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::Member;
use crate::message::codec;
use crate::remote::join::JoinState;
use crate::remote::reachability::ReachReport;

/// The first byte of a gossiped reachability report.
pub(crate) const REACH_TAG: u8 = 0xff;

/// The first byte of a gossiped join state.
pub(crate) const JOIN_TAG: u8 = 0xfe;

/// A join state's gossip item: [`JOIN_TAG`], then the state.
pub(crate) fn encode_join(s: &JoinState) -> Vec<u8> {
    let mut v = vec![JOIN_TAG];
    v.extend(codec::encode(s).unwrap_or_default());
    v
}

/// A reachability report's gossip item: [`REACH_TAG`], then the report.
pub(crate) fn encode_report(r: &ReachReport) -> Vec<u8> {
    let mut v = vec![REACH_TAG];
    v.extend(codec::encode(r).unwrap_or_default());
    v
}

/// What foca keeps in its backlog: one table version or one report per node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum GossipKey {
    /// A service-table version.
    Table(TableVersion),
    /// A reachability report: its observer and rank.
    Reach(String, (u64, u64)),
    /// A join state: its node and rank.
    Join(String, (u64, u64)),
}

impl Invalidates for GossipKey {
    fn invalidates(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Table(a), Self::Table(b)) => a.invalidates(b),
            (Self::Reach(a, ra), Self::Reach(b, rb)) | (Self::Join(a, ra), Self::Join(b, rb)) => {
                a == b && ra >= rb
            }
            _ => false,
        }
    }
}

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
    /// The newest report rank seen per observer.
    reach_newest: HashMap<String, (u64, u64)>,
    /// Reports newer than any seen before, for the I/O layer.
    pub(crate) reports: Arc<Mutex<Vec<ReachReport>>>,
    /// The newest join state rank seen per node.
    join_newest: HashMap<String, (u64, u64)>,
    /// Join states newer than any seen before, for the I/O layer.
    pub(crate) joins: Arc<Mutex<Vec<JoinState>>>,
}

impl TableGossip {
    /// A handler and the queue it reports news to.
    pub(crate) fn new() -> (Self, Arc<Mutex<Vec<TableVersion>>>) {
        let news = Arc::new(Mutex::new(Vec::new()));
        (
            Self {
                newest: HashMap::new(),
                news: news.clone(),
                reach_newest: HashMap::new(),
                reports: Arc::new(Mutex::new(Vec::new())),
                join_newest: HashMap::new(),
                joins: Arc::new(Mutex::new(Vec::new())),
            },
            news,
        )
    }
}

impl BroadcastHandler<Member> for TableGossip {
    type Key = GossipKey;
    type Error = BadTableVersion;

    fn receive_item(
        &mut self,
        data: &[u8],
        _sender: Option<&Member>,
    ) -> Result<Option<GossipKey>, BadTableVersion> {
        if let Some(report) = data.strip_prefix(&[REACH_TAG]) {
            let r: ReachReport =
                codec::decode(report).map_err(|e| BadTableVersion(e.to_string()))?;
            if self
                .reach_newest
                .get(&r.observer)
                .is_some_and(|k| *k >= r.rank())
            {
                return Ok(None);
            }
            self.reach_newest.insert(r.observer.clone(), r.rank());
            let key = GossipKey::Reach(r.observer.clone(), r.rank());
            self.reports.lock().push(r);
            return Ok(Some(key));
        }
        if let Some(state) = data.strip_prefix(&[JOIN_TAG]) {
            let j: JoinState = codec::decode(state).map_err(|e| BadTableVersion(e.to_string()))?;
            if self
                .join_newest
                .get(&j.node)
                .is_some_and(|k| *k >= j.rank())
            {
                return Ok(None);
            }
            self.join_newest.insert(j.node.clone(), j.rank());
            let key = GossipKey::Join(j.node.clone(), j.rank());
            self.joins.lock().push(j);
            return Ok(Some(key));
        }
        let v: TableVersion = codec::decode(data).map_err(|e| BadTableVersion(e.to_string()))?;
        let known = self.newest.get(&v.node).copied();
        if known.is_some_and(|k| k >= v.rank()) {
            // Old news: neither reported nor passed on again.
            return Ok(None);
        }
        self.newest.insert(v.node.clone(), v.rank());
        self.news.lock().push(v.clone());
        Ok(Some(GossipKey::Table(v)))
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
    fn reach_reports_travel_beside_table_versions_and_only_newer_ones_pass() {
        let (mut h, news) = TableGossip::new();
        let reports = h.reports.clone();
        let report = |version: u64| ReachReport {
            observer: "a".into(),
            incarnation: 1,
            version,
            unreachable: vec!["c".into()],
        };
        let mut passed =
            |r: &ReachReport| h.receive_item(&encode_report(r), None).unwrap().is_some();
        assert!(passed(&report(2)));
        assert!(!passed(&report(2)));
        assert!(!passed(&report(1)));
        assert!(passed(&report(3)));
        assert!(news.lock().is_empty());
        let got: Vec<u64> = reports.lock().iter().map(|r| r.version).collect();
        assert_eq!(got, [2, 3]);
        let key = |v: u64| GossipKey::Reach("a".into(), (1, v));
        assert!(key(3).invalidates(&key(2)));
        assert!(!key(2).invalidates(&key(3)));
        assert!(!key(3).invalidates(&GossipKey::Table(tv("a", 1, 1))));
    }

    #[test]
    fn join_states_travel_beside_the_rest_and_only_newer_ones_pass() {
        use crate::remote::join::JoinPhase;
        let (mut h, news) = TableGossip::new();
        let joins = h.joins.clone();
        let state = |incarnation: u64, seq: u64| JoinState {
            node: "a".into(),
            incarnation,
            seq,
            phase: JoinPhase::Up,
            round: 0,
            admits: vec![("b".into(), 2, 0)],
            downs: vec![],
        };
        let mut passed = |s: &JoinState| h.receive_item(&encode_join(s), None).unwrap().is_some();
        assert!(passed(&state(1, 2)));
        assert!(!passed(&state(1, 2)));
        assert!(!passed(&state(1, 1)));
        assert!(passed(&state(2, 1)));
        assert!(news.lock().is_empty());
        let got: Vec<(u64, u64)> = joins.lock().iter().map(JoinState::rank).collect();
        assert_eq!(got, [(1, 2), (2, 1)]);
        assert_eq!(joins.lock()[0].admits, [("b".to_string(), 2, 0)]);
        let key = |s: u64| GossipKey::Join("a".into(), (1, s));
        assert!(key(3).invalidates(&key(2)));
        assert!(!key(2).invalidates(&key(3)));
        assert!(!key(3).invalidates(&GossipKey::Reach("a".into(), (1, 1))));
        assert!(h.receive_item(&[JOIN_TAG, 0xff, 0xff], None).is_err());
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
