//! `Publish` frames written and read by hand, byte for byte as bincode
//! writes them (as `calls.rs` does for tells and asks): a topic event
//! used to become a `Frame::Publish` (the topic and wire name copied into
//! two strings, the payload into a vector of its own, then encoded by
//! serde in the writer) and, on the receiving node, a decoded frame with
//! the same three allocations. Now the publisher appends the finished
//! frame straight into the connection's call lane, the event encoded in
//! place ([`append_publish`]), and the reader borrows the topic, wire name
//! and payload from its buffer ([`decode_publish`]). Nothing changes on
//! the wire: the tests compare both ways with serde's, and a body the hand
//! reader does not take goes the serde way, which decides.

//!
//! Since protocol 11 a sender writes `PublishRun` frames instead: the
//! connection's lane opens one for an event ([`open_run`],
//! [`append_run_event`], [`seal_run`]) and appends each later event of the
//! same topic and wire name to it while it is the last frame queued, so a
//! run of publishes names the topic and message once; the reader borrows
//! the run's events from its buffer ([`decode_publish_run`]). `Publish`
//! frames are still read.

#[cfg(test)]
use super::calls::seal_frame;
use super::calls::{
    put_bytes, put_payload, put_varint, AppendError, Bytes, SINGLE_BYTE_MAX, U64_BYTE,
};
use crate::registry::WireEvent;

/// Position of `Frame::Publish`.
pub(super) const PUBLISH_TAG: u8 = 24;
/// Position of `Frame::PublishRun`.
pub(super) const PUBLISH_RUN_TAG: u8 = 30;

/// Events a sender puts in one `PublishRun` frame at most: the count then
/// stays a one-byte varint, rewritten in place as events join.
pub(crate) const MAX_RUN_EVENTS: u8 = 250;
const _: () = assert!(MAX_RUN_EVENTS <= SINGLE_BYTE_MAX);

/// A `PublishRun` frame at least this large takes no more events (the
/// next one opens a new frame): a receiver reads a frame only once it is
/// whole, so a run stays small enough not to hold back its first events.
pub(crate) const RUN_BYTES: usize = 16 * 1024;

/// A `Publish` frame's fields, borrowed from the reader's buffer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct PublishRef<'a> {
    /// The topic.
    pub(crate) topic: &'a str,
    /// The event's wire name.
    pub(crate) message: &'a str,
    /// The event's bincode encoding.
    pub(crate) payload: &'a [u8],
    /// Whether the receiver's plain subscribers take it.
    pub(crate) plain: bool,
    /// The consumer-group members on the receiver that take it.
    pub(crate) members: Vec<u64>,
}

/// Appends a whole `Publish` frame (tests compare the frames and their
/// serde encoding; senders write `PublishRun` frames since protocol 11) (its length prefix included), the
/// event written in place by `payload`: the bytes
/// [`encode_into`](super::encode_into) writes for the equivalent
/// `Frame::Publish`. On an error nothing is left in `out`.
#[cfg(test)]
pub(crate) fn append_publish<E>(
    out: &mut Vec<u8>,
    topic: &str,
    message: &str,
    plain: bool,
    members: &[u64],
    max: usize,
    payload: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
) -> Result<(), AppendError<E>> {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    out.push(PUBLISH_TAG);
    put_bytes(out, topic.as_bytes());
    put_bytes(out, message.as_bytes());
    put_payload(out, start, payload)?;
    out.push(u8::from(plain));
    put_varint(out, members.len() as u64);
    for &m in members {
        put_varint(out, m);
    }
    seal_frame(out, start, max)
}

/// Where an open `PublishRun` frame sits in a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RunAt {
    /// The frame's first byte (its length prefix).
    pub(crate) start: usize,
    /// Its event count's one byte.
    count_at: usize,
}

/// Appends the head of a `PublishRun` frame that holds no event yet: a
/// length prefix to come, the tag, the topic and wire name, and a count of
/// 0. Events follow ([`append_run_event`]); [`seal_run`] sets the prefix
/// and the count.
pub(crate) fn open_run(out: &mut Vec<u8>, topic: &str, message: &str) -> RunAt {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    out.push(PUBLISH_RUN_TAG);
    put_bytes(out, topic.as_bytes());
    put_bytes(out, message.as_bytes());
    let count_at = out.len();
    out.push(0);
    RunAt { start, count_at }
}

/// Appends one event of a run at the end of `out`, written in place by
/// `payload`, then `plain` and `members` (a [`super::RunEvent`]'s bytes).
/// On an error `out` is cut back to where the event started.
pub(crate) fn append_run_event<E>(
    out: &mut Vec<u8>,
    plain: bool,
    members: &[u64],
    payload: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
) -> Result<(), AppendError<E>> {
    let at = out.len();
    put_payload(out, at, payload)?;
    out.push(u8::from(plain));
    put_varint(out, members.len() as u64);
    for &m in members {
        put_varint(out, m);
    }
    Ok(())
}

/// Writes the length prefix and the event count of the run at `run`,
/// which ends where `out` ends. `TooLarge`, with nothing changed, when its
/// body exceeds `max` (the caller takes its last event out again).
pub(crate) fn seal_run<E>(
    out: &mut [u8],
    run: RunAt,
    count: u8,
    max: usize,
) -> Result<(), AppendError<E>> {
    let len = out.len() - run.start - 4;
    let Ok(len32) = u32::try_from(len) else {
        return Err(AppendError::TooLarge { len, max });
    };
    if len > max || count > MAX_RUN_EVENTS {
        return Err(AppendError::TooLarge { len, max });
    }
    out[run.start..run.start + 4].copy_from_slice(&len32.to_be_bytes());
    out[run.count_at] = count;
    Ok(())
}

/// A `PublishRun` frame's fields, its events borrowed from the reader's
/// buffer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct PublishRunRef<'a> {
    /// The topic.
    pub(crate) topic: &'a str,
    /// The events' wire name.
    pub(crate) message: &'a str,
    /// The events, in the order published.
    pub(crate) events: Vec<WireEvent<'a>>,
}

/// Reads a whole `PublishRun` body (tag included); `None` for anything
/// else (another frame, bad UTF-8, malformed or trailing bytes): the
/// caller then decodes it the serde way, which decides.
pub(super) fn decode_publish_run(body: &[u8]) -> Option<PublishRunRef<'_>> {
    let mut r = Bytes { b: body };
    if r.byte()? != PUBLISH_RUN_TAG {
        return None;
    }
    let topic = std::str::from_utf8(bytes(&mut r)?).ok()?;
    let message = std::str::from_utf8(bytes(&mut r)?).ok()?;
    let n = usize::try_from(r.varint(U64_BYTE)?).ok()?;
    // Each event takes at least three bytes: a count beyond what is left
    // is malformed (and would otherwise reserve memory for nothing).
    if n > r.b.len() / 3 {
        return None;
    }
    let mut events = Vec::with_capacity(n);
    for _ in 0..n {
        let payload = bytes(&mut r)?;
        let (plain, members) = plain_and_members(&mut r)?;
        events.push(WireEvent {
            payload,
            plain,
            members,
        });
    }
    if !r.b.is_empty() {
        return None;
    }
    Some(PublishRunRef {
        topic,
        message,
        events,
    })
}

/// A length-prefixed byte string.
fn bytes<'a>(r: &mut Bytes<'a>) -> Option<&'a [u8]> {
    let len = usize::try_from(r.varint(U64_BYTE)?).ok()?;
    r.take(len)
}

/// An event's `plain` flag and its group members, as `Publish` and
/// `PublishRun` both carry them.
fn plain_and_members(r: &mut Bytes<'_>) -> Option<(bool, Vec<u64>)> {
    let plain = match r.byte()? {
        0 => false,
        1 => true,
        _ => return None,
    };
    let n = usize::try_from(r.varint(U64_BYTE)?).ok()?;
    // Each member takes at least one byte: a count beyond what is left is
    // malformed (and would otherwise reserve memory for nothing).
    if n > r.b.len() {
        return None;
    }
    let mut members = Vec::with_capacity(n);
    for _ in 0..n {
        members.push(r.varint(U64_BYTE)?);
    }
    Some((plain, members))
}

/// Reads a whole `Publish` body (tag included); `None` for anything else
/// (another frame, bad UTF-8, malformed or trailing bytes): the caller then
/// decodes it the serde way, which decides.
pub(super) fn decode_publish(body: &[u8]) -> Option<PublishRef<'_>> {
    let mut r = Bytes { b: body };
    if r.byte()? != PUBLISH_TAG {
        return None;
    }
    let topic = std::str::from_utf8(bytes(&mut r)?).ok()?;
    let message = std::str::from_utf8(bytes(&mut r)?).ok()?;
    let payload = bytes(&mut r)?;
    let (plain, members) = plain_and_members(&mut r)?;
    if !r.b.is_empty() {
        return None;
    }
    Some(PublishRef {
        topic,
        message,
        payload,
        plain,
        members,
    })
}

#[cfg(test)]
mod tests {
    use super::super::{encode_into, Frame, DEFAULT_MAX_FRAME_BYTES};
    use super::*;
    use crate::message::{codec, CodecError};
    use proptest::prelude::*;

    fn frame(
        topic: &str,
        message: &str,
        payload: Vec<u8>,
        plain: bool,
        members: Vec<u64>,
    ) -> Frame {
        Frame::Publish {
            topic: topic.into(),
            message: message.into(),
            payload,
            plain,
            members,
        }
    }

    fn appended(f: &Frame) -> Vec<u8> {
        let Frame::Publish {
            topic,
            message,
            payload,
            plain,
            members,
        } = f
        else {
            unreachable!()
        };
        let mut out = vec![9, 9];
        append_publish::<CodecError>(
            &mut out,
            topic,
            message,
            *plain,
            members,
            DEFAULT_MAX_FRAME_BYTES,
            |o| {
                o.extend_from_slice(payload);
                Ok(())
            },
        )
        .unwrap();
        out.split_off(2)
    }

    #[test]
    fn a_publish_appended_from_its_parts_is_the_bytes_serde_writes_and_reads_back() {
        let big = vec![7u8; 70_000];
        let cases = [
            frame("t", "m", vec![], true, vec![]),
            frame("bench.hits", "bench.Hit", vec![1, 2, 3], true, vec![]),
            frame("", "", vec![0; 250], false, vec![1]),
            frame(
                "ü",
                "x",
                vec![0; 251],
                false,
                vec![250, 251, 65_536, u64::MAX],
            ),
            frame(&"t".repeat(300), "m", big, true, (0..300).collect()),
        ];
        for f in cases {
            let mut want = Vec::new();
            encode_into(&f, DEFAULT_MAX_FRAME_BYTES, &mut want).unwrap();
            let got = appended(&f);
            assert_eq!(got, want, "{f:?}");
            let read = decode_publish(&got[4..]).unwrap();
            let Frame::Publish {
                topic,
                message,
                payload,
                plain,
                members,
            } = &f
            else {
                unreachable!()
            };
            assert_eq!(
                read,
                PublishRef {
                    topic,
                    message,
                    payload,
                    plain: *plain,
                    members: members.clone(),
                }
            );
        }
    }

    #[test]
    fn a_failing_or_too_large_publish_leaves_nothing() {
        let mut out = vec![1, 2, 3];
        let r = append_publish(&mut out, "t", "m", true, &[], 1 << 20, |o| {
            o.push(1);
            Err("no")
        });
        assert!(matches!(r, Err(AppendError::Payload("no"))));
        assert_eq!(out, [1, 2, 3]);
        let r = append_publish::<CodecError>(&mut out, "t", "m", true, &[], 8, |o| {
            o.extend_from_slice(&[0; 16]);
            Ok(())
        });
        assert!(matches!(r, Err(AppendError::TooLarge { max: 8, .. })));
        assert_eq!(out, [1, 2, 3]);
    }

    #[test]
    fn other_frames_and_bad_text_are_left_to_serde() {
        let mut b = Vec::new();
        encode_into(&Frame::TableRequest, DEFAULT_MAX_FRAME_BYTES, &mut b).unwrap();
        assert!(decode_publish(&b[4..]).is_none());
        let mut b = appended(&frame("t", "m", vec![1], true, vec![]));
        b[6] = 0xff; // the topic's one byte
        assert!(decode_publish(&b[4..]).is_none());
        assert!(codec::decode::<Frame>(&b[4..]).is_err());
    }

    proptest! {
        /// Any body: the hand reader takes only what serde reads as the
        /// same `Publish`.
        #[test]
        fn arbitrary_publish_bodies_never_disagree_with_serde(
            tail in proptest::collection::vec(any::<u8>(), 0..64),
            cut in 0usize..64,
        ) {
            let mut body = vec![PUBLISH_TAG];
            body.extend_from_slice(&tail[..cut.min(tail.len())]);
            let serde = codec::decode::<Frame>(&body).ok();
            if let Some(p) = decode_publish(&body) {
                prop_assert_eq!(serde, Some(frame(p.topic, p.message, p.payload.to_vec(), p.plain, p.members)));
            }
        }

        /// Any `Publish`: appended bytes are serde's, and read back whole.
        #[test]
        fn arbitrary_publishes_round_trip_by_hand(
            topic in ".{0,20}",
            message in ".{0,20}",
            payload in proptest::collection::vec(any::<u8>(), 0..300),
            plain in any::<bool>(),
            members in proptest::collection::vec(any::<u64>(), 0..5),
        ) {
            let f = frame(&topic, &message, payload, plain, members);
            let mut want = Vec::new();
            encode_into(&f, DEFAULT_MAX_FRAME_BYTES, &mut want).unwrap();
            let got = appended(&f);
            prop_assert_eq!(&got, &want);
            let p = decode_publish(&got[4..]).unwrap();
            prop_assert_eq!(frame(p.topic, p.message, p.payload.to_vec(), p.plain, p.members), f);
        }
    }
}

#[cfg(test)]
mod run_tests {
    use super::super::DEFAULT_MAX_FRAME_BYTES as MAX;
    use super::super::{encode_into, Frame, FrameDecoder, FrameError, Incoming, RunEvent};
    use super::*;
    use crate::message::{codec, CodecError};
    use proptest::prelude::*;

    fn run(topic: &str, message: &str, events: Vec<(Vec<u8>, bool, Vec<u64>)>) -> Frame {
        Frame::PublishRun {
            topic: topic.into(),
            message: message.into(),
            events: events
                .into_iter()
                .map(|(payload, plain, members)| RunEvent {
                    payload,
                    plain,
                    members,
                })
                .collect(),
        }
    }

    /// The run's bytes as a connection's lane writes them: opened, then
    /// each event appended and the run sealed again.
    fn appended(f: &Frame) -> Vec<u8> {
        let Frame::PublishRun {
            topic,
            message,
            events,
        } = f
        else {
            unreachable!()
        };
        let mut out = vec![9, 9];
        let at = open_run(&mut out, topic, message);
        seal_run::<CodecError>(&mut out, at, 0, MAX).unwrap();
        for (i, e) in events.iter().enumerate() {
            append_run_event::<CodecError>(&mut out, e.plain, &e.members, |o| {
                o.extend_from_slice(&e.payload);
                Ok(())
            })
            .unwrap();
            let count = u8::try_from(i + 1).unwrap();
            seal_run::<CodecError>(&mut out, at, count, MAX).unwrap();
        }
        out.split_off(2)
    }

    fn read_back(r: PublishRunRef<'_>) -> Frame {
        run(
            r.topic,
            r.message,
            r.events
                .into_iter()
                .map(|e| (e.payload.to_vec(), e.plain, e.members))
                .collect(),
        )
    }

    #[test]
    fn a_run_appended_event_by_event_is_the_bytes_serde_writes_and_reads_back() {
        let cases = [
            run("t", "m", vec![]),
            run("bench.hits", "bench.Hit", vec![(vec![1, 2], true, vec![])]),
            run(
                "ü",
                "",
                vec![
                    (vec![0; 250], false, vec![1]),
                    (vec![0; 251], true, vec![250, 251, 65_536, u64::MAX]),
                    (vec![7; 70_000], false, vec![]),
                ],
            ),
            run(
                &"t".repeat(300),
                "m",
                (0..250u64)
                    .map(|i| {
                        (
                            i.to_le_bytes().to_vec(),
                            i % 2 == 0,
                            vec![i; (i % 3) as usize],
                        )
                    })
                    .collect(),
            ),
        ];
        for f in cases {
            let mut want = Vec::new();
            encode_into(&f, MAX, &mut want).unwrap();
            let got = appended(&f);
            assert_eq!(got, want, "{f:?}");
            assert_eq!(read_back(decode_publish_run(&got[4..]).unwrap()), f);
            // The connection's reader takes it by hand.
            let mut d = FrameDecoder::new(MAX);
            d.push(&got);
            let Ok(Some(Incoming::PublishRun(r))) = d.next_incoming() else {
                panic!("not read as a run: {f:?}")
            };
            assert_eq!(read_back(r), f);
        }
    }

    #[test]
    fn a_run_past_the_limit_is_refused_and_left_as_it_was() {
        let mut out = Vec::new();
        let at = open_run(&mut out, "t", "m");
        append_run_event::<CodecError>(&mut out, true, &[], |o| {
            o.push(1);
            Ok(())
        })
        .unwrap();
        seal_run::<CodecError>(&mut out, at, 1, 64).unwrap();
        let sealed = out.clone();
        append_run_event::<CodecError>(&mut out, true, &[], |o| {
            o.extend_from_slice(&[2; 100]);
            Ok(())
        })
        .unwrap();
        let r = seal_run::<CodecError>(&mut out, at, 2, 64);
        assert!(
            matches!(r, Err(AppendError::TooLarge { max: 64, .. })),
            "{r:?}"
        );
        out.truncate(sealed.len());
        assert_eq!(out, sealed);
        // A payload that fails to encode leaves nothing of its event.
        let r = append_run_event(&mut out, true, &[], |o| {
            o.push(3);
            Err("no")
        });
        assert!(matches!(r, Err(AppendError::Payload("no"))));
        assert_eq!(out, sealed);
    }

    #[test]
    fn a_malformed_run_is_a_decode_error_never_a_panic() {
        let good = appended(&run(
            "t",
            "m",
            vec![(vec![1], true, vec![]), (vec![2], false, vec![5])],
        ));
        let body = &good[4..];
        let count_at = 1 + 2 + 2;
        let mut bad: Vec<Vec<u8>> = Vec::new();
        // Cut anywhere inside.
        for cut in 1..body.len() {
            bad.push(body[..cut].to_vec());
        }
        // More events announced than it holds; a huge count.
        let mut more = body.to_vec();
        more[count_at] = 3;
        bad.push(more);
        let mut huge = body[..count_at].to_vec();
        huge.extend_from_slice(&[253, 255, 255, 255, 255, 255, 255, 255, 127]);
        huge.extend_from_slice(&body[count_at + 1..]);
        bad.push(huge);
        // A `plain` that is not a bool; a byte after the last event.
        let mut not_bool = body.to_vec();
        not_bool[count_at + 3] = 2;
        bad.push(not_bool);
        let mut trailing = body.to_vec();
        trailing.push(0);
        bad.push(trailing);
        for b in bad {
            assert!(decode_publish_run(&b).is_none(), "{b:?}");
            let mut framed = (b.len() as u32).to_be_bytes().to_vec();
            framed.extend_from_slice(&b);
            let mut d = FrameDecoder::new(MAX);
            d.push(&framed);
            assert!(
                matches!(d.next_incoming(), Err(FrameError::Malformed(_))),
                "{b:?}"
            );
        }
    }

    proptest! {
        /// Any body: the hand reader takes only what serde reads as the
        /// same run.
        #[test]
        fn arbitrary_run_bodies_never_disagree_with_serde(
            tail in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut body = vec![PUBLISH_RUN_TAG];
            body.extend_from_slice(&tail);
            let serde = codec::decode::<Frame>(&body).ok();
            if let Some(r) = decode_publish_run(&body) {
                prop_assert_eq!(serde, Some(read_back(r)));
            }
        }

        /// Any run: appended bytes are serde's, and read back whole.
        #[test]
        fn arbitrary_runs_round_trip_by_hand(
            topic in ".{0,20}",
            message in ".{0,20}",
            events in proptest::collection::vec(
                (
                    proptest::collection::vec(any::<u8>(), 0..300),
                    any::<bool>(),
                    proptest::collection::vec(any::<u64>(), 0..4),
                ),
                0..12,
            ),
        ) {
            let f = run(&topic, &message, events);
            let mut want = Vec::new();
            encode_into(&f, MAX, &mut want).unwrap();
            let got = appended(&f);
            prop_assert_eq!(&got, &want);
            prop_assert_eq!(read_back(decode_publish_run(&got[4..]).unwrap()), f);
        }
    }
}
