//! Nodes on the in-memory network with the split-brain resolver on: what
//! the join and split-brain tests build their clusters of.

use std::time::Duration;

use msa_runtime::prelude::*;
use msa_runtime::remote::split_brain::{SplitBrainConfig, SplitBrainStrategy};
use msa_runtime::remote::transport::MemoryNetwork;

use super::memory_builder;

/// Failure detection of these nodes: shorter than the default keeps the
/// tests short; long enough not to misfire on a loaded 2-core machine.
pub const DETECTION: Duration = Duration::from_secs(2);
/// The resolver's stable-after time.
pub const STABLE: Duration = Duration::from_secs(2);

/// The builder of a node on `net` at `name:0`, joined through `seed`,
/// proving `secret`, with [`DETECTION`] and the resolver's `strategy` after
/// [`STABLE`].
pub fn resolver_builder(
    net: &MemoryNetwork,
    name: &str,
    seed: Option<&Node>,
    secret: &[u8],
    strategy: SplitBrainStrategy,
) -> msa_runtime::NodeBuilder {
    memory_builder(net, name, seed, secret)
        .failure_detection(DETECTION)
        .split_brain(SplitBrainConfig::new(strategy, STABLE).unwrap())
}
