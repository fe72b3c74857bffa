//! A fixed list of seeds.

use super::{Discovery, SeedsFuture};

/// Seeds that never change, dialed as given (the transport resolves a name,
/// if it takes names, when it dials).
///
/// # Examples
/// ```
/// use msa_runtime::remote::discovery::{Discovery, StaticSeeds};
/// # actix_rt::System::new().block_on(async {
/// let seeds = StaticSeeds::new(["10.0.0.1:7000", "10.0.0.2:7000"]);
/// assert_eq!(seeds.seeds().await.unwrap().len(), 2);
/// # });
/// ```
#[derive(Debug, Clone, Default)]
pub struct StaticSeeds(Vec<String>);

impl StaticSeeds {
    /// These seeds.
    pub fn new<S: Into<String>>(seeds: impl IntoIterator<Item = S>) -> Self {
        Self(seeds.into_iter().map(Into::into).collect())
    }
}

impl Discovery for StaticSeeds {
    fn seeds(&self) -> SeedsFuture<'_> {
        let seeds = self.0.clone();
        Box::pin(async move { Ok(seeds) })
    }
}
