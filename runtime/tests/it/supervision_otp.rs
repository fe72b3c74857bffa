//! Supervision checked against OTP's `supervisor` semantics (issue 12):
//! each test pins one rule where msa used to differ.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::support::*;
use msa_runtime::prelude::*;
use msa_runtime::test_support::eventually;
use msa_runtime::{RegistryEvent, ServiceState, SpawnError};

fn one_arbiter(name: &str) -> Node {
    Node::builder().name(name).arbiters(1).start().unwrap()
}

#[tokio::test]
async fn a_zero_or_sub_millisecond_restart_period_is_refused_at_spawn() {
    let node = one_arbiter("period");
    for within in [Duration::ZERO, Duration::from_nanos(1)] {
        let err = node
            .spawn(full_spec("p", Counter::new).intensity(1, within))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, SpawnError::InvalidIntensity { owner, .. } if owner == "p"),
            "{err}"
        );
        let err = node
            .spawn_supervisor(
                SupervisorSpec::new("tree", Strategy::OneForOne)
                    .intensity(1, within)
                    .service(full_spec("q", Counter::new)),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(&err, SpawnError::InvalidIntensity { owner, .. } if owner == "tree"),
            "{err}"
        );
        let err = node
            .spawn_supervisor(
                SupervisorSpec::new("outer", Strategy::OneForOne).supervisor(
                    SupervisorSpec::new("inner", Strategy::OneForAll)
                        .service(full_spec("r", Counter::new).intensity(3, within)),
                ),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(&err, SpawnError::InvalidIntensity { owner, .. } if owner == "r"),
            "{err}"
        );
    }
    // Nothing was registered by the refused spawns: the names are free.
    node.spawn(full_spec("p", Counter::new)).await.unwrap();
    node.shutdown(GRACE).await.unwrap();
}

#[tokio::test]
async fn an_ended_temporary_service_is_reported_stopped() {
    let node = one_arbiter("tempstate");
    let mut w = node.watch();
    let temp = node
        .spawn(full_spec("temp", Counter::new).restart(Restart::Temporary))
        .await
        .unwrap();
    let trans = node
        .spawn(full_spec("trans", Counter::new).restart(Restart::Transient))
        .await
        .unwrap();
    assert_eq!(node.service_state("temp"), Some(ServiceState::Running));
    let _ = temp.ask(Boom).await;
    removed(&mut w, "temp").await;
    trans.ask(StopMe).await.unwrap();
    removed(&mut w, "trans").await;
    eventually("temp and trans reported stopped", WAIT, || async {
        node.service_state("temp") == Some(ServiceState::Stopped)
            && node.service_state("trans") == Some(ServiceState::Stopped)
    })
    .await;
    node.shutdown(GRACE).await.unwrap();
}

#[tokio::test]
async fn a_failed_start_frees_its_name() {
    let node = one_arbiter("freename");
    let err = node
        .spawn(full_spec("svc", || panic!("factory says no")).intensity(1, Duration::from_secs(10)))
        .await
        .unwrap_err();
    assert!(matches!(err, SpawnError::StartFailed { .. }), "{err}");
    let svc = node
        .spawn(full_spec("svc", Counter::new))
        .await
        .expect("a corrected spawn under the same name");
    assert_eq!(svc.ask(Incr).await.unwrap(), 1);
    assert_eq!(node.service_state("svc"), Some(ServiceState::Running));

    // The same for a tree whose start fails.
    let bad_tree = SupervisorSpec::new("t", Strategy::OneForOne)
        .intensity(1, Duration::from_secs(10))
        .service(full_spec("t1", Counter::new))
        .service(full_spec("t2", || panic!("no")).intensity(0, Duration::from_secs(10)));
    node.spawn_supervisor(bad_tree).await.unwrap_err();
    let good_tree = SupervisorSpec::new("t", Strategy::OneForOne)
        .service(full_spec("t1", Counter::new))
        .service(full_spec("t2", Counter::new));
    node.spawn_supervisor(good_tree).await.unwrap();
    assert_eq!(node.service("t2").ask(Incr).await.unwrap(), 1);
    node.shutdown(GRACE).await.unwrap();
}

#[tokio::test]
async fn a_tree_that_gives_up_reports_each_service_failed() {
    let node = one_arbiter("treefail");
    let mut w = node.watch();
    let spec = SupervisorSpec::new("outer", Strategy::OneForOne)
        .intensity(0, Duration::from_secs(30))
        .service(full_spec("x", Counter::new).intensity(0, Duration::from_secs(30)))
        .service(full_spec("y", Counter::new));
    node.spawn_supervisor(spec).await.unwrap();
    let _ = node.service("x").ask(Boom).await;
    // x's own supervisor gives up (x: Failed); the tree then exceeds its
    // intensity and gives up too: y is marked failed, and watchers hear it.
    wait_event(
        &mut w,
        |e| matches!(e, RegistryEvent::Failed { service } if service == "y"),
    )
    .await;
    assert_eq!(node.service_state("y"), Some(ServiceState::Failed));
    node.shutdown(GRACE).await.unwrap();
}

/// Waits for `release` inside an atomic future (nothing else runs on the
/// instance meanwhile), then stops the instance (`stop`) or just returns.
#[derive(Debug, Clone, actix::Message)]
#[rtype(result = "()")]
struct HoldUntil {
    release: Arc<tokio::sync::Notify>,
    stop: bool,
}

#[derive(Debug, Default)]
struct Holder;
impl Service for Holder {}
impl Handler<HoldUntil> for Holder {
    fn handle(&mut self, m: HoldUntil, _: &mut ServiceContext<'_, Self>) -> Reply<Self, ()> {
        use actix::fut::ActorFutureExt;
        use actix::ActorContext;
        let stop = m.stop;
        Reply::atomic(
            actix::fut::wrap_future(async move { m.release.notified().await }).map(
                move |_, _act: &mut ServiceActor<Holder>, ctx: &mut actix::Context<_>| {
                    if stop {
                        ctx.stop();
                    }
                },
            ),
        )
    }
}

#[tokio::test]
async fn nothing_is_restarted_once_shutdown_has_begun() {
    let node = Node::builder()
        .name("noreshut")
        .arbiters(2)
        .start()
        .unwrap();
    let mut w = node.watch();
    let made = Arc::new(AtomicUsize::new(0));
    let m2 = made.clone();
    let quitter = node
        .spawn(
            ServiceSpec::new("quitter", move || {
                m2.fetch_add(1, Ordering::SeqCst);
                Holder
            })
            .handles_local::<HoldUntil>(),
        )
        .await
        .unwrap();
    // Spawned last, so stopped first: it holds the shutdown until released.
    let holder = node
        .spawn(ServiceSpec::new("holder", || Holder).handles_local::<HoldUntil>())
        .await
        .unwrap();
    let (release_q, release_h) = (
        Arc::new(tokio::sync::Notify::new()),
        Arc::new(tokio::sync::Notify::new()),
    );
    quitter
        .tell(HoldUntil {
            release: release_q.clone(),
            stop: true,
        })
        .unwrap();
    holder
        .tell(HoldUntil {
            release: release_h.clone(),
            stop: false,
        })
        .unwrap();
    // The shutdown future is not `Send`: drive it beside the test's steps.
    let steps = async {
        eventually("shutdown has begun", WAIT, || async {
            matches!(
                node.spawn(ServiceSpec::new("probe", || Holder)).await,
                Err(SpawnError::ShuttingDown)
            )
        })
        .await;
        // The quitter ends on its own (a normal stop) while the node shuts down.
        release_q.notify_one();
        removed(&mut w, "quitter").await;
        release_h.notify_one();
    };
    let (shut, ()) = tokio::join!(node.shutdown(GRACE), steps);
    shut.unwrap();
    assert_eq!(
        made.load(Ordering::SeqCst),
        1,
        "the factory is not called again once shutdown has begun"
    );
    assert_eq!(node.stats("quitter").unwrap().restarts, 0);
}

#[tokio::test]
async fn backoff_stays_at_its_cap_until_the_child_has_run_for_the_quiet_period() {
    use msa_runtime::Backoff;
    use std::time::Instant;
    let node = one_arbiter("backoffcap");
    // The first start succeeds; every restart fails in the factory, so the
    // child never runs and the delay must grow to its cap and stay there.
    let calls = Arc::new(parking_lot::Mutex::new(Vec::<Instant>::new()));
    let c2 = calls.clone();
    let (initial, cap) = (Duration::from_millis(40), Duration::from_millis(320));
    let svc = node
        .spawn(
            full_spec("b", move || {
                let mut c = c2.lock();
                c.push(Instant::now());
                assert!(c.len() == 1, "restart fails");
                Counter::new()
            })
            .intensity(50, Duration::from_secs(60))
            .backoff(Backoff::exponential(initial, cap)),
        )
        .await
        .unwrap();
    let _ = svc.ask(Boom).await;
    eventually("six factory calls", WAIT, || async {
        calls.lock().len() >= 6
    })
    .await;
    let t = calls.lock().clone();
    // Calls 2..6 are restarts 1..5: the gaps between them are the delays
    // of restarts 2..5: 80, 160, 320, 320 ms (a reset would give 40).
    let gaps: Vec<Duration> = t[1..6].windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps[0] >= 2 * initial, "{gaps:?}");
    assert!(gaps[1] >= 4 * initial, "{gaps:?}");
    assert!(gaps[2] >= cap, "{gaps:?}");
    assert!(gaps[3] >= cap, "the delay stays at its cap: {gaps:?}");
    node.shutdown(GRACE).await.unwrap();
}

#[tokio::test]
async fn backoff_starts_over_once_the_child_ran_for_the_quiet_period() {
    use msa_runtime::Backoff;
    use std::time::Instant;
    let node = one_arbiter("backoffquiet");
    let mut w = node.watch();
    let cap = Duration::from_millis(300);
    let svc = node
        .spawn(
            full_spec("q", Counter::new)
                .intensity(50, Duration::from_secs(60))
                .backoff(Backoff::exponential(Duration::from_millis(20), cap)),
        )
        .await
        .unwrap();
    for _ in 0..4 {
        let _ = svc.ask(Boom).await;
        restarted(&mut w, "q").await;
        svc.ask(Get).await.unwrap();
    }
    // The quiet period is the point here: the child must run for it.
    tokio::time::sleep(cap + Duration::from_millis(50)).await;
    let t0 = Instant::now();
    let _ = svc.ask(Boom).await;
    restarted(&mut w, "q").await;
    assert!(
        t0.elapsed() < cap,
        "after the quiet period the first delay applies again: {:?}",
        t0.elapsed()
    );
    node.shutdown(GRACE).await.unwrap();
}

/// A one-for-all tree `a`, `t` (temporary), `c`, with `t`'s factory counted.
fn tree_with_temporary(p: &str, made: &Arc<AtomicUsize>) -> SupervisorSpec {
    let m = made.clone();
    SupervisorSpec::new(format!("{p}tree"), Strategy::OneForAll)
        .service(full_spec(&format!("{p}a"), Counter::new))
        .service(
            full_spec(&format!("{p}t"), move || {
                m.fetch_add(1, Ordering::SeqCst);
                Counter::new()
            })
            .restart(Restart::Temporary),
        )
        .service(full_spec(&format!("{p}c"), Counter::new))
}

#[tokio::test]
async fn a_group_restart_never_restarts_a_temporary_service() {
    let node = one_arbiter("grouptemp");
    let mut w = node.watch();
    for (p, ended_first) in [("run", false), ("end", true)] {
        let made = Arc::new(AtomicUsize::new(0));
        node.spawn_supervisor(tree_with_temporary(p, &made))
            .await
            .unwrap();
        let t = node.service(&format!("{p}t"));
        if ended_first {
            t.ask(StopMe).await.unwrap();
            removed(&mut w, &format!("{p}t")).await;
        }
        let _ = node.service(&format!("{p}a")).ask(Boom).await;
        // c comes after t: once c is back, t would have been too.
        restarted(&mut w, &format!("{p}c")).await;
        node.service(&format!("{p}c")).ask(Get).await.unwrap();
        assert_eq!(made.load(Ordering::SeqCst), 1, "{p}: t is not restarted");
        assert_eq!(
            node.service_state(&format!("{p}t")),
            Some(ServiceState::Stopped),
            "{p}"
        );
        assert!(matches!(
            t.ask(Get).await,
            Err(CallError::NoInstance { .. })
        ));
    }
    node.shutdown(GRACE).await.unwrap();
}

#[tokio::test]
async fn a_permanent_service_stopping_normally_restarts_its_one_for_all_group() {
    let node = one_arbiter("ofanormal");
    let mut w = node.watch();
    let tree = SupervisorSpec::new("g", Strategy::OneForAll)
        .service(full_spec("ga", Counter::new))
        .service(full_spec("gb", Counter::new))
        .service(full_spec("gc", Counter::new));
    node.spawn_supervisor(tree).await.unwrap();
    node.service("ga").ask(Incr).await.unwrap();
    node.service("gc").ask(Incr).await.unwrap();
    // A normal stop of a permanent child: OTP applies the group strategy.
    node.service("gb").ask(StopMe).await.unwrap();
    restarted_all(&mut w, &["ga", "gb", "gc"]).await;
    assert_eq!(
        node.service("ga").ask(Get).await.unwrap(),
        0,
        "ga restarted"
    );
    assert_eq!(
        node.service("gc").ask(Get).await.unwrap(),
        0,
        "gc restarted"
    );
    node.shutdown(GRACE).await.unwrap();
}

/// The counting rule between the two layers (docs/runtime.md): a tree
/// counts the restarts it performs. Under one-for-one it performs none
/// when a service's own supervisor restarts an instance, so those do not
/// count against it; under one-for-all each one restarts the group, so
/// each counts.
#[tokio::test]
async fn a_tree_counts_only_the_restarts_it_performs() {
    let node = one_arbiter("counting");
    let mut w = node.watch();
    let one = SupervisorSpec::new("one", Strategy::OneForOne)
        .intensity(2, Duration::from_secs(3600))
        .service(full_spec("o1", Counter::new).intensity(10, Duration::from_secs(3600)))
        .service(full_spec("o2", Counter::new));
    node.spawn_supervisor(one).await.unwrap();
    for _ in 0..3 {
        let _ = node.service("o1").ask(Boom).await;
        restarted(&mut w, "o1").await;
    }
    node.service("o1").ask(Get).await.unwrap();
    assert_eq!(node.service("o2").ask(Incr).await.unwrap(), 1);
    assert_eq!(node.service_state("o2"), Some(ServiceState::Running));

    let all = SupervisorSpec::new("all", Strategy::OneForAll)
        .intensity(2, Duration::from_secs(3600))
        .service(full_spec("a1", Counter::new).intensity(10, Duration::from_secs(3600)))
        .service(full_spec("a2", Counter::new));
    node.spawn_supervisor(all).await.unwrap();
    for _ in 0..2 {
        let _ = node.service("a1").ask(Boom).await;
        restarted_all(&mut w, &["a1", "a2"]).await;
        node.service("a2").ask(Get).await.unwrap();
    }
    // The third group restart exceeds the tree's 2 in 3600 s: it gives up.
    let _ = node.service("a1").ask(Boom).await;
    wait_event(
        &mut w,
        |e| matches!(e, RegistryEvent::Failed { service } if service == "a2"),
    )
    .await;
    node.shutdown(GRACE).await.unwrap();
}

#[tokio::test]
async fn a_failing_first_start_returns_the_error_at_once() {
    let node = one_arbiter("initfail");
    let made = Arc::new(AtomicUsize::new(0));
    let m = made.clone();
    let err = node
        .spawn(
            full_spec("init", move || -> Counter {
                m.fetch_add(1, Ordering::SeqCst);
                panic!("init says no")
            })
            .intensity(10, Duration::from_secs(60)),
        )
        .await
        .unwrap_err();
    match err {
        SpawnError::StartFailed { child, reason } => {
            assert_eq!(child, "init");
            assert!(reason.contains("init says no"), "{reason}");
        }
        e => panic!("unexpected {e}"),
    }
    assert_eq!(
        made.load(Ordering::SeqCst),
        1,
        "no restart of a failed init"
    );

    // In a tree: the services started before it are stopped, the tree's
    // spawn fails, nothing is retried.
    let m = made.clone();
    let tree = SupervisorSpec::new("it", Strategy::OneForOne)
        .intensity(10, Duration::from_secs(60))
        .service(full_spec("it1", Counter::new))
        .service(full_spec("it2", move || -> Counter {
            m.fetch_add(1, Ordering::SeqCst);
            panic!("init says no")
        }));
    node.spawn_supervisor(tree).await.unwrap_err();
    assert_eq!(made.load(Ordering::SeqCst), 2);
    assert!(node.instances("it1").is_empty());
    node.shutdown(GRACE).await.unwrap();
}

#[tokio::test]
async fn a_restart_storm_is_bounded_even_when_restarts_outlast_the_period() {
    use msa_runtime::Backoff;
    let node = one_arbiter("storm");
    let mut w = node.watch();
    let made = Arc::new(AtomicUsize::new(0));
    let m = made.clone();
    // Restarts are 5 ms apart, the period only 1 ms: the window never
    // holds two of them, yet a child that never comes up again must not
    // be restarted forever.
    let svc = node
        .spawn(
            full_spec("storm", move || {
                assert!(m.fetch_add(1, Ordering::SeqCst) == 0, "restart fails");
                Counter::new()
            })
            .intensity(2, Duration::from_millis(1))
            .backoff(Backoff::exponential(
                Duration::from_millis(5),
                Duration::from_millis(5),
            )),
        )
        .await
        .unwrap();
    let _ = svc.ask(Boom).await;
    wait_event(
        &mut w,
        |e| matches!(e, RegistryEvent::Failed { service } if service == "storm"),
    )
    .await;
    assert_eq!(
        made.load(Ordering::SeqCst),
        4,
        "the first start, then 3 failed restarts: the third exceeds 2"
    );
    node.shutdown(GRACE).await.unwrap();
}
