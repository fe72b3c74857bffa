//! How many bytes a queued frame stands for: an upper bound on its encoded
//! size (length prefix included), computed from the lengths of its fields
//! without encoding it, so the queues toward a peer can be bounded by bytes
//! at the cost of a few additions per frame.
//!
//! bincode's standard configuration writes integers as varints (at most
//! 9 bytes for a `u64`, 17 for a `u128`), strings and byte vectors as a
//! varint length and the bytes, and an enum variant as a varint tag.

use super::{Frame, NodeInfo, Route, ServiceAd, WireError, WireMeta};

/// Length prefix (4) and variant tag (at most 5).
const HEAD: usize = 9;
/// Largest varint of a `u64` (also bounds a `u32` and a `usize` length).
const INT: usize = 9;
/// Largest varint of a `u128`.
const INT128: usize = 17;

/// A string or byte vector: its length and its bytes.
fn bytes(len: usize) -> usize {
    INT + len
}

fn node(n: &NodeInfo) -> usize {
    bytes(n.name.len()) + bytes(n.addr.len()) + INT
}

fn meta(m: &WireMeta) -> usize {
    1 + m.subject.as_ref().map_or(0, |s| bytes(s.len()))
        + INT
        + m.roles.iter().map(|r| bytes(r.len())).sum::<usize>()
        + 1
        + INT128
        + INT
        + 1
        + INT
        + 1
        + m.token.as_ref().map_or(0, |s| bytes(s.len()))
        + 1
        + m.service.as_ref().map_or(0, |s| bytes(s.len()))
}

/// A wire error travels as a code, a text, a number and a detail text.
fn wire_error(e: &WireError) -> usize {
    use super::super::wire_error::{WireBincodeError, WireJsonError};
    let texts = match e {
        WireError::UnhandledMessage { message }
        | WireError::HandlerPanicked { message }
        | WireError::NotRegistered { message } => message.len(),
        WireError::NodeDown { node }
        | WireError::Overloaded { node }
        | WireError::Unreachable { node }
        | WireError::Downed { node }
        | WireError::Joining { node } => node.len(),
        // Joined with commas (`wire_error.rs`).
        WireError::TablesPending { nodes } => nodes.iter().map(|n| n.len() + 1).sum(),
        WireError::Codec { reason }
        | WireError::Json(WireJsonError::Malformed { reason })
        | WireError::Bincode(WireBincodeError::Malformed { reason })
        | WireError::PermissionDenied { reason }
        | WireError::Other { text: reason, .. } => reason.len(),
        WireError::Json(WireJsonError::BadBody { path, reason }) => path.len() + reason.len(),
        WireError::UnknownService
        | WireError::NoInstance
        | WireError::InstanceDied
        | WireError::Timeout { .. }
        | WireError::ShuttingDown
        | WireError::Json(WireJsonError::UnknownMessage)
        | WireError::Bincode(WireBincodeError::UnknownMessage) => 0,
    };
    INT + bytes(texts) + INT + bytes(0)
}

/// A route: its tag, an id and, the first time, both names. A route not
/// yet on the wire counts its largest wire form.
fn route(r: &Route) -> usize {
    INT + match r {
        Route::Id(_) => INT,
        Route::Named {
            service, message, ..
        } => INT + bytes(service.len()) + bytes(message.len()),
        Route::Once { service, message } => bytes(service.len()) + bytes(message.len()),
        Route::Local { service, message } => INT + bytes(service.len()) + bytes(message.0.len()),
    }
}

fn service_ad(s: &ServiceAd) -> usize {
    bytes(s.name.len())
        + INT
        + s.slots.len() * 2 * INT
        + INT
        + s.messages.iter().map(|m| bytes(m.len())).sum::<usize>()
        + 1
}

impl Frame {
    /// An upper bound on this frame's encoded size, length prefix included
    /// (what it adds to a queue toward a peer). Calls and replies cost a
    /// few additions; only tables and status walk their contents.
    pub(crate) fn queued_len(&self) -> usize {
        HEAD + match self {
            Self::Hello {
                cluster, node: n, ..
            } => 2 * INT + bytes(cluster.len()) + node(n) + 32 + INT,
            Self::LegacyHello {
                cluster, node: n, ..
            } => INT + bytes(cluster.len()) + node(n) + 32 + INT,
            Self::Challenge { node: n, .. } => node(n) + 32 + INT,
            Self::Auth { .. } | Self::Welcome { .. } => 32,
            Self::Leaving | Self::TableRequest | Self::StatusRequest | Self::CallsDone => 0,
            Self::Refused { reason } => bytes(reason.len()),
            Self::Tell {
                route: r,
                meta: m,
                payload,
            } => route(r) + meta(m) + bytes(payload.len()),
            Self::Ask {
                route: r,
                meta: m,
                payload,
                ..
            } => INT + route(r) + meta(m) + bytes(payload.len()),
            Self::AskJson {
                service,
                message,
                meta: m,
                body,
                ..
            }
            | Self::AskBincode {
                service,
                message,
                meta: m,
                body,
                ..
            } => INT + bytes(service.len()) + bytes(message.len()) + meta(m) + bytes(body.len()),
            Self::Reply { payload, .. } => INT + bytes(payload.len()),
            Self::Error { error, .. } => INT + wire_error(error),
            Self::Ping { .. } => 2 * INT,
            Self::Pong { .. } => INT,
            Self::Membership { payload } => bytes(payload.len()),
            Self::LiveRequest { query, .. } => INT + bytes(query.len()),
            Self::LiveReply { report, .. } => INT + bytes(report.len()),
            Self::Topics { topics } => {
                INT + topics
                    .iter()
                    .map(|t| {
                        bytes(t.topic.len())
                            + 1
                            + INT
                            + t.groups
                                .iter()
                                .map(|(g, ids)| bytes(g.len()) + INT + ids.len() * INT)
                                .sum::<usize>()
                    })
                    .sum::<usize>()
            }
            Self::Publish {
                topic,
                message,
                payload,
                members,
                ..
            } => {
                bytes(topic.len())
                    + bytes(message.len())
                    + bytes(payload.len())
                    + 1
                    + INT
                    + members.len() * INT
            }
            Self::PublishRun {
                topic,
                message,
                events,
            } => {
                bytes(topic.len())
                    + bytes(message.len())
                    + INT
                    + events
                        .iter()
                        .map(|e| bytes(e.payload.len()) + 1 + INT + e.members.len() * INT)
                        .sum::<usize>()
            }
            Self::GroupAsk {
                topic,
                message,
                payload,
                ..
            } => 4 * INT + bytes(topic.len()) + bytes(message.len()) + bytes(payload.len()),
            // Operator frames, rare and small: measured by encoding them.
            Self::Fault { .. }
            | Self::FaultReply { .. }
            | Self::Services { .. }
            | Self::ServicesReply { .. } => {
                let mut out = Vec::new();
                crate::message::codec::encode_append(self, &mut out).map_or(0, |()| out.len())
            }
            Self::Status { status } => {
                INT + status
                    .members
                    .iter()
                    .map(|m| {
                        bytes(m.name.len()) + bytes(m.addr.len()) + bytes(m.status.len()) + INT
                    })
                    .sum::<usize>()
                    + INT
                    + status
                        .services
                        .iter()
                        .map(|s| {
                            bytes(s.name.len())
                                + INT
                                + s.nodes.iter().map(|n| bytes(n.len())).sum::<usize>()
                        })
                        .sum::<usize>()
            }
            Self::Table {
                services, members, ..
            } => {
                INT + INT
                    + services.iter().map(service_ad).sum::<usize>()
                    + INT
                    + members.iter().map(node).sum::<usize>()
            }
        }
    }
}
