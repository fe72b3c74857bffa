//! Tracing a type's serde shape with serde-reflection, once per type.

use std::any::TypeId;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{LazyLock, Mutex};

use serde::de::DeserializeOwned;
use serde_reflection::{
    ContainerFormat, Error as TraceError, Format, Named, Samples, Tracer, TracerConfig,
    VariantFormat,
};

use super::{
    ContractError, VariantShape, WireContainer, WireField, WireFormat, WireSchema, WireVariant,
};

type Cache = Mutex<HashMap<(TypeId, usize), Result<WireSchema, ContractError>>>;

/// Traced shapes so far: a type is traced once per process.
static CACHE: LazyLock<Cache> = LazyLock::new(|| Mutex::new(HashMap::new()));

/// The enums a message names for the tracer (`#[msa(enums(...))]`).
pub(crate) type Extra = fn(&mut Tracing<'_>) -> Result<(), String>;

/// No extra enums.
pub(crate) fn no_extra(_: &mut Tracing<'_>) -> Result<(), String> {
    Ok(())
}

/// A tracing session, handed to a message's `enums(...)` list: each enum
/// added is traced until every one of its variants is known.
#[allow(missing_debug_implementations)] // the tracer is not Debug
pub struct Tracing<'a> {
    tracer: &'a mut Tracer,
    samples: &'a Samples,
}

impl Tracing<'_> {
    /// Traces every variant of the enum `E`.
    ///
    /// # Errors
    /// Why `E` cannot be traced.
    pub fn add<E: DeserializeOwned>(&mut self) -> Result<(), String> {
        self.tracer
            .trace_type::<E>(self.samples)
            .map(|_| ())
            .map_err(|e| describe(&e))
    }
}

/// The wire schema of `T` (traced on first use, then cached), with the
/// extra enums `extra` adds.
pub(crate) fn cached_wire_schema<T: DeserializeOwned + 'static>(
    extra: Extra,
) -> Result<WireSchema, ContractError> {
    let key = (TypeId::of::<T>(), extra as usize);
    if let Some(v) = CACHE.lock().ok().and_then(|m| m.get(&key).cloned()) {
        return v;
    }
    let v = trace::<T>(extra).map_err(|reason| ContractError {
        type_name: std::any::type_name::<T>().to_string(),
        reason,
    });
    if let Ok(mut m) = CACHE.lock() {
        m.insert(key, v.clone());
    }
    v
}

/// The JSON schema of `T` as traced, `None` when it cannot be traced.
pub(crate) fn cached_json_schema<T: DeserializeOwned + 'static>(
    extra: Extra,
) -> Option<serde_json::Value> {
    cached_wire_schema::<T>(extra)
        .ok()
        .map(|s| super::json_schema(&s))
}

/// Passes over the type before giving up on the enums it reaches: each pass
/// visits at least one variant not seen yet.
const MAX_PASSES: usize = 4096;

fn trace<T: DeserializeOwned>(extra: Extra) -> Result<WireSchema, String> {
    use serde_reflection::FormatHolder as _;
    let samples = Samples::new();
    // `trace_type` covers every variant of `T` itself. An enum it reaches
    // stays on one variant until the tracer is told to go on with it
    // (`check_incomplete_enum`), which needs the enum's name: `registry()`
    // names the enums still incomplete, so trace again knowing them. An
    // enum reached only through an `Option`, a sequence, a map or another
    // enum's later variant is cut short anyway (the tracer explores a
    // known shape once) and must be traced on its own: the message lists
    // it in `#[msa(enums(...))]`.
    let mut known: BTreeSet<String> = BTreeSet::new();
    loop {
        let mut tracer = Tracer::new(TracerConfig::default());
        let mut top = Format::Unit;
        for _ in 0..MAX_PASSES {
            top = tracer
                .trace_type::<T>(&samples)
                .map_err(|e| describe(&e))?
                .0;
            let mut more = false;
            for name in &known {
                more |= tracer.check_incomplete_enum(name).is_some();
            }
            if !more {
                break;
            }
        }
        extra(&mut Tracing {
            tracer: &mut tracer,
            samples: &samples,
        })?;
        match tracer.registry() {
            Ok(registry) => {
                // An enum the passes stopped visiting (behind a Vec, ...)
                // is left with provisional indices, not reported by the
                // tracer once its mark was cleared.
                let cut: Vec<&str> = registry
                    .iter()
                    .filter(|(_, c)| match c {
                        ContainerFormat::Enum(vs) => {
                            vs.keys().enumerate().any(|(i, k)| *k as usize != i)
                        }
                        _ => false,
                    })
                    .map(|(n, _)| n.as_str())
                    .collect();
                if !cut.is_empty() {
                    return Err(not_reached(&cut));
                }
                top.normalize()
                    .map_err(|_| "the shape of the type itself stayed unknown".to_string())?;
                return convert(&top, &registry);
            }
            Err(TraceError::MissingVariants(names)) if names.iter().any(|n| !known.contains(n)) => {
                known.extend(names);
            }
            Err(TraceError::MissingVariants(names)) => {
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                return Err(not_reached(&names));
            }
            Err(e) => return Err(describe(&e)),
        }
    }
}

fn not_reached(names: &[&str]) -> String {
    format!(
        "the tracer could not reach every variant of the enum(s) {0}: they are reached \
         through an Option, a Vec, a map or a later variant of another enum; name them in \
         the message's derive: #[msa(enums({0}))]",
        names.join(", ")
    )
}

fn describe(e: &TraceError) -> String {
    match e {
        TraceError::NotSupported(what) => format!(
            "its Deserialize needs `{what}`, which bincode cannot decode (internally tagged or \
             untagged enums, #[serde(flatten)], serde_json::Value)"
        ),
        other => other.to_string(),
    }
}

fn convert(
    top: &Format,
    registry: &BTreeMap<String, ContainerFormat>,
) -> Result<WireSchema, String> {
    let root = format(top)?;
    let all: BTreeMap<String, WireContainer> = registry
        .iter()
        .map(|(name, c)| Ok((name.clone(), container(c)?)))
        .collect::<Result<_, String>>()?;
    // Only the types the root reaches (a message's extra enums may belong
    // to the other side, request or reply).
    let mut types = BTreeMap::new();
    let mut todo = Vec::new();
    names_in(&root, &mut todo);
    while let Some(name) = todo.pop() {
        if types.contains_key(&name) {
            continue;
        }
        if let Some(c) = all.get(&name) {
            match c {
                WireContainer::UnitStruct => {}
                WireContainer::Newtype(x) => names_in(x, &mut todo),
                WireContainer::Tuple(xs) => xs.iter().for_each(|x| names_in(x, &mut todo)),
                WireContainer::Struct(fs) => fs.iter().for_each(|f| names_in(&f.ty, &mut todo)),
                WireContainer::Enum(vs) => {
                    for v in vs {
                        match &v.shape {
                            VariantShape::Unit => {}
                            VariantShape::Newtype(x) => names_in(x, &mut todo),
                            VariantShape::Tuple(xs) => {
                                xs.iter().for_each(|x| names_in(x, &mut todo))
                            }
                            VariantShape::Struct(fs) => {
                                fs.iter().for_each(|f| names_in(&f.ty, &mut todo))
                            }
                        }
                    }
                }
            }
            types.insert(name, c.clone());
        }
    }
    Ok(WireSchema { root, types })
}

/// The named types `f` mentions.
fn names_in(f: &WireFormat, out: &mut Vec<String>) {
    match f {
        WireFormat::Named(n) => out.push(n.clone()),
        WireFormat::Option(x) | WireFormat::Seq(x) => names_in(x, out),
        WireFormat::Array { content, .. } => names_in(content, out),
        WireFormat::Map { key, value } => {
            names_in(key, out);
            names_in(value, out);
        }
        WireFormat::Tuple(xs) => xs.iter().for_each(|x| names_in(x, out)),
        _ => {}
    }
}

fn format(f: &Format) -> Result<WireFormat, String> {
    let boxed = |f: &Format| format(f).map(Box::new);
    Ok(match f {
        Format::Variable(_) => return Err("a part of the shape stayed unknown".into()),
        Format::TypeName(n) => WireFormat::Named(n.clone()),
        Format::Unit => WireFormat::Unit,
        Format::Bool => WireFormat::Bool,
        Format::I8 => WireFormat::I8,
        Format::I16 => WireFormat::I16,
        Format::I32 => WireFormat::I32,
        Format::I64 => WireFormat::I64,
        Format::I128 => WireFormat::I128,
        Format::U8 => WireFormat::U8,
        Format::U16 => WireFormat::U16,
        Format::U32 => WireFormat::U32,
        Format::U64 => WireFormat::U64,
        Format::U128 => WireFormat::U128,
        Format::F32 => WireFormat::F32,
        Format::F64 => WireFormat::F64,
        Format::Char => WireFormat::Char,
        Format::Str => WireFormat::Str,
        Format::Bytes => WireFormat::Bytes,
        Format::Option(x) => WireFormat::Option(boxed(x)?),
        Format::Seq(x) => WireFormat::Seq(boxed(x)?),
        Format::Map { key, value } => WireFormat::Map {
            key: boxed(key)?,
            value: boxed(value)?,
        },
        Format::Tuple(xs) => WireFormat::Tuple(formats(xs)?),
        Format::TupleArray { content, size } => WireFormat::Array {
            content: boxed(content)?,
            size: *size,
        },
    })
}

fn formats(xs: &[Format]) -> Result<Vec<WireFormat>, String> {
    xs.iter().map(format).collect()
}

fn fields(xs: &[Named<Format>]) -> Result<Vec<WireField>, String> {
    xs.iter()
        .map(|n| {
            Ok(WireField {
                name: n.name.clone(),
                ty: format(&n.value)?,
            })
        })
        .collect()
}

fn container(c: &ContainerFormat) -> Result<WireContainer, String> {
    Ok(match c {
        ContainerFormat::UnitStruct => WireContainer::UnitStruct,
        ContainerFormat::NewTypeStruct(x) => WireContainer::Newtype(format(x)?),
        ContainerFormat::TupleStruct(xs) => WireContainer::Tuple(formats(xs)?),
        ContainerFormat::Struct(xs) => WireContainer::Struct(fields(xs)?),
        ContainerFormat::Enum(variants) => {
            let mut out = Vec::with_capacity(variants.len());
            for (index, v) in variants {
                if *index as usize != out.len() {
                    return Err(format!(
                        "the tracer could not tell the wire index of variant `{}` \
                         (a recursive enum?)",
                        v.name
                    ));
                }
                let shape = match &v.value {
                    VariantFormat::Variable(_) => {
                        return Err(format!("variant `{}` stayed unknown", v.name))
                    }
                    VariantFormat::Unit => VariantShape::Unit,
                    VariantFormat::NewType(x) => VariantShape::Newtype(format(x)?),
                    VariantFormat::Tuple(xs) => VariantShape::Tuple(formats(xs)?),
                    VariantFormat::Struct(xs) => VariantShape::Struct(fields(xs)?),
                };
                out.push(WireVariant {
                    name: v.name.clone(),
                    shape,
                });
            }
            WireContainer::Enum(out)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::super::WireSchema;
    use super::*;
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize)]
    struct Order {
        id: u64,
        items: Vec<Item>,
        note: Option<String>,
        state: State,
    }
    #[derive(Serialize, Deserialize)]
    struct Item {
        sku: String,
        qty: u32,
        kind: Kind,
    }
    #[derive(Serialize, Deserialize)]
    enum State {
        New,
        Paid(u64),
        Shipped { carrier: String, at: (u32, u8) },
    }
    #[derive(Serialize, Deserialize)]
    enum Kind {
        A,
        B,
        C,
        D,
        E(Box<Kind>),
    }

    #[test]
    fn nested_structs_and_enums_are_traced_in_wire_order() {
        // `Kind` sits behind a Vec: without being named, its variants stay unknown.
        let e = WireSchema::of::<Order>().unwrap_err();
        assert!(e.reason.contains("#[msa(enums(Kind))]"), "{e}");
        let s = cached_wire_schema::<Order>(|t| t.add::<Kind>()).unwrap();
        assert_eq!(s.root, WireFormat::Named("Order".into()));
        let WireContainer::Struct(f) = &s.types["Order"] else {
            panic!("{s:?}")
        };
        let names: Vec<_> = f.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["id", "items", "note", "state"]);
        assert_eq!(f[1].ty.to_string(), "Vec<Item>");
        assert_eq!(f[2].ty.to_string(), "Option<String>");
        let WireContainer::Enum(v) = &s.types["Kind"] else {
            panic!("{s:?}")
        };
        let names: Vec<_> = v.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["A", "B", "C", "D", "E"]);
        let WireContainer::Enum(v) = &s.types["State"] else {
            panic!("{s:?}")
        };
        assert_eq!(v[2].name, "Shipped");
        assert!(
            matches!(&v[2].shape, VariantShape::Struct(f) if f[1].ty.to_string() == "(u32, u8)")
        );
    }

    #[test]
    fn primitive_replies_have_no_named_types() {
        let s = WireSchema::of::<Option<u64>>().unwrap();
        assert_eq!(s.root.to_string(), "Option<u64>");
        assert!(s.types.is_empty());
        assert_eq!(WireSchema::of::<()>().unwrap().root, WireFormat::Unit);
    }

    #[test]
    fn types_bincode_cannot_carry_have_no_wire_schema() {
        #[derive(Serialize, Deserialize)]
        #[serde(tag = "t")]
        enum Tagged {
            A { x: u32 },
        }
        let e = WireSchema::of::<Tagged>().unwrap_err();
        assert!(e.reason.contains("deserialize_any"), "{e}");
        assert!(e.type_name.contains("Tagged"), "{e}");
    }
}
