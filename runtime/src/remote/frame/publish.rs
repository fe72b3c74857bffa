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

use super::calls::{put_bytes, put_payload, put_varint, seal_frame, AppendError, Bytes, U64_BYTE};

/// Position of `Frame::Publish`.
pub(super) const PUBLISH_TAG: u8 = 24;

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

/// Appends a whole `Publish` frame (its length prefix included), the
/// event written in place by `payload`: the bytes
/// [`encode_into`](super::encode_into) writes for the equivalent
/// `Frame::Publish`. On an error nothing is left in `out`.
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

/// A length-prefixed byte string.
fn bytes<'a>(r: &mut Bytes<'a>) -> Option<&'a [u8]> {
    let len = usize::try_from(r.varint(U64_BYTE)?).ok()?;
    r.take(len)
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
