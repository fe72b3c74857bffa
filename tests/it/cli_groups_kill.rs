//! Process groups across real `msa node` processes: echo instances are
//! members of the group named after their service (of `echo.Ping`); one
//! node is killed with SIGKILL, and its members leave the view of an
//! in-process test node within the failure-detection bound, after which
//! `ask_all` and `tell_all` skip them (and never hang on them).

use std::time::{Duration, Instant};

use crate::support::{block_on_runtime, eventually, tester_node, NodeProc};
use msa::actors::echo::{Ping, Pong};
use msa::Node;

/// The failure-detection bound (as in `cli_failover`: the runtime aims at
/// ≤ 5 s; the margin absorbs a loaded 2-core CI machine).
const DETECTION_BOUND: Duration = Duration::from_secs(10);

/// The nodes of `tester`'s view of the group `echo`, one entry per member, sorted.
fn member_nodes(tester: &Node) -> Vec<String> {
    let mut v: Vec<String> = tester
        .group::<Ping>("echo")
        .unwrap()
        .members()
        .into_iter()
        .map(|m| m.node)
        .collect();
    v.sort();
    v
}

#[test]
fn a_sigkilled_nodes_group_members_leave_and_group_sends_skip_them() {
    let secret = "groups-kill-test-secret";
    let rt = block_on_runtime();
    let n1 = NodeProc::start("node1", secret, None, &["echo"]);
    let mut n2 = NodeProc::start("node2", secret, Some(n1.addr()), &["echo:echo:2"]);
    let tester = tester_node("tester", n1.addr(), secret);
    let group = tester.group::<Ping>("echo").unwrap();
    assert!(
        eventually(Duration::from_secs(20), || member_nodes(&tester)
            == ["node1", "node2", "node2"]),
        "the test node never saw the three echo members: {:?}",
        group.members()
    );
    // Before the kill: every member answers, and a tell_all addresses all.
    let answered = rt.block_on(group.ask_all(Ping(1)));
    let mut from: Vec<&str> = answered.iter().map(|(m, _)| m.node.as_str()).collect();
    from.sort_unstable();
    assert_eq!(from, ["node1", "node2", "node2"]);
    for (m, r) in &answered {
        assert_eq!(r.as_ref(), Ok(&Pong(1)), "{m:?}");
    }
    assert_eq!(group.tell_all(Ping(2)), 3);

    // SIGKILL node2: no Leaving, nothing flushed; the failure detector
    // has to find out.
    n2.proc.kill9();
    let killed = Instant::now();
    assert!(
        eventually(DETECTION_BOUND, || member_nodes(&tester) == ["node1"]),
        "node2's members still listed {DETECTION_BOUND:?} after its SIGKILL: {:?}",
        group.members()
    );
    let detected = killed.elapsed();
    eprintln!("node2's group members left the test node's view after {detected:?}");

    // Sends skip them: tell_all addresses node1's member only, ask_all
    // asks it alone and returns at once (no wait on the dead node).
    assert_eq!(group.tell_all(Ping(3)), 1);
    let asked = Instant::now();
    let answered = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(5), group.ask_all(Ping(4))).await
    });
    let answered = answered.expect("ask_all hung after node2's death");
    assert_eq!(answered.len(), 1, "{answered:?}");
    assert_eq!(answered[0].0.node, "node1");
    assert_eq!(answered[0].1.as_ref(), Ok(&Pong(4)));
    eprintln!("ask_all after the kill took {:?}", asked.elapsed());
    // tell_one/ask_one find the member left, never the dead ones.
    for i in 0..4 {
        assert_eq!(group.tell_one(Ping(10 + i)).unwrap().node, "node1");
    }
    let pong = rt.block_on(group.ask_one(Ping(20))).unwrap();
    assert_eq!(pong, Pong(20));

    tester.shutdown_blocking(Duration::from_secs(5)).unwrap();
    drop(n1);
}
