//! Two or more nodes in one process over loopback: authenticated
//! connections, service tables, location-transparent calls, node down.

use std::future::IntoFuture;
use std::io::Write;
use std::time::{Duration, Instant};

use crate::support::*;
use msa_runtime::prelude::*;
use msa_runtime::{Identity, RegistryEvent};
use serde::{Deserialize, Serialize};

/// Answers after the given number of milliseconds.
#[derive(Debug, Clone, actix::Message, Serialize, Deserialize, RemoteMessage)]
#[msa(name = "test.SlowRemote")]
#[rtype(result = "u64")]
struct SlowRemote(u64);
impl Handler<SlowRemote> for Counter {
    fn handle(&mut self, m: SlowRemote, _: &mut ServiceContext<'_, Self>) -> Reply<Self, u64> {
        let n = self.n;
        Reply::future(async move {
            tokio::time::sleep(Duration::from_millis(m.0)).await;
            n
        })
    }
}

/// The caller's subject, as the handler saw it.
#[derive(Debug, Clone, actix::Message, Serialize, Deserialize, RemoteMessage)]
#[msa(name = "test.Caller")]
#[rtype(result = "Option<String>")]
struct Caller;
impl Handler<Caller> for Counter {
    fn handle(
        &mut self,
        _: Caller,
        ctx: &mut ServiceContext<'_, Self>,
    ) -> Reply<Self, Option<String>> {
        Reply::ready(ctx.identity().map(|i| i.subject.clone()))
    }
}

/// Panics in the handler body: the instance dies holding the call.
#[derive(Debug, Clone, actix::Message, Serialize, Deserialize, RemoteMessage)]
#[msa(name = "test.CrashRemote")]
#[rtype(result = "u64")]
struct CrashRemote;
impl Handler<CrashRemote> for Counter {
    fn handle(&mut self, _: CrashRemote, _: &mut ServiceContext<'_, Self>) -> Reply<Self, u64> {
        panic!("boom in remote handler");
    }
}

/// Panics in a detached future: that call fails, the instance lives on.
#[derive(Debug, Clone, actix::Message, Serialize, Deserialize, RemoteMessage)]
#[msa(name = "test.PanicRemote")]
#[rtype(result = "u64")]
struct PanicRemote;
impl Handler<PanicRemote> for Counter {
    fn handle(&mut self, _: PanicRemote, _: &mut ServiceContext<'_, Self>) -> Reply<Self, u64> {
        Reply::future(async {
            tokio::task::yield_now().await;
            panic!("boom in remote detached future");
        })
    }
}

fn spec(name: &str) -> ServiceSpec<Counter> {
    full_spec(name, Counter::new)
        .handles::<SlowRemote>()
        .handles::<Caller>()
        .handles::<CrashRemote>()
        .handles::<PanicRemote>()
}

const SECRET: &[u8] = b"test-secret";

fn cluster_node(name: &str, seeds: &[String]) -> Node {
    let mut b = Node::builder()
        .name(name)
        .arbiters(1)
        .listen("127.0.0.1:0".parse().unwrap())
        .secret(SECRET);
    for s in seeds {
        b = b.seed(s.clone());
    }
    // Nothing registered: the messages' derive declares them, so this
    // node calls them even where it does not serve them.
    b.start().unwrap()
}

/// Nodes a, b and c; b and c join through a.
fn three_nodes() -> (Node, Node, Node) {
    let a = cluster_node("a", &[]);
    let seed = a.remote_addr().unwrap();
    let b = cluster_node("b", std::slice::from_ref(&seed));
    let c = cluster_node("c", &[seed]);
    (a, b, c)
}

async fn remote_up(w: &mut msa_runtime::RegistryWatch, service: &str, node: &str) {
    let (s, n) = (service.to_string(), node.to_string());
    wait_event(w, move |e| {
        matches!(e, RegistryEvent::RemoteAdded { service, node, .. } if *service == s && *node == n)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_on_another_node_is_called_through_the_same_ref() {
    let a = cluster_node("a", &[]);
    let mut wb = None;
    let b = {
        let b = cluster_node("b", &[a.remote_addr().unwrap()]);
        wb.replace(b.watch());
        b
    };
    let mut wb = wb.unwrap();
    a.spawn(spec("c")).await.unwrap();
    remote_up(&mut wb, "c", "a").await;
    assert_eq!(b.remote_instances("c"), [("a".to_string(), 0)]);
    let c = b.service("c");
    assert_eq!(c.ask(Incr).await.unwrap(), 1);
    c.tell(Incr).unwrap();
    assert_eq!(
        c.ask(Get).await.unwrap(),
        2,
        "tell then ask from one sender arrive in order"
    );
    let who = c
        .ask(Caller)
        .metadata(Metadata::new().with_identity(Identity::new("alice", ["customer"])))
        .await
        .unwrap();
    assert_eq!(
        who.as_deref(),
        Some("alice"),
        "identity travels to the remote handler"
    );
    assert_eq!(a.stats("c").unwrap().messages, 4);
    assert!(b.remote_stats().frames_out > 0 && a.remote_stats().frames_in > 0);
    // Per connection, and the asks a served for b are timed.
    let to_a = b.connection_stats();
    assert_eq!(to_a.len(), 1);
    assert_eq!(to_a[0].peer, "a");
    assert!(to_a[0].frames_out >= 4 && to_a[0].bytes_out > 0 && to_a[0].bytes_in > 0);
    assert_eq!(a.connection_stats()[0].peer, "b");
    assert_eq!(a.ask_latency("c").unwrap().count, 3, "three remote asks");
    b.shutdown(GRACE).await.unwrap();
    a.shutdown(GRACE).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_instances_are_preferred() {
    let a = cluster_node("a", &[]);
    let b = cluster_node("b", &[a.remote_addr().unwrap()]);
    let mut wb = b.watch();
    a.spawn(spec("c")).await.unwrap();
    b.spawn(spec("c")).await.unwrap();
    remote_up(&mut wb, "c", "a").await;
    for _ in 0..10 {
        b.service("c").ask(Incr).await.unwrap();
    }
    assert_eq!(b.stats("c").unwrap().messages, 10);
    assert_eq!(a.stats("c").unwrap().messages, 0);
    b.shutdown(GRACE).await.unwrap();
    a.shutdown(GRACE).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_errors_come_back_typed() {
    let a = cluster_node("a", &[]);
    let b = cluster_node("b", &[a.remote_addr().unwrap()]);
    let mut wb = b.watch();
    a.spawn(spec("c")).await.unwrap();
    remote_up(&mut wb, "c", "a").await;
    let c = b.service("c");
    // A type b never registered: no wire codec on b.
    assert!(matches!(
        c.ask(Boom).await,
        Err(CallError::NotRegistered { .. })
    ));
    // A timeout; the late reply is dropped and counted, nothing stays pending.
    let r = c
        .ask(SlowRemote(200))
        .timeout(Duration::from_millis(50))
        .await;
    assert!(matches!(r, Err(CallError::Timeout { .. })), "{r:?}");
    assert_eq!(b.pending_remote_asks(), 0);
    eventually("the late reply", WAIT, || async {
        b.remote_stats().late_replies == 1
    })
    .await;
    // An ask dropped by its caller forgets its pending entry.
    {
        let fut = std::pin::pin!(c.ask(SlowRemote(300)).into_future());
        assert!(tokio::time::timeout(Duration::from_millis(20), fut)
            .await
            .is_err());
    }
    assert_eq!(b.pending_remote_asks(), 0);
    b.shutdown(GRACE).await.unwrap();
    a.shutdown(GRACE).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_instance_that_dies_mid_call_fails_the_caller_with_instance_died() {
    let a = cluster_node("a", &[]);
    let b = cluster_node("b", &[a.remote_addr().unwrap()]);
    let mut wa = a.watch();
    b.spawn(spec("c")).await.unwrap();
    remote_up(&mut wa, "c", "b").await;
    let c = a.service("c");
    assert_eq!(c.ask(Incr).await.unwrap(), 1);
    let r = c.ask(CrashRemote).await;
    assert_eq!(
        r,
        Err(CallError::InstanceDied {
            service: "c".into()
        }),
        "as a local caller would see it"
    );
    assert!(!r.unwrap_err().is_retryable(), "it may have run");
    eventually("b to count the crash", WAIT, || async {
        b.stats("c").unwrap().failures == 1
    })
    .await;
    a.shutdown(GRACE).await.unwrap();
    b.shutdown(GRACE).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_detached_future_that_panics_fails_the_caller_with_handler_panicked() {
    let a = cluster_node("a", &[]);
    let b = cluster_node("b", &[a.remote_addr().unwrap()]);
    let mut wa = a.watch();
    b.spawn(spec("c")).await.unwrap();
    remote_up(&mut wa, "c", "b").await;
    let c = a.service("c");
    assert_eq!(c.ask(Incr).await.unwrap(), 1);
    match c.ask(PanicRemote).await {
        Err(CallError::HandlerPanicked { service, message }) => {
            assert_eq!(service, "c");
            assert!(
                message.contains("boom in remote detached future"),
                "{message}"
            );
        }
        other => panic!("expected HandlerPanicked, got {other:?}"),
    }
    assert_eq!(
        c.ask(Get).await.unwrap(),
        1,
        "the instance on b lived on with its state"
    );
    let s = b.stats("c").unwrap();
    assert_eq!((s.panicked_requests, s.failures), (1, 0));
    a.shutdown(GRACE).await.unwrap();
    b.shutdown(GRACE).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asks_in_flight_fail_with_node_down_promptly_when_the_node_goes() {
    let a = cluster_node("a", &[]);
    let b = cluster_node("b", &[a.remote_addr().unwrap()]);
    let mut wb = b.watch();
    a.spawn(spec("c")).await.unwrap();
    remote_up(&mut wb, "c", "a").await;
    let c = b.service("c");
    let t0 = Instant::now();
    let (sent_tx, sent_rx) = tokio::sync::oneshot::channel();
    let inflight = tokio::spawn({
        let c = c.clone();
        async move {
            let fut = c
                .ask(SlowRemote(30_000))
                .timeout(Duration::from_secs(60))
                .into_future();
            let _ = sent_tx.send(());
            fut.await
        }
    });
    sent_rx.await.unwrap();
    a.shutdown(Duration::from_millis(100)).await.unwrap();
    let r = inflight.await.unwrap();
    assert!(matches!(r, Err(CallError::NodeDown { .. })), "{r:?}");
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "promptly, not at the 60 s timeout"
    );
    wait_event(
        &mut wb,
        |e| matches!(e, RegistryEvent::RemoteRemoved { node, .. } if node == "a"),
    )
    .await;
    assert!(matches!(
        c.ask(Get).await,
        Err(CallError::NoInstance { .. })
    ));
    b.shutdown(GRACE).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_or_cluster_is_refused_and_the_listener_keeps_serving() {
    let a = cluster_node("a", &[]);
    let addr = a.remote_addr().unwrap();
    let intruder = Node::builder()
        .name("x")
        .arbiters(1)
        .secret(b"wrong".to_vec())
        .seed(addr.clone())
        .start()
        .unwrap();
    let stranger = Node::builder()
        .name("y")
        .arbiters(1)
        .cluster("other")
        .secret(SECRET)
        .seed(addr.clone())
        .start()
        .unwrap();
    eventually("two refused handshakes", WAIT, || async {
        a.remote_stats().handshake_failures >= 2
    })
    .await;
    assert!(a.peers().is_empty());
    // Garbage instead of a hello, and a huge length prefix.
    for junk in [
        &b"GET / HTTP/1.1\r\n\r\n"[..],
        &[0xff, 0xff, 0xff, 0xff][..],
        &[0, 0, 0, 2, 9, 9][..],
    ] {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        s.write_all(junk).unwrap();
    }
    eventually("the junk refused", WAIT, || async {
        a.remote_stats().handshake_failures >= 5
    })
    .await;
    // An honest node still gets in.
    let b = cluster_node("b", &[addr]);
    let mut wb = b.watch();
    a.spawn(spec("c")).await.unwrap();
    remote_up(&mut wb, "c", "a").await;
    assert_eq!(b.service("c").ask(Incr).await.unwrap(), 1);
    for n in [intruder, stranger, b, a] {
        n.shutdown(GRACE).await.unwrap();
    }
}

#[test]
fn listening_beyond_loopback_needs_a_secret() {
    let r = Node::builder().listen("0.0.0.0:0".parse().unwrap()).start();
    assert!(matches!(
        r,
        Err(msa_runtime::NodeError::InsecureListen { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_find_each_other_through_one_seed() {
    let (a, b, c) = three_nodes();
    let mut wc = c.watch();
    b.spawn(spec("onb")).await.unwrap();
    remote_up(&mut wc, "onb", "b").await;
    assert_eq!(c.service("onb").ask(Incr).await.unwrap(), 1);
    eventually("a full mesh", WAIT, || async {
        b.peers().len() == 2 && c.peers().len() == 2
    })
    .await;
    for n in [c, b, a] {
        n.shutdown(GRACE).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_larger_than_a_gossip_packet_reaches_every_node() {
    // Forty services with long names make a table of several KiB, far past
    // foca's ~1,400-byte packets: only its version is gossiped, and each
    // node fetches the table itself over its connection.
    let (a, b, c) = three_nodes();
    eventually("a full mesh", WAIT, || async {
        a.peers().len() == 2 && b.peers().len() == 2 && c.peers().len() == 2
    })
    .await;
    let names: Vec<String> = (0..40)
        .map(|i| format!("a-service-with-a-rather-long-name-number-{i:02}"))
        .collect();
    for n in &names {
        b.spawn(spec(n)).await.unwrap();
    }
    for (who, n) in [("a", &a), ("c", &c)] {
        eventually(
            &format!("{who} to see all of b's services"),
            WAIT,
            || async {
                names
                    .iter()
                    .all(|s| n.remote_instances(s) == [("b".to_string(), 0)])
            },
        )
        .await;
    }
    assert_eq!(c.service(&names[39]).ask(Incr).await.unwrap(), 1);
    for n in [c, b, a] {
        n.shutdown(GRACE).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_learns_when_a_remote_instance_or_its_node_dies() {
    let a = cluster_node("a", &[]);
    let b = cluster_node("b", &[a.remote_addr().unwrap()]);
    let mut wb = b.watch();
    a.spawn(spec("c").instances(2)).await.unwrap();
    a.spawn(spec("d")).await.unwrap();
    remote_up(&mut wb, "d", "a").await;
    // One instance crashes: its watcher hears of it (and the sibling's doesn't).
    let crash_watch = tokio::spawn(b.monitor("c", "a", 0));
    let other = b.monitor("c", "a", 1);
    let _ = a.service("c").ask_all(Boom).await;
    let reason = tokio::time::timeout(Duration::from_secs(10), crash_watch)
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(reason, msa_runtime::MonitorReason::LeftTable),
        "{reason}"
    );
    // The node goes: every watcher of its instances hears of it.
    let node_watch = tokio::spawn(b.monitor("d", "a", 0));
    a.shutdown(GRACE).await.unwrap();
    let reason = tokio::time::timeout(Duration::from_secs(10), node_watch)
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(
            reason,
            msa_runtime::MonitorReason::NodeDown | msa_runtime::MonitorReason::LeftTable
        ),
        "{reason}"
    );
    let _ = tokio::time::timeout(Duration::from_secs(10), other)
        .await
        .unwrap();
    assert_eq!(
        b.monitor("d", "a", 0).await,
        msa_runtime::MonitorReason::NotRunning
    );
    b.shutdown(GRACE).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_status_over_the_wire_lists_members_and_services() {
    let a = cluster_node("a", &[]);
    let b = cluster_node("b", &[a.remote_addr().unwrap()]);
    let mut wa = a.watch();
    b.spawn(spec("onb")).await.unwrap();
    a.spawn(spec("ona")).await.unwrap();
    remote_up(&mut wa, "onb", "b").await;
    let addr = a.remote_addr().unwrap();
    let st = msa_runtime::remote::cluster_status(&addr, "msa", SECRET, Duration::from_secs(5))
        .await
        .unwrap();
    let names: Vec<&str> = st.members.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    assert!(st
        .members
        .iter()
        .all(|m| m.status == "alive" && m.incarnation > 0));
    let svc: Vec<(&str, Vec<String>)> = st
        .services
        .iter()
        .map(|s| (s.name.as_str(), s.nodes.clone()))
        .collect();
    assert_eq!(
        svc,
        [
            ("ona", vec!["a".to_string()]),
            ("onb", vec!["b".to_string()])
        ]
    );
    assert_eq!(a.cluster_status(), st);
    // A wrong secret gets no status.
    let bad =
        msa_runtime::remote::cluster_status(&addr, "msa", b"nope", Duration::from_secs(5)).await;
    assert!(
        matches!(bad, Err(msa_runtime::remote::StatusError::Handshake { .. })),
        "{bad:?}"
    );
    b.shutdown(GRACE).await.unwrap();
    a.shutdown(GRACE).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_restart_is_seen_by_the_caller_and_calls_resume() {
    let a = cluster_node("a", &[]);
    let b = cluster_node("b", &[a.remote_addr().unwrap()]);
    let mut wb = b.watch();
    a.spawn(spec("c")).await.unwrap();
    remote_up(&mut wb, "c", "a").await;
    let c = b.service("c");
    assert_eq!(c.ask(Incr).await.unwrap(), 1);
    // Crash the instance on a; its supervisor there restarts it fresh.
    let _ = a.service("c").ask(Boom).await;
    wait_event(
        &mut wb,
        |e| matches!(e, RegistryEvent::RemoteRemoved { node, .. } if node == "a"),
    )
    .await;
    remote_up(&mut wb, "c", "a").await;
    assert_eq!(
        c.ask(Incr).await.unwrap(),
        1,
        "the caller reaches the fresh instance"
    );
    b.shutdown(GRACE).await.unwrap();
    a.shutdown(GRACE).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_leave_removes_entries_at_once_everywhere() {
    let (a, b, c) = three_nodes();
    let (mut wa, mut wc) = (a.watch(), c.watch());
    b.spawn(spec("onb")).await.unwrap();
    remote_up(&mut wa, "onb", "b").await;
    remote_up(&mut wc, "onb", "b").await;
    let t0 = Instant::now();
    b.shutdown(GRACE).await.unwrap();
    for w in [&mut wa, &mut wc] {
        wait_event(
            w,
            |e| matches!(e, RegistryEvent::RemoteRemoved { node, .. } if node == "b"),
        )
        .await;
    }
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "well before the 5 s failure-detection bound: {:?}",
        t0.elapsed()
    );
    assert!(a.remote_instances("onb").is_empty() && c.remote_instances("onb").is_empty());
    for n in [c, a] {
        n.shutdown(GRACE).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_events_report_joins_and_graceful_leaves() {
    use msa_runtime::remote::ClusterEvent;
    let a = cluster_node("a", &[]);
    let mut ev = a.cluster_events().unwrap();
    let b = cluster_node("b", &[a.remote_addr().unwrap()]);
    match next_event(&mut ev).await {
        ClusterEvent::Joined { member } => assert_eq!(member.name, "b"),
        e => panic!("expected a join, got {e:?}"),
    }
    b.shutdown(GRACE).await.unwrap();
    loop {
        match next_event(&mut ev).await {
            ClusterEvent::Left { name } => {
                assert_eq!(name, "b");
                break;
            }
            ClusterEvent::Joined { .. } => continue, // a duplicate connection settling
            e => panic!("a graceful leave is not a failure: {e:?}"),
        }
    }
    a.shutdown(GRACE).await.unwrap();
}

async fn next_event(
    ev: &mut tokio::sync::broadcast::Receiver<msa_runtime::remote::ClusterEvent>,
) -> msa_runtime::remote::ClusterEvent {
    tokio::time::timeout(Duration::from_secs(10), ev.recv())
        .await
        .expect("an event within 10 s")
        .expect("the event channel is open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_travels_on_its_own_lane_beside_the_data_connection() {
    let a = cluster_node("a", &[]);
    let b = cluster_node("b", &[a.remote_addr().unwrap()]);
    let mut wb = b.watch();
    a.spawn(spec("c")).await.unwrap();
    remote_up(&mut wb, "c", "a").await;
    // Node-wide counters count the lane too; per-connection counters
    // describe the data connection only. Frames counted by the node but by
    // no connection came over the membership lane (its pings and foca's
    // messages).
    for (who, n) in [("a", &a), ("b", &b)] {
        eventually(
            &format!("frames on {who}'s membership lane"),
            WAIT,
            || async {
                let data: u64 = n.connection_stats().iter().map(|c| c.frames_in).sum();
                n.remote_stats().frames_in > data + 2
            },
        )
        .await;
        assert_eq!(
            n.connection_stats().len(),
            1,
            "one data connection per peer"
        );
    }
    // Calls still go over the data connection.
    assert_eq!(b.service("c").ask(Incr).await.unwrap(), 1);
    assert!(b.connection_stats()[0].frames_out >= 1);
    // A graceful leave closes both connections: the survivor learns it at once.
    let mut ev = a.cluster_events().unwrap();
    b.shutdown(GRACE).await.unwrap();
    loop {
        match next_event(&mut ev).await {
            msa_runtime::remote::ClusterEvent::Left { name } => {
                assert_eq!(name, "b");
                break;
            }
            msa_runtime::remote::ClusterEvent::Joined { .. } => continue, // a duplicate settling
            e => panic!("a graceful leave is not a failure: {e:?}"),
        }
    }
    eventually("no peer left", WAIT, || async { a.peers().is_empty() }).await;
    a.shutdown(GRACE).await.unwrap();
}

/// A bulky message, to fill a connection.
#[derive(Debug, Clone, actix::Message, Serialize, Deserialize, RemoteMessage)]
#[msa(name = "test.Bulk")]
#[rtype(result = "()")]
struct Bulk(Vec<u8>);
impl Handler<Bulk> for Counter {
    fn handle(&mut self, _: Bulk, _: &mut ServiceContext<'_, Self>) -> Reply<Self, ()> {
        self.n += 1;
        Reply::ready(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_calls_does_not_make_failure_detection_misfire() {
    use msa_runtime::remote::ClusterEvent;
    const BOUND: Duration = Duration::from_secs(3);
    let start = |name: &str, seed: Option<String>| {
        let mut b = Node::builder()
            .name(name)
            .arbiters(1)
            .listen("127.0.0.1:0".parse().unwrap())
            .secret(SECRET)
            .failure_detection(BOUND);
        if let Some(s) = seed {
            b = b.seed(s);
        }
        b.start().unwrap()
    };
    let a = start("a", None);
    let b = start("b", a.remote_addr());
    let mut events_a = a.cluster_events().unwrap();
    let mut events_b = b.cluster_events().unwrap();
    let mut wa = a.watch();
    b.spawn(spec("sink").handles::<Bulk>()).await.unwrap();
    remote_up(&mut wa, "sink", "b").await;

    // Two detection bounds of tells, as fast as a's queue takes them.
    let sink = a.service("sink");
    let payload = vec![7u8; 64 * 1024];
    let t0 = Instant::now();
    let mut sent = 0u64;
    while t0.elapsed() < BOUND * 2 {
        for i in 0..64 {
            // Small tells (the most frames) and large ones (the most bytes).
            let r = if i % 2 == 0 {
                sink.tell(Incr)
            } else {
                sink.tell(Bulk(payload.clone()))
            };
            if r.is_ok() {
                sent += 1;
            }
        }
        tokio::task::yield_now().await;
    }
    assert!(sent > 100, "the flood flowed ({sent} tells)");
    // Nobody was declared down while the connection was saturated.
    for (who, ev) in [("a", &mut events_a), ("b", &mut events_b)] {
        while let Ok(e) = ev.try_recv() {
            assert!(
                !matches!(e, ClusterEvent::Down { .. } | ClusterEvent::Left { .. }),
                "{who} saw {e:?} during the flood"
            );
        }
    }
    assert!(a.peers().iter().any(|p| p.name == "b"));
    // And the flood is still being served: an ask comes back behind it.
    let handled = sink
        .ask(Get)
        .timeout(Duration::from_secs(30))
        .await
        .unwrap();
    assert!(handled > 0);
    b.shutdown(GRACE).await.unwrap();
    a.shutdown(GRACE).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_larger_than_the_frame_limit_fails_at_its_caller_and_the_connection_lives_on() {
    let a = cluster_node("a", &[]);
    let b = Node::builder()
        .name("b")
        .arbiters(1)
        .listen("127.0.0.1:0".parse().unwrap())
        .secret(SECRET)
        .seed(a.remote_addr().unwrap())
        .max_frame_bytes(64 * 1024)
        .start()
        .unwrap();
    let mut wb = b.watch();
    a.spawn(spec("sink").handles::<Bulk>()).await.unwrap();
    remote_up(&mut wb, "sink", "a").await;
    let sink = b.service("sink");
    for (what, r) in [
        ("tell", sink.tell(Bulk(vec![1; 100 * 1024]))),
        (
            "ask",
            sink.ask(Bulk(vec![2; 100 * 1024]))
                .timeout(Duration::from_secs(60))
                .await,
        ),
    ] {
        match r {
            Err(CallError::Codec { service, reason }) => {
                assert_eq!(service, "sink", "{what}");
                assert!(reason.contains("exceeds the limit"), "{what}: {reason}");
            }
            other => panic!("{what} of a frame over the limit: {other:?}"),
        }
    }
    // Nothing was sent: the connection still carries calls, in order.
    sink.tell(Bulk(vec![3; 1024])).unwrap();
    sink.ask(Bulk(vec![4; 1024])).await.unwrap();
    assert_eq!(sink.ask(Get).await.unwrap(), 2);
    b.shutdown(GRACE).await.unwrap();
    a.shutdown(GRACE).await.unwrap();
}
