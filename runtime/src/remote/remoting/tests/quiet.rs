//! Issue 12 (an idle node of three wakes ≤ 20 times a second): at protocol
//! 12 a data connection sends no heartbeat of its own while its membership
//! lane carries frames to the peer, and its reader counts what arrives on
//! the lane before it closes the connection as silent. A connection whose
//! lanes both fall silent still closes within `dead_after`; a peer at
//! protocol 11 gets a ping every heartbeat as before.

use std::time::Instant;

use super::*;
use crate::remote::handshake::ProtocolRange;

/// Failure detection 1 s: heartbeat 100 ms, dead_after 600 ms.
const BOUND: Duration = Duration::from_secs(1);
const HEARTBEAT: Duration = Duration::from_millis(100);
const DEAD_AFTER: Duration = Duration::from_millis(600);

async fn node() -> (Node, String) {
    node_with(|b| b.failure_detection(BOUND)).await
}

/// Keeps a raw lane alive: pings on it every heartbeat and reads (and
/// drops) what the node sends on it, until the task is aborted.
fn keep_lane(mut lane: RawPeer) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(HEARTBEAT);
        loop {
            tokio::select! {
                _ = tick.tick() => lane.send(Frame::Ping { id: 0, table: 0 }).await,
                r = read_raw(&mut lane.rd, &mut lane.dec, &mut lane.buf) => {
                    if r.is_err() {
                        return;
                    }
                }
            }
        }
    })
}

/// What `p`'s data connection carries for `window`: the pings counted, or
/// why it closed.
async fn pings_within(p: &mut RawPeer, window: Duration) -> Result<u32, String> {
    let end = tokio::time::Instant::now() + window;
    let mut pings = 0;
    loop {
        match tokio::time::timeout_at(end, read_raw(&mut p.rd, &mut p.dec, &mut p.buf)).await {
            Err(_) => return Ok(pings),
            Ok(Ok(Frame::Ping { .. })) => pings += 1,
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e.to_string()),
        }
    }
}

/// How long after `since` the node closed `p` (bounded wait).
async fn closed_after(p: &mut RawPeer, since: Instant) -> Duration {
    p.closed(|_| true).await;
    since.elapsed()
}

#[tokio::test]
async fn an_idle_data_connection_with_a_live_lane_sends_no_heartbeats() {
    let (node, addr) = node().await;
    let mut data = RawPeer::connect(&addr).await;
    let lane = RawPeer::open(&addr, ConnKind::Membership, SECRET)
        .await
        .unwrap();
    let lane = keep_lane(lane);
    // Twenty heartbeats, over three times `dead_after`: the peer sends
    // nothing on the data connection, which stays open (the reader counts
    // the lane) and carries only the anti-entropy ping once in four
    // heartbeats (and the first ones, before the lane was up), not twenty.
    let window = HEARTBEAT * 20;
    let pings = pings_within(&mut data, window)
        .await
        .expect("the data connection stays open while the lane carries frames");
    assert!(
        (1..=20 / 4 + 3).contains(&pings),
        "{pings} pings in twenty heartbeats"
    );
    // It serves as before.
    let ok = crate::codec::encode(&Double(5)).unwrap();
    assert!(matches!(
        data.ask(1, "doubler", "wire-test.Double", ok).await,
        Frame::Reply { id: 1, .. }
    ));
    // The lane goes: the data connection pings every heartbeat again (the
    // peer's reader has nothing else to count) until the node closes it,
    // the peer silent on it for `dead_after`.
    lane.abort();
    let _ = lane.await;
    let since = Instant::now();
    let pings = pings_within(&mut data, HEARTBEAT * 4)
        .await
        .expect("open for dead_after after the lane went");
    assert!(
        pings >= 2,
        "{pings} pings in four heartbeats without a lane"
    );
    let took = closed_after(&mut data, since).await;
    assert!(
        took <= DEAD_AFTER + Duration::from_secs(2),
        "closed {took:?} after the lane went"
    );
    node.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn a_connection_whose_lanes_both_fall_silent_is_closed_within_dead_after() {
    let (node, addr) = node().await;
    let mut data = RawPeer::connect(&addr).await;
    let mut lane = RawPeer::open(&addr, ConnKind::Membership, SECRET)
        .await
        .unwrap();
    // The peer has sent its last bytes (the lane's handshake).
    let since = Instant::now();
    let took = closed_after(&mut data, since).await;
    assert!(
        took >= DEAD_AFTER - HEARTBEAT && took <= DEAD_AFTER + Duration::from_secs(2),
        "closed {took:?} after the peer fell silent (dead_after {DEAD_AFTER:?})"
    );
    lane.closed(|_| true).await;
    node.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn a_peer_at_protocol_11_gets_a_ping_every_heartbeat_and_must_ping_its_data_connection() {
    let (node, addr) = node().await;
    let s: BoxStream = Box::new(tokio::net::TcpStream::connect(&addr).await.unwrap());
    let old = ProtocolRange { min: 11, max: 11 };
    let mut data = RawPeer::speaking(s, ConnKind::Data, SECRET, old)
        .await
        .unwrap();
    let since = Instant::now();
    let s: BoxStream = Box::new(tokio::net::TcpStream::connect(&addr).await.unwrap());
    let lane = RawPeer::speaking(s, ConnKind::Membership, SECRET, old)
        .await
        .unwrap();
    let lane = keep_lane(lane);
    // A ping every heartbeat though the lane is up; and the lane does not
    // keep the data connection open: silent on it for `dead_after`, the
    // peer is cut off.
    let mut pings = 0;
    let reason = loop {
        match read_raw(&mut data.rd, &mut data.dec, &mut data.buf).await {
            Ok(Frame::Ping { .. }) => pings += 1,
            Ok(_) => {}
            Err(e) => break e.to_string(),
        }
    };
    let took = since.elapsed();
    assert!(!reason.is_empty());
    assert!(
        took >= DEAD_AFTER - HEARTBEAT && took <= DEAD_AFTER + Duration::from_secs(2),
        "closed {took:?} after the peer fell silent on it"
    );
    let expected = (took.as_millis() / HEARTBEAT.as_millis()) as u32;
    assert!(
        pings + 2 >= expected,
        "{pings} pings in {took:?} (a heartbeat is {HEARTBEAT:?})"
    );
    lane.abort();
    node.shutdown(Duration::from_secs(5)).await.unwrap();
}
