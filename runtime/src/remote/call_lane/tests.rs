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
