//! JSON calls: a service asked by its name and a message's wire name with a
//! JSON body, as the gateway does.
//!
//! This module holds the call's types and the decoder (which names the field
//! at fault). Serving one is the service layer's: the same
//! `ServiceSpec::handles::<M>()` that lets a node serve `M` for other nodes
//! also records how to decode `M` from JSON and encode its result back
//! (`service/serve.rs`), so a message is registered once for local, remote
//! and HTTP callers. A node that runs no instance forwards the JSON text to
//! one that does (`remote/json_forward.rs`).

use std::future::Future;
use std::pin::Pin;

use serde::de::DeserializeOwned;

use crate::error::CallError;
pub(crate) use crate::error::JsonError;

/// The body of a JSON call.
#[derive(Debug)]
#[non_exhaustive]
pub enum JsonBody<'a> {
    /// Raw JSON text (the fast path: decoded straight into the message).
    Bytes(&'a [u8]),
    /// An already parsed value (e.g. a body merged with path parameters).
    Value(serde_json::Value),
}

/// What a JSON call yields: the JSON-encoded result, or the call's error.
pub type JsonReply = Pin<Box<dyn Future<Output = Result<Vec<u8>, CallError>> + Send>>;

/// A message type a node knows by its wire name.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageInfo {
    /// The wire name.
    pub name: &'static str,
    /// The Rust type name (for diagnostics; not stable across builds).
    pub type_name: &'static str,
    /// The JSON shape of a request, when the type describes itself
    /// ([`RemoteMessage::json_schema`]).
    pub schema: Option<serde_json::Value>,
    /// The JSON shape of its reply ([`RemoteMessage::reply_json_schema`]).
    pub reply_schema: Option<serde_json::Value>,
    /// Its contract version ([`RemoteMessage::VERSION`]).
    pub version: u32,
}

/// Decodes a `T`, naming the field at fault.
pub(crate) fn decode<T: DeserializeOwned>(
    message: &'static str,
    body: JsonBody<'_>,
) -> Result<T, JsonError> {
    let bad = |e: serde_path_to_error::Error<serde_json::Error>| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            JsonError::MalformedJson {
                reason: inner.to_string(),
            }
        } else {
            JsonError::BadBody {
                message: message.to_string(),
                path,
                reason: inner.to_string(),
            }
        }
    };
    match body {
        JsonBody::Bytes(bytes) => {
            let mut de = serde_json::Deserializer::from_slice(bytes);
            let v = serde_path_to_error::deserialize(&mut de).map_err(bad)?;
            de.end().map_err(|e| JsonError::MalformedJson {
                reason: e.to_string(),
            })?;
            Ok(v)
        }
        JsonBody::Value(value) => serde_path_to_error::deserialize(value).map_err(bad),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Order {
        id: u64,
        items: Vec<Item>,
    }
    #[derive(Debug, Deserialize, PartialEq)]
    struct Item {
        sku: String,
        qty: u32,
    }

    #[test]
    fn decode_names_the_field_at_fault() {
        let ok: Order = decode("t.O", JsonBody::Bytes(br#"{"id":1,"items":[]}"#)).unwrap();
        assert_eq!(ok.id, 1);
        let e = decode::<Order>(
            "t.O",
            JsonBody::Bytes(br#"{"id":1,"items":[{"sku":"a","qty":"x"}]}"#),
        )
        .unwrap_err();
        assert!(
            matches!(&e, JsonError::BadBody { path, .. } if path == "items[0].qty"),
            "{e:?}"
        );
        let e = decode::<Order>("t.O", JsonBody::Bytes(br#"{"items":[]}"#)).unwrap_err();
        assert!(
            matches!(&e, JsonError::BadBody { reason, .. } if reason.contains("missing field `id`")),
            "{e:?}"
        );
    }

    #[test]
    fn decode_tells_malformed_json_apart() {
        for bad in [
            &b"{"[..],
            b"{\"id\":1,}",
            b"nope",
            b"{\"id\":1,\"items\":[]} x",
            b"",
        ] {
            let e = decode::<Order>("t.O", JsonBody::Bytes(bad)).unwrap_err();
            assert!(
                matches!(e, JsonError::MalformedJson { .. }),
                "{bad:?}: {e:?}"
            );
        }
        let v = serde_json::json!({"id": "1", "items": []});
        let e = decode::<Order>("t.O", JsonBody::Value(v)).unwrap_err();
        assert!(
            matches!(&e, JsonError::BadBody { path, .. } if path == "id"),
            "{e:?}"
        );
    }
}
