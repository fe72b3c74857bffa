//! What the live page is sent: one [`LiveView`] per snapshot, as JSON
//! (docs/live-view.md, "The stream protocol"). Built from what this node
//! knows of the cluster; names are sent as they are (the page escapes
//! them), message contents and tokens never.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use msa_runtime::live::ServiceLive;
use msa_runtime::remote::{ClusterStatus, MemberView};
use msa_runtime::{ClusterLive, LiveReport};
use serde::Serialize;

/// The version of the view's JSON shape.
pub(crate) const VIEW_VERSION: u32 = 1;

/// One snapshot of the cluster, as the page reads it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct LiveView {
    /// [`VIEW_VERSION`].
    pub(crate) version: u32,
    /// Counts the snapshots the server gathered (one per gather, shared by
    /// every stream).
    pub(crate) seq: u64,
    /// When its gather started, Unix milliseconds: rates are counter
    /// deltas over the difference between two snapshots' `at_ms`.
    pub(crate) at_ms: u64,
    /// The node that serves the page.
    pub(crate) observer: String,
    /// Every member the observer knows, itself included.
    pub(crate) nodes: Vec<NodeView>,
    /// Unreachable pairs `[observer, subject]`, as gossiped.
    pub(crate) unreachable: Vec<[String; 2]>,
    /// Connections between nodes with their traffic counters.
    pub(crate) connections: Vec<ConnectionView>,
    /// One row per service and node that runs it.
    pub(crate) services: Vec<ServiceRow>,
    /// Each reporting node's supervision trees.
    pub(crate) supervision: Vec<SupervisionView>,
    /// Recent traces, newest first.
    pub(crate) traces: Vec<TraceView>,
}

/// A member as the observer sees it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct NodeView {
    /// Node name.
    pub(crate) name: String,
    /// Remoting address.
    pub(crate) addr: String,
    /// What the page shows (`data-state`): `unreachable` for a live member
    /// the observer cannot reach, `removed` for one that left gracefully,
    /// `down`, `left`, else the member status (`alive`, `suspect`).
    pub(crate) state: String,
    /// The member status: `alive`, `suspect`, `down` or `left`.
    pub(crate) status: String,
    /// The member state: `joining`, `up`, `leaving`, `exiting`, `removed`, `down`.
    pub(crate) member_state: String,
    /// `reachable` or `unreachable`, from the observer.
    pub(crate) reachability: String,
    /// Seconds since the node process started, when known.
    pub(crate) uptime_s: Option<u64>,
}

/// One direction of a connection: `from`'s counters for its link to `to`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ConnectionView {
    /// The node that counts.
    pub(crate) from: String,
    /// The peer.
    pub(crate) to: String,
    /// Frames received.
    pub(crate) frames_in: u64,
    /// Frames sent.
    pub(crate) frames_out: u64,
    /// Bytes received.
    pub(crate) bytes_in: u64,
    /// Bytes sent.
    pub(crate) bytes_out: u64,
    /// Bytes waiting to be sent (both lanes).
    pub(crate) queued_bytes: u64,
}

/// A service's instances on one node and their counters (cumulative: the
/// page turns them into rates).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ServiceRow {
    /// Service name.
    pub(crate) service: String,
    /// Node name.
    pub(crate) node: String,
    /// Live instances there.
    pub(crate) instances: u64,
    /// Messages handed to a handler.
    pub(crate) messages: u64,
    /// Failed or refused calls: instance failures, panicked requests,
    /// expired and denied messages.
    pub(crate) errors: u64,
    /// Restarts of its instances.
    pub(crate) restarts: u64,
    /// Messages queued and not yet taken (`None` when not tracked or not known).
    pub(crate) mailbox_depth: Option<u64>,
    /// Median ask latency in microseconds (a bucket's upper bound).
    pub(crate) p50_us: Option<u64>,
    /// 99th percentile ask latency in microseconds (a bucket's upper bound).
    pub(crate) p99_us: Option<u64>,
}

/// One node's supervision trees.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SupervisionView {
    /// Node name.
    pub(crate) node: String,
    /// Its top-level supervisors and services.
    pub(crate) trees: Vec<TreeNode>,
}

/// A supervisor, service or instance, with its recent restarts.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct TreeNode {
    /// Its name.
    pub(crate) name: String,
    /// `supervisor`, `service` or `instance`.
    pub(crate) kind: String,
    /// Recent restarts under it.
    pub(crate) restarts: Vec<RestartView>,
    /// What it supervises.
    pub(crate) children: Vec<TreeNode>,
}

/// A restart and its reason.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RestartView {
    /// When, Unix milliseconds.
    pub(crate) at_ms: Option<u64>,
    /// The child restarted.
    pub(crate) child: Option<String>,
    /// Why (the exit reason).
    pub(crate) reason: String,
}

/// A trace: the spans of one request, merged across nodes.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct TraceView {
    /// 32 hex digits.
    pub(crate) trace_id: String,
    /// The first span's name (`service message`).
    pub(crate) root: String,
    /// Start of its first span, Unix microseconds.
    pub(crate) start_us: u64,
    /// From the first span's start to the last span's end.
    pub(crate) duration_us: u64,
    /// `ok`, or `error` when a span failed.
    pub(crate) status: String,
    /// Nodes with spans in it, sorted.
    pub(crate) nodes: Vec<String>,
    /// Services with spans in it, in order of first appearance.
    pub(crate) services: Vec<String>,
    /// Its spans, by start.
    pub(crate) spans: Vec<SpanView>,
}

/// One span.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SpanView {
    /// 16 hex digits.
    pub(crate) span_id: String,
    /// The parent span's id, 16 hex digits, if any.
    pub(crate) parent_id: Option<String>,
    /// The node it ran on.
    pub(crate) node: String,
    /// The service it ran in.
    pub(crate) service: String,
    /// The instance (slot) that served it, if known.
    pub(crate) instance: Option<u64>,
    /// What ran: the message's wire name.
    pub(crate) name: String,
    /// `gateway` (the gateway's hop), `served` or `custom`.
    pub(crate) kind: String,
    /// Start, Unix microseconds.
    pub(crate) start_us: u64,
    /// How long it took.
    pub(crate) duration_us: u64,
    /// `ok` or what went wrong.
    pub(crate) outcome: String,
}

/// What the page shows for a member (see [`NodeView::state`]).
pub(crate) fn display_state(m: &MemberView) -> String {
    if m.status == "down" || m.state == "down" {
        "down".into()
    } else if m.state == "removed" {
        "removed".into()
    } else if m.status == "left" {
        "left".into()
    } else if m.reachability == "unreachable" {
        "unreachable".into()
    } else {
        m.status.clone()
    }
}

/// Unix milliseconds now.
pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Seconds since `incarnation` when it reads as the node's start time in
/// Unix nanoseconds (the default); `None` for a chosen incarnation number.
fn uptime_from_incarnation(incarnation: u64, now_ms: u64) -> Option<u64> {
    // 2001-09-09 in nanoseconds: anything smaller was not a start time.
    const PLAUSIBLE_NS: u64 = 1_000_000_000_000_000_000;
    if incarnation < PLAUSIBLE_NS {
        return None;
    }
    Some(now_ms.saturating_sub(incarnation / 1_000_000) / 1000)
}

/// The nodes as `status` has them.
pub(crate) fn nodes_of(status: &ClusterStatus, observer: &str, now_ms: u64) -> Vec<NodeView> {
    let mut nodes: Vec<NodeView> = status
        .members
        .iter()
        .map(|m| NodeView {
            name: m.name.clone(),
            addr: m.addr.clone(),
            state: display_state(m),
            status: m.status.clone(),
            member_state: m.state.clone(),
            reachability: m.reachability.clone(),
            uptime_s: uptime_from_incarnation(m.incarnation, now_ms),
        })
        .collect();
    if nodes.is_empty() {
        // A node without remoting: itself only.
        nodes.push(NodeView {
            name: observer.to_string(),
            addr: String::new(),
            state: "alive".into(),
            status: "alive".into(),
            member_state: "up".into(),
            reachability: "reachable".into(),
            uptime_s: None,
        });
    }
    nodes
}

/// The view of a cluster-wide gather: `cluster`'s members and unreachable
/// pairs, every report's services, connections and supervision trees, and
/// `traces` (merged by the caller). A service the tables place on a node
/// that did not report is listed there without counters.
pub(crate) fn build(cluster: &ClusterLive, traces: Vec<TraceView>, seq: u64) -> LiveView {
    let now = unix_ms();
    let status = &cluster.status;
    let me = cluster.node.clone();
    let reports: Vec<&LiveReport> = cluster.reports().collect();
    let mut nodes = nodes_of(status, &me, now);
    for n in &mut nodes {
        if let Some(r) = reports.iter().find(|r| r.node == n.name) {
            n.uptime_s = Some(r.uptime_ms / 1000);
            if n.addr.is_empty() {
                n.addr = r.addr.clone().unwrap_or_default();
            }
        } else if !matches!(n.state.as_str(), "alive" | "suspect" | "unreachable") {
            // Gone: no uptime to show.
            n.uptime_s = None;
        }
    }
    let mut services = Vec::new();
    let mut connections = Vec::new();
    let mut supervision = Vec::new();
    for r in &reports {
        services.extend(r.services.iter().map(|s| service_row(&r.node, s)));
        connections.extend(r.connections.iter().map(|c| ConnectionView {
            from: r.node.clone(),
            to: c.peer.clone(),
            frames_in: c.frames_in,
            frames_out: c.frames_out,
            bytes_in: c.bytes_in,
            bytes_out: c.bytes_out,
            queued_bytes: c.control_queued_bytes + c.data_queued_bytes,
        }));
        supervision.push(SupervisionView {
            node: r.node.clone(),
            trees: trees_of(r),
        });
    }
    // Services the tables place on nodes that did not report.
    let mut unreported: BTreeMap<(String, String), ()> = BTreeMap::new();
    for s in &status.services {
        for n in &s.nodes {
            if !services
                .iter()
                .any(|r: &ServiceRow| r.service == s.name && r.node == *n)
            {
                unreported.insert((s.name.clone(), n.clone()), ());
            }
        }
    }
    services.extend(unreported.into_keys().map(|(service, node)| ServiceRow {
        service,
        node,
        instances: 0,
        messages: 0,
        errors: 0,
        restarts: 0,
        mailbox_depth: None,
        p50_us: None,
        p99_us: None,
    }));
    services.sort_by(|a, b| (&a.service, &a.node).cmp(&(&b.service, &b.node)));
    connections.sort_by(|a, b| (&a.from, &a.to).cmp(&(&b.from, &b.to)));
    supervision.sort_by(|a, b| a.node.cmp(&b.node));
    LiveView {
        version: VIEW_VERSION,
        seq,
        at_ms: cluster.taken_at_unix_ms,
        nodes,
        observer: me,
        unreachable: status.unreachable.clone(),
        connections,
        services,
        supervision,
        traces,
    }
}

fn service_row(node: &str, s: &ServiceLive) -> ServiceRow {
    ServiceRow {
        service: s.name.clone(),
        node: node.to_string(),
        instances: s.instances.len() as u64,
        messages: s.messages,
        errors: s.failures + s.panicked_requests + s.expired + s.denied,
        restarts: s.restarts,
        mailbox_depth: Some(s.mailbox_depth),
        p50_us: s.ask_p50_us,
        p99_us: s.ask_p99_us,
    }
}

/// A node's supervision trees: each tree with its services, each service
/// with its instances; a restart sits under the service it names (as the
/// restarted child or the supervisor), else under its tree, else under
/// the node's first tree.
fn trees_of(r: &LiveReport) -> Vec<TreeNode> {
    let mut trees: Vec<TreeNode> = r
        .supervisors
        .iter()
        .map(|t| TreeNode {
            name: t.name.clone(),
            kind: "supervisor".into(),
            restarts: Vec::new(),
            children: t
                .services
                .iter()
                .map(|name| {
                    let instances = r
                        .services
                        .iter()
                        .find(|s| s.name == *name)
                        .map(|s| s.instances.clone())
                        .unwrap_or_default();
                    TreeNode {
                        name: name.clone(),
                        kind: "service".into(),
                        restarts: Vec::new(),
                        children: instances
                            .into_iter()
                            .map(|slot| TreeNode {
                                name: format!("{name}#{slot}"),
                                kind: "instance".into(),
                                restarts: Vec::new(),
                                children: Vec::new(),
                            })
                            .collect(),
                    }
                })
                .collect(),
        })
        .collect();
    for restart in r.restarts.iter().rev() {
        let view = RestartView {
            at_ms: Some(restart.at_unix_ms),
            child: Some(restart.child.clone()),
            reason: restart.reason.clone(),
        };
        let names_service = |svc: &str| {
            restart.supervisor == svc
                || restart.child == svc
                || restart.child.starts_with(&format!("{svc}#"))
                || restart.child.starts_with(&format!("{svc}["))
        };
        let slot = trees
            .iter_mut()
            .flat_map(|t| t.children.iter_mut())
            .find(|s| names_service(&s.name));
        if let Some(s) = slot {
            s.restarts.push(view);
        } else if let Some(t) = trees.iter_mut().find(|t| t.name == restart.supervisor) {
            t.restarts.push(view);
        } else if let Some(t) = trees.first_mut() {
            t.restarts.push(view);
        }
    }
    trees
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(status: &str, state: &str, reach: &str) -> MemberView {
        MemberView {
            name: "n".into(),
            addr: "a".into(),
            status: status.into(),
            incarnation: 1,
            table_version: 1,
            reachability: reach.into(),
            state: state.into(),
        }
    }

    #[test]
    fn the_shown_state_puts_unreachable_over_alive_and_down_over_all() {
        assert_eq!(display_state(&member("alive", "up", "reachable")), "alive");
        assert_eq!(
            display_state(&member("alive", "up", "unreachable")),
            "unreachable"
        );
        assert_eq!(
            display_state(&member("suspect", "up", "unreachable")),
            "unreachable"
        );
        assert_eq!(
            display_state(&member("suspect", "up", "reachable")),
            "suspect"
        );
        assert_eq!(display_state(&member("down", "down", "reachable")), "down");
        assert_eq!(display_state(&member("alive", "down", "reachable")), "down");
        assert_eq!(
            display_state(&member("left", "removed", "reachable")),
            "removed"
        );
        assert_eq!(
            display_state(&member("left", "exiting", "reachable")),
            "left"
        );
    }

    #[test]
    fn uptime_reads_a_nanosecond_start_time_only() {
        let start_ns = 1_700_000_000_000_000_000;
        assert_eq!(
            uptime_from_incarnation(start_ns, 1_700_000_090_000),
            Some(90)
        );
        assert_eq!(uptime_from_incarnation(7, 1_700_000_090_000), None);
    }
}
