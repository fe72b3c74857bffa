//! What only the memory network does: cut, heal, latency, reset. The
//! checks every transport passes are in `transport/suite.rs`.
//!
//! A stalled read is checked with `now_or_never` right after the write: a
//! write lands in the pipe at once, so a read that is not ready then is
//! held by the cut, with no waiting and no timing guess.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::ErrorKind;
use std::time::Duration;

use futures_util::FutureExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use super::super::suite::{pair, read_n};
use super::*;

/// Endpoints `a` and `b` on one network, each listening.
struct Two {
    net: MemoryNetwork,
    a: MemoryNetwork,
    b: MemoryNetwork,
    la: Box<dyn Listener>,
    lb: Box<dyn Listener>,
}

fn two() -> Two {
    let net = MemoryNetwork::new();
    let (a, b) = (net.clone(), net.clone());
    let la = a.bind("a:0").unwrap();
    let lb = b.bind("b:0").unwrap();
    Two { net, a, b, la, lb }
}

fn stalled(s: &mut BoxStream) -> bool {
    let mut buf = [0u8; 16];
    s.read(&mut buf).now_or_never().is_none()
}

async fn refused(t: &MemoryNetwork, addr: String) {
    let e = t.connect(addr).await.err().expect("refused");
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
}

#[test]
fn hosts_come_from_addresses() {
    assert_eq!(host_of("a:3"), "a");
    assert_eq!(host_of("mem:node-a"), "mem:node-a");
    assert_eq!(host_of("mem:a:0"), "mem:a");
    assert_eq!(host_of("a"), "a");
    assert_eq!(host_of("a:"), "a:");
}

#[tokio::test]
async fn a_clone_dials_from_the_host_it_binds() {
    let t = two();
    let (_, _, from) = pair(&t.a, &mut { t.lb }).await;
    assert!(from.starts_with("a:"), "{from}");
    // An endpoint that never binds gets a host of its own.
    let anon = t.net.clone();
    let (_, _, from) = pair(&anon, &mut { t.la }).await;
    assert!(from.starts_with("anon-"), "{from}");
}

#[tokio::test]
async fn a_name_without_a_port_binds_as_given() {
    let net = MemoryNetwork::new();
    let mut l = net.clone().bind("mem:node-a").unwrap();
    assert_eq!(l.local_addr(), "mem:node-a");
    let (mut out, mut inn, _) = pair(&net.endpoint("b"), &mut l).await;
    out.write_all(b"ok").await.unwrap();
    assert_eq!(read_n(&mut inn, 2).await, b"ok");
    assert!(net.bind("").is_err());
}

#[tokio::test]
async fn a_cut_stalls_both_ways_and_refuses_new_connections_until_healed() {
    let mut t = two();
    let (mut out, mut inn, _) = pair(&t.a, &mut t.lb).await;
    t.net.cut("a", "b");
    out.write_all(b"held").await.unwrap();
    inn.write_all(b"back").await.unwrap();
    assert!(stalled(&mut inn), "a to b stalls");
    assert!(stalled(&mut out), "b to a stalls");
    refused(&t.a, t.lb.local_addr()).await;
    refused(&t.b, t.la.local_addr()).await;
    // Even a close does not cross the cut.
    let (mut out2, inn2, _) = {
        t.net.heal("a", "b");
        let p = pair(&t.a, &mut t.lb).await;
        t.net.cut("a:1", "b:7"); // any address of the hosts names them
        p
    };
    drop(inn2);
    assert!(stalled(&mut out2), "no EOF across a cut");
    // Other hosts are not affected.
    let c = t.net.endpoint("c");
    let (mut oc, mut ic, _) = pair(&c, &mut t.lb).await;
    oc.write_all(b"c").await.unwrap();
    assert_eq!(read_n(&mut ic, 1).await, b"c");
    // A heal delivers what was held, in order, and connects again.
    t.net.heal("b", "a");
    assert_eq!(read_n(&mut inn, 4).await, b"held");
    assert_eq!(read_n(&mut out, 4).await, b"back");
    let mut b = [0u8; 1];
    assert_eq!(out2.read(&mut b).await.unwrap(), 0, "the close arrives");
    let (mut o, mut i, _) = pair(&t.a, &mut t.lb).await;
    o.write_all(b"new").await.unwrap();
    assert_eq!(read_n(&mut i, 3).await, b"new");
}

#[tokio::test]
async fn a_one_way_cut_stops_one_direction_only() {
    let mut t = two();
    let (mut out, mut inn, _) = pair(&t.a, &mut t.lb).await;
    t.net.cut_one_way("a", "b");
    out.write_all(b"held").await.unwrap();
    inn.write_all(b"back").await.unwrap();
    assert!(stalled(&mut inn), "a to b stalls");
    assert_eq!(read_n(&mut out, 4).await, b"back", "b to a flows");
    // A handshake needs both directions.
    refused(&t.a, t.lb.local_addr()).await;
    refused(&t.b, t.la.local_addr()).await;
    t.net.heal("a", "b");
    assert_eq!(read_n(&mut inn, 4).await, b"held");
}

#[tokio::test(start_paused = true)]
async fn a_dial_hanging_across_a_cut_is_answered_at_the_heal() {
    let t = two();
    t.net.set_dials_hang_across_cuts(true);
    t.net.cut("a", "b");
    let dial = t.a.connect(t.lb.local_addr());
    tokio::pin!(dial);
    // Hangs, however long the paused clock runs on.
    assert!(tokio::time::timeout(Duration::from_secs(60), dial.as_mut())
        .await
        .is_err());
    // The heal wakes it: no time passes (no polling interval to wait for).
    let healed_at = Instant::now();
    t.net.heal("a", "b");
    dial.await.unwrap();
    assert_eq!(Instant::now(), healed_at);
}

#[tokio::test]
async fn heal_all_restores_every_link() {
    let mut t = two();
    let c = t.net.clone();
    let mut lc = c.bind("c:0").unwrap();
    t.net.cut("a", "b");
    t.net.cut_one_way("c", "a");
    refused(&t.a, t.lb.local_addr()).await;
    refused(&t.a, lc.local_addr()).await;
    t.net.heal_all();
    pair(&t.a, &mut t.lb).await;
    pair(&t.a, &mut lc).await;
}

#[tokio::test]
async fn latency_delays_delivery_by_at_least_the_latency() {
    const LATENCY: Duration = Duration::from_millis(150);
    let mut t = two();
    t.net.set_latency("a", "b", LATENCY);
    // A new connection waits one round trip.
    let t0 = Instant::now();
    let (mut out, mut inn, _) = pair(&t.a, &mut t.lb).await;
    assert!(t0.elapsed() >= 2 * LATENCY, "{:?}", t0.elapsed());
    // Each direction.
    let t0 = Instant::now();
    out.write_all(b"x").await.unwrap();
    assert!(stalled(&mut inn), "not before the latency");
    assert_eq!(read_n(&mut inn, 1).await, b"x");
    assert!(t0.elapsed() >= LATENCY, "{:?}", t0.elapsed());
    let t0 = Instant::now();
    inn.write_all(b"y").await.unwrap();
    assert_eq!(read_n(&mut out, 1).await, b"y");
    assert!(t0.elapsed() >= LATENCY, "{:?}", t0.elapsed());
    // Latency delays delivery, not the writer: ten writes in a row
    // arrive about one latency later, not ten.
    let t0 = Instant::now();
    for i in 0..10u8 {
        out.write_all(&[i]).await.unwrap();
    }
    assert!(t0.elapsed() < LATENCY, "writes do not wait");
    assert_eq!(read_n(&mut inn, 10).await, (0..10).collect::<Vec<u8>>());
    let took = t0.elapsed();
    assert!(took >= LATENCY && took < 10 * LATENCY, "{took:?}");
    // One way only, and back to none.
    t.net.set_latency("a", "b", Duration::ZERO);
    t.net
        .set_latency_one_way("b", "a", Duration::from_secs(3600));
    out.write_all(b"z").await.unwrap();
    assert_eq!(read_n(&mut inn, 1).await, b"z", "a to b has no delay");
    inn.write_all(b"w").await.unwrap();
    assert!(stalled(&mut out), "b to a waits an hour");
}

#[tokio::test]
async fn drop_connections_gives_eof_and_allows_new_connections() {
    let mut t = two();
    let (mut out, mut inn, _) = pair(&t.a, &mut t.lb).await;
    let c = t.net.endpoint("c");
    let (mut oc, mut ic, _) = pair(&c, &mut t.lb).await;
    t.net.drop_connections("b", "a");
    let mut b = [0u8; 1];
    assert_eq!(inn.read(&mut b).await.unwrap(), 0);
    assert_eq!(out.read(&mut b).await.unwrap(), 0);
    let e = out.write_all(b"x").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionReset);
    // Other connections live; new ones are allowed.
    oc.write_all(b"c").await.unwrap();
    assert_eq!(read_n(&mut ic, 1).await, b"c");
    let (mut o, mut i, _) = pair(&t.a, &mut t.lb).await;
    o.write_all(b"new").await.unwrap();
    assert_eq!(read_n(&mut i, 3).await, b"new");
}

#[tokio::test]
async fn a_full_pipe_holds_the_writer_until_the_reader_reads() {
    let mut t = two();
    let (mut out, mut inn, _) = pair(&t.a, &mut t.lb).await;
    let big = vec![7u8; PIPE_BYTES + 1];
    let mut write = Box::pin(out.write_all(&big));
    assert!(
        (&mut write).now_or_never().is_none(),
        "one byte more than the pipe holds waits"
    );
    let mut got = read_n(&mut inn, PIPE_BYTES).await;
    write.await.unwrap();
    got.extend(read_n(&mut inn, 1).await);
    assert_eq!(got, big);
}
