//! The cluster view: the members a node knows and where services run; also
//! served to `msa cluster status` over the authenticated protocol.

use serde::{Deserialize, Serialize};

/// A member as one node sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberView {
    /// Node name.
    pub name: String,
    /// Remoting address.
    pub addr: String,
    /// `alive`, `suspect`, `down` or `left`.
    pub status: String,
    /// Incarnation (start time of the node process).
    pub incarnation: u64,
    /// The version of this member's service table that the asked node holds
    /// (its own current version for the asked node itself; 0 when it holds
    /// none, as for a member that is down). Absent in the JSON of older
    /// nodes, read as 0.
    #[serde(default)]
    pub table_version: u64,
    /// `reachable` or `unreachable`: whether the asked node reaches this
    /// member itself (its own connections; see docs/cluster.md,
    /// "Reachability"). A member that is not alive or suspect, and the asked
    /// node itself, read `reachable`. Absent in older nodes' JSON, read as
    /// `reachable`.
    #[serde(default = "reachable")]
    pub reachability: String,
    /// The member's state, as Akka names them: `joining` (known, its
    /// service table not here yet), `up`, `leaving` (the asked node itself,
    /// shutting down), `exiting` (it said it leaves), `removed` (it left
    /// gracefully) or `down` (declared down by failure detection, an
    /// operator or the split-brain resolver; the asked node itself reads
    /// `down`, with `status` `down`, while its split-brain resolver has it
    /// downed). Beside
    /// `status`, which stays as it was. Absent in older nodes' JSON, read as
    /// `up`.
    #[serde(default = "up")]
    pub state: String,
}

fn up() -> String {
    "up".into()
}

fn reachable() -> String {
    "reachable".into()
}

/// A service and the nodes that run an instance of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceView {
    /// Service name.
    pub name: String,
    /// Nodes with at least one live instance, sorted.
    pub nodes: Vec<String>,
}

/// What a node knows of the cluster (`msa cluster status --json`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ClusterStatus {
    /// Every member the node knows, itself included.
    pub members: Vec<MemberView>,
    /// Every service with a live instance somewhere.
    pub services: Vec<ServiceView>,
    /// Every unreachable pair `[observer, subject]` the asked node knows of,
    /// sorted: its own observations and those other members gossiped.
    /// Absent in older nodes' JSON, read as empty.
    #[serde(default)]
    pub unreachable: Vec<[String; 2]>,
}

impl ClusterStatus {
    /// How this view differs from `other` as far as agreement goes, or
    /// `None` when they agree: the same members, each with the same name,
    /// incarnation, status and service-table version (services are derived
    /// from the tables and are not compared). A cluster has healed when the
    /// views of all its nodes agree with each other.
    ///
    /// # Examples
    /// ```
    /// use msa_runtime::remote::{ClusterStatus, MemberView};
    /// let member = |status: &str| MemberView {
    ///     name: "node3".into(),
    ///     addr: "10.77.0.3:7000".into(),
    ///     status: status.into(),
    ///     incarnation: 7,
    ///     table_version: 2,
    ///     reachability: "reachable".into(),
    ///     state: "up".into(),
    /// };
    /// let view = |status: &str| ClusterStatus {
    ///     members: vec![member(status)],
    ///     ..ClusterStatus::default()
    /// };
    /// let (a, b) = (view("alive"), view("down"));
    /// assert_eq!(a.disagreement(&a.clone()), None);
    /// assert!(a.disagreement(&b).unwrap().contains("node3"));
    /// ```
    pub fn disagreement(&self, other: &ClusterStatus) -> Option<String> {
        let (mine, theirs) = (self.agreement_key(), other.agreement_key());
        if mine == theirs {
            return None;
        }
        let show = |m: Option<&(&str, u64, &str, u64)>| match m {
            Some((_, inc, st, tv)) => format!("{st} (incarnation {inc}, table {tv})"),
            None => "absent".to_string(),
        };
        let mut names: Vec<&str> = mine.iter().chain(&theirs).map(|m| m.0).collect();
        names.sort_unstable();
        names.dedup();
        names.into_iter().find_map(|name| {
            let a = mine.iter().find(|m| m.0 == name);
            let b = theirs.iter().find(|m| m.0 == name);
            (a != b).then(|| format!("{name}: {} vs {}", show(a), show(b)))
        })
    }

    /// Each member's (name, incarnation, status, table version), by name.
    fn agreement_key(&self) -> Vec<(&str, u64, &str, u64)> {
        let mut v: Vec<_> = self
            .members
            .iter()
            .map(|m| {
                (
                    m.name.as_str(),
                    m.incarnation,
                    m.status.as_str(),
                    m.table_version,
                )
            })
            .collect();
        v.sort_unstable();
        v
    }
}

/// Why the status could not be fetched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StatusError {
    /// No connection to the seed.
    #[error("cannot connect to {addr}: {reason}")]
    Connect {
        /// The seed.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The handshake failed (wrong secret, cluster, protocol).
    #[error("handshake with {addr} failed: {reason}")]
    Handshake {
        /// The seed.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The node did not answer in time or answered nonsense.
    #[error("no status from {addr}: {reason}")]
    Protocol {
        /// The seed.
        addr: String,
        /// Why.
        reason: String,
    },
}

/// A change in cluster membership, as this node sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClusterEvent {
    /// A member joined (or came back with a new incarnation).
    Joined {
        /// Name, address, incarnation.
        member: super::NodeInfo,
    },
    /// A member left gracefully (its connection closed after it stopped).
    Left {
        /// The member's name.
        name: String,
    },
    /// A member was declared down by failure detection, or by this node's
    /// split-brain resolver (the reason says which).
    Down {
        /// The member's name.
        name: String,
        /// Why: the detector's verdict or the connection's end.
        reason: String,
    },
    /// This node's split-brain resolver downed the node itself: it serves
    /// no calls from other nodes and calls none until it rejoins.
    SelfDowned {
        /// The strategy that decided (`keep-majority`, …).
        strategy: String,
    },
    /// This node, downed by its split-brain resolver, rejoined the cluster
    /// (with a renewed membership identity) after the partition healed.
    Rejoined,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, status: &str, incarnation: u64, table_version: u64) -> MemberView {
        MemberView {
            name: name.into(),
            addr: format!("{name}:1"),
            status: status.into(),
            incarnation,
            table_version,
            reachability: "reachable".into(),
            state: "up".into(),
        }
    }

    fn view(members: Vec<MemberView>) -> ClusterStatus {
        ClusterStatus {
            members,
            ..ClusterStatus::default()
        }
    }

    #[test]
    fn views_agree_whatever_the_order_of_members_and_services() {
        let a = view(vec![
            member("n1", "alive", 1, 2),
            member("n2", "alive", 5, 1),
        ]);
        let mut b = view(vec![
            member("n2", "alive", 5, 1),
            member("n1", "alive", 1, 2),
        ]);
        b.services.push(ServiceView {
            name: "kv".into(),
            nodes: vec!["n1".into()],
        });
        assert_eq!(a.disagreement(&b), None);
    }

    #[test]
    fn a_different_status_incarnation_table_or_member_set_is_a_disagreement() {
        let a = view(vec![
            member("n1", "alive", 1, 2),
            member("n2", "alive", 5, 1),
        ]);
        let cases = [
            (
                view(vec![
                    member("n1", "alive", 1, 2),
                    member("n2", "down", 5, 1),
                ]),
                "n2: alive",
            ),
            (
                view(vec![
                    member("n1", "alive", 1, 2),
                    member("n2", "alive", 6, 1),
                ]),
                "n2: alive (incarnation 5",
            ),
            (
                view(vec![
                    member("n1", "alive", 1, 3),
                    member("n2", "alive", 5, 1),
                ]),
                "n1: alive (incarnation 1, table 2) vs alive (incarnation 1, table 3)",
            ),
            (
                view(vec![member("n1", "alive", 1, 2)]),
                "n2: alive (incarnation 5, table 1) vs absent",
            ),
        ];
        for (b, why) in cases {
            let d = a.disagreement(&b).expect("they differ");
            assert!(d.starts_with(why), "{d}");
            assert!(b.disagreement(&a).is_some());
        }
    }

    #[test]
    fn an_older_nodes_json_without_table_versions_still_reads() {
        let m: MemberView =
            serde_json::from_str(r#"{"name":"n1","addr":"n1:1","status":"alive","incarnation":3}"#)
                .unwrap();
        assert_eq!(m.table_version, 0);
        assert_eq!(m.reachability, "reachable");
        assert_eq!(m.state, "up");
        let s: ClusterStatus = serde_json::from_str(r#"{"members":[],"services":[]}"#).unwrap();
        assert!(s.unreachable.is_empty());
        let json = serde_json::to_value(member("n1", "alive", 3, 4)).unwrap();
        for field in [
            "name",
            "addr",
            "status",
            "incarnation",
            "table_version",
            "reachability",
            "state",
        ] {
            assert!(json.get(field).is_some(), "{field} in {json}");
        }
    }
}
