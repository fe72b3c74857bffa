//! The live supervision API (issue 12): a handle to a running tree (OTP's
//! `which_children`, `count_children`, `terminate_child`, `restart_child`,
//! `delete_child`, `start_child`), scaling a service, stopping one for
//! good, killing one instance from outside.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::support::*;
use msa_runtime::prelude::*;
use msa_runtime::supervision::{ChildKind, ChildState};
use msa_runtime::{
    CallError, ExitReason, InstanceId, RegistryEvent, ServiceState, SpawnError, SupervisorError,
};

fn shop() -> SupervisorSpec {
    SupervisorSpec::new("shop", Strategy::OneForAll)
        .service(full_spec("orders", Counter::new))
        .service(full_spec("payments", Counter::new))
}

#[tokio::test]
async fn a_tree_handle_lists_terminates_restarts_and_deletes_children() {
    let node = node("live-tree");
    let tree = node.start_supervisor(shop()).await.unwrap();
    assert_eq!(tree.name(), "shop");
    let children = tree.which_children().await.unwrap();
    let names: Vec<&str> = children.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["orders", "payments"]);
    assert!(children
        .iter()
        .all(|c| c.state == ChildState::Running && c.kind == ChildKind::Service));
    assert_eq!(children[0].instances, 1);
    let count = tree.count_children().await.unwrap();
    assert_eq!((count.specs, count.active, count.workers), (2, 2, 2));

    // Terminated: down, not restarted, its calls refused; the sibling runs.
    tree.terminate_child("orders").await.unwrap();
    let orders = &tree.which_children().await.unwrap()[0];
    assert_eq!(
        (orders.state, orders.instances),
        (ChildState::Terminated, 0)
    );
    assert!(node.instances("orders").is_empty());
    assert!(matches!(
        node.service("orders").tell(Incr),
        Err(CallError::NoInstance { .. })
    ));
    assert_eq!(node.service("payments").ask(Incr).await.unwrap(), 1);
    assert_eq!(tree.count_children().await.unwrap().active, 1);

    // A one-for-all restart of the sibling does not bring it back.
    let mut w = node.watch();
    node.service("payments").tell(Boom).unwrap();
    restarted(&mut w, "payments").await;
    assert!(node.instances("orders").is_empty());

    // Restarted: up again with fresh state.
    tree.restart_child("orders").await.unwrap();
    assert_eq!(node.service("orders").ask(Incr).await.unwrap(), 1);
    assert!(matches!(
        tree.restart_child("orders").await,
        Err(SupervisorError::Running { child }) if child == "orders"
    ));
    // Only a terminated child is deleted (OTP).
    assert!(matches!(
        tree.delete_child("orders").await,
        Err(SupervisorError::Running { .. })
    ));
    tree.terminate_child("orders").await.unwrap();
    tree.delete_child("orders").await.unwrap();
    let names: Vec<String> = tree
        .which_children()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["payments"]);
    assert!(matches!(
        tree.terminate_child("orders").await,
        Err(SupervisorError::NoChild { child, .. }) if child == "orders"
    ));
    // Its name is free again.
    let again = node.spawn(full_spec("orders", Counter::new)).await.unwrap();
    assert_eq!(again.ask(Incr).await.unwrap(), 1);
    node.shutdown(GRACE).await.unwrap();
}

#[tokio::test]
async fn start_child_adds_a_service_and_a_failing_start_is_not_kept() {
    let node = node("live-start");
    let tree = node.start_supervisor(shop()).await.unwrap();
    let stock = tree
        .start_child(full_spec("stock", Counter::new))
        .await
        .unwrap();
    assert_eq!(stock.ask(Incr).await.unwrap(), 1);
    let names: Vec<String> = tree
        .which_children()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["orders", "payments", "stock"]);
    // A name the node already runs is refused, naming it.
    assert!(matches!(
        tree.start_child(full_spec("orders", Counter::new)).await,
        Err(SupervisorError::Spawn(SpawnError::DuplicateService { .. }))
    ));

    let calls = Arc::new(AtomicUsize::new(0));
    let c2 = calls.clone();
    let err = tree
        .start_child(full_spec("broken", move || {
            c2.fetch_add(1, Ordering::SeqCst);
            panic!("no stock today")
        }))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SupervisorError::Spawn(SpawnError::StartFailed { child, reason })
            if child.starts_with("broken") && reason.contains("no stock today")),
        "{err}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1, "not restarted");
    assert_eq!(tree.count_children().await.unwrap().specs, 3, "not kept");
    // The tree did not give up, and the name is free.
    assert_eq!(tree.count_children().await.unwrap().active, 3);
    node.spawn(full_spec("broken", Counter::new)).await.unwrap();
    node.shutdown(GRACE).await.unwrap();
}

#[tokio::test]
async fn a_stopped_tree_reports_not_running() {
    let node = node("live-gone");
    let tree = node.start_supervisor(shop()).await.unwrap();
    node.shutdown(GRACE).await.unwrap();
    assert!(matches!(
        tree.which_children().await,
        Err(SupervisorError::NotRunning { tree }) if tree == "shop"
    ));
}

#[tokio::test]
async fn a_service_scales_up_and_down_at_run_time() {
    let node = node("live-scale");
    let svc = node
        .spawn(full_spec("work", Counter::new).max_instances(4))
        .await
        .unwrap();
    assert_eq!(node.instances("work").len(), 1);
    node.scale("work", 4).await.unwrap();
    let mut slots: Vec<usize> = node.instances("work").iter().map(|i| i.slot).collect();
    slots.sort();
    assert_eq!(slots, [0, 1, 2, 3]);
    // Round-robin reaches every instance: each counts its own asks.
    let mut seen = Vec::new();
    for _ in 0..8 {
        seen.push(svc.ask(Incr).await.unwrap());
    }
    assert_eq!(seen.iter().filter(|n| **n == 1).count(), 4, "{seen:?}");

    node.scale("work", 2).await.unwrap();
    let mut slots: Vec<usize> = node.instances("work").iter().map(|i| i.slot).collect();
    slots.sort();
    assert_eq!(slots, [0, 1]);
    for _ in 0..10 {
        svc.tell(Incr).unwrap();
    }
    assert!(svc.ask(Get).await.unwrap() >= 2);
    // And back up: the retired slots start afresh.
    node.scale("work", 3).await.unwrap();
    assert_eq!(node.instances("work").len(), 3);

    for bad in [0, 5] {
        assert!(matches!(
            node.scale("work", bad).await,
            Err(SupervisorError::InvalidScale { asked, max: 4, .. }) if asked == bad
        ));
    }
    assert!(matches!(
        node.scale("nope", 1).await,
        Err(SupervisorError::UnknownService { .. })
    ));
    node.shutdown(GRACE).await.unwrap();
}

#[tokio::test]
async fn a_stopped_service_frees_its_name() {
    let node = node("live-stop");
    let old = node
        .spawn(full_spec("s", Counter::new).instances(2))
        .await
        .unwrap();
    old.ask(Incr).await.unwrap();
    node.stop_service("s").await.unwrap();
    assert!(node.instances("s").is_empty());
    assert_eq!(node.service_state("s"), Some(ServiceState::Stopped));
    assert!(matches!(
        node.stop_service("s").await,
        Err(SupervisorError::UnknownService { .. })
    ));
    let new = node.spawn(full_spec("s", Counter::new)).await.unwrap();
    assert_eq!(new.ask(Incr).await.unwrap(), 1, "a fresh service");
    // A handle to the old service follows the name to the new one.
    assert_eq!(old.ask(Incr).await.unwrap(), 2);
    assert_eq!(node.instances("s").len(), 1);
    // A service inside a tree is deleted from it.
    let tree = node.start_supervisor(shop()).await.unwrap();
    node.stop_service("orders").await.unwrap();
    let names: Vec<String> = tree
        .which_children()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["payments"]);
    node.spawn(full_spec("orders", Counter::new)).await.unwrap();
    node.shutdown(GRACE).await.unwrap();
}

#[tokio::test]
async fn an_instance_killed_from_outside_is_restarted_as_a_failure() {
    let node = node("live-kill");
    let svc = node
        .spawn(full_spec("k", Counter::new).instances(2))
        .await
        .unwrap();
    let mut w = node.watch();
    let victim = InstanceId {
        slot: 1,
        incarnation: 0,
    };
    node.kill_instance("k", victim).await.unwrap();
    let reason = removed(&mut w, "k").await;
    assert_eq!(reason, "killed");
    let back = wait_event(&mut w, |e| matches!(e, RegistryEvent::Restarted { .. })).await;
    assert!(matches!(
        back,
        RegistryEvent::Restarted {
            instance: InstanceId {
                slot: 1,
                incarnation: 1
            },
            ..
        }
    ));
    assert_eq!(node.stats("k").unwrap().failures, 1);
    assert!(matches!(
        node.kill_instance("k", victim).await,
        Err(SupervisorError::NoInstance { .. })
    ));
    svc.ask(Incr).await.unwrap();
    node.shutdown(GRACE).await.unwrap();
}

#[tokio::test]
async fn a_duplicate_service_names_its_owner() {
    let node = node("live-dup");
    node.spawn(full_spec("top", Counter::new)).await.unwrap();
    node.start_supervisor(shop()).await.unwrap();
    let err = node
        .spawn(full_spec("top", Counter::new))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SpawnError::DuplicateService { service, owner } if service == "top" && owner == "root"),
        "{err}"
    );
    let err = node
        .spawn(full_spec("orders", Counter::new))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SpawnError::DuplicateService { owner, .. } if owner == "shop"),
        "{err}"
    );
    assert!(err.to_string().contains("`shop`"), "{err}");
    let err = node
        .spawn_supervisor(
            SupervisorSpec::new("twice", Strategy::OneForOne)
                .service(full_spec("x", Counter::new))
                .service(full_spec("x", Counter::new)),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SpawnError::DuplicateService { owner, .. } if owner == "twice"),
        "{err}"
    );
    node.shutdown(GRACE).await.unwrap();
}

#[tokio::test]
async fn a_watch_can_start_with_a_snapshot_of_the_registry() {
    let node = node("live-snap");
    node.spawn(full_spec("b", Counter::new).instances(2))
        .await
        .unwrap();
    node.spawn(full_spec("a", Counter::new)).await.unwrap();
    let mut w = node.watch_with_snapshot();
    assert_eq!(w.snapshot_left(), 3);
    let mut first = Vec::new();
    for _ in 0..3 {
        match w.next().await.unwrap() {
            RegistryEvent::Added { service, instance } => first.push((service, instance.slot)),
            other => panic!("not a snapshot event: {other:?}"),
        }
    }
    first.sort();
    assert_eq!(
        first,
        [
            ("a".to_string(), 0),
            ("b".to_string(), 0),
            ("b".to_string(), 1)
        ]
    );
    // Then the changes.
    node.kill_instance(
        "a",
        InstanceId {
            slot: 0,
            incarnation: 0,
        },
    )
    .await
    .unwrap();
    assert_eq!(removed(&mut w, "a").await, "killed");
    // A plain watch has no snapshot.
    assert_eq!(node.watch().snapshot_left(), 0);
    node.shutdown(GRACE).await.unwrap();
}

#[tokio::test]
async fn a_local_monitor_reports_a_typed_reason() {
    let node = node("live-monitor");
    let svc = node.spawn(full_spec("m", Counter::new)).await.unwrap();
    let gone = tokio::spawn(node.monitor("m", node.name(), 0));
    // The monitor subscribes when it is made: the crash comes after.
    svc.tell(Boom).unwrap();
    let reason = tokio::time::timeout(WAIT, gone).await.unwrap().unwrap();
    assert!(
        matches!(&reason, msa_runtime::MonitorReason::Exited(ExitReason::Panicked(m)) if m.contains("boom")),
        "{reason}"
    );
    assert_eq!(
        node.monitor("nope", node.name(), 0).await,
        msa_runtime::MonitorReason::NotRunning
    );
    // The registry event carries the typed reason too.
    let mut w = node.watch();
    eventually("m restarted", WAIT, || async {
        node.instances("m").iter().any(|i| i.incarnation == 1)
    })
    .await;
    let victim = node.instances("m")[0];
    node.kill_instance("m", victim).await.unwrap();
    let ev = wait_event(&mut w, |e| matches!(e, RegistryEvent::Removed { .. })).await;
    assert!(matches!(
        ev,
        RegistryEvent::Removed {
            exit: ExitReason::Killed,
            ..
        }
    ));
    node.shutdown(GRACE).await.unwrap();
}

/// Blocks in `started` until the test lets it go, telling the test it got there.
struct Gate {
    entered: std::sync::mpsc::SyncSender<()>,
    release: Arc<parking_lot::Mutex<std::sync::mpsc::Receiver<()>>>,
}
impl Service for Gate {
    fn started(&mut self, _: &mut ServiceContext<'_, Self>) {
        let _ = self.entered.send(());
        let _ = self
            .release
            .lock()
            .recv_timeout(std::time::Duration::from_secs(30));
    }
}

#[tokio::test]
async fn an_instance_is_listed_only_once_it_runs() {
    let node = node("live-listed");
    let (entered_tx, entered_rx) = std::sync::mpsc::sync_channel(1);
    let (release_tx, release_rx) = std::sync::mpsc::channel();
    let release = Arc::new(parking_lot::Mutex::new(release_rx));
    let n2 = node.clone();
    let spawned = tokio::spawn(async move {
        n2.spawn(ServiceSpec::new("gate", move || Gate {
            entered: entered_tx.clone(),
            release: release.clone(),
        }))
        .await
    });
    tokio::task::spawn_blocking(move || entered_rx.recv_timeout(WAIT).unwrap())
        .await
        .unwrap();
    // Inside `started`: launched, not running yet.
    assert!(node.instances("gate").is_empty());
    release_tx.send(()).unwrap();
    spawned.await.unwrap().unwrap();
    assert_eq!(node.instances("gate").len(), 1);
    node.shutdown(GRACE).await.unwrap();
}

#[tokio::test]
async fn tells_right_after_a_crash_reach_the_instance_still_running() {
    let node = node("live-window");
    let svc = node
        .spawn(
            full_spec("w", Counter::new)
                .instances(2)
                .intensity(1_000, std::time::Duration::from_secs(60)),
        )
        .await
        .unwrap();
    // Right after spawn returns, every instance takes tells.
    for _ in 0..100 {
        svc.tell(Incr).unwrap();
    }
    let mut w = node.watch();
    for round in 0..50 {
        // One instance crashes; the other runs all along: no tell in the
        // window before the supervisor handles the crash fails.
        svc.tell(Boom).unwrap();
        for _ in 0..200 {
            if let Err(e) = svc.tell(Incr) {
                panic!("round {round}: a tell failed while an instance runs: {e}");
            }
        }
        restarted(&mut w, "w").await;
    }
    node.shutdown(GRACE).await.unwrap();
}

fn counter_or(
    calls: &Arc<AtomicUsize>,
    on_call: impl Fn(usize) -> Option<msa_runtime::StartError> + Send + Sync + 'static,
) -> impl Fn() -> Result<Counter, msa_runtime::StartError> + Send + Sync + 'static {
    let calls = calls.clone();
    move || match on_call(calls.fetch_add(1, Ordering::SeqCst)) {
        Some(e) => Err(e),
        None => Ok(Counter::new()),
    }
}

#[tokio::test]
async fn a_fallible_start_returns_its_error_at_once() {
    use msa_runtime::StartError;
    let node = node("live-try");
    let calls = Arc::new(AtomicUsize::new(0));
    let err = node
        .spawn(
            ServiceSpec::try_new(
                "db",
                counter_or(&calls, |_| Some(StartError::failed("no database"))),
            )
            .handles::<Incr>(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SpawnError::StartFailed { reason, .. } if reason.contains("no database")),
        "{err}"
    );
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "a first start is not retried"
    );
    // The name is free again.
    node.spawn(full_spec("db", Counter::new)).await.unwrap();

    // A failing restart counts against the intensity: the service gives up.
    let calls = Arc::new(AtomicUsize::new(0));
    let svc = node
        .spawn(
            ServiceSpec::try_new(
                "flaky",
                counter_or(&calls, |n| (n > 0).then(|| StartError::failed("gone"))),
            )
            .handles_local::<Boom>()
            .intensity(2, std::time::Duration::from_secs(60)),
        )
        .await
        .unwrap();
    svc.tell(Boom).unwrap();
    eventually("flaky gave up", WAIT, || async {
        node.service_state("flaky") == Some(ServiceState::Failed)
    })
    .await;
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3,
        "the first start and 2 restarts (intensity 2)"
    );
    node.shutdown(GRACE).await.unwrap();
}

#[tokio::test]
async fn an_ignored_start_leaves_the_instance_out() {
    use msa_runtime::StartError;
    let node = node("live-ignore");
    let calls = Arc::new(AtomicUsize::new(0));
    let svc = node
        .spawn(
            ServiceSpec::try_new(
                "half",
                counter_or(&calls, |n| (n == 0).then_some(StartError::Ignore)),
            )
            .handles::<Incr>()
            .instances(2),
        )
        .await
        .unwrap();
    assert_eq!(node.instances("half").len(), 1);
    assert_eq!(node.service_state("half"), Some(ServiceState::Running));
    assert_eq!(svc.ask(Incr).await.unwrap(), 1);
    assert_eq!(calls.load(Ordering::SeqCst), 2, "not restarted");

    let none = node
        .spawn(
            ServiceSpec::try_new("none", || Err::<Counter, _>(StartError::Ignore))
                .handles::<Incr>(),
        )
        .await
        .unwrap();
    assert!(node.instances("none").is_empty());
    assert_eq!(node.service_state("none"), Some(ServiceState::Stopped));
    assert!(matches!(none.tell(Incr), Err(CallError::NoInstance { .. })));
    node.shutdown(GRACE).await.unwrap();
}

/// Spawns `name` with `shutdown`, and leaves one ask of its instance
/// running a 300 s handler that holds the actor.
async fn busy(node: &Node, name: &str, shutdown: msa_runtime::Shutdown) {
    let svc = node
        .spawn(full_spec(name, Counter::new).shutdown(shutdown))
        .await
        .unwrap();
    let s2 = svc.clone();
    tokio::spawn(async move {
        let _ = s2
            .ask(SlowAtomic(std::time::Duration::from_secs(300)))
            .timeout(std::time::Duration::from_secs(600))
            .await;
    });
    let name = name.to_string();
    eventually("the handler is running", WAIT, || async {
        node.stats(&name).unwrap().messages >= 1
    })
    .await;
}

#[tokio::test]
async fn a_brutal_or_timed_shutdown_does_not_wait_for_a_busy_instance() {
    use msa_runtime::Shutdown;
    use std::time::{Duration, Instant};
    // The node's grace (120 s) and the handler (300 s) are far beyond the
    // bound checked: only the per-service setting ends these stops early.
    for (i, shutdown) in [
        Shutdown::Brutal,
        Shutdown::Timeout(Duration::from_millis(200)),
    ]
    .into_iter()
    .enumerate()
    {
        let node = node(&format!("live-brutal-{i}"));
        busy(&node, "svc", shutdown).await;
        let t0 = Instant::now();
        tokio::time::timeout(Duration::from_secs(60), node.stop_service("svc"))
            .await
            .expect("stop_service waited for the handler")
            .unwrap();
        assert!(node.instances("svc").is_empty());
        // The node shutdown honours it too.
        busy(&node, "svc2", shutdown).await;
        node.shutdown(Duration::from_secs(120)).await.unwrap();
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "{shutdown:?}: {:?}",
            t0.elapsed()
        );
    }
}

#[tokio::test]
async fn a_restarted_service_starts_fresh_in_its_place() {
    let node = node("live-restart");
    let top = node.spawn(full_spec("top", Counter::new)).await.unwrap();
    let tree = node.start_supervisor(shop()).await.unwrap();
    for (name, svc) in [("top", top), ("orders", node.service("orders"))] {
        svc.ask(Incr).await.unwrap();
        assert_eq!(svc.ask(Incr).await.unwrap(), 2);
        node.restart_service(name).await.unwrap();
        assert_eq!(svc.ask(Incr).await.unwrap(), 1, "{name}: fresh state");
        assert_eq!(node.service_state(name), Some(ServiceState::Running));
    }
    // Still the tree's first child.
    let children = tree.which_children().await.unwrap();
    assert_eq!(children[0].name, "orders");
    assert_eq!(children[0].state, ChildState::Running);
    assert!(matches!(
        node.restart_service("nope").await,
        Err(SupervisorError::UnknownService { .. })
    ));
    node.shutdown(GRACE).await.unwrap();
}

/// Spins on its thread, never awaiting, until `release` is set (or a
/// minute has passed, so that a broken test cannot hang its binary).
#[derive(Debug, Clone, actix::Message)]
#[rtype(result = "()")]
struct Spin {
    entered: Arc<std::sync::atomic::AtomicBool>,
    release: Arc<std::sync::atomic::AtomicBool>,
}

#[derive(Debug, Default)]
struct Hog;

impl Service for Hog {}

impl Handler<Spin> for Hog {
    fn handle(&mut self, m: Spin, _: &mut ServiceContext<'_, Self>) -> Reply<Self, ()> {
        m.entered.store(true, Ordering::SeqCst);
        let t0 = std::time::Instant::now();
        while !m.release.load(Ordering::SeqCst) && t0.elapsed() < std::time::Duration::from_secs(60)
        {
            std::thread::yield_now();
        }
        Reply::ready(())
    }
}

/// docs/runtime.md, "Per-service shutdown": a killed instance stuck in a
/// handler that never yields cannot be stopped; its supervisor (on the
/// node's other arbiter: service supervisor and instance are placed one
/// after the other, round-robin over two arbiters) reports it in the log,
/// and the stop waits for it.
#[tokio::test]
async fn a_killed_instance_stuck_in_a_handler_that_never_yields_is_reported() {
    use crate::support::log_capture::LogCapture;
    use std::sync::atomic::AtomicBool;
    let logs = LogCapture::keyed("service", "stuck-hog", tracing::Level::ERROR);
    let node = node("live-stuck");
    let svc = node
        .spawn(
            ServiceSpec::new("stuck-hog", || Hog)
                .handles_local::<Spin>()
                .shutdown(msa_runtime::Shutdown::Brutal),
        )
        .await
        .unwrap();
    let entered = Arc::new(AtomicBool::new(false));
    let release = Arc::new(AtomicBool::new(false));
    svc.tell(Spin {
        entered: entered.clone(),
        release: release.clone(),
    })
    .unwrap();
    eventually("the handler spins", WAIT, || async {
        entered.load(Ordering::SeqCst)
    })
    .await;

    let n2 = node.clone();
    let stop = tokio::spawn(async move { n2.stop_service("stuck-hog").await });
    eventually("the stuck instance is reported", WAIT, || async {
        logs.text().contains(
            "a killed instance has not ended: a handler that never yields cannot be killed",
        )
    })
    .await;
    assert!(!stop.is_finished(), "the stop waits for the stuck handler");
    assert!(logs.text().contains("stuck-hog"), "{}", logs.text());

    release.store(true, Ordering::SeqCst);
    stop.await.unwrap().unwrap();
    assert!(node.instances("stuck-hog").is_empty());
    node.shutdown(GRACE).await.unwrap();
}

/// OTP's `delete_child` removes the child spec: a deleted child leaves no
/// placeholder behind, so what its spec holds (here an `Arc` its factory
/// captured) is freed, however many children come and go; the tree's
/// other children keep working, group restarts included.
#[tokio::test]
async fn a_deleted_child_is_removed_with_its_spec() {
    let node = node("live-delete");
    let tree = node.start_supervisor(shop()).await.unwrap();
    let held = Arc::new(());
    for round in 0..3 {
        let h = held.clone();
        tree.start_child(full_spec("extra", move || {
            let _ = &h;
            Counter::new()
        }))
        .await
        .unwrap();
        assert!(
            Arc::strong_count(&held) > 1,
            "round {round}: the spec holds it"
        );
        tree.terminate_child("extra").await.unwrap();
        tree.delete_child("extra").await.unwrap();
        let count = tree.count_children().await.unwrap();
        assert_eq!((count.specs, count.active), (2, 2), "round {round}");
        eventually("the deleted child's spec is dropped", WAIT, || async {
            Arc::strong_count(&held) == 1
        })
        .await;
    }
    // The children after a removed one moved down: their notices still
    // find them (a one-for-all restart, then calls).
    tree.start_child(full_spec("gone", Counter::new))
        .await
        .unwrap();
    tree.start_child(full_spec("last", Counter::new))
        .await
        .unwrap();
    tree.terminate_child("gone").await.unwrap();
    tree.delete_child("gone").await.unwrap();
    let mut w = node.watch();
    node.service("last").tell(Boom).unwrap();
    restarted(&mut w, "last").await;
    let names: Vec<String> = tree
        .which_children()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["orders", "payments", "last"]);
    eventually("every child runs again", WAIT, || async {
        tree.count_children().await.unwrap().active == 3
    })
    .await;
    assert_eq!(node.service("last").ask(Incr).await.unwrap(), 1);
    assert_eq!(node.service("orders").ask(Incr).await.unwrap(), 1);
    node.shutdown(GRACE).await.unwrap();
}

/// Supervisors run on the node's own supervision thread, apart from the
/// arbiters that run instances and the app's tasks: with every arbiter
/// held by work that never yields, a tree still answers its live API.
/// (When supervisors ran on the arbiters, this call waited for the held
/// thread.)
#[tokio::test]
async fn a_tree_answers_while_every_arbiter_is_held() {
    let node = node("live-held");
    let tree = node.start_supervisor(shop()).await.unwrap();
    let (entered_tx, mut entered) = tokio::sync::mpsc::unbounded_channel();
    let mut releases = Vec::new();
    let mut held = Vec::new();
    for i in 0..node.arbiters() {
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let entered_tx = entered_tx.clone();
        releases.push(release);
        held.push(node.spawn_task_on(i, async move {
            entered_tx.send(i).unwrap();
            // Holds the arbiter's thread: no await until released.
            wait.recv().unwrap();
        }));
    }
    for _ in 0..node.arbiters() {
        tokio::time::timeout(WAIT, entered.recv())
            .await
            .expect("every arbiter is held")
            .unwrap();
    }

    let count = tokio::time::timeout(WAIT, tree.count_children())
        .await
        .expect("the tree answers while every arbiter is held")
        .unwrap();
    assert_eq!((count.specs, count.active), (2, 2));

    for r in releases {
        r.send(()).unwrap();
    }
    for h in held {
        h.await.unwrap();
    }
    assert_eq!(node.service("orders").ask(Incr).await.unwrap(), 1);
    node.shutdown(GRACE).await.unwrap();
}
