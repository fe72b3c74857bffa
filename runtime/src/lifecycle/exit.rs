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
    /// Its factory panicked (or its fallible factory failed), so it never ran.
    StartFailed(String),
    /// It was killed by its supervisor (a sibling's restart, or a shutdown deadline).
    Killed,
    /// A child supervisor gave up after exceeding its restart intensity.
    Escalated(String),
    /// Its fallible factory returned [`StartError::Ignore`]: it was not
    /// started and is not restarted (OTP's `ignore`); not a failure.
    Ignored,
}

/// Why a fallible factory ([`ServiceSpec::try_new`](crate::ServiceSpec::try_new))
/// did not make an instance.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// Do not run this instance, and do not restart it (OTP's `ignore`).
    /// Not a failure: `spawn` succeeds, and a service whose instances all
    /// ignored their start is `Stopped`.
    #[error("start ignored")]
    Ignore,
    /// The start failed, as a panicking factory would: a first start makes
    /// `spawn` return `SpawnError::StartFailed` with this reason; a failing
    /// restart counts against the restart intensity.
    #[error("{reason}")]
    Failed {
        /// Why.
        reason: String,
    },
}

impl StartError {
    /// [`StartError::Failed`] with `reason`.
    pub fn failed(reason: impl Into<String>) -> Self {
        Self::Failed {
            reason: reason.into(),
        }
    }
}

impl From<StartError> for ExitReason {
    fn from(e: StartError) -> Self {
        match e {
            StartError::Ignore => Self::Ignored,
            StartError::Failed { reason } => Self::StartFailed(reason),
        }
    }
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
            Self::Ignored => f.write_str("start ignored"),
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
