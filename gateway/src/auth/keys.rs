//! Verification keys: one fixed key from the config, and the keys of a
//! JWKS document picked by `kid`.

use std::collections::HashMap;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

/// A key and the one algorithm it verifies.
#[derive(Clone)]
pub(crate) struct Key {
    pub(crate) alg: Algorithm,
    pub(crate) key: DecodingKey,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key stays out of logs.
        f.debug_struct("Key").field("alg", &self.alg).finish()
    }
}

/// The keys of a JWKS document: by `kid`, plus the only key when the
/// document has exactly one (tokens without a `kid` may use it).
#[derive(Debug, Clone, Default)]
pub(crate) struct KeySet {
    by_kid: HashMap<String, Key>,
    only: Option<Key>,
}

impl KeySet {
    /// Parses a JWKS document (`{"keys": [...]}`). Keys of another kind
    /// (RSA-OAEP encryption keys, P-384, Ed25519, malformed entries) are
    /// skipped with a warning, so that one exotic key does not lock every
    /// caller out; a document with no usable key is an error.
    pub(crate) fn parse(json: &[u8]) -> Result<Self, String> {
        let doc: Value = serde_json::from_slice(json).map_err(|e| format!("not JSON: {e}"))?;
        let Some(keys) = doc.get("keys").and_then(Value::as_array) else {
            return Err("no `keys` array".into());
        };
        let mut set = KeySet::default();
        let mut usable = Vec::new();
        for (i, raw) in keys.iter().enumerate() {
            let jwk: Jwk = match serde_json::from_value(raw.clone()) {
                Ok(j) => j,
                Err(e) => {
                    tracing::warn!(index = i, error = %e, "JWKS: skipping a malformed key");
                    continue;
                }
            };
            let kid = jwk.common.key_id.clone();
            match key_of(&jwk) {
                Ok(key) => usable.push((kid, key)),
                Err(why) => tracing::warn!(index = i, kid = ?kid, why, "JWKS: skipping a key"),
            }
        }
        if usable.is_empty() {
            return Err("no usable key (RS256, ES256 or HS256)".into());
        }
        if usable.len() == 1 {
            set.only = Some(usable[0].1.clone());
        }
        for (kid, key) in usable {
            if let Some(kid) = kid {
                set.by_kid.insert(kid, key);
            }
        }
        Ok(set)
    }

    /// The key named `kid`.
    pub(crate) fn get(&self, kid: &str) -> Option<&Key> {
        self.by_kid.get(kid)
    }

    /// The document's only key, if it has exactly one.
    pub(crate) fn only(&self) -> Option<&Key> {
        self.only.as_ref()
    }

    /// Keys held.
    pub(crate) fn len(&self) -> usize {
        self.by_kid.len().max(usize::from(self.only.is_some()))
    }

    /// Whether `other` holds the same key ids (a refresh that changed
    /// nothing keeps the token cache).
    pub(crate) fn same_kids(&self, other: &KeySet) -> bool {
        self.by_kid.len() == other.by_kid.len()
            && self.by_kid.keys().all(|k| other.by_kid.contains_key(k))
            && self.only.is_some() == other.only.is_some()
    }
}

/// The key of a JWK and its algorithm: the JWK's `alg` when it names one,
/// else implied by the key type (RSA: RS256, EC P-256: ES256, oct: HS256).
fn key_of(jwk: &Jwk) -> Result<Key, &'static str> {
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return Err("an encryption key (`use: enc`)");
    }
    let implied = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => Algorithm::ES256,
        AlgorithmParameters::OctetKey(_) => Algorithm::HS256,
        _ => return Err("a key type other than RSA, EC P-256 or oct"),
    };
    let alg = match jwk.common.key_algorithm {
        None => implied,
        Some(KeyAlgorithm::RS256) => Algorithm::RS256,
        Some(KeyAlgorithm::ES256) => Algorithm::ES256,
        Some(KeyAlgorithm::HS256) => Algorithm::HS256,
        Some(_) => return Err("an algorithm other than RS256, ES256 or HS256"),
    };
    if alg != implied {
        return Err("an `alg` that does not fit the key type");
    }
    let key = DecodingKey::from_jwk(jwk).map_err(|_| "unreadable key material")?;
    Ok(Key { alg, key })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usable_keys_are_kept_and_others_skipped() {
        let doc = serde_json::json!({"keys": [
            {"kty": "oct", "kid": "h", "k": "c2VjcmV0"},
            {"kty": "oct", "kid": "enc", "use": "enc", "k": "c2VjcmV0"},
            {"kty": "oct", "kid": "h512", "alg": "HS512", "k": "c2VjcmV0"},
            {"kty": "RSA", "kid": "bad-alg", "alg": "ES256", "n": "AQAB", "e": "AQAB"},
            {"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": "AAAA"},
            {"kty": "what"},
            "not an object",
        ]});
        let set = KeySet::parse(doc.to_string().as_bytes()).unwrap();
        assert_eq!(set.len(), 1);
        assert_eq!(set.get("h").unwrap().alg, Algorithm::HS256);
        assert!(set.get("enc").is_none() && set.get("h512").is_none());
        assert!(set.only().is_some());
        for bad in [
            &b"{}"[..],
            b"[]",
            b"nope",
            br#"{"keys": []}"#,
            br#"{"keys": [{"kty": "x"}]}"#,
        ] {
            assert!(KeySet::parse(bad).is_err());
        }
    }
}
