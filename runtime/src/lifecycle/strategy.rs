//! Restart strategies and restart policies.

/// Which children a supervisor restarts when one fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Strategy {
    /// Only the child that failed.
    #[default]
    OneForOne,
    /// Every child: the others are stopped (in reverse order) and all are
    /// started again in order.
    OneForAll,
    /// The failed child and every child started after it.
    RestForOne,
}

/// When a child is restarted after it exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Restart {
    /// Always (the default).
    #[default]
    Permanent,
    /// Only after a failure (a panic, a failed start, an escalation); a normal
    /// stop ends it.
    Transient,
    /// Never.
    Temporary,
}
