//! The join step on real nodes (issue 10; `remote/join.rs`, driven by
//! `remote/remoting/join_driver.rs`): a node started with seeds is
//! `joining` until every member it sees admits it; while joining (and while
//! downed by the split-brain resolver) it serves no call from other nodes,
//! owns no key, and its own callers' calls to other nodes and keyed calls
//! fail at once, typed; its own local services still serve its own callers.
//! A node restarted into a partition stays joining until the heal.
//!
//! On the in-memory network, with dials across a cut left unanswered (as
//! behind a firewall that drops packets). Refused dials do not make a node
//! `up` alone either: only the first of its seeds may be (seed 101624 of
//! `msa sim`).

use std::time::{Duration, Instant};

use msa_runtime::prelude::*;
use msa_runtime::remote::split_brain::SplitBrainStrategy;
use msa_runtime::remote::transport::MemoryNetwork;
use msa_runtime::remote::ClusterStatus;
use msa_runtime::test_support::eventually;

use crate::support::placement::{ask_where, owner, spawn_placement, status_of};
use crate::support::resolver::resolver_builder;

const SECRET: &[u8] = b"join-secret";
const GRACE: Duration = Duration::from_secs(5);
/// Bound on every wait (forming, deciding, healing).
const BOUND: Duration = Duration::from_secs(40);
/// "At once": far below the ask's own timeout.
const AT_ONCE: Duration = Duration::from_millis(500);
/// How long the restarted node is watched inside the partition: past
/// `JOIN_ALONE_AFTER` (5 s) and a connect timeout (3 s).
const WATCH: Duration = Duration::from_secs(9);
const KEYS: usize = 48;

fn node(net: &MemoryNetwork, name: &str, seeds: &[&Node]) -> Node {
    let mut b = resolver_builder(
        net,
        name,
        seeds.first().copied(),
        SECRET,
        SplitBrainStrategy::KeepMajority,
    );
    for s in seeds.iter().skip(1) {
        b = b.seed(s.remote_addr().unwrap());
    }
    b.start().unwrap()
}

/// Starts `name` (seeded at `seeds`) running `where-NAME` and the keyed
/// `shard`.
async fn start(net: &MemoryNetwork, name: &str, seeds: &[&Node]) -> Node {
    serve(node(net, name, seeds)).await
}

/// Runs `where-NAME` and the keyed `shard` on `n`.
async fn serve(n: Node) -> Node {
    spawn_placement(&n).await;
    n
}

/// Every node's view agrees with every other's and lists every node alive
/// and up, and every call path answers.
async fn formed(nodes: &[&Node]) -> bool {
    let views: Vec<ClusterStatus> = nodes.iter().map(|n| n.cluster_status()).collect();
    let agree = views.iter().all(|v| {
        v.members.len() == nodes.len()
            && v.members
                .iter()
                .all(|m| m.status == "alive" && m.state == "up")
            && views[0].disagreement(v).is_none()
    });
    if !agree {
        return false;
    }
    for from in nodes {
        for to in nodes {
            if ask_where(from, to.name()).await.as_deref() != Ok(to.name()) {
                return false;
            }
        }
    }
    true
}

fn keys() -> Vec<String> {
    (0..KEYS).map(|i| format!("key-{i}")).collect()
}

/// Asserts that `f` fails with `want` at once.
async fn refused_at_once<F>(what: &str, want: &CallError, f: F)
where
    F: std::future::Future<Output = Result<String, CallError>>,
{
    let t = Instant::now();
    let r = f.await;
    assert_eq!(r.as_ref(), Err(want), "{what}");
    assert!(t.elapsed() < AT_ONCE, "{what} took {:?}", t.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_joins_a_healthy_cluster_within_about_a_second_and_the_founder_is_up_at_once() {
    let net = MemoryNetwork::new();
    let a = start(&net, "a", &[]).await;
    assert!(!a.is_joining(), "a node without seeds founds the cluster");
    assert_eq!(status_of(&a, "a"), ("alive".into(), "up".into()));
    let t0 = Instant::now();
    let b = start(&net, "b", &[&a]).await;
    eventually("b is up", BOUND, || async { !b.is_joining() }).await;
    let up_after = t0.elapsed();
    eventually("a and b agree and call each other", BOUND, || async {
        formed(&[&a, &b]).await
    })
    .await;
    let serving_after = t0.elapsed();
    eprintln!("join: b up after {up_after:?}; every call path answers after {serving_after:?}");
    // Generous on a loaded 2-core machine; about 0.5 s when idle.
    assert!(up_after < Duration::from_secs(3), "b up after {up_after:?}");
    b.shutdown(GRACE).await.unwrap();
    a.shutdown(GRACE).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_restarted_into_a_partition_stays_joining_serves_nothing_and_is_up_after_the_heal() {
    let net = MemoryNetwork::new();
    net.set_dials_hang_across_cuts(true);
    let a = start(&net, "a", &[]).await;
    let b = start(&net, "b", &[&a]).await;
    let c = start(&net, "c", &[&a]).await;
    eventually("the cluster forms", BOUND, || async {
        formed(&[&a, &b, &c]).await
    })
    .await;
    let mut on_c = Vec::new();
    for k in keys() {
        if owner(&a, &k).await.unwrap() == "c" {
            on_c.push(k);
        }
    }
    assert!(!on_c.is_empty(), "some keys live on c");

    // c stops; it comes back (a new incarnation, seeded at a and b) on
    // the other side of a partition.
    c.shutdown(GRACE).await.unwrap();
    // Its leave reaches a and b after `shutdown` returns: the watch below
    // is about the new incarnation, so it starts once neither routes a
    // key to the old one (without this wait a keyed call raced the leave
    // and got `NodeDown { node: "c" }`, 2 runs in 8 under load).
    eventually(
        "a and b stop routing keys to the stopped c",
        BOUND,
        || async {
            for n in [&a, &b] {
                for k in keys() {
                    if !matches!(owner(n, &k).await.as_deref(), Ok("a" | "b")) {
                        return false;
                    }
                }
            }
            true
        },
    )
    .await;
    net.cut("c", "a");
    net.cut("c", "b");
    let c = start(&net, "c", &[&a, &b]).await;
    let t0 = Instant::now();
    let joining = CallError::Joining { node: "c".into() };
    while t0.elapsed() < WATCH {
        assert!(c.is_joining(), "c joining after {:?}", t0.elapsed());
        assert_eq!(status_of(&c, "c"), ("alive".into(), "joining".into()));
        // Its callers: other nodes and keys refused at once, typed ...
        refused_at_once("c -> a", &joining, ask_where(&c, "a")).await;
        refused_at_once("c -> key", &joining, owner(&c, &on_c[0])).await;
        // ... its own local services serve them.
        assert_eq!(ask_where(&c, "c").await.unwrap(), "c");
        // The others: one owner for every key, never c.
        for k in keys() {
            let on_a = owner(&a, &k).await.unwrap();
            assert_ne!(on_a, "c", "{k}");
            assert_eq!(owner(&b, &k).await.unwrap(), on_a, "{k}: a and b agree");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        c.remote_stats().self_downs,
        0,
        "a joining node decides nothing"
    );

    net.heal_all();
    let healed = Instant::now();
    eventually("c is up after the heal", BOUND, || async {
        !c.is_joining()
    })
    .await;
    let up_after = healed.elapsed();
    eventually("every view agrees and every call works", BOUND, || async {
        formed(&[&a, &b, &c]).await
    })
    .await;
    eprintln!(
        "join: c up {up_after:?} after the heal; all agree after {:?}",
        healed.elapsed()
    );
    // c owns its keys again, for everyone.
    for k in &on_c {
        for n in [&a, &b, &c] {
            assert_eq!(owner(n, k).await.unwrap(), "c", "{k} from {}", n.name());
        }
    }
    for n in [c, b, a] {
        n.shutdown(GRACE).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_downed_node_refuses_its_local_callers_keys_and_other_nodes_at_once_and_serves_its_own_services(
) {
    let net = MemoryNetwork::new();
    let a = start(&net, "a", &[]).await;
    let b = start(&net, "b", &[&a]).await;
    let c = start(&net, "c", &[&a]).await;
    eventually("the cluster forms", BOUND, || async {
        formed(&[&a, &b, &c]).await
    })
    .await;
    net.cut("c", "a");
    net.cut("c", "b");
    eventually("c downs itself", BOUND, || async { c.is_self_downed() }).await;
    assert!(!c.is_joining(), "downed, not joining");
    let downed = CallError::Downed { node: "c".into() };
    refused_at_once("c -> a", &downed, ask_where(&c, "a")).await;
    // Every key, including the ones c owned: c owns none while downed.
    for k in keys() {
        refused_at_once("c -> key", &downed, owner(&c, &k)).await;
    }
    assert_eq!(ask_where(&c, "c").await.unwrap(), "c");
    net.heal_all();
    eventually("c back and up, every call works", BOUND, || async {
        !c.is_self_downed() && !c.is_joining() && formed(&[&a, &b, &c]).await
    })
    .await;
    for k in keys() {
        let on_a = owner(&a, &k).await.unwrap();
        assert_eq!(owner(&c, &k).await.unwrap(), on_a, "{k}");
    }
    for n in [c, b, a] {
        n.shutdown(GRACE).await.unwrap();
    }
}

/// Seed 101624 of `msa sim` on real nodes: a node with seeds that is not
/// the first of them, whose seeds refuse its dials (nothing listens
/// there), cannot tell a cluster that is not there from one it cannot
/// reach, so it stays joining past `JOIN_ALONE_AFTER` (before, it was `up`
/// alone after it, beside whatever cluster it could not reach); it is up
/// once a seed appears and admits it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_not_first_of_its_seeds_stays_joining_while_they_refuse_and_joins_once_one_appears()
{
    let net = MemoryNetwork::new();
    // The seed's address: taken by a first start of `a`, then freed.
    let gone = node(&net, "a", &[]);
    let a_addr = gone.remote_addr().unwrap();
    gone.shutdown(GRACE).await.unwrap();
    let b = resolver_builder(&net, "b", None, SECRET, SplitBrainStrategy::KeepMajority)
        .seed(a_addr.clone())
        .start()
        .unwrap();
    let b = serve(b).await;
    let t0 = Instant::now();
    while t0.elapsed() < WATCH {
        assert!(b.is_joining(), "b joining after {:?}", t0.elapsed());
        assert_eq!(status_of(&b, "b"), ("alive".into(), "joining".into()));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(b.peers().is_empty(), "nothing answered b: {:?}", b.peers());
    // The seed appears at its address: b joins it.
    let a = resolver_builder(&net, "a", None, SECRET, SplitBrainStrategy::KeepMajority)
        .listen_on(a_addr)
        .start()
        .unwrap();
    let a = serve(a).await;
    let appeared = Instant::now();
    eventually("b is up once its seed appears", BOUND, || async {
        !b.is_joining()
    })
    .await;
    eventually("a and b agree and call each other", BOUND, || async {
        formed(&[&a, &b]).await
    })
    .await;
    eprintln!(
        "join: b up {:?} after its seed appeared",
        appeared.elapsed()
    );
    b.shutdown(GRACE).await.unwrap();
    a.shutdown(GRACE).await.unwrap();
}
