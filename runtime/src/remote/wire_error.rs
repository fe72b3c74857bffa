//! A remote call's failure as it travels: one [`WireError`] per
//! [`CallError`] variant, and the one pair of functions that maps between
//! them ([`WireError::from_call`] on the serving node,
//! [`WireError::into_call_error`] on the caller's).
//!
//! On the wire an error is a numeric code, a text and a number
//! ([`Coded`]), never a serde enum tag: a code this node does not know (a
//! newer peer's) decodes as [`WireError::Other`] instead of failing the
//! frame and with it the connection. Codes are stable; a new variant takes
//! a new code and an old one is never reused.
//!
//! | `CallError` | wire | code | caller sees |
//! |---|---|---|---|
//! | `UnknownService` | `UnknownService` | 1 | itself (service from the caller's call) |
//! | `UnhandledMessage` | `UnhandledMessage { message }` | 2 | itself (message type from the caller's call) |
//! | `NoInstance` | `NoInstance` | 3 | itself |
//! | `InstanceDied` | `InstanceDied` | 4 | itself |
//! | `Timeout` | `Timeout { after_ms }` | 5 | itself, `after` = the caller's own timeout |
//! | `HandlerPanicked` | `HandlerPanicked { message }` | 6 | itself |
//! | `NodeDown` | `NodeDown { node }` | 7 | itself |
//! | `Overloaded` | `Overloaded { node }` | 8 | itself |
//! | `Codec` | `Codec { reason }` | 9 | itself |
//! | `NotRegistered` | `NotRegistered { message }` | 10 | itself (message type from the caller's call) |
//! | `ShuttingDown` | `ShuttingDown` | 11 | **`NodeDown { node }`**: the remote node is going away |
//! | `Json` (`UnknownMessage`) | `Json(UnknownMessage)` | 12 | itself (wire name from the caller's call) |
//! | `Json` (`MalformedJson`) | `Json(Malformed { reason })` | 13 | itself |
//! | `Json` (`BadBody`) | `Json(BadBody { path, reason })` | 14 | itself (wire name from the caller's call) |
//! | `Unreachable` | `Unreachable { node }` | 15 | itself |
//! | `TablesPending` | `TablesPending { nodes }` | 16 | itself (service from the caller's call) |
//! | `Downed` | `Downed { node }` | 17 | itself |
//! | `PermissionDenied` | `PermissionDenied { reason }` | 18 | itself (service from the caller's call) |
//! | `Joining` | `Joining { node }` | 19 | itself |
//! | `Bincode` (`UnknownMessage`) | `Bincode(UnknownMessage)` | 20 | itself (wire name from the caller's call) |
//! | `Bincode` (`Malformed`) | `Bincode(Malformed { reason })` | 21 | itself (wire name from the caller's call) |
//! | `Unrecognized` | `Other { code, text }` | any other | `Unrecognized { code, text }` |

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::CallError;

/// A remote call's failure, as it travels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "Coded", from = "Coded")]
pub(crate) enum WireError {
    UnknownService,
    /// `message`: the wire name (or type name) the serving node saw.
    UnhandledMessage {
        message: String,
    },
    NoInstance,
    InstanceDied,
    /// `after_ms`: the timeout that applied on the serving node.
    Timeout {
        after_ms: u64,
    },
    /// Only a real panic of a handler's detached future.
    HandlerPanicked {
        message: String,
    },
    NodeDown {
        node: String,
    },
    Overloaded {
        node: String,
    },
    Codec {
        reason: String,
    },
    NotRegistered {
        message: String,
    },
    ShuttingDown,
    /// A forwarded JSON body the serving node could not decode.
    Json(WireJsonError),
    /// A forwarded bincode payload the serving node could not decode
    /// (protocol 9).
    Bincode(WireBincodeError),
    /// The serving node cannot reach the node that runs the service.
    Unreachable {
        node: String,
    },
    /// The serving node has not yet heard these members' tables.
    TablesPending {
        nodes: Vec<String>,
    },
    /// The serving node (named) is downed by the split-brain resolver.
    Downed {
        node: String,
    },
    /// The service's access rule refused the caller.
    PermissionDenied {
        reason: String,
    },
    /// The serving node (named) is still joining the cluster.
    Joining {
        node: String,
    },
    /// A code this node does not know: a newer peer's failure.
    Other {
        code: u16,
        text: String,
    },
}

/// Why the node that hosts a service refused a forwarded JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WireJsonError {
    /// The service handles no message of that wire name there.
    UnknownMessage,
    /// The body is not JSON.
    Malformed { reason: String },
    /// The body is JSON but does not fit the message.
    BadBody { path: String, reason: String },
}

/// Why the node that hosts a service refused a forwarded bincode payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WireBincodeError {
    /// The service handles no message of that wire name there.
    UnknownMessage,
    /// The payload does not decode as the message.
    Malformed { reason: String },
}

impl WireBincodeError {
    /// The bincode error for `message` (a wire name).
    pub(crate) fn into_bincode_error(self, message: &str) -> crate::error::BincodeError {
        use crate::error::BincodeError;
        match self {
            Self::UnknownMessage => BincodeError::UnknownMessage {
                message: message.to_string(),
            },
            Self::Malformed { reason } => BincodeError::Malformed {
                message: message.to_string(),
                reason,
            },
        }
    }

    /// The wire form of a bincode error.
    pub(crate) fn from_bincode_error(e: &crate::error::BincodeError) -> Self {
        use crate::error::BincodeError;
        match e {
            BincodeError::UnknownMessage { .. } => Self::UnknownMessage,
            BincodeError::Malformed { reason, .. } => Self::Malformed {
                reason: reason.clone(),
            },
        }
    }
}

impl WireJsonError {
    /// The JSON error for `message` (a wire name).
    pub(crate) fn into_json_error(self, message: &str) -> crate::json::JsonError {
        use crate::json::JsonError;
        match self {
            Self::UnknownMessage => JsonError::UnknownMessage {
                message: message.to_string(),
            },
            Self::Malformed { reason } => JsonError::MalformedJson { reason },
            Self::BadBody { path, reason } => JsonError::BadBody {
                message: message.to_string(),
                path,
                reason,
            },
        }
    }

    /// The wire form of a JSON error.
    pub(crate) fn from_json_error(e: &crate::json::JsonError) -> Self {
        use crate::json::JsonError;
        match e {
            JsonError::UnknownMessage { .. } => Self::UnknownMessage,
            JsonError::MalformedJson { reason } => Self::Malformed {
                reason: reason.clone(),
            },
            JsonError::BadBody { path, reason, .. } => Self::BadBody {
                path: path.clone(),
                reason: reason.clone(),
            },
        }
    }
}

/// What the caller's side knows about the call that failed: the wire does
/// not repeat it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CallSite<'a> {
    /// The service called.
    pub(crate) service: &'a str,
    /// The Rust type name of the message sent.
    pub(crate) message: &'static str,
    /// The node the call went to.
    pub(crate) node: &'a str,
    /// The caller's timeout for the call.
    pub(crate) timeout: Duration,
}

impl WireError {
    /// The wire form of a failure on the serving node.
    pub(crate) fn from_call(e: &CallError) -> Self {
        // No `_` arm: a new `CallError` variant does not compile until it
        // has a wire form here and a way back below.
        match e {
            CallError::UnknownService { .. } => Self::UnknownService,
            CallError::UnhandledMessage { message, .. } => Self::UnhandledMessage {
                message: (*message).to_string(),
            },
            CallError::NoInstance { .. } => Self::NoInstance,
            CallError::InstanceDied { .. } => Self::InstanceDied,
            CallError::Timeout { after, .. } => Self::Timeout {
                after_ms: u64::try_from(after.as_millis()).unwrap_or(u64::MAX),
            },
            CallError::HandlerPanicked { message, .. } => Self::HandlerPanicked {
                message: message.clone(),
            },
            CallError::NodeDown { node } => Self::NodeDown { node: node.clone() },
            CallError::Overloaded { node } => Self::Overloaded { node: node.clone() },
            CallError::Codec { reason, .. } => Self::Codec {
                reason: reason.clone(),
            },
            CallError::NotRegistered { message } => Self::NotRegistered {
                message: (*message).to_string(),
            },
            CallError::ShuttingDown => Self::ShuttingDown,
            CallError::Json { error, .. } => Self::Json(WireJsonError::from_json_error(error)),
            CallError::Bincode { error, .. } => {
                Self::Bincode(WireBincodeError::from_bincode_error(error))
            }
            CallError::Unreachable { node } => Self::Unreachable { node: node.clone() },
            CallError::TablesPending { nodes, .. } => Self::TablesPending {
                nodes: nodes.clone(),
            },
            CallError::Downed { node } => Self::Downed { node: node.clone() },
            CallError::Joining { node } => Self::Joining { node: node.clone() },
            CallError::PermissionDenied { reason, .. } => Self::PermissionDenied {
                reason: reason.clone(),
            },
            CallError::Unrecognized { code, text, .. } => Self::Other {
                code: *code,
                text: text.clone(),
            },
        }
    }

    /// The caller's error for a failure that came back from `site.node`.
    /// Names (service, message type) come from the caller's own call; a
    /// remote `ShuttingDown` means that node is going away, so the caller
    /// sees `NodeDown { node }`, as it would once the connection closes.
    pub(crate) fn into_call_error(self, site: &CallSite<'_>) -> CallError {
        let service = site.service.to_string();
        match self {
            Self::UnknownService => CallError::UnknownService { service },
            Self::UnhandledMessage { .. } => CallError::UnhandledMessage {
                service,
                message: site.message,
            },
            Self::NoInstance => CallError::NoInstance { service },
            Self::InstanceDied => CallError::InstanceDied { service },
            // The callee serves for the caller's remaining time plus some
            // slack, so the caller's timeout is the one that applied.
            Self::Timeout { .. } => CallError::Timeout {
                service,
                after: site.timeout,
            },
            Self::HandlerPanicked { message } => CallError::HandlerPanicked { service, message },
            Self::NodeDown { node } => CallError::NodeDown { node },
            Self::Overloaded { node } => CallError::Overloaded { node },
            Self::Codec { reason } => CallError::Codec { service, reason },
            Self::NotRegistered { .. } => CallError::NotRegistered {
                message: site.message,
            },
            Self::ShuttingDown => CallError::NodeDown {
                node: site.node.to_string(),
            },
            // A typed call never forwards JSON; should a peer say so
            // anyway, the message is named by its type.
            Self::Json(e) => CallError::Json {
                service,
                error: e.into_json_error(site.message),
            },
            Self::Bincode(e) => CallError::Bincode {
                service,
                error: e.into_bincode_error(site.message),
            },
            Self::Unreachable { node } => CallError::Unreachable { node },
            Self::TablesPending { nodes } => CallError::TablesPending { service, nodes },
            Self::Downed { node } => CallError::Downed { node },
            Self::Joining { node } => CallError::Joining { node },
            Self::PermissionDenied { reason } => CallError::PermissionDenied { service, reason },
            Self::Other { code, text } => CallError::Unrecognized {
                service,
                code,
                text,
            },
        }
    }

    /// The caller's error for a failed forwarded JSON call: the message is
    /// named by its wire name (no Rust type names it on the calling side),
    /// and a message the service does not handle there is an unknown one.
    pub(crate) fn into_json_call_error(self, site: &CallSite<'_>, wire_name: &str) -> CallError {
        let json = |e: WireJsonError| CallError::Json {
            service: site.service.to_string(),
            error: e.into_json_error(wire_name),
        };
        match self {
            Self::UnhandledMessage { .. } => json(WireJsonError::UnknownMessage),
            Self::Json(e) => json(e),
            other => other.into_call_error(site),
        }
    }

    /// The caller's error for a failed forwarded bincode call, as
    /// [`into_json_call_error`](Self::into_json_call_error) for JSON.
    pub(crate) fn into_bincode_call_error(self, site: &CallSite<'_>, wire_name: &str) -> CallError {
        let bincode = |e: WireBincodeError| CallError::Bincode {
            service: site.service.to_string(),
            error: e.into_bincode_error(wire_name),
        };
        match self {
            Self::UnhandledMessage { .. } => bincode(WireBincodeError::UnknownMessage),
            Self::Bincode(e) => bincode(e),
            other => other.into_call_error(site),
        }
    }
}

/// The encoded form: a stable code, a text and a number (each variant uses
/// what it needs; the rest stay empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Coded {
    code: u16,
    text: String,
    value: u64,
    /// A second text, where a variant needs one (a JSON body's path).
    detail: String,
}

const UNKNOWN_SERVICE: u16 = 1;
const UNHANDLED_MESSAGE: u16 = 2;
const NO_INSTANCE: u16 = 3;
const INSTANCE_DIED: u16 = 4;
const TIMEOUT: u16 = 5;
const HANDLER_PANICKED: u16 = 6;
const NODE_DOWN: u16 = 7;
const OVERLOADED: u16 = 8;
const CODEC: u16 = 9;
const NOT_REGISTERED: u16 = 10;
const SHUTTING_DOWN: u16 = 11;
const JSON_UNKNOWN_MESSAGE: u16 = 12;
const JSON_MALFORMED: u16 = 13;
const JSON_BAD_BODY: u16 = 14;
const UNREACHABLE: u16 = 15;
const TABLES_PENDING: u16 = 16;
const DOWNED: u16 = 17;
const PERMISSION_DENIED: u16 = 18;
const JOINING: u16 = 19;
const BINCODE_UNKNOWN_MESSAGE: u16 = 20;
const BINCODE_MALFORMED: u16 = 21;

impl From<WireError> for Coded {
    fn from(e: WireError) -> Self {
        let mut detail = String::new();
        let (code, text, value) = match e {
            WireError::UnknownService => (UNKNOWN_SERVICE, String::new(), 0),
            WireError::UnhandledMessage { message } => (UNHANDLED_MESSAGE, message, 0),
            WireError::NoInstance => (NO_INSTANCE, String::new(), 0),
            WireError::InstanceDied => (INSTANCE_DIED, String::new(), 0),
            WireError::Timeout { after_ms } => (TIMEOUT, String::new(), after_ms),
            WireError::HandlerPanicked { message } => (HANDLER_PANICKED, message, 0),
            WireError::NodeDown { node } => (NODE_DOWN, node, 0),
            WireError::Overloaded { node } => (OVERLOADED, node, 0),
            WireError::Codec { reason } => (CODEC, reason, 0),
            WireError::NotRegistered { message } => (NOT_REGISTERED, message, 0),
            WireError::ShuttingDown => (SHUTTING_DOWN, String::new(), 0),
            WireError::Json(WireJsonError::UnknownMessage) => {
                (JSON_UNKNOWN_MESSAGE, String::new(), 0)
            }
            WireError::Json(WireJsonError::Malformed { reason }) => (JSON_MALFORMED, reason, 0),
            WireError::Json(WireJsonError::BadBody { path, reason }) => {
                detail = path;
                (JSON_BAD_BODY, reason, 0)
            }
            WireError::Bincode(WireBincodeError::UnknownMessage) => {
                (BINCODE_UNKNOWN_MESSAGE, String::new(), 0)
            }
            WireError::Bincode(WireBincodeError::Malformed { reason }) => {
                (BINCODE_MALFORMED, reason, 0)
            }
            WireError::Unreachable { node } => (UNREACHABLE, node, 0),
            // Node names cannot hold a comma (they are `[A-Za-z0-9._-]`-like
            // names or addresses), so the list travels joined.
            WireError::TablesPending { nodes } => (TABLES_PENDING, nodes.join(","), 0),
            WireError::Downed { node } => (DOWNED, node, 0),
            WireError::Joining { node } => (JOINING, node, 0),
            WireError::PermissionDenied { reason } => (PERMISSION_DENIED, reason, 0),
            WireError::Other { code, text } => (code, text, 0),
        };
        Self {
            code,
            text,
            value,
            detail,
        }
    }
}

impl From<Coded> for WireError {
    fn from(c: Coded) -> Self {
        let Coded {
            code,
            text,
            value,
            detail,
        } = c;
        match code {
            UNKNOWN_SERVICE => Self::UnknownService,
            UNHANDLED_MESSAGE => Self::UnhandledMessage { message: text },
            NO_INSTANCE => Self::NoInstance,
            INSTANCE_DIED => Self::InstanceDied,
            TIMEOUT => Self::Timeout { after_ms: value },
            HANDLER_PANICKED => Self::HandlerPanicked { message: text },
            NODE_DOWN => Self::NodeDown { node: text },
            OVERLOADED => Self::Overloaded { node: text },
            CODEC => Self::Codec { reason: text },
            NOT_REGISTERED => Self::NotRegistered { message: text },
            SHUTTING_DOWN => Self::ShuttingDown,
            JSON_UNKNOWN_MESSAGE => Self::Json(WireJsonError::UnknownMessage),
            JSON_MALFORMED => Self::Json(WireJsonError::Malformed { reason: text }),
            JSON_BAD_BODY => Self::Json(WireJsonError::BadBody {
                path: detail,
                reason: text,
            }),
            BINCODE_UNKNOWN_MESSAGE => Self::Bincode(WireBincodeError::UnknownMessage),
            BINCODE_MALFORMED => Self::Bincode(WireBincodeError::Malformed { reason: text }),
            UNREACHABLE => Self::Unreachable { node: text },
            TABLES_PENDING => Self::TablesPending {
                nodes: text
                    .split(',')
                    .filter(|n| !n.is_empty())
                    .map(str::to_string)
                    .collect(),
            },
            DOWNED => Self::Downed { node: text },
            JOINING => Self::Joining { node: text },
            PERMISSION_DENIED => Self::PermissionDenied { reason: text },
            code => Self::Other { code, text },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::tests::every_variant;
    use crate::remote::frame::{encode_into, Frame, FrameDecoder, DEFAULT_MAX_FRAME_BYTES};

    const SITE: CallSite<'static> = CallSite {
        service: "kv",
        message: "kv::Get",
        node: "b",
        timeout: Duration::from_millis(250),
    };

    /// Through a real frame: encode, then decode.
    fn over_the_wire(error: WireError) -> WireError {
        let mut bytes = Vec::new();
        encode_into(
            &Frame::Error { id: 7, error },
            DEFAULT_MAX_FRAME_BYTES,
            &mut bytes,
        )
        .unwrap();
        let mut d = FrameDecoder::new(DEFAULT_MAX_FRAME_BYTES);
        d.push(&bytes);
        match d.next_frame().unwrap() {
            Some(Frame::Error { id: 7, error }) => error,
            other => panic!("expected the error frame back, got {other:?}"),
        }
    }

    #[test]
    fn every_call_error_survives_the_wire_as_itself() {
        for sent in every_variant(SITE.service, SITE.message, SITE.timeout) {
            let got = over_the_wire(WireError::from_call(&sent)).into_call_error(&SITE);
            let want = match &sent {
                // Documented: the remote node is going away.
                CallError::ShuttingDown => CallError::NodeDown {
                    node: SITE.node.into(),
                },
                _ => sent.clone(),
            };
            assert_eq!(got, want, "sent {sent:?}");
        }
    }

    #[test]
    fn an_unknown_code_from_a_newer_peer_decodes_as_other() {
        let newer = WireError::Other {
            code: 4242,
            text: "throttled".into(),
        };
        assert_eq!(over_the_wire(newer.clone()), newer);
        assert_eq!(
            newer.into_call_error(&SITE),
            CallError::Unrecognized {
                service: "kv".into(),
                code: 4242,
                text: "throttled".into()
            }
        );
    }

    #[test]
    fn a_remote_timeout_reports_the_callers_timeout() {
        let remote = WireError::from_call(&CallError::Timeout {
            service: "kv".into(),
            after: Duration::from_millis(500),
        });
        assert_eq!(remote, WireError::Timeout { after_ms: 500 });
        assert_eq!(
            remote.into_call_error(&SITE),
            CallError::Timeout {
                service: "kv".into(),
                after: SITE.timeout
            }
        );
    }
}
