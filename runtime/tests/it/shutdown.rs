//! Shutdown: drain with a deadline, refuse new calls, fail what is left.

use std::future::{Future, IntoFuture};
use std::time::{Duration, Instant};

use crate::support::*;
use msa_runtime::prelude::*;
use msa_runtime::{NodeError, ServiceState, SpawnError};

#[tokio::test]
async fn shutdown_runs_stopping_and_stopped_and_marks_services_stopped() {
    let node = crate::support::node("drain");
    let log = Log::default();
    let l = log.clone();
    node.spawn(full_spec("c", move || Counter::logged("c", &l)).instances(2))
        .await
        .unwrap();
    node.shutdown(GRACE).await.unwrap();
    let e = log.entries();
    assert_eq!(e.iter().filter(|s| *s == "stopped c").count(), 2, "{e:?}");
    assert_eq!(node.service_state("c"), Some(ServiceState::Stopped));
}

#[tokio::test]
async fn new_calls_are_refused_once_shutdown_begins() {
    let node = crate::support::node("refuse");
    let svc = node.spawn(full_spec("c", Counter::new)).await.unwrap();
    node.shutdown(GRACE).await.unwrap();
    assert_eq!(svc.ask(Get).await, Err(CallError::ShuttingDown));
    assert_eq!(svc.tell(Incr), Err(CallError::ShuttingDown));
    assert_eq!(
        node.spawn(full_spec("d", Counter::new)).await.unwrap_err(),
        SpawnError::ShuttingDown
    );
    assert_eq!(node.shutdown(GRACE).await, Err(NodeError::AlreadyShutDown));
}

/// Spawns an ask of `msg` and returns once it is in the service's mailbox
/// (`into_future` queues it); the task gives the ask's outcome.
async fn ask_in_mailbox(
    svc: &ServiceRef,
    msg: SlowAtomic,
) -> tokio::task::JoinHandle<Result<u64, CallError>> {
    let (queued_tx, queued_rx) = tokio::sync::oneshot::channel();
    let svc = svc.clone();
    let running = tokio::spawn(async move {
        let fut = svc.ask(msg).into_future();
        let _ = queued_tx.send(());
        fut.await
    });
    queued_rx.await.unwrap();
    running
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_handle_is_refused_while_the_instances_still_run() {
    let node = crate::support::node("warm");
    let svc = node.spawn(full_spec("c", Counter::new)).await.unwrap();
    // Warm the handle's fast path (cached entry, cached instance).
    svc.tell(Incr).unwrap();
    assert_eq!(svc.ask(Get).await, Ok(1));
    // Keep the instance alive and busy while shutdown begins.
    let running = ask_in_mailbox(&svc, SlowAtomic(Duration::from_millis(300))).await;
    let mut shutdown = Box::pin(node.shutdown(GRACE));
    // One poll runs the shutdown up to its first wait: from there on, calls
    // are refused even though the instance is still there to take them.
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    assert!(shutdown.as_mut().poll(&mut cx).is_pending());
    assert_eq!(svc.tell(Incr), Err(CallError::ShuttingDown));
    assert_eq!(svc.ask(Get).await, Err(CallError::ShuttingDown));
    shutdown.await.unwrap();
    assert_eq!(
        running.await.unwrap(),
        Ok(1),
        "the running handler finished"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_handlers_may_finish_within_the_grace_period() {
    let node = crate::support::node("finish");
    let svc = node.spawn(full_spec("c", Counter::new)).await.unwrap();
    svc.ask(Incr).await.unwrap();
    let running = ask_in_mailbox(&svc, SlowAtomic(Duration::from_millis(150))).await;
    node.shutdown(GRACE).await.unwrap();
    assert_eq!(
        running.await.unwrap(),
        Ok(1),
        "the running handler finished"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_is_still_running_at_the_deadline_fails_with_shutting_down() {
    let node = crate::support::node("deadline");
    let svc = node.spawn(full_spec("c", Counter::new)).await.unwrap();
    // Hold the instance far past the grace period, and queue asks behind it.
    svc.tell(SlowAtomic(Duration::from_secs(30))).unwrap();
    let mut waiting = Vec::new();
    let mut queued = Vec::new();
    for _ in 0..10 {
        let svc = svc.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        queued.push(rx);
        waiting.push(tokio::spawn(async move {
            let fut = svc.ask(Get).timeout(Duration::from_secs(60)).into_future();
            let _ = tx.send(());
            fut.await
        }));
    }
    for q in queued {
        q.await.unwrap();
    }
    let t0 = Instant::now();
    node.shutdown(Duration::from_millis(200)).await.unwrap();
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(200),
        "waited for the grace period: {took:?}"
    );
    assert!(
        took < Duration::from_secs(10),
        "then killed what was left: {took:?}"
    );
    for w in waiting {
        let r = tokio::time::timeout(Duration::from_secs(5), w)
            .await
            .expect("no hang")
            .unwrap();
        assert_eq!(r, Err(CallError::ShuttingDown));
    }
}

#[derive(Debug, actix::Message)]
#[rtype(result = "Result<(), NodeError>")]
struct ShutDownYourNode;

struct Suicidal {
    node: std::sync::Arc<std::sync::OnceLock<Node>>,
}
impl Service for Suicidal {}
impl Handler<ShutDownYourNode> for Suicidal {
    fn handle(
        &mut self,
        _: ShutDownYourNode,
        _: &mut ServiceContext<'_, Self>,
    ) -> Reply<Self, Result<(), NodeError>> {
        let node = self.node.get().cloned();
        Reply::future(async move {
            match node {
                Some(n) => n.shutdown(GRACE).await,
                None => Ok(()),
            }
        })
    }
}

#[tokio::test]
async fn shutdown_from_a_node_thread_is_refused() {
    let node = crate::support::node("self");
    let cell = std::sync::Arc::new(std::sync::OnceLock::new());
    let _ = cell.set(node.clone());
    let c2 = cell.clone();
    let svc = node
        .spawn(
            ServiceSpec::new("s", move || Suicidal { node: c2.clone() })
                .handles_local::<ShutDownYourNode>(),
        )
        .await
        .unwrap();
    assert_eq!(
        svc.ask(ShutDownYourNode).await.unwrap(),
        Err(NodeError::ShutdownFromNodeThread)
    );
    node.shutdown(GRACE).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_remote_calls_get_node_down_while_local_calls_go_on() {
    let clustered = |name: &str, seed: Option<String>| {
        let mut b = Node::builder()
            .name(name)
            .arbiters(1)
            .listen("127.0.0.1:0".parse().unwrap())
            .secret(b"refuse-secret".to_vec());
        if let Some(s) = seed {
            b = b.seed(s);
        }
        b.start().unwrap()
    };
    let a = clustered("refuse-a", None);
    let b = clustered("refuse-b", a.remote_addr());
    let mut wb = b.watch();
    a.spawn(counter_spec("count")).await.unwrap();
    msa_runtime::test_support::remote_added(Duration::from_secs(15), &mut wb, &["count"]).await;
    assert_eq!(b.service("count").ask(Incr).await.unwrap(), 1);

    a.refuse_remote_calls();
    let refused = b.service("count").ask(Incr).await;
    assert!(
        matches!(&refused, Err(CallError::NodeDown { node }) if node == "refuse-a"),
        "{refused:?}"
    );
    // A JSON call forwarded to a is refused too.
    let json = match b.call_json(
        "count",
        "test.Get",
        msa_runtime::JsonBody::Bytes(b"null"),
        Metadata::default(),
        None,
    ) {
        Ok(reply) => reply.await.map(|_| ()).map_err(|e| format!("{e:?}")),
        Err(e) => Err(format!("{e:?}")),
    };
    assert!(json.is_err(), "a JSON call was served: {json:?}");
    // On a itself, calls go on (and the refused one was never handled).
    assert_eq!(a.service("count").ask(Incr).await.unwrap(), 2);
    b.shutdown(Duration::from_secs(5)).await.unwrap();
    a.shutdown(Duration::from_secs(5)).await.unwrap();
}
