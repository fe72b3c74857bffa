//! Messages that may cross a process boundary, and their codec.

pub mod contract;
pub(crate) mod declared;
pub(crate) mod wire_codec;
pub(crate) mod wire_safe;

use actix::Message;
use serde::{de::DeserializeOwned, Serialize};

/// A message that may cross nodes: serializable, with a serializable
/// result, and a stable wire name that identifies its type on the wire.
///
/// Derive it: `#[derive(RemoteMessage)]` with `#[msa(name = "...")]`
/// implements the trait and declares the type to the binary's runtime, so
/// that any node can send it to a service on any other node with nothing
/// registered first (the encoding comes from the caller's own type). Every
/// message publishes its wire schema and the JSON schemas of its request and
/// reply, traced from their serde shape ([`contract`]); add `schema` to
/// publish the request's schemars JSON Schema instead (it must derive
/// [`schemars::JsonSchema`]; doc comments become descriptions),
/// `version = N` when the wire shape changes on purpose (see
/// docs/contracts.md), and `keyed` for a [`KeyedMessage`] sent to keyed
/// services.
///
/// A hand-written `impl RemoteMessage` still works where the type is handled
/// (`ServiceSpec::handles::<M>()`), but a node that only *sends* such a type
/// cannot encode it unless it is passed to the deprecated
/// `Node::register_message`; the derive is the way to declare a message.
///
/// Two different Rust types with the same [`NAME`](RemoteMessage::NAME) are
/// rejected when the second one is spawned.
///
/// # Examples
/// ```
/// use msa_runtime::RemoteMessage;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(actix::Message, Serialize, Deserialize, RemoteMessage)]
/// #[rtype(result = "u64")]
/// #[msa(name = "calc.Add")]
/// struct Add(u64);
///
/// assert_eq!(Add::NAME, "calc.Add");
/// ```
pub trait RemoteMessage:
    Message<Result: Serialize + DeserializeOwned + Send> + Serialize + DeserializeOwned + Send + 'static
{
    /// The stable wire name, e.g. `"shop.PlaceOrder"`.
    const NAME: &'static str;

    /// The version of the message's contract (default 1). The contracts
    /// check (`msa contracts check`, docs/contracts.md) refuses a wire shape
    /// that changed while the wire name and this version stayed the same.
    const VERSION: u32 = 1;

    /// The JSON shape of a request, shown by the gateway's cluster view
    /// (`/v1/cluster`) and its OpenAPI document. By default it is traced
    /// from the type's serde shape ([`contract::json_schema`]); `None` when
    /// that cannot be traced. A type that derives [`schemars::JsonSchema`]
    /// and says `schema` in `#[msa(...)]` returns
    /// `Some(json_schema_of::<Self>())`.
    fn json_schema() -> Option<serde_json::Value> {
        contract::cached_json_schema::<Self>(Self::__trace_enums)
    }

    /// The JSON shape of the reply (`Self::Result`), traced from its serde
    /// shape; `None` when that cannot be traced.
    fn reply_json_schema() -> Option<serde_json::Value> {
        contract::cached_json_schema::<Self::Result>(Self::__trace_enums)
    }

    /// Traces the enums named in `#[msa(enums(...))]` (made by the derive;
    /// not for hand use).
    #[doc(hidden)]
    fn __trace_enums(_: &mut contract::Tracing<'_>) -> Result<(), String> {
        Ok(())
    }
}

/// The JSON Schema of `T`, for [`RemoteMessage::json_schema`].
///
/// # Examples
/// ```
/// #[derive(schemars::JsonSchema)]
/// struct GetOrder { id: u64 }
/// let s = msa_runtime::json_schema_of::<GetOrder>();
/// assert_eq!(s["properties"]["id"]["type"], "integer");
/// ```
pub fn json_schema_of<T: schemars::JsonSchema>() -> serde_json::Value {
    schemars::schema_for!(T).to_value()
}

/// A message that carries a routing key, for services with
/// [`Routing::Keyed`](crate::Routing::Keyed).
pub trait KeyedMessage: Message {
    /// The key; the same key always reaches the same instance. Use
    /// [`key_hash`] to turn bytes into a key.
    fn routing_key(&self) -> u64;
}

/// A stable 64-bit hash of `bytes` (FNV-1a then a splitmix64 finish), the same
/// in every process and build, so that every caller routes a key alike.
///
/// # Examples
/// ```
/// assert_eq!(msa_runtime::key_hash(b"user-1"), msa_runtime::key_hash(b"user-1"));
/// assert_ne!(msa_runtime::key_hash(b"user-1"), msa_runtime::key_hash(b"user-2"));
/// ```
pub fn key_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix64(h)
}

/// splitmix64's finaliser: spreads every input bit over the output.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Why a value could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// Encoding failed.
    #[error("encode failed: {0}")]
    Encode(String),
    /// Decoding failed (malformed bytes, or a type bincode's serde mode cannot decode).
    #[error("decode failed: {0}")]
    Decode(String),
    /// Bytes were left over after the value.
    #[error("{0} trailing bytes after the value")]
    Trailing(usize),
}

/// The wire codec: bincode 2 in serde mode with its standard configuration
/// (varint integers, little endian). Frame size limits are enforced by the
/// framing layer on the length prefix, before anything is allocated.
pub mod codec {
    use super::CodecError;
    use serde::{de::DeserializeOwned, Serialize};

    /// Runs `$decode` (a closure taking a bincode configuration) with a
    /// decoding limit of at least 32 times `$len`, the length of the input.
    ///
    /// bincode 2 allocates a string's or byte vector's buffer for the
    /// length its prefix claims before it reads the bytes, and without a
    /// limit it checks that claim against nothing: a 20-byte frame claiming
    /// a string of 2^60 bytes aborted the process (the frame decoder's fuzz
    /// target found it; the input is kept in `fuzz/artifacts/`). With a
    /// limit it refuses such a claim first. Valid input never claims more
    /// than 16 times its length (bincode counts a `u128` written as a
    /// one-byte varint as 16 bytes read), so the smallest of these tiers
    /// that is 32 times the input bounds an allocation by that, and the
    /// limit is a type parameter (`with_limit::<N>`), hence the tiers.
    macro_rules! limited {
        ($len:expr, $decode:expr) => {{
            let len: usize = $len;
            let config = bincode::config::standard();
            if len <= 2 << 10 {
                ($decode)(config.with_limit::<{ 64 << 10 }>())
            } else if len <= 32 << 10 {
                ($decode)(config.with_limit::<{ 1 << 20 }>())
            } else if len <= 512 << 10 {
                ($decode)(config.with_limit::<{ 16 << 20 }>())
            } else if len <= 8 << 20 {
                ($decode)(config.with_limit::<{ 256 << 20 }>())
            } else if len <= 128 << 20 {
                ($decode)(config.with_limit::<{ 4 << 30 }>())
            } else {
                ($decode)(config.with_limit::<{ usize::MAX }>())
            }
        }};
    }
    pub(crate) use limited;

    /// Encodes `value` to bytes.
    ///
    /// # Errors
    /// [`CodecError::Encode`] when serde refuses the value.
    pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
        bincode::serde::encode_to_vec(value, bincode::config::standard())
            .map_err(|e| CodecError::Encode(e.to_string()))
    }

    /// Encodes `value` at the end of `out`.
    ///
    /// # Errors
    /// [`CodecError::Encode`] when serde refuses the value.
    pub fn encode_append<T: Serialize>(value: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
        bincode::serde::encode_into_std_write(value, out, bincode::config::standard())
            .map(|_| ())
            .map_err(|e| CodecError::Encode(e.to_string()))
    }

    /// Decodes a `T` that must fill `bytes` exactly.
    ///
    /// # Errors
    /// [`CodecError::Decode`] on malformed input, [`CodecError::Trailing`] when
    /// bytes are left over.
    pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
        let (value, used) = limited!(bytes.len(), |config| {
            bincode::serde::decode_from_slice(bytes, config)
        })
        .map_err(|e| CodecError::Decode(e.to_string()))?;
        if used != bytes.len() {
            return Err(CodecError::Trailing(bytes.len() - used));
        }
        Ok(value)
    }

    /// Checks that a sample of `T` survives an encode/decode round trip; use it
    /// in tests for every message type that will cross nodes (bincode's serde
    /// mode cannot decode internally tagged or untagged enums, `flatten`, or
    /// `skip_serializing_if`).
    ///
    /// # Errors
    /// The codec error of whichever step failed.
    pub fn roundtrip<T>(sample: &T) -> Result<T, CodecError>
    where
        T: Serialize + DeserializeOwned,
    {
        decode(&encode(sample)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Sample {
        id: u64,
        name: String,
        tags: Vec<String>,
        kind: Kind,
    }
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Kind {
        A,
        B(u32),
    }

    #[test]
    fn a_length_claiming_more_than_the_input_is_refused_before_it_is_allocated() {
        // A string claiming 2^60 bytes (varint tag 0xFD: a u64 follows)
        // aborted the process in bincode's allocation before the limit.
        let mut huge = vec![0xFD];
        huge.extend_from_slice(&(1u64 << 60).to_le_bytes());
        assert!(codec::decode::<String>(&huge).is_err());
        // The same inside a struct, and a claim just over the tier.
        let mut sample = vec![1, 0xFD];
        sample.extend_from_slice(&(u64::MAX / 2).to_le_bytes());
        assert!(codec::decode::<Sample>(&sample).is_err());
        let mut over = vec![0xFC];
        over.extend_from_slice(&(65u32 << 10).to_le_bytes());
        assert!(codec::decode::<String>(&over).is_err());
        // Valid input at every tier still decodes, up to 16x in memory.
        for len in [0, 3_000, 40_000, 600_000, 9 << 20] {
            let s = "x".repeat(len);
            assert_eq!(
                codec::decode::<String>(&codec::encode(&s).unwrap()).unwrap(),
                s
            );
        }
        let wide = vec![0u128; 4_096];
        assert_eq!(
            codec::decode::<Vec<u128>>(&codec::encode(&wide).unwrap()).unwrap(),
            wide
        );
    }

    #[test]
    fn codec_round_trips_externally_tagged_types() {
        let s = Sample {
            id: 7,
            name: "x".into(),
            tags: vec!["a".into()],
            kind: Kind::B(3),
        };
        assert_eq!(codec::roundtrip(&s).unwrap(), s);
    }

    #[test]
    fn codec_rejects_truncated_and_trailing_bytes() {
        let bytes = codec::encode(&(1u64, String::from("hello"))).unwrap();
        assert!(matches!(
            codec::decode::<(u64, String)>(&bytes[..bytes.len() - 1]),
            Err(CodecError::Decode(_))
        ));
        let mut long = bytes.clone();
        long.push(0);
        assert!(matches!(
            codec::decode::<(u64, String)>(&long),
            Err(CodecError::Trailing(1))
        ));
    }

    #[test]
    fn codec_cannot_decode_internally_tagged_enums() {
        #[derive(Debug, Serialize, Deserialize)]
        #[serde(tag = "t")]
        enum Tagged {
            A { x: u32 },
        }
        assert!(codec::roundtrip(&Tagged::A { x: 1 }).is_err());
    }

    #[test]
    fn key_hash_is_stable() {
        // Pinned value: changing the hash would re-route every key in a cluster.
        assert_eq!(key_hash(b""), mix64(0xcbf2_9ce4_8422_2325));
        assert_eq!(key_hash(b"abc"), key_hash(b"abc"));
    }
}
