//! The collector that reads a node's services and connections at scrape time.

use std::collections::BTreeMap;
use std::fmt;

use msa_runtime::{LatencySnapshot, Node, StatsSnapshot};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;

/// Reads the node's counters on every scrape; nothing is cached, so a service
/// that has gone disappears from the next scrape.
#[derive(Debug)]
pub(super) struct NodeCollector {
    node: Node,
}

impl NodeCollector {
    pub(super) fn new(node: Node) -> Self {
        Self { node }
    }
}

/// One service's numbers, read once per scrape.
struct ServiceSample {
    name: String,
    stats: StatsSnapshot,
    latency: Option<LatencySnapshot>,
}

/// One peer's connection counters (summed, should a peer ever appear twice:
/// a duplicate series would make Prometheus reject the whole scrape).
#[derive(Default)]
struct PeerSample {
    frames_in: u64,
    frames_out: u64,
    bytes_in: u64,
    bytes_out: u64,
    control_queued_bytes: u64,
    data_queued_bytes: u64,
}

/// What a metric family is: name (without `_total` or unit), help, unit, type.
struct Desc {
    name: &'static str,
    help: &'static str,
    unit: Option<Unit>,
    kind: MetricType,
}

/// A counter family and how to read its value from a sample.
type Field<T> = (Desc, fn(&T) -> u64);

const fn counter(name: &'static str, help: &'static str) -> Desc {
    Desc {
        name,
        help,
        unit: None,
        kind: MetricType::Counter,
    }
}

impl Collector for NodeCollector {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> fmt::Result {
        let services: Vec<ServiceSample> = self
            .node
            .local_services()
            .into_iter()
            .filter_map(|name| {
                // A service removed since `services()` is skipped.
                let stats = self.node.stats(&name)?;
                let latency = self.node.ask_latency(&name);
                Some(ServiceSample {
                    name,
                    stats,
                    latency,
                })
            })
            .collect();
        encode_services(&mut enc, &services, self.node.tracks_mailbox_depth())?;

        let mut peers: BTreeMap<String, PeerSample> = BTreeMap::new();
        for c in self.node.connection_stats() {
            let p = peers.entry(c.peer).or_default();
            p.frames_in = p.frames_in.saturating_add(c.frames_in);
            p.frames_out = p.frames_out.saturating_add(c.frames_out);
            p.bytes_in = p.bytes_in.saturating_add(c.bytes_in);
            p.bytes_out = p.bytes_out.saturating_add(c.bytes_out);
            p.control_queued_bytes = p
                .control_queued_bytes
                .saturating_add(c.control_queued_bytes);
            p.data_queued_bytes = p.data_queued_bytes.saturating_add(c.data_queued_bytes);
        }
        encode_connections(&mut enc, &peers)?;
        encode_remote(&mut enc, &self.node.remote_stats())?;
        encode_topics(&mut enc, &self.node.topic_stats())?;
        encode_tls_expiry(&mut enc, self.node.tls_cert_expiry())
    }
}

/// `with_depth`: whether the node counts mailbox depth; without it the
/// gauge is left out rather than shown as a misleading 0.
fn encode_services(
    enc: &mut DescriptorEncoder<'_>,
    services: &[ServiceSample],
    with_depth: bool,
) -> fmt::Result {
    let counters: [Field<StatsSnapshot>; 6] = [
        (
            counter(
                "msa_service_messages",
                "Messages handed to a handler of the service.",
            ),
            |s| s.messages,
        ),
        (
            counter(
                "msa_service_failures",
                "Instance failures of the service: panics in a handler, in started or in the factory.",
            ),
            |s| s.failures,
        ),
        (
            counter(
                "msa_service_restarts",
                "Instances of the service restarted by their supervisor.",
            ),
            |s| s.restarts,
        ),
        (
            counter(
                "msa_service_panicked_requests",
                "Requests whose detached handler future panicked (the instance lived on).",
            ),
            |s| s.panicked_requests,
        ),
        (
            counter(
                "msa_service_expired",
                "Messages dropped unhandled because their deadline had passed when dequeued.",
            ),
            |s| s.expired,
        ),
        (
            counter(
                "msa_service_denied",
                "Calls refused by the service's access rules (from this node's callers and from other nodes).",
            ),
            |s| s.denied,
        ),
    ];
    for (desc, value) in &counters {
        family(
            enc,
            desc,
            services,
            "service",
            |s| &s.name,
            |s, m| ConstCounter::new(value(&s.stats)).encode(m),
        )?;
    }

    let depth = Desc {
        name: "msa_service_mailbox_depth",
        help: "Messages queued to the live instances of the service and not yet taken.",
        unit: None,
        kind: MetricType::Gauge,
    };
    if with_depth {
        family(
            enc,
            &depth,
            services,
            "service",
            |s| &s.name,
            |s, m| ConstGauge::new(s.stats.mailbox_depth).encode(m),
        )?;
    }

    let latency = Desc {
        name: "msa_service_ask_duration",
        help: "Time to answer asks that came as JSON calls (the gateway) or from other nodes.",
        unit: Some(Unit::Seconds),
        kind: MetricType::Histogram,
    };
    let timed: Vec<(&str, &LatencySnapshot)> = services
        .iter()
        .filter_map(|s| Some((s.name.as_str(), s.latency.as_ref()?)))
        .collect();
    family(
        enc,
        &latency,
        &timed,
        "service",
        |t| t.0,
        |t, mut m| encode_latency(t.1, &mut m),
    )
}

/// A runtime latency histogram as a Prometheus one: bounds in seconds, and
/// `_count` (= the `+Inf` bucket) the sum of every bucket, so the two always
/// agree even if the snapshot raced with a recording.
fn encode_latency(l: &LatencySnapshot, m: &mut MetricEncoder<'_>) -> fmt::Result {
    let buckets: Vec<(f64, u64)> = l
        .bounds_us
        .iter()
        .zip(&l.counts)
        .map(|(&b, &c)| (micros_to_seconds(b), c))
        .collect();
    let count = l.counts.iter().fold(0u64, |a, &c| a.saturating_add(c));
    m.encode_histogram::<NoLabelSet>(micros_to_seconds(l.sum_us), count, &buckets, None)
}

fn micros_to_seconds(us: u64) -> f64 {
    // Exact for any realistic value (below 2^53 µs, 285 years).
    us as f64 / 1e6
}

fn encode_connections(
    enc: &mut DescriptorEncoder<'_>,
    peers: &BTreeMap<String, PeerSample>,
) -> fmt::Result {
    let peers: Vec<(&String, &PeerSample)> = peers.iter().collect();
    let counters: [Field<PeerSample>; 4] = [
        (
            counter(
                "msa_connection_frames_in",
                "Frames received from the peer node.",
            ),
            |p| p.frames_in,
        ),
        (
            counter("msa_connection_frames_out", "Frames sent to the peer node."),
            |p| p.frames_out,
        ),
        (
            counter(
                "msa_connection_bytes_in",
                "Bytes received from the peer node (after the handshake).",
            ),
            |p| p.bytes_in,
        ),
        (
            counter(
                "msa_connection_bytes_out",
                "Bytes sent to the peer node (after the handshake).",
            ),
            |p| p.bytes_out,
        ),
    ];
    for (desc, value) in &counters {
        family(
            enc,
            desc,
            &peers,
            "peer",
            |p| p.0,
            |p, m| ConstCounter::new(value(p.1)).encode(m),
        )?;
    }
    let gauges: [Field<PeerSample>; 2] = [
        (
            Desc {
                name: "msa_connection_control_queued_bytes",
                help: "Bytes queued on the control lane toward the peer node (replies, errors, tables), bounded by max_control_queue_bytes.",
                unit: None,
                kind: MetricType::Gauge,
            },
            |p| p.control_queued_bytes,
        ),
        (
            Desc {
                name: "msa_connection_data_queued_bytes",
                help: "Bytes queued on the data lane toward the peer node (tells, asks), bounded by max_data_queue_bytes.",
                unit: None,
                kind: MetricType::Gauge,
            },
            |p| p.data_queued_bytes,
        ),
    ];
    for (desc, value) in &gauges {
        family(
            enc,
            desc,
            &peers,
            "peer",
            |p| p.0,
            |p, m| ConstGauge::new(i64::try_from(value(p.1)).unwrap_or(i64::MAX)).encode(m),
        )?;
    }
    Ok(())
}

/// The node's topic counters (docs/streams.md, "Metrics").
fn encode_topics(enc: &mut DescriptorEncoder<'_>, t: &msa_runtime::TopicStats) -> fmt::Result {
    let counters = [
        (
            counter("msa_topic_published", "Events published on this node."),
            t.published,
        ),
        (
            counter(
                "msa_topic_delivered",
                "Events handed to a subscriber on this node (published here or elsewhere).",
            ),
            t.delivered,
        ),
        (
            counter(
                "msa_topic_lagged",
                "Events a subscriber on this node missed because its queue or its service's mailbox was full.",
            ),
            t.lagged,
        ),
        (
            counter(
                "msa_topic_remote_dropped",
                "Copies of events for another node dropped because its connection was full or down.",
            ),
            t.remote_dropped,
        ),
        (
            counter(
                "msa_topic_undecodable",
                "Events from another node that did not decode here (another type under the same topic name).",
            ),
            t.undecodable,
        ),
        (
            counter(
                "msa_topic_refused_ads",
                "Topics frames from other nodes refused because a process group membership in them was malformed.",
            ),
            t.refused_ads,
        ),
    ];
    for (desc, value) in counters {
        let m = enc.encode_descriptor(desc.name, desc.help, desc.unit.as_ref(), desc.kind)?;
        ConstCounter::new(value).encode(m)?;
    }
    Ok(())
}

/// `msa_tls_cert_expiry_seconds`: when the node's TLS certificate expires
/// (unix time; left out without TLS). A reload (SIGHUP) shows at the next
/// scrape.
fn encode_tls_expiry(enc: &mut DescriptorEncoder<'_>, expiry: Option<i64>) -> fmt::Result {
    let Some(expiry) = expiry else {
        return Ok(());
    };
    let m = enc.encode_descriptor(
        "msa_tls_cert_expiry_seconds",
        "When this node's TLS certificate expires (unix time, seconds).",
        None,
        MetricType::Gauge,
    )?;
    ConstGauge::new(expiry).encode(m)
}

fn encode_remote(
    enc: &mut DescriptorEncoder<'_>,
    r: &msa_runtime::remote::RemoteSnapshot,
) -> fmt::Result {
    let counters = [
        (
            counter(
                "msa_remote_handshake_failures",
                "Handshakes with other nodes that failed (wrong secret, cluster or protocol, garbage).",
            ),
            r.handshake_failures,
        ),
        (
            counter(
                "msa_remote_tls_refusals",
                "Connections refused at TLS or by the certificate checks (no certificate, another CA, a name other than the one announced, the wrong role).",
            ),
            r.tls_refusals,
        ),
        (
            counter(
                "msa_remote_handshakes_over_cap",
                "Inbound connections closed at accept because max_pending_handshakes connections were already in their handshake.",
            ),
            r.handshakes_over_cap,
        ),
        (
            counter(
                "msa_remote_malformed_frames",
                "Connections closed because of a malformed or oversized frame.",
            ),
            r.malformed_frames,
        ),
        (
            counter(
                "msa_remote_late_replies",
                "Replies from other nodes that arrived after their ask had timed out or been dropped.",
            ),
            r.late_replies,
        ),
        (
            counter(
                "msa_remote_overloaded",
                "Messages refused because an outbound queue to another node was full.",
            ),
            r.overloaded,
        ),
        (
            counter(
                "msa_remote_stalled_connections",
                "Connections closed because the peer stopped reading (peer_stall_timeout, or a full control lane).",
            ),
            r.stalled_connections,
        ),
        (
            counter(
                "msa_remote_control_overflows",
                "Frames that did not fit a connection's control lane (the connection was then closed as stalled).",
            ),
            r.control_overflows,
        ),
    ];
    for (desc, value) in counters {
        let m = enc.encode_descriptor(desc.name, desc.help, desc.unit.as_ref(), desc.kind)?;
        ConstCounter::new(value).encode(m)?;
    }
    let m = enc.encode_descriptor(
        "msa_remote_pending_handshakes",
        "Inbound connections in their handshake now (at most max_pending_handshakes).",
        None,
        MetricType::Gauge,
    )?;
    ConstGauge::new(i64::try_from(r.pending_handshakes).unwrap_or(i64::MAX)).encode(m)
}

/// One metric family: its descriptor, then one sample per item labelled
/// `key="label(item)"`.
fn family<T>(
    enc: &mut DescriptorEncoder<'_>,
    desc: &Desc,
    items: &[T],
    key: &'static str,
    label: impl Fn(&T) -> &str,
    write: impl Fn(&T, MetricEncoder<'_>) -> fmt::Result,
) -> fmt::Result {
    let mut m = enc.encode_descriptor(desc.name, desc.help, desc.unit.as_ref(), desc.kind)?;
    for item in items {
        let labels = [(key, label(item))];
        write(item, m.encode_family(&labels)?)?;
    }
    Ok(())
}

/// The gateway's calls in flight, read at scrape time.
#[derive(Debug)]
pub(super) struct InFlightCollector {
    drain: std::sync::Arc<crate::drain::Drain>,
}

impl InFlightCollector {
    pub(super) fn new(drain: std::sync::Arc<crate::drain::Drain>) -> Self {
        Self { drain }
    }
}

impl Collector for InFlightCollector {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> fmt::Result {
        let m = enc.encode_descriptor(
            "msa_gateway_calls_in_flight",
            "Calls to services that reached the gateway and are not answered yet.",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(i64::try_from(self.drain.in_flight()).unwrap_or(i64::MAX)).encode(m)
    }
}
