use std::sync::Arc;

use super::*;
use crate::message::codec;
use crate::remote::frame::{FrameDecoder, Incoming, Route};

fn tell<'a>(service: &'a Arc<str>, meta: &'a WireMeta) -> OutCall<'a> {
    OutCall {
        id: None,
        service,
        message: "bench.Hit",
        meta,
    }
}

fn payload(v: u64) -> impl FnOnce(&mut Vec<u8>) -> Result<(), CodecError> {
    move |out| codec::encode_append(&v, out)
}

/// The calls in `bytes`: (ask id, route, payload value).
fn decode(bytes: &[u8]) -> Vec<(Option<u64>, Route, u64)> {
    let mut dec = FrameDecoder::new(usize::MAX);
    dec.push(bytes);
    let mut out = Vec::new();
    while let Some(f) = dec.next_incoming().unwrap() {
        match f {
            Incoming::Tell { route, payload, .. } => {
                out.push((None, route, codec::decode(payload).unwrap()))
            }
            Incoming::Ask {
                id, route, payload, ..
            } => out.push((Some(id), route, codec::decode(payload).unwrap())),
            Incoming::Frame(f) => panic!("not a call: {f:?}"),
            Incoming::Publish(p) => panic!("not a call: {p:?}"),
            Incoming::PublishRun(r) => panic!("not a call: {r:?}"),
        }
    }
    out
}

#[test]
fn calls_come_out_in_order_and_name_their_pair_once() {
    let lane = CallLane::new(16, 1 << 20);
    let sink: Arc<str> = Arc::from("sink");
    let meta = WireMeta::default();
    for v in 1..=3u64 {
        lane.push_call(tell(&sink, &meta), payload(v), |_| true)
            .unwrap();
    }
    let ask = OutCall {
        id: Some(9),
        ..tell(&sink, &meta)
    };
    lane.push_call(ask, payload(4), |_| true).unwrap();
    let mut out = Vec::new();
    let (bytes, frames) = lane.take_into(&mut out);
    assert_eq!((bytes, frames), (out.len() as u64, 4));
    let calls = decode(&out);
    assert_eq!(
        calls,
        vec![
            (
                None,
                Route::Named {
                    id: 0,
                    service: "sink".into(),
                    message: "bench.Hit".into()
                },
                1
            ),
            (None, Route::Id(0), 2),
            (None, Route::Id(0), 3),
            (Some(9), Route::Id(0), 4),
        ]
    );
    // Taken: the lane is empty, and a second take into a non-empty buffer appends.
    assert_eq!(lane.take_into(&mut out), (0, 0));
    lane.push_call(tell(&sink, &meta), payload(5), |_| true)
        .unwrap();
    let before = out.len();
    lane.take_into(&mut out);
    assert_eq!(decode(&out[before..]), vec![(None, Route::Id(0), 5)]);
}

#[test]
fn a_refused_call_leaves_nothing_and_its_pair_is_named_again() {
    let lane = CallLane::new(16, 1 << 20);
    let sink: Arc<str> = Arc::from("sink");
    let meta = WireMeta::default();
    let refused = lane.push_call(tell(&sink, &meta), payload(1), |_| false);
    assert!(matches!(refused, Err(LaneRefusal::Full)), "{refused:?}");
    lane.push_call(tell(&sink, &meta), payload(2), |_| true)
        .unwrap();
    let mut out = Vec::new();
    lane.take_into(&mut out);
    let calls = decode(&out);
    assert_eq!(calls.len(), 1);
    assert!(matches!(calls[0].1, Route::Named { .. }), "{calls:?}");
    assert_eq!(calls[0].2, 2);
}

#[test]
fn the_frame_bound_the_frame_limit_and_closing_refuse_calls() {
    let lane = CallLane::new(2, 64);
    let sink: Arc<str> = Arc::from("sink");
    let meta = WireMeta::default();
    let big = lane.push_call(
        tell(&sink, &meta),
        |out| codec::encode_append(&vec![7u8; 100], out),
        |_| true,
    );
    assert!(
        matches!(
            big,
            Err(LaneRefusal::Frame(FrameError::TooLarge { max: 64, .. }))
        ),
        "{big:?}"
    );
    lane.push_call(tell(&sink, &meta), payload(1), |_| true)
        .unwrap();
    lane.push_call(tell(&sink, &meta), payload(2), |_| true)
        .unwrap();
    let full = lane.push_call(tell(&sink, &meta), payload(3), |_| true);
    assert!(matches!(full, Err(LaneRefusal::Full)), "{full:?}");
    let mut out = Vec::new();
    lane.take_into(&mut out);
    // The oversized call did not take the pair's name with it.
    let calls = decode(&out);
    assert!(matches!(calls[0].1, Route::Named { .. }), "{calls:?}");
    lane.push_call(tell(&sink, &meta), payload(4), |_| true)
        .unwrap();
    assert!(lane.close() > 0);
    let closed = lane.push_call(tell(&sink, &meta), payload(5), |_| true);
    assert!(matches!(closed, Err(LaneRefusal::Closed)), "{closed:?}");
    let json = lane.push_frame(&mut Frame::Pong { id: 1 }, |_| true);
    assert!(matches!(json, Err(LaneRefusal::Closed)), "{json:?}");
}

#[tokio::test]
async fn the_writer_is_woken_when_the_lane_stops_being_empty() {
    let lane = Arc::new(CallLane::new(16, 1 << 20));
    let waiter = {
        let lane = lane.clone();
        tokio::spawn(async move { lane.ready().await })
    };
    let sink: Arc<str> = Arc::from("sink");
    lane.push_call(tell(&sink, &WireMeta::default()), payload(1), |_| true)
        .unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(30), waiter)
        .await
        .expect("the writer was not woken")
        .unwrap();
}

#[test]
fn a_sealed_lane_ends_with_its_mark_after_the_calls_queued_and_refuses_more() {
    let lane = CallLane::new(16, 1 << 20);
    let sink: Arc<str> = Arc::from("sink");
    let meta = WireMeta::default();
    lane.push_call(tell(&sink, &meta), payload(1), |_| true)
        .unwrap();
    let mut counted = 0;
    assert!(lane.seal(&Frame::CallsDone, |len| counted = len));
    assert!(matches!(
        lane.push_call(tell(&sink, &meta), payload(2), |_| true),
        Err(LaneRefusal::Closed)
    ));
    assert!(!lane.seal(&Frame::CallsDone, |_| {}), "sealed once");
    let mut out = Vec::new();
    let (bytes, frames) = lane.take_into(&mut out);
    assert_eq!(frames, 2);
    let mut dec = FrameDecoder::new(usize::MAX);
    dec.push(&out);
    assert!(matches!(
        dec.next_incoming().unwrap(),
        Some(Incoming::Tell { .. })
    ));
    let tell_len = bytes - counted;
    assert!(tell_len > 0 && counted > 0);
    assert!(matches!(
        dec.next_incoming().unwrap(),
        Some(Incoming::Frame(Frame::CallsDone))
    ));
    assert!(dec.next_incoming().unwrap().is_none());
}

fn publish<'a>(topic: &'a str, members: &'a [u64]) -> OutPublish<'a> {
    OutPublish {
        topic,
        message: "bench.Hit",
        plain: members.is_empty(),
        members,
    }
}

/// One event as a test reads it: its value, `plain` and members.
type Event = (u64, bool, Vec<u64>);

/// The topic events in `bytes`, frame by frame: (topic, events), read by
/// hand as a connection's reader does.
fn runs(bytes: &[u8]) -> Vec<(String, Vec<Event>)> {
    let mut dec = FrameDecoder::new(usize::MAX);
    dec.push(bytes);
    let mut out = Vec::new();
    while let Some(f) = dec.next_incoming().unwrap() {
        let r = match f {
            Incoming::PublishRun(r) => r,
            other => panic!("not a run: {other:?}"),
        };
        assert_eq!(r.message, "bench.Hit");
        let events: Vec<Event> = r
            .events
            .iter()
            .map(|e| {
                (
                    codec::decode(e.payload).unwrap(),
                    e.plain,
                    e.members.clone(),
                )
            })
            .collect();
        out.push((r.topic.to_string(), events));
    }
    out
}

#[test]
fn consecutive_events_of_one_topic_share_a_frame_and_anything_between_ends_it() {
    let lane = CallLane::new(64, 1 << 20);
    let sink: Arc<str> = Arc::from("sink");
    let meta = WireMeta::default();
    for v in 1..=3u64 {
        lane.push_publish(publish("a", &[]), payload(v), |_| true)
            .unwrap();
    }
    lane.push_publish(publish("a", &[7, 8]), payload(4), |_| true)
        .unwrap();
    lane.push_publish(publish("b", &[]), payload(5), |_| true)
        .unwrap();
    lane.push_publish(publish("a", &[]), payload(6), |_| true)
        .unwrap();
    lane.push_call(tell(&sink, &meta), payload(7), |_| true)
        .unwrap();
    lane.push_publish(publish("a", &[]), payload(8), |_| true)
        .unwrap();
    let mut out = Vec::new();
    let (bytes, frames) = lane.take_into(&mut out);
    assert_eq!((bytes, frames), (out.len() as u64, 5));
    let mut dec = FrameDecoder::new(usize::MAX);
    dec.push(&out);
    let mut kinds = Vec::new();
    while let Some(f) = dec.next_incoming().unwrap() {
        kinds.push(match f {
            Incoming::PublishRun(r) => format!("{}:{}", r.topic, r.events.len()),
            Incoming::Tell { .. } => "tell".to_string(),
            other => panic!("unexpected {other:?}"),
        });
    }
    assert_eq!(kinds, ["a:4", "b:1", "a:1", "tell", "a:1"]);
    // Taken: the next event opens a new frame, in a new buffer.
    lane.push_publish(publish("a", &[]), payload(9), |_| true)
        .unwrap();
    lane.push_publish(publish("a", &[]), payload(10), |_| true)
        .unwrap();
    let mut next = Vec::new();
    assert_eq!(lane.take_into(&mut next).1, 1);
    assert_eq!(
        runs(&next),
        vec![("a".to_string(), vec![(9, true, vec![]), (10, true, vec![])])]
    );
}

#[test]
fn a_run_takes_its_events_in_order_with_their_members() {
    let lane = CallLane::new(1024, 1 << 20);
    let members = [3u64, 1 << 40];
    for v in 0..10u64 {
        let m: &[u64] = if v % 3 == 0 { &members } else { &[] };
        lane.push_publish(publish("t", m), payload(v), |_| true)
            .unwrap();
    }
    let mut out = Vec::new();
    lane.take_into(&mut out);
    let want: Vec<Event> = (0..10u64)
        .map(|v| {
            if v % 3 == 0 {
                (v, false, members.to_vec())
            } else {
                (v, true, vec![])
            }
        })
        .collect();
    assert_eq!(runs(&out), vec![("t".to_string(), want)]);
}

#[test]
fn a_run_ends_at_its_event_count_and_at_the_frame_limit() {
    // The count: 250 events a frame at most.
    let lane = CallLane::new(10_000, 1 << 20);
    for v in 0..600u64 {
        lane.push_publish(publish("t", &[]), payload(v), |_| true)
            .unwrap();
    }
    let mut out = Vec::new();
    assert_eq!(lane.take_into(&mut out).1, 3);
    let got = runs(&out);
    let sizes: Vec<usize> = got.iter().map(|(_, e)| e.len()).collect();
    assert_eq!(sizes, [250, 250, 100]);
    let values: Vec<u64> = got
        .iter()
        .flat_map(|(_, e)| e.iter().map(|e| e.0))
        .collect();
    assert_eq!(values, (0..600).collect::<Vec<_>>());
    // The frame limit: a run that would grow past it leaves the event to
    // a frame of its own; an event too large for any frame is refused.
    let lane = CallLane::new(10_000, 64);
    for v in 0..20u64 {
        lane.push_publish(
            publish("t", &[]),
            |out| codec::encode_append(&vec![v as u8; 20], out),
            |_| true,
        )
        .unwrap();
    }
    let big = lane.push_publish(
        publish("t", &[]),
        |out| codec::encode_append(&vec![0u8; 100], out),
        |_| true,
    );
    assert!(
        matches!(
            big,
            Err(LaneRefusal::Frame(FrameError::TooLarge { max: 64, .. }))
        ),
        "{big:?}"
    );
    let mut out = Vec::new();
    let (_, frames) = lane.take_into(&mut out);
    let mut dec = FrameDecoder::new(64);
    dec.push(&out);
    let mut seen = Vec::new();
    let mut n = 0;
    while let Some(f) = dec.next_incoming().unwrap() {
        let r = match f {
            Incoming::PublishRun(r) => r,
            other => panic!("not a run: {other:?}"),
        };
        n += 1;
        for e in &r.events {
            seen.push(codec::decode::<Vec<u8>>(e.payload).unwrap()[0]);
        }
    }
    assert_eq!(n, frames);
    assert!(frames > 1 && frames < 20, "{frames} frames");
    assert_eq!(seen, (0..20u8).collect::<Vec<_>>());
}

#[test]
fn a_refused_event_leaves_its_run_as_it_was_and_counts_against_the_bound() {
    // Each event counts as a frame against the bound, as a tell does.
    let lane = CallLane::new(3, 1 << 20);
    for v in 1..=3u64 {
        lane.push_publish(publish("t", &[]), payload(v), |_| true)
            .unwrap();
    }
    let full = lane.push_publish(publish("t", &[]), payload(4), |_| true);
    assert!(matches!(full, Err(LaneRefusal::Full)), "{full:?}");
    let mut out = Vec::new();
    let (bytes, frames) = lane.take_into(&mut out);
    assert_eq!(frames, 1);
    // `admit` refuses an event: the run before it is intact, and the next
    // event joins it. `admit` is asked for the bytes each event adds.
    let lane = CallLane::new(16, 1 << 20);
    let mut admitted = 0;
    lane.push_publish(publish("t", &[]), payload(1), |n| {
        admitted += n;
        true
    })
    .unwrap();
    let refused = lane.push_publish(publish("t", &[]), payload(2), |_| false);
    assert!(matches!(refused, Err(LaneRefusal::Full)), "{refused:?}");
    let failed = lane.push_publish(
        publish("t", &[]),
        |_| Err(CodecError::Encode("no".into())),
        |_| true,
    );
    assert!(matches!(failed, Err(LaneRefusal::Frame(_))), "{failed:?}");
    lane.push_publish(publish("t", &[]), payload(3), |n| {
        admitted += n;
        true
    })
    .unwrap();
    let mut next = Vec::new();
    let (taken, _) = lane.take_into(&mut next);
    assert_eq!(taken, admitted);
    assert_eq!(
        runs(&next),
        vec![("t".to_string(), vec![(1, true, vec![]), (3, true, vec![])])]
    );
    assert_eq!(runs(&out)[0].1.len(), 3);
    assert_eq!(bytes, out.len() as u64);
}
