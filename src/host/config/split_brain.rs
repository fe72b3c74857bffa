//! The `[split_brain]` table: the node's split-brain policy
//! (docs/cluster.md, "Split-brain resolver").
//!
//! ```toml
//! [split_brain]                  # MSA_SPLIT_BRAIN_STRATEGY, MSA_SPLIT_BRAIN_STABLE_AFTER, …
//! strategy = "keep-majority"     # keep-majority | static-quorum | keep-oldest | off
//! stable_after = "5s"            # ms, s or m, or a number of milliseconds
//! # quorum_size = 2              # static-quorum only (or strategy = "static-quorum:2")
//! ```

use crate::remote::split_brain::{SplitBrainConfig, SplitBrainStrategy};
use anyhow::Context;
use serde::Deserialize;

/// A duration: a number of milliseconds, or text like `500ms`, `5s`, `1m`
/// (a number in text, as an environment variable gives it, is
/// milliseconds too).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Millis {
    Number(u64),
    Text(String),
}

/// The `[split_brain]` table as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SplitBrainFile {
    strategy: Option<String>,
    stable_after: Option<Millis>,
    quorum_size: Option<u64>,
}

impl SplitBrainFile {
    /// The policy, the defaults filling what is not set; `None` when the
    /// table is absent or empty (the node's default policy).
    pub(super) fn resolve(self) -> anyhow::Result<Option<SplitBrainConfig>> {
        if self.strategy.is_none() && self.stable_after.is_none() && self.quorum_size.is_none() {
            return Ok(None);
        }
        let default = SplitBrainConfig::default();
        let quorum = self
            .quorum_size
            .map(|n| usize::try_from(n).context("split_brain.quorum_size is too large"))
            .transpose()?;
        let strategy = match (self.strategy.as_deref(), quorum) {
            (Some(s), q) => SplitBrainStrategy::parse(s, q)
                .with_context(|| format!("invalid split_brain.strategy `{s}`"))?,
            (None, None) => default.strategy,
            (None, Some(q)) => SplitBrainStrategy::parse("static-quorum", Some(q))
                .context("invalid split_brain.quorum_size")?,
        };
        let stable_after = match self.stable_after {
            None => default.stable_after,
            Some(Millis::Number(ms)) => std::time::Duration::from_millis(ms),
            Some(Millis::Text(t)) => match t.trim().parse::<u64>() {
                Ok(ms) => std::time::Duration::from_millis(ms),
                Err(_) => super::parse_interval(&t).with_context(|| {
                    format!("split_brain.stable_after `{t}` is not a duration like 500ms, 5s or 1m")
                })?,
            },
        };
        let policy = SplitBrainConfig::new(strategy, stable_after)
            .context("invalid [split_brain] policy")?;
        Ok(Some(policy))
    }
}
