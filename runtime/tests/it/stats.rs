//! Per-service counters a scrape reads: mailbox depth, ask latency of JSON
//! calls, and JSON calls' typed errors.

use crate::support::*;
use msa_runtime::prelude::*;
use msa_runtime::{JsonBody, JsonError};
use tokio::sync::oneshot;

/// Holds the instance (an atomic reply) until the sender side of `release`
/// is used; says on `taken` that it was taken from the mailbox.
struct Hold {
    taken: oneshot::Sender<()>,
    release: oneshot::Receiver<()>,
}
impl actix::Message for Hold {
    type Result = ();
}
impl Handler<Hold> for Counter {
    fn handle(&mut self, m: Hold, _: &mut ServiceContext<'_, Self>) -> Reply<Self, ()> {
        let _ = m.taken.send(());
        Reply::atomic(actix::fut::wrap_future(async move {
            let _ = m.release.await;
        }))
    }
}

fn depth_node(name: &str) -> Node {
    Node::builder()
        .name(name)
        .arbiters(2)
        .track_mailbox_depth(true)
        .start()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mailbox_depth_counts_what_waits_behind_a_busy_instance() {
    let node = depth_node("depth");
    let c = node
        .spawn(counter_spec("c").handles_local::<Hold>())
        .await
        .unwrap();
    assert_eq!(node.stats("c").unwrap().mailbox_depth, 0);
    let (taken_tx, taken_rx) = oneshot::channel();
    let (release_tx, release_rx) = oneshot::channel();
    c.tell(Hold {
        taken: taken_tx,
        release: release_rx,
    })
    .unwrap();
    taken_rx.await.unwrap();
    for _ in 0..5 {
        c.tell(Incr).unwrap();
    }
    let c2 = c.clone();
    let waiting = tokio::spawn(async move { c2.ask(Get).await });
    eventually("six queued", WAIT, || async {
        node.stats("c").unwrap().mailbox_depth == 6
    })
    .await;
    release_tx.send(()).unwrap();
    assert_eq!(waiting.await.unwrap().unwrap(), 5);
    eventually("drained", WAIT, || async {
        node.stats("c").unwrap().mailbox_depth == 0
    })
    .await;
    assert_eq!(node.stats("c").unwrap().messages, 7);
    node.shutdown(GRACE).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mailbox_depth_starts_again_from_zero_after_a_restart() {
    let node = depth_node("depth-restart");
    let mut w = node.watch();
    let c = node
        .spawn(counter_spec("c").handles_local::<Hold>())
        .await
        .unwrap();
    let (taken_tx, taken_rx) = oneshot::channel();
    let (release_tx, release_rx) = oneshot::channel::<()>();
    c.tell(Hold {
        taken: taken_tx,
        release: release_rx,
    })
    .unwrap();
    taken_rx.await.unwrap();
    for _ in 0..3 {
        c.tell(Incr).unwrap();
    }
    // Queued behind the hold: three Incrs, then a panic that fails the
    // instance once the hold is released.
    c.tell(Boom).unwrap();
    assert_eq!(node.stats("c").unwrap().mailbox_depth, 4);
    drop(release_tx);
    restarted(&mut w, "c").await;
    eventually("fresh instance, empty mailbox", WAIT, || async {
        node.stats("c").unwrap().mailbox_depth == 0
    })
    .await;
    assert_eq!(c.ask(Get).await.unwrap(), 0, "a fresh instance");
    node.shutdown(GRACE).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_calls_are_timed_and_fail_typed() {
    let node = node("json");
    node.spawn(counter_spec("c")).await.unwrap();
    assert_eq!(node.ask_latency("c").unwrap().count, 0);
    let out = node
        .call_json(
            "c",
            "test.Incr",
            JsonBody::Bytes(b"null"),
            Metadata::new(),
            None,
        )
        .unwrap()
        .await
        .unwrap();
    assert_eq!(out, b"1");
    let h = node.ask_latency("c").unwrap();
    assert_eq!((h.count, h.counts.iter().sum::<u64>()), (1, 1));
    assert!(node.ask_latency("nope").is_none());

    assert!(matches!(
        node.call_json(
            "c",
            "test.Nope",
            JsonBody::Bytes(b"null"),
            Metadata::new(),
            None
        ),
        Err(JsonError::UnknownMessage { .. })
    ));
    assert!(matches!(
        node.call_json(
            "c",
            "test.Incr",
            JsonBody::Bytes(b"nul"),
            Metadata::new(),
            None
        ),
        Err(JsonError::MalformedJson { .. })
    ));
    let unknown = node
        .call_json(
            "nope",
            "test.Incr",
            JsonBody::Bytes(b"null"),
            Metadata::new(),
            None,
        )
        .unwrap()
        .await;
    assert!(
        matches!(unknown, Err(CallError::UnknownService { .. })),
        "{unknown:?}"
    );
    assert_eq!(node.service_messages("c"), ["test.Get", "test.Incr"]);
    assert!(node.service_messages("nope").is_empty());
    let info = node.message_info("test.Incr").unwrap();
    assert_eq!(info.name, "test.Incr");
    // A unit struct: JSON `null`, traced from its serde shape.
    let schema = info.schema.unwrap();
    assert_eq!(schema["$defs"]["Incr"]["type"], "null", "{schema}");
    assert_eq!(info.reply_schema.unwrap()["type"], "integer");
    node.shutdown(GRACE).await.unwrap();
}

/// A message bincode cannot carry: internally tagged.
#[derive(Debug, serde::Serialize, serde::Deserialize, RemoteMessage)]
#[msa(name = "test.Tagged")]
#[serde(tag = "kind")]
enum Tagged {
    A { x: u32 },
}
impl actix::Message for Tagged {
    type Result = u32;
}
impl Handler<Tagged> for Counter {
    fn handle(&mut self, m: Tagged, _: &mut ServiceContext<'_, Self>) -> Reply<Self, u32> {
        let Tagged::A { x } = m;
        Reply::ready(x)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_bincode_cannot_carry_is_refused_at_spawn_unless_local() {
    let node = node("wire-safe");
    let err = node
        .spawn(counter_spec("c").handles::<Tagged>())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(
            err,
            msa_runtime::SpawnError::NotWireSafe {
                message: "test.Tagged",
                ..
            }
        ) && text.contains("deserialize_any")
            && text.contains("handles_local"),
        "{text}"
    );
    // The same type is fine for local callers only.
    let c = node
        .spawn(counter_spec("c").handles_local::<Tagged>())
        .await
        .unwrap();
    assert_eq!(c.ask(Tagged::A { x: 3 }).await.unwrap(), 3);
    node.shutdown(GRACE).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mailbox_depth_is_not_counted_unless_asked_for() {
    let node = node("no-depth");
    assert!(!node.tracks_mailbox_depth());
    let c = node
        .spawn(counter_spec("c").handles_local::<Hold>())
        .await
        .unwrap();
    let (taken_tx, taken_rx) = oneshot::channel();
    let (release_tx, release_rx) = oneshot::channel();
    c.tell(Hold {
        taken: taken_tx,
        release: release_rx,
    })
    .unwrap();
    taken_rx.await.unwrap();
    c.tell(Incr).unwrap();
    assert_eq!(node.stats("c").unwrap().mailbox_depth, 0);
    release_tx.send(()).unwrap();
    assert_eq!(c.ask(Get).await.unwrap(), 1);
    node.shutdown(GRACE).await.unwrap();
}
