//! # msa-gateway
//!
//! HTTP ingress for an msa node (skeleton: filled in by the gateway work).

mod metrics;
