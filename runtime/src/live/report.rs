//! What a node reports for the live view, and what a cluster-wide gather
//! returns (docs/live-view.md, "Spans and live reports").

use serde::{Deserialize, Serialize};

use super::spans::{SpanBufferStats, SpanRecord};
use crate::remote::ClusterStatus;

/// Default cap on the spans one node reports.
pub const DEFAULT_LIVE_MAX_SPANS: usize = 2_000;

/// Default time a cluster-wide gather waits for each other node (ms).
pub const DEFAULT_LIVE_PEER_TIMEOUT_MS: u64 = 500;

/// Which spans a live report carries, and how long a cluster-wide gather
/// waits for each other node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct LiveQuery {
    /// Only spans started at or after this time (µs since the Unix epoch;
    /// 0: all the buffer holds).
    pub since_unix_us: u64,
    /// At most this many spans per node, the newest (capped at
    /// [`DEFAULT_LIVE_MAX_SPANS`] × 10).
    pub max_spans: usize,
    /// Only spans of this service (a gateway hop counts under its route's
    /// service).
    pub service: Option<String>,
    /// How long [`Node::cluster_live_report`](crate::Node::cluster_live_report)
    /// waits for each other node, in ms (capped at 10 s).
    pub peer_timeout_ms: u64,
}

impl Default for LiveQuery {
    fn default() -> Self {
        Self {
            since_unix_us: 0,
            max_spans: DEFAULT_LIVE_MAX_SPANS,
            service: None,
            peer_timeout_ms: DEFAULT_LIVE_PEER_TIMEOUT_MS,
        }
    }
}

impl LiveQuery {
    /// Every span the buffers hold (up to [`DEFAULT_LIVE_MAX_SPANS`] per node).
    pub fn new() -> Self {
        Self::default()
    }

    /// Only spans started at or after `since_unix_us`.
    pub fn since_unix_us(mut self, since_unix_us: u64) -> Self {
        self.since_unix_us = since_unix_us;
        self
    }

    /// At most `max` spans per node.
    pub fn max_spans(mut self, max: usize) -> Self {
        self.max_spans = max;
        self
    }

    /// Only spans of `service`.
    pub fn service(mut self, service: impl Into<String>) -> Self {
        self.service = Some(service.into());
        self
    }

    /// Waits at most `ms` for each other node.
    pub fn peer_timeout_ms(mut self, ms: u64) -> Self {
        self.peer_timeout_ms = ms;
        self
    }

    /// `max_spans` as applied.
    pub(crate) fn span_cap(&self) -> usize {
        self.max_spans.min(DEFAULT_LIVE_MAX_SPANS * 10)
    }

    /// `peer_timeout_ms` as applied.
    pub(crate) fn peer_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.peer_timeout_ms.clamp(1, 10_000))
    }
}

/// One local service as the live view shows it. Counters are cumulative
/// since the service was first spawned here (a page computes rates from
/// two reports and their `taken_at_unix_ms`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct ServiceLive {
    /// Service name.
    pub name: String,
    /// `starting`, `running`, `failed` or `stopped`.
    pub state: String,
    /// The supervision tree that owns it (`root` for a top-level service).
    pub tree: String,
    /// Slots of the running instances.
    pub instances: Vec<u32>,
    /// Messages handed to a handler.
    pub messages: u64,
    /// Instance failures.
    pub failures: u64,
    /// Instance restarts.
    pub restarts: u64,
    /// Requests whose detached handler future panicked.
    pub panicked_requests: u64,
    /// Messages dropped because their deadline had passed.
    pub expired: u64,
    /// Calls refused by access rules.
    pub denied: u64,
    /// Messages queued and not yet taken (0 unless the node tracks it).
    pub mailbox_depth: u64,
    /// Timed asks (JSON calls and calls from other nodes).
    pub asks: u64,
    /// Their summed latency, µs.
    pub ask_sum_us: u64,
    /// Median ask latency: the upper bound of its histogram bucket, µs
    /// (`None` before the first timed ask, or beyond the largest bound).
    pub ask_p50_us: Option<u64>,
    /// 99th percentile ask latency, as `ask_p50_us`.
    pub ask_p99_us: Option<u64>,
}

/// A restart a supervisor decided, with its reason.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct RestartLive {
    /// The supervisor that restarted it (a tree, or the service's own).
    pub supervisor: String,
    /// The child restarted (a service, an instance or a nested tree).
    pub child: String,
    /// Why it exited, as the supervisor logs it.
    pub reason: String,
    /// When, in ms since the Unix epoch.
    pub at_unix_ms: u64,
}

/// A supervision tree of the node and the local services it owns.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct SupervisorLive {
    /// The tree's name (`root` for the node's top level).
    pub name: String,
    /// The services it owns, sorted.
    pub services: Vec<String>,
}

/// One open connection to another node, with its traffic (cumulative).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct ConnectionLive {
    /// The peer's name.
    pub peer: String,
    /// Frames received.
    pub frames_in: u64,
    /// Frames sent.
    pub frames_out: u64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// Bytes queued on the control lane.
    pub control_queued_bytes: u64,
    /// Bytes queued on the data lane.
    pub data_queued_bytes: u64,
}

impl From<crate::remote::ConnectionSnapshot> for ConnectionLive {
    fn from(c: crate::remote::ConnectionSnapshot) -> Self {
        Self {
            peer: c.peer,
            frames_in: c.frames_in,
            frames_out: c.frames_out,
            bytes_in: c.bytes_in,
            bytes_out: c.bytes_out,
            control_queued_bytes: c.control_queued_bytes,
            data_queued_bytes: c.data_queued_bytes,
        }
    }
}

/// One node's live report ([`Node::live_report`](crate::Node::live_report)).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct LiveReport {
    /// The node's name.
    pub node: String,
    /// Its remoting address, when it listens.
    pub addr: Option<String>,
    /// Milliseconds since the node started.
    pub uptime_ms: u64,
    /// When the report was taken, in ms since the Unix epoch.
    pub taken_at_unix_ms: u64,
    /// Its local services, sorted by name.
    pub services: Vec<ServiceLive>,
    /// Its supervision trees, sorted by name.
    pub supervisors: Vec<SupervisorLive>,
    /// The latest restarts on this node (at most 64), oldest first.
    pub restarts: Vec<RestartLive>,
    /// Its open connections, sorted by peer.
    pub connections: Vec<ConnectionLive>,
    /// The spans the query asked for, oldest first.
    pub spans: Vec<SpanRecord>,
    /// The span buffer's counters.
    pub span_buffer: SpanBufferStats,
    /// Whether spans were left out to keep the report under the frame
    /// size limit.
    pub truncated: bool,
}

/// Another node's part of a cluster-wide gather.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
#[non_exhaustive]
pub enum PeerLive {
    /// It answered.
    Report {
        /// Its report.
        report: Box<LiveReport>,
    },
    /// It did not answer in time, no connection to it is open, or its
    /// answer could not be read (an older node does not answer at all).
    Unreachable {
        /// The node's name.
        node: String,
        /// Why, in a few words.
        reason: String,
    },
}

/// A cluster-wide live report
/// ([`Node::cluster_live_report`](crate::Node::cluster_live_report)): the
/// asked node's report, each other member's (or why it is missing), and
/// the asked node's cluster view.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct ClusterLive {
    /// The node asked.
    pub node: String,
    /// When the gather started, in ms since the Unix epoch.
    pub taken_at_unix_ms: u64,
    /// The asked node's own report.
    pub local: LiveReport,
    /// Every other member the asked node knows as alive or suspect, by
    /// name.
    pub peers: Vec<PeerLive>,
    /// The asked node's view of the cluster (members, states,
    /// reachability, unreachable pairs).
    pub status: ClusterStatus,
}

impl ClusterLive {
    /// Every report gathered: the local one first, then the peers' that
    /// answered.
    pub fn reports(&self) -> impl Iterator<Item = &LiveReport> {
        std::iter::once(&self.local).chain(self.peers.iter().filter_map(|p| match p {
            PeerLive::Report { report } => Some(&**report),
            PeerLive::Unreachable { .. } => None,
        }))
    }

    /// Every span gathered, from every node, by start time.
    pub fn spans(&self) -> Vec<&SpanRecord> {
        let mut v: Vec<&SpanRecord> = self.reports().flat_map(|r| r.spans.iter()).collect();
        v.sort_by_key(|s| (s.start_unix_us, s.span_id));
        v
    }

    /// Names of the nodes that did not answer.
    pub fn unreachable(&self) -> Vec<&str> {
        self.peers
            .iter()
            .filter_map(|p| match p {
                PeerLive::Unreachable { node, .. } => Some(node.as_str()),
                PeerLive::Report { .. } => None,
            })
            .collect()
    }
}

/// The percentile `q` (0..1) of a latency histogram: the upper bound of
/// the bucket that holds it; `None` when empty or beyond the last bound.
pub(crate) fn percentile(l: &crate::LatencySnapshot, q: f64) -> Option<u64> {
    if l.count == 0 {
        return None;
    }
    let rank = ((l.count as f64) * q).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (i, c) in l.counts.iter().enumerate() {
        seen += c;
        if seen >= rank {
            return l.bounds_us.get(i).copied();
        }
    }
    None
}
