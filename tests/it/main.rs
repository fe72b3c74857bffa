//! The `msa` command's integration tests, in one binary: they run the real
//! `msa` binary as separate processes; `support` starts and always kills
//! them, reads their ready lines and polls under deadlines.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

mod cli_access;
mod cli_addr;
mod cli_bench_gateway;
mod cli_bench_html;
mod cli_bench_local;
mod cli_bench_remote;
mod cli_bench_streams;
mod cli_cert;
mod cli_commands;
mod cli_contracts;
mod cli_discovery;
mod cli_failover;
mod cli_faults;
mod cli_gateway;
mod cli_groups_kill;
mod cli_services;
mod cli_shop_stream;
mod cli_sim;
mod cli_split_brain;
mod host;
mod idle;
mod ops;
mod sigterm;
