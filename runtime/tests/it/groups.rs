//! Process groups (OTP's `pg`): members listed cluster-wide, sends to all
//! or one of them, leaving on death, node down and explicit leave, late
//! joiners, bad names. The malformed-frame case is a unit test
//! (`remote::remoting::tests::groups`), which speaks raw frames.

use crate::support::*;
use msa_runtime::prelude::*;
use msa_runtime::{GroupError, GroupMember, GroupMembership, InstanceId};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, actix::Message, Serialize, Deserialize, RemoteMessage)]
#[msa(name = "test.pg.Job")]
#[rtype(result = "String")]
struct Job(u64);

const SECRET: &[u8] = b"group-secret";
const GROUP: &str = "workers";

fn cluster_node(name: &str, seeds: &[String]) -> Node {
    let mut b = Node::builder()
        .name(name)
        .arbiters(1)
        .listen("127.0.0.1:0".parse().unwrap())
        .secret(SECRET);
    for s in seeds {
        b = b.seed(s.clone());
    }
    b.start().unwrap()
}

/// Joins the group when it starts; records each job as `node#slot:n`.
struct Worker {
    node: String,
    group: String,
    log: Log,
    membership: Option<GroupMembership>,
}
impl Service for Worker {
    fn started(&mut self, ctx: &mut ServiceContext<'_, Self>) {
        match ctx.join_group::<Job>(&self.group) {
            Ok(m) => self.membership = Some(m),
            Err(e) => self.log.push(format!("join refused: {e}")),
        }
    }
}
impl Handler<Job> for Worker {
    fn handle(&mut self, j: Job, ctx: &mut ServiceContext<'_, Self>) -> Reply<Self, String> {
        let me = format!("{}#{}", self.node, ctx.instance().slot);
        self.log.push(format!("{me}:{}", j.0));
        Reply::ready(me)
    }
}

async fn spawn_workers(node: &Node, group: &str, instances: usize, log: &Log) {
    let (name, group, log) = (node.name().to_string(), group.to_string(), log.clone());
    node.spawn(
        ServiceSpec::new("worker", move || Worker {
            node: name.clone(),
            group: group.clone(),
            log: log.clone(),
            membership: None,
        })
        .handles::<Job>()
        .instances(instances),
    )
    .await
    .unwrap();
}

/// (node, slot) of each member, as `node` lists them.
fn where_members(node: &Node) -> Vec<(String, usize)> {
    node.group::<Job>(GROUP)
        .unwrap()
        .members()
        .into_iter()
        .map(|m| (m.node, m.instance.map_or(usize::MAX, |i| i.slot)))
        .collect()
}

async fn members_seen(node: &Node, want: &[(&str, usize)]) {
    let want: Vec<(String, usize)> = want.iter().map(|(n, s)| (n.to_string(), *s)).collect();
    eventually(&format!("{} lists {want:?}", node.name()), WAIT, || {
        let ok = where_members(node) == want;
        async move { ok }
    })
    .await;
}

/// Jobs from `WARM` up are warm-up jobs, left out of the counts.
const WARM: u64 = 1_000_000;

/// Sends `Job(tag)` (`tag` ≥ [`WARM`]) from `g` to every member until each
/// has handled one.
///
/// Sends are at most once: right after nodes connect, two nodes that dialed
/// each other keep one of their two connections and retire the other, and
/// a frame caught on the retired one can be lost. The exact counts the
/// tests assert are about the group, so they start once every member has
/// been reached from the sending node.
async fn warm_up(g: &msa_runtime::Group<Job>, log: &Log, members: usize, tag: u64) {
    let tail = format!(":{tag}");
    let t0 = std::time::Instant::now();
    loop {
        g.tell_all(Job(tag));
        let round = std::time::Instant::now();
        while round.elapsed() < std::time::Duration::from_millis(200) {
            let mut reached: Vec<String> = log
                .entries()
                .into_iter()
                .filter(|e| e.ends_with(&tail))
                .collect();
            reached.sort();
            reached.dedup();
            if reached.len() == members {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert!(
            t0.elapsed() < WAIT,
            "every member reached: {:?}",
            log.entries()
        );
    }
}

/// The log's entries but the warm-up's.
fn counted(log: &Log) -> Vec<String> {
    log.entries()
        .into_iter()
        .filter(|e| {
            e.rsplit_once(':')
                .and_then(|(_, n)| n.parse::<u64>().ok())
                .is_some_and(|n| n < WARM)
        })
        .collect()
}

/// Each node's topic counters and view of the group (for a failure's message).
fn views(nodes: &[&Node]) -> String {
    nodes
        .iter()
        .map(|n| {
            let g = n.group::<Job>(GROUP).unwrap();
            format!("{}: {:?} {:?}", n.name(), n.topic_stats(), g.members())
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Waits until the log holds `n` entries ending in `:{job}`; returns them
/// sorted. A timeout names what `nodes` see.
async fn handled(log: &Log, job: u64, n: usize, nodes: &[&Node]) -> Vec<String> {
    let tail = format!(":{job}");
    let t0 = std::time::Instant::now();
    while log.entries().iter().filter(|e| e.ends_with(&tail)).count() < n {
        assert!(
            t0.elapsed() < WAIT,
            "{n} members handle job {job}: the log holds {:?}; {}",
            log.entries(),
            views(nodes)
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let mut v: Vec<String> = log
        .entries()
        .into_iter()
        .filter(|e| e.ends_with(&tail))
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_are_listed_on_every_node_and_tell_all_reaches_each_once() {
    let a = cluster_node("a", &[]);
    let seed = a.remote_addr().unwrap();
    let b = cluster_node("b", std::slice::from_ref(&seed));
    let c = cluster_node("c", &[seed]);
    let log = Log::default();
    spawn_workers(&a, GROUP, 2, &log).await;
    spawn_workers(&b, GROUP, 1, &log).await;
    let want = [("a", 0), ("a", 1), ("b", 0)];
    for n in [&a, &b, &c] {
        members_seen(n, &want).await;
    }
    let g = c.group::<Job>(GROUP).unwrap();
    warm_up(&g, &log, 3, WARM).await;
    assert!(g.local_members().is_empty());
    assert_eq!(g.members()[0].service, "worker");
    assert_eq!(g.tell_all(Job(1)), 3);
    // A second send from the same node: each member gets it after the
    // first (one connection per node, one mailbox per member), so once
    // every member has the second, any duplicate of the first is in.
    assert_eq!(g.tell_all(Job(2)), 3);
    eprintln!(
        "c after sending: {:?}, a: {:?}, b: {:?}",
        c.topic_stats(),
        a.topic_stats(),
        b.topic_stats()
    );
    assert_eq!(
        handled(&log, 2, 3, &[&a, &b, &c]).await,
        ["a#0:2", "a#1:2", "b#0:2"]
    );
    assert_eq!(
        handled(&log, 1, 3, &[&a, &b, &c]).await,
        ["a#0:1", "a#1:1", "b#0:1"]
    );
    // From a node with members: its own get the caller's value, b a copy.
    let ga = a.group::<Job>(GROUP).unwrap();
    warm_up(&ga, &log, 3, WARM + 1).await;
    assert_eq!(ga.local_members().len(), 2);
    assert_eq!(ga.tell_all(Job(3)), 3);
    assert_eq!(
        handled(&log, 3, 3, &[&a, &b, &c]).await,
        ["a#0:3", "a#1:3", "b#0:3"]
    );
    assert_eq!(counted(&log).len(), 9, "{:?}", log.entries());
    // ask_all from c: every member answers, across the wire.
    let replies = g.ask_all(Job(4)).await;
    let got: Vec<(String, String)> = replies
        .into_iter()
        .map(|(m, r)| {
            (
                format!("{}#{}", m.node, m.instance.unwrap().slot),
                r.unwrap(),
            )
        })
        .collect();
    let want = ["a#0", "a#1", "b#0"].map(|m| (m.to_string(), m.to_string()));
    assert_eq!(got, want, "each member's own reply");
    assert_eq!(
        handled(&log, 4, 3, &[&a, &b, &c]).await,
        ["a#0:4", "a#1:4", "b#0:4"]
    );
    // From a: its own two locally, b's over the wire.
    assert_eq!(ga.ask_all(Job(5)).await.len(), 3);
    assert_eq!(counted(&log).len(), 15, "{:?}", log.entries());
    // Another group (or another message type's group) sees none of them.
    assert!(c.group::<Job>("others").unwrap().members().is_empty());
    for n in [c, b, a] {
        n.shutdown(GRACE).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tell_one_and_ask_one_reach_one_member_and_prefer_local() {
    let a = cluster_node("a", &[]);
    let seed = a.remote_addr().unwrap();
    let b = cluster_node("b", std::slice::from_ref(&seed));
    let c = cluster_node("c", &[seed]);
    let log = Log::default();
    // Before anyone joins: typed errors, nothing sent.
    let gc = c.group::<Job>(GROUP).unwrap();
    assert!(matches!(
        gc.tell_one(Job(0)),
        Err(GroupError::NoMember { .. })
    ));
    assert!(matches!(
        gc.ask_one(Job(0)).await,
        Err(GroupError::NoMember { .. })
    ));
    spawn_workers(&a, GROUP, 2, &log).await;
    spawn_workers(&b, GROUP, 1, &log).await;
    let want = [("a", 0), ("a", 1), ("b", 0)];
    for n in [&a, &b, &c] {
        members_seen(n, &want).await;
    }
    warm_up(&gc, &log, 3, WARM).await;
    // On a, a member of a is chosen every time.
    let ga = a.group::<Job>(GROUP).unwrap();
    for i in 10..30 {
        let m: GroupMember = ga.tell_one(Job(i)).unwrap();
        assert_eq!(m.node, "a");
        let got = handled(&log, i, 1, &[&a, &b, &c]).await;
        let slot = m.instance.unwrap().slot;
        assert_eq!(got, [format!("a#{slot}:{i}")], "the member chosen, once");
    }
    for i in 30..40 {
        let me = ga.ask_one(Job(i)).await.unwrap();
        assert!(me == "a#0" || me == "a#1", "{me}");
        assert_eq!(
            handled(&log, i, 1, &[&a, &b, &c]).await,
            [format!("{me}:{i}")]
        );
    }
    // On c (no member here): one member anywhere, the one it names.
    let mut nodes = std::collections::BTreeSet::new();
    for i in 100..130 {
        let m = gc.tell_one(Job(i)).unwrap();
        let slot = m.instance.unwrap().slot;
        assert_eq!(
            handled(&log, i, 1, &[&a, &b, &c]).await,
            [format!("{}#{slot}:{i}", m.node)]
        );
        nodes.insert(m.node);
    }
    assert_eq!(nodes.len(), 2, "spread over a and b: {nodes:?}");
    // Asks from c: no local member, so one on a or b, across the wire.
    let mut answered = std::collections::BTreeSet::new();
    for i in 200..230 {
        let me = gc.ask_one(Job(i)).await.unwrap();
        assert_eq!(
            handled(&log, i, 1, &[&a, &b, &c]).await,
            [format!("{me}:{i}")]
        );
        answered.insert(me);
    }
    assert!(
        answered.iter().any(|m| m.starts_with("a#")) && answered.contains("b#0"),
        "spread over a and b: {answered:?}"
    );
    // Every send reached exactly one member.
    assert_eq!(
        counted(&log).len(),
        20 + 10 + 30 + 30,
        "{:?}",
        log.entries()
    );
    for n in [c, b, a] {
        n.shutdown(GRACE).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_instance_a_stopped_service_and_a_dropped_membership_leave() {
    let a = cluster_node("a", &[]);
    let b = cluster_node("b", &[a.remote_addr().unwrap()]);
    let log = Log::default();
    spawn_workers(&a, GROUP, 2, &log).await;
    members_seen(&b, &[("a", 0), ("a", 1)]).await;
    let inst = |n: &Node| -> Vec<Option<InstanceId>> {
        n.group::<Job>(GROUP)
            .unwrap()
            .members()
            .into_iter()
            .map(|m| m.instance)
            .collect()
    };
    let before = inst(&b);
    assert!(before.contains(&Some(InstanceId {
        slot: 0,
        incarnation: 0
    })));
    // Slot 0 killed: its instance leaves, its restart joins anew.
    a.kill_instance(
        "worker",
        InstanceId {
            slot: 0,
            incarnation: 0,
        },
    )
    .await
    .unwrap();
    eventually(
        "b sees the dead instance gone and its restart",
        WAIT,
        || {
            let now = inst(&b);
            async move {
                now.len() == 2
                    && !now.contains(&Some(InstanceId {
                        slot: 0,
                        incarnation: 0,
                    }))
                    && now.contains(&Some(InstanceId {
                        slot: 0,
                        incarnation: 1,
                    }))
            }
        },
    )
    .await;
    // A whole service joined explicitly, then left by dropping it.
    let gb = b.group::<Job>(GROUP).unwrap();
    let svc = a.service("worker");
    let joined = a.group::<Job>(GROUP).unwrap().join_service(&svc);
    eventually("b sees the service member", WAIT, || {
        let n = gb.members().iter().filter(|m| m.instance.is_none()).count();
        async move { n == 1 }
    })
    .await;
    joined.leave();
    members_seen(&b, &[("a", 0), ("a", 1)]).await;
    // The service stopped: every member leaves.
    a.stop_service("worker").await.unwrap();
    members_seen(&b, &[]).await;
    members_seen(&a, &[]).await;
    b.shutdown(GRACE).await.unwrap();
    a.shutdown(GRACE).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_node_sees_existing_members_and_a_node_shut_down_leaves() {
    let a = cluster_node("a", &[]);
    let seed = a.remote_addr().unwrap();
    let b = cluster_node("b", std::slice::from_ref(&seed));
    let log = Log::default();
    spawn_workers(&a, GROUP, 1, &log).await;
    spawn_workers(&b, GROUP, 1, &log).await;
    members_seen(&a, &[("a", 0), ("b", 0)]).await;
    // c joins after the members: it learns them from the tables.
    let c = cluster_node("c", &[seed]);
    members_seen(&c, &[("a", 0), ("b", 0)]).await;
    let gc = c.group::<Job>(GROUP).unwrap();
    warm_up(&gc, &log, 2, WARM).await;
    assert_eq!(gc.tell_all(Job(1)), 2);
    assert_eq!(handled(&log, 1, 2, &[&a, &b, &c]).await, ["a#0:1", "b#0:1"]);
    // b shuts down: its member disappears on a and c.
    b.shutdown(GRACE).await.unwrap();
    members_seen(&a, &[("a", 0)]).await;
    members_seen(&c, &[("a", 0)]).await;
    assert_eq!(gc.tell_all(Job(2)), 1);
    assert_eq!(handled(&log, 2, 1, &[&a, &c]).await, ["a#0:2"]);
    c.shutdown(GRACE).await.unwrap();
    a.shutdown(GRACE).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_group_name_is_a_typed_error() {
    let n = node("groups-names");
    for bad in [
        String::new(),
        "x".repeat(256),
        "a\nb".into(),
        "a\u{1}b".into(),
    ] {
        match n.group::<Job>(&bad) {
            Err(GroupError::InvalidName { reason, .. }) => assert!(!reason.is_empty()),
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    assert!(n.group::<Job>(&"x".repeat(255)).is_ok());
    // Joining from an instance with a bad name: the same error.
    let log = Log::default();
    spawn_workers(&n, "", 1, &log).await;
    eventually("the refusal logged", WAIT, || {
        let e = log.entries();
        async move {
            e.iter()
                .any(|l| l.starts_with("join refused: invalid group name"))
        }
    })
    .await;
    assert!(n.group::<Job>(GROUP).unwrap().members().is_empty());
    n.shutdown(GRACE).await.unwrap();
}
