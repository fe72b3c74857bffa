//! A peer that floods asks and never reads its socket: its control lane
//! stays within its bound, the connection is closed as stalled, its queue is
//! released, and everyone else is still served.

use std::time::Instant;

use super::*;
use crate::remote::peer::{Peer, StallReason};
use crate::test_support::rss_bytes as crate_rss;

/// Resident set size of this process (Linux).
fn rss_bytes() -> u64 {
    crate_rss().expect("VmRSS in /proc/self/status")
}

async fn node(control_bytes: usize, stall: Duration) -> (Node, String) {
    node_with(|b| {
        b.max_control_queue_bytes(control_bytes)
            .peer_stall_timeout(stall)
    })
    .await
}

/// A raw member with a tiny receive buffer (so the node's writer blocks
/// soon once it stops reading), advertising service `far` so the node has
/// asks pending on the connection.
async fn stalling_peer(node: &Node, addr: &str) -> (RawPeer, Arc<Peer>) {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let s = sock.connect(addr.parse().unwrap()).await.unwrap();
    let mut p = RawPeer::over(Box::new(s), ConnKind::Data, SECRET)
        .await
        .unwrap();
    p.send(Frame::Table {
        version: 2,
        services: vec![super::super::super::frame::ServiceAd {
            name: "far".into(),
            slots: vec![(0, 1)],
            messages: vec![Double::NAME.into()],
            keyed: false,
        }],
        members: Vec::new(),
    })
    .await;
    let t0 = Instant::now();
    while node.remote_instances("far").is_empty() {
        assert!(t0.elapsed() < Duration::from_secs(10), "the table applied");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let peer = node.remoting().unwrap().peer("raw").unwrap();
    (p, peer)
}

/// What a flood showed.
#[derive(Debug)]
struct Flood {
    /// Largest control-lane gauge sampled.
    max_queued: u64,
    /// Largest growth of the process RSS over its value before the flood.
    max_rss_growth: u64,
    /// From the writer's last progress (bytes out) to the connection's end.
    closed_after_progress: Duration,
    /// The node's pending ask to the peer failed with `NodeDown`.
    pending_ask_failed_fast: bool,
}

/// Floods asks on `p` without ever reading, sampling the connection's
/// control-lane gauge and the RSS until the node closes the connection.
async fn flood(node: &Node, p: RawPeer, peer: &Arc<Peer>, within: Duration) -> Flood {
    let rss0 = rss_bytes();
    // An ask from the node to the stalling peer: it can never be answered.
    let far = node.service("far");
    let pending = async {
        far.ask(Double(1))
            .timeout(Duration::from_secs(120))
            .await
            .map(|_| ())
    };
    let RawPeer { rd, mut wr, .. } = p;
    // Never read: but keep the read half open.
    let _rd = rd;
    let started = Instant::now();
    let writer = tokio::spawn(async move {
        let payload = crate::codec::encode(&Double(21)).unwrap();
        let mut batch = Vec::new();
        let mut id = 0u64;
        loop {
            batch.clear();
            for _ in 0..512 {
                id += 1;
                let f = Frame::Ask {
                    id,
                    route: if id == 1 {
                        Route::Named {
                            id: 0,
                            service: "doubler".into(),
                            message: Double::NAME.into(),
                        }
                    } else {
                        Route::Id(0)
                    },
                    meta: super::super::super::frame::WireMeta::default(),
                    payload: payload.clone(),
                };
                encode_into(&f, MAX, &mut batch).unwrap();
            }
            if wr.write_all(&batch).await.is_err() {
                return id;
            }
        }
    });
    let watch = async {
        let mut max_queued = 0;
        let mut max_serving = 0;
        let mut max_rss_growth = 0;
        let mut last_out = 0;
        let mut last_progress = Instant::now();
        loop {
            max_queued = max_queued.max(peer.conn.control_queued_bytes.load(Ordering::Relaxed));
            max_rss_growth = max_rss_growth.max(rss_bytes().saturating_sub(rss0));
            max_serving = max_serving.max(peer.serving_now());
            assert!(peer.serving_now() <= node.remoting().unwrap().cfg.max_inbound_asks);
            let out = peer.conn.bytes_out.load(Ordering::Relaxed);
            if out != last_out {
                last_out = out;
                last_progress = Instant::now();
            }
            if peer.is_down() {
                eprintln!("at most {max_serving} asks served at once");
                return (max_queued, max_rss_growth, last_progress.elapsed());
            }
            assert!(
                started.elapsed() < within,
                "not closed within {within:?}: {} bytes queued, stats {:?}",
                peer.conn.control_queued_bytes.load(Ordering::Relaxed),
                node.remote_stats()
            );
            // A sampling period, not a synchronisation.
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    };
    tokio::pin!(pending);
    let ((max_queued, max_rss_growth, closed_after_progress), pending_ask_failed_fast) =
        tokio::join!(watch, async {
            matches!(
                (&mut pending).await,
                Err(CallError::NodeDown { node }) if node == "raw"
            )
        });
    eprintln!("closed {:?} after the flood started", started.elapsed());
    let sent = tokio::time::timeout(Duration::from_secs(10), writer)
        .await
        .expect("the flood ends with the connection")
        .unwrap();
    eprintln!("flood: {sent} asks sent");
    Flood {
        max_queued,
        max_rss_growth,
        closed_after_progress,
        pending_ask_failed_fast,
    }
}

/// After the flood: the gauge is back to zero and a well-behaved peer is
/// served.
async fn then_all_is_well(node: &Node, addr: &str, peer: &Arc<Peer>) {
    let t0 = Instant::now();
    while peer.conn.control_queued_bytes.load(Ordering::Relaxed) != 0
        || peer.conn.data_queued_bytes.load(Ordering::Relaxed) != 0
    {
        assert!(t0.elapsed() < Duration::from_secs(5), "the queues released");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut good = RawPeer::connect(addr).await;
    let ok = crate::codec::encode(&Double(4)).unwrap();
    assert_eq!(
        good.ask(1, "doubler", Double::NAME, ok).await,
        Frame::Reply {
            id: 1,
            payload: crate::codec::encode(&8u64).unwrap()
        }
    );
    // The gauge is what `Node::connection_stats` shows for a connection.
    assert!(node.connection_stats().iter().any(|c| c.peer == "raw"));
}

#[tokio::test]
async fn a_peer_that_stops_reading_is_closed_after_the_stall_timeout() {
    // RSS is the process's: measured with no other test running in it.
    if !crate::test_support::in_own_process("remote::remoting::tests::stall::a_peer_that_stops_reading_is_closed_after_the_stall_timeout") {
        return;
    }
    const BOUND: usize = crate::remote::DEFAULT_MAX_CONTROL_QUEUE_BYTES;
    // Short enough that the timer fires before an unloaded machine's flood
    // fills the 16 MiB bound (with 1 s, a fast run filled it first).
    let stall = Duration::from_millis(300);
    let (node, addr) = node(BOUND, stall).await;
    let (p, peer) = stalling_peer(&node, &addr).await;
    let f = flood(&node, p, &peer, Duration::from_secs(60)).await;
    eprintln!("stall timeout: {f:?}");
    assert!(f.max_queued <= BOUND as u64, "{f:?}");
    assert!(f.max_queued > 0, "the flood queued replies: {f:?}");
    let stats = node.remote_stats();
    assert_eq!(stats.stalled_connections, 1, "{stats:?}");
    assert_eq!(
        stats.control_overflows, 0,
        "the timer, not the bound: {stats:?}"
    );
    assert!(
        matches!(peer.stall_reason(), Some(StallReason::NoProgress { after }) if after == stall),
        "{:?}",
        peer.stall_reason()
    );
    assert!(
        f.closed_after_progress <= stall + Duration::from_secs(2),
        "closed {:?} after the last progress",
        f.closed_after_progress
    );
    assert!(f.pending_ask_failed_fast, "{f:?}");
    assert!(f.max_rss_growth < 64 << 20, "{f:?}");
    then_all_is_well(&node, &addr, &peer).await;
    node.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn a_full_control_lane_closes_the_connection_at_once() {
    // RSS is the process's: measured with no other test running in it.
    if !crate::test_support::in_own_process(
        "remote::remoting::tests::stall::a_full_control_lane_closes_the_connection_at_once",
    ) {
        return;
    }
    const BOUND: usize = 64 * 1024;
    // A stall timeout the test never reaches: the bound decides.
    let (node, addr) = node(BOUND, Duration::from_secs(600)).await;
    let (p, peer) = stalling_peer(&node, &addr).await;
    let f = flood(&node, p, &peer, Duration::from_secs(60)).await;
    eprintln!("full lane: {f:?}");
    assert!(f.max_queued <= BOUND as u64, "{f:?}");
    let stats = node.remote_stats();
    assert_eq!(stats.stalled_connections, 1, "{stats:?}");
    assert!(stats.control_overflows >= 1, "{stats:?}");
    assert!(
        matches!(
            peer.stall_reason(),
            Some(StallReason::ControlLaneFull { queued, bound, len, .. })
                if bound == BOUND as u64 && queued + len > bound
        ),
        "{:?}",
        peer.stall_reason()
    );
    assert!(f.pending_ask_failed_fast, "{f:?}");
    assert!(f.max_rss_growth < 64 << 20, "{f:?}");
    then_all_is_well(&node, &addr, &peer).await;
    node.shutdown(Duration::from_secs(5)).await.unwrap();
}
