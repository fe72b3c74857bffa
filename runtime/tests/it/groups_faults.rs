//! Process groups against failures, on the in-memory transport: a member's
//! node isolated (as a crash looks to the others) leaves every other
//! node's view within the failure-detection bound, and sends skip it
//! without hanging; across a cut link its members are not reached from
//! the far side, and after the heal they come back.

use std::time::{Duration, Instant};

use msa_runtime::prelude::*;
use msa_runtime::remote::transport::MemoryNetwork;
use serde::{Deserialize, Serialize};

use crate::support::{eventually, GRACE};

#[derive(Debug, Clone, PartialEq, actix::Message, Serialize, Deserialize, RemoteMessage)]
#[msa(name = "test.pgf.Job")]
#[rtype(result = "String")]
struct Job(u64);

const SECRET: &[u8] = b"group-faults-secret";
const GROUP: &str = "fault-workers";
/// Failure detection of these nodes.
const DETECTION: Duration = Duration::from_millis(1_000);
/// Bound on every wait: far above what it takes.
const BOUND: Duration = Duration::from_secs(30);

/// Joins the group when it starts; answers its node's name.
struct Worker {
    node: String,
    membership: Option<msa_runtime::GroupMembership>,
}
impl Service for Worker {
    fn started(&mut self, ctx: &mut ServiceContext<'_, Self>) {
        self.membership = ctx.join_group::<Job>(GROUP).ok();
    }
}
impl Handler<Job> for Worker {
    fn handle(&mut self, _: Job, _: &mut ServiceContext<'_, Self>) -> Reply<Self, String> {
        Reply::ready(self.node.clone())
    }
}

fn node(net: &MemoryNetwork, name: &str, seed: Option<&Node>) -> Node {
    crate::support::memory_node(net, name, seed, SECRET, Some(DETECTION))
}

async fn spawn_worker(n: &Node) {
    let name = n.name().to_string();
    n.spawn(
        ServiceSpec::new("worker", move || Worker {
            node: name.clone(),
            membership: None,
        })
        .handles::<Job>(),
    )
    .await
    .unwrap();
}

/// The nodes of the members `n` lists.
fn member_nodes(n: &Node) -> Vec<String> {
    let mut v: Vec<String> = n
        .group::<Job>(GROUP)
        .unwrap()
        .members()
        .into_iter()
        .map(|m| m.node)
        .collect();
    v.sort();
    v
}

async fn members_seen(n: &Node, want: &[&str]) {
    eventually(
        &format!("{} lists members on {want:?}", n.name()),
        BOUND,
        || {
            let ok = member_nodes(n) == want;
            async move { ok }
        },
    )
    .await;
}

/// `ask_all` from `n`: the nodes that answered, sorted; bounded (never a hang).
async fn answered(n: &Node) -> Vec<String> {
    let g = n.group::<Job>(GROUP).unwrap();
    let all = tokio::time::timeout(BOUND, g.ask_all(Job(1)))
        .await
        .expect("ask_all returns within the bound");
    let mut v: Vec<String> = all.into_iter().filter_map(|(_, r)| r.ok()).collect();
    v.sort();
    v
}

async fn three(net: &MemoryNetwork) -> (Node, Node, Node) {
    let x = node(net, "x", None);
    let y = node(net, "y", Some(&x));
    let z = node(net, "z", Some(&x));
    for n in [&x, &y, &z] {
        spawn_worker(n).await;
    }
    for n in [&x, &y, &z] {
        members_seen(n, &["x", "y", "z"]).await;
    }
    (x, y, z)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolated_members_node_leaves_the_group_within_the_detection_bound() {
    let net = MemoryNetwork::new();
    let (x, y, z) = three(&net).await;
    eventually("every member answers x", BOUND, || {
        let x = x.clone();
        async move { answered(&x).await == ["x", "y", "z"] }
    })
    .await;
    // y is cut off from everyone: to x and z it has crashed.
    let t0 = Instant::now();
    let (ya, xa, za) = (
        y.remote_addr().unwrap(),
        x.remote_addr().unwrap(),
        z.remote_addr().unwrap(),
    );
    net.cut(&ya, &xa);
    net.cut(&ya, &za);
    // Sends meanwhile never hang: ask_all answers within the bound.
    let _ = answered(&x).await;
    members_seen(&x, &["x", "z"]).await;
    members_seen(&z, &["x", "z"]).await;
    let took = t0.elapsed();
    assert!(
        took < 10 * DETECTION,
        "y's member left within the detection bound (with slack): {took:?}"
    );
    let g = x.group::<Job>(GROUP).unwrap();
    assert_eq!(g.tell_all(Job(2)), 2, "tell_all skips y");
    assert_eq!(answered(&x).await, ["x", "z"]);
    net.heal_all();
    for n in [z, y, x] {
        n.shutdown(GRACE).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn across_a_cut_link_members_are_skipped_and_come_back_after_the_heal() {
    let net = MemoryNetwork::new();
    let (x, y, z) = three(&net).await;
    net.cut(&x.remote_addr().unwrap(), &y.remote_addr().unwrap());
    // From x, y's member is not reached (a partial cut: z still sees it);
    // ask_all returns, without y's answer, within the bound.
    eventually("x stops reaching y's member", BOUND, || {
        let x = x.clone();
        async move { answered(&x).await == ["x", "z"] }
    })
    .await;
    assert_eq!(answered(&z).await, ["x", "y", "z"]);
    net.heal("x", "y");
    members_seen(&x, &["x", "y", "z"]).await;
    eventually("x reaches y's member again", BOUND, || {
        let x = x.clone();
        async move { answered(&x).await == ["x", "y", "z"] }
    })
    .await;
    for n in [z, y, x] {
        n.shutdown(GRACE).await.unwrap();
    }
}
