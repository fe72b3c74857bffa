//! A duplicate connection the node retires: it ends its calls there with
//! `CallsDone`, and keeps reading and serving the peer's calls until the
//! peer's own `CallsDone` (the peer may not have retired it yet, and a call
//! already on the way must not be lost to the close).

use super::*;

async fn send(p: &mut RawPeer, f: &Frame) {
    write_raw(&mut p.wr, f, MAX).await.unwrap();
}

/// Whether an ask of `Double(21)` on `p` is answered.
async fn doubled(p: &mut RawPeer, id: u64) -> bool {
    let payload = crate::codec::encode(&Double(21)).unwrap();
    matches!(
        p.ask(id, "doubler", "wire-test.Double", payload).await,
        Frame::Reply { id: got, .. } if got == id
    )
}

/// Reads `p` until the node's `CallsDone` (bounded); fails if the
/// connection ends first.
async fn calls_done(p: &mut RawPeer) {
    loop {
        match p.next().await {
            Ok(Frame::CallsDone) => return,
            Ok(_) => continue,
            Err(e) => panic!("closed before its CallsDone: {e}"),
        }
    }
}

/// The node with a doubler, `first` (which it retires) and `second` (the
/// same member again, which it keeps): `second` brought a table and was
/// served, so the successor is fully in place.
async fn retired_pair(
    protocols: crate::remote::handshake::ProtocolRange,
) -> (Node, RawPeer, RawPeer) {
    let (node, addr) = node().await;
    let dial = |addr: String| async move {
        let s: BoxStream = Box::new(tokio::net::TcpStream::connect(addr).await.unwrap());
        RawPeer::speaking(s, ConnKind::Data, SECRET, protocols)
            .await
            .unwrap()
    };
    let first = dial(addr.clone()).await;
    let mut second = dial(addr).await;
    let table = Frame::Table {
        version: 1,
        services: Vec::new(),
        members: Vec::new(),
    };
    send(&mut second, &table).await;
    // Served after the table: the node has applied it.
    assert!(doubled(&mut second, 1).await);
    (node, first, second)
}

#[tokio::test]
async fn a_retired_connection_serves_calls_until_the_peer_sends_calls_done() {
    let (node, mut first, mut second) = retired_pair(PROTOCOLS).await;
    calls_done(&mut first).await;
    // An idle frame: without the mark, the node would close `first` now
    // (retired, idle, successor in place) and the ask after it would be
    // lost.
    send(&mut first, &Frame::Ping { id: 0, table: 0 }).await;
    assert!(
        doubled(&mut first, 2).await,
        "served on the retired connection"
    );
    assert!(doubled(&mut first, 3).await);
    // Our mark: the node closes `first`, and `second` carries on.
    send(&mut first, &Frame::CallsDone).await;
    let reason = first.closed(|_| true).await;
    assert!(!reason.is_empty());
    assert!(doubled(&mut second, 4).await);
    node.shutdown(Duration::from_secs(5)).await.unwrap();
}
