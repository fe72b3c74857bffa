//! A bounded cache of verified tokens: the exact token string to the claims
//! its verification produced (identity, `exp`, `nbf`).
//!
//! Clients send the same bearer token on every request until it expires, and
//! checking its signature (base64, JSON, HMAC or RSA/ECDSA) is the most
//! expensive step of a call after HTTP itself. So a token that verified once
//! is remembered, keyed by the whole token string: a token that differs in
//! any byte (another signature, another claim) is a different key and goes
//! through full verification. What the cache skips is only the signature
//! and the claim parsing; the caller still checks `exp` and `nbf` against
//! the clock on every use (see [`Authenticator`](super::Authenticator)).
//!
//! Bounded: [`SHARDS`] shards, picked by the token's last bytes (its
//! signature), each a mutex over two generations of at most
//! `capacity / SHARDS / 2` entries. New entries go into the current
//! generation; when it is full it becomes the previous one (the old
//! previous one is dropped wholesale); a hit in the previous generation
//! moves the entry back to the current one. Tokens in use survive, tokens
//! not seen for a while fall out, and no shard ever holds more than its
//! share.

use std::collections::HashMap;

use msa_runtime::Identity;
use parking_lot::Mutex;

/// Shards of the cache (a power of two).
pub(crate) const SHARDS: usize = 16;

/// Longest token kept (bytes): bounds the memory of a full cache.
pub(crate) const MAX_TOKEN_BYTES: usize = 4096;

/// What a successful verification of a token established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VerifiedClaims {
    /// The caller (`sub` and the roles claim).
    pub(crate) identity: Identity,
    /// The `exp` claim, seconds since the Unix epoch.
    pub(crate) exp: u64,
    /// The `nbf` claim, if the token has one.
    pub(crate) nbf: Option<u64>,
}

#[derive(Debug, Default)]
struct Shard {
    current: HashMap<Box<str>, VerifiedClaims>,
    previous: HashMap<Box<str>, VerifiedClaims>,
}

impl Shard {
    fn insert(&mut self, token: Box<str>, claims: VerifiedClaims, generation: usize) {
        if self.current.len() >= generation && !self.current.contains_key(&token) {
            self.previous = std::mem::take(&mut self.current);
        }
        self.current.insert(token, claims);
    }
}

/// The cache; see the module docs.
#[derive(Debug)]
pub(crate) struct TokenCache {
    shards: Box<[Mutex<Shard>]>,
    /// Entries per generation per shard.
    generation: usize,
}

impl TokenCache {
    /// A cache of at most `capacity` tokens (rounded down to a multiple of
    /// `2 * SHARDS`, at least one entry per generation per shard).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            generation: (capacity / SHARDS / 2).max(1),
        }
    }

    /// Most tokens the cache holds at once.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.generation * 2 * SHARDS
    }

    fn shard(&self, token: &str) -> &Mutex<Shard> {
        // The last bytes are the signature's: uniform for honest tokens.
        let b = token.as_bytes();
        let mut tail = [0u8; 8];
        let n = b.len().min(8);
        tail[..n].copy_from_slice(&b[b.len() - n..]);
        let h = u64::from_le_bytes(tail).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let index = (h >> 32) as usize & (SHARDS - 1);
        &self.shards[index]
    }

    /// The claims `token` verified to, if it is cached.
    pub(crate) fn get(&self, token: &str) -> Option<VerifiedClaims> {
        let mut shard = self.shard(token).lock();
        if let Some(c) = shard.current.get(token) {
            return Some(c.clone());
        }
        // Still in use: back into the current generation.
        let (key, claims) = shard.previous.remove_entry(token)?;
        shard.insert(key, claims.clone(), self.generation);
        Some(claims)
    }

    /// Remembers that `token` verified to `claims` (a token longer than
    /// [`MAX_TOKEN_BYTES`] is not kept).
    pub(crate) fn insert(&self, token: &str, claims: VerifiedClaims) {
        if token.len() > MAX_TOKEN_BYTES {
            return;
        }
        self.shard(token)
            .lock()
            .insert(token.into(), claims, self.generation);
    }

    /// Forgets every token (the keys changed).
    pub(crate) fn clear(&self) {
        for shard in self.shards.iter() {
            let mut s = shard.lock();
            s.current.clear();
            s.previous.clear();
        }
    }

    /// Tokens held now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let s = s.lock();
                s.current.len() + s.previous.len()
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(n: u64) -> VerifiedClaims {
        VerifiedClaims {
            identity: Identity::new(format!("user{n}"), ["r"]),
            exp: n,
            nbf: None,
        }
    }

    #[test]
    fn stays_bounded_and_keeps_tokens_in_use() {
        let cache = TokenCache::new(256);
        assert_eq!(cache.capacity(), 256);
        cache.insert("hot.token.sig", claims(0));
        for n in 1..5_000u64 {
            cache.insert(&format!("header.payload.{n:08}"), claims(n));
            assert!(cache.len() <= cache.capacity());
            // A token in use is looked up all the time and survives.
            assert_eq!(cache.get("hot.token.sig"), Some(claims(0)), "after {n}");
        }
        // Tokens not used for a while were dropped.
        assert_eq!(cache.get("header.payload.00000001"), None);
        assert_eq!(
            cache.get("header.payload.00004999").map(|c| c.exp),
            Some(4_999)
        );
    }

    #[test]
    fn keys_are_whole_token_strings() {
        let cache = TokenCache::new(64);
        cache.insert("a.b.signature", claims(1));
        assert_eq!(cache.get("a.b.signature"), Some(claims(1)));
        for other in [
            "a.b.signaturf",
            "a.b.signatur",
            "a.b.signature ",
            "x.b.signature",
            "",
        ] {
            assert_eq!(cache.get(other), None, "{other:?}");
        }
        cache.insert(&"x".repeat(MAX_TOKEN_BYTES + 1), claims(2));
        assert_eq!(cache.len(), 1);
    }
}
