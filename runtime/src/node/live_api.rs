//! The live view's node API: spans recorded from outside (the gateway's
//! hop), this node's live report, and the cluster-wide gather
//! (docs/live-view.md, "Spans and live reports").

use std::future::Future;
use std::sync::{Arc, Weak};
use std::time::SystemTime;

use super::{Node, NodeInner};
use crate::live::{
    percentile, unix_us, ClusterLive, LiveQuery, LiveReport, PeerLive, ServiceLive, SpanRecord,
    SupervisorLive,
};
use crate::registry::ServiceState;

impl Node {
    /// Records a span made outside a service instance: the gateway's hop
    /// (kind [`SpanKind::Gateway`](crate::live::SpanKind::Gateway)), or an
    /// application's own. Its `node` is set to this node's name. Subject to
    /// the same sampling as served spans (by trace id); names longer than
    /// [`MAX_SPAN_NAME_BYTES`](crate::live::MAX_SPAN_NAME_BYTES) are cut.
    pub fn record_span(&self, span: SpanRecord) {
        let ring = &self.shared().live.spans;
        if ring.sampled(span.trace_id) {
            ring.push_record(&span);
        }
    }

    /// The counters of this node's span buffer.
    pub fn span_buffer_stats(&self) -> crate::live::SpanBufferStats {
        self.shared().live.spans.stats()
    }

    /// This node's live report: its services with their counters and ask
    /// latencies, its supervision trees and latest restarts, its
    /// connections with their traffic, and the spans `query` asks for.
    pub fn live_report(&self, query: &LiveQuery) -> LiveReport {
        let shared = self.shared();
        let registry = &shared.registry;
        let mut services = Vec::new();
        let mut trees: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for name in self.local_services() {
            let Some(e) = registry.get(&name) else {
                continue;
            };
            let stats = e.stats_snapshot();
            let latency = e.stats.ask_latency.snapshot();
            let state = match e.state() {
                ServiceState::Starting => "starting",
                ServiceState::Running => "running",
                ServiceState::Failed => "failed",
                _ => "stopped",
            };
            let tree = match e.owner() {
                "" => "root".to_string(),
                t => t.to_string(),
            };
            trees.entry(tree.clone()).or_default().push(name.clone());
            services.push(ServiceLive {
                state: state.to_string(),
                tree,
                instances: e
                    .live_instances()
                    .iter()
                    .map(|i| u32::try_from(i.slot).unwrap_or(u32::MAX))
                    .collect(),
                messages: stats.messages,
                failures: stats.failures,
                restarts: stats.restarts,
                panicked_requests: stats.panicked_requests,
                expired: stats.expired,
                denied: stats.denied,
                mailbox_depth: stats.mailbox_depth,
                asks: latency.count,
                ask_sum_us: latency.sum_us,
                ask_p50_us: percentile(&latency, 0.50),
                ask_p99_us: percentile(&latency, 0.99),
                name,
            });
        }
        services.sort_by(|a, b| a.name.cmp(&b.name));
        let supervisors = trees
            .into_iter()
            .map(|(name, mut services)| {
                services.sort();
                SupervisorLive { name, services }
            })
            .collect();
        let spans = shared.live.spans.snapshot(
            query.since_unix_us,
            query.service.as_deref(),
            query.span_cap(),
        );
        LiveReport {
            node: self.name().to_string(),
            addr: self.remote_addr(),
            uptime_ms: u64::try_from(shared.live.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            taken_at_unix_ms: unix_us(SystemTime::now()) / 1000,
            services,
            supervisors,
            restarts: shared.live.restarts(),
            connections: self
                .connection_stats()
                .into_iter()
                .map(Into::into)
                .collect(),
            spans,
            span_buffer: shared.live.spans.stats(),
            truncated: false,
        }
    }

    /// This node's live report and every other member's, gathered over the
    /// open connections (members alive or suspect in this node's view),
    /// with this node's cluster status. Each member gets
    /// [`LiveQuery::peer_timeout_ms`] to answer, all at once: a slow,
    /// unreachable or dead node shows as [`PeerLive::Unreachable`] and never
    /// holds up the rest. The future is `Send` and holds the node only
    /// weakly.
    pub fn cluster_live_report(
        &self,
        query: LiveQuery,
    ) -> impl Future<Output = ClusterLive> + Send + 'static {
        let taken_at_unix_ms = unix_us(SystemTime::now()) / 1000;
        let local = self.live_report(&query);
        let status = self.cluster_status();
        let remote = self.shared().remote.clone();
        let me = self.name().to_string();
        async move {
            let mut peers = Vec::new();
            if let Some(remote) = remote {
                let bytes = serde_json::to_vec(&query).unwrap_or_default();
                let timeout = query.peer_timeout();
                let names: Vec<String> = status
                    .members
                    .iter()
                    .filter(|m| m.name != me && (m.status == "alive" || m.status == "suspect"))
                    .map(|m| m.name.clone())
                    .collect();
                let asks = names.into_iter().map(|name| {
                    let remote = remote.clone();
                    let bytes = bytes.clone();
                    async move {
                        let got = remote.live_from(&name, bytes, timeout).await;
                        peer_live(name, got)
                    }
                });
                peers = futures_util::future::join_all(asks).await;
            }
            ClusterLive {
                node: me,
                taken_at_unix_ms,
                local,
                peers,
                status,
            }
        }
    }

    /// Lets other nodes ask this node for its live report.
    pub(super) fn install_live_source(&self) {
        if let Some(r) = &self.shared().remote {
            let source = NodeLiveSource {
                node: Arc::downgrade(&self.inner),
            };
            let _ = r.live_source.set(Arc::new(source));
        }
    }
}

/// A member's part of a gather, from what its connection brought.
fn peer_live(
    node: String,
    got: Result<Vec<u8>, crate::remote::remoting::LiveFetchError>,
) -> PeerLive {
    match got {
        Ok(bytes) => match serde_json::from_slice::<LiveReport>(&bytes) {
            Ok(report) => PeerLive::Report {
                report: Box::new(report),
            },
            Err(e) => PeerLive::Unreachable {
                node,
                reason: format!("unreadable report: {e}"),
            },
        },
        Err(e) => PeerLive::Unreachable {
            node,
            reason: e.to_string(),
        },
    }
}

/// The node's side of other nodes' live requests; weak, so that remoting
/// holding it does not keep the node alive.
#[derive(Debug)]
struct NodeLiveSource {
    node: Weak<NodeInner>,
}

impl crate::remote::live_source::LiveSource for NodeLiveSource {
    fn live_json(&self, query: &[u8], max_bytes: usize) -> Vec<u8> {
        let Some(inner) = self.node.upgrade() else {
            return Vec::new();
        };
        let node = Node { inner };
        let query: LiveQuery = serde_json::from_slice(query).unwrap_or_default();
        let report = node.live_report(&query);
        encode_bounded(report, max_bytes)
    }
}

/// `report` as JSON in at most `max_bytes`: while it is larger, the older
/// half of its spans is left out (and `truncated` set).
fn encode_bounded(mut report: LiveReport, max_bytes: usize) -> Vec<u8> {
    loop {
        let bytes = serde_json::to_vec(&report).unwrap_or_default();
        if bytes.len() <= max_bytes || report.spans.is_empty() {
            return bytes;
        }
        let keep = report.spans.len() / 2;
        let drop = report.spans.len() - keep;
        report.spans.drain(..drop);
        report.truncated = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::SpanKind;

    #[test]
    fn a_report_over_the_limit_drops_its_oldest_spans() {
        let report = LiveReport {
            spans: (0..1000u64)
                .map(|i| {
                    SpanRecord::new(SpanKind::Custom, 1, 0, "svc", "msg").with_start_unix_us(i)
                })
                .collect(),
            ..Default::default()
        };
        let full = serde_json::to_vec(&report).unwrap_or_default().len();
        let bytes = encode_bounded(report, full / 3);
        assert!(bytes.len() <= full / 3);
        let back: LiveReport = serde_json::from_slice(&bytes).unwrap_or_default();
        assert!(back.truncated && !back.spans.is_empty());
        assert_eq!(back.spans.last().map(|s| s.start_unix_us), Some(999));
    }
}
