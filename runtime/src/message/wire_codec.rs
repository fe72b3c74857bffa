//! The codec half of a message type's wire functions: how a
//! `RemoteMessage` is encoded for a remote instance, how its result comes
//! back, its routing key, its JSON schema and whether it survives the wire.
//!
//! What only a node that *serves* the type needs (decoding an inbound
//! frame or a JSON body and pushing it into a local instance) is the
//! service layer's (`service/serve.rs`): a caller, and the types declared
//! with `#[derive(RemoteMessage)]`, need only this half.

use std::any::Any;

use super::contract::{ContractError, MessageContract, WireSchema};
use super::{codec, CodecError, KeyedMessage, RemoteMessage};

/// A decoded result, type-erased.
pub(crate) type AnyResult = Result<Box<dyn Any + Send>, CodecError>;

/// The codec functions of one message type (plain function pointers, so
/// the table is `Copy` and costs nothing on the local path).
#[derive(Clone, Copy)]
pub(crate) struct WireCodec {
    pub(crate) wire_name: &'static str,
    pub(crate) type_name: &'static str,
    /// `M::VERSION`.
    pub(crate) version: u32,
    /// Encodes a `&M` (given as `&dyn Any`).
    pub(crate) encode: fn(&dyn Any) -> Result<Vec<u8>, CodecError>,
    /// Encodes a `&M` (given as `&dyn Any`) at the end of a buffer (a
    /// connection's call lane: no vector of its own).
    pub(crate) encode_append: fn(&dyn Any, &mut Vec<u8>) -> Result<(), CodecError>,
    /// Decodes an `M::Result`, boxed.
    pub(crate) decode_result: fn(&[u8]) -> AnyResult,
    /// The routing key of a keyed message.
    pub(crate) key: Option<fn(&dyn Any) -> u64>,
    /// The JSON shape of a request, if the type describes itself.
    pub(crate) schema: fn() -> Option<serde_json::Value>,
    /// The JSON shape of its reply.
    pub(crate) reply_schema: fn() -> Option<serde_json::Value>,
    /// Its contract: version and wire shapes (traced on first use).
    pub(crate) contract: fn() -> Result<MessageContract, ContractError>,
    /// Whether the message and its result survive bincode (checked at spawn).
    pub(crate) wire_safe: fn() -> Result<(), String>,
    /// A `&M` (given as `&dyn Any`) as JSON (a topic's JSON subscribers).
    pub(crate) to_json: fn(&dyn Any) -> Result<serde_json::Value, CodecError>,
    /// An encoded `M` as JSON (an event from another node, for a topic's
    /// JSON subscribers).
    pub(crate) wire_to_json: fn(&[u8]) -> Result<serde_json::Value, CodecError>,
}

impl std::fmt::Debug for WireCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WireCodec")
            .field("wire_name", &self.wire_name)
            .field("type_name", &self.type_name)
            .finish()
    }
}

fn encode<M: RemoteMessage>(m: &dyn Any) -> Result<Vec<u8>, CodecError> {
    let m = m
        .downcast_ref::<M>()
        .ok_or_else(|| CodecError::Encode(format!("not a {}", std::any::type_name::<M>())))?;
    codec::encode(m)
}

fn encode_append<M: RemoteMessage>(m: &dyn Any, out: &mut Vec<u8>) -> Result<(), CodecError> {
    let m = m
        .downcast_ref::<M>()
        .ok_or_else(|| CodecError::Encode(format!("not a {}", std::any::type_name::<M>())))?;
    codec::encode_append(m, out)
}

fn to_json<M: RemoteMessage>(m: &dyn Any) -> Result<serde_json::Value, CodecError> {
    let m = m
        .downcast_ref::<M>()
        .ok_or_else(|| CodecError::Encode(format!("not a {}", std::any::type_name::<M>())))?;
    serde_json::to_value(m).map_err(|e| CodecError::Encode(e.to_string()))
}

fn wire_to_json<M: RemoteMessage>(b: &[u8]) -> Result<serde_json::Value, CodecError> {
    let m: M = codec::decode(b)?;
    serde_json::to_value(&m).map_err(|e| CodecError::Encode(e.to_string()))
}

fn decode_result<M: RemoteMessage>(b: &[u8]) -> Result<Box<dyn Any + Send>, CodecError> {
    Ok(Box::new(codec::decode::<M::Result>(b)?))
}

fn wire_safe<M: RemoteMessage>() -> Result<(), String> {
    use super::wire_safe::check;
    check::<M>().map_err(|e| format!("the message: {e}"))?;
    check::<M::Result>().map_err(|e| format!("its result: {e}"))
}

fn contract<M: RemoteMessage>() -> Result<MessageContract, ContractError> {
    Ok(MessageContract {
        name: M::NAME.to_string(),
        version: M::VERSION,
        request: WireSchema::of_with::<M, M>()?,
        reply: WireSchema::of_with::<M::Result, M>()?,
    })
}

/// The codec functions of `M` (no routing key: see [`keyed_wire_codec`]).
pub(crate) fn wire_codec<M: RemoteMessage>() -> WireCodec {
    WireCodec {
        wire_name: M::NAME,
        type_name: std::any::type_name::<M>(),
        version: M::VERSION,
        encode: encode::<M>,
        encode_append: encode_append::<M>,
        decode_result: decode_result::<M>,
        key: None,
        schema: M::json_schema,
        reply_schema: M::reply_json_schema,
        contract: contract::<M>,
        wire_safe: wire_safe::<M>,
        to_json: to_json::<M>,
        wire_to_json: wire_to_json::<M>,
    }
}

/// The codec functions of a keyed `M`, its routing key included.
pub(crate) fn keyed_wire_codec<M: RemoteMessage + KeyedMessage>() -> WireCodec {
    WireCodec {
        key: Some(key_of::<M>),
        ..wire_codec::<M>()
    }
}

/// The routing key of a keyed `M` given as `&dyn Any` (0 for another type,
/// which routing never passes).
pub(crate) fn key_of<M: KeyedMessage + 'static>(msg: &dyn Any) -> u64 {
    msg.downcast_ref::<M>().map_or(0, KeyedMessage::routing_key)
}
