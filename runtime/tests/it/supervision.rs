//! Supervision and fault containment: panics fail only their actor, the
//! supervisor restarts fresh instances per strategy, policy and intensity.

use std::future::IntoFuture;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::*;
use msa_runtime::prelude::*;
use msa_runtime::{Backoff, RegistryEvent, ServiceState, SpawnError};

fn one_arbiter(name: &str) -> Node {
    Node::builder().name(name).arbiters(1).start().unwrap()
}

#[tokio::test]
async fn handler_panic_fails_only_that_instance_and_restart_is_fresh() {
    // One arbiter: both services share its thread.
    let node = one_arbiter("contain");
    let mut w = node.watch();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = node
        .spawn(full_spec("c", counting_factory(&calls)))
        .await
        .unwrap();
    let other = node.spawn(full_spec("other", Counter::new)).await.unwrap();
    other.ask(Incr).await.unwrap();
    for _ in 0..3 {
        c.ask(Incr).await.unwrap();
    }
    let r = c.ask(Boom).await;
    assert_eq!(
        r,
        Err(CallError::InstanceDied {
            service: "c".into()
        })
    );
    let reason = removed(&mut w, "c").await;
    assert!(
        reason.contains("boom in handler"),
        "reason carries the panic: {reason}"
    );
    restarted(&mut w, "c").await;
    assert_eq!(
        c.ask(Get).await.unwrap(),
        0,
        "a fresh instance from the factory"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(
        other.ask(Get).await.unwrap(),
        1,
        "the neighbour on the same thread kept its state"
    );
    let s = node.stats("c").unwrap();
    assert_eq!((s.failures, s.restarts), (1, 1));
    node.shutdown(GRACE).await.unwrap();
}

#[tokio::test]
async fn panic_in_act_and_atomic_futures_fails_the_instance() {
    let node = one_arbiter("actfut");
    let mut w = node.watch();
    let c = node.spawn(full_spec("c", Counter::new)).await.unwrap();
    for boom in 0..2 {
        c.ask(Incr).await.unwrap();
        let r = if boom == 0 {
            c.ask(BoomAct).await
        } else {
            c.ask(BoomAtomic).await
        };
        assert_eq!(
            r,
            Err(CallError::InstanceDied {
                service: "c".into()
            })
        );
        restarted(&mut w, "c").await;
        assert_eq!(c.ask(Get).await.unwrap(), 0);
    }
    assert_eq!(node.stats("c").unwrap().failures, 2);
    node.shutdown(GRACE).await.unwrap();
}

#[tokio::test]
async fn panic_in_detached_future_fails_only_that_request() {
    let node = one_arbiter("detached");
    let c = node.spawn(full_spec("c", Counter::new)).await.unwrap();
    c.ask(Incr).await.unwrap();
    match c.ask(BoomAsync).await {
        Err(CallError::HandlerPanicked { service, message }) => {
            assert_eq!(service, "c");
            assert!(message.contains("boom in detached future"));
        }
        other => panic!("expected HandlerPanicked, got {other:?}"),
    }
    assert_eq!(c.ask(Get).await.unwrap(), 1, "state untouched, no restart");
    let s = node.stats("c").unwrap();
    assert_eq!((s.panicked_requests, s.failures, s.restarts), (1, 0, 0));
    node.shutdown(GRACE).await.unwrap();
}

#[tokio::test]
async fn callers_queued_behind_a_crash_get_an_error_not_a_hang() {
    let node = one_arbiter("queued");
    let c = node.spawn(full_spec("c", Counter::new)).await.unwrap();
    c.tell(SlowAtomic(Duration::from_millis(50))).unwrap();
    c.tell(Boom).unwrap();
    let r = tokio::time::timeout(Duration::from_secs(5), c.ask(Get).into_future()).await;
    assert_eq!(
        r.expect("no hang"),
        Err(CallError::InstanceDied {
            service: "c".into()
        })
    );
    node.shutdown(GRACE).await.unwrap();
}

/// Panics in `started` on its second start (its first restart).
struct FailsSecondStart {
    starts: Arc<AtomicUsize>,
}
impl Service for FailsSecondStart {
    fn started(&mut self, _: &mut ServiceContext<'_, Self>) {
        if self.starts.fetch_add(1, Ordering::SeqCst) == 1 {
            panic!("started failed");
        }
    }
}
impl Handler<Get> for FailsSecondStart {
    fn handle(&mut self, _: Get, _: &mut ServiceContext<'_, Self>) -> Reply<Self, u64> {
        Reply::ready(self.starts.load(Ordering::SeqCst) as u64)
    }
}
impl Handler<StopMe> for FailsSecondStart {
    fn handle(&mut self, _: StopMe, ctx: &mut ServiceContext<'_, Self>) -> Reply<Self, ()> {
        ctx.stop();
        Reply::ready(())
    }
}

#[tokio::test]
async fn a_panic_in_started_counts_as_a_failure() {
    let node = one_arbiter("started");
    let starts = Arc::new(AtomicUsize::new(0));
    let s2 = starts.clone();
    let svc = node
        .spawn(
            ServiceSpec::new("f", move || FailsSecondStart { starts: s2.clone() })
                .handles::<Get>()
                .handles_local::<StopMe>(),
        )
        .await
        .unwrap();
    // A normal stop restarts it; that start panics in `started`, a failure,
    // so it is restarted once more (restarts apply to children that ran).
    svc.ask(StopMe).await.unwrap();
    msa_runtime::test_support::eventually("the third start", WAIT, || async {
        svc.ask(Get).await == Ok(3)
    })
    .await;
    let s = node.stats("f").unwrap();
    assert_eq!((s.failures, s.restarts), (1, 2));
    node.shutdown(GRACE).await.unwrap();
}

#[tokio::test]
async fn factory_that_always_panics_escalates_and_the_node_keeps_serving() {
    let node = one_arbiter("factory");
    let mut w = node.watch();
    let ok = node.spawn(full_spec("ok", Counter::new)).await.unwrap();
    let err = node
        .spawn(full_spec("bad", || panic!("factory says no")).intensity(2, Duration::from_secs(10)))
        .await
        .unwrap_err();
    match err {
        SpawnError::StartFailed { child, reason } => {
            assert_eq!(child, "bad");
            assert!(reason.contains("escalated"), "{reason}");
        }
        e => panic!("unexpected {e}"),
    }
    wait_event(
        &mut w,
        |e| matches!(e, RegistryEvent::Failed { service } if service == "bad"),
    )
    .await;
    assert_eq!(node.service_state("bad"), Some(ServiceState::Failed));
    assert_eq!(
        node.stats("bad").unwrap().failures,
        1,
        "a failing first start is not retried (OTP's start_child)"
    );
    assert!(matches!(
        node.service("bad").ask(Get).await,
        Err(CallError::NoInstance { .. })
    ));
    assert_eq!(
        ok.ask(Incr).await.unwrap(),
        1,
        "every other service keeps serving"
    );
    node.shutdown(GRACE).await.unwrap();
}

#[tokio::test]
async fn restart_policies_permanent_transient_temporary() {
    let node = one_arbiter("policies");
    let mut w = node.watch();
    let perm = node.spawn(full_spec("perm", Counter::new)).await.unwrap();
    let trans = node
        .spawn(full_spec("trans", Counter::new).restart(Restart::Transient))
        .await
        .unwrap();
    let temp = node
        .spawn(full_spec("temp", Counter::new).restart(Restart::Temporary))
        .await
        .unwrap();

    // A normal stop: permanent restarts, transient does not.
    perm.ask(StopMe).await.unwrap();
    restarted(&mut w, "perm").await;
    assert_eq!(perm.ask(Get).await.unwrap(), 0);
    trans.ask(StopMe).await.unwrap();
    removed(&mut w, "trans").await;

    // A failure: temporary is not restarted either.
    let _ = temp.ask(Boom).await;
    removed(&mut w, "temp").await;
    // Let any (wrong) restart show up before we look: a restart of perm is our fence.
    perm.ask(StopMe).await.unwrap();
    restarted(&mut w, "perm").await;
    assert!(matches!(
        trans.ask(Get).await,
        Err(CallError::NoInstance { .. })
    ));
    assert!(matches!(
        temp.ask(Get).await,
        Err(CallError::NoInstance { .. })
    ));
    assert_eq!(node.stats("trans").unwrap().restarts, 0);
    assert_eq!(node.stats("temp").unwrap().restarts, 0);
    node.shutdown(GRACE).await.unwrap();
}

#[tokio::test]
async fn transient_restarts_after_a_failure() {
    let node = one_arbiter("transfail");
    let mut w = node.watch();
    let trans = node
        .spawn(full_spec("t", Counter::new).restart(Restart::Transient))
        .await
        .unwrap();
    let _ = trans.ask(Boom).await;
    restarted(&mut w, "t").await;
    assert_eq!(trans.ask(Incr).await.unwrap(), 1);
    node.shutdown(GRACE).await.unwrap();
}

fn tree(strategy: Strategy, log: &Log) -> SupervisorSpec {
    let (la, lb, lc) = (log.clone(), log.clone(), log.clone());
    SupervisorSpec::new("tree", strategy)
        .service(full_spec("a", move || Counter::logged("a", &la)))
        .service(full_spec("b", move || Counter::logged("b", &lb)))
        .service(full_spec("c", move || Counter::logged("c", &lc)))
}

#[tokio::test]
async fn children_start_in_order_and_stop_in_reverse_order() {
    let node = Node::builder().name("order").arbiters(2).start().unwrap();
    let log = Log::default();
    node.spawn_supervisor(tree(Strategy::OneForOne, &log))
        .await
        .unwrap();
    assert_eq!(log.entries(), ["started a", "started b", "started c"]);
    node.shutdown(GRACE).await.unwrap();
    assert_eq!(
        log.entries(),
        [
            "started a",
            "started b",
            "started c",
            "stopped c",
            "stopped b",
            "stopped a"
        ]
    );
}

#[tokio::test]
async fn one_for_all_restarts_every_sibling_in_order() {
    let node = Node::builder().name("ofa").arbiters(2).start().unwrap();
    let mut w = node.watch();
    let log = Log::default();
    node.spawn_supervisor(tree(Strategy::OneForAll, &log))
        .await
        .unwrap();
    node.service("a").ask(Incr).await.unwrap();
    node.service("c").ask(Incr).await.unwrap();
    let _ = node.service("b").ask(Boom).await;
    restarted_all(&mut w, &["a", "b", "c"]).await;
    // Wait until c's new instance is up (every instance reports started).
    assert_eq!(node.service("c").ask(Get).await.unwrap(), 0);
    assert_eq!(
        node.service("a").ask(Get).await.unwrap(),
        0,
        "a was restarted fresh"
    );
    let e = log.entries();
    let after: Vec<&str> = e[3..].iter().map(String::as_str).collect();
    // As OTP: b died; its siblings were stopped, last first; then all
    // three started again in start order (b not before the others stopped).
    assert_eq!(
        after,
        [
            "stopped b",
            "stopped c",
            "stopped a",
            "started a",
            "started b",
            "started c"
        ],
        "{e:?}"
    );
    node.shutdown(GRACE).await.unwrap();
}

#[tokio::test]
async fn rest_for_one_restarts_the_failed_child_and_those_after_it() {
    let node = Node::builder().name("rfo").arbiters(2).start().unwrap();
    let mut w = node.watch();
    let log = Log::default();
    node.spawn_supervisor(tree(Strategy::RestForOne, &log))
        .await
        .unwrap();
    node.service("a").ask(Incr).await.unwrap();
    node.service("c").ask(Incr).await.unwrap();
    let _ = node.service("b").ask(Boom).await;
    restarted_all(&mut w, &["b", "c"]).await;
    assert_eq!(node.service("c").ask(Get).await.unwrap(), 0, "c restarted");
    assert_eq!(node.service("a").ask(Get).await.unwrap(), 1, "a untouched");
    assert_eq!(node.stats("a").unwrap().restarts, 0);
    node.shutdown(GRACE).await.unwrap();
}

#[tokio::test]
async fn exceeding_intensity_escalates_to_the_parent_supervisor() {
    let node = one_arbiter("escalate");
    let mut w = node.watch();
    let spec = SupervisorSpec::new("outer", Strategy::OneForOne)
        .intensity(5, Duration::from_secs(30))
        .service(full_spec("x", Counter::new).intensity(1, Duration::from_secs(30)));
    node.spawn_supervisor(spec).await.unwrap();
    let x = node.service("x");
    x.ask(Incr).await.unwrap();
    let _ = x.ask(Boom).await;
    restarted(&mut w, "x").await; // within x's intensity
    x.ask(Incr).await.unwrap();
    let _ = x.ask(Boom).await; // exceeds x's intensity: x's supervisor gives up
    wait_event(
        &mut w,
        |e| matches!(e, RegistryEvent::Failed { service } if service == "x"),
    )
    .await;
    // ... and the outer supervisor restarts it as a whole.
    restarted(&mut w, "x").await;
    assert_eq!(x.ask(Get).await.unwrap(), 0);
    assert_ne!(node.service_state("x"), Some(ServiceState::Failed));
    node.shutdown(GRACE).await.unwrap();
}

#[tokio::test]
async fn backoff_delays_the_restart() {
    let node = one_arbiter("backoff");
    let mut w = node.watch();
    let c = node
        .spawn(full_spec("c", Counter::new).backoff(Backoff::exponential(
            Duration::from_millis(300),
            Duration::from_secs(2),
        )))
        .await
        .unwrap();
    let t0 = Instant::now();
    let _ = c.ask(Boom).await;
    restarted(&mut w, "c").await;
    assert!(
        t0.elapsed() >= Duration::from_millis(300),
        "restarted after {:?}",
        t0.elapsed()
    );
    node.shutdown(GRACE).await.unwrap();
}

#[tokio::test]
async fn service_ref_survives_restarts_and_round_robins() {
    let node = Node::builder().name("rr").arbiters(2).start().unwrap();
    let mut w = node.watch();
    let c = node
        .spawn(full_spec("c", Counter::new).instances(3))
        .await
        .unwrap();
    for _ in 0..30 {
        c.ask(Incr).await.unwrap();
    }
    let per: Vec<u64> = c
        .ask_all(Get)
        .await
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(per, [10, 10, 10], "round-robin spreads evenly");
    let _ = c.ask(Boom).await;
    restarted(&mut w, "c").await;
    assert_eq!(node.instances("c").len(), 3);
    let total: u64 = c
        .ask_all(Get)
        .await
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .sum();
    assert_eq!(total, 20, "one instance was replaced by a fresh one");
    node.shutdown(GRACE).await.unwrap();
}
