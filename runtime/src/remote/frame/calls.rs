//! Calls (`Tell`, `Ask`) written and read by hand, byte for byte as bincode
//! writes them: the serde path costs several hundred instructions per frame
//! (visitors, a `Vec` for the payload), which is most of a small call's
//! cost. Nothing changes on the wire: [`encode_call`] produces exactly what
//! `codec::encode_append` would (the tests compare both over many frames),
//! and [`decode_call`] takes only the common shape of a call (a route id, no
//! identity) and gives up (`None`) on anything else, which then goes the
//! serde way, so it never accepts what bincode would refuse or read it
//! differently.
//!
//! bincode's standard configuration, as used here: unsigned integers are
//! varints (a value up to 250 is its own byte; else a marker byte 251, 252,
//! 253 or 254 and then 2, 4, 8 or 16 little-endian bytes), an enum is its
//! variant's position as a varint and then its fields, an `Option` is a
//! byte 0 or 1 and then the value, a string or byte vector its length as a
//! varint and then its bytes.

use super::{Frame, Route, WireMeta};

/// Position of `Frame::Tell`.
pub(super) const TELL_TAG: u8 = 5;
/// Position of `Frame::Ask`.
pub(super) const ASK_TAG: u8 = 6;
/// Position of `Route::Named`.
const NAMED_TAG: u8 = 0;
/// Position of `Route::Id`.
const ID_TAG: u8 = 1;
/// Position of `Route::Once`.
const ONCE_TAG: u8 = 2;

pub(super) const SINGLE_BYTE_MAX: u8 = 250;
const U16_BYTE: u8 = 251;
const U32_BYTE: u8 = 252;
pub(super) const U64_BYTE: u8 = 253;
const U128_BYTE: u8 = 254;

pub(super) fn put_varint(out: &mut Vec<u8>, v: u64) {
    if v <= u64::from(SINGLE_BYTE_MAX) {
        out.push(v as u8);
    } else if v <= u64::from(u16::MAX) {
        out.push(U16_BYTE);
        out.extend_from_slice(&(v as u16).to_le_bytes());
    } else if v <= u64::from(u32::MAX) {
        out.push(U32_BYTE);
        out.extend_from_slice(&(v as u32).to_le_bytes());
    } else {
        out.push(U64_BYTE);
        out.extend_from_slice(&v.to_le_bytes());
    }
}

fn put_varint128(out: &mut Vec<u8>, v: u128) {
    match u64::try_from(v) {
        Ok(small) => put_varint(out, small),
        Err(_) => {
            out.push(U128_BYTE);
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
}

pub(super) fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn put_meta(out: &mut Vec<u8>, m: &WireMeta) {
    match &m.subject {
        None => out.push(0),
        Some(s) => {
            out.push(1);
            put_bytes(out, s.as_bytes());
        }
    }
    put_varint(out, m.roles.len() as u64);
    for r in &m.roles {
        put_bytes(out, r.as_bytes());
    }
    match m.trace {
        None => out.push(0),
        Some((trace, span)) => {
            out.push(1);
            put_varint128(out, trace);
            put_varint(out, span);
        }
    }
    match m.timeout_ms {
        None => out.push(0),
        Some(t) => {
            out.push(1);
            put_varint(out, t);
        }
    }
    for s in [&m.token, &m.service] {
        match s {
            None => out.push(0),
            Some(s) => {
                out.push(1);
                put_bytes(out, s.as_bytes());
            }
        }
    }
}

/// Appends a `Tell` or `Ask` as bincode would encode it (no length prefix);
/// `false`, with nothing written, for any other frame and for a route that
/// never goes on the wire (the serde path then reports it).
pub(super) fn encode_call(frame: &Frame, out: &mut Vec<u8>) -> bool {
    let (tag, id, route, meta, payload) = match frame {
        Frame::Tell {
            route,
            meta,
            payload,
        } => (TELL_TAG, None, route, meta, payload),
        Frame::Ask {
            id,
            route,
            meta,
            payload,
        } => (ASK_TAG, Some(*id), route, meta, payload),
        _ => return false,
    };
    if matches!(route, Route::Local { .. }) {
        return false;
    }
    out.push(tag);
    if let Some(id) = id {
        put_varint(out, id);
    }
    match route {
        Route::Named {
            id,
            service,
            message,
        } => {
            out.push(NAMED_TAG);
            put_varint(out, u64::from(*id));
            put_bytes(out, service.as_bytes());
            put_bytes(out, message.as_bytes());
        }
        Route::Id(id) => {
            out.push(ID_TAG);
            put_varint(out, u64::from(*id));
        }
        Route::Once { service, message } => {
            out.push(ONCE_TAG);
            put_bytes(out, service.as_bytes());
            put_bytes(out, message.as_bytes());
        }
        Route::Local { .. } => unreachable!("checked above"),
    }
    put_meta(out, meta);
    put_bytes(out, payload);
    true
}

/// How a call names its (service, message) pair on one connection (see
/// [`OutboundRoutes`](crate::remote::routes::OutboundRoutes)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RouteForm<'a> {
    /// The pair's first call: its names and the id later calls use.
    Named {
        /// The id given to the pair.
        id: u32,
        /// The service's name.
        service: &'a str,
        /// The message's wire name.
        message: &'a str,
    },
    /// A pair named before on this connection.
    Id(u32),
    /// A pair named without an id (the connection ran out of ids).
    Once {
        /// The service's name.
        service: &'a str,
        /// The message's wire name.
        message: &'a str,
    },
}

/// Why [`append_call`] wrote nothing.
#[derive(Debug)]
pub(crate) enum AppendError<E> {
    /// The payload's encoder failed.
    Payload(E),
    /// The whole frame would exceed the frame limit.
    TooLarge {
        /// Bytes of the frame's body.
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// Appends a whole call frame (its length prefix included) built straight
/// from its parts, with the payload written in place by `payload`: the same
/// bytes [`encode_into`](super::encode_into) writes for the equivalent
/// `Frame::Tell` (`id` `None`) or `Frame::Ask`, without the frame, its
/// payload vector or its route's strings. On an error nothing is left in
/// `out`.
pub(crate) fn append_call<E>(
    out: &mut Vec<u8>,
    id: Option<u64>,
    route: RouteForm<'_>,
    meta: &WireMeta,
    max: usize,
    payload: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
) -> Result<(), AppendError<E>> {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    match id {
        None => out.push(TELL_TAG),
        Some(id) => {
            out.push(ASK_TAG);
            put_varint(out, id);
        }
    }
    match route {
        RouteForm::Named {
            id,
            service,
            message,
        } => {
            out.push(NAMED_TAG);
            put_varint(out, u64::from(id));
            put_bytes(out, service.as_bytes());
            put_bytes(out, message.as_bytes());
        }
        RouteForm::Id(id) => {
            out.push(ID_TAG);
            put_varint(out, u64::from(id));
        }
        RouteForm::Once { service, message } => {
            out.push(ONCE_TAG);
            put_bytes(out, service.as_bytes());
            put_bytes(out, message.as_bytes());
        }
    }
    put_meta(out, meta);
    put_payload(out, start, payload)?;
    seal_frame(out, start, max)
}

/// Appends a payload written in place by `payload`, its length a varint in
/// front of it (bincode's `Vec<u8>`): one byte is kept for the length (a
/// small payload's whole length), widened after if it is larger. On an
/// error `out` is cut back to `start`, the frame's first byte.
pub(super) fn put_payload<E>(
    out: &mut Vec<u8>,
    start: usize,
    payload: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
) -> Result<(), AppendError<E>> {
    let len_at = out.len();
    out.push(0);
    if let Err(e) = payload(out) {
        out.truncate(start);
        return Err(AppendError::Payload(e));
    }
    let plen = out.len() - len_at - 1;
    if plen <= usize::from(SINGLE_BYTE_MAX) {
        out[len_at] = plen as u8;
    } else {
        let mut wide = Vec::with_capacity(9);
        put_varint(&mut wide, plen as u64);
        out.splice(len_at..=len_at, wide);
    }
    Ok(())
}

/// Writes the length prefix of the frame that starts at `start` (four
/// bytes kept there), or cuts `out` back to `start` if the frame's body is
/// larger than `max`.
pub(super) fn seal_frame<E>(
    out: &mut Vec<u8>,
    start: usize,
    max: usize,
) -> Result<(), AppendError<E>> {
    let len = out.len() - start - 4;
    if len > max || u32::try_from(len).is_err() {
        out.truncate(start);
        return Err(AppendError::TooLarge { len, max });
    }
    out[start..start + 4].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(())
}

/// A reader over a frame's body that mirrors bincode's decoding.
pub(super) struct Bytes<'a> {
    pub(super) b: &'a [u8],
}

impl<'a> Bytes<'a> {
    pub(super) fn byte(&mut self) -> Option<u8> {
        let (&first, rest) = self.b.split_first()?;
        self.b = rest;
        Some(first)
    }

    pub(super) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.b.len() < n {
            return None;
        }
        let (head, rest) = self.b.split_at(n);
        self.b = rest;
        Some(head)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    /// A varint no wider than `widest` (the marker byte of the type's width).
    pub(super) fn varint(&mut self, widest: u8) -> Option<u64> {
        let first = self.byte()?;
        let v = match first {
            0..=SINGLE_BYTE_MAX => u64::from(first),
            U16_BYTE => u64::from(u16::from_le_bytes(self.array()?)),
            U32_BYTE if widest >= U32_BYTE => u64::from(u32::from_le_bytes(self.array()?)),
            U64_BYTE if widest >= U64_BYTE => u64::from_le_bytes(self.array()?),
            _ => return None,
        };
        Some(v)
    }

    fn varint128(&mut self) -> Option<u128> {
        if self.b.first() == Some(&U128_BYTE) {
            self.byte()?;
            return Some(u128::from_le_bytes(self.array()?));
        }
        self.varint(U64_BYTE).map(u128::from)
    }

    fn option(&mut self) -> Option<bool> {
        match self.byte()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }
}

/// The fields of a call read by hand.
pub(super) struct Call<'a> {
    pub(super) id: Option<u64>,
    pub(super) route: Route,
    pub(super) meta: WireMeta,
    pub(super) payload: &'a [u8],
}

/// Reads a whole `Tell` or `Ask` body (tag included) of the common shape:
/// a route id, no identity, no token and no calling service. `None` for anything else (another frame, a
/// named route, an identity, malformed or trailing bytes): the caller then
/// decodes it the serde way, which decides.
pub(super) fn decode_call(body: &[u8]) -> Option<Call<'_>> {
    let mut r = Bytes { b: body };
    let id = match r.byte()? {
        TELL_TAG => None,
        ASK_TAG => Some(r.varint(U64_BYTE)?),
        _ => return None,
    };
    if r.byte()? != ID_TAG {
        return None;
    }
    let route = Route::Id(u32::try_from(r.varint(U32_BYTE)?).ok()?);
    // No subject, no roles: anything else takes the serde path.
    if r.option()? || r.varint(U64_BYTE)? != 0 {
        return None;
    }
    let trace = if r.option()? {
        Some((r.varint128()?, r.varint(U64_BYTE)?))
    } else {
        None
    };
    let timeout_ms = if r.option()? {
        Some(r.varint(U64_BYTE)?)
    } else {
        None
    };
    // No token, no calling service: likewise.
    if r.option()? || r.option()? {
        return None;
    }
    let len = usize::try_from(r.varint(U64_BYTE)?).ok()?;
    let payload = r.take(len)?;
    if !r.b.is_empty() {
        return None;
    }
    Some(Call {
        id,
        route,
        meta: WireMeta {
            subject: None,
            roles: Vec::new(),
            trace,
            timeout_ms,
            token: None,
            service: None,
        },
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::codec;

    fn metas() -> Vec<WireMeta> {
        let mut v = vec![WireMeta::default()];
        for timeout in [
            None,
            Some(0),
            Some(250),
            Some(251),
            Some(65_536),
            Some(u64::MAX),
        ] {
            for trace in [
                None,
                Some((0u128, 0u64)),
                Some((250, 251)),
                Some((u128::from(u64::MAX), u64::from(u32::MAX) + 1)),
                Some((u128::from(u64::MAX) + 1, 7)),
                Some((u128::MAX, u64::MAX)),
            ] {
                v.push(WireMeta {
                    subject: None,
                    roles: vec![],
                    trace,
                    timeout_ms: timeout,
                    ..WireMeta::default()
                });
            }
        }
        v.push(WireMeta {
            subject: Some("alice".into()),
            roles: vec!["admin".into(), "x".repeat(300)],
            trace: Some((1, 2)),
            timeout_ms: Some(5_000),
            token: Some("h.p.s".into()),
            service: Some("orders".into()),
        });
        v.push(WireMeta {
            service: Some("orders".into()),
            ..WireMeta::default()
        });
        v.push(WireMeta {
            token: Some("t".repeat(300)),
            ..WireMeta::default()
        });
        v
    }

    fn routes() -> Vec<Route> {
        let mut v: Vec<Route> = [0u32, 250, 251, 65_535, 65_536, u32::MAX]
            .into_iter()
            .map(Route::Id)
            .collect();
        v.push(Route::Named {
            id: 3,
            service: "sink".into(),
            message: "bench.Hit".into(),
        });
        v.push(Route::Once {
            service: "s".repeat(260),
            message: "m".into(),
        });
        v
    }

    fn frames() -> Vec<Frame> {
        let mut v = Vec::new();
        for route in routes() {
            for meta in metas() {
                for len in [0usize, 1, 8, 250, 251, 70_000] {
                    let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
                    v.push(Frame::Tell {
                        route: route.clone(),
                        meta: meta.clone(),
                        payload: payload.clone(),
                    });
                    for id in [0u64, 251, u64::MAX] {
                        v.push(Frame::Ask {
                            id,
                            route: route.clone(),
                            meta: meta.clone(),
                            payload: payload.clone(),
                        });
                    }
                }
            }
        }
        v
    }

    #[test]
    fn calls_are_encoded_byte_for_byte_as_bincode_does() {
        for f in frames() {
            let mut ours = vec![9u8];
            assert!(encode_call(&f, &mut ours), "{f:?}");
            assert_eq!(ours[1..], codec::encode(&f).unwrap()[..], "{f:?}");
        }
    }

    /// The form `append_call` takes for a wire route.
    fn form(route: &Route) -> RouteForm<'_> {
        match route {
            Route::Id(id) => RouteForm::Id(*id),
            Route::Named {
                id,
                service,
                message,
            } => RouteForm::Named {
                id: *id,
                service,
                message,
            },
            Route::Once { service, message } => RouteForm::Once { service, message },
            Route::Local { .. } => unreachable!("not a wire route"),
        }
    }

    #[test]
    fn calls_appended_from_their_parts_are_the_bytes_of_the_whole_frame() {
        for f in frames() {
            let (id, route, meta, payload) = match &f {
                Frame::Tell {
                    route,
                    meta,
                    payload,
                } => (None, route, meta, payload),
                Frame::Ask {
                    id,
                    route,
                    meta,
                    payload,
                } => (Some(*id), route, meta, payload),
                _ => unreachable!("only calls are made"),
            };
            let mut whole = vec![7u8];
            super::super::encode_into(&f, usize::MAX, &mut whole).unwrap();
            let mut parts = vec![7u8];
            append_call(&mut parts, id, form(route), meta, usize::MAX, |out| {
                out.extend_from_slice(payload);
                Ok::<(), ()>(())
            })
            .unwrap();
            assert_eq!(parts, whole, "{f:?}");
        }
    }

    #[test]
    fn an_appended_call_that_fails_or_is_too_large_leaves_nothing() {
        let mut out = vec![1u8, 2, 3];
        let failed = append_call(
            &mut out,
            None,
            RouteForm::Id(1),
            &WireMeta::default(),
            1024,
            |o| {
                o.extend_from_slice(&[9; 300]);
                Err("refused")
            },
        );
        assert!(matches!(failed, Err(AppendError::Payload("refused"))));
        assert_eq!(out, [1, 2, 3]);
        let big = append_call(
            &mut out,
            Some(5),
            RouteForm::Id(1),
            &WireMeta::default(),
            100,
            |o| {
                o.extend_from_slice(&[9; 300]);
                Ok::<(), ()>(())
            },
        );
        assert!(
            matches!(big, Err(AppendError::TooLarge { max: 100, .. })),
            "{big:?}"
        );
        assert_eq!(out, [1, 2, 3]);
    }

    #[test]
    fn hand_read_calls_match_what_serde_reads_or_are_left_to_it() {
        let mut fast = 0;
        for f in frames() {
            let bytes = codec::encode(&f).unwrap();
            let Some(c) = decode_call(&bytes) else {
                let (Frame::Tell { route, meta, .. } | Frame::Ask { route, meta, .. }) = &f else {
                    unreachable!("only calls are made")
                };
                assert!(
                    !matches!(route, Route::Id(_))
                        || meta.subject.is_some()
                        || meta.token.is_some()
                        || meta.service.is_some(),
                    "a common call was left to serde: {f:?}"
                );
                continue;
            };
            fast += 1;
            let back = match c.id {
                None => Frame::Tell {
                    route: c.route,
                    meta: c.meta,
                    payload: c.payload.to_vec(),
                },
                Some(id) => Frame::Ask {
                    id,
                    route: c.route,
                    meta: c.meta,
                    payload: c.payload.to_vec(),
                },
            };
            assert_eq!(back, f);
            // A truncated or padded body is never taken.
            assert!(decode_call(&bytes[..bytes.len() - 1]).is_none());
            let mut padded = bytes.clone();
            padded.push(0);
            assert!(decode_call(&padded).is_none());
        }
        assert!(fast > 1_000, "only {fast} calls took the hand-read path");
    }

    #[test]
    fn other_frames_and_local_routes_are_left_to_serde() {
        let mut out = Vec::new();
        assert!(!encode_call(&Frame::Pong { id: 1 }, &mut out));
        let local = Frame::Tell {
            route: Route::Local {
                service: "s".into(),
                message: super::super::StaticName("m"),
            },
            meta: WireMeta::default(),
            payload: vec![],
        };
        assert!(!encode_call(&local, &mut out));
        assert!(out.is_empty());
        assert!(decode_call(&codec::encode(&Frame::Pong { id: 1 }).unwrap()).is_none());
        assert!(decode_call(&[]).is_none());
    }

    proptest::proptest! {
        /// Any bytes after a call's tag: the hand reader either gives up or
        /// reads exactly what serde reads.
        #[test]
        fn arbitrary_call_bodies_never_disagree_with_serde(
            ask in proptest::bool::ANY,
            routed in proptest::bool::ANY,
            rest in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
        ) {
            let mut body = vec![if ask { ASK_TAG } else { TELL_TAG }];
            if routed && !ask {
                // Most random bodies fail at the route: start some with one.
                body.push(ID_TAG);
            }
            body.extend_from_slice(&rest);
            if let Some(c) = decode_call(&body) {
                let serde: Frame = codec::decode(&body).expect("serde refused what the hand reader took");
                let (id, route, meta, payload) = match serde {
                    Frame::Tell { route, meta, payload } => (None, route, meta, payload),
                    Frame::Ask { id, route, meta, payload } => (Some(id), route, meta, payload),
                    other => panic!("not a call: {other:?}"),
                };
                proptest::prop_assert_eq!(c.id, id);
                proptest::prop_assert_eq!(c.route, route);
                proptest::prop_assert_eq!(c.meta, meta);
                proptest::prop_assert_eq!(c.payload, &payload[..]);
            }
        }
    }
}
