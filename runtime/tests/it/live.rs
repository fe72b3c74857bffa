//! The live view's backend across real nodes: a traced call chain over
//! three nodes leaves one span per hop on each node, linked parent to
//! child, and any node's cluster-wide report gathers them; a slow or dead
//! node does not hold the report up; sampling keeps traces whole.

use std::time::{Duration, Instant};

use msa_runtime::live::{LiveQuery, PeerLive, SpanKind, SpanRecord};
use msa_runtime::prelude::*;
use msa_runtime::remote::transport::MemoryNetwork;
use msa_runtime::test_support::{eventually, remote_added};
use msa_runtime::TraceContext;
use serde::{Deserialize, Serialize};

const SECRET: &[u8] = b"live-secret";
const BOUND: Duration = Duration::from_secs(20);

#[derive(Debug, actix::Message, Serialize, Deserialize, RemoteMessage)]
#[msa(name = "live-test.Order")]
#[rtype(result = "Result<u32, String>")]
struct Order;

#[derive(Debug, actix::Message, Serialize, Deserialize, RemoteMessage)]
#[msa(name = "live-test.Reserve")]
#[rtype(result = "Result<u32, String>")]
struct Reserve;

#[derive(Debug, actix::Message, Serialize, Deserialize, RemoteMessage)]
#[msa(name = "live-test.Charge")]
#[rtype(result = "u32")]
struct Charge;

/// Calls `next` with `M` from its handler, through `ctx.propagate()`.
struct Hop<M> {
    next: &'static str,
    _m: std::marker::PhantomData<fn() -> M>,
}
impl<M> Hop<M> {
    fn to(next: &'static str) -> Self {
        Self {
            next,
            _m: std::marker::PhantomData,
        }
    }
}
impl<M: 'static> Service for Hop<M> {}

macro_rules! hop {
    ($in:ty, $out:ty) => {
        impl Handler<$in> for Hop<$out> {
            fn handle(
                &mut self,
                _: $in,
                ctx: &mut ServiceContext<'_, Self>,
            ) -> Reply<Self, Result<u32, String>> {
                let next = ctx.service(self.next);
                let meta = ctx.propagate();
                Reply::future(async move {
                    let v = next
                        .ask(<$out>::default_msg())
                        .metadata(meta)
                        .await
                        .map_err(|e| e.to_string())?;
                    Ok(unwrap_hop(v) + 1)
                })
            }
        }
    };
}

trait DefaultMsg {
    fn default_msg() -> Self;
}
impl DefaultMsg for Reserve {
    fn default_msg() -> Self {
        Reserve
    }
}
impl DefaultMsg for Charge {
    fn default_msg() -> Self {
        Charge
    }
}
trait HopValue {
    fn value(self) -> u32;
}
impl HopValue for u32 {
    fn value(self) -> u32 {
        self
    }
}
impl HopValue for Result<u32, String> {
    fn value(self) -> u32 {
        self.unwrap_or(0)
    }
}
fn unwrap_hop(v: impl HopValue) -> u32 {
    v.value()
}

hop!(Order, Reserve);
hop!(Reserve, Charge);

struct Payments;
impl Service for Payments {}
impl Handler<Charge> for Payments {
    fn handle(&mut self, _: Charge, _: &mut ServiceContext<'_, Self>) -> Reply<Self, u32> {
        Reply::ready(1)
    }
}

fn tcp_node(name: &str, seed: Option<&Node>) -> Node {
    let mut b = Node::builder()
        .name(name)
        .arbiters(1)
        .listen("127.0.0.1:0".parse().unwrap())
        .secret(SECRET);
    if let Some(s) = seed {
        b = b.seed(s.remote_addr().unwrap());
    }
    b.start().unwrap()
}

fn alive(n: &Node) -> usize {
    n.cluster_status()
        .members
        .iter()
        .filter(|m| m.status == "alive")
        .count()
}

fn span<'a>(spans: &[&'a SpanRecord], service: &str) -> &'a SpanRecord {
    spans
        .iter()
        .copied()
        .find(|s| s.service == service)
        .unwrap_or_else(|| panic!("no span of {service} in {spans:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_chain_over_three_nodes_nests_as_one_trace_in_any_nodes_cluster_report() {
    let n1 = tcp_node("live-n1", None);
    let n2 = tcp_node("live-n2", Some(&n1));
    let n3 = tcp_node("live-n3", Some(&n1));
    let (mut w1, mut w2) = (n1.watch(), n2.watch());
    n1.spawn(ServiceSpec::new("orders", || Hop::<Reserve>::to("inventory")).handles::<Order>())
        .await
        .unwrap();
    n2.spawn(ServiceSpec::new("inventory", || Hop::<Charge>::to("payments")).handles::<Reserve>())
        .await
        .unwrap();
    n3.spawn(ServiceSpec::new("payments", || Payments).handles::<Charge>())
        .await
        .unwrap();
    remote_added(BOUND, &mut w1, &["inventory"]).await;
    remote_added(BOUND, &mut w2, &["payments"]).await;
    eventually("three members alive everywhere", BOUND, || async {
        [&n1, &n2, &n3]
            .iter()
            .all(|n| alive(n) == 3 && n.peers().len() == 2)
    })
    .await;

    // The caller plays the gateway: its span is the root.
    let trace = TraceContext {
        trace_id: 0x00c0_ffee_0000_0000_0000_0000_0000_0001,
        parent_span_id: 0x6a7e,
    };
    let got = n1
        .service("orders")
        .ask(Order)
        .metadata(Metadata::new().with_trace(trace))
        .await
        .unwrap();
    assert_eq!(got, Ok(3));
    // An untraced call records nothing.
    n1.service("orders").ask(Order).await.unwrap().unwrap();

    for asked in [&n3, &n1, &n2] {
        let t0 = Instant::now();
        let live = asked.cluster_live_report(LiveQuery::new()).await;
        assert!(live.unreachable().is_empty(), "{:?}", live.peers);
        assert_eq!(live.reports().count(), 3);
        assert_eq!(live.status.members.len(), 3);
        let spans: Vec<&SpanRecord> = live
            .spans()
            .into_iter()
            .filter(|s| s.trace_id == trace.trace_id)
            .collect();
        assert_eq!(spans.len(), 3, "one span per hop: {spans:#?}");
        let (orders, inventory, payments) = (
            span(&spans, "orders"),
            span(&spans, "inventory"),
            span(&spans, "payments"),
        );
        assert_eq!(
            (
                orders.node.as_str(),
                inventory.node.as_str(),
                payments.node.as_str()
            ),
            ("live-n1", "live-n2", "live-n3")
        );
        assert_eq!(orders.parent_span_id, 0x6a7e);
        assert_eq!(inventory.parent_span_id, orders.span_id);
        assert_eq!(payments.parent_span_id, inventory.span_id);
        assert!(spans
            .iter()
            .all(|s| s.kind == SpanKind::Served && s.outcome == "ok"));
        assert_eq!(
            (orders.message.as_str(), payments.message.as_str()),
            ("live-test.Order", "live-test.Charge")
        );
        assert_eq!(orders.instance, Some(0));
        // A waterfall: each hop starts within its caller and ends before it.
        assert!(orders.start_unix_us <= inventory.start_unix_us);
        assert!(inventory.start_unix_us <= payments.start_unix_us);
        assert!(orders.duration_us >= inventory.duration_us);
        assert!(inventory.duration_us >= payments.duration_us);
        // Only traced calls are recorded.
        assert_eq!(live.spans().len(), 3);
        // The reports carry the services and the connections.
        let local = &live.local;
        assert_eq!(local.node, asked.name());
        assert_eq!(local.connections.len(), 2, "{:?}", local.connections);
        let all_services: Vec<&str> = live
            .reports()
            .flat_map(|r| r.services.iter().map(|s| s.name.as_str()))
            .collect();
        for s in ["orders", "inventory", "payments"] {
            assert!(all_services.contains(&s), "{all_services:?}");
        }
        assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    }

    // The service filter keeps one service's spans.
    let only = n2
        .cluster_live_report(LiveQuery::new().service("payments"))
        .await;
    let spans = only.spans();
    assert!(
        spans.len() == 1 && spans[0].service == "payments",
        "{spans:#?}"
    );
    // Orders' latency counters are in n1's report (timed asks only: the
    // caller here is in-process, so the remote hops are the timed ones).
    let n2_report = n2.live_report(&LiveQuery::new());
    let inventory = n2_report
        .services
        .iter()
        .find(|s| s.name == "inventory")
        .unwrap();
    assert!(
        inventory.messages >= 2 && inventory.asks >= 2,
        "{inventory:?}"
    );
    assert!(inventory.ask_p50_us.is_some() && inventory.ask_p99_us.is_some());

    for n in [n3, n2, n1] {
        n.shutdown(Duration::from_secs(5)).await.unwrap();
    }
}

fn memory_node(net: &MemoryNetwork, name: &str, seed: Option<&Node>) -> Node {
    crate::support::memory_node(net, name, seed, SECRET, Some(Duration::from_secs(10)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_or_dead_node_does_not_hold_up_the_cluster_report() {
    let net = MemoryNetwork::new();
    let a = memory_node(&net, "a", None);
    let b = memory_node(&net, "b", Some(&a));
    let c = memory_node(&net, "c", Some(&a));
    eventually("three members alive on a", BOUND, || async {
        alive(&a) == 3 && a.peers().len() == 2
    })
    .await;
    let query = LiveQuery::new().peer_timeout_ms(300);
    let live = a.cluster_live_report(query.clone()).await;
    assert_eq!(live.reports().count(), 3, "{:?}", live.peers);

    // c answers after 5 s: too late.
    net.set_latency("a", "c", Duration::from_secs(5));
    let t0 = Instant::now();
    let live = a.cluster_live_report(query.clone()).await;
    let took = t0.elapsed();
    assert!(took < Duration::from_millis(1_500), "{took:?}");
    let names: Vec<&str> = live.reports().map(|r| r.node.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    assert!(
        live.peers.iter().any(|p| matches!(p,
            PeerLive::Unreachable { node, reason } if node == "c" && reason.contains("no answer"))),
        "{:?}",
        live.peers
    );

    // c is gone for good (its connections dropped): still no wait.
    net.cut("a", "c");
    net.cut("b", "c");
    net.drop_connections("a", "c");
    net.drop_connections("b", "c");
    let t0 = Instant::now();
    let live = a.cluster_live_report(query).await;
    assert!(
        t0.elapsed() < Duration::from_millis(1_500),
        "{:?}",
        t0.elapsed()
    );
    let names: Vec<&str> = live.reports().map(|r| r.node.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    assert!(live.status.members.iter().any(|m| m.name == "c"));

    for n in [a, b] {
        n.shutdown(Duration::from_secs(5)).await.unwrap();
    }
    drop(c);
}

#[derive(Debug, actix::Message, Serialize, Deserialize, RemoteMessage)]
#[msa(name = "live-test.Ping")]
#[rtype(result = "u32")]
struct Ping;
struct Pinged;
impl Service for Pinged {}
impl Handler<Ping> for Pinged {
    fn handle(&mut self, _: Ping, _: &mut ServiceContext<'_, Self>) -> Reply<Self, u32> {
        Reply::ready(0)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_load_a_node_samples_whole_traces_and_records_every_span_when_quiet() {
    let node = Node::builder()
        .name("live-sampling")
        .arbiters(1)
        .span_sample_rate(200)
        .start()
        .unwrap();
    let ping = node
        .spawn(ServiceSpec::new("ping", || Pinged).handles::<Ping>())
        .await
        .unwrap();
    let traced = |trace_id: u128| {
        Metadata::new().with_trace(TraceContext {
            trace_id,
            parent_span_id: 1,
        })
    };
    // Quiet: 100 traced calls, 100 spans.
    for t in 0..100u128 {
        ping.ask(Ping).metadata(traced(t)).await.unwrap();
    }
    assert_eq!(node.span_buffer_stats().recorded, 100);
    assert_eq!(node.span_buffer_stats().sampled_out, 0);

    // Loaded: 20,000 calls within a second or two, each trace twice (two
    // hops of one trace): once the level rises, a trace is kept with both
    // its spans or not at all.
    let t0 = Instant::now();
    let mut next = 1_000u128;
    while node.span_buffer_stats().sample_level == 0 {
        assert!(t0.elapsed() < BOUND, "{:?}", node.span_buffer_stats());
        for _ in 0..500 {
            ping.ask(Ping).metadata(traced(next)).await.unwrap();
            next += 1;
        }
    }
    let first = next;
    for t in first..first + 2_000 {
        ping.ask(Ping).metadata(traced(t)).await.unwrap();
        ping.ask(Ping).metadata(traced(t)).await.unwrap();
    }
    let stats = node.span_buffer_stats();
    assert!(stats.sampled_out > 0, "{stats:?}");
    let spans = node.live_report(&LiveQuery::new().max_spans(100_000)).spans;
    let mut per_trace = std::collections::HashMap::<u128, usize>::new();
    for s in spans.iter().filter(|s| s.trace_id >= first) {
        *per_trace.entry(s.trace_id).or_default() += 1;
    }
    assert!(
        !per_trace.is_empty() && per_trace.len() < 2_000,
        "{}",
        per_trace.len()
    );
    // A window can turn over between a trace's two spans; nearly all
    // traces are whole.
    let whole = per_trace.values().filter(|&&n| n == 2).count();
    assert!(
        whole * 10 >= per_trace.len() * 9,
        "{whole} of {}",
        per_trace.len()
    );
    node.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_calls_record_their_outcome_and_restarts_their_reason() {
    use crate::support::{counter_spec, Boom, BoomAsync, Get};
    let node = Node::builder()
        .name("live-failures")
        .arbiters(1)
        .start()
        .unwrap();
    let counter = node.spawn(counter_spec("counter")).await.unwrap();
    let traced = |trace_id: u128| {
        Metadata::new().with_trace(TraceContext {
            trace_id,
            parent_span_id: 7,
        })
    };
    // A detached future that panics: the instance lives on.
    assert!(counter.ask(BoomAsync).metadata(traced(1)).await.is_err());
    // A handler that panics: the instance fails and is restarted.
    let _ = counter.ask(Boom).metadata(traced(2)).await;
    eventually("a restart with its reason", BOUND, || async {
        !node.live_report(&LiveQuery::new()).restarts.is_empty()
    })
    .await;
    eventually("the counter serves again", BOUND, || async {
        counter.ask(Get).metadata(traced(3)).await.is_ok()
    })
    .await;
    let report = node.live_report(&LiveQuery::new());
    let outcome = |t: u128| {
        report
            .spans
            .iter()
            .find(|s| s.trace_id == t)
            .map(|s| s.outcome.clone())
    };
    assert_eq!(
        outcome(1).as_deref(),
        Some("panicked"),
        "{:#?}",
        report.spans
    );
    assert_eq!(
        outcome(2).as_deref(),
        Some("panicked"),
        "{:#?}",
        report.spans
    );
    assert_eq!(outcome(3).as_deref(), Some("ok"));
    let restart = &report.restarts[0];
    assert!(restart.reason.contains("boom in handler"), "{restart:?}");
    let svc = report
        .services
        .iter()
        .find(|s| s.name == "counter")
        .unwrap();
    assert!(
        svc.failures >= 1 && svc.restarts >= 1 && svc.panicked_requests >= 1,
        "{svc:?}"
    );
    assert_eq!(svc.instances, [0]);
    assert!(report
        .supervisors
        .iter()
        .any(|t| t.services.contains(&"counter".to_string())));
    node.shutdown(Duration::from_secs(5)).await.unwrap();
}
