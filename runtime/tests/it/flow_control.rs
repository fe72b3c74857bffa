//! Flow control from a producer to a consumer: `ServiceRef::send` waits for
//! room (in a local mailbox, or in the queue of the connection toward a
//! remote node), and a node serving remote tells reads no faster than its
//! instances take them, so memory stays bounded on both sides.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use msa_runtime::prelude::*;
use msa_runtime::test_support::rss_bytes as crate_rss;
use msa_runtime::RegistryEvent;
use serde::{Deserialize, Serialize};

const SECRET: &[u8] = b"flow-secret";
const GRACE: Duration = Duration::from_secs(5);

/// One number for the sink.
#[derive(Debug, Clone, actix::Message, Serialize, Deserialize, RemoteMessage)]
#[rtype(result = "()")]
#[msa(name = "flow.Num")]
struct Num(u64);

/// Counts what it is sent, with a little work per message (slower than
/// the producer, so queues fill).
struct Sink {
    seen: Arc<AtomicU64>,
    sum: u64,
}
impl Service for Sink {}
impl Handler<Num> for Sink {
    fn handle(&mut self, m: Num, _: &mut ServiceContext<'_, Self>) -> Reply<Self, ()> {
        let mut x = m.0;
        for _ in 0..WORK {
            x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
        }
        self.sum = self.sum.wrapping_add(x);
        self.seen.fetch_add(1, Ordering::Relaxed);
        Reply::ready(())
    }
}

const MAILBOX: usize = 256;
/// Rounds of work per message: enough that the sink is slower than the
/// connection's reader, so the reader has to wait for it.
const WORK: u32 = 2_000;

/// The tests measure the process's RSS: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn sink(seen: &Arc<AtomicU64>) -> ServiceSpec<Sink> {
    let seen = seen.clone();
    ServiceSpec::new("sink", move || Sink {
        seen: seen.clone(),
        sum: 0,
    })
    .handles::<Num>()
    .mailbox_capacity(MAILBOX)
}

/// Resident set size of this process (Linux).
fn rss_bytes() -> u64 {
    crate_rss().expect("VmRSS in /proc/self/status")
}

/// Maxima seen while the flow ran.
#[derive(Debug, Default)]
struct Peaks {
    data_queued_bytes: u64,
    mailbox_depth: u64,
    rss_growth: u64,
}

/// Samples `sample` until `done` holds, keeping the maxima.
async fn watch_until(
    done: impl Fn() -> bool,
    within: Duration,
    sample: impl Fn() -> (u64, u64),
) -> Peaks {
    let rss0 = rss_bytes();
    let t0 = Instant::now();
    let mut p = Peaks::default();
    while !done() {
        assert!(t0.elapsed() < within, "not done within {within:?}: {p:?}");
        let (queued, depth) = sample();
        p.data_queued_bytes = p.data_queued_bytes.max(queued);
        p.mailbox_depth = p.mailbox_depth.max(depth);
        p.rss_growth = p.rss_growth.max(rss_bytes().saturating_sub(rss0));
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    p
}

/// The count a test sends (a million took 28 s in a debug build on 2
/// shared cores; with remote tells queued past the mailbox's capacity, as
/// before flow control, b's mailbox reached 601,516 messages in that run).
fn count() -> u64 {
    1_000_000
}

/// A bound for a mailbox that takes tells within its capacity: the
/// capacity, plus one message per sender that reached it (actix lets the
/// message that fills a mailbox in and parks its sender), plus what moved
/// while the depth was read.
const DEPTH_BOUND: u64 = MAILBOX as u64 + 16;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_sending_to_a_remote_service_waits_for_it_and_memory_stays_bounded() {
    // RSS is the process's: measured with no other test running in it.
    if !msa_runtime::test_support::in_own_process("flow_control::a_producer_sending_to_a_remote_service_waits_for_it_and_memory_stays_bounded") {
        return;
    }
    const DATA_QUEUE: usize = 1 << 20;
    let _serial = SERIAL.lock().await;
    // Two threads: the sink's instance does not run between the reader's
    // turns on one thread, so only flow control bounds its mailbox.
    let b = Node::builder()
        .name("b")
        .arbiters(2)
        .listen("127.0.0.1:0".parse().unwrap())
        .secret(SECRET)
        .track_mailbox_depth(true)
        .start()
        .unwrap();
    let a = Node::builder()
        .name("a")
        .arbiters(1)
        .listen("127.0.0.1:0".parse().unwrap())
        .secret(SECRET)
        .max_data_queue_bytes(DATA_QUEUE)
        .seed(b.remote_addr().unwrap())
        .start()
        .unwrap();
    let mut wa = a.watch();
    let seen = Arc::new(AtomicU64::new(0));
    b.spawn(sink(&seen)).await.unwrap();
    loop {
        let e = tokio::time::timeout(Duration::from_secs(15), wa.next())
            .await
            .expect("the sink's table reaches a")
            .unwrap();
        if matches!(e, RegistryEvent::RemoteAdded { ref service, .. } if service == "sink") {
            break;
        }
    }
    let n = count();
    let to_sink = a.service("sink");
    let started = Instant::now();
    let producer = tokio::spawn(async move {
        let mut errors = 0u64;
        for i in 0..n {
            if to_sink.send(Num(i)).await.is_err() {
                errors += 1;
            }
        }
        errors
    });
    let peaks = watch_until(
        || seen.load(Ordering::Relaxed) >= n,
        Duration::from_secs(300),
        || {
            let queued = a
                .connection_stats()
                .iter()
                .map(|c| c.data_queued_bytes)
                .max()
                .unwrap_or(0);
            let depth = b.stats("sink").map_or(0, |s| s.mailbox_depth);
            (queued, depth)
        },
    )
    .await;
    let errors = producer.await.unwrap();
    let took = started.elapsed();
    eprintln!("{n} sends in {took:?}: {peaks:?}");
    assert_eq!(errors, 0);
    assert_eq!(
        seen.load(Ordering::Relaxed),
        n,
        "every message counted once"
    );
    assert_eq!(
        a.remote_stats().overloaded,
        0,
        "send waits, never overloads"
    );
    // A's queue toward b: at most its bound (one frame may exceed an
    // empty queue's bound; these are small).
    assert!(
        peaks.data_queued_bytes <= DATA_QUEUE as u64,
        "data queue {} over {DATA_QUEUE}",
        peaks.data_queued_bytes
    );
    assert!(
        peaks.mailbox_depth <= DEPTH_BOUND,
        "b's mailbox held {} (bound {DEPTH_BOUND})",
        peaks.mailbox_depth
    );
    assert!(
        peaks.rss_growth < 64 << 20,
        "RSS grew by {} bytes",
        peaks.rss_growth
    );
    a.shutdown(GRACE).await.unwrap();
    b.shutdown(GRACE).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_send_waits_for_mailbox_room() {
    let _serial = SERIAL.lock().await;
    let node = Node::builder()
        .arbiters(1)
        .track_mailbox_depth(true)
        .start()
        .unwrap();
    let seen = Arc::new(AtomicU64::new(0));
    node.spawn(sink(&seen)).await.unwrap();
    let to_sink = node.service("sink");
    let n = count() / 4;
    let producer = tokio::spawn(async move {
        for i in 0..n {
            to_sink.send(Num(i)).await.unwrap();
        }
    });
    let peaks = watch_until(
        || seen.load(Ordering::Relaxed) >= n,
        Duration::from_secs(120),
        || (0, node.stats("sink").map_or(0, |s| s.mailbox_depth)),
    )
    .await;
    producer.await.unwrap();
    assert!(
        peaks.mailbox_depth <= DEPTH_BOUND,
        "the mailbox held {} (bound {DEPTH_BOUND})",
        peaks.mailbox_depth
    );
    // A tell to a missing service still fails at once.
    assert!(matches!(
        node.service("nope").send(Num(0)).await,
        Err(CallError::UnknownService { .. })
    ));
    node.shutdown(GRACE).await.unwrap();
}

/// A number in a sequence, told from another node.
#[derive(Debug, Clone, actix::Message, Serialize, Deserialize, RemoteMessage)]
#[rtype(result = "()")]
#[msa(name = "flow.Seq")]
struct Seq(u64);

/// Checks that it is told 0, 1, 2, … in order, and that nothing is handled
/// while one of its own atomic replies holds it.
#[derive(Default)]
struct Ordered {
    next: u64,
    holding: bool,
    seen: Arc<AtomicU64>,
    out_of_order: Arc<AtomicU64>,
    overtook: Arc<AtomicU64>,
}
impl Service for Ordered {}
impl Handler<Seq> for Ordered {
    fn handle(&mut self, m: Seq, _: &mut ServiceContext<'_, Self>) -> Reply<Self, ()> {
        use actix::fut::ActorFutureExt;
        if self.holding {
            self.overtook.fetch_add(1, Ordering::Relaxed);
        }
        if m.0 != self.next {
            self.out_of_order.fetch_add(1, Ordering::Relaxed);
        }
        self.next = m.0 + 1;
        self.seen.fetch_add(1, Ordering::Relaxed);
        if m.0 % 97 == 5 {
            // Holds the instance for a turn of its thread: whatever came
            // with this message (its batch too) waits behind it.
            self.holding = true;
            return Reply::atomic(actix::fut::wrap_future(tokio::task::yield_now()).map(
                |(), act: &mut ServiceActor<Ordered>, _: &mut actix::Context<_>| {
                    act.holding = false;
                },
            ));
        }
        Reply::ready(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_tells_served_in_batches_keep_their_order_and_the_mailbox_bound() {
    const CAPACITY: usize = 16;
    let b = Node::builder()
        .name("ordered-b")
        .arbiters(1)
        .listen("127.0.0.1:0".parse().unwrap())
        .secret(SECRET)
        .track_mailbox_depth(true)
        .start()
        .unwrap();
    let a = Node::builder()
        .name("ordered-a")
        .arbiters(1)
        .listen("127.0.0.1:0".parse().unwrap())
        .secret(SECRET)
        .seed(b.remote_addr().unwrap())
        .start()
        .unwrap();
    let mut wa = a.watch();
    let seen = Arc::new(AtomicU64::new(0));
    let out_of_order = Arc::new(AtomicU64::new(0));
    let overtook = Arc::new(AtomicU64::new(0));
    let (s, o, t) = (seen.clone(), out_of_order.clone(), overtook.clone());
    b.spawn(
        ServiceSpec::new("ordered", move || Ordered {
            seen: s.clone(),
            out_of_order: o.clone(),
            overtook: t.clone(),
            ..Ordered::default()
        })
        .handles::<Seq>()
        .mailbox_capacity(CAPACITY),
    )
    .await
    .unwrap();
    loop {
        let e = tokio::time::timeout(Duration::from_secs(15), wa.next())
            .await
            .expect("the service's table reaches a")
            .unwrap();
        if matches!(e, RegistryEvent::RemoteAdded { ref service, .. } if service == "ordered") {
            break;
        }
    }
    let n = 100_000u64;
    let to = a.service("ordered");
    // `tell` (fails fast when the connection's queue is full: then the
    // same number is told again) and `send`, alternately, so the
    // connection carries long runs of plain tells.
    let producer = tokio::spawn(async move {
        for i in 0..n {
            if i % 2 == 0 {
                loop {
                    match to.tell(Seq(i)) {
                        Ok(()) => break,
                        Err(CallError::Overloaded { .. }) => tokio::task::yield_now().await,
                        Err(e) => panic!("tell {i}: {e}"),
                    }
                }
            } else {
                to.send(Seq(i)).await.unwrap();
            }
        }
    });
    // A producer that failed ends the wait too (its error is shown below).
    let peaks = watch_until(
        || seen.load(Ordering::Relaxed) >= n || producer.is_finished(),
        Duration::from_secs(120),
        || (0, b.stats("ordered").map_or(0, |s| s.mailbox_depth)),
    )
    .await;
    producer.await.unwrap();
    let s2 = seen.clone();
    msa_runtime::test_support::eventually("every tell handled", Duration::from_secs(30), || {
        let s2 = s2.clone();
        async move { s2.load(Ordering::Relaxed) >= n }
    })
    .await;
    assert_eq!(seen.load(Ordering::Relaxed), n, "every tell handled once");
    assert_eq!(
        out_of_order.load(Ordering::Relaxed),
        0,
        "tells out of order"
    );
    assert_eq!(
        overtook.load(Ordering::Relaxed),
        0,
        "a tell was handled while an atomic reply held the instance"
    );
    // The capacity, plus the message that fills it (one sender), plus
    // what moved while the depth was read.
    assert!(
        peaks.mailbox_depth <= CAPACITY as u64 + 2,
        "the mailbox held {} (capacity {CAPACITY})",
        peaks.mailbox_depth
    );
    a.shutdown(GRACE).await.unwrap();
    b.shutdown(GRACE).await.unwrap();
}
