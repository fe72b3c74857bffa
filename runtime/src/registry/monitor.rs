//! Why a monitored instance is gone ([`Node::monitor`](crate::Node::monitor)).

use std::fmt;

use crate::lifecycle::ExitReason;

/// Why a monitored instance is gone, as
/// [`Node::monitor`](crate::Node::monitor) reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MonitorReason {
    /// It was not running when the monitor was set up.
    NotRunning,
    /// The instance, on this node, ended: how (a normal stop, a panic, a
    /// kill, a failed start).
    Exited(ExitReason),
    /// The instance, on another node, left that node's service table: it
    /// stopped, crashed or was restarted there (another node's table does
    /// not say which).
    LeftTable,
    /// Its node left the cluster or was declared down.
    NodeDown,
    /// This node stopped before the instance went away.
    NodeStopped,
}

impl fmt::Display for MonitorReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotRunning => f.write_str("not running"),
            Self::Exited(r) => r.fmt(f),
            Self::LeftTable => f.write_str(super::LEFT_TABLE),
            Self::NodeDown => f.write_str(super::NODE_DOWN),
            Self::NodeStopped => f.write_str("node stopped"),
        }
    }
}

impl MonitorReason {
    /// The reason of a remote instance's `RemoteRemoved` event.
    pub(crate) fn remote(why: &str) -> Self {
        if why == super::NODE_DOWN {
            Self::NodeDown
        } else {
            Self::LeftTable
        }
    }
}
