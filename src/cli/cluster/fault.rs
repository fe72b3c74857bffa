//! `msa cluster partition | heal | slow`: network faults injected inside
//! the nodes' transport (no root, no firewall); see "Fault injection" in
//! docs/cluster.md.

use std::time::Duration;

use anyhow::{anyhow, bail};
use clap::Args;
use msa::remote::{FaultError, FaultReport, FaultRequest, StatusError};

use super::target::{block_on, Member, Target, TargetArgs};

/// The largest delay `slow` accepts.
const MAX_DELAY: Duration = Duration::from_secs(60);

/// Options of `msa cluster partition`.
#[derive(Debug, Args)]
#[command(after_help = "\
Every node of the first group stops exchanging frames with every node of the second \
(data, gossip and new connections), as behind a firewall that drops packets: the nodes \
find out by their own failure detection. `msa cluster heal` ends it.")]
pub(crate) struct PartitionArgs {
    /// The first group: node names, comma-separated (node1,node2)
    #[arg(value_name = "GROUP_A", value_parser = parse_group)]
    a: Group,
    /// The second group (node3)
    #[arg(value_name = "GROUP_B", value_parser = parse_group)]
    b: Group,
    /// Drop only what the first group sends the second (over TCP this also
    /// stops new connections both ways: a handshake needs both directions)
    #[arg(long)]
    one_way: bool,
    #[command(flatten)]
    target: TargetArgs,
}

/// Options of `msa cluster heal`.
#[derive(Debug, Args)]
pub(crate) struct HealArgs {
    #[command(flatten)]
    target: TargetArgs,
}

/// Options of `msa cluster slow`.
#[derive(Debug, Args)]
pub(crate) struct SlowArgs {
    /// The node whose incoming frames are delayed
    node: String,
    /// Added to every frame the node receives from another node (e.g.
    /// 50ms, 1.5s; 0 clears)
    #[arg(long, value_parser = parse_delay)]
    delay: Duration,
    #[command(flatten)]
    target: TargetArgs,
}

/// Options of `msa cluster down` and `msa cluster leave`.
#[derive(Debug, Args)]
pub(crate) struct MemberArgs {
    /// The member's name
    node: String,
    #[command(flatten)]
    target: TargetArgs,
}

/// Node names given as one comma-separated argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Group(pub(crate) Vec<String>);

/// A comma-separated list of node names: none empty, none twice.
pub(crate) fn parse_group(s: &str) -> Result<Group, String> {
    let names: Vec<String> = s.split(',').map(|n| n.trim().to_string()).collect();
    if names.iter().any(String::is_empty) {
        return Err(format!("{s:?} is not a comma-separated list of node names"));
    }
    for (i, n) in names.iter().enumerate() {
        if names[..i].contains(n) {
            return Err(format!("{n} is named twice"));
        }
    }
    Ok(Group(names))
}

/// A delay such as `50ms`, `2s`, `1.5s` or `0`, at most [`MAX_DELAY`].
pub(crate) fn parse_delay(s: &str) -> Result<Duration, String> {
    let bad = || format!("{s:?} is not a delay such as 50ms, 2s or 1.5s");
    let s = s.trim();
    let d = if s == "0" {
        Duration::ZERO
    } else {
        let (num, unit) = if let Some(n) = s.strip_suffix("ms") {
            (n, 1e-3)
        } else if let Some(n) = s.strip_suffix('s') {
            (n, 1.0)
        } else {
            return Err(bad());
        };
        let v: f64 = num.trim().parse().map_err(|_| bad())?;
        Duration::try_from_secs_f64(v * unit).map_err(|_| bad())?
    };
    if d > MAX_DELAY {
        return Err(format!("{s} is over the limit of {MAX_DELAY:?}"));
    }
    Ok(d)
}

/// One line per node: what it now drops and delays.
fn describe(r: &FaultReport) -> String {
    let list = |s: &std::collections::BTreeSet<String>| {
        if s.is_empty() {
            "-".to_string()
        } else {
            s.iter().cloned().collect::<Vec<_>>().join(",")
        }
    };
    format!(
        "{}: drops frames from {}; drops frames to {}; delay {} ms",
        r.node,
        list(&r.rules.cut_in),
        list(&r.rules.cut_out),
        r.rules.delay_in_ms
    )
}

/// Sends each request; prints each answer; fails if any failed.
async fn send_all(target: &Target, plan: Vec<(&Member, FaultRequest)>) -> anyhow::Result<()> {
    let mut failed = Vec::new();
    for (m, req) in plan {
        match target.send(m, req).await {
            Ok(r) => println!("{}", describe(&r)),
            Err(e) => failed.push(format!("{} ({}): {e}", m.name, m.addr)),
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(anyhow!("failed on {}", failed.join("; ")))
    }
}

/// Runs `msa cluster partition`.
pub(crate) fn partition(args: PartitionArgs) -> anyhow::Result<()> {
    let (a, b) = (args.a.0.clone(), args.b.0.clone());
    if let Some(n) = a.iter().find(|n| b.contains(n)) {
        bail!("{n} is in both groups");
    }
    block_on(async {
        let target = args.target.resolve().await?;
        let mut plan = Vec::new();
        for n in &a {
            let req = FaultRequest::Cut {
                peers: b.clone(),
                inbound: !args.one_way,
                outbound: true,
            };
            plan.push((target.member(n)?, req));
        }
        for n in &b {
            let req = FaultRequest::Cut {
                peers: a.clone(),
                inbound: true,
                outbound: !args.one_way,
            };
            plan.push((target.member(n)?, req));
        }
        send_all(&target, plan).await
    })?
}

/// Runs `msa cluster heal`: every member, even those the seed thinks down
/// (a partition makes them look so). A member that refuses connections
/// (no process listens: killed) or that the seed sees down or gone may
/// fail to answer without failing the command; any other failure (a paused
/// node, a wrong secret) fails it, since that node keeps its rules.
pub(crate) fn heal(args: HealArgs) -> anyhow::Result<()> {
    block_on(async {
        let target = args.target.resolve().await?;
        let mut failed = Vec::new();
        for m in &target.members {
            match target.send(m, FaultRequest::Heal).await {
                Ok(r) => println!("{}", describe(&r)),
                // Nothing listens there: no process, so no rules to clear.
                Err(e @ FaultError::Unreachable(StatusError::Connect { .. })) => {
                    println!("{}: not reached (not running: {e})", m.name);
                }
                Err(e) if matches!(m.status.as_deref(), Some("down" | "left")) => {
                    println!(
                        "{}: not reached ({}, {e})",
                        m.name,
                        m.status.as_deref().unwrap_or("?")
                    );
                }
                Err(e) => failed.push(format!("{} ({}): {e}", m.name, m.addr)),
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(anyhow!("could not heal {}", failed.join("; ")))
        }
    })?
}

/// Runs `msa cluster leave NODE`: the node leaves the cluster gracefully
/// (the others see it `removed`); its process keeps running.
pub(crate) fn leave(args: MemberArgs) -> anyhow::Result<()> {
    block_on(async {
        let target = args.target.resolve().await?;
        let m = target.member(&args.node)?;
        target.send(m, FaultRequest::Leave).await?;
        println!("{}: left the cluster", m.name);
        Ok(())
    })?
}

/// Runs `msa cluster down NODE`: every member is told, so the others
/// declare the node down at once and the node itself, if it still runs and
/// can be reached, leaves (and does not rejoin). Members that cannot be
/// reached are reported without failing the command, as long as one other
/// member took the verdict.
pub(crate) fn down(args: MemberArgs) -> anyhow::Result<()> {
    block_on(async {
        let target = args.target.resolve().await?;
        target.member(&args.node)?;
        // The others first: the node's own leave must not race their
        // verdict (they would no longer list it).
        let mut members: Vec<&Member> = target.members.iter().collect();
        members.sort_by_key(|m| m.name == args.node);
        let mut told = 0;
        for m in members {
            match target
                .send(
                    m,
                    FaultRequest::Down {
                        node: args.node.clone(),
                    },
                )
                .await
            {
                Ok(_) if m.name == args.node => println!("{}: left the cluster", m.name),
                Ok(_) => {
                    told += 1;
                    println!("{}: declared {} down", m.name, args.node);
                }
                Err(e @ FaultError::Refused { .. }) => bail!("{}: {e}", m.name),
                Err(e) => println!("{}: not reached ({e})", m.name),
            }
        }
        if told == 0 && target.members.len() > 1 {
            bail!("no other member took the verdict");
        }
        Ok(())
    })?
}

/// Runs `msa cluster slow`.
pub(crate) fn slow(args: SlowArgs) -> anyhow::Result<()> {
    block_on(async {
        let target = args.target.resolve().await?;
        let m = target.member(&args.node)?;
        let delay_ms = u64::try_from(args.delay.as_millis()).unwrap_or(u64::MAX);
        send_all(&target, vec![(m, FaultRequest::Slow { delay_ms })]).await
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_comma_separated_names() {
        assert_eq!(parse_group("node1,node2").unwrap().0, ["node1", "node2"]);
        assert_eq!(parse_group(" node3 ").unwrap().0, ["node3"]);
        assert!(parse_group("").is_err());
        assert!(parse_group("node1,,node2").is_err());
        assert!(parse_group("node1,node1").unwrap_err().contains("twice"));
    }

    #[test]
    fn delays_need_a_unit_and_a_bound() {
        assert_eq!(parse_delay("50ms").unwrap(), Duration::from_millis(50));
        assert_eq!(parse_delay("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_delay("0").unwrap(), Duration::ZERO);
        for bad in ["50", "ms", "-1s", "1h", "fast", "61s", "NaNs"] {
            assert!(parse_delay(bad).is_err(), "{bad} accepted");
        }
    }
}
