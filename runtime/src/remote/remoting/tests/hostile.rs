//! Hostile input before authentication: the handshake's frame bound, its
//! timeout, the cap on connections in their handshake, and refusals that
//! name no cluster.

use super::*;
use tokio::io::AsyncReadExt;

/// A node with `cluster` and the given handshake bounds, and its address.
async fn bounded_node(cluster: &str, timeout: Duration, cap: usize) -> (Node, String) {
    let node = Node::builder()
        .name("wire")
        .arbiters(1)
        .listen("127.0.0.1:0".parse().unwrap())
        .cluster(cluster)
        .secret(SECRET)
        .handshake_timeout(timeout)
        .max_pending_handshakes(cap)
        .start()
        .unwrap();
    node.spawn(ServiceSpec::new("doubler", || Doubler).handles::<Double>())
        .await
        .unwrap();
    let addr = node.remote_addr().unwrap();
    (node, addr)
}

/// Waits (bounded) until `cond` holds of the node's counters.
async fn until(node: &Node, what: &str, cond: impl Fn(&crate::remote::RemoteSnapshot) -> bool) {
    let t0 = std::time::Instant::now();
    while !cond(&node.remote_stats()) {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "{what}: {:?}",
            node.remote_stats()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Reads until the node closes `s` (bounded): the bytes it sent first.
async fn read_to_close(s: &mut tokio::net::TcpStream, within: Duration) -> Vec<u8> {
    let mut got = Vec::new();
    tokio::time::timeout(within, s.read_to_end(&mut got))
        .await
        .expect("closed by the node in time")
        .ok();
    got
}

async fn doubled(p: &mut RawPeer, id: u64) -> bool {
    let ok = crate::codec::encode(&Double(21)).unwrap();
    matches!(
        p.ask(id, "doubler", "wire-test.Double", ok).await,
        Frame::Reply { id: got, .. } if got == id
    )
}

#[tokio::test]
async fn an_oversized_frame_before_the_handshake_closes_that_connection_only() {
    let (node, addr) = bounded_node("msa", Duration::from_secs(5), 16).await;
    let mut member = RawPeer::connect(&addr).await;
    let before = node.remote_stats().handshake_failures;
    // A length prefix of 64 KiB (under max_frame_bytes, over the handshake
    // bound) and a little of its body: the node closes before reading it.
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    s.write_all(&(64u32 * 1024).to_be_bytes()).await.unwrap();
    s.write_all(&[0xAB; 1024]).await.unwrap();
    let got = read_to_close(&mut s, Duration::from_secs(5)).await;
    assert!(got.is_empty(), "no frame to an oversized hello: {got:?}");
    until(&node, "counted", |s| s.handshake_failures > before).await;
    // Just over the bound is refused too; the bound itself is a frame.
    let limit = crate::remote::frame::DEFAULT_MAX_HANDSHAKE_FRAME_BYTES as u32;
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    s.write_all(&(limit + 1).to_be_bytes()).await.unwrap();
    assert!(read_to_close(&mut s, Duration::from_secs(5))
        .await
        .is_empty());
    // The authenticated member was not disturbed, and a new one connects;
    // after its handshake, frames up to max_frame_bytes pass.
    assert!(doubled(&mut member, 1).await);
    let mut late = RawPeer::connect(&addr).await;
    let big = crate::codec::encode(&Double(1)).unwrap();
    let padded = Frame::Ask {
        id: 2,
        route: Route::Once {
            service: "doubler".into(),
            message: "wire-test.Double".into(),
        },
        meta: crate::remote::frame::WireMeta {
            subject: Some("x".repeat(64 * 1024)),
            ..Default::default()
        },
        payload: big,
    };
    write_raw(&mut late.wr, &padded, MAX).await.unwrap();
    loop {
        match late.next().await.unwrap() {
            Frame::Reply { id: 2, .. } => break,
            Frame::Reply { .. } | Frame::Error { .. } => panic!("the 64 KiB ask failed"),
            _ => continue,
        }
    }
    node.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn a_silent_or_slow_connection_is_closed_after_the_handshake_timeout() {
    let timeout = Duration::from_millis(400);
    let (node, addr) = bounded_node("msa", timeout, 16).await;
    let before = node.remote_stats().handshake_failures;
    let t0 = std::time::Instant::now();
    let mut silent = tokio::net::TcpStream::connect(&addr).await.unwrap();
    // A slow one: a byte of a hello now and then, never a whole frame.
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let trickle = async {
        for b in [0u8, 0, 1] {
            if slow.write_all(&[b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        read_to_close(&mut slow, Duration::from_secs(5)).await
    };
    let (a, b) = tokio::join!(read_to_close(&mut silent, Duration::from_secs(5)), trickle);
    let waited = t0.elapsed();
    assert!(a.is_empty() && b.is_empty());
    assert!(
        waited >= timeout && waited < timeout * 5,
        "closed after {waited:?}, timeout {timeout:?}"
    );
    until(&node, "both counted", |s| {
        s.handshake_failures >= before + 2 && s.pending_handshakes == 0
    })
    .await;
    node.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn connections_over_the_handshake_cap_are_closed_at_once_and_counted() {
    let (node, addr) = bounded_node("msa", Duration::from_millis(1500), 4).await;
    // An authenticated member holds no slot.
    let mut member = RawPeer::connect(&addr).await;
    let mut silent = Vec::new();
    for _ in 0..4 {
        silent.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    until(&node, "four in their handshake", |s| {
        s.pending_handshakes == 4
    })
    .await;
    // The fifth is closed long before the handshake timeout.
    let t0 = std::time::Instant::now();
    let mut extra = tokio::net::TcpStream::connect(&addr).await.unwrap();
    assert!(read_to_close(&mut extra, Duration::from_secs(5))
        .await
        .is_empty());
    assert!(
        t0.elapsed() < Duration::from_millis(1000),
        "{:?}",
        t0.elapsed()
    );
    until(&node, "counted", |s| s.handshakes_over_cap >= 1).await;
    assert_eq!(node.remote_stats().pending_handshakes, 4);
    // The member still calls; once the silent ones time out, slots free up
    // and a new member connects.
    assert!(doubled(&mut member, 1).await);
    until(&node, "slots freed", |s| s.pending_handshakes == 0).await;
    let mut late = RawPeer::connect(&addr).await;
    assert!(doubled(&mut late, 2).await);
    drop(silent);
    node.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn a_wrong_secret_or_cluster_is_refused_without_the_cluster_name() {
    let (node, addr) = bounded_node("hostile-bank", Duration::from_secs(5), 16).await;
    for (cluster, secret) in [("hostile-bank", &b"guess"[..]), ("guess", SECRET)] {
        let s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let (rd, mut wr) = tokio::io::split(Box::new(s) as BoxStream);
        let cfg = HandshakeConfig {
            cluster: cluster.into(),
            secret: secret.to_vec(),
            local: NodeInfo {
                name: "raw".into(),
                addr: "127.0.0.1:9".into(),
                incarnation: 1,
            },
            protocols: PROTOCOLS,
        };
        let (mut hs, hello) = Dialer::start(cfg, ConnKind::Data, [3; 32]);
        write_raw(&mut wr, &hello, MAX).await.unwrap();
        let mut raw = RawPeer {
            rd,
            wr,
            dec: FrameDecoder::new(MAX),
            buf: vec![0; 1024],
        };
        let challenge = raw.next().await.unwrap();
        let Frame::Challenge { .. } = challenge else {
            panic!("a challenge, got {challenge:?}");
        };
        let Ok(Step::Send(auth)) = hs.on_frame(challenge) else {
            panic!("an auth");
        };
        write_raw(&mut raw.wr, &auth, MAX).await.unwrap();
        match raw.next().await.unwrap() {
            Frame::Refused { reason } => {
                assert_eq!(reason, crate::remote::handshake::REFUSED_AUTH);
                assert!(!reason.contains("hostile-bank"));
            }
            f => panic!("expected a refusal, got {f:?}"),
        }
        assert!(raw.next().await.is_err(), "then closed");
    }
    node.shutdown(Duration::from_secs(5)).await.unwrap();
}
