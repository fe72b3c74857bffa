//! Process death across real `msa node` processes: three nodes on loopback
//! and an in-process test node call across them; `kill -9` one, see its
//! services leave every registry within the failure-detection bound, restart
//! it, and see it rejoin with a new incarnation and serve again.

use std::time::{Duration, Instant};

use crate::support::{
    block_on_runtime, eventually, service_nodes, status_json, tester_node, NodeProc,
};
use msa::actors::{echo, kv};
use msa::CallError;

/// The failure-detection bound this test holds the cluster to (the runtime
/// aims at ≤ 5 s; the margin absorbs a loaded 2-core CI machine).
const DETECTION_BOUND: Duration = Duration::from_secs(10);

#[test]
fn a_killed_node_leaves_every_registry_and_rejoins_with_a_new_incarnation() {
    let secret = "failover-test-secret";
    let rt = block_on_runtime();
    let n1 = NodeProc::start("node1", secret, None, &["kv:kv:2"]);
    let mut n2 = NodeProc::start("node2", secret, Some(n1.addr()), &["echo"]);
    let n3 = NodeProc::start("node3", secret, Some(n1.addr()), &["counter"]);

    let tester = tester_node("tester", n1.addr(), secret);
    // The tester hosts nothing and registers nothing: it calls services
    // in other processes with the messages' own types.

    // Calls across processes: kv on node1, echo on node2.
    assert!(
        eventually(Duration::from_secs(10), || {
            !tester.remote_instances("kv").is_empty() && !tester.remote_instances("echo").is_empty()
        }),
        "the test node never learned kv and echo: {:?}",
        tester.cluster_status()
    );
    rt.block_on(async {
        let store = tester.service("kv");
        assert_eq!(store.ask(kv::Put::new("k", "v")).await.unwrap(), None);
        assert_eq!(
            store.ask(kv::Get::new("k")).await.unwrap(),
            Some(b"v".to_vec())
        );
        let pong = tester.service("echo").ask(echo::Ping(7)).await.unwrap();
        assert_eq!(pong, echo::Pong(7));
    });
    let old_incarnation = n2.ready.incarnation;

    // kill -9 node2: echo leaves the test node's registry within the bound…
    n2.proc.kill9();
    let killed = Instant::now();
    assert!(
        eventually(DETECTION_BOUND, || tester
            .remote_instances("echo")
            .is_empty()),
        "echo still registered {DETECTION_BOUND:?} after node2 died: {:?}",
        tester.cluster_status()
    );
    let detected = killed.elapsed();
    eprintln!("node2's death seen by the test node after {detected:?}");
    assert!(detected <= DETECTION_BOUND);
    // …and every other node's.
    for n in [&n1, &n3] {
        let mut last = None;
        let left = eventually(DETECTION_BOUND.saturating_sub(killed.elapsed()), || {
            last = status_json(n.addr(), secret);
            last.as_ref()
                .is_some_and(|s| service_nodes(s, "echo").is_empty())
        });
        assert!(left, "echo still in {}'s registry: {last:?}", n.ready.name);
    }
    // An ask to the dead service fails at once with a typed error.
    let err = rt
        .block_on(async { tester.service("echo").ask(echo::Ping(8)).await })
        .unwrap_err();
    eprintln!("ask to the dead node's service: {err}");
    assert!(
        matches!(
            err,
            CallError::NoInstance { .. }
                | CallError::NodeDown { .. }
                | CallError::UnknownService { .. }
        ),
        "{err:?}"
    );
    // kv on node1 is unaffected.
    let v = rt
        .block_on(async { tester.service("kv").ask(kv::Get::new("k")).await })
        .unwrap();
    assert_eq!(v, Some(b"v".to_vec()));

    // Restart node2 under the same name: a new member, serving echo again.
    let n2b = NodeProc::start("node2", secret, Some(n1.addr()), &["echo"]);
    assert_ne!(n2b.ready.incarnation, old_incarnation);
    let rejoined = eventually(Duration::from_secs(10), || {
        tester.cluster_status().members.iter().any(|m| {
            m.name == "node2" && m.status == "alive" && m.incarnation == n2b.ready.incarnation
        }) && !tester.remote_instances("echo").is_empty()
    });
    assert!(
        rejoined,
        "node2 did not rejoin: {:?}",
        tester.cluster_status()
    );
    assert!(
        !tester
            .cluster_status()
            .members
            .iter()
            .any(|m| m.name == "node2" && m.incarnation == old_incarnation && m.status == "alive"),
        "the old incarnation came back to life: {:?}",
        tester.cluster_status()
    );
    let pong = rt
        .block_on(async { tester.service("echo").ask(echo::Ping(9)).await })
        .unwrap();
    assert_eq!(pong, echo::Pong(9));
    let s = status_json(n1.addr(), secret).expect("status from node1");
    assert_eq!(service_nodes(&s, "echo"), ["node2"]);

    tester.shutdown_blocking(Duration::from_secs(5)).unwrap();
}

#[test]
fn a_frozen_node_is_declared_down_by_failure_detection_within_the_bound() {
    // SIGSTOP keeps the process's sockets open: no connection reset tells
    // the others, only the failure detector can.
    let secret = "frozen-test-secret";
    let rt = block_on_runtime();
    let n1 = NodeProc::start("f1", secret, None, &["kv"]);
    let n2 = NodeProc::start("f2", secret, Some(n1.addr()), &["echo"]);
    let tester = tester_node("f-tester", n1.addr(), secret);
    assert!(eventually(Duration::from_secs(10), || !tester
        .remote_instances("echo")
        .is_empty()));
    let pong = rt.block_on(async { tester.service("echo").ask(echo::Ping(1)).await });
    assert_eq!(pong.unwrap(), echo::Pong(1));

    let frozen = Instant::now();
    n2.proc.freeze();
    // An ask in flight when the node is declared down fails with NodeDown
    // then, not at its own (longer) timeout.
    let in_flight = rt.block_on(async {
        tester
            .service("echo")
            .ask(echo::Ping(2))
            .timeout(Duration::from_secs(30))
            .await
    });
    let failed_after = frozen.elapsed();
    eprintln!("ask to the frozen node failed after {failed_after:?}: {in_flight:?}");
    assert!(
        matches!(in_flight, Err(CallError::NodeDown { .. })),
        "{in_flight:?}"
    );
    assert!(failed_after <= DETECTION_BOUND, "{failed_after:?}");
    assert!(
        eventually(DETECTION_BOUND.saturating_sub(frozen.elapsed()), || tester
            .remote_instances("echo")
            .is_empty()),
        "echo still registered {DETECTION_BOUND:?} after f2 froze: {:?}",
        tester.cluster_status()
    );
    let mut last = None;
    let left = eventually(DETECTION_BOUND.saturating_sub(frozen.elapsed()), || {
        last = status_json(n1.addr(), secret);
        last.as_ref()
            .is_some_and(|s| service_nodes(s, "echo").is_empty())
    });
    assert!(left, "echo still in f1's registry: {last:?}");
    eprintln!(
        "f2's freeze detected everywhere after {:?}",
        frozen.elapsed()
    );
    tester.shutdown_blocking(Duration::from_secs(5)).unwrap();
    // Dropping n2 sends SIGKILL, which ends a stopped process too.
}
