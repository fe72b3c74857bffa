//! Node, services, ServiceRef: the basic paths and their typed errors.

use std::future::IntoFuture;
use std::time::Duration;

use crate::support::*;
use msa_runtime::prelude::*;
use msa_runtime::{Identity, SpawnError};

#[tokio::test]
async fn ask_and_tell_reach_the_service_in_order() {
    let node = node("basics");
    let svc = node.spawn(counter_spec("c")).await.unwrap();
    for _ in 0..100 {
        svc.tell(Incr).unwrap();
    }
    assert_eq!(
        svc.ask(Get).await.unwrap(),
        100,
        "tells from one sender arrive before a later ask"
    );
    assert_eq!(node.stats("c").unwrap().messages, 101);
    node.shutdown(GRACE).await.unwrap();
}

#[tokio::test]
async fn unknown_service_is_a_typed_error() {
    let node = node("unknown");
    let r = node.service("missing").ask(Get).await;
    assert_eq!(
        r,
        Err(CallError::UnknownService {
            service: "missing".into()
        })
    );
    assert!(matches!(
        node.service("missing").tell(Get),
        Err(CallError::UnknownService { .. })
    ));
    node.shutdown(GRACE).await.unwrap();
}

#[derive(Debug, actix::Message)]
#[rtype(result = "()")]
struct NotHandled;

#[tokio::test]
async fn unhandled_message_type_is_a_typed_error() {
    let node = node("unhandled");
    let svc = node.spawn(counter_spec("c")).await.unwrap();
    assert!(matches!(
        svc.ask(NotHandled).await,
        Err(CallError::UnhandledMessage { .. })
    ));
    assert!(matches!(
        svc.tell(NotHandled),
        Err(CallError::UnhandledMessage { .. })
    ));
    node.shutdown(GRACE).await.unwrap();
}

#[tokio::test]
async fn zero_instances_is_refused() {
    let node = node("zero");
    let r = node.spawn(counter_spec("c").instances(0)).await;
    assert_eq!(
        r.unwrap_err(),
        SpawnError::ZeroInstances {
            service: "c".into()
        }
    );
    node.shutdown(GRACE).await.unwrap();
}

#[tokio::test]
async fn duplicate_service_name_is_refused() {
    let node = node("dup");
    node.spawn(counter_spec("c")).await.unwrap();
    assert!(matches!(
        node.spawn(counter_spec("c")).await,
        Err(SpawnError::DuplicateService { .. })
    ));
    node.shutdown(GRACE).await.unwrap();
}

#[derive(Debug, actix::Message, serde::Serialize, serde::Deserialize, RemoteMessage)]
#[msa(name = "test.Incr")]
#[rtype(result = "u64")]
struct Impostor;
struct Other;
impl Service for Other {}
impl Handler<Impostor> for Other {
    fn handle(&mut self, _: Impostor, _: &mut ServiceContext<'_, Self>) -> Reply<Self, u64> {
        Reply::ready(0)
    }
}

#[tokio::test]
async fn duplicate_wire_name_is_refused_at_spawn() {
    let node = node("wire");
    node.spawn(counter_spec("c")).await.unwrap();
    let err = node
        .spawn(ServiceSpec::new("other", || Other).handles::<Impostor>())
        .await
        .unwrap_err();
    match err {
        SpawnError::DuplicateWireName { name, .. } => assert_eq!(name, "test.Incr"),
        e => panic!("unexpected {e}"),
    }
    assert!(node.service_state("other").is_none(), "nothing registered");
    node.shutdown(GRACE).await.unwrap();
}

#[tokio::test]
async fn invalid_names_are_refused() {
    let node = node("names");
    for bad in ["", "has space", "slash/name"] {
        assert!(matches!(
            node.spawn(counter_spec(bad)).await,
            Err(SpawnError::InvalidName { .. })
        ));
    }
    node.shutdown(GRACE).await.unwrap();
}

#[tokio::test]
async fn ask_times_out_with_a_typed_error_and_leaves_nothing_pending() {
    let node = node("timeout");
    let svc = node.spawn(counter_spec("c")).await.unwrap();
    let started = std::time::Instant::now();
    let r = svc
        .ask(SlowAtomic(Duration::from_secs(3)))
        .timeout(Duration::from_millis(50))
        .await;
    let took = started.elapsed();
    assert!(matches!(r, Err(CallError::Timeout { .. })), "{r:?}");
    assert!(took >= Duration::from_millis(50), "never early: {took:?}");
    assert!(
        took < Duration::from_secs(2),
        "well before the handler finishes: {took:?}"
    );
    assert_eq!(node.pending_asks(), 0);
    node.shutdown(Duration::from_millis(100)).await.unwrap();
}

#[tokio::test]
async fn dropped_ask_removes_its_pending_entry() {
    let node = node("drop");
    let svc = node.spawn(counter_spec("c")).await.unwrap();
    {
        let fut = std::pin::pin!(svc.ask(SlowAtomic(Duration::from_secs(2))).into_future());
        // Poll it once so it registers, then drop it.
        let r = tokio::time::timeout(Duration::from_millis(20), fut).await;
        assert!(r.is_err());
    }
    assert_eq!(node.pending_asks(), 0);
    node.shutdown(Duration::from_millis(100)).await.unwrap();
}

#[tokio::test]
async fn metadata_reaches_the_handler() {
    let node = node("meta");
    let svc = node.spawn(counter_spec("c")).await.unwrap();
    let who = svc
        .ask(WhoAmI)
        .metadata(Metadata::new().with_identity(Identity::new("alice", ["customer"])))
        .await
        .unwrap();
    assert_eq!(who.as_deref(), Some("alice"));
    assert_eq!(svc.ask(WhoAmI).await.unwrap(), None);
    node.shutdown(GRACE).await.unwrap();
}

#[tokio::test]
async fn an_expired_deadline_is_not_handled() {
    let node = node("expired");
    let svc = node.spawn(counter_spec("c")).await.unwrap();
    // Hold the instance, then queue an ask whose deadline passes while it waits.
    // (Messages from one sender arrive in order, so the Incr queues behind it.)
    svc.tell(SlowAtomic(Duration::from_millis(200))).unwrap();
    let late = svc.ask(Incr).timeout(Duration::from_millis(20)).await;
    assert!(matches!(late, Err(CallError::Timeout { .. })), "{late:?}");
    // A tell whose metadata deadline passes while queued is dropped unhandled.
    let deadline = std::time::Instant::now() + Duration::from_millis(20);
    svc.tell(SlowAtomic(Duration::from_millis(100))).unwrap();
    svc.tell_with(Incr, Metadata::new().with_deadline(deadline))
        .unwrap();
    // Once the instance is free again, the expired Incr must not have run.
    assert_eq!(svc.ask(Get).await.unwrap(), 0);
    assert_eq!(node.stats("c").unwrap().expired, 1);
    node.shutdown(GRACE).await.unwrap();
}

#[test]
fn node_starts_and_stops_from_plain_main() {
    let node = Node::builder().arbiters(1).start().unwrap();
    assert_eq!(node.arbiters(), 1);
    node.shutdown_blocking(GRACE).unwrap();
    assert!(matches!(
        node.shutdown_blocking(GRACE),
        Err(msa_runtime::NodeError::AlreadyShutDown)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_handle_is_send_sync_and_works_across_tasks() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<Node>();
    assert_send_sync::<ServiceRef>();
    let node = node("tasks");
    let svc = node.spawn(counter_spec("c").instances(3)).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let svc = svc.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..50 {
                svc.ask(Incr).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(node.stats("c").unwrap().messages, 400);
    node.shutdown(GRACE).await.unwrap();
}

#[tokio::test]
async fn two_nodes_side_by_side_share_nothing() {
    let a = node("a");
    let b = node("b");
    a.spawn(counter_spec("c")).await.unwrap();
    b.spawn(counter_spec("c")).await.unwrap();
    a.service("c").ask(Incr).await.unwrap();
    a.service("c").ask(Incr).await.unwrap();
    assert_eq!(b.service("c").ask(Get).await.unwrap(), 0);
    assert_eq!(a.service("c").ask(Get).await.unwrap(), 2);
    a.shutdown(GRACE).await.unwrap();
    assert_eq!(
        b.service("c").ask(Get).await.unwrap(),
        0,
        "b unaffected by a's shutdown"
    );
    b.shutdown(GRACE).await.unwrap();
}

#[tokio::test]
async fn one_caller_reaches_more_services_and_types_than_its_sender_cache_holds() {
    // The calling thread caches a sender per (instance, message type) in a
    // few dozen ways: 40 services × 2 message types evict each other
    // constantly, and every call must still reach its own service.
    let node = node("many");
    let mut svcs = Vec::new();
    for i in 0..40 {
        svcs.push(node.spawn(counter_spec(&format!("c{i}"))).await.unwrap());
    }
    for round in 1..=3u64 {
        for (i, svc) in svcs.iter().enumerate() {
            for _ in 0..=i {
                svc.tell(Incr).unwrap();
            }
            let expected = round * (i as u64 + 1);
            assert_eq!(svc.ask(Get).await.unwrap(), expected, "service c{i}");
        }
    }
    node.shutdown(GRACE).await.unwrap();
}
