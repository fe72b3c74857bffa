//! Group sends across a duplicate connection's retirement: the same peer
//! connects a second time (as two nodes that dial each other at once
//! end up with two connections), the node retires the first and keeps the
//! second. What holds (docs/streams.md, "Groups"): each send goes on one
//! connection only, never on both, and is never retried, so a member gets
//! it at most once; a send made after the retirement goes on the kept
//! connection; an ask made on the retired connection is still answered
//! there; an ask whose connection closes unanswered ends with an error
//! (one result per member, no hang) and is not sent again; an event that
//! arrives on the retired connection is still handed to the member once.

use super::groups::{ad, until};
use super::*;
use crate::registry::group_topic;

/// The `Double` of a group frame, if `f` is one (a `Publish`, a
/// `PublishRun` of one event, or a `GroupAsk`, with the ask's id).
fn job(f: &Frame) -> Option<(u64, Option<u64>)> {
    match f {
        Frame::Publish { payload, .. } => Some((crate::codec::decode::<u64>(payload).ok()?, None)),
        Frame::PublishRun { events, .. } => match &events[..] {
            [one] => Some((crate::codec::decode::<u64>(&one.payload).ok()?, None)),
            _ => None,
        },
        Frame::GroupAsk { id, payload, .. } => {
            Some((crate::codec::decode::<u64>(payload).ok()?, Some(*id)))
        }
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_sends_across_a_retired_duplicate_connection_go_once_on_one_connection() {
    let (node, addr) = node().await;
    let mut c1 = RawPeer::connect(&addr).await;
    let group = node.group::<Double>("calc").unwrap();
    let topic = group_topic("calc", "wire-test.Double");
    c1.send(Frame::Topics {
        topics: vec![ad(topic.clone(), false, vec![("calc#0.1", vec![7])])],
    })
    .await;
    until("the raw peer's member is listed", || {
        group.members().len() == 1
    })
    .await;

    // An ask_all in flight on c1 when c1 is retired.
    let n = node.clone();
    let first = tokio::spawn(async move {
        let g = n.group::<Double>("calc").unwrap();
        g.ask_all(Double(1)).await
    });
    let asked = c1.until(|f| job(&f)).await;
    assert_eq!(asked.0, 1);
    let ask1 = asked.1.expect("a GroupAsk");

    // The same peer connects again: the node keeps c2 and retires c1 (its
    // table to c2 comes after the retirement).
    let mut c2 = RawPeer::connect(&addr).await;
    c2.until(|f| matches!(f, Frame::Table { .. }).then_some(()))
        .await;

    // The retired connection still carries the reply to the ask made on it.
    c1.send(Frame::Reply {
        id: ask1,
        payload: crate::codec::encode(&21u64).unwrap(),
    })
    .await;
    let replies = tokio::time::timeout(Duration::from_secs(10), first)
        .await
        .expect("ask_all answered")
        .unwrap();
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].1.as_ref().ok(), Some(&21));

    // Sends made after the retirement go on c2, once each.
    assert_eq!(group.tell_all(Double(2)), 1);
    let n = node.clone();
    let third = tokio::spawn(async move {
        let g = n.group::<Double>("calc").unwrap();
        g.ask_all(Double(3)).await
    });
    assert_eq!(c2.until(|f| job(&f)).await, (2, None));
    let (j, ask3) = c2.until(|f| job(&f)).await;
    assert_eq!(j, 3);
    c2.send(Frame::Reply {
        id: ask3.expect("a GroupAsk"),
        payload: crate::codec::encode(&33u64).unwrap(),
    })
    .await;
    let replies = tokio::time::timeout(Duration::from_secs(10), third)
        .await
        .expect("ask_all answered")
        .unwrap();
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].1.as_ref().ok(), Some(&33));

    // An event that arrives on the retired connection is still handed
    // to the local member, once.
    let local = group.join_service(&node.service("doubler"));
    let before = node.stats("doubler").unwrap().messages;
    c1.send(Frame::Publish {
        topic: topic.clone(),
        message: "wire-test.Double".into(),
        payload: crate::codec::encode(&Double(4)).unwrap(),
        plain: false,
        members: vec![local.id()],
    })
    .await;
    until("the member handles the event from c1", || {
        node.stats("doubler").unwrap().messages == before + 1
    })
    .await;

    // An ask whose connection closes unanswered ends with an error, one
    // result per member, and is not sent again on the other connection.
    let n = node.clone();
    let fifth = tokio::spawn(async move {
        let g = n.group::<Double>("calc").unwrap();
        g.ask_all(Double(5)).await
    });
    assert_eq!(c2.until(|f| job(&f)).await.0, 5);
    drop(c2);
    let replies = tokio::time::timeout(Duration::from_secs(10), fifth)
        .await
        .expect("ask_all returns when the connection closes")
        .unwrap();
    assert_eq!(replies.len(), 2, "{replies:?}");
    let remote: Vec<_> = replies.iter().filter(|(m, _)| m.node == "raw").collect();
    assert_eq!(remote.len(), 1);
    assert!(
        remote[0].1.is_err(),
        "the ask on the closed connection: {replies:?}"
    );
    // c1 saw no copy of any send made after its retirement: a ping on it
    // is answered with nothing of jobs 2, 3 or 5 before the pong.
    c1.send(Frame::Ping { id: 99, table: 0 }).await;
    loop {
        let f = c1.next().await.expect("c1 still open");
        if let Some((j, _)) = job(&f) {
            panic!("job {j} went on the retired connection too");
        }
        if matches!(f, Frame::Pong { id: 99 }) {
            break;
        }
    }
    drop(local);
    node.shutdown(Duration::from_secs(5)).await.unwrap();
}
