//! The message types this binary declared with `#[derive(RemoteMessage)]`.
//!
//! The derive submits each type's wire functions to a link-time list
//! (the `inventory` crate), so that a node can encode a message for a
//! service on another node from the caller's own type, with nothing
//! registered first. The list is static type information of the binary, the
//! same for every node in the process (like `TypeId`s), not node state: it
//! is read once into a map on first use and never changes.

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::OnceLock;

use super::wire_codec::{keyed_wire_codec, wire_codec, WireCodec};
use crate::message::{KeyedMessage, RemoteMessage};

/// One declared message type (made by the derive; not for hand use).
#[doc(hidden)]
#[derive(Debug)]
pub struct Declared {
    /// The type's wire functions.
    pub codec: fn() -> DeclaredCodec,
}

inventory::collect!(Declared);

/// A declared type's wire functions (opaque).
#[doc(hidden)]
#[derive(Debug)]
pub struct DeclaredCodec {
    type_id: TypeId,
    codec: WireCodec,
}

impl Declared {
    /// The wire functions of `M`.
    pub fn plain<M: RemoteMessage>() -> DeclaredCodec {
        DeclaredCodec {
            type_id: TypeId::of::<M>(),
            codec: wire_codec::<M>(),
        }
    }

    /// The wire functions of a keyed `M` (its routing key included).
    pub fn keyed<M: RemoteMessage + KeyedMessage>() -> DeclaredCodec {
        DeclaredCodec {
            type_id: TypeId::of::<M>(),
            codec: keyed_wire_codec::<M>(),
        }
    }
}

/// The declared types by `TypeId` and by wire name.
struct Table {
    by_type: HashMap<TypeId, WireCodec>,
    by_name: HashMap<&'static str, WireCodec>,
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = Table {
            by_type: HashMap::new(),
            by_name: HashMap::new(),
        };
        for d in inventory::iter::<Declared> {
            let c = (d.codec)();
            t.by_type.insert(c.type_id, c.codec);
            t.by_name.insert(c.codec.wire_name, c.codec);
        }
        t
    })
}

/// The wire functions of a declared type, if `t` is one.
pub(crate) fn codec(t: TypeId) -> Option<WireCodec> {
    table().by_type.get(&t).copied()
}

/// Every declared type's wire functions, in no particular order.
pub(crate) fn all() -> Vec<WireCodec> {
    table().by_type.values().copied().collect()
}

/// The declared type with this wire name (for descriptions only: a service
/// decodes with its own registration, never with this).
pub(crate) fn by_name(wire_name: &str) -> Option<WireCodec> {
    table().by_name.get(wire_name).copied()
}
