//! Helpers for msa's own tests (this crate's, the gateway's, the actors'):
//! not part of the API, and hidden from the docs.

use std::future::Future;
use std::time::{Duration, Instant};

/// Polls `cond` every few milliseconds until it holds, for a state that
/// changes on other threads and announces itself with no event.
///
/// # Panics
/// When `cond` still does not hold after `within`, naming `what` was
/// awaited.
///
/// # Examples
/// ```
/// # use std::time::Duration;
/// # actix_rt::System::new().block_on(async {
/// msa_runtime::test_support::eventually("one plus one", Duration::from_secs(1), || async {
///     1 + 1 == 2
/// })
/// .await;
/// # });
/// ```
pub async fn eventually<F, Fut>(what: &str, within: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let t0 = Instant::now();
    while !cond().await {
        assert!(
            t0.elapsed() < within,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
