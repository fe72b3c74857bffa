//! `msa cluster kill | pause | resume`: act on a node's process. The
//! process is found on this host by the address it listens at (see
//! [`local_pid`](super::local_pid)) and sent SIGKILL, SIGSTOP or SIGCONT.
//! A node on another host can only be killed: it is asked, over the
//! authenticated protocol, to abort at once.

use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use clap::Args;
use msa::remote::FaultRequest;
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::local_pid;
use super::target::{block_on, Member, TargetArgs};

/// How long a signalled process may take to show its new state.
const SETTLE: Duration = Duration::from_secs(5);

/// Options of `msa cluster kill`, `pause` and `resume`.
#[derive(Debug, Args)]
pub(crate) struct NodeArgs {
    /// The node's name
    node: String,
    #[command(flatten)]
    target: TargetArgs,
}

/// Resolves the node named in `args` (its address, from the seed or the
/// state file).
fn member(args: &NodeArgs, hint: &str) -> anyhow::Result<Member> {
    block_on(async {
        let target = args.target.resolve().await.context(hint.to_string())?;
        target.member(&args.node).cloned()
    })?
}

/// The pid of `m` on this host, or why it cannot be acted on.
fn local_pid(m: &Member, what: &str) -> anyhow::Result<u32> {
    local_pid::listening_at(&m.addr).ok_or_else(|| {
        anyhow!(
            "cannot {what} {}: no process of this user on this host listens at {} \
             ({what} acts on the node's process, so it must run here)",
            m.name,
            m.addr
        )
    })
}

fn signal(pid: u32, sig: Signal) -> anyhow::Result<()> {
    let raw = i32::try_from(pid).context("pid out of range")?;
    nix::sys::signal::kill(Pid::from_raw(raw), sig)
        .with_context(|| format!("cannot send {sig} to pid {pid}"))
}

/// The process state letter in `/proc/<pid>/stat` (`T` when stopped).
fn state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The state follows the command name, which is in parentheses.
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Waits up to [`SETTLE`] for `cond` on the process state.
fn settle(pid: u32, cond: impl Fn(Option<char>) -> bool) -> bool {
    let deadline = std::time::Instant::now() + SETTLE;
    loop {
        if cond(state(pid)) {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `msa cluster kill`: SIGKILL when the node runs here, else an
/// abort request over the protocol.
pub(crate) fn kill(args: NodeArgs) -> anyhow::Result<()> {
    let m = member(&args, "cannot find the node to kill")?;
    if let Some(pid) = local_pid::listening_at(&m.addr) {
        signal(pid, Signal::SIGKILL)?;
        println!("{}: killed (SIGKILL to pid {pid})", m.name);
        return Ok(());
    }
    let r = block_on(async {
        let target = args.target.resolve().await?;
        target
            .send(&m, FaultRequest::Abort)
            .await
            .map_err(anyhow::Error::from)
    })?
    .with_context(|| {
        format!(
            "{} ({}) does not run on this host, and asking it to abort failed",
            m.name, m.addr
        )
    })?;
    println!("{}: aborted on request (pid {} on its host)", r.node, r.pid);
    Ok(())
}

/// Runs `msa cluster pause`: SIGSTOP, then waits until the kernel shows
/// the process stopped.
pub(crate) fn pause(args: NodeArgs) -> anyhow::Result<()> {
    let m = member(&args, "cannot find the node to pause")?;
    let pid = local_pid(&m, "pause")?;
    signal(pid, Signal::SIGSTOP)?;
    if !settle(pid, |s| s == Some('T')) {
        bail!("{} (pid {pid}) did not stop within {SETTLE:?}", m.name);
    }
    println!("{}: paused (SIGSTOP to pid {pid})", m.name);
    Ok(())
}

/// Runs `msa cluster resume`: SIGCONT, then waits until the process runs.
pub(crate) fn resume(args: NodeArgs) -> anyhow::Result<()> {
    let m = member(
        &args,
        "cannot find the node to resume (if the seed is the paused node, pass another node as --seed)",
    )?;
    let pid = local_pid(&m, "resume")?;
    signal(pid, Signal::SIGCONT)?;
    if !settle(pid, |s| s != Some('T')) {
        bail!("{} (pid {pid}) did not resume within {SETTLE:?}", m.name);
    }
    println!("{}: resumed (SIGCONT to pid {pid})", m.name);
    Ok(())
}
