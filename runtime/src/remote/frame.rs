//! Wire frames and their codec: a 4-byte big-endian length, then the frame
//! encoded with bincode (serde mode). A length over `max_frame_bytes` is
//! refused from the prefix, before anything is allocated for the body.

use serde::{Deserialize, Serialize};

use super::handshake::ProtocolRange;
use crate::message::{codec, CodecError};

mod calls;
mod publish;
mod size;

/// A 32-byte random challenge.
pub(crate) type Nonce = [u8; 32];
/// An HMAC-SHA256 tag.
pub(crate) type Proof = [u8; 32];

/// Default limit on one frame (8 MiB).
pub const DEFAULT_MAX_FRAME_BYTES: usize = 8 * 1024 * 1024;

/// Default limit on one frame before the peer is authenticated (4 KiB): a
/// handshake frame holds two node names and addresses, a cluster name, a
/// nonce and a MAC, a few hundred bytes; anything larger is refused from
/// its length prefix, before a byte of its body is buffered.
pub const DEFAULT_MAX_HANDSHAKE_FRAME_BYTES: usize = 4 * 1024;

/// Who a node is on the wire: name, remoting address and incarnation (a
/// restarted node is a new member).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Unique node name.
    pub name: String,
    /// Remoting address, `host:port`.
    pub addr: String,
    /// Bumped at every start of the node.
    pub incarnation: u64,
}

/// What an authenticated connection carries, declared by its dialer in
/// `Hello`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum ConnKind {
    /// Calls, replies, tables, pings, and membership until a lane is up.
    Data,
    /// The membership lane: only `Membership` and `Ping` frames, so that
    /// failure detection never queues behind calls in a TCP stream.
    Membership,
}

/// Call metadata as it travels: identity, trace and the time left; since
/// protocol 6 also the caller's signed token and the calling service (the
/// serving node believes roles only from a token it verifies, and a calling
/// service only if the sending node hosts it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct WireMeta {
    pub(crate) subject: Option<String>,
    pub(crate) roles: Vec<String>,
    pub(crate) trace: Option<(u128, u64)>,
    pub(crate) timeout_ms: Option<u64>,
    pub(crate) token: Option<String>,
    pub(crate) service: Option<String>,
}

pub(crate) use super::wire_error::WireError;

/// Every frame of the protocol. Variants are encoded by position: a new
/// one goes at the end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Frame {
    /// The hello of protocols 1 to 3 (one version number). Kept at its
    /// position only so that such a peer is refused with a reason it can
    /// read rather than a frame it cannot decode.
    LegacyHello {
        protocol: u32,
        cluster: String,
        node: NodeInfo,
        nonce: Nonce,
        kind: ConnKind,
    },
    /// The listener's answer to `Hello`: its name, its nonce and the
    /// version chosen (the highest both speak). No proof: the dialer proves
    /// first (`handshake.rs`).
    Challenge {
        node: NodeInfo,
        nonce: Nonce,
        protocol: u32,
    },
    /// The dialer's proof.
    Auth {
        proof: Proof,
    },
    /// The listener's proof, once the dialer's verified.
    Welcome {
        proof: Proof,
    },
    Refused {
        reason: String,
    },
    /// A message with no reply, to the service and message `route` names.
    Tell {
        route: Route,
        meta: WireMeta,
        payload: Vec<u8>,
    },
    /// A call answered by `Reply` or `Error` with the same `id`.
    Ask {
        id: u64,
        route: Route,
        meta: WireMeta,
        payload: Vec<u8>,
    },
    Reply {
        id: u64,
        payload: Vec<u8>,
    },
    Error {
        id: u64,
        error: WireError,
    },
    /// A heartbeat; `table` is the sender's service table version (0 when
    /// the sender does not say), so a peer that holds an older one fetches it.
    Ping {
        id: u64,
        table: u64,
    },
    Pong {
        id: u64,
    },
    Membership {
        payload: Vec<u8>,
    },
    /// The sender is leaving the cluster gracefully.
    Leaving,
    /// Asks the peer for its current service table (sent after gossip or a
    /// ping named a newer version than the one held).
    TableRequest,
    /// A client (`msa cluster status`) asks for the cluster view.
    StatusRequest,
    /// The cluster view, as postcard-free plain data.
    Status {
        status: super::status::ClusterStatus,
    },
    /// The sender's live services and the members it knows, at `version`
    /// (bumped at every change of the sender's registry; a receiver ignores
    /// a table no newer than the one it holds).
    Table {
        version: u64,
        services: Vec<ServiceAd>,
        members: Vec<NodeInfo>,
    },
    /// An ask whose message is JSON text, forwarded by a node that does not
    /// decode it (a gateway); answered with `Reply` (JSON text) or `Error`.
    AskJson {
        id: u64,
        service: String,
        message: String,
        meta: WireMeta,
        body: Vec<u8>,
    },
    /// The dialer's first frame (since protocol 4): the range of protocol
    /// versions it speaks, then who it is and what the connection carries.
    Hello {
        protocols: ProtocolRange,
        cluster: String,
        node: NodeInfo,
        nonce: Nonce,
        kind: ConnKind,
    },
    /// A client (`msa cluster partition`, `slow`, `heal`, `kill`) asks the
    /// node to change its fault rules or report them.
    Fault {
        request: super::operator::FaultRequest,
    },
    /// The answer to `Fault`.
    FaultReply {
        outcome: Result<super::operator::FaultReport, super::operator::FaultRefusal>,
    },
    /// A client (`msa service list|scale|restart`) asks about the node's
    /// services.
    Services {
        request: super::operator::ServiceRequest,
    },
    /// The answer to `Services` (a refusal's text on error).
    ServicesReply {
        outcome: Result<super::operator::ServiceReport, String>,
    },
    /// The topics the sender has subscribers for (since protocol 7): sent
    /// right after each of its `Table` frames, it replaces what the
    /// receiver knew of the sender's subscriptions. Process group members
    /// ride here too, as internal topics (`registry::group_ads`); a frame
    /// whose group ads are malformed is refused whole.
    Topics {
        topics: Vec<crate::registry::TopicAd>,
    },
    /// One event published to `topic` (since protocol 7): `message` is its
    /// wire name, `payload` its bincode encoding. Sent once to each node
    /// that has subscribers for it, which hands it to its plain
    /// subscribers (if `plain`) and to the consumer-group members named in
    /// `members` (the publisher picked them), and forwards it no further.
    /// Travels on the data lane (at most once: refused when the lane is
    /// full).
    Publish {
        topic: String,
        message: String,
        payload: Vec<u8>,
        plain: bool,
        members: Vec<u64>,
    },
    /// Asks the peer for its live report (since protocol 8): `query` is a `LiveQuery` in JSON,
    /// answered by `LiveReply` with the same `id`.
    LiveRequest {
        id: u64,
        query: Vec<u8>,
    },
    /// The answer to `LiveRequest` (since protocol 8): a `LiveReport` in
    /// JSON, kept under the frame size limit by the sender (empty when the
    /// node has no live source).
    LiveReply {
        id: u64,
        report: Vec<u8>,
    },
    /// An ask to one member of a process group (since protocol 8): the
    /// member with id `member` of the group's internal topic `topic` (an id
    /// the receiver advertised in its `Topics`), the message's wire name
    /// and bincode encoding, and the caller's time left; answered with
    /// `Reply` or `Error` with the same `id`. Travels on the data lane.
    GroupAsk {
        id: u64,
        topic: String,
        member: u64,
        message: String,
        timeout_ms: u64,
        payload: Vec<u8>,
    },
    /// An ask whose message is its bincode encoding, named by wire name,
    /// forwarded by a node that does not decode it (a gateway's gRPC
    /// `ENCODING_BINCODE` call; since protocol 9); answered with `Reply`
    /// (the reply's bincode encoding) or `Error`.
    AskBincode {
        id: u64,
        service: String,
        message: String,
        meta: WireMeta,
        body: Vec<u8>,
    },
    /// The sender retired this connection (a duplicate of another one to
    /// the same node, which it keeps; since protocol 10) and sends no more
    /// calls on it: the last frame of its data lane here. The receiver keeps
    /// reading and serving until it has this mark, so that a call already
    /// on the way is never lost to the close (`remoting/connection.rs`).
    CallsDone,
    /// A run of events published to `topic`, all of the wire name
    /// `message` (since protocol 11): what consecutive `Publish` frames of
    /// one topic and message would carry, with the names written once. A
    /// sender's connection lane appends each event to the run at its end
    /// while the writer has not taken it (`remote/call_lane.rs`), at most
    /// [`MAX_RUN_EVENTS`] events and about [`RUN_BYTES`] per frame; the
    /// receiver looks the topic up once and hands each subscriber the
    /// events it takes in one pass (a service subscriber gets them as one
    /// `TellBatch` where its mailbox has room). Travels on the data lane;
    /// each event counts as one frame against `outbound_queue`.
    PublishRun {
        topic: String,
        message: String,
        events: Vec<RunEvent>,
    },
}

/// One event of a [`Frame::PublishRun`]: its bincode encoding, whether the
/// receiver's plain subscribers take it, and the consumer-group members
/// on the receiver that take it (as in `Frame::Publish`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RunEvent {
    pub(crate) payload: Vec<u8>,
    pub(crate) plain: bool,
    pub(crate) members: Vec<u64>,
}

/// Which service and message type a call is for.
///
/// Names travel once per connection and direction: the first call for a
/// (service, message) pair carries both names and an id the sender picked
/// (`Named`); later calls carry the id alone (`Id`). The receiver keeps the
/// ids of each connection in an [`InboundRoutes`](super::routes::InboundRoutes)
/// table, and a reconnect starts with empty tables on both sides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Route {
    /// First use of a pair on this connection: its names, and the id later
    /// frames name it by.
    Named {
        id: u32,
        service: String,
        message: String,
    },
    /// A pair named earlier on this connection.
    Id(u32),
    /// The names, for this frame only (the sender has no id left to give).
    Once { service: String, message: String },
    /// A call as its caller queues it, before the connection's writer
    /// picks its wire form (one of the above). Never encoded.
    #[serde(skip)]
    Local {
        service: std::sync::Arc<str>,
        message: StaticName,
    },
}

/// A message's wire name as its type declares it (held by a route before
/// encoding; a plain `&'static str` field would make serde ask for
/// `'de: 'static` when decoding a frame).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StaticName(pub(crate) &'static str);

/// One service as a node advertises it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ServiceAd {
    pub(crate) name: String,
    /// Live instances: slot and incarnation.
    pub(crate) slots: Vec<(u32, u64)>,
    /// Wire names of the messages it handles.
    pub(crate) messages: Vec<String>,
    pub(crate) keyed: bool,
}

impl Frame {
    /// The route of a call frame (`Tell`, `Ask`).
    pub(crate) fn route_mut(&mut self) -> Option<&mut Route> {
        match self {
            Self::Tell { route, .. } | Self::Ask { route, .. } => Some(route),
            _ => None,
        }
    }

    /// The service a call names ("" for other frames and for a route id).
    pub(crate) fn service_name(&self) -> &str {
        match self {
            Self::Tell { route, .. } | Self::Ask { route, .. } => match route {
                Route::Local { service, .. } => service,
                Route::Named { service, .. } | Route::Once { service, .. } => service,
                Route::Id(_) => "",
            },
            Self::AskJson { service, .. } | Self::AskBincode { service, .. } => service,
            _ => "",
        }
    }

    /// A short name for logs and errors.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::LegacyHello { .. } => "legacy-hello",
            Self::Hello { .. } => "hello",
            Self::Challenge { .. } => "challenge",
            Self::Auth { .. } => "auth",
            Self::Welcome { .. } => "welcome",
            Self::Refused { .. } => "refused",
            Self::Tell { .. } => "tell",
            Self::Ask { .. } => "ask",
            Self::Reply { .. } => "reply",
            Self::Error { .. } => "error",
            Self::Ping { .. } => "ping",
            Self::Pong { .. } => "pong",
            Self::Topics { .. } => "topics",
            Self::Publish { .. } => "publish",
            Self::GroupAsk { .. } => "group-ask",
            Self::Membership { .. } => "membership",
            Self::Table { .. } => "table",
            Self::TableRequest => "table-request",
            Self::StatusRequest => "status-request",
            Self::Leaving => "leaving",
            Self::Status { .. } => "status",
            Self::AskJson { .. } => "ask-json",
            Self::AskBincode { .. } => "ask-bincode",
            Self::Fault { .. } => "fault",
            Self::FaultReply { .. } => "fault-reply",
            Self::Services { .. } => "services",
            Self::ServicesReply { .. } => "services-reply",
            Self::LiveRequest { .. } => "live-request",
            Self::LiveReply { .. } => "live-reply",
            Self::CallsDone => "calls-done",
            Self::PublishRun { .. } => "publish-run",
        }
    }
}

/// Why bytes could not become a frame.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The length prefix announces more than the limit.
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Announced length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The bytes where a length prefix was expected are a TLS record's
    /// header (an alert or a handshake, TLS 1.x): the peer speaks TLS and
    /// this side does not (or the other way round).
    #[error("the peer speaks TLS and this connection does not: configure mutual TLS on both sides (--tls-ca/--tls-cert/--tls-key, [tls]) or on neither")]
    TlsRecord,
    /// The body is not a valid frame.
    #[error("malformed frame: {0}")]
    Malformed(#[from] CodecError),
}

/// The error for a length prefix over `max`: [`FrameError::TlsRecord`]
/// when its bytes are a TLS record header (content type 21 alert or 22
/// handshake, protocol major version 3), which a frame under any sane
/// limit never starts with (it would announce over 350 MB).
fn too_large(prefix: &[u8], len: usize, max: usize) -> FrameError {
    match prefix {
        [21 | 22, 3, 0..=4, ..] => FrameError::TlsRecord,
        _ => FrameError::TooLarge { len, max },
    }
}

/// Appends `frame`, length-prefixed, to `out`.
///
/// # Errors
/// [`FrameError::TooLarge`] when the encoded frame exceeds `max`.
pub(crate) fn encode_into(frame: &Frame, max: usize, out: &mut Vec<u8>) -> Result<(), FrameError> {
    // Encode in place after a placeholder prefix: no temporary buffer.
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    // Calls by hand (the same bytes, far fewer instructions), the rest by serde.
    if !calls::encode_call(frame, out) {
        if let Err(e) = codec::encode_append(frame, out) {
            out.truncate(start);
            return Err(e.into());
        }
    }
    let len = out.len() - start - 4;
    if len > max || u32::try_from(len).is_err() {
        out.truncate(start);
        return Err(FrameError::TooLarge { len, max });
    }
    out[start..start + 4].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(())
}

pub(crate) use calls::{append_call, AppendError, RouteForm};
use calls::{ASK_TAG, TELL_TAG};
pub(crate) use publish::{
    append_run_event, open_run, seal_run, PublishRef, PublishRunRef, RunAt, MAX_RUN_EVENTS,
    RUN_BYTES,
};

/// A frame as a connection's reader takes it: calls borrow their payload
/// from the decoder's buffer, other frames are decoded whole.
#[derive(Debug)]
pub(crate) enum Incoming<'a> {
    /// A [`Frame::Tell`].
    Tell {
        route: Route,
        meta: WireMeta,
        payload: &'a [u8],
    },
    /// A [`Frame::Ask`].
    Ask {
        id: u64,
        route: Route,
        meta: WireMeta,
        payload: &'a [u8],
    },
    /// A [`Frame::Publish`], its topic, wire name and payload borrowed.
    Publish(PublishRef<'a>),
    /// A [`Frame::PublishRun`], its topic, wire name and payloads borrowed.
    PublishRun(PublishRunRef<'a>),
    /// Any other frame.
    Frame(Frame),
}

/// The fields of a [`Frame::Tell`], as they follow its tag.
#[derive(Deserialize)]
struct TellRef<'a> {
    route: Route,
    meta: WireMeta,
    #[serde(borrow)]
    payload: &'a [u8],
}

/// The fields of a [`Frame::Ask`], as they follow its tag.
#[derive(Deserialize)]
struct AskRef<'a> {
    id: u64,
    route: Route,
    meta: WireMeta,
    #[serde(borrow)]
    payload: &'a [u8],
}

/// Decodes `T` borrowing from `body`, which it must use up, as
/// [`codec::decode`] does (same configuration).
fn borrowed<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, FrameError> {
    let (value, used) = crate::message::codec::limited!(body.len(), |config| {
        bincode::serde::borrow_decode_from_slice(body, config)
    })
    .map_err(|e| CodecError::Decode(e.to_string()))?;
    if used != body.len() {
        return Err(CodecError::Trailing(body.len() - used).into());
    }
    Ok(value)
}

/// Turns a byte stream into frames (sans-IO: push bytes, pull frames).
#[derive(Debug)]
pub(crate) struct FrameDecoder {
    max: usize,
    buf: Vec<u8>,
    start: usize,
    /// Bytes of the frames decoded so far.
    consumed: u64,
}

impl FrameDecoder {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            max,
            buf: Vec::new(),
            start: 0,
            consumed: 0,
        }
    }

    /// Bytes of the frames decoded so far (prefixes included).
    pub(crate) fn consumed(&self) -> u64 {
        self.consumed
    }

    /// The largest frame accepted.
    #[cfg(test)]
    pub(crate) fn max(&self) -> usize {
        self.max
    }

    /// Accepts frames up to `max` from now on: a connection starts at the
    /// handshake bound and raises it once the peer is authenticated.
    pub(crate) fn set_max(&mut self, max: usize) {
        self.max = max;
    }

    /// Bytes the buffer holds (allocated), for tests of the bounds.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Keeps only the bytes not yet decoded and returns the rest of the
    /// buffer's memory (called when the handshake is over).
    pub(crate) fn shrink(&mut self) {
        self.buf.drain(..self.start);
        self.start = 0;
        self.buf.shrink_to_fit();
    }

    /// Adds bytes read from the connection.
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > 64 * 1024 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next frame if it is a whole plain tell (a route id; no identity,
    /// trace or deadline): its route id, where its payload starts and ends
    /// in the buffer, and the frame's length with its prefix.
    fn plain_tell_at(&self) -> Option<(u32, usize, usize, usize)> {
        let avail = &self.buf[self.start..];
        let prefix = avail.get(..4)?;
        let len = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
        if len > self.max || avail.len() < 4 + len {
            return None;
        }
        let body = &avail[4..4 + len];
        let c = calls::decode_call(body)?;
        let Route::Id(route) = c.route else {
            return None;
        };
        if c.id.is_some() || c.meta.trace.is_some() || c.meta.timeout_ms.is_some() {
            return None;
        }
        let at = c.payload.as_ptr() as usize - self.buf.as_ptr() as usize;
        Some((route, at, at + c.payload.len(), 4 + len))
    }

    /// The route id of the next frame if it is a whole plain tell (see
    /// [`next_plain_tell`](Self::next_plain_tell)); nothing is taken.
    pub(crate) fn plain_tell_route(&self) -> Option<u32> {
        self.plain_tell_at().map(|(route, ..)| route)
    }

    /// Takes the next frame if it is a whole plain tell to `route` (a
    /// route id; no identity, trace or deadline) and gives its payload,
    /// borrowed from the buffer; anything else is left for
    /// [`next_incoming`](Self::next_incoming).
    pub(crate) fn next_plain_tell(&mut self, route: u32) -> Option<&[u8]> {
        let (r, from, to, len) = self.plain_tell_at()?;
        if r != route {
            return None;
        }
        self.start += len;
        self.consumed += len as u64;
        Some(&self.buf[from..to])
    }

    /// The next complete frame, with a call's payload borrowed from the
    /// buffer (no allocation per call); `None` if more bytes are needed.
    /// After an error the connection must be closed.
    pub(crate) fn next_incoming(&mut self) -> Result<Option<Incoming<'_>>, FrameError> {
        let avail = &self.buf[self.start..];
        let Some(prefix) = avail.get(..4) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
        if len > self.max {
            return Err(too_large(prefix, len, self.max));
        }
        if avail.len() < 4 + len {
            return Ok(None);
        }
        let at = self.start + 4;
        self.start += 4 + len;
        self.consumed += 4 + len as u64;
        let body = &self.buf[at..at + len];
        if let Some(c) = calls::decode_call(body) {
            return Ok(Some(match c.id {
                None => Incoming::Tell {
                    route: c.route,
                    meta: c.meta,
                    payload: c.payload,
                },
                Some(id) => Incoming::Ask {
                    id,
                    route: c.route,
                    meta: c.meta,
                    payload: c.payload,
                },
            }));
        }
        if let Some(p) = publish::decode_publish(body) {
            return Ok(Some(Incoming::Publish(p)));
        }
        if let Some(run) = publish::decode_publish_run(body) {
            return Ok(Some(Incoming::PublishRun(run)));
        }
        // A variant tag below 251 is its own one-byte varint.
        let incoming = match body.first() {
            Some(&TELL_TAG) => {
                let t: TellRef<'_> = borrowed(&body[1..])?;
                Incoming::Tell {
                    route: t.route,
                    meta: t.meta,
                    payload: t.payload,
                }
            }
            Some(&ASK_TAG) => {
                let a: AskRef<'_> = borrowed(&body[1..])?;
                Incoming::Ask {
                    id: a.id,
                    route: a.route,
                    meta: a.meta,
                    payload: a.payload,
                }
            }
            _ => Incoming::Frame(codec::decode(body)?),
        };
        Ok(Some(incoming))
    }

    /// The next complete frame, `None` if more bytes are needed. After an
    /// error the connection must be closed: the stream is out of sync.
    pub(crate) fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        let avail = &self.buf[self.start..];
        let Some(prefix) = avail.get(..4) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
        if len > self.max {
            return Err(too_large(prefix, len, self.max));
        }
        let Some(body) = avail.get(4..4 + len) else {
            return Ok(None);
        };
        let frame = codec::decode(body)?;
        self.start += 4 + len;
        self.consumed += 4 + len as u64;
        Ok(Some(frame))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_tls_record_where_a_frame_was_expected_is_named() {
        // A TLS 1.3 alert (certificate required) and a ClientHello's header.
        for bytes in [&[21u8, 3, 3, 0, 2, 2, 116][..], &[22, 3, 1, 0, 200, 1][..]] {
            let mut d = super::FrameDecoder::new(super::DEFAULT_MAX_HANDSHAKE_FRAME_BYTES);
            d.push(bytes);
            let e = d.next_frame().unwrap_err();
            assert!(matches!(e, super::FrameError::TlsRecord), "{e}");
            assert!(e.to_string().contains("speaks TLS"), "{e}");
        }
        // Any other oversized prefix stays `TooLarge`.
        let mut d = super::FrameDecoder::new(1024);
        d.push(&[0, 0, 8, 1]);
        assert!(matches!(
            d.next_frame(),
            Err(super::FrameError::TooLarge { len: 2049, .. })
        ));
    }

    use super::*;

    fn sample() -> Vec<Frame> {
        vec![
            Frame::Hello {
                protocols: ProtocolRange { min: 4, max: 7 },
                cluster: "c".into(),
                node: NodeInfo {
                    name: "n".into(),
                    addr: "127.0.0.1:1".into(),
                    incarnation: 3,
                },
                nonce: [7; 32],
                kind: ConnKind::Membership,
            },
            Frame::Ask {
                id: 9,
                route: Route::Named {
                    id: 0,
                    service: "kv".into(),
                    message: "kv.Get".into(),
                },
                meta: WireMeta {
                    subject: Some("alice".into()),
                    roles: vec!["customer".into()],
                    trace: Some((u128::MAX, 5)),
                    timeout_ms: Some(100),
                    token: Some("h.p.s".into()),
                    service: Some("orders".into()),
                },
                payload: vec![1, 2, 3],
            },
            Frame::Error {
                id: 9,
                error: WireError::HandlerPanicked {
                    message: "x".into(),
                },
            },
            Frame::Welcome { proof: [3; 32] },
        ]
    }

    #[test]
    fn the_queued_length_of_every_sample_bounds_its_encoded_size() {
        for f in sample() {
            let mut bytes = Vec::new();
            encode_into(&f, DEFAULT_MAX_FRAME_BYTES, &mut bytes).unwrap();
            assert!(f.queued_len() >= bytes.len(), "{f:?}");
        }
    }

    #[test]
    fn frames_survive_a_byte_at_a_time() {
        let mut bytes = Vec::new();
        for f in sample() {
            encode_into(&f, DEFAULT_MAX_FRAME_BYTES, &mut bytes).unwrap();
        }
        let mut d = FrameDecoder::new(DEFAULT_MAX_FRAME_BYTES);
        let mut got = Vec::new();
        for b in bytes {
            d.push(&[b]);
            while let Some(f) = d.next_frame().unwrap() {
                got.push(f);
            }
        }
        assert_eq!(got, sample());
    }

    #[test]
    fn an_oversized_length_is_refused_from_the_prefix() {
        let mut d = FrameDecoder::new(1024);
        d.push(&u32::MAX.to_be_bytes());
        assert!(matches!(
            d.next_frame(),
            Err(FrameError::TooLarge { len, max: 1024 }) if len == u32::MAX as usize
        ));
        let mut out = Vec::new();
        let big = Frame::Reply {
            id: 1,
            payload: vec![0; 2048],
        };
        assert!(matches!(
            encode_into(&big, 1024, &mut out),
            Err(FrameError::TooLarge { .. })
        ));
        assert!(out.is_empty());
    }

    #[test]
    fn the_handshake_bound_refuses_a_large_frame_and_rises_after_it_releasing_the_buffer() {
        // A length just over the bound is refused from the prefix alone.
        let mut d = FrameDecoder::new(DEFAULT_MAX_HANDSHAKE_FRAME_BYTES);
        let over = DEFAULT_MAX_HANDSHAKE_FRAME_BYTES + 1;
        d.push(&(over as u32).to_be_bytes());
        assert!(matches!(
            d.next_frame(),
            Err(FrameError::TooLarge { len, max }) if len == over && max == DEFAULT_MAX_HANDSHAKE_FRAME_BYTES
        ));
        // Every handshake frame fits well within it.
        let node = NodeInfo {
            name: "n".repeat(255),
            addr: "a".repeat(255),
            incarnation: u64::MAX,
        };
        let hello = Frame::Hello {
            protocols: ProtocolRange { min: 6, max: 6 },
            cluster: "c".repeat(255),
            node: node.clone(),
            nonce: [1; 32],
            kind: ConnKind::Membership,
        };
        let big = Frame::Reply {
            id: 1,
            payload: vec![7; 64 * 1024],
        };
        let mut bytes = Vec::new();
        encode_into(&hello, DEFAULT_MAX_HANDSHAKE_FRAME_BYTES, &mut bytes).unwrap();
        let hello_len = bytes.len();
        encode_into(&big, DEFAULT_MAX_FRAME_BYTES, &mut bytes).unwrap();
        // The hello and the start of a large frame arrive together.
        let mut d = FrameDecoder::new(DEFAULT_MAX_HANDSHAKE_FRAME_BYTES);
        let (first, rest) = bytes.split_at(4096);
        d.push(first);
        assert_eq!(d.next_frame().unwrap(), Some(hello));
        assert!(matches!(d.next_frame(), Err(FrameError::TooLarge { .. })));
        // Authenticated: the bound rises, the buffer keeps only what is
        // not decoded yet, and the large frame completes.
        let mut d = FrameDecoder::new(DEFAULT_MAX_HANDSHAKE_FRAME_BYTES);
        d.push(first);
        assert!(d.next_frame().unwrap().is_some());
        d.set_max(DEFAULT_MAX_FRAME_BYTES);
        d.shrink();
        assert_eq!(d.max(), DEFAULT_MAX_FRAME_BYTES);
        assert_eq!(d.capacity(), 4096 - hello_len);
        d.push(rest);
        assert_eq!(d.next_frame().unwrap(), Some(big));
    }

    #[test]
    fn garbage_is_a_malformed_frame_not_a_panic() {
        let mut d = FrameDecoder::new(1024);
        d.push(&[0, 0, 0, 3, 0xff, 0xff, 0xff]);
        assert!(matches!(d.next_frame(), Err(FrameError::Malformed(_))));
        // An HTTP request sent to the remoting port.
        let mut d = FrameDecoder::new(DEFAULT_MAX_FRAME_BYTES);
        d.push(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(d.next_frame().is_err());
    }

    #[test]
    fn a_run_of_plain_tells_is_taken_one_by_one_and_nothing_else() {
        let tell = |route, meta, p: u8| Frame::Tell {
            route: Route::Id(route),
            meta,
            payload: vec![p; 3],
        };
        let plain = WireMeta::default;
        let traced = WireMeta {
            trace: Some((1, 2)),
            ..WireMeta::default()
        };
        let frames = [
            tell(3, plain(), 1),
            tell(3, plain(), 2),
            tell(4, plain(), 3),
            tell(4, traced, 4),
            Frame::Ask {
                id: 1,
                route: Route::Id(4),
                meta: plain(),
                payload: vec![5],
            },
            tell(4, plain(), 6),
        ];
        let mut buf = Vec::new();
        for f in &frames {
            encode_into(f, DEFAULT_MAX_FRAME_BYTES, &mut buf).unwrap();
        }
        let mut d = FrameDecoder::new(DEFAULT_MAX_FRAME_BYTES);
        // Half of the last frame is missing.
        d.push(&buf[..buf.len() - 2]);
        assert_eq!(d.plain_tell_route(), Some(3));
        assert_eq!(d.next_plain_tell(4), None, "another route is left");
        assert_eq!(d.next_plain_tell(3), Some(&[1u8; 3][..]));
        assert_eq!(d.next_plain_tell(3), Some(&[2u8; 3][..]));
        assert_eq!(d.next_plain_tell(3), None);
        assert_eq!(d.plain_tell_route(), Some(4));
        assert_eq!(d.next_plain_tell(4), Some(&[3u8; 3][..]));
        // A traced tell and an ask are not plain: next_incoming takes them.
        assert_eq!(d.plain_tell_route(), None);
        assert_eq!(d.next_plain_tell(4), None);
        assert!(matches!(
            d.next_incoming(),
            Ok(Some(Incoming::Tell { meta, .. })) if meta.trace == Some((1, 2))
        ));
        assert_eq!(d.plain_tell_route(), None);
        assert!(matches!(
            d.next_incoming(),
            Ok(Some(Incoming::Ask { id: 1, .. }))
        ));
        // An incomplete frame is not taken, then is once whole.
        let consumed = d.consumed();
        assert_eq!(d.plain_tell_route(), None);
        assert_eq!(d.next_plain_tell(4), None);
        assert_eq!(d.consumed(), consumed);
        d.push(&buf[buf.len() - 2..]);
        assert_eq!(d.next_plain_tell(4), Some(&[6u8; 3][..]));
        assert_eq!(d.consumed(), buf.len() as u64);
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    fn meta() -> impl Strategy<Value = WireMeta> {
        (
            proptest::option::of(".{0,12}"),
            proptest::collection::vec(".{0,8}", 0..3),
            proptest::option::of((any::<u128>(), any::<u64>())),
            proptest::option::of(any::<u64>()),
            proptest::option::of(".{0,12}"),
            proptest::option::of(".{0,8}"),
        )
            .prop_map(
                |(subject, roles, trace, timeout_ms, token, service)| WireMeta {
                    subject,
                    roles,
                    trace,
                    timeout_ms,
                    token,
                    service,
                },
            )
    }

    fn frame() -> impl Strategy<Value = Frame> {
        prop_oneof![
            (
                any::<u64>(),
                ".{0,16}",
                ".{0,16}",
                meta(),
                proptest::collection::vec(any::<u8>(), 0..64)
            )
                .prop_map(|(id, service, message, meta, payload)| Frame::Ask {
                    id,
                    route: Route::Named {
                        id: id as u32,
                        service,
                        message
                    },
                    meta,
                    payload
                }),
            (
                any::<u64>(),
                any::<u32>(),
                meta(),
                proptest::collection::vec(any::<u8>(), 0..64)
            )
                .prop_map(|(id, route, meta, payload)| Frame::Ask {
                    id,
                    route: Route::Id(route),
                    meta,
                    payload
                }),
            (
                ".{0,16}",
                ".{0,16}",
                meta(),
                proptest::collection::vec(any::<u8>(), 0..64)
            )
                .prop_map(|(service, message, meta, payload)| Frame::Tell {
                    route: Route::Once { service, message },
                    meta,
                    payload
                }),
            (any::<u64>(), proptest::collection::vec(any::<u8>(), 0..64))
                .prop_map(|(id, payload)| Frame::Reply { id, payload }),
            (any::<u64>(), ".{0,16}").prop_map(|(id, m)| Frame::Error {
                id,
                error: WireError::HandlerPanicked { message: m }
            }),
            (any::<u64>(), any::<u64>()).prop_map(|(id, table)| Frame::Ping { id, table }),
            Just(Frame::TableRequest),
            Just(Frame::CallsDone),
            (
                any::<u64>(),
                ".{0,16}",
                proptest::collection::vec(".{0,8}", 0..3)
            )
                .prop_map(|(version, name, messages)| Frame::Table {
                    version,
                    services: vec![ServiceAd {
                        name,
                        slots: vec![(0, version)],
                        messages,
                        keyed: version % 2 == 0,
                    }],
                    members: Vec::new(),
                }),
            proptest::collection::vec(any::<u8>(), 0..64)
                .prop_map(|payload| Frame::Membership { payload }),
            proptest::collection::vec(
                (
                    ".{0,12}",
                    any::<bool>(),
                    proptest::collection::vec(
                        (".{0,8}", proptest::collection::vec(any::<u64>(), 0..3)),
                        0..3
                    )
                ),
                0..4
            )
            .prop_map(|ads| Frame::Topics {
                topics: ads
                    .into_iter()
                    .map(|(topic, plain, groups)| crate::registry::TopicAd {
                        topic,
                        plain,
                        groups
                    })
                    .collect()
            }),
            (
                ".{0,16}",
                ".{0,16}",
                proptest::collection::vec(any::<u8>(), 0..64),
                any::<bool>(),
                proptest::collection::vec(any::<u64>(), 0..4)
            )
                .prop_map(|(topic, message, payload, plain, members)| Frame::Publish {
                    topic,
                    message,
                    payload,
                    plain,
                    members
                }),
            (
                any::<u64>(),
                ".{0,16}",
                ".{0,16}",
                proptest::collection::vec(any::<u8>(), 0..64)
            )
                .prop_map(|(id, topic, message, payload)| Frame::GroupAsk {
                    id,
                    topic,
                    member: id / 3,
                    message,
                    timeout_ms: id / 7,
                    payload
                }),
            (
                any::<u64>(),
                ".{0,16}",
                ".{0,16}",
                meta(),
                proptest::collection::vec(any::<u8>(), 0..64)
            )
                .prop_map(|(id, service, message, meta, body)| Frame::AskBincode {
                    id,
                    service,
                    message,
                    meta,
                    body
                }),
            (
                ".{0,16}",
                ".{0,16}",
                proptest::collection::vec(
                    (
                        proptest::collection::vec(any::<u8>(), 0..64),
                        any::<bool>(),
                        proptest::collection::vec(any::<u64>(), 0..3)
                    ),
                    0..4
                )
            )
                .prop_map(|(topic, message, events)| Frame::PublishRun {
                    topic,
                    message,
                    events: events
                        .into_iter()
                        .map(|(payload, plain, members)| RunEvent {
                            payload,
                            plain,
                            members
                        })
                        .collect()
                }),
        ]
    }

    proptest! {
        #[test]
        fn encode_then_decode_gives_the_same_frames(frames in proptest::collection::vec(frame(), 1..8), chunk in 1usize..64) {
            let mut bytes = Vec::new();
            for f in &frames {
                encode_into(f, DEFAULT_MAX_FRAME_BYTES, &mut bytes).unwrap();
            }
            let mut d = FrameDecoder::new(DEFAULT_MAX_FRAME_BYTES);
            let mut got = Vec::new();
            for c in bytes.chunks(chunk) {
                d.push(c);
                while let Some(f) = d.next_frame().unwrap() {
                    got.push(f);
                }
            }
            prop_assert_eq!(got, frames);
        }

        #[test]
        fn the_queued_length_bounds_the_encoded_size(f in frame()) {
            let mut bytes = Vec::new();
            encode_into(&f, DEFAULT_MAX_FRAME_BYTES, &mut bytes).unwrap();
            prop_assert!(f.queued_len() >= bytes.len(), "{} < {} for {:?}", f.queued_len(), bytes.len(), f);
            // Close enough to count by: fixed overhead, not a multiple.
            prop_assert!(f.queued_len() <= bytes.len() + 160, "{} for {} bytes", f.queued_len(), bytes.len());
        }

        #[test]
        fn arbitrary_bytes_never_panic_the_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut d = FrameDecoder::new(1024);
            d.push(&bytes);
            // Either frames, a clean "need more", or an error: never a panic.
            for _ in 0..16 {
                match d.next_frame() {
                    Ok(Some(_)) => continue,
                    Ok(None) | Err(_) => break,
                }
            }
        }
    }
}
