//! The embedding app's tasks on the node's arbiters (`Node::spawn_task`,
//! `Node::run`) and locality-aware routing (`ServiceSpec::prefer_local`):
//! an ask from a task to an instance on its own arbiter is served on the
//! task's thread.

use std::thread::ThreadId;
use std::time::Duration;

use msa_runtime::prelude::*;

#[derive(actix::Message)]
#[rtype(result = "ThreadId")]
struct Where;

#[derive(Default)]
struct Locator;
impl Service for Locator {}
impl Handler<Where> for Locator {
    fn handle(&mut self, _: Where, _: &mut ServiceContext<'_, Self>) -> Reply<Self, ThreadId> {
        Reply::ready(std::thread::current().id())
    }
}

fn locator(instances: usize) -> ServiceSpec<Locator> {
    ServiceSpec::new("locator", Locator::default)
        .handles_local::<Where>()
        .instances(instances)
}

/// From arbiter `index`: the task's thread, and the threads that served
/// `asks` asks (tells in between, so the cache's round-robin moves too).
async fn served_from(
    node: &Node,
    index: usize,
    svc: &ServiceRef,
    asks: usize,
) -> (ThreadId, Vec<ThreadId>) {
    let svc = svc.clone();
    node.spawn_task_on(index, async move {
        let mut served = Vec::new();
        for _ in 0..asks {
            served.push(svc.ask(Where).await.expect("answered"));
        }
        (std::thread::current().id(), served)
    })
    .await
    .expect("the task ran")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_run_on_the_node_arbiters() {
    let node = Node::builder().name("tasks").arbiters(2).start().unwrap();
    let me = std::thread::current().id();
    let mut seen = Vec::new();
    for i in 0..2 {
        let (id, name) = node
            .spawn_task_on(i, async {
                let t = std::thread::current();
                (t.id(), t.name().unwrap_or_default().to_string())
            })
            .await
            .unwrap();
        assert_ne!(id, me, "a task runs on a node thread, not the caller's");
        assert!(name.contains("arbiter"), "thread {name:?} is an arbiter");
        seen.push(id);
    }
    assert_ne!(seen[0], seen[1], "two arbiters, two threads");
    // Round-robin: the next two tasks land on both arbiters.
    let a = node.spawn_task(async { std::thread::current().id() });
    let b = node.spawn_task(async { std::thread::current().id() });
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    assert_ne!(a, b);
    assert!(seen.contains(&a) && seen.contains(&b));
    assert_eq!(node.run(async { 6 * 7 }).await, Ok(42));
    assert_eq!(
        node.spawn_task_on(2, async {}).await,
        Err(TaskError::NoSuchArbiter {
            index: 2,
            arbiters: 2
        })
    );
    node.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ask_from_a_task_is_served_on_its_own_thread() {
    let node = Node::builder().name("local").arbiters(2).start().unwrap();
    let svc = node
        .spawn(locator(node.arbiters()).prefer_local())
        .await
        .unwrap();
    for i in 0..2 {
        let (task, served) = served_from(&node, i, &svc, 50).await;
        assert!(
            served.iter().all(|t| *t == task),
            "arbiter {i}: every ask served on the task's thread {task:?}: {served:?}"
        );
        // Tells in between do not move it either.
        let svc2 = svc.clone();
        let (task, served) = node
            .spawn_task_on(i, async move {
                let mut served = Vec::new();
                for _ in 0..10 {
                    svc2.tell(Where).unwrap();
                    served.push(svc2.ask(Where).await.unwrap());
                }
                (std::thread::current().id(), served)
            })
            .await
            .unwrap();
        assert!(served.iter().all(|t| *t == task), "{served:?}");
    }
    // A caller on no arbiter still round-robins over both instances.
    let mut outside = Vec::new();
    for _ in 0..4 {
        outside.push(svc.ask(Where).await.unwrap());
    }
    outside.dedup();
    assert!(outside.len() > 1, "both instances serve outside callers");
    node.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_local_instance_an_ask_falls_back_to_any() {
    let node = Node::builder()
        .name("fallback")
        .arbiters(2)
        .start()
        .unwrap();
    // One instance: one arbiter has none.
    let svc = node.spawn(locator(1).prefer_local()).await.unwrap();
    let mut threads = Vec::new();
    for i in 0..2 {
        let (task, served) = served_from(&node, i, &svc, 20).await;
        assert!(served.windows(2).all(|w| w[0] == w[1]), "one instance");
        threads.push((task, served[0]));
    }
    let crossed = threads.iter().filter(|(task, at)| task != at).count();
    assert_eq!(
        crossed, 1,
        "exactly one arbiter lacks an instance: {threads:?}"
    );
    // The instance's thread is one of the two tasks' threads.
    let instance = threads[0].1;
    assert!(threads.iter().any(|(task, _)| *task == instance));
    node.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_prefer_local_a_task_round_robins() {
    let node = Node::builder().name("rr").arbiters(2).start().unwrap();
    let svc = node.spawn(locator(2)).await.unwrap();
    let (_, mut served) = served_from(&node, 0, &svc, 8).await;
    served.sort_by_key(|t| format!("{t:?}"));
    served.dedup();
    assert_eq!(served.len(), 2, "both instances serve: {served:?}");
    node.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_while_tasks_run() {
    let node = Node::builder()
        .name("stopping")
        .arbiters(2)
        .start()
        .unwrap();
    let svc = node
        .spawn(locator(node.arbiters()).prefer_local())
        .await
        .unwrap();
    // A task that asks until the node refuses, and one that never ends.
    let (first_tx, first_rx) = tokio::sync::oneshot::channel();
    let asking = node.spawn_task_on(0, {
        let svc = svc.clone();
        async move {
            let mut first = Some(first_tx);
            let mut n = 0u64;
            loop {
                match svc.ask(Where).await {
                    Ok(_) => n += 1,
                    Err(e) => return (n, e),
                }
                if let Some(tx) = first.take() {
                    let _ = tx.send(());
                }
                tokio::task::yield_now().await;
            }
        }
    });
    let forever = node.spawn_task_on(1, std::future::pending::<()>());
    first_rx.await.expect("the asking task runs");
    node.shutdown(Duration::from_secs(5)).await.unwrap();
    match tokio::time::timeout(Duration::from_secs(30), asking)
        .await
        .expect("the asking task ends")
    {
        Ok((n, e)) => {
            assert!(n > 0);
            assert_eq!(e, CallError::ShuttingDown);
        }
        Err(e) => assert_eq!(e, TaskError::Stopped),
    }
    let forever = tokio::time::timeout(Duration::from_secs(30), forever)
        .await
        .expect("a pending task's handle resolves when the node stops");
    assert_eq!(forever, Err(TaskError::Stopped));
    assert_eq!(
        node.spawn_task(async {}).await,
        Err(TaskError::ShuttingDown)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_task_is_reported_and_its_arbiter_goes_on() {
    let node = Node::builder().name("panics").arbiters(1).start().unwrap();
    let out = node
        .spawn_task(async {
            if std::hint::black_box(true) {
                panic!("task boom");
            }
        })
        .await;
    assert!(matches!(out, Err(TaskError::Panicked(ref m)) if m.contains("task boom")));
    assert_eq!(node.run(async { 1 }).await, Ok(1));
    node.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[test]
fn a_local_node_runs_tasks_on_its_own_thread() {
    actix_rt::System::new().block_on(async {
        let node = Node::builder().name("lt").start_local().unwrap();
        let svc = node.spawn(locator(1).prefer_local()).await.unwrap();
        let me = std::thread::current().id();
        let (task, served) = node
            .run(async move { (std::thread::current().id(), svc.ask(Where).await) })
            .await
            .unwrap();
        assert_eq!(task, me);
        assert_eq!(served, Ok(me));
        // From another thread: refused, not a panic.
        let n2 = node.clone();
        let other = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            rt.block_on(n2.spawn_task(async {}))
        })
        .join()
        .unwrap();
        assert_eq!(other, Err(TaskError::NotOnNodeThread));
        node.shutdown(Duration::from_secs(5)).await.unwrap();
    });
}
