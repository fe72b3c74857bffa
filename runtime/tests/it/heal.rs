//! Healing: after a partition heals, every node's view of the cluster agrees
//! again (same members, incarnations, statuses and service-table versions,
//! [`ClusterStatus::disagreement`]) within 15 s, every time: one node of
//! three is isolated on the in-memory network and healed, again and again,
//! with the isolated node, the length of the cut and the moment of the heal
//! varied from round to round.

use std::time::{Duration, Instant};

use msa_runtime::prelude::*;
use msa_runtime::remote::transport::MemoryNetwork;
use msa_runtime::remote::ClusterStatus;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, actix::Message, Serialize, Deserialize, RemoteMessage)]
#[rtype(result = "String")]
#[msa(name = "heal.Where")]
struct Where;

struct Here(String);
impl Service for Here {}
impl Handler<Where> for Here {
    fn handle(&mut self, _: Where, _: &mut ServiceContext<'_, Self>) -> Reply<Self, String> {
        Reply::ready(self.0.clone())
    }
}

const SECRET: &[u8] = b"heal-secret";
const GRACE: Duration = Duration::from_secs(5);
/// Failure detection of these nodes (the default is 5 s; shorter keeps the
/// rounds short, and healing does not depend on it).
const DETECTION: Duration = Duration::from_millis(1_000);
/// The bound the issue sets on reconvergence after a heal.
const HEAL_BOUND: Duration = Duration::from_secs(15);
/// Bound on waiting for a cut to be noticed.
const NOTICE_BOUND: Duration = Duration::from_secs(10);

fn node(net: &MemoryNetwork, name: &str, seed: Option<&Node>) -> Node {
    crate::support::memory_node(net, name, seed, SECRET, Some(DETECTION))
}

/// Why the views of `nodes` do not agree, or `None` when they do.
fn disagreement(nodes: &[Node]) -> Option<String> {
    let views: Vec<ClusterStatus> = nodes.iter().map(|n| n.cluster_status()).collect();
    views.iter().zip(nodes).skip(1).find_map(|(v, n)| {
        views[0]
            .disagreement(v)
            .map(|d| format!("{} vs {}: {d}", nodes[0].name(), n.name()))
    })
}

/// Waits until the views agree with every member alive; returns how long it
/// took, or panics past `within` with the last disagreement.
async fn agreement(nodes: &[Node], within: Duration, what: &str) -> Duration {
    let t0 = Instant::now();
    loop {
        let why = disagreement(nodes).or_else(|| {
            let v = nodes[0].cluster_status();
            let alive = v.members.iter().filter(|m| m.status == "alive").count();
            (alive != nodes.len()).then(|| format!("{alive} of {} alive: {v:?}", nodes.len()))
        });
        match why {
            None => return t0.elapsed(),
            Some(why) if t0.elapsed() > within => {
                panic!(
                    "{what}: no agreement within {within:?}: {why}\n{:#?}",
                    views(nodes)
                );
            }
            Some(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// Each node's members, for failure messages.
fn views(nodes: &[Node]) -> Vec<(String, Vec<String>)> {
    nodes
        .iter()
        .map(|n| {
            let members = n.cluster_status().members.into_iter();
            let members = members.map(|m| {
                format!(
                    "{} {} inc {} table {}",
                    m.name, m.status, m.incarnation, m.table_version
                )
            });
            (n.name().to_string(), members.collect())
        })
        .collect()
}

/// Whether `at` sees `who` as anything but alive (or not at all).
fn sees_down(at: &Node, who: &str) -> bool {
    at.cluster_status()
        .members
        .iter()
        .find(|m| m.name == who)
        .is_none_or(|m| m.status != "alive")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolated_node_rejoins_and_every_view_agrees_within_15_seconds_every_time() {
    let net = MemoryNetwork::new();
    let a = node(&net, "a", None);
    let b = node(&net, "b", Some(&a));
    let c = node(&net, "c", Some(&a));
    let nodes = [a, b, c];
    for n in &nodes {
        let me = n.name().to_string();
        n.spawn(ServiceSpec::new(format!("on-{me}"), move || Here(me.clone())).handles::<Where>())
            .await
            .unwrap();
    }
    agreement(&nodes, HEAL_BOUND, "start").await;

    // (isolated node, cut held after everyone noticed it (None: healed
    // before anyone could, mid-suspicion), in ms)
    let rounds: [(usize, Option<u64>); 9] = [
        (2, Some(0)),
        (0, Some(700)),
        (1, None),
        (2, Some(2_300)),
        (0, None),
        (1, Some(150)),
        (2, None),
        (0, Some(1_900)),
        (1, Some(3_100)),
    ];
    let mut took = Vec::new();
    for (round, (isolated, hold)) in rounds.into_iter().enumerate() {
        let lone = nodes[isolated].name().to_string();
        let others: Vec<&Node> = nodes.iter().filter(|n| n.name() != lone).collect();
        for o in &others {
            net.cut(&lone, o.name());
        }
        match hold {
            Some(ms) => {
                let t0 = Instant::now();
                while !others
                    .iter()
                    .all(|o| sees_down(o, &lone) && sees_down(&nodes[isolated], o.name()))
                {
                    if t0.elapsed() > NOTICE_BOUND {
                        panic!(
                            "round {round}: {lone} and the others do not see each other down: {:#?}",
                            views(&nodes)
                        );
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            // Healed within the detection bound: a partition too short to
            // be declared must heal too.
            None => {
                tokio::time::sleep(DETECTION / 2 + Duration::from_millis(97 * round as u64)).await
            }
        }
        for o in &others {
            net.heal(&lone, o.name());
        }
        let t = agreement(
            &nodes,
            HEAL_BOUND,
            &format!("round {round} ({lone} isolated)"),
        )
        .await;
        took.push(t);
    }
    eprintln!("heal times: {took:?}");
    // Calls work across every link again.
    for from in &nodes {
        for to in &nodes {
            let svc = from.service(&format!("on-{}", to.name()));
            let r = svc.ask(Where).timeout(Duration::from_secs(2)).await;
            assert_eq!(r.unwrap(), to.name());
        }
    }
    for n in nodes.into_iter().rev() {
        n.shutdown(GRACE).await.unwrap();
    }
}

/// A transport that counts the dials it makes.
#[derive(Debug)]
struct Counting {
    net: MemoryNetwork,
    dials: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl msa_runtime::remote::transport::Transport for Counting {
    fn connect(
        &self,
        addr: String,
    ) -> msa_runtime::remote::transport::BoxFuture<
        std::io::Result<msa_runtime::remote::transport::BoxStream>,
    > {
        self.dials
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.net.connect(addr)
    }

    fn bind(
        &self,
        addr: &str,
    ) -> std::io::Result<Box<dyn msa_runtime::remote::transport::Listener>> {
        self.net.bind(addr)
    }

    fn is_local(&self, addr: &str) -> bool {
        self.net.is_local(addr)
    }
}

/// Whichever node's dial wins after a heal, the seed dialer of the other
/// does not keep opening connections that the duplicate tie-break retires
/// (it did, every few seconds, for as long as the kept one lived).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_heal_no_node_keeps_dialing_a_node_it_is_connected_to() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let net = MemoryNetwork::new();
    let a = node(&net, "a", None);
    let dials = std::sync::Arc::new(AtomicUsize::new(0));
    let z = Node::builder()
        .name("z")
        .arbiters(1)
        .transport(Counting {
            net: net.clone(),
            dials: dials.clone(),
        })
        .listen_on("z:0")
        .secret(SECRET)
        .failure_detection(DETECTION)
        .seed(a.remote_addr().unwrap())
        .start()
        .unwrap();
    let nodes = [a, z];
    agreement(&nodes, HEAL_BOUND, "start").await;
    for round in 0..4u64 {
        net.cut("a", "z");
        let t0 = Instant::now();
        while !(sees_down(&nodes[0], "z") && sees_down(&nodes[1], "a")) {
            assert!(
                t0.elapsed() < NOTICE_BOUND,
                "round {round}: cut not noticed"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(300 * round)).await;
        net.heal("a", "z");
        agreement(&nodes, HEAL_BOUND, &format!("round {round}")).await;
        // Settled: a data connection and its lane. From now on z dials a
        // only if they drop, which nothing makes them do.
        tokio::time::sleep(DETECTION).await;
        let before = dials.load(Ordering::Relaxed);
        tokio::time::sleep(3 * DETECTION).await;
        let extra = dials.load(Ordering::Relaxed) - before;
        assert!(
            extra <= 1,
            "round {round}: z dialed a {extra} times while connected"
        );
    }
    for n in nodes.into_iter().rev() {
        n.shutdown(GRACE).await.unwrap();
    }
}
