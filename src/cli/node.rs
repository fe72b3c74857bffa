//! `msa node`: the host (`msa::host`) running the ready-made services the
//! config names, until Ctrl-C or SIGTERM. Its flags, TOML keys, `MSA_*`
//! variables and ready line are the host's (docs/host.md, docs/deploy.md);
//! `--demo-policy` is its own.

use anyhow::bail;
use clap::Args;
use msa::host::{Host, HostArgs};

pub(crate) use msa::host::{ReadyLine, StopSignals};

/// Options of `msa node`: the host's, and the shop demo's policy.
#[derive(Debug, Args)]
pub(crate) struct NodeArgs {
    #[command(flatten)]
    host: HostArgs,
    /// Add the shop demo's access policy and routes (POST /orders, GET
    /// /orders/{id}) to the gateway, and the shop's own access rules to the
    /// shop services this node runs
    #[arg(long)]
    demo_policy: bool,
}

/// Runs `msa node`.
pub(crate) fn run(args: NodeArgs) -> anyhow::Result<()> {
    let mut host = Host::from_host_args(args.host)?;
    if args.demo_policy {
        if !host.has_gateway() {
            bail!("--demo-policy needs a gateway: add --gateway IP:PORT or a [gateway] table");
        }
        host = host
            .policy(super::cluster::demo_policy())
            .gateway_routes(super::cluster::demo_routes())
            .access(super::cluster::demo_access())?;
    }
    host.run()?;
    Ok(())
}
