//! Topics: publish/subscribe on one node and across a cluster on loopback.

use crate::support::*;
use msa_runtime::prelude::*;
use msa_runtime::TopicItem;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, actix::Message, Serialize, Deserialize, RemoteMessage)]
#[msa(name = "test.OrderEvent")]
#[rtype(result = "()")]
struct OrderEvent {
    publisher: String,
    seq: u64,
}

#[derive(Debug, Clone, PartialEq, actix::Message, Serialize, Deserialize, RemoteMessage)]
#[msa(name = "test.OtherEvent")]
#[rtype(result = "()")]
struct OtherEvent(String);

const SECRET: &[u8] = b"topic-secret";
const TOPIC: &str = "orders.events";

fn cluster_node(name: &str, seeds: &[String]) -> Node {
    let mut b = Node::builder()
        .name(name)
        .arbiters(1)
        .listen("127.0.0.1:0".parse().unwrap())
        .secret(SECRET);
    for s in seeds {
        b = b.seed(s.clone());
    }
    b.start().unwrap()
}

fn ev(publisher: &str, seq: u64) -> OrderEvent {
    OrderEvent {
        publisher: publisher.into(),
        seq,
    }
}

async fn next_within<E: Send + 'static>(s: &mut msa_runtime::Subscription<E>) -> TopicItem<E> {
    tokio::time::timeout(WAIT, s.next())
        .await
        .expect("an event within the wait")
}

/// Waits until `node` knows the nodes that subscribe to the topic.
async fn subscribers_seen(node: &Node, want: &[&str]) {
    let t = node.topic::<OrderEvent>(TOPIC);
    let want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    eventually("the remote subscribers", WAIT, || {
        let got = t.remote_subscribers();
        let want = want.clone();
        async move { got == want }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_subscribers_get_every_event_in_order_and_a_dropped_one_none() {
    let n = node("topics-local");
    let t = n.topic::<OrderEvent>(TOPIC);
    let mut s1 = t.subscribe(1000);
    let s2 = t.subscribe(1000);
    for i in 0..100 {
        t.publish(ev("p", i));
    }
    for i in 0..100 {
        assert_eq!(next_within(&mut s1).await, TopicItem::Event(ev("p", i)));
    }
    drop(s2);
    t.publish(ev("p", 100));
    assert_eq!(next_within(&mut s1).await, TopicItem::Event(ev("p", 100)));
    let stats = n.topic_stats();
    assert_eq!(stats.published, 101);
    assert_eq!(
        stats.delivered, 201,
        "two subscribers for 100, one for the last"
    );
    // Another topic's subscriber sees nothing of it.
    let mut other = n.topic::<OrderEvent>("elsewhere").subscribe(4);
    t.publish(ev("p", 101));
    assert!(other.try_next().is_none());
    n.shutdown(GRACE).await.unwrap();
}

/// An event that counts its clones (shared by the copies of one event).
#[derive(Debug, actix::Message, Serialize, Deserialize, RemoteMessage)]
#[msa(name = "test.Tracked")]
#[rtype(result = "()")]
struct Tracked {
    seq: u64,
    #[serde(skip)]
    clones: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Clone for Tracked {
    fn clone(&self) -> Self {
        self.clones
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self {
            seq: self.seq,
            clones: self.clones.clone(),
        }
    }
}

/// A local publish moves the event into the last subscriber: one copy per
/// other subscriber, none with one subscriber (and none with none).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_publish_clones_the_event_once_per_subscriber_but_the_last() {
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    let n = node("topics-clones");
    let t = n.topic::<Tracked>("tracked");
    let clones = std::sync::Arc::new(AtomicUsize::new(0));
    let publish = |seq| {
        t.publish(Tracked {
            seq,
            clones: clones.clone(),
        })
    };
    publish(0);
    assert_eq!(clones.load(Relaxed), 0, "no subscriber, no copy");
    let mut subs = vec![t.subscribe(100)];
    publish(1);
    assert_eq!(
        clones.load(Relaxed),
        0,
        "one subscriber takes the event itself"
    );
    subs.push(t.subscribe(100));
    subs.push(t.subscribe(100));
    publish(2);
    assert_eq!(clones.load(Relaxed), 2, "three subscribers: two copies");
    for (i, s) in subs.iter_mut().enumerate() {
        let want: &[u64] = if i == 0 { &[1, 2] } else { &[2] };
        for &seq in want {
            match s.try_next() {
                Some(TopicItem::Event(e)) => assert_eq!(e.seq, seq),
                other => panic!("subscriber {i}: {other:?}"),
            }
        }
        assert!(s.try_next().is_none());
    }
    let stats = n.topic_stats();
    assert_eq!((stats.published, stats.delivered), (3, 4));
    n.shutdown(GRACE).await.unwrap();
}

/// Two services, a stream and a JSON subscription on one node each get
/// every event, in order, and each delivery is counted; with a consumer
/// group beside them too (then one member takes each event).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_services_streams_and_a_group_each_get_every_event_in_order_and_counted() {
    let n = node("topics-local-services");
    let mut refs = Vec::new();
    for name in ["rec-1", "rec-2"] {
        n.spawn(
            ServiceSpec::new(name, Recorder::default)
                .handles::<OrderEvent>()
                .handles::<Seen>(),
        )
        .await
        .unwrap();
        refs.push(n.service(name));
    }
    let t = n.topic::<OrderEvent>(TOPIC);
    let _r1 = t.subscribe_service(&refs[0]);
    let mut stream = t.subscribe(1000);
    let mut json = n.subscribe_json(TOPIC, 1000);
    let _r2 = t.subscribe_service(&refs[1]);
    for i in 0..100 {
        t.publish(ev("p", i));
    }
    let mut group = t.subscribe_in_group("g", 1000);
    for i in 100..110 {
        t.publish(ev("p", i));
    }
    let all: Vec<u64> = (0..110).collect();
    for r in &refs {
        let r = r.clone();
        eventually("110 events recorded", WAIT, || {
            let r = r.clone();
            async move { r.ask(Seen).await.map(|v| v.len()).unwrap_or(0) >= 110 }
        })
        .await;
        assert_eq!(r.ask(Seen).await.unwrap(), all);
    }
    for i in 0..110 {
        assert_eq!(stream.try_next(), Some(TopicItem::Event(ev("p", i))));
    }
    for i in 0..110 {
        match json.try_next() {
            Some(TopicItem::Event(e)) => assert_eq!(e.body["seq"], i),
            other => panic!("{other:?}"),
        }
    }
    for i in 100..110 {
        assert_eq!(group.try_next(), Some(TopicItem::Event(ev("p", i))));
    }
    let stats = n.topic_stats();
    assert_eq!(stats.published, 110);
    assert_eq!(stats.delivered, 4 * 110 + 10);
    assert_eq!(stats.lagged, 0);
    n.shutdown(GRACE).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_subscriber_is_told_how_many_it_missed_and_blocks_nobody() {
    let n = node("topics-lag");
    let t = n.topic::<OrderEvent>(TOPIC);
    let mut slow = t.subscribe(4);
    let mut fast = t.subscribe(100);
    for i in 0..10 {
        t.publish(ev("p", i));
    }
    for i in 0..4 {
        assert_eq!(slow.try_next(), Some(TopicItem::Event(ev("p", i))));
    }
    assert_eq!(slow.try_next(), Some(TopicItem::Lagged { missed: 6 }));
    assert_eq!(slow.try_next(), None);
    for i in 0..10 {
        assert_eq!(fast.try_next(), Some(TopicItem::Event(ev("p", i))));
    }
    assert_eq!(n.topic_stats().lagged, 6);
    // Caught up: it gets events again.
    t.publish(ev("p", 10));
    assert_eq!(slow.try_next(), Some(TopicItem::Event(ev("p", 10))));
    n.shutdown(GRACE).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reach_subscribers_on_other_nodes_in_publisher_order() {
    let a = cluster_node("a", &[]);
    let seed = a.remote_addr().unwrap();
    let b = cluster_node("b", std::slice::from_ref(&seed));
    let c = cluster_node("c", &[seed]);
    let mut b1 = b.topic::<OrderEvent>(TOPIC).subscribe(1000);
    let mut b2 = b.topic::<OrderEvent>(TOPIC).subscribe(1000);
    let mut c1 = c.topic::<OrderEvent>(TOPIC).subscribe(1000);
    subscribers_seen(&a, &["b", "c"]).await;
    subscribers_seen(&c, &["b"]).await;
    let ta = a.topic::<OrderEvent>(TOPIC);
    let tc = c.topic::<OrderEvent>(TOPIC);
    for i in 0..200 {
        ta.publish(ev("a", i));
        tc.publish(ev("c", i));
    }
    for s in [&mut b1, &mut b2, &mut c1] {
        let (mut from_a, mut from_c) = (0, 0);
        while from_a < 200 || from_c < 200 {
            match next_within(s).await {
                TopicItem::Event(e) if e.publisher == "a" => {
                    assert_eq!(e.seq, from_a, "a's events in order");
                    from_a += 1;
                }
                TopicItem::Event(e) => {
                    assert_eq!(e.seq, from_c, "c's events in order");
                    from_c += 1;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    // One copy per node: b fanned 400 events out to its two subscribers.
    // (A sink counts an event just after it queued it, so the count can
    // trail what a subscriber has already read by a moment.)
    msa_runtime::test_support::eventually("b counted 800 deliveries", GRACE, || {
        let delivered = b.topic_stats().delivered;
        async move { delivered >= 800 }
    })
    .await;
    assert_eq!(b.topic_stats().delivered, 800);
    assert_eq!(b.topic_stats().published, 0);
    assert_eq!(a.topic_stats().remote_dropped, 0);
    for n in [c, b, a] {
        n.shutdown(GRACE).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_joins_later_subscribes_and_leaving_removes_it() {
    let a = cluster_node("a", &[]);
    let ta = a.topic::<OrderEvent>(TOPIC);
    ta.publish(ev("a", 0)); // nobody anywhere: dropped.
    let b = cluster_node("b", &[a.remote_addr().unwrap()]);
    let mut sb = b.topic::<OrderEvent>(TOPIC).subscribe(16);
    subscribers_seen(&a, &["b"]).await;
    ta.publish(ev("a", 1));
    assert_eq!(next_within(&mut sb).await, TopicItem::Event(ev("a", 1)));
    // The last subscriber on b goes: a stops sending there.
    drop(sb);
    subscribers_seen(&a, &[]).await;
    // Subscribed again, then b goes down: a forgets it.
    let _sb = b.topic::<OrderEvent>(TOPIC).subscribe(16);
    subscribers_seen(&a, &["b"]).await;
    b.shutdown(GRACE).await.unwrap();
    subscribers_seen(&a, &[]).await;
    ta.publish(ev("a", 2));
    assert_eq!(
        a.topic_stats().remote_dropped,
        0,
        "no copy for a node that is gone"
    );
    a.shutdown(GRACE).await.unwrap();
}

/// Counts the events told to it.
#[derive(Default)]
struct Recorder {
    seen: Vec<u64>,
}
impl Service for Recorder {}
impl Handler<OrderEvent> for Recorder {
    fn handle(&mut self, e: OrderEvent, _: &mut ServiceContext<'_, Self>) -> Reply<Self, ()> {
        self.seen.push(e.seq);
        Reply::ready(())
    }
}
#[derive(Debug, Clone, actix::Message, Serialize, Deserialize, RemoteMessage)]
#[msa(name = "test.Seen")]
#[rtype(result = "Vec<u64>")]
struct Seen;
impl Handler<Seen> for Recorder {
    fn handle(&mut self, _: Seen, _: &mut ServiceContext<'_, Self>) -> Reply<Self, Vec<u64>> {
        Reply::ready(self.seen.clone())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_subscriber_gets_events_as_messages_from_another_node() {
    let a = cluster_node("a", &[]);
    let b = cluster_node("b", &[a.remote_addr().unwrap()]);
    b.spawn(
        ServiceSpec::new("recorder", Recorder::default)
            .handles::<OrderEvent>()
            .handles::<Seen>(),
    )
    .await
    .unwrap();
    let sub = b
        .topic::<OrderEvent>(TOPIC)
        .subscribe_service(&b.service("recorder"));
    subscribers_seen(&a, &["b"]).await;
    let ta = a.topic::<OrderEvent>(TOPIC);
    for i in 0..20 {
        ta.publish(ev("a", i));
    }
    let r = b.service("recorder");
    eventually("20 events recorded", WAIT, || {
        let r = r.clone();
        async move { r.ask(Seen).await.map(|v| v.len()).unwrap_or(0) == 20 }
    })
    .await;
    assert_eq!(r.ask(Seen).await.unwrap(), (0..20).collect::<Vec<_>>());
    drop(sub);
    subscribers_seen(&a, &[]).await;
    b.shutdown(GRACE).await.unwrap();
    a.shutdown(GRACE).await.unwrap();
}

/// A subscription made for a whole service ends with the service: once
/// the service is stopped for good, the node drops the subscription (and a
/// whole-service group membership) although the caller still holds both
/// handles, and the publisher's node stops sending copies there. A new
/// service of the same name is not subscribed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_subscriber_that_stops_for_good_is_removed_cluster_wide() {
    let a = cluster_node("a", &[]);
    let b = cluster_node("b", &[a.remote_addr().unwrap()]);
    let spec = || {
        ServiceSpec::new("recorder", Recorder::default)
            .handles::<OrderEvent>()
            .handles::<Seen>()
    };
    b.spawn(spec()).await.unwrap();
    let tb = b.topic::<OrderEvent>(TOPIC);
    let _sub = tb.subscribe_service(&b.service("recorder"));
    let _in_group = tb.subscribe_service_in_group("g", &b.service("recorder"));
    let gb = b.group::<OrderEvent>("recorders").unwrap();
    let _member = gb.join_service(&b.service("recorder"));
    subscribers_seen(&a, &["b"]).await;
    let ga = a.group::<OrderEvent>("recorders").unwrap();
    eventually("a sees b's group member", WAIT, || {
        let n = ga.members().len();
        async move { n == 1 }
    })
    .await;
    assert_eq!(tb.local_subscribers(), 2);

    b.stop_service("recorder").await.unwrap();
    assert_eq!(tb.local_subscribers(), 0, "b dropped both subscriptions");
    assert!(gb.local_members().is_empty(), "b dropped the group member");
    subscribers_seen(&a, &[]).await;
    eventually("a sees b's group member gone", WAIT, || {
        let n = ga.members().len();
        async move { n == 0 }
    })
    .await;
    assert!(a.topic::<OrderEvent>(TOPIC).group_members("g").is_empty());

    // The name is free again; the new service has no subscription.
    b.spawn(spec()).await.unwrap();
    assert_eq!(tb.local_subscribers(), 0);
    b.shutdown(GRACE).await.unwrap();
    a.shutdown(GRACE).await.unwrap();
}

/// A subscriber on another node that reads nothing never holds the
/// publisher up: 100,000 events published back to back all return, a
/// second node's subscriber gets every one in order, and the slow one
/// gets its bound's worth, then `Lagged` with the count of the rest; every
/// event is accounted for (delivered, missed there, or dropped and
/// counted on the publisher's side when the connection's lane was full).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_subscriber_on_another_node_is_told_what_it_missed_and_blocks_nobody() {
    const N: u64 = 100_000;
    const BOUND: usize = 16;
    let a = cluster_node("a", &[]);
    let seed = a.remote_addr().unwrap();
    let b = cluster_node("b", std::slice::from_ref(&seed));
    let c = cluster_node("c", &[seed]);
    let mut slow = b.topic::<OrderEvent>(TOPIC).subscribe(BOUND);
    let mut fast = c.topic::<OrderEvent>(TOPIC).subscribe(N as usize);
    subscribers_seen(&a, &["b", "c"]).await;
    let ta = a.topic::<OrderEvent>(TOPIC);
    for i in 0..N {
        ta.publish(ev("a", i));
    }
    // Every copy is accounted for: queued at b or c (their own
    // subscriber's bound decides), missed at b, or dropped at a.
    eventually("every event accounted for", WAIT, || {
        let (sb, sc, sa) = (b.topic_stats(), c.topic_stats(), a.topic_stats());
        async move { sb.delivered + sb.lagged + sc.delivered + sa.remote_dropped == 2 * N }
    })
    .await;
    let (sb, sc) = (b.topic_stats(), c.topic_stats());
    assert_eq!(sc.lagged, 0, "c's bound holds everything");
    let mut last = None;
    let mut got = 0;
    while let Some(item) = fast.try_next() {
        let TopicItem::Event(e) = item else {
            panic!("c missed nothing: {item:?}");
        };
        assert!(last < Some(e.seq), "c's events in order");
        last = Some(e.seq);
        got += 1;
    }
    assert_eq!(got, sc.delivered, "c read what it was given");
    let mut seen = Vec::new();
    while let Some(item) = slow.try_next() {
        seen.push(item);
    }
    assert_eq!(seen.len(), BOUND + 1, "its bound's worth, then one Lagged");
    for (i, item) in seen[..BOUND].iter().enumerate() {
        assert_eq!(item, &TopicItem::Event(ev("a", i as u64)));
    }
    assert_eq!(sb.delivered, BOUND as u64);
    assert_eq!(seen[BOUND], TopicItem::Lagged { missed: sb.lagged });
    for n in [c, b, a] {
        n.shutdown(GRACE).await.unwrap();
    }
}

/// Publishes 20,000 events back to back from one task (the connection's
/// lane gathers them into runs, `PublishRun` frames) and then events to
/// two topics interleaved in blocks of 1 to 7 (each block a run of its
/// own): the service subscriber on the other node gets every event of the
/// first topic, in order, and the stream the second topic's, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_of_publishes_arrives_whole_and_in_order_at_a_remote_service_and_interleaved_topics_keep_theirs(
) {
    const OTHER: &str = "orders.other";
    const RUN: u64 = 20_000;
    const INTERLEAVED: u64 = 2_000;
    let a = cluster_node("a", &[]);
    let b = cluster_node("b", &[a.remote_addr().unwrap()]);
    b.spawn(
        ServiceSpec::new("recorder", Recorder::default)
            .handles::<OrderEvent>()
            .handles::<Seen>(),
    )
    .await
    .unwrap();
    let _sub = b
        .topic::<OrderEvent>(TOPIC)
        .subscribe_service(&b.service("recorder"));
    let mut other = b
        .topic::<OrderEvent>(OTHER)
        .subscribe((INTERLEAVED + 1) as usize);
    subscribers_seen(&a, &["b"]).await;
    let to = a.topic::<OrderEvent>(OTHER);
    eventually("a knows b subscribes to the other topic", WAIT, || {
        let got = to.remote_subscribers();
        async move { got == ["b"] }
    })
    .await;
    let ta = a.topic::<OrderEvent>(TOPIC);
    let frames_before = a.remote_stats().frames_out;
    for i in 0..RUN {
        ta.publish(ev("a", i));
    }
    let r = b.service("recorder");
    eventually("the run recorded", WAIT, || {
        let r = r.clone();
        async move { r.ask(Seen).await.map(|v| v.len() as u64).unwrap_or(0) == RUN }
    })
    .await;
    let frames = a.remote_stats().frames_out - frames_before;
    assert!(
        frames < RUN / 2,
        "{RUN} events took {frames} frames: not sent as runs"
    );
    let (mut first, mut second) = (RUN, 0);
    let mut block = 0;
    while second < INTERLEAVED {
        block = block % 7 + 1;
        for _ in 0..block {
            ta.publish(ev("a", first));
            first += 1;
        }
        for _ in 0..block.min(INTERLEAVED - second) {
            to.publish(ev("a", second));
            second += 1;
        }
    }
    eventually("every event recorded", WAIT, || {
        let r = r.clone();
        async move { r.ask(Seen).await.map(|v| v.len() as u64).unwrap_or(0) == first }
    })
    .await;
    assert_eq!(
        r.ask(Seen).await.unwrap(),
        (0..first).collect::<Vec<_>>(),
        "the first topic's events, whole and in order"
    );
    for i in 0..INTERLEAVED {
        assert_eq!(
            next_within(&mut other).await,
            TopicItem::Event(ev("a", i)),
            "the second topic's events in order"
        );
    }
    assert!(other.try_next().is_none());
    assert_eq!(a.topic_stats().remote_dropped, 0);
    // (A sink counts events just after it queued them.)
    let want = first + INTERLEAVED;
    eventually("b counted every delivery", GRACE, || {
        let delivered = b.topic_stats().delivered;
        async move { delivered >= want }
    })
    .await;
    let stats = b.topic_stats();
    assert_eq!((stats.delivered, stats.lagged), (want, 0));
    b.shutdown(GRACE).await.unwrap();
    a.shutdown(GRACE).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_subscriber_gets_local_and_remote_events_as_json() {
    let a = cluster_node("a", &[]);
    let b = cluster_node("b", &[a.remote_addr().unwrap()]);
    let mut js = b.subscribe_json(TOPIC, 8);
    subscribers_seen(&a, &["b"]).await;
    a.topic::<OrderEvent>(TOPIC).publish(ev("a", 1));
    b.topic::<OrderEvent>(TOPIC).publish(ev("b", 2));
    // Two publishers: each one's order holds, not an order between them.
    let mut got = Vec::new();
    for _ in 0..2 {
        let item = tokio::time::timeout(WAIT, js.next()).await.unwrap();
        let TopicItem::Event(e) = item else {
            panic!("{item:?}")
        };
        assert_eq!(e.message, "test.OrderEvent");
        got.push(e.body.to_string());
    }
    got.sort();
    let want = [("a", 1), ("b", 2)]
        .map(|(p, seq)| serde_json::json!({"publisher": p, "seq": seq}).to_string());
    assert_eq!(got, want);
    b.shutdown(GRACE).await.unwrap();
    a.shutdown(GRACE).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_of_another_type_under_the_same_name_is_dropped_and_counted() {
    let a = cluster_node("a", &[]);
    let b = cluster_node("b", &[a.remote_addr().unwrap()]);
    let mut sb = b.topic::<OrderEvent>(TOPIC).subscribe(8);
    subscribers_seen(&a, &["b"]).await;
    a.topic::<OtherEvent>(TOPIC).publish(OtherEvent("x".into()));
    a.topic::<OrderEvent>(TOPIC).publish(ev("a", 1));
    assert_eq!(next_within(&mut sb).await, TopicItem::Event(ev("a", 1)));
    assert_eq!(b.topic_stats().undecodable, 1);
    b.shutdown(GRACE).await.unwrap();
    a.shutdown(GRACE).await.unwrap();
}

#[derive(Debug, Clone, PartialEq, actix::Message, Serialize, Deserialize, RemoteMessage)]
#[msa(name = "test.KeyedEvent")]
#[rtype(result = "()")]
struct KeyedEvent {
    key: u64,
    seq: u64,
}
impl msa_runtime::KeyedMessage for KeyedEvent {
    fn routing_key(&self) -> u64 {
        self.key
    }
}

/// Every queued event of a subscription, without waiting.
fn drain(s: &mut msa_runtime::Subscription<KeyedEvent>) -> Vec<KeyedEvent> {
    let mut v = Vec::new();
    while let Some(item) = s.try_next() {
        match item {
            TopicItem::Event(e) => v.push(e),
            other => panic!("unexpected {other:?}"),
        }
    }
    v
}

/// Each key's events are at one member, in order.
fn keys_stay_put(members: &[Vec<KeyedEvent>]) {
    let mut owner = std::collections::HashMap::new();
    for (i, evs) in members.iter().enumerate() {
        let mut last = std::collections::HashMap::new();
        for e in evs {
            assert_eq!(
                *owner.entry(e.key).or_insert(i),
                i,
                "key {} at one member",
                e.key
            );
            if let Some(prev) = last.insert(e.key, e.seq) {
                assert!(prev < e.seq, "key {} in order", e.key);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_group_shares_events_by_key_and_other_subscribers_get_all() {
    let n = node("topics-groups");
    let t = n.topic::<KeyedEvent>("jobs");
    let mut g: Vec<_> = (0..3)
        .map(|_| t.subscribe_in_group("workers", 1000))
        .collect();
    let mut h = t.subscribe_in_group("audit", 1000);
    let mut plain = t.subscribe(1000);
    assert_eq!(t.group_members("workers").len(), 3);
    for seq in 0..300 {
        t.publish_keyed(KeyedEvent { key: seq % 30, seq });
    }
    let got: Vec<Vec<KeyedEvent>> = g.iter_mut().map(drain).collect();
    assert_eq!(
        got.iter().map(Vec::len).sum::<usize>(),
        300,
        "one member per event"
    );
    assert!(
        got.iter().all(|v| !v.is_empty()),
        "30 keys spread over 3 members"
    );
    keys_stay_put(&got);
    assert_eq!(drain(&mut h).len(), 300, "another group gets every event");
    assert_eq!(
        drain(&mut plain).len(),
        300,
        "a plain subscriber gets every event"
    );
    // Without a key: still one member per event, spread over them.
    for seq in 0..30 {
        t.publish(KeyedEvent { key: 0, seq });
    }
    let got: Vec<usize> = g.iter_mut().map(|s| drain(s).len()).collect();
    assert_eq!(got.iter().sum::<usize>(), 30);
    assert!(got.iter().filter(|&&c| c > 0).count() > 1, "{got:?}");
    n.shutdown(GRACE).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_spans_nodes_and_a_leaving_member_hands_its_keys_over() {
    let a = cluster_node("a", &[]);
    let b = cluster_node("b", &[a.remote_addr().unwrap()]);
    let c = cluster_node("c", &[a.remote_addr().unwrap()]);
    let mut ga = a
        .topic::<KeyedEvent>("jobs")
        .subscribe_in_group("workers", 1000);
    let mut gb = b
        .topic::<KeyedEvent>("jobs")
        .subscribe_in_group("workers", 1000);
    let tc = c.topic::<KeyedEvent>("jobs");
    eventually("c sees both members and routes to both nodes", WAIT, || {
        let n = tc.group_members("workers").len();
        let mut nodes = tc.remote_subscribers();
        nodes.sort();
        async move { n == 2 && nodes == ["a", "b"] }
    })
    .await;
    for seq in 0..200 {
        tc.publish_keyed(KeyedEvent { key: seq % 20, seq });
    }
    let mut on_a = Vec::new();
    let mut on_b = Vec::new();
    let stats = c.topic_stats();
    eventually(
        &format!("200 events shared by a and b (c's counters after publishing: {stats:?})"),
        WAIT,
        || {
            on_a.extend(drain(&mut ga));
            on_b.extend(drain(&mut gb));
            let n = on_a.len() + on_b.len();
            async move { n >= 200 }
        },
    )
    .await;
    assert_eq!(on_a.len() + on_b.len(), 200, "no event twice");
    assert!(
        !on_a.is_empty() && !on_b.is_empty(),
        "20 keys over two nodes"
    );
    keys_stay_put(&[on_a, on_b]);
    // b's member leaves: its keys move to a's.
    drop(gb);
    eventually("c sees one member", WAIT, || {
        let n = tc.group_members("workers").len();
        async move { n == 1 }
    })
    .await;
    for seq in 200..240 {
        tc.publish_keyed(KeyedEvent { key: seq % 20, seq });
    }
    let mut after = Vec::new();
    eventually("every later event at a", WAIT, || {
        after.extend(drain(&mut ga));
        let n = after.len();
        async move { n >= 40 }
    })
    .await;
    assert_eq!(after.len(), 40);
    for n in [c, b, a] {
        n.shutdown(GRACE).await.unwrap();
    }
}
