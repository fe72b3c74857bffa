//! An ask on a full mailbox waits for room (without spinning), goes in when
//! the instance takes a message, and fails at once if the instance dies.

use std::future::{Future, IntoFuture};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::support::GRACE;
use msa_runtime::prelude::*;
use tokio::sync::Notify;

/// Holds the instance (no other message is handled) until `release` is
/// notified; notifies `taken` when the instance takes it.
#[derive(actix::Message)]
#[rtype(result = "u64")]
struct Hold {
    taken: Arc<Notify>,
    release: Arc<Notify>,
}

#[derive(actix::Message)]
#[rtype(result = "u64")]
struct Pass(u64);

#[derive(actix::Message)]
#[rtype(result = "()")]
struct Crash;

struct Gate;
impl Service for Gate {}

impl Handler<Hold> for Gate {
    fn handle(&mut self, m: Hold, _: &mut ServiceContext<'_, Self>) -> Reply<Self, u64> {
        m.taken.notify_one();
        Reply::atomic(actix::fut::wrap_future(async move {
            m.release.notified().await;
            0
        }))
    }
}
impl Handler<Pass> for Gate {
    fn handle(&mut self, m: Pass, _: &mut ServiceContext<'_, Self>) -> Reply<Self, u64> {
        Reply::ready(m.0)
    }
}
impl Handler<Crash> for Gate {
    fn handle(&mut self, _: Crash, _: &mut ServiceContext<'_, Self>) -> Reply<Self, ()> {
        panic!("crash while callers wait for room");
    }
}

const CAPACITY: usize = 2;

async fn gate(name: &str) -> (Node, ServiceRef) {
    let node = crate::support::node(name);
    let svc = node
        .spawn(
            ServiceSpec::new("gate", || Gate)
                .mailbox_capacity(CAPACITY)
                .handles_local::<Hold>()
                .handles_local::<Pass>()
                .handles_local::<Crash>(),
        )
        .await
        .unwrap();
    (node, svc)
}

/// Polls `f` once.
async fn poll_once<F: Future + Unpin>(f: &mut F) -> Poll<F::Output> {
    std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut *f).poll(cx))).await
}

/// Counts how often the inner future is polled.
struct Counted<F> {
    inner: Pin<Box<F>>,
    polls: Arc<AtomicUsize>,
    first: Arc<Notify>,
}

impl<F: Future> Future for Counted<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        if self.polls.fetch_add(1, Ordering::SeqCst) == 0 {
            self.first.notify_one();
        }
        self.inner.as_mut().poll(cx)
    }
}

/// Holds the gate (waits until the instance took the held message: its
/// taking a message later would unpark actix's sender), then fills its
/// mailbox past capacity (after `before`, if any). Tells ignore the
/// capacity; the next ask goes in and parks the sender, so the one after it
/// finds the mailbox full. Returns the held ask and its release.
async fn hold_and_fill(
    svc: &ServiceRef,
    before: Option<Crash>,
) -> (
    Pin<Box<impl Future<Output = Result<u64, CallError>> + '_>>,
    Arc<Notify>,
) {
    let taken = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let mut held = Box::pin(
        svc.ask(Hold {
            taken: taken.clone(),
            release: release.clone(),
        })
        .into_future(),
    );
    assert!(poll_once(&mut held).await.is_pending());
    taken.notified().await;
    if let Some(c) = before {
        svc.tell(c).unwrap();
    }
    for i in 0..CAPACITY as u64 + 2 {
        svc.tell(Pass(i)).unwrap();
    }
    (held, release)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ask_on_a_full_mailbox_waits_without_spinning_then_goes_in() {
    let (node, svc) = gate("room").await;
    let (held, release) = hold_and_fill(&svc, None).await;
    let mut first = pin!(svc.ask(Pass(1)).into_future());
    assert!(
        poll_once(&mut first).await.is_pending(),
        "held behind the gate"
    );

    let polls = Arc::new(AtomicUsize::new(0));
    let polled = Arc::new(Notify::new());
    let waiting = svc.clone();
    let second = tokio::spawn(Counted {
        inner: Box::pin(async move { waiting.ask(Pass(2)).await }),
        polls: polls.clone(),
        first: polled.clone(),
    });
    polled.notified().await;
    // An observation window, not a synchronisation: an ask that yielded and
    // retried in a loop would be polled thousands of times in it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let seen = polls.load(Ordering::SeqCst);
    assert!(seen <= 3, "the waiting ask was polled {seen} times");
    assert!(!second.is_finished(), "no room yet: the ask waits");

    release.notify_one();
    assert_eq!(held.await, Ok(0));
    assert_eq!(first.await, Ok(1));
    let got = tokio::time::timeout(Duration::from_secs(10), second)
        .await
        .expect("the waiting ask goes in once there is room")
        .unwrap();
    assert_eq!(got, Ok(2));
    node.shutdown(GRACE).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ask_waiting_for_room_fails_at_once_when_the_instance_dies() {
    let (node, svc) = gate("room-crash").await;
    let mut watch = node.watch();
    let (held, release) = hold_and_fill(&svc, Some(Crash)).await;
    let mut first = pin!(svc.ask(Pass(1)).into_future());
    assert!(poll_once(&mut first).await.is_pending());

    let polled = Arc::new(Notify::new());
    let waiting = svc.clone();
    let second = tokio::spawn(Counted {
        inner: Box::pin(async move { waiting.ask(Pass(2)).timeout(Duration::from_secs(30)).await }),
        polls: Arc::new(AtomicUsize::new(0)),
        first: polled.clone(),
    });
    polled.notified().await;
    let t0 = Instant::now();
    // The held message completes, then `Crash` kills the instance.
    release.notify_one();
    let got = tokio::time::timeout(Duration::from_secs(10), second)
        .await
        .expect("the waiting ask ends long before its 30 s timeout")
        .unwrap();
    assert!(
        matches!(got, Err(CallError::InstanceDied { .. })),
        "got {got:?}"
    );
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    assert_eq!(held.await, Ok(0));
    assert!(matches!(first.await, Err(CallError::InstanceDied { .. })));
    // The restarted instance serves again.
    crate::support::wait_event(&mut watch, |e| {
        matches!(e, msa_runtime::RegistryEvent::Restarted { .. })
    })
    .await;
    assert_eq!(svc.ask(Pass(3)).await, Ok(3));
    node.shutdown(GRACE).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_callers_on_a_small_mailbox_all_get_through() {
    // No wake-up is lost: 64 callers × 200 asks through a mailbox of 2, with
    // tells (which ignore the capacity) mixed in.
    let (node, svc) = gate("room-many").await;
    let tasks: Vec<_> = (0..64u64)
        .map(|c| {
            let svc = svc.clone();
            tokio::spawn(async move {
                for i in 0..200u64 {
                    let v = c * 1_000 + i;
                    assert_eq!(
                        svc.ask(Pass(v)).timeout(Duration::from_secs(30)).await,
                        Ok(v)
                    );
                    if i % 10 == 0 {
                        svc.tell(Pass(v)).unwrap();
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(60), t)
            .await
            .expect("every caller finishes")
            .unwrap();
    }
    let handled = node.stats("gate").unwrap().messages;
    assert_eq!(handled, 64 * 200 + 64 * 20);
    node.shutdown(GRACE).await.unwrap();
}
