//! The JSON schema of a traced type, as serde_json reads and writes it.
//!
//! serde_json maps serde's data model one to one: a struct is an object
//! (a newtype struct is its content), a unit is `null`, an enum is
//! externally tagged (`"Unit"` or `{"Variant": content}`), bytes and tuples
//! are arrays. Missing `Option` fields read as `None`, so only the other
//! fields are `required`; unknown fields are ignored on input, so objects
//! stay open. Named types go to `$defs` and are referenced as
//! `#/$defs/Name`, as schemars does (draft 2020-12).

use serde_json::{json, Map, Value};

use super::{VariantShape, WireContainer, WireField, WireFormat, WireSchema};

/// The JSON schema (draft 2020-12) of the type `schema` describes.
///
/// # Examples
/// ```
/// use msa_runtime::contract::{json_schema, WireSchema};
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Get { key: String, limit: Option<u32> }
/// let s = json_schema(&WireSchema::of::<Get>().unwrap());
/// assert_eq!(s["$ref"], "#/$defs/Get");
/// assert_eq!(s["$defs"]["Get"]["required"], serde_json::json!(["key"]));
/// ```
pub fn json_schema(schema: &WireSchema) -> Value {
    let mut out = format(&schema.root);
    let defs: Map<String, Value> = schema
        .types
        .iter()
        .map(|(name, c)| (name.clone(), container(name, c)))
        .collect();
    if let Value::Object(o) = &mut out {
        o.insert(
            "$schema".into(),
            "https://json-schema.org/draft/2020-12/schema".into(),
        );
        if !defs.is_empty() {
            o.insert("$defs".into(), Value::Object(defs));
        }
    }
    out
}

fn int(min: i128, max: u128) -> Value {
    json!({"type": "integer", "minimum": min, "maximum": max})
}

fn format(f: &WireFormat) -> Value {
    match f {
        WireFormat::Named(n) => json!({"$ref": format!("#/$defs/{n}")}),
        WireFormat::Unit => json!({"type": "null"}),
        WireFormat::Bool => json!({"type": "boolean"}),
        WireFormat::I8 => int(i8::MIN.into(), i8::MAX as u128),
        WireFormat::I16 => int(i16::MIN.into(), i16::MAX as u128),
        WireFormat::I32 => int(i32::MIN.into(), i32::MAX as u128),
        WireFormat::I64 => int(i64::MIN.into(), i64::MAX as u128),
        WireFormat::U8 => int(0, u8::MAX.into()),
        WireFormat::U16 => int(0, u16::MAX.into()),
        WireFormat::U32 => int(0, u32::MAX.into()),
        WireFormat::U64 => int(0, u64::MAX.into()),
        WireFormat::I128 => json!({"type": "integer"}),
        WireFormat::U128 => json!({"type": "integer", "minimum": 0}),
        WireFormat::F32 | WireFormat::F64 => json!({"type": "number"}),
        WireFormat::Char => json!({"type": "string", "minLength": 1, "maxLength": 1}),
        WireFormat::Str => json!({"type": "string"}),
        WireFormat::Bytes => json!({"type": "array", "items": int(0, 255)}),
        WireFormat::Option(x) => json!({"anyOf": [format(x), {"type": "null"}]}),
        WireFormat::Seq(x) => json!({"type": "array", "items": format(x)}),
        // JSON keys are strings: serde_json writes integer keys as strings.
        WireFormat::Map { value, .. } => {
            json!({"type": "object", "additionalProperties": format(value)})
        }
        WireFormat::Tuple(xs) => tuple(xs),
        WireFormat::Array { content, size } => {
            json!({"type": "array", "items": format(content), "minItems": size, "maxItems": size})
        }
    }
}

fn tuple(xs: &[WireFormat]) -> Value {
    let items: Vec<Value> = xs.iter().map(format).collect();
    json!({
        "type": "array",
        "prefixItems": items,
        "items": false,
        "minItems": xs.len(),
        "maxItems": xs.len(),
    })
}

fn object(fields: &[WireField]) -> Value {
    let mut props = Map::new();
    let mut required = Vec::new();
    for f in fields {
        props.insert(f.name.clone(), format(&f.ty));
        if !matches!(f.ty, WireFormat::Option(_)) {
            required.push(Value::from(f.name.as_str()));
        }
    }
    json!({"type": "object", "properties": props, "required": required})
}

fn container(name: &str, c: &WireContainer) -> Value {
    let mut v = match c {
        WireContainer::UnitStruct => json!({"type": "null"}),
        WireContainer::Newtype(x) => format(x),
        WireContainer::Tuple(xs) => tuple(xs),
        WireContainer::Struct(fields) => object(fields),
        WireContainer::Enum(variants) => {
            let one_of: Vec<Value> = variants
                .iter()
                .map(|v| {
                    let content = match &v.shape {
                        VariantShape::Unit => {
                            return json!({"type": "string", "const": v.name});
                        }
                        VariantShape::Newtype(x) => format(x),
                        VariantShape::Tuple(xs) => tuple(xs),
                        VariantShape::Struct(fields) => object(fields),
                    };
                    json!({
                        "type": "object",
                        "properties": {v.name.as_str(): content},
                        "required": [v.name],
                        "additionalProperties": false,
                    })
                })
                .collect();
            json!({"oneOf": one_of})
        }
    };
    if let Value::Object(o) = &mut v {
        o.entry("title").or_insert_with(|| Value::from(name));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::super::WireSchema;
    use super::*;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Put {
        key: String,
        value: Vec<u8>,
        ttl: Option<u32>,
        mode: Mode,
        pair: (u8, String),
    }
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Mode {
        Fast,
        Slow(u16),
        Custom { level: i8 },
    }
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Wrapped(u64);

    #[test]
    fn the_schema_describes_what_serde_json_writes() {
        let s = json_schema(&WireSchema::of::<Put>().unwrap());
        let put = &s["$defs"]["Put"];
        assert_eq!(put["type"], "object");
        assert_eq!(put["required"], json!(["key", "value", "mode", "pair"]));
        assert_eq!(put["properties"]["value"]["items"]["maximum"], 255);
        let modes = s["$defs"]["Mode"]["oneOf"].as_array().unwrap();
        assert_eq!(modes[0], json!({"type": "string", "const": "Fast"}));
        assert_eq!(modes[1]["required"], json!(["Slow"]));
        assert_eq!(
            modes[2]["properties"]["Custom"]["properties"]["level"]["minimum"],
            -128
        );
        // And serde_json agrees on the shape of a real value.
        let v = serde_json::to_value(Put {
            key: "k".into(),
            value: vec![1],
            ttl: None,
            mode: Mode::Slow(3),
            pair: (1, "x".into()),
        })
        .unwrap();
        assert_eq!(v["mode"], json!({"Slow": 3}));
        assert_eq!(v["pair"], json!([1, "x"]));
        let w = json_schema(&WireSchema::of::<Wrapped>().unwrap());
        assert_eq!(w["$defs"]["Wrapped"]["type"], "integer");
    }
}
