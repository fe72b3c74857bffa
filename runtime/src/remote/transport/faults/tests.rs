use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::time::Instant;

use super::stream::{identify, FaultStream, Peer};
use super::{FaultTransport, Faults};
use crate::remote::frame::{encode_into, ConnKind, Frame, NodeInfo};
use crate::remote::handshake::PROTOCOLS;
use crate::remote::transport::{BoxStream, MemoryNetwork, Transport};

fn hello(name: &str, addr: &str) -> Vec<u8> {
    let f = Frame::Hello {
        protocols: PROTOCOLS,
        cluster: "msa".into(),
        node: NodeInfo {
            name: name.into(),
            addr: addr.into(),
            incarnation: 1,
        },
        nonce: [7; 32],
        kind: ConnKind::Data,
    };
    let mut out = Vec::new();
    encode_into(&f, 1 << 20, &mut out).unwrap();
    out
}

/// A stream accepted under `faults` and the far end, which has sent a
/// `Hello` from `name` (a node when `addr` is not empty) and `b"data"`.
async fn accepted(faults: &Arc<Faults>, name: &str, addr: &str) -> (FaultStream, DuplexStream) {
    let (near, mut far) = tokio::io::duplex(1 << 20);
    let mut first = hello(name, addr);
    first.extend_from_slice(b"data");
    far.write_all(&first).await.unwrap();
    let s = FaultStream::accepted(Box::new(near) as BoxStream, faults.clone());
    (s, far)
}

/// Reads the `Hello` (and whatever follows it, up to 4 more bytes).
async fn read_hello(s: &mut FaultStream, name: &str, addr: &str) -> Vec<u8> {
    let want = hello(name, addr).len() + 4;
    let mut got = vec![0u8; want];
    s.read_exact(&mut got).await.unwrap();
    got
}

#[test]
fn the_first_frame_names_the_peer() {
    let h = hello("node2", "127.0.0.1:7");
    assert_eq!(identify(&h), Some(Peer::Node("node2".into())));
    assert_eq!(identify(&h[..h.len() - 1]), None, "a partial frame waits");
    assert_eq!(identify(&h[..3]), None);
    // A client has no listening address: never faulted.
    assert_eq!(identify(&hello("msa-client-1", "")), Some(Peer::Other));
    // Garbage and oversized prefixes name nobody.
    assert_eq!(identify(&[0, 0, 0, 2, 0xff, 0xff]), Some(Peer::Other));
    assert_eq!(identify(&u32::MAX.to_be_bytes()), Some(Peer::Other));
}

#[tokio::test]
async fn without_rules_bytes_pass_both_ways() {
    let faults = Arc::new(Faults::default());
    let (mut s, mut far) = accepted(&faults, "node2", "127.0.0.1:7").await;
    let got = read_hello(&mut s, "node2", "127.0.0.1:7").await;
    assert!(got.ends_with(b"data"));
    s.write_all(b"back").await.unwrap();
    let mut b = [0u8; 4];
    far.read_exact(&mut b).await.unwrap();
    assert_eq!(&b, b"back");
}

#[tokio::test]
async fn an_inbound_cut_holds_the_peers_bytes_until_the_heal() {
    let faults = Arc::new(Faults::default());
    faults.cut("node2", true, false);
    let (mut s, _far) = accepted(&faults, "node2", "127.0.0.1:7").await;
    let mut b = [0u8; 1];
    let held = tokio::time::timeout(Duration::from_millis(200), s.read(&mut b)).await;
    assert!(held.is_err(), "read across an inbound cut: {held:?}");
    // Writes still go out (the cut is inbound only).
    tokio::time::timeout(Duration::from_secs(1), s.write_all(b"x"))
        .await
        .unwrap()
        .unwrap();
    let reader = tokio::spawn(async move { read_hello(&mut s, "node2", "127.0.0.1:7").await });
    tokio::task::yield_now().await;
    faults.heal();
    let got = tokio::time::timeout(Duration::from_secs(1), reader)
        .await
        .unwrap()
        .unwrap();
    assert!(
        got.ends_with(b"data"),
        "everything held is delivered, in order"
    );
}

#[tokio::test]
async fn an_outbound_cut_holds_writes_until_the_heal() {
    let faults = Arc::new(Faults::default());
    let (mut s, mut far) = accepted(&faults, "node2", "127.0.0.1:7").await;
    read_hello(&mut s, "node2", "127.0.0.1:7").await;
    faults.cut("node2", false, true);
    let held = tokio::time::timeout(Duration::from_millis(200), s.write_all(b"x")).await;
    assert!(held.is_err(), "write across an outbound cut");
    let writer = tokio::spawn(async move { s.write_all(b"late").await });
    tokio::task::yield_now().await;
    faults.heal();
    tokio::time::timeout(Duration::from_secs(1), writer)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let mut b = [0u8; 4];
    far.read_exact(&mut b).await.unwrap();
    assert_eq!(&b, b"late");
}

#[tokio::test]
async fn other_peers_and_clients_are_not_cut() {
    let faults = Arc::new(Faults::default());
    faults.cut("node3", true, true);
    let (mut s, _far) = accepted(&faults, "node2", "127.0.0.1:7").await;
    read_hello(&mut s, "node2", "127.0.0.1:7").await;
    // A client named like the cut node is still served: it listens nowhere.
    let (mut c, _far) = accepted(&faults, "node3", "").await;
    read_hello(&mut c, "node3", "").await;
    c.write_all(b"ok").await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_delay_holds_each_byte_that_long_without_throttling() {
    let faults = Arc::new(Faults::default());
    faults.set_delay(Duration::from_millis(50));
    let (mut s, mut far) = accepted(&faults, "node2", "127.0.0.1:7").await;
    let t0 = Instant::now();
    read_hello(&mut s, "node2", "127.0.0.1:7").await;
    assert_eq!(t0.elapsed(), Duration::from_millis(50));
    // Ten writes 10 ms apart arrive 50 ms after each was sent, not 50 ms
    // after the previous one was delivered.
    let writer = tokio::spawn(async move {
        for i in 0..10u8 {
            far.write_all(&[i]).await.unwrap();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        far
    });
    let t1 = Instant::now();
    let mut got = [0u8; 10];
    s.read_exact(&mut got).await.unwrap();
    assert_eq!(got, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    let took = t1.elapsed();
    assert!(
        took >= Duration::from_millis(140) && took <= Duration::from_millis(160),
        "{took:?}"
    );
    drop(writer.await.unwrap());
    // A heal delivers what is queued at once.
    faults.heal();
}

#[tokio::test]
async fn connections_to_a_cut_node_are_refused_once_its_address_is_known() {
    let net = MemoryNetwork::new();
    let t = FaultTransport::new(Arc::new(net.clone()));
    let faults = t.faults().unwrap();
    let mut l = net.endpoint("b").bind("b:0").unwrap();
    let addr = l.local_addr();
    let _accepting = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    assert!(t.connect(addr.clone()).await.is_ok(), "no rule yet");
    faults.learn(&addr, "node2");
    faults.cut("node2", false, true);
    let refused = t.connect(addr.clone()).await.err().unwrap();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    faults.heal();
    assert!(t.connect(addr).await.is_ok(), "healed");
}
