//! Prometheus metrics of a node and its gateway, served at `GET /metrics`.
//!
//! Each gateway owns one [`prometheus_client`] registry (not the process-global
//! recorder of the `metrics` facade), so two nodes with two gateways can run in
//! one process and never mix their numbers. Request metrics are recorded as
//! requests finish; everything about the node is read from it at scrape time by
//! a custom collector, so a scrape always shows the node as it is now.
//!
//! # Format
//!
//! The output is the Prometheus text format, version 0.0.4 ([`CONTENT_TYPE`]),
//! not OpenMetrics: every Prometheus server and most other scrapers read it,
//! and simpler parsers (such as the `prometheus-parse` crate the tests use)
//! misread OpenMetrics, whose `# TYPE` line names a counter without its
//! `_total` suffix and which adds `_created` series and a `# EOF` line.
//!
//! # Metrics
//!
//! Every series carries the label `node`, the node's name
//! (`msa_service_messages_total{node="node1",service="kv"}`), so that the
//! scrapes of several nodes add up without clashing. A node reports only
//! what it runs and sees itself: its own services (never the ones it only
//! knows run on other nodes) and its own connections. The same metrics are
//! served by the gateway's `/metrics` and by the operations server
//! ([`OpsServer`](crate::OpsServer)), which adds no request metrics.
//!
//! Counters end in `_total`; durations are in seconds (histogram buckets
//! `le` in seconds too).
//!
//! Gateway (recorded by the gateway for every finished request):
//! * `msa_gateway_requests_total{route,method,status}` (counter): HTTP requests
//!   answered. `route` is the route pattern, never the raw path, with each
//!   `{param}` segment written `:param` (`/v1/:service/:message`), because a
//!   brace inside a label value trips up lenient parsers (Prometheus itself
//!   accepts it), and `unmatched` for a request no route took (404, 405);
//!   `method` is the HTTP method, or `OTHER` for a non-standard one (so a
//!   client cannot invent label values); `status` is the status code.
//! * `msa_gateway_calls_in_flight` (gauge): calls to services that have
//!   arrived and not been answered yet (a graceful stop waits for them).
//! * `msa_gateway_request_duration_seconds{route}` (histogram): time from the
//!   request's arrival to its response, buckets from 100 µs to 10 s.
//! * `msa_gateway_refused_total{reason}` (counter): requests refused for what
//!   they are rather than where they go: `body_timeout` (408, the body did
//!   not arrive in time), `headers_too_large` (431), `jwks_unknown_kid`
//!   (401, a token named a key the JWKS does not hold, even after a refresh),
//!   `bad_token` (any other 401 for a token that was sent), `cors_denied` (a
//!   preflight from an origin not allowed), `grpc_too_large` (a gRPC
//!   request message over `[grpc] max_message_bytes`).
//! * `msa_gateway_grpc_requests_total{method,code}` (counter): gRPC calls
//!   answered by the gRPC ingress (docs/grpc.md): `method` is `Call` or
//!   `Subscribe`, `code` the gRPC status code's name (`Ok`, `NotFound`, ...).
//!
//! Services spawned on this node (one series per service, label `service`):
//! * `msa_service_messages_total` (counter): messages handed to a handler.
//! * `msa_service_failures_total` (counter): instance failures (panics in a
//!   handler, in `started` or in the factory).
//! * `msa_service_restarts_total` (counter): instances restarted by their
//!   supervisor.
//! * `msa_service_panicked_requests_total` (counter): requests whose detached
//!   handler future panicked (the instance lived on).
//! * `msa_service_expired_total` (counter): messages dropped unhandled because
//!   their deadline had passed when they were dequeued.
//! * `msa_service_denied_total` (counter): calls refused by the service's
//!   access rules (docs/security.md).
//! * `msa_service_mailbox_depth` (gauge): messages queued and not yet handled;
//!   only on a node built with `NodeBuilder::track_mailbox_depth(true)` (it
//!   costs an atomic per message sent; `msa node` turns it on with a gateway).
//! * `msa_service_ask_duration_seconds` (histogram): time to answer the asks
//!   that came as JSON calls (through the gateway) or from other nodes, from
//!   the ask to its reply or error; in-process asks between services are not
//!   timed (the runtime keeps clock reads off that path). Buckets from 50 µs
//!   to 10 s, the runtime's own.
//!
//! Topics (docs/streams.md):
//! * `msa_topic_published_total`, `msa_topic_delivered_total`,
//!   `msa_topic_lagged_total`, `msa_topic_remote_dropped_total`,
//!   `msa_topic_undecodable_total`, `msa_topic_refused_ads_total`
//!   (counters): events published here, handed to subscribers here, missed
//!   by slow subscribers here, copies for other nodes dropped, events from
//!   other nodes that did not decode, and `Topics` frames refused for a
//!   malformed process group membership (docs/streams.md, "Groups").
//!
//! Remoting (zero on a node that neither listens nor dials):
//! * `msa_connection_frames_in_total{peer}`, `msa_connection_frames_out_total{peer}`
//!   (counters): frames received from / sent to each connected peer node.
//! * `msa_connection_bytes_in_total{peer}`, `msa_connection_bytes_out_total{peer}`
//!   (counters): bytes received from / sent to each connected peer node.
//!   Only open connections have series: a peer's ends when its connection
//!   closes (a reconnection starts again from zero, which `rate()` handles).
//! * `msa_remote_handshake_failures_total` (counter): handshakes that failed
//!   (wrong secret, cluster or protocol, garbage).
//! * `msa_remote_tls_refusals_total` (counter): connections refused at TLS or
//!   by the certificate checks; `msa_tls_cert_expiry_seconds` (gauge, only
//!   with TLS): when the node's certificate expires (unix time).
//! * `msa_remote_handshakes_over_cap_total` (counter): inbound connections
//!   closed at accept because `max_pending_handshakes` were in their
//!   handshake; `msa_remote_pending_handshakes` (gauge): inbound connections
//!   in their handshake now (docs/security.md, "Before authentication").
//! * `msa_remote_malformed_frames_total` (counter): connections closed because
//!   of a malformed or oversized frame.
//! * `msa_remote_late_replies_total` (counter): replies that arrived after their
//!   ask had timed out or been dropped.
//! * `msa_remote_overloaded_total` (counter): messages refused because an
//!   outbound queue was full.
//! * `msa_remote_stalled_connections_total` (counter): connections closed
//!   because the peer stopped reading; `msa_remote_control_overflows_total`
//!   (counter): frames that did not fit a control lane.
//! * `msa_connection_control_queued_bytes{peer}`,
//!   `msa_connection_data_queued_bytes{peer}` (gauges): bytes queued toward
//!   each connected peer, per lane (docs/cluster.md, "Bounded queues").

mod node;

use std::time::Duration;

use prometheus_client::encoding::{prometheus_text, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// The `Content-Type` of [`Metrics::render`]'s output: the Prometheus text
/// format, version 0.0.4.
pub(crate) const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Upper bounds, in seconds, of the request duration buckets: 100 µs to 10 s
/// in 1–2.5–5 steps.
const REQUEST_BUCKETS_SECONDS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// The label every series carries: the node's name.
const NODE_LABEL: &str = "node";

/// Labels of `msa_gateway_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: &'static str,
    status: u16,
}

/// Labels of `msa_gateway_grpc_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GrpcLabels {
    method: &'static str,
    code: &'static str,
}

/// Labels of `msa_gateway_refused_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusedLabels {
    reason: &'static str,
}

/// Labels of `msa_gateway_request_duration_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

type DurationFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

/// The metrics of one gateway and its node: one registry of its own, shared
/// by every actix-web worker.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: DurationFamily,
    refused: Family<RefusedLabels, Counter>,
    grpc: Family<GrpcLabels, Counter>,
}

impl Metrics {
    /// A registry with the gateway's request metrics and a collector that
    /// reads `node` at every [`render`](Metrics::render).
    pub(crate) fn new(node: msa_runtime::Node) -> Metrics {
        let mut m = Metrics::for_node(node);
        m.registry.register(
            "msa_gateway_requests",
            "HTTP requests answered by the gateway, by route pattern, method and status",
            m.requests.clone(),
        );
        m.registry.register_with_unit(
            "msa_gateway_request_duration",
            "Time from a request's arrival at the gateway to its response, by route pattern",
            Unit::Seconds,
            m.durations.clone(),
        );
        m.registry.register(
            "msa_gateway_refused",
            "Requests the gateway refused for what they are (slow body, oversized head, bad token...), by reason",
            m.refused.clone(),
        );
        m.registry.register(
            "msa_gateway_grpc_requests",
            "gRPC calls answered by the gateway's gRPC ingress, by method and status code",
            m.grpc.clone(),
        );
        m
    }

    /// A registry with only the collector that reads `node` (no request
    /// metrics: the operations server records none). Every series carries
    /// the label `node="<node's name>"`.
    pub(crate) fn for_node(node: msa_runtime::Node) -> Metrics {
        let labels = std::iter::once((
            std::borrow::Cow::Borrowed(NODE_LABEL),
            std::borrow::Cow::Owned(node.name().to_string()),
        ));
        let mut registry = Registry::with_labels(labels);
        registry.register_collector(Box::new(node::NodeCollector::new(node)));
        Metrics {
            registry,
            requests: Family::default(),
            durations: Family::new_with_constructor(request_histogram),
            refused: Family::default(),
            grpc: Family::default(),
        }
    }

    /// Adds the gauge `msa_gateway_calls_in_flight`, read from `drain`.
    pub(crate) fn count_calls_in_flight(&mut self, drain: std::sync::Arc<crate::drain::Drain>) {
        self.registry
            .register_collector(Box::new(node::InFlightCollector::new(drain)));
    }

    /// Records one finished HTTP request. `route` must be a route pattern
    /// (bounded), not the raw path; `method` is the HTTP method (`"POST"`).
    pub(crate) fn observe_request(
        &self,
        route: &str,
        method: &str,
        status: u16,
        elapsed: Duration,
    ) {
        let route = route_label(route);
        self.durations
            .get_or_create(&RouteLabels {
                route: route.clone(),
            })
            .observe(elapsed.as_secs_f64());
        self.requests
            .get_or_create(&RequestLabels {
                route,
                method: method_label(method),
                status,
            })
            .inc();
    }

    /// Counts one request refused for `reason` (a fixed, bounded set: see
    /// the module docs).
    pub(crate) fn count_refused(&self, reason: &'static str) {
        self.refused.get_or_create(&RefusedLabels { reason }).inc();
    }

    /// Records one answered gRPC call: `method` is `Call` or `Subscribe`,
    /// `code` the name of its status code.
    pub(crate) fn observe_grpc(&self, method: &'static str, code: &'static str) {
        self.grpc.get_or_create(&GrpcLabels { method, code }).inc();
    }

    /// A handle on `msa_gateway_refused_total` for whoever refuses requests
    /// outside the handler (the authenticator).
    pub(crate) fn refused_counter(&self) -> RefusedCounter {
        RefusedCounter(self.refused.clone())
    }

    /// Every metric in the Prometheus text format (version 0.0.4), with the
    /// node's numbers read now.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_text::encode(&mut out, &self.registry) {
            // Writing to a String cannot fail and the collector only forwards
            // encoder errors: keep whatever was written rather than nothing.
            tracing::warn!(error = %e, "encoding metrics failed; the output is partial");
        }
        out
    }
}

/// See [`Metrics::refused_counter`].
#[derive(Debug, Clone)]
pub(crate) struct RefusedCounter(Family<RefusedLabels, Counter>);

impl RefusedCounter {
    /// Counts one request refused for `reason`.
    pub(crate) fn inc(&self, reason: &'static str) {
        self.0.get_or_create(&RefusedLabels { reason }).inc();
    }
}

fn request_histogram() -> Histogram {
    Histogram::new(REQUEST_BUCKETS_SECONDS)
}

/// The `method` label: a standard HTTP method as is, anything else `OTHER`,
/// so that clients cannot add label values (series) at will.
fn method_label(method: &str) -> &'static str {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
    ];
    KNOWN
        .into_iter()
        .find(|m| m.eq_ignore_ascii_case(method))
        .unwrap_or("OTHER")
}

/// The `route` label of a route pattern: each `{name}` or `{name:regex}`
/// segment becomes `:name` (braces nest inside a regex). A brace is valid in
/// a label value, but lenient parsers (prometheus-parse among them) cut label
/// sets at the first `}`; the `:name` form reads the same to a human.
fn route_label(route: &str) -> String {
    if !route.contains(['{', '}']) {
        return route.to_owned();
    }
    let mut out = String::with_capacity(route.len());
    let mut chars = route.chars();
    while let Some(c) = chars.next() {
        match c {
            '{' => {
                out.push(':');
                let mut depth = 1usize;
                let mut in_name = true;
                for c in chars.by_ref() {
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        ':' => in_name = false,
                        _ if in_name => out.push(c),
                        _ => {}
                    }
                }
            }
            '}' => out.push('_'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests;
