//! A registration-time check that a message type survives bincode.
//!
//! bincode 2's serde mode cannot decode types that need `deserialize_any`
//! (internally tagged or untagged enums, `#[serde(flatten)]`,
//! `serde_json::Value`), and `skip_serializing_if` makes the encoder write
//! fewer fields than the decoder reads. Neither shows up until the first
//! message crosses nodes. serde-reflection (a tracer of serde formats, from
//! the Diem/Zefchain projects) deserializes a type from a tracing
//! deserializer that refuses `deserialize_any`, and hands back a sample
//! value, which must then survive an encode/decode round trip with the wire
//! codec. A type the tracer cannot build (a custom `Deserialize` that
//! validates its input) is given the benefit of the doubt: only a definite
//! failure is reported.
//!
//! What it cannot see: `skip_serializing_if` only skips for some values
//! (the tracer's sample of an `Option` is `Some`), so that one is left to
//! round-trip tests with real samples (`codec::roundtrip`).

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use serde::{de::DeserializeOwned, Serialize};
use serde_reflection::{Error as TraceError, Samples, Tracer, TracerConfig};

/// Verdicts so far, per type: a type is traced once per process.
static CHECKED: LazyLock<Mutex<HashMap<TypeId, Result<(), String>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// Whether values of `T` survive the wire codec; `Err` says why not.
pub(crate) fn check<T: Serialize + DeserializeOwned + 'static>() -> Result<(), String> {
    let id = TypeId::of::<T>();
    if let Some(v) = CHECKED.lock().ok().and_then(|m| m.get(&id).cloned()) {
        return v;
    }
    let verdict = trace::<T>();
    if let Ok(mut m) = CHECKED.lock() {
        m.insert(id, verdict.clone());
    }
    verdict
}

fn trace<T: Serialize + DeserializeOwned>() -> Result<(), String> {
    let samples = Samples::new();
    let mut tracer = Tracer::new(TracerConfig::default());
    let sample: T = match tracer.trace_type_once::<T>(&samples) {
        Ok((_, sample)) => sample,
        Err(TraceError::NotSupported(what)) => {
            return Err(format!(
                "its Deserialize needs `{what}`, which bincode cannot decode (internally \
                 tagged or untagged enums, #[serde(flatten)], serde_json::Value)"
            ))
        }
        // Validating deserializers and the like: cannot tell, so let it be.
        Err(_) => return Ok(()),
    };
    match super::codec::roundtrip(&sample) {
        Ok(_) => Ok(()),
        Err(e) => Err(format!(
            "a sample value does not survive an encode/decode round trip ({e}); \
             #[serde(skip_serializing_if)] is a common cause"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Serialize, Deserialize)]
    struct Plain {
        id: u64,
        name: String,
        tags: Vec<String>,
        kind: Kind,
        maybe: Option<u32>,
    }
    #[derive(Serialize, Deserialize)]
    enum Kind {
        A,
        B(u32),
    }

    #[derive(Serialize, Deserialize)]
    #[serde(tag = "t")]
    enum Tagged {
        A { x: u32 },
    }

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Untagged {
        A(u32),
    }

    #[derive(Serialize, Deserialize)]
    struct Skips {
        #[serde(skip_serializing_if = "Option::is_none")]
        maybe: Option<u32>,
        after: u64,
    }

    #[derive(Serialize, Deserialize)]
    struct Inner {
        x: u32,
    }
    #[derive(Serialize, Deserialize)]
    struct Flat {
        #[serde(flatten)]
        inner: Inner,
    }

    #[test]
    fn plain_types_pass() {
        assert_eq!(check::<Plain>(), Ok(()));
        assert_eq!(check::<(u64, Option<String>, Vec<u8>)>(), Ok(()));
        assert_eq!(check::<()>(), Ok(()));
    }

    #[test]
    fn types_bincode_cannot_carry_are_named() {
        for (name, verdict) in [
            ("tagged", check::<Tagged>()),
            ("untagged", check::<Untagged>()),
            ("flatten", check::<Flat>()),
            ("json value", check::<serde_json::Value>()),
        ] {
            assert!(verdict.is_err(), "{name} passed");
        }
        assert!(check::<Tagged>().unwrap_err().contains("deserialize_any"));
        // Not visible to the tracer (its sample of an Option is Some): the
        // round trip of a real sample with `None` catches it.
        assert_eq!(check::<Skips>(), Ok(()));
        let s = Skips {
            maybe: None,
            after: 7,
        };
        assert!(crate::codec::roundtrip(&s).is_err());
    }
}
