//! How an actor starts, ends and is restarted, below both the services and
//! the supervisors that run them: where an actor runs ([`Placement`]), how it
//! is launched so that its end is reported ([`launch`], under
//! `catch_unwind`, with a [`KillSwitch`]), the notices it sends its
//! supervisor ([`ReadyNotice`], [`ExitNotice`]) and the policy vocabulary a
//! spec is written in ([`Restart`], [`Strategy`], [`Intensity`],
//! [`Backoff`], [`ExitReason`]).
//!
//! The public types are re-exported from [`supervision`](crate::supervision)
//! and the crate root, where users name them.

mod backoff;
mod batch;
mod exit;
pub(crate) mod home;
mod intensity;
mod launch;
mod shutdown;
mod strategy;

pub use backoff::Backoff;
pub(crate) use batch::LaunchBatch;
pub use exit::{ExitReason, StartError};
pub use intensity::Intensity;
pub use shutdown::Shutdown;
pub(crate) use shutdown::REPORT_STUCK_AFTER;
pub use strategy::{Restart, Strategy};

pub(crate) use exit::panic_message;
pub(crate) use intensity::RestartWindow;
pub(crate) use launch::{
    launch, launch_with_end, ChildExited, ChildReady, ExitNotice, KillSwitch, OnExit, Placement,
    ReadyNotice, SupervisorLink,
};
