//! Process group memberships from a peer (`Frame::Topics` carrying a
//! group's internal topic): a well-formed one is applied, a malformed one
//! is refused and counted, and the connection keeps serving.

use std::fmt::Write as _;
use std::sync::Once;

use super::*;
use crate::registry::{group_topic, TopicAd};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};

/// The refusals logged (the fields of each warning about a malformed
/// group membership), by a process-wide subscriber that keeps only those
/// (the node logs on its own threads).
static REFUSALS: parking_lot::Mutex<Vec<String>> = parking_lot::Mutex::new(Vec::new());

struct Refusals;
struct Fields(String);
impl Visit for Fields {
    fn record_debug(&mut self, f: &Field, v: &dyn std::fmt::Debug) {
        let _ = write!(self.0, "{}={:?} ", f.name(), v);
    }
}
impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Refusals {
    fn on_event(&self, e: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut v = Fields(String::new());
        e.record(&mut v);
        if v.0.contains("malformed group membership") {
            REFUSALS.lock().push(v.0);
        }
    }
}

fn capture_refusals() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let s = tracing_subscriber::registry()
            .with(tracing_subscriber::filter::LevelFilter::WARN)
            .with(Refusals);
        let _ = tracing::subscriber::set_global_default(s);
    });
}

pub(super) fn ad(topic: String, plain: bool, groups: Vec<(&str, Vec<u64>)>) -> TopicAd {
    TopicAd {
        topic,
        plain,
        groups: groups
            .into_iter()
            .map(|(l, ids)| (l.to_string(), ids))
            .collect(),
    }
}

/// Waits (bounded) until `cond` holds.
pub(super) async fn until(what: &str, cond: impl Fn() -> bool) {
    let t0 = std::time::Instant::now();
    while !cond() {
        assert!(t0.elapsed() < Duration::from_secs(10), "{what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_malformed_groups_frame_is_refused_counted_and_the_connection_serves_on() {
    capture_refusals();
    let (node, addr) = node().await;
    let mut p = RawPeer::connect(&addr).await;
    let group = node.group::<Double>("workers").unwrap();
    let topic = group_topic("workers", "wire-test.Double");
    p.send(Frame::Topics {
        topics: vec![ad(topic.clone(), false, vec![("calc#0.3", vec![7])])],
    })
    .await;
    until("the raw peer's member is listed", || {
        group.members().len() == 1
    })
    .await;
    let m = &group.members()[0];
    assert_eq!(
        (m.node.as_str(), m.service.as_str(), m.id),
        ("raw", "calc", 7)
    );
    assert_eq!(m.instance.map(|i| (i.slot, i.incarnation)), Some((0, 3)));

    let bad = [
        ad(
            group_topic("", "wire-test.Double"),
            false,
            vec![("calc", vec![1])],
        ),
        ad(
            group_topic(&"g".repeat(4096), "x"),
            false,
            vec![("calc", vec![1])],
        ),
        ad(format!("{topic}\u{1}more"), false, vec![("calc", vec![1])]),
        ad(topic.clone(), true, vec![("calc", vec![1])]),
        ad(topic.clone(), false, vec![]),
        ad(topic.clone(), false, vec![("calc#one.two", vec![1])]),
        ad(topic.clone(), false, vec![("", vec![1])]),
        ad(topic.clone(), false, vec![("calc", vec![])]),
    ];
    let n = bad.len() as u64;
    for b in bad {
        // Each malformed ad rides beside a well-formed one that would
        // otherwise replace the member: the frame is refused whole.
        let other = ad(topic.clone(), false, vec![("calc#1.0", vec![8])]);
        p.send(Frame::Topics {
            topics: vec![other, b],
        })
        .await;
    }
    until("every malformed frame counted", || {
        node.topic_stats().refused_ads == n
    })
    .await;
    assert_eq!(group.members().len(), 1);
    assert_eq!(
        group.members()[0].id,
        7,
        "nothing of a refused frame applied"
    );
    // The connection serves on: a call is answered, and a good frame
    // replaces the membership.
    let ok = crate::codec::encode(&Double(21)).unwrap();
    assert!(matches!(
        p.ask(1, "doubler", "wire-test.Double", ok).await,
        Frame::Reply { id: 1, .. }
    ));
    p.send(Frame::Topics { topics: vec![] }).await;
    until("an empty ad list removes the member", || {
        group.members().is_empty()
    })
    .await;
    node.shutdown(Duration::from_secs(5)).await.unwrap();
}

/// Sends `f`, then the reply or error that answers it.
async fn reply(p: &mut RawPeer, f: Frame) -> Frame {
    p.send(f).await;
    p.until(|f| match f {
        f @ (Frame::Reply { .. } | Frame::Error { .. }) => Some(f),
        _ => None,
    })
    .await
}

#[tokio::test]
async fn a_group_ask_from_a_peer_reaches_the_member_it_names_or_gets_a_typed_error() {
    let (node, addr) = node().await;
    let mut p = RawPeer::connect(&addr).await;
    let group = node.group::<Double>("calc").unwrap();
    let m = group.join_service(&node.service("doubler"));
    let topic = group_topic("calc", "wire-test.Double");
    let ask = |id: u64, member: u64, message: &str| Frame::GroupAsk {
        id,
        topic: topic.clone(),
        member,
        message: message.into(),
        timeout_ms: 5_000,
        payload: crate::codec::encode(&Double(21)).unwrap(),
    };
    match reply(&mut p, ask(1, m.id(), "wire-test.Double")).await {
        Frame::Reply { id: 1, payload } => {
            assert_eq!(crate::codec::decode::<u64>(&payload).unwrap(), 42);
        }
        other => panic!("{other:?}"),
    }
    // A member id it does not have, another message type, another group.
    for (id, f) in [
        (2, ask(2, m.id() + 100, "wire-test.Double")),
        (3, ask(3, m.id(), "wire-test.Other")),
    ] {
        match reply(&mut p, f).await {
            Frame::Error { id: got, .. } => assert_eq!(got, id),
            other => panic!("{other:?}"),
        }
    }
    let mut other_group = ask(4, m.id(), "wire-test.Double");
    if let Frame::GroupAsk { topic, .. } = &mut other_group {
        *topic = group_topic("nope", "wire-test.Double");
    }
    assert!(matches!(
        reply(&mut p, other_group).await,
        Frame::Error { id: 4, .. }
    ));
    // A member whose service guards the message with an access rule: a
    // group ask from another node (no identity) is denied.
    node.spawn(
        ServiceSpec::new("guarded", || Doubler)
            .handles::<Double>()
            .access(
                crate::access::Access::new().default_rule(crate::access::Rule::roles(["admin"])),
            ),
    )
    .await
    .unwrap();
    let g = group.join_service(&node.service("guarded"));
    match reply(&mut p, ask(7, g.id(), "wire-test.Double")).await {
        Frame::Error { id: 7, error } => {
            assert!(
                matches!(error, WireError::PermissionDenied { .. }),
                "{error:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    drop(g);
    // Left: the same ask is refused now; the connection still serves.
    m.leave();
    assert!(matches!(
        reply(&mut p, ask(5, 1, "wire-test.Double")).await,
        Frame::Error { id: 5, .. }
    ));
    let ok = crate::codec::encode(&Double(1)).unwrap();
    assert!(matches!(
        p.ask(6, "doubler", "wire-test.Double", ok).await,
        Frame::Reply { id: 6, .. }
    ));
    node.shutdown(Duration::from_secs(5)).await.unwrap();
}
