//! A connection's life in the simulation, driven by hand: the handshake
//! runs through the pipes (so a cut holds it, a heal releases it, and the
//! dialer gives up after the connect timeout), and a refused handshake
//! ends with the refusal read by the dialer.

use std::time::Duration;

use super::connection::Shake;
use super::node::CONNECT_TIMEOUT;
use super::world::World;
use super::{Sabotage, SimConfig};

const MS: Duration = Duration::from_millis(1);

/// A world of three nodes of which `started` run, with no fault, call or
/// finale scheduled: only what the nodes do themselves.
fn world(started: &[usize], sabotage: Sabotage) -> World {
    let mut cfg = SimConfig::new(1).nodes(3);
    cfg.sabotage = sabotage;
    let mut w = World::new(cfg, 3);
    for i in started {
        w.start(*i);
    }
    w
}

/// The connection `i` holds to `j`, if established.
fn peer_conn(w: &World, i: usize, j: usize) -> Option<u64> {
    w.nodes[i].as_ref()?.peers.get(&j).map(|p| p.conn)
}

/// The connections `i` holds in their handshake, with the other end.
fn shaking(w: &World, i: usize) -> Vec<(u64, usize)> {
    w.nodes[i].as_ref().map_or_else(Vec::new, |n| {
        n.shakes
            .iter()
            .map(|(c, s)| match s {
                Shake::Dialing { to, .. } => (*c, *to),
                Shake::Accepting { from, .. } => (*c, *from),
            })
            .collect()
    })
}

/// The time (seconds) of the log line of node `node` containing `what`.
fn when(w: &World, node: &str, what: &str) -> Option<f64> {
    w.log.lines.iter().find_map(|l| {
        let mut parts = l.split_whitespace();
        let t: f64 = parts.next()?.parse().ok()?;
        (parts.next()? == node && l.contains(what)).then_some(t)
    })
}

#[test]
fn a_handshake_takes_two_round_trips_through_the_pipes() {
    // 100 ms each way: Hello, Challenge, Auth, Welcome are four one-way
    // trips; the modelled handshake took one round trip (two).
    let mut w = world(&[], Sabotage::None);
    w.net.set_delay(0, 1, 100 * MS);
    w.net.set_delay(1, 0, 100 * MS);
    w.start(0);
    w.start(1);
    w.run_until(Duration::from_secs(2));
    let conn = peer_conn(&w, 1, 0).expect("n1 connected to n0");
    assert_eq!(
        peer_conn(&w, 0, 1),
        Some(conn),
        "both ends on one connection"
    );
    let dial = [("n0", "dial n1"), ("n1", "dial n0")]
        .into_iter()
        .filter_map(|(n, what)| when(&w, n, &format!("{what} (conn {conn})")))
        .next()
        .expect("the dial of the connection kept");
    let done = |node: &str, other: &str| {
        when(&w, node, &format!("connected to {other} (conn {conn})")).unwrap()
    };
    let last = done("n0", "n1").max(done("n1", "n0"));
    assert!(
        last - dial >= 0.404,
        "the later end established {:.3} s after the dial: not two round trips",
        last - dial
    );
}

#[test]
fn a_handshake_held_by_a_one_way_cut_finishes_at_the_heal() {
    let mut w = world(&[], Sabotage::None);
    w.net.cut_one_way(0, 1);
    w.start(0);
    w.start(1);
    w.run_until(Duration::from_secs(2));
    assert_eq!(peer_conn(&w, 0, 1), None, "not established across the cut");
    assert_eq!(peer_conn(&w, 1, 0), None);
    // n0 read n1's Hello (1 → 0 passes) and answers into the cut: both
    // hold the handshake open.
    let of_1: Vec<u64> = shaking(&w, 1)
        .into_iter()
        .filter(|(_, o)| *o == 0)
        .map(|(c, _)| c)
        .collect();
    assert!(!of_1.is_empty(), "n1 holds no handshake with n0");
    let read_hello = w.nodes[0].as_ref().is_some_and(|n| {
        n.shakes.iter().any(|(c, s)| {
            matches!(
                s,
                Shake::Accepting {
                    from: 1,
                    hello: true,
                    ..
                }
            ) && of_1.contains(c)
        })
    });
    assert!(read_hello, "n0 read no Hello from n1");
    let mut held = of_1;
    held.extend(shaking(&w, 0).into_iter().map(|(c, _)| c));
    let wakes = w.net.heal_cuts(w.now);
    w.wake_all(wakes);
    w.run_until(Duration::from_secs(2) + 50 * MS);
    let conn = peer_conn(&w, 1, 0).expect("established once the heal released the bytes");
    assert_eq!(peer_conn(&w, 0, 1), Some(conn));
    assert!(
        held.contains(&conn),
        "conn {conn} is a new dial, not the held handshake {held:?}"
    );
    assert!(w.nodes[1].as_ref().unwrap().last_seed_hang.is_none());
}

#[test]
fn a_handshake_held_past_the_connect_timeout_gives_up_as_a_hang() {
    let mut w = world(&[], Sabotage::None);
    w.net.cut_one_way(0, 1);
    w.start(0);
    w.start(1);
    w.run_until(CONNECT_TIMEOUT + 200 * MS);
    assert_eq!(peer_conn(&w, 1, 0), None);
    let n1 = w.nodes[1].as_ref().unwrap();
    assert!(n1.last_seed_hang.is_some(), "the dial of n0 did not hang");
    assert!(
        when(&w, "n1", "closed: no handshake within its timeout").is_some(),
        "n1 did not give up its dial"
    );
    let wakes = w.net.heal_cuts(w.now);
    w.wake_all(wakes);
    w.run_until(CONNECT_TIMEOUT + Duration::from_secs(2));
    assert!(peer_conn(&w, 1, 0).is_some(), "no new dial after the heal");
}

#[test]
fn a_node_with_another_secret_is_refused_and_the_dialer_reads_why() {
    let mut w = world(&[0, 1, 2], Sabotage::WrongSecret);
    w.run_until(Duration::from_secs(3));
    assert!(peer_conn(&w, 0, 1).is_some(), "n0 and n1 share the secret");
    for i in [0, 1] {
        assert_eq!(peer_conn(&w, i, 2), None, "n{i} connected to n2");
        assert_eq!(peer_conn(&w, 2, i), None, "n2 connected to n{i}");
    }
    // n2 dials the others: they refuse it; its dialer reads the refusal.
    assert!(
        when(&w, "n2", "refused by peer: authentication failed").is_some(),
        "n2 did not read a refusal"
    );
    assert!(when(&w, "n0", "authentication failed: the peer does not hold").is_some());
}
