//! Helpers for msa's own tests (this crate's, the gateway's, the actors'):
//! not part of the API, and hidden from the docs. Prefer waiting for an
//! event ([`next_event`]) to polling ([`eventually`]) where one exists.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::{RegistryEvent, RegistryWatch};

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

/// Waits for the next event of `watch` that `pred` accepts, and returns it.
///
/// # Panics
/// When none comes within `within`, naming `what` was awaited, or when the
/// watch closes first.
pub async fn next_event<P>(
    what: &str,
    within: Duration,
    watch: &mut RegistryWatch,
    mut pred: P,
) -> RegistryEvent
where
    P: FnMut(&RegistryEvent) -> bool,
{
    let found = tokio::time::timeout(within, async {
        while let Some(e) = watch.next().await {
            if pred(&e) {
                return Some(e);
            }
        }
        None
    })
    .await;
    match found {
        Ok(Some(e)) => e,
        Ok(None) => panic!("the registry watch closed while waiting for {what}"),
        Err(_) => panic!("timed out after {within:?} waiting for {what}"),
    }
}

/// Waits until `watch` has seen an instance of each of `services` on
/// another node, in any order.
///
/// # Panics
/// As [`next_event`], after `within`.
pub async fn remote_added(within: Duration, watch: &mut RegistryWatch, services: &[&str]) {
    let mut left: Vec<&str> = services.to_vec();
    let what = format!("{} on another node", services.join(" and "));
    let t0 = Instant::now();
    while !left.is_empty() {
        let e = next_event(&what, within.saturating_sub(t0.elapsed()), watch, |e| {
            matches!(e, RegistryEvent::RemoteAdded { service, .. } if left.contains(&service.as_str()))
        })
        .await;
        if let RegistryEvent::RemoteAdded { service, .. } = e {
            left.retain(|s| *s != service);
        }
    }
}

/// This process's resident set size in bytes, from `VmRSS` in
/// `/proc/self/status`; `None` where that cannot be read (not Linux).
pub fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())?;
    Some(kb * 1024)
}

/// The variable that marks a test binary started by [`in_own_process`].
const ALONE_VAR: &str = "MSA_TEST_IN_OWN_PROCESS";

/// Runs the test `name` (its path inside the test binary, e.g.
/// `flow_control::a_producer_…`) alone in a child process of this test
/// binary, for tests that measure the whole process (its resident set
/// size): other tests running on other threads of the same process would
/// count in it. Returns `true` in that child, where the caller runs the
/// test's body; in the parent it waits for the child, panics with its
/// output if it failed, and returns `false`.
///
/// # Panics
/// When the child cannot be started or its test fails.
pub fn in_own_process(name: &str) -> bool {
    if std::env::var_os(ALONE_VAR).is_some() {
        return true;
    }
    let out = match std::env::current_exe().and_then(|exe| {
        std::process::Command::new(exe)
            .args([name, "--exact", "--nocapture", "--test-threads=1"])
            .env(ALONE_VAR, "1")
            .output()
    }) {
        Ok(out) => out,
        Err(e) => panic!("cannot start the test binary again for {name}: {e}"),
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stderr}");
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{name} in its own process: {}\n{stdout}\n{stderr}",
        out.status
    );
    false
}
