//! How one wire shape changed into another, member by member.
//!
//! Two shapes are compared from their roots, structurally: a named type is
//! compared with the type at the same place in the other shape whatever its
//! name (renaming a Rust type does not change the wire; bincode writes no
//! names), and every difference bincode would notice is reported with the
//! path that leads to it from the root (`PlaceOrder.items[].qty`): a field
//! or variant added or removed, fields or variants reordered (bincode writes
//! fields by position and variants by index), a type changed, a struct
//! turned into an enum. Renaming a field is a remove and an add.

use std::collections::HashSet;
use std::fmt;

use super::{
    MessageContract, VariantShape, WireContainer, WireField, WireFormat, WireSchema, WireVariant,
};

/// What kind of member a change is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Member {
    /// A struct's (or struct variant's) named field.
    Field,
    /// An enum's variant.
    Variant,
}

impl fmt::Display for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Field => "field",
            Self::Variant => "variant",
        })
    }
}

/// How a place in the shape changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeKind {
    /// A member exists only in the new shape.
    Added {
        /// Field or variant.
        member: Member,
        /// Its type (a variant's fields).
        ty: String,
    },
    /// A member exists only in the old shape.
    Removed {
        /// Field or variant.
        member: Member,
        /// Its type (a variant's fields).
        ty: String,
    },
    /// The type at this place changed.
    TypeChanged {
        /// The old type.
        from: String,
        /// The new type.
        to: String,
    },
    /// The members both shapes have are in another order.
    Reordered {
        /// Fields or variants.
        member: Member,
        /// Their old order.
        from: Vec<String>,
        /// Their new order.
        to: Vec<String>,
    },
}

/// One difference between two contracts of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// `request` or `reply`.
    pub side: &'static str,
    /// Where, from the root type: `PlaceOrder.items[].qty`,
    /// `State::Shipped.carrier`, `(PlaceOrder)` for the root itself.
    pub path: String,
    /// What changed.
    pub kind: ChangeKind,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (side, path) = (self.side, &self.path);
        match &self.kind {
            ChangeKind::Added { member, ty } => {
                write!(f, "{side}: {member} `{path}` added ({ty})")
            }
            ChangeKind::Removed { member, ty } => {
                write!(f, "{side}: {member} `{path}` removed (was {ty})")
            }
            ChangeKind::TypeChanged { from, to } => {
                write!(f, "{side}: `{path}` changed type: {from} -> {to}")
            }
            ChangeKind::Reordered { member, from, to } => write!(
                f,
                "{side}: {member}s of `{path}` reordered: [{}] -> [{}]",
                from.join(", "),
                to.join(", ")
            ),
        }
    }
}

/// The differences between an old and a new contract of the same message
/// (request and reply), empty when the wire shapes are the same. The name
/// and version are not compared: that is the caller's rule.
///
/// # Examples
/// ```
/// use msa_runtime::contract::{diff, MessageContract, WireSchema};
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct V1 { id: u64 }
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct V2 { id: u32 }
/// let c = |request| MessageContract {
///     name: "a.B".into(), version: 1, request, reply: WireSchema::of::<()>().unwrap(),
/// };
/// let changes = diff(&c(WireSchema::of::<V1>().unwrap()), &c(WireSchema::of::<V2>().unwrap()));
/// assert_eq!(changes[0].to_string(), "request: `V1.id` changed type: u64 -> u32");
/// ```
pub fn diff(old: &MessageContract, new: &MessageContract) -> Vec<Change> {
    let mut out = Vec::new();
    for (side, a, b) in [
        ("request", &old.request, &new.request),
        ("reply", &old.reply, &new.reply),
    ] {
        let mut d = Differ {
            side,
            old: a,
            new: b,
            seen: HashSet::new(),
            out: &mut out,
        };
        let root = match &a.root {
            WireFormat::Named(n) => n.clone(),
            other => format!("({other})"),
        };
        d.format(&root, &a.root, &b.root);
    }
    out
}

struct Differ<'a> {
    side: &'static str,
    old: &'a WireSchema,
    new: &'a WireSchema,
    /// Pairs of named types already compared (recursive types end here).
    seen: HashSet<(String, String)>,
    out: &'a mut Vec<Change>,
}

impl Differ<'_> {
    fn push(&mut self, path: &str, kind: ChangeKind) {
        self.out.push(Change {
            side: self.side,
            path: path.to_string(),
            kind,
        });
    }

    fn changed(&mut self, path: &str, a: &WireFormat, b: &WireFormat) {
        self.push(
            path,
            ChangeKind::TypeChanged {
                from: a.to_string(),
                to: b.to_string(),
            },
        );
    }

    fn format(&mut self, path: &str, a: &WireFormat, b: &WireFormat) {
        use WireFormat as F;
        match (a, b) {
            (F::Named(x), F::Named(y)) => {
                if !self.seen.insert((x.clone(), y.clone())) {
                    return;
                }
                match (self.old.types.get(x), self.new.types.get(y)) {
                    (Some(cx), Some(cy)) => self.container(path, cx, cy),
                    _ if x == y => {}
                    _ => self.changed(path, a, b),
                }
            }
            (F::Option(x), F::Option(y)) => self.format(path, x, y),
            (F::Seq(x), F::Seq(y)) => self.format(&format!("{path}[]"), x, y),
            (F::Map { key: ka, value: va }, F::Map { key: kb, value: vb }) => {
                self.format(&format!("{path}{{key}}"), ka, kb);
                self.format(&format!("{path}{{}}"), va, vb);
            }
            (F::Tuple(xs), F::Tuple(ys)) if xs.len() == ys.len() => {
                self.positional(path, xs, ys);
            }
            (
                F::Array {
                    content: x,
                    size: n,
                },
                F::Array {
                    content: y,
                    size: m,
                },
            ) if n == m => self.format(&format!("{path}[]"), x, y),
            _ if a == b => {}
            _ => self.changed(path, a, b),
        }
    }

    fn positional(&mut self, path: &str, xs: &[WireFormat], ys: &[WireFormat]) {
        for (i, (x, y)) in xs.iter().zip(ys).enumerate() {
            self.format(&format!("{path}.{i}"), x, y);
        }
    }

    fn container(&mut self, path: &str, a: &WireContainer, b: &WireContainer) {
        use WireContainer as C;
        match (a, b) {
            (C::UnitStruct, C::UnitStruct) => {}
            (C::Newtype(x), C::Newtype(y)) => self.format(path, x, y),
            (C::Tuple(xs), C::Tuple(ys)) if xs.len() == ys.len() => self.positional(path, xs, ys),
            (C::Struct(xs), C::Struct(ys)) => self.fields(path, xs, ys),
            (C::Enum(xs), C::Enum(ys)) => self.variants(path, xs, ys),
            _ => self.push(
                path,
                ChangeKind::TypeChanged {
                    from: describe(a),
                    to: describe(b),
                },
            ),
        }
    }

    fn fields(&mut self, path: &str, xs: &[WireField], ys: &[WireField]) {
        let names = |v: &[WireField]| v.iter().map(|f| f.name.clone()).collect::<Vec<_>>();
        let (old, new) = (names(xs), names(ys));
        for f in xs.iter().filter(|f| !new.contains(&f.name)) {
            self.push(
                &format!("{path}.{}", f.name),
                ChangeKind::Removed {
                    member: Member::Field,
                    ty: f.ty.to_string(),
                },
            );
        }
        for f in ys.iter().filter(|f| !old.contains(&f.name)) {
            self.push(
                &format!("{path}.{}", f.name),
                ChangeKind::Added {
                    member: Member::Field,
                    ty: f.ty.to_string(),
                },
            );
        }
        self.order(path, Member::Field, &old, &new);
        for x in xs {
            if let Some(y) = ys.iter().find(|y| y.name == x.name) {
                self.format(&format!("{path}.{}", x.name), &x.ty, &y.ty);
            }
        }
    }

    fn variants(&mut self, path: &str, xs: &[WireVariant], ys: &[WireVariant]) {
        let names = |v: &[WireVariant]| v.iter().map(|f| f.name.clone()).collect::<Vec<_>>();
        let (old, new) = (names(xs), names(ys));
        for v in xs.iter().filter(|v| !new.contains(&v.name)) {
            self.push(
                &format!("{path}::{}", v.name),
                ChangeKind::Removed {
                    member: Member::Variant,
                    ty: shape(&v.shape),
                },
            );
        }
        for v in ys.iter().filter(|v| !old.contains(&v.name)) {
            self.push(
                &format!("{path}::{}", v.name),
                ChangeKind::Added {
                    member: Member::Variant,
                    ty: shape(&v.shape),
                },
            );
        }
        self.order(path, Member::Variant, &old, &new);
        for x in xs {
            let Some(y) = ys.iter().find(|y| y.name == x.name) else {
                continue;
            };
            let at = format!("{path}::{}", x.name);
            use VariantShape as V;
            match (&x.shape, &y.shape) {
                (V::Unit, V::Unit) => {}
                (V::Newtype(a), V::Newtype(b)) => self.format(&at, a, b),
                (V::Tuple(a), V::Tuple(b)) if a.len() == b.len() => self.positional(&at, a, b),
                (V::Struct(a), V::Struct(b)) => self.fields(&at, a, b),
                (a, b) => self.push(
                    &at,
                    ChangeKind::TypeChanged {
                        from: shape(a),
                        to: shape(b),
                    },
                ),
            }
        }
    }

    /// Reports a changed order of the members both sides have.
    fn order(&mut self, path: &str, member: Member, old: &[String], new: &[String]) {
        let common_old: Vec<String> = old.iter().filter(|n| new.contains(n)).cloned().collect();
        let common_new: Vec<String> = new.iter().filter(|n| old.contains(n)).cloned().collect();
        if common_old != common_new {
            self.push(
                path,
                ChangeKind::Reordered {
                    member,
                    from: common_old,
                    to: common_new,
                },
            );
        }
    }
}

fn fields_text(fields: &[WireField]) -> String {
    let inner: Vec<String> = fields
        .iter()
        .map(|f| format!("{}: {}", f.name, f.ty))
        .collect();
    format!("{{ {} }}", inner.join(", "))
}

fn list(xs: &[WireFormat]) -> String {
    let inner: Vec<String> = xs.iter().map(ToString::to_string).collect();
    format!("({})", inner.join(", "))
}

fn shape(s: &VariantShape) -> String {
    match s {
        VariantShape::Unit => "unit".into(),
        VariantShape::Newtype(x) => format!("({x})"),
        VariantShape::Tuple(xs) => list(xs),
        VariantShape::Struct(fs) => fields_text(fs),
    }
}

fn describe(c: &WireContainer) -> String {
    match c {
        WireContainer::UnitStruct => "unit struct".into(),
        WireContainer::Newtype(x) => format!("newtype struct ({x})"),
        WireContainer::Tuple(xs) => format!("tuple struct {}", list(xs)),
        WireContainer::Struct(fs) => format!("struct {}", fields_text(fs)),
        WireContainer::Enum(vs) => {
            let names: Vec<&str> = vs.iter().map(|v| v.name.as_str()).collect();
            format!("enum {{ {} }}", names.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    fn contract<Req, Rep>() -> MessageContract
    where
        Req: serde::de::DeserializeOwned + 'static,
        Rep: serde::de::DeserializeOwned + 'static,
    {
        MessageContract {
            name: "t.M".into(),
            version: 1,
            request: WireSchema::of::<Req>().unwrap(),
            reply: WireSchema::of::<Rep>().unwrap(),
        }
    }

    fn changes<A, B>() -> Vec<String>
    where
        A: serde::de::DeserializeOwned + 'static,
        B: serde::de::DeserializeOwned + 'static,
    {
        diff(&contract::<A, ()>(), &contract::<B, ()>())
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    mod v1 {
        use super::*;
        #[derive(Serialize, Deserialize)]
        pub(super) struct Order {
            pub id: u64,
            pub items: Vec<Item>,
            pub state: State,
        }
        #[derive(Serialize, Deserialize)]
        pub(super) struct Item {
            pub sku: String,
            pub qty: u32,
        }
        #[derive(Serialize, Deserialize)]
        pub(super) enum State {
            New,
            Paid(u64),
        }
    }
    mod v2 {
        use super::*;
        // Renamed type (`Line`), qty widened, a field added, variants reordered.
        #[derive(Serialize, Deserialize)]
        pub(super) struct Order {
            pub id: u64,
            pub items: Vec<Line>,
            pub state: State,
            pub note: Option<String>,
        }
        #[derive(Serialize, Deserialize)]
        pub(super) struct Line {
            pub sku: String,
            pub qty: u64,
        }
        #[derive(Serialize, Deserialize)]
        pub(super) enum State {
            Paid(u64),
            New,
        }
    }
    mod v3 {
        use super::*;
        #[derive(Serialize, Deserialize)]
        pub(super) struct Order {
            pub items: Vec<super::v1::Item>,
            pub id: u64,
        }
    }

    #[test]
    fn the_same_shape_has_no_changes() {
        assert!(changes::<v1::Order, v1::Order>().is_empty());
    }

    #[test]
    fn every_change_is_named_with_its_path() {
        let c = changes::<v1::Order, v2::Order>();
        assert_eq!(
            c,
            [
                "request: field `Order.note` added (Option<String>)",
                "request: `Order.items[].qty` changed type: u32 -> u64",
                "request: variants of `Order.state` reordered: [New, Paid] -> [Paid, New]",
            ]
        );
        let c = changes::<v1::Order, v3::Order>();
        assert_eq!(
            c,
            [
                "request: field `Order.state` removed (was State)",
                "request: fields of `Order` reordered: [id, items] -> [items, id]",
            ]
        );
    }

    #[test]
    fn replies_and_kinds_are_compared_too() {
        let c = diff(
            &contract::<(), Option<u64>>(),
            &contract::<(), Option<String>>(),
        );
        assert_eq!(
            c[0].to_string(),
            "reply: `(Option<u64>)` changed type: u64 -> String"
        );
        #[derive(Serialize, Deserialize)]
        struct A {
            x: u8,
        }
        #[derive(Serialize, Deserialize)]
        #[serde(rename = "A")]
        enum B {
            X(u8),
        }
        let c = changes::<A, B>();
        assert_eq!(
            c,
            ["request: `A` changed type: struct { x: u8 } -> enum { X }"]
        );
    }
}
