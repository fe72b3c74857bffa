//! The single-threaded mode: a node on the caller's LocalSet, including
//! inside a turmoil host (which cannot create actix Systems or Arbiters).

use std::time::Duration;

use crate::support::*;
use msa_runtime::prelude::*;
use msa_runtime::NodeError;

#[test]
fn local_node_runs_everything_on_the_callers_thread() {
    let sys = actix::System::new();
    sys.block_on(async {
        let node = Node::builder().name("local").start_local().unwrap();
        assert_eq!(node.arbiters(), 0);
        let mut w = node.watch();
        let svc = node
            .spawn(full_spec("c", Counter::new).instances(2))
            .await
            .unwrap();
        for _ in 0..10 {
            svc.ask(Incr).await.unwrap();
        }
        let _ = svc.ask(Boom).await;
        restarted(&mut w, "c").await;
        let total: u64 = svc
            .ask_all(Get)
            .await
            .unwrap()
            .into_iter()
            .map(Result::unwrap)
            .sum();
        assert_eq!(total, 5, "one of two instances restarted fresh");
        let r = svc
            .ask(SlowAtomic(Duration::from_secs(5)))
            .timeout(Duration::from_millis(30))
            .await;
        assert!(matches!(r, Err(CallError::Timeout { .. })));
        node.shutdown(Duration::from_millis(100)).await.unwrap();
    });
}

#[test]
fn local_node_outside_a_local_set_is_a_clear_error() {
    let err = Node::builder().start_local().unwrap_err();
    assert_eq!(err, NodeError::NoLocalSet);
}

#[test]
fn a_local_node_runs_inside_a_turmoil_host() {
    let mut sim = turmoil::Builder::new().build();
    sim.client("host", async {
        let node = Node::builder()
            .name("sim")
            .start_local()
            .expect("local node in a turmoil host");
        let svc = node
            .spawn(full_spec("c", Counter::new))
            .await
            .expect("spawn");
        for i in 1..=5 {
            assert_eq!(svc.ask(Incr).await.expect("ask"), i);
        }
        // The deadline sweeper runs on turmoil's simulated clock.
        let r = svc
            .ask(SlowAtomic(Duration::from_secs(10)))
            .timeout(Duration::from_millis(50))
            .await;
        assert!(matches!(r, Err(CallError::Timeout { .. })), "{r:?}");
        node.shutdown(Duration::from_millis(100))
            .await
            .expect("shutdown");
        Ok(())
    });
    sim.run().unwrap();
}
