//! The four peers behind one [`Endpoint`] trait, so that every scenario's
//! loop is written once and runs the very same code around each call.
//!
//! Each peer is written as its own documentation shows: msa a
//! [`msa_runtime::ServiceSpec`] with `Handler`s, raw actix an `Actor` with
//! `Handler`s, ractor an `Actor` with an enum message and `call!`/`cast`,
//! kameo a `#[derive(Actor)]` with `Message` impls and `ask`/`tell`.

pub(crate) mod actix_raw;
pub(crate) mod kameo_peer;
pub(crate) mod msa;
pub(crate) mod ractor_peer;

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The peers compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Peer {
    Msa,
    Actix,
    Ractor,
    Kameo,
}

impl Peer {
    /// Every peer, in the order of the table's columns.
    pub(crate) const ALL: [Peer; 4] = [Self::Msa, Self::Actix, Self::Ractor, Self::Kameo];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Msa => "msa",
            Self::Actix => "actix",
            Self::Ractor => "ractor",
            Self::Kameo => "kameo",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == s)
    }
}

/// One way to talk to a counting sink.
pub(crate) trait Endpoint: Clone + Send + Sync + 'static {
    /// Sends a one-way `Hit` (awaits only where the peer's own tell does,
    /// e.g. kameo's bounded mailbox).
    fn tell(&self) -> impl Future<Output = anyhow::Result<()>> + Send;
    /// Sends a `Bump` and waits for the sink's new count.
    fn bump(&self) -> impl Future<Output = anyhow::Result<u64>> + Send;
}

/// What every sink does with a message: count it, and add it to an optional
/// probe shared by many sinks (the spawn scenario watches the probe).
#[derive(Debug, Default)]
pub(crate) struct Tally {
    count: u64,
    probe: Option<Arc<AtomicU64>>,
}

impl Tally {
    pub(crate) fn with_probe(probe: Arc<AtomicU64>) -> Self {
        Self {
            count: 0,
            probe: Some(probe),
        }
    }

    #[inline]
    pub(crate) fn hit(&mut self) -> u64 {
        self.count += 1;
        if let Some(p) = &self.probe {
            p.fetch_add(1, Ordering::Relaxed);
        }
        self.count
    }
}
