//! The gateway's integration tests, in one binary: a module per area and
//! `support` for the services, fixture and HTTP helpers they share.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

mod access;
mod auth;
mod bounds;
mod calls;
mod cors;
mod crash;
mod garbage;
mod grpc;
mod grpc_tls;
mod https;
mod jwks;
mod lifecycle;
mod live;
mod live_spans;
mod metrics;
mod openapi;
mod ops;
mod reach;
mod split_brain;
mod topics;
mod trace_across_nodes;
