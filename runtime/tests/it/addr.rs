//! Routable addresses: what a node binds (`listen`) and what others dial
//! (`advertise`) are separate; an unspecified address is never advertised;
//! IPv6 works end to end.

use crate::support::*;
use msa_runtime::prelude::*;
use msa_runtime::NodeError;

const SECRET: &[u8] = b"addr-secret";

fn builder(name: &str) -> msa_runtime::NodeBuilder {
    Node::builder().name(name).arbiters(1).secret(SECRET)
}

/// Whether this machine has an IPv6 loopback (prints why a test skips).
fn ipv6_loopback(test: &str) -> bool {
    match std::net::TcpListener::bind("[::1]:0") {
        Ok(_) => true,
        Err(e) => {
            eprintln!("skipping {test}: this machine has no IPv6 loopback ([::1]: {e})");
            false
        }
    }
}

/// Every member's address in `n`'s view of the cluster, by name.
fn member_addrs(n: &Node) -> Vec<(String, String)> {
    let mut v: Vec<_> = n
        .cluster_status()
        .members
        .into_iter()
        .map(|m| (m.name, m.addr))
        .collect();
    v.sort();
    v
}

#[test]
fn an_unspecified_listen_address_without_advertise_is_refused() {
    for listen in ["0.0.0.0:0", "[::]:0"] {
        let r = builder("u").listen(listen.parse().unwrap()).start();
        assert!(
            matches!(&r, Err(NodeError::UnroutableListen { addr }) if addr == listen),
            "{listen}: {r:?}"
        );
        let msg = r.unwrap_err().to_string();
        assert!(
            msg.contains("advertise"),
            "the error says what to set: {msg}"
        );
    }
}

#[test]
fn an_undialable_advertise_address_is_refused() {
    for adv in [
        "0.0.0.0:7000",
        "[::]:0",
        "no-port",
        "::1:7000",
        "host:70000",
    ] {
        let r = builder("bad")
            .listen("127.0.0.1:0".parse().unwrap())
            .advertise(adv)
            .start();
        assert!(
            matches!(&r, Err(NodeError::BadAdvertise { addr, .. }) if addr == adv),
            "{adv}: {r:?}"
        );
    }
    let r = builder("nolisten").advertise("127.0.0.1:7000").start();
    assert!(
        matches!(r, Err(NodeError::BadAdvertise { .. })),
        "advertise without listen: {r:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_bound_to_all_interfaces_advertises_its_advertise_address() {
    // Bound to every interface, port 0: advertise's port 0 is the bound port.
    let a = builder("addr-a")
        .listen("0.0.0.0:0".parse().unwrap())
        .advertise("127.0.0.1:0")
        .start()
        .unwrap();
    let adv = a.remote_addr().unwrap();
    let port: u16 = adv.strip_prefix("127.0.0.1:").unwrap().parse().unwrap();
    assert_ne!(port, 0, "the bound port, not 0");
    let b = builder("addr-b")
        .listen("127.0.0.1:0".parse().unwrap())
        .seed(adv.clone())
        .start()
        .unwrap();
    let mut wb = b.watch();
    a.spawn(counter_spec("addr-counter")).await.unwrap();
    wait_event(&mut wb, |e| {
        matches!(e, msa_runtime::RegistryEvent::RemoteAdded { service, .. } if service == "addr-counter")
    })
    .await;
    assert_eq!(b.service("addr-counter").ask(Incr).await.unwrap(), 1);
    let want = vec![
        ("addr-a".to_string(), adv.clone()),
        ("addr-b".to_string(), b.remote_addr().unwrap()),
    ];
    for n in [&a, &b] {
        eventually(
            "both members with their advertised addresses",
            WAIT,
            || async { member_addrs(n) == want },
        )
        .await;
    }
    // What `msa cluster status` shows, fetched over the wire.
    let status = msa_runtime::remote::cluster_status(&adv, "msa", SECRET, WAIT)
        .await
        .unwrap();
    assert!(
        status
            .members
            .iter()
            .all(|m| !m.addr.starts_with("0.0.0.0")),
        "{:?}",
        status.members
    );
    assert!(status.members.iter().any(|m| m.addr == adv));
    for n in [b, a] {
        n.shutdown(GRACE).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_nodes_join_call_and_report_status_over_loopback() {
    if !ipv6_loopback("ipv6_nodes_join_call_and_report_status_over_loopback") {
        return;
    }
    let a = builder("v6-a")
        .listen("[::1]:0".parse().unwrap())
        .start()
        .unwrap();
    let seed = a.remote_addr().unwrap();
    assert!(seed.starts_with("[::1]:"), "{seed}");
    // No secret needed on the IPv6 loopback either.
    let b = Node::builder()
        .name("v6-b")
        .arbiters(1)
        .secret(SECRET)
        .listen("[::1]:0".parse().unwrap())
        .seed(seed.clone())
        .start()
        .unwrap();
    let c = builder("v6-c")
        .listen_on("[::1]:0")
        .advertise("[::1]:0")
        .seed(seed.clone())
        .start()
        .unwrap();
    let mut wc = c.watch();
    b.spawn(counter_spec("v6-counter")).await.unwrap();
    wait_event(&mut wc, |e| {
        matches!(e, msa_runtime::RegistryEvent::RemoteAdded { service, .. } if service == "v6-counter")
    })
    .await;
    assert_eq!(c.service("v6-counter").ask(Incr).await.unwrap(), 1);
    eventually("a full mesh over IPv6", WAIT, || async {
        a.peers().len() == 2 && b.peers().len() == 2 && c.peers().len() == 2
    })
    .await;
    let status = msa_runtime::remote::cluster_status(&seed, "msa", SECRET, WAIT)
        .await
        .unwrap();
    let mut addrs: Vec<_> = status.members.iter().map(|m| m.addr.clone()).collect();
    addrs.sort();
    let mut want = vec![
        seed.clone(),
        b.remote_addr().unwrap(),
        c.remote_addr().unwrap(),
    ];
    want.sort();
    assert_eq!(addrs, want);
    assert!(addrs.iter().all(|a| a.starts_with("[::1]:")), "{addrs:?}");
    for n in [c, b, a] {
        n.shutdown(GRACE).await.unwrap();
    }
}

#[test]
fn the_ipv6_loopback_needs_no_secret() {
    if !ipv6_loopback("the_ipv6_loopback_needs_no_secret") {
        return;
    }
    let n = Node::builder()
        .arbiters(1)
        .listen("[::1]:0".parse().unwrap())
        .start()
        .unwrap();
    assert!(n.remote_addr().unwrap().starts_with("[::1]:"));
    n.shutdown_blocking(GRACE).unwrap();
}
