//! Mutual TLS between nodes: certificates made here with rcgen; two nodes
//! over TLS call each other; a peer without a certificate, with one from
//! another CA, or presenting another node's name is refused and counted
//! while a good peer still connects; a reload picks up new files; operator
//! clients need an operator certificate; only the HMAC mode warns when it
//! listens beyond loopback.

use std::future::IntoFuture;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use msa_runtime::prelude::*;
use msa_runtime::remote::{TlsConfig, TlsError, TlsIdentity};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};

use crate::support::{counter_spec, Get, Incr};

const GRACE: Duration = Duration::from_secs(5);
const BOUND: Duration = Duration::from_secs(20);

/// A CA for one test cluster.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new(cn: &str) -> Self {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, cn);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        Self {
            issuer: CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    /// A leaf for `uri` (a node one can also serve; DNS `localhost` too, so
    /// a plain rustls client can check it), expiring in `year`.
    fn leaf(&self, uri: &str, node: bool, year: i32) -> (String, String) {
        let mut p = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        p.subject_alt_names
            .push(SanType::URI(uri.try_into().unwrap()));
        p.distinguished_name.push(DnType::CommonName, uri);
        p.extended_key_usages = if node {
            vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ]
        } else {
            vec![ExtendedKeyUsagePurpose::ClientAuth]
        };
        p.not_after = rcgen::date_time_ymd(year, 1, 1);
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

fn dir() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "msa-tls-it-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Writes the CA, the cert and key of `uri` into `d`; the config.
fn write(d: &Path, ca: &Ca, uri: &str, node: bool, year: i32) -> TlsConfig {
    let (cert, key) = ca.leaf(uri, node, year);
    std::fs::write(d.join("ca.pem"), ca.issuer.pem()).unwrap();
    std::fs::write(d.join("cert.pem"), cert).unwrap();
    std::fs::write(d.join("key.pem"), key).unwrap();
    TlsConfig::from_files(d.join("ca.pem"), d.join("cert.pem"), d.join("key.pem")).unwrap()
}

fn node_tls(ca: &Ca, name: &str) -> TlsConfig {
    write(&dir(), ca, &format!("msa://node/{name}"), true, 2040)
}

/// A TCP node on loopback with TLS and no secret.
fn node(name: &str, tls: TlsConfig, seed: Option<&Node>) -> Node {
    let mut b = Node::builder()
        .name(name)
        .arbiters(1)
        .listen("127.0.0.1:0".parse().unwrap())
        .tls(tls);
    if let Some(s) = seed {
        b = b.seed(s.remote_addr().unwrap());
    }
    b.start().unwrap()
}

/// Polls `cond` until it holds (bounded).
async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !cond() {
        assert!(t0.elapsed() < BOUND, "{what} within {BOUND:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn incr(from: &Node, service: &str) -> Result<u64, CallError> {
    let svc = from.service(service);
    let ask = svc.ask(Incr).timeout(Duration::from_secs(2)).into_future();
    tokio::time::timeout(BOUND, ask).await.expect("ask hung")
}

/// Asks until the service answers (its table may not have arrived yet).
async fn reaches(from: &Node, service: &str) {
    let t0 = Instant::now();
    loop {
        if incr(from, service).await.is_ok() {
            return;
        }
        assert!(t0.elapsed() < BOUND, "{service} reachable within {BOUND:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn members(n: &Node) -> usize {
    n.cluster_status()
        .members
        .iter()
        .filter(|m| m.status == "alive")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_over_tls_call_each_other_and_membership_forms() {
    let ca = Ca::new("test CA");
    let a = node("a", node_tls(&ca, "a"), None);
    let b = node("b", node_tls(&ca, "b"), Some(&a));
    let c = node("c", node_tls(&ca, "c"), Some(&a));
    a.spawn(counter_spec("on-a")).await.unwrap();
    b.spawn(counter_spec("on-b")).await.unwrap();
    reaches(&a, "on-b").await;
    reaches(&b, "on-a").await;
    // c met b through a's membership (membership lanes run over TLS too).
    reaches(&c, "on-b").await;
    until("three alive members everywhere", || {
        [&a, &b, &c].iter().all(|n| members(n) == 3)
    })
    .await;
    let got = b.service("on-a").ask(Get).await.unwrap();
    assert!(got >= 1);
    for n in [&a, &b, &c] {
        assert_eq!(n.remote_stats().tls_refusals, 0);
        assert!(n.tls_cert_expiry().unwrap() > 2_000_000_000);
    }
    for n in [c, b, a] {
        n.shutdown(GRACE).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_refuses_to_start_with_another_nodes_certificate() {
    let ca = Ca::new("test CA");
    let err = Node::builder()
        .name("b")
        .arbiters(1)
        .listen("127.0.0.1:0".parse().unwrap())
        .tls(node_tls(&ca, "a"))
        .start()
        .map(|_| ())
        .unwrap_err();
    assert!(
        matches!(err, msa_runtime::NodeError::TlsIdentity { .. }),
        "{err}"
    );
    // An operator certificate cannot serve as a node's either.
    let op = write(&dir(), &ca, "msa://operator/ops", false, 2040);
    assert_eq!(op.identity(), TlsIdentity::Operator("ops".into()));
    let err = Node::builder()
        .name("ops")
        .arbiters(1)
        .listen("127.0.0.1:0".parse().unwrap())
        .tls(op)
        .start()
        .map(|_| ())
        .unwrap_err();
    assert!(
        matches!(err, msa_runtime::NodeError::TlsIdentity { .. }),
        "{err}"
    );
}

/// Starts a node named `name` listening on `listen` (advertising loopback,
/// which an unspecified address needs) with the cluster secret and/or TLS;
/// returns it with the warnings it logged while starting.
fn start_logged(name: &str, listen: &str, secret: bool, tls: Option<TlsConfig>) -> (Node, String) {
    use crate::support::log_capture::LogCapture;
    // The warning is logged by `start` itself, on this thread, before it
    // returns: everything it logs is in the capture once it has.
    let logs = LogCapture::keyed("node", name, tracing::Level::WARN);
    let mut b = Node::builder()
        .name(name)
        .arbiters(1)
        .listen(listen.parse().unwrap())
        .advertise("127.0.0.1:0");
    if secret {
        b = b.secret(b"warn-secret");
    }
    if let Some(tls) = tls {
        b = b.tls(tls);
    }
    let node = b.start().unwrap();
    let text = logs.text();
    (node, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hmac_mode_beyond_loopback_warns_at_start_and_loopback_or_mutual_tls_does_not() {
    const WARNING: &str = "listening beyond loopback with only the cluster secret (HMAC)";
    // Only the cluster secret, on every interface: warned about, with the
    // address and what to use instead.
    let (hmac_any, logs) = start_logged("warn-hmac-any", "0.0.0.0:0", true, None);
    assert!(logs.contains(WARNING), "{logs}");
    assert!(logs.contains("addr=0.0.0.0:0"), "{logs}");
    assert!(logs.contains("mutual TLS"), "{logs}");
    // The same on loopback: nothing to warn about.
    let (hmac_lo, logs) = start_logged("warn-hmac-lo", "127.0.0.1:0", true, None);
    assert!(!logs.contains("beyond loopback"), "{logs}");
    // Mutual TLS on every interface, alone or with the secret besides: no
    // warning (the connections are encrypted and authenticated).
    let ca = Ca::new("warn CA");
    let (tls_any, logs) = start_logged(
        "warn-tls-any",
        "0.0.0.0:0",
        false,
        Some(node_tls(&ca, "warn-tls-any")),
    );
    assert!(!logs.contains("beyond loopback"), "{logs}");
    let (both_any, logs) = start_logged(
        "warn-both-any",
        "0.0.0.0:0",
        true,
        Some(node_tls(&ca, "warn-both-any")),
    );
    assert!(!logs.contains("beyond loopback"), "{logs}");
    for n in [both_any, tls_any, hmac_lo, hmac_any] {
        n.shutdown(GRACE).await.unwrap();
    }
}

/// A TLS client without a certificate (a plain rustls client that trusts
/// the CA): the node refuses it and sends no msa frame.
async fn certless_client(addr: &str, ca: &Ca) -> std::io::Result<usize> {
    use tokio::io::AsyncReadExt;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.issuer.der().clone()).unwrap();
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await?;
    let mut buf = [0u8; 64];
    tls.read(&mut buf).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_without_a_cert_or_from_another_ca_are_refused_and_counted_while_a_good_peer_connects(
) {
    let ca = Ca::new("test CA");
    let a = node("a", node_tls(&ca, "a"), None);
    let addr = a.remote_addr().unwrap();
    let refusals = || a.remote_stats().tls_refusals;

    // 1. No client certificate: TLS 1.3 lets the client finish first, then
    // the node's alert ends the connection; nothing of msa is read.
    let r = certless_client(&addr, &ca).await;
    let err = r.expect_err("no bytes for a client without a certificate");
    assert!(
        err.to_string()
            .to_lowercase()
            .contains("certificaterequired"),
        "{err}"
    );
    until("the certless client counted", || refusals() >= 1).await;

    // 2. A node whose certificate comes from another CA.
    let other = Ca::new("another CA");
    let x = node("x", node_tls(&other, "x"), Some(&a));
    until("the other CA's node counted", || refusals() >= 2).await;

    // 3. A good peer still connects and calls.
    let b = node("b", node_tls(&ca, "b"), Some(&a));
    b.spawn(counter_spec("on-b")).await.unwrap();
    reaches(&a, "on-b").await;
    assert_eq!(b.remote_stats().tls_refusals, 0);
    assert!(x.remote_stats().tls_refusals >= 1, "x refused a too");
    for n in [x, b, a] {
        n.shutdown(GRACE).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_presenting_another_nodes_name_is_refused_on_the_memory_network_too() {
    use msa_runtime::remote::transport::MemoryNetwork;
    let net = MemoryNetwork::new();
    let ca = Ca::new("test CA");
    let mem = |name: &str, tls: TlsConfig, seed: Option<&Node>| {
        let mut b = Node::builder()
            .name(name)
            .arbiters(1)
            .transport(net.clone())
            .listen_on(format!("{name}:0"))
            .tls(tls);
        if let Some(s) = seed {
            b = b.seed(s.remote_addr().unwrap());
        }
        b.start().unwrap()
    };
    let a = mem("a", node_tls(&ca, "a"), None);
    // `m` joins with its own certificate, then (misconfigured, or holding a
    // stolen key) presents b's: it still announces `m`.
    let m_tls = node_tls(&ca, "m");
    let m = mem("m", m_tls.clone(), Some(&a));
    m.spawn(counter_spec("on-m")).await.unwrap();
    reaches(&a, "on-m").await;
    let m_dir = m_tls.paths().1.parent().unwrap().to_path_buf();
    let (b_cert, b_key) = ca.leaf("msa://node/b", true, 2040);
    std::fs::write(m_dir.join("cert.pem"), &b_cert).unwrap();
    std::fs::write(m_dir.join("key.pem"), &b_key).unwrap();
    // The node itself refuses to reload another name's certificate...
    assert!(matches!(m.reload_tls(), Err(TlsError::NotExpected { .. })));
    // ...so force it through the shared config, as a forged node would.
    m_tls.reload().unwrap();
    assert_eq!(m_tls.identity(), TlsIdentity::Node("b".into()));
    let before = a.remote_stats().tls_refusals;
    net.drop_connections("a", "m");
    until("a refused m presenting b's certificate", || {
        a.remote_stats().tls_refusals > before
    })
    .await;
    // A good peer still connects and calls, while m keeps being refused.
    let b = mem("b", node_tls(&ca, "b"), Some(&a));
    b.spawn(counter_spec("on-b")).await.unwrap();
    reaches(&a, "on-b").await;
    // b learns of m from a's membership and refuses it too, when it dials.
    for n in [b, m, a] {
        n.shutdown(GRACE).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_picks_up_new_files_for_new_connections_and_the_expiry() {
    let ca1 = Ca::new("old CA");
    let ca2 = Ca::new("new CA");
    let a_tls = write(&dir(), &ca1, "msa://node/a", true, 2040);
    let a_dir = a_tls.paths().1.parent().unwrap().to_path_buf();
    let a = node("a", a_tls, None);
    let old_expiry = a.tls_cert_expiry().unwrap();
    // A node of the new CA cannot join yet.
    let c = node("c", node_tls(&ca2, "c"), Some(&a));
    until("c refused by a", || a.remote_stats().tls_refusals >= 1).await;
    // Rotate a to the new CA (the files replaced, then a reload, as SIGHUP
    // does in `msa node`).
    let (cert, key) = ca2.leaf("msa://node/a", true, 2041);
    std::fs::write(a_dir.join("ca.pem"), ca2.issuer.pem()).unwrap();
    std::fs::write(a_dir.join("cert.pem"), cert).unwrap();
    std::fs::write(a_dir.join("key.pem"), key).unwrap();
    a.reload_tls().unwrap();
    assert!(a.tls_cert_expiry().unwrap() > old_expiry);
    // c's next dial is accepted with the new files.
    c.spawn(counter_spec("on-c")).await.unwrap();
    reaches(&a, "on-c").await;
    // A broken file leaves the running certificate in place.
    std::fs::write(a_dir.join("key.pem"), "not a key").unwrap();
    assert!(matches!(a.reload_tls(), Err(TlsError::File { .. })));
    assert!(a.tls_cert_expiry().unwrap() > old_expiry);
    for n in [c, a] {
        n.shutdown(GRACE).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_need_an_operator_certificate_and_it_cannot_join_as_a_node() {
    use msa_runtime::remote::tls::TlsClientTransport;
    use msa_runtime::remote::{cluster_status_via, operate_services_via, ServiceRequest};
    let ca = Ca::new("test CA");
    let a = node("a", node_tls(&ca, "a"), None);
    let addr = a.remote_addr().unwrap();
    let op = write(&dir(), &ca, "msa://operator/ops", false, 2040);
    let via = TlsClientTransport::new(op.clone());
    let status = cluster_status_via(&via, &addr, "msa", b"", BOUND)
        .await
        .unwrap();
    assert_eq!(status.members.len(), 1);
    let report = operate_services_via(&via, &addr, "msa", b"", ServiceRequest::List, BOUND)
        .await
        .unwrap();
    assert!(report.services.is_empty());
    assert_eq!(a.remote_stats().tls_refusals, 0);

    // A node's certificate cannot act as an operator...
    let as_node = TlsClientTransport::new(node_tls(&ca, "b"));
    let r = cluster_status_via(&as_node, &addr, "msa", b"", Duration::from_secs(3)).await;
    assert!(r.is_err(), "{r:?}");
    until("the node cert as operator counted", || {
        a.remote_stats().tls_refusals >= 1
    })
    .await;
    // ...nor can a client without TLS, or with another CA's operator cert.
    let plain =
        msa_runtime::remote::cluster_status(&addr, "msa", b"", Duration::from_secs(3)).await;
    assert!(plain.is_err());
    let other = write(&dir(), &Ca::new("other"), "msa://operator/ops", false, 2040);
    let r = cluster_status_via(
        &TlsClientTransport::new(other),
        &addr,
        "msa",
        b"",
        Duration::from_secs(3),
    )
    .await;
    assert!(r.is_err(), "{r:?}");
    until("three refusals", || a.remote_stats().tls_refusals >= 3).await;
    // An operator's certificate cannot join as a node: a node refuses to
    // start with it (above), and a handshake that announces a node with it
    // is refused (TlsIdentity::check_peer, unit-tested in the runtime).
    a.shutdown(GRACE).await.unwrap();
}

/// A TCP node on loopback over TLS that notices a lost peer within about a
/// second (the default is 5 s).
fn quick_node(name: &str, ca: &Ca, seed: Option<&Node>) -> Node {
    let mut b = Node::builder()
        .name(name)
        .arbiters(1)
        .listen("127.0.0.1:0".parse().unwrap())
        .failure_detection(Duration::from_millis(1_000))
        .tls(node_tls(ca, name));
    if let Some(s) = seed {
        b = b.seed(s.remote_addr().unwrap());
    }
    b.start().unwrap()
}

/// Names of the members `n` sees alive, itself included, sorted.
fn alive(n: &Node) -> Vec<String> {
    let mut v: Vec<String> = n
        .cluster_status()
        .members
        .into_iter()
        .filter(|m| m.status == "alive")
        .map(|m| m.name)
        .collect();
    v.sort();
    v
}

/// Why the views of `nodes` differ, or `None` when they agree.
fn disagreement(nodes: &[&Node]) -> Option<String> {
    let first = nodes[0].cluster_status();
    nodes[1..]
        .iter()
        .find_map(|n| first.disagreement(&n.cluster_status()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_over_tls_links_heals_the_views_agree_and_calls_cross_again() {
    use msa_runtime::remote::tls::TlsClientTransport;
    use msa_runtime::remote::{inject_fault_via, FaultRequest};
    let ca = Ca::new("test CA");
    let a = quick_node("a", &ca, None);
    let b = quick_node("b", &ca, Some(&a));
    let c = quick_node("c", &ca, Some(&a));
    a.spawn(counter_spec("on-a")).await.unwrap();
    c.spawn(counter_spec("on-c")).await.unwrap();
    let all = ["a", "b", "c"];
    until("a, b and c see each other", || {
        [&a, &b, &c].iter().all(|n| alive(n) == all)
    })
    .await;
    reaches(&a, "on-c").await;
    reaches(&c, "on-a").await;

    // The cut goes through each node's own fault layer, as `msa cluster
    // partition` does, asked by an operator over TLS: c | a b.
    let op = TlsClientTransport::new(write(&dir(), &ca, "msa://operator/ops", false, 2040));
    let fault = |n: &Node, req: FaultRequest| {
        let (op, addr) = (op.clone(), n.remote_addr().unwrap());
        async move {
            inject_fault_via(&op, &addr, "msa", b"", req, BOUND)
                .await
                .unwrap()
        }
    };
    let cut = |peers: &[&str]| FaultRequest::Cut {
        peers: peers.iter().map(|p| p.to_string()).collect(),
        inbound: true,
        outbound: true,
    };
    fault(&a, cut(&["c"])).await;
    fault(&b, cut(&["c"])).await;
    fault(&c, cut(&["a", "b"])).await;
    until("the partition splits the views", || {
        alive(&a) == ["a", "b"] && alive(&b) == ["a", "b"] && alive(&c) == ["c"]
    })
    .await;

    for n in [&a, &b, &c] {
        let r = fault(n, FaultRequest::Heal).await;
        assert_eq!(r.rules, Default::default());
    }
    until("the views agree again after the heal", || {
        [&a, &b, &c].iter().all(|n| alive(n) == all) && disagreement(&[&a, &b, &c]).is_none()
    })
    .await;
    // Calls cross the healed links both ways.
    reaches(&a, "on-c").await;
    reaches(&c, "on-a").await;
    assert_eq!(a.remote_stats().tls_refusals, 0);
    for n in [c, b, a] {
        n.shutdown(GRACE).await.unwrap();
    }
}
