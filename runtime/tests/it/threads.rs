//! Shutdown leaves no thread behind. (Counted in a process of its own:
//! other tests' threads would blur the count.)

use std::time::Duration;

use msa_runtime::prelude::*;

fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(0)
}

#[derive(actix::Message)]
#[rtype(result = "u32")]
struct Ping;
struct Pong;
impl Service for Pong {}
impl Handler<Ping> for Pong {
    fn handle(&mut self, _: Ping, _: &mut ServiceContext<'_, Self>) -> Reply<Self, u32> {
        Reply::ready(7)
    }
}

#[test]
fn shutdown_joins_every_thread_the_node_started() {
    if !msa_runtime::test_support::in_own_process(
        "threads::shutdown_joins_every_thread_the_node_started",
    ) {
        return;
    }
    let before = thread_count();
    assert!(before > 0, "/proc/self/task is readable");
    for round in 0..3 {
        let node = Node::builder()
            .name(format!("t{round}"))
            .arbiters(3)
            .start()
            .unwrap();
        assert!(
            thread_count() >= before + 5,
            "system + 3 arbiters + sweeper"
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let svc = node
                .spawn(
                    ServiceSpec::new("p", || Pong)
                        .handles_local::<Ping>()
                        .instances(4),
                )
                .await
                .unwrap();
            assert_eq!(svc.ask(Ping).await.unwrap(), 7);
            node.shutdown(Duration::from_secs(5)).await.unwrap();
        });
        drop(rt);
        // A joined thread can linger in /proc for a moment after `join`
        // returns (the kernel wakes the joiner before it drops the task), so
        // wait, bounded, for the count to settle.
        let t0 = std::time::Instant::now();
        while thread_count() != before && t0.elapsed() < Duration::from_secs(2) {
            std::thread::yield_now();
        }
        assert_eq!(
            thread_count(),
            before,
            "round {round}: every node thread was joined"
        );
    }
}
