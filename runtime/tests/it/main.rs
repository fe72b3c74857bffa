//! The runtime's integration tests, in one binary: a module per area and
//! `support` for the services and helpers they share.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

mod access;
mod actix_behaviour;
mod addr;
mod backpressure;
mod basics;
mod calls_anywhere;
mod cluster;
mod discovery;
mod faults;
mod flow_control;
mod groups;
mod groups_faults;
mod heal;
mod hostile;
mod join;
mod live;
mod local;
mod member_states;
mod memory_transport;
mod node_tasks;
mod observability;
mod reach;
mod registry;
mod shutdown;
mod split_brain;
mod stats;
mod supervision;
mod supervision_live;
mod supervision_otp;
mod threads;
mod tls;
mod topics;
mod trace;
