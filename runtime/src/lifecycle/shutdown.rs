//! How an instance is stopped: the per-child shutdown of OTP's child specs.

use std::time::Duration;

/// How a service's instances are stopped when the node shuts down, the
/// service is stopped (`Node::stop_service`, a tree's `terminate_child`)
/// or scaled down (OTP's child `shutdown`).
///
/// Whatever the setting, the node's own `shutdown(grace)` bounds the whole
/// shutdown: what still runs when `grace` is over is killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Shutdown {
    /// Asked to stop, each instance handles what is already in its mailbox;
    /// one still running after this long is killed.
    Timeout(Duration),
    /// Killed at once: the instance ends at its next await (its mailbox is
    /// dropped, its callers get an error). A handler that never yields
    /// cannot be stopped by anything in the process: it is reported in the
    /// log, not killed, and the stop waits for it.
    Brutal,
    /// Asked to stop, each instance handles what is already in its mailbox,
    /// however long that takes (the default; only the node's `grace` bounds
    /// it).
    #[default]
    Infinity,
}

/// How long after a kill an instance that has not ended is reported as
/// stuck in a handler that never yields.
pub(crate) const REPORT_STUCK_AFTER: Duration = Duration::from_secs(1);
