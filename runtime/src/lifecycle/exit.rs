//! How an actor ended.

use std::any::Any;
use std::fmt;

/// How a supervised child ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExitReason {
    /// It stopped itself or was asked to stop (a normal exit).
    Stopped,
    /// A handler, hook or actor future panicked.
    Panicked(String),
    /// Its factory panicked, so it never ran.
    StartFailed(String),
    /// It was killed by its supervisor (a sibling's restart, or a shutdown deadline).
    Killed,
    /// A child supervisor gave up after exceeding its restart intensity.
    Escalated(String),
}

impl ExitReason {
    /// Whether this counts as a failure (restarts a `transient` child).
    pub fn is_failure(&self) -> bool {
        matches!(
            self,
            Self::Panicked(_) | Self::StartFailed(_) | Self::Escalated(_)
        )
    }
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Stopped => f.write_str("stopped"),
            Self::Panicked(m) => write!(f, "panicked: {m}"),
            Self::StartFailed(m) => write!(f, "start failed: {m}"),
            Self::Killed => f.write_str("killed"),
            Self::Escalated(m) => write!(f, "escalated: {m}"),
        }
    }
}

/// The message of a panic payload.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}
