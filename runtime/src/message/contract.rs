//! Interface contracts: the wire shape of every message, traced from its
//! serde implementation, and the JSON schema that follows from it.
//!
//! A message crosses nodes as bincode in serde mode (see [`codec`](crate::codec)),
//! and bincode writes exactly serde's data model: a struct's fields in
//! declaration order with no names, an enum's variant index then its
//! fields, an option's tag then its value, a sequence's length then its
//! items. So the wire shape of a type *is* its serde data model, and
//! serde-reflection (a tracer of serde formats from the Diem/Zefchain
//! projects, MIT/Apache-2.0, already used by the wire-safety check) reads
//! it from the type's own `Deserialize`, with nothing written by hand and
//! nothing that can drift from what the codec does: every `#[serde(...)]`
//! attribute (renames, `with`, skipped fields) is seen as bincode sees it.
//!
//! [`WireSchema`] is that shape in a stable, serializable form (the
//! contracts file, `msa contracts`, stores it); [`diff`] says how one
//! shape changed into another, field by field; [`json_schema`] turns a
//! shape into the JSON schema of the same type as serde_json reads and
//! writes it (the default [`RemoteMessage::json_schema`](crate::RemoteMessage::json_schema)
//! and [`RemoteMessage::reply_json_schema`](crate::RemoteMessage::reply_json_schema)).
//!
//! What tracing cannot see: a type whose `Deserialize` validates its input
//! (the tracer's sample values may be refused) has no wire schema
//! ([`ContractError`]); give such a type a plain serde shape or describe it
//! with `schema` (schemars) for its JSON schema.

mod diff;
mod json;
mod trace;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

pub use diff::{diff, Change, ChangeKind, Member};
pub use json::json_schema;
pub use trace::Tracing;
pub(crate) use trace::{cached_json_schema, cached_wire_schema, no_extra};

/// The wire shape of a value: a field's type, an element's, a root's.
///
/// Serialized in snake case: `"u64"`, `{"option": "str"}`,
/// `{"seq": {"named": "Item"}}`, `{"map": {"key": "str", "value": "u32"}}`.
/// [`Display`](fmt::Display) renders it Rust-like (`Vec<Item>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)] // the primitive variants are named after their types
pub enum WireFormat {
    /// A struct or enum, described in [`WireSchema::types`] under this name.
    Named(String),
    Unit,
    Bool,
    I8,
    I16,
    I32,
    I64,
    I128,
    U8,
    U16,
    U32,
    U64,
    U128,
    F32,
    F64,
    Char,
    Str,
    /// serde's bytes (`serde_bytes`); a plain `Vec<u8>` is a `Seq` of `U8`.
    Bytes,
    /// `Option<T>`: a tag byte, then the value.
    Option(Box<WireFormat>),
    /// `Vec<T>`, sets, ...: a length, then the items.
    Seq(Box<WireFormat>),
    /// Maps: a length, then key/value pairs.
    Map {
        /// The key's format.
        key: Box<WireFormat>,
        /// The value's format.
        value: Box<WireFormat>,
    },
    /// A tuple: its elements in order.
    Tuple(Vec<WireFormat>),
    /// `[T; N]`: `size` elements, no length.
    Array {
        /// The element's format.
        content: Box<WireFormat>,
        /// How many.
        size: usize,
    },
}

impl fmt::Display for WireFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |f: &mut fmt::Formatter<'_>, items: &[WireFormat]| -> fmt::Result {
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{x}")?;
            }
            Ok(())
        };
        match self {
            Self::Named(n) => f.write_str(n),
            Self::Unit => f.write_str("()"),
            Self::Bool => f.write_str("bool"),
            Self::I8 => f.write_str("i8"),
            Self::I16 => f.write_str("i16"),
            Self::I32 => f.write_str("i32"),
            Self::I64 => f.write_str("i64"),
            Self::I128 => f.write_str("i128"),
            Self::U8 => f.write_str("u8"),
            Self::U16 => f.write_str("u16"),
            Self::U32 => f.write_str("u32"),
            Self::U64 => f.write_str("u64"),
            Self::U128 => f.write_str("u128"),
            Self::F32 => f.write_str("f32"),
            Self::F64 => f.write_str("f64"),
            Self::Char => f.write_str("char"),
            Self::Str => f.write_str("String"),
            Self::Bytes => f.write_str("bytes"),
            Self::Option(x) => write!(f, "Option<{x}>"),
            Self::Seq(x) => write!(f, "Vec<{x}>"),
            Self::Map { key, value } => write!(f, "Map<{key}, {value}>"),
            Self::Tuple(xs) => {
                f.write_str("(")?;
                list(f, xs)?;
                if xs.len() == 1 {
                    f.write_str(",")?;
                }
                f.write_str(")")
            }
            Self::Array { content, size } => write!(f, "[{content}; {size}]"),
        }
    }
}

/// A named field of a struct or struct variant, in wire order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireField {
    /// The field's serde name.
    pub name: String,
    /// Its format.
    #[serde(rename = "type")]
    pub ty: WireFormat,
}

/// The fields of an enum variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VariantShape {
    /// `A`.
    Unit,
    /// `A(T)`.
    Newtype(WireFormat),
    /// `A(T, U)`.
    Tuple(Vec<WireFormat>),
    /// `A { x: T }`.
    Struct(Vec<WireField>),
}

/// An enum variant; its position in [`WireContainer::Enum`] is its index on
/// the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireVariant {
    /// The variant's serde name.
    pub name: String,
    /// Its fields.
    pub shape: VariantShape,
}

/// A named type: a struct or an enum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WireContainer {
    /// `struct A;`: nothing on the wire.
    UnitStruct,
    /// `struct A(T);`: exactly `T`.
    Newtype(WireFormat),
    /// `struct A(T, U);`.
    Tuple(Vec<WireFormat>),
    /// `struct A { x: T }`: the fields in order, without names.
    Struct(Vec<WireField>),
    /// `enum A { .. }`: the variants by index.
    Enum(Vec<WireVariant>),
}

/// The wire shape of one type: its root format and every named type it
/// reaches (by serde name, which is the Rust name without its path).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireSchema {
    /// The type itself (`{"named": "PlaceOrder"}`, or `"u64"` for a reply).
    pub root: WireFormat,
    /// The named types, sorted by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub types: BTreeMap<String, WireContainer>,
}

impl WireSchema {
    /// The wire schema of `T`, traced from its serde implementation.
    ///
    /// # Errors
    /// [`ContractError`] when the tracer cannot build `T` (a validating
    /// `Deserialize`, or one that needs `deserialize_any`, which bincode
    /// cannot decode either).
    ///
    /// # Examples
    /// ```
    /// use msa_runtime::contract::{WireFormat, WireSchema};
    /// #[derive(serde::Serialize, serde::Deserialize)]
    /// struct Get { key: String, limit: Option<u32> }
    /// let s = WireSchema::of::<Get>().unwrap();
    /// assert_eq!(s.root, WireFormat::Named("Get".into()));
    /// assert_eq!(s.types.len(), 1);
    /// ```
    pub fn of<T: serde::de::DeserializeOwned + 'static>() -> Result<Self, ContractError> {
        cached_wire_schema::<T>(no_extra)
    }

    /// Like [`of`](Self::of), also tracing every variant of the enums that
    /// `M` names in `#[msa(enums(...))]` (an enum that `T` reaches only
    /// through an `Option`, a sequence, a map or another enum's later
    /// variant: the tracer explores those once).
    ///
    /// # Errors
    /// As [`of`](Self::of); an enum whose variants were not all reached is
    /// named with the fix.
    pub fn of_with<T, M>() -> Result<Self, ContractError>
    where
        T: serde::de::DeserializeOwned + 'static,
        M: crate::RemoteMessage,
    {
        cached_wire_schema::<T>(M::__trace_enums)
    }
}

/// The contract of one message type: what `msa contracts` records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageContract {
    /// The wire name ([`RemoteMessage::NAME`](crate::RemoteMessage::NAME)).
    pub name: String,
    /// Its contract version ([`RemoteMessage::VERSION`](crate::RemoteMessage::VERSION)).
    pub version: u32,
    /// The request's wire shape.
    pub request: WireSchema,
    /// The reply's wire shape.
    pub reply: WireSchema,
}

/// A type whose wire shape could not be traced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot trace the wire shape of `{type_name}`: {reason}")]
pub struct ContractError {
    /// The Rust type.
    pub type_name: String,
    /// Why.
    pub reason: String,
}

/// The contracts of every message type declared with
/// `#[derive(RemoteMessage)]` in this binary, sorted by wire name; a type
/// whose shape cannot be traced is an `Err` naming it.
pub fn declared() -> Vec<Result<MessageContract, ContractError>> {
    let mut all: Vec<_> = super::declared::all()
        .into_iter()
        .map(|c| (c.contract)())
        .collect();
    all.sort_by(|a, b| name_of(a).cmp(name_of(b)));
    all
}

fn name_of(r: &Result<MessageContract, ContractError>) -> &str {
    match r {
        Ok(c) => &c.name,
        Err(e) => &e.type_name,
    }
}
