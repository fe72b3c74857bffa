//! `--keep-awake`: one low-priority busy thread per CPU while the bench
//! measures, so that no CPU idles (and a woken thread does not wait for a
//! halted vCPU to come back).
//!
//! On this kind of machine (a shared VM) waking a parked thread costs tens
//! of microseconds when the CPUs idle and a few when they are busy, so any
//! latency that crosses threads moves 3–8× with the CPU state; the report
//! says which state each row was measured in.
//!
//! Each busy thread is pinned to one CPU the process may run on, and lowers
//! its own priority to nice 19 before it spins: the crate forbids `unsafe`
//! (so no `setpriority` through libc) and nix has no `nice`, so the thread
//! runs `renice -n 19 -p <its tid>` (Linux applies a thread id's nice value
//! to that thread only) and checks `/proc/self/task/<tid>/stat` before it
//! spins. A thread that cannot lower its priority never spins, and the
//! bench fails instead.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{anyhow, bail, ensure, Context as _};
use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::{gettid, Pid};

/// The nice value of the busy threads (the lowest priority).
const NICE: i32 = 19;
/// How long a busy thread may take to lower its priority.
const START_WAIT: Duration = Duration::from_secs(10);

/// What the report says about the CPUs during the measurements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cpus {
    /// Nothing of the bench's own kept them busy between wake-ups.
    Idle,
    /// `--keep-awake`: a nice-19 busy thread per CPU.
    KeptAwake,
}

impl Cpus {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::KeptAwake => "kept awake",
        }
    }
}

/// The running busy threads; they stop when this is dropped.
#[derive(Debug)]
pub(crate) struct KeepAwake {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl KeepAwake {
    /// Starts one nice-19 busy thread per CPU this process may run on, and
    /// returns once every one of them runs at that priority.
    pub(crate) fn start() -> anyhow::Result<Self> {
        let allowed = sched_getaffinity(Pid::from_raw(0)).context("reading the CPU affinity")?;
        let cpus: Vec<usize> = (0..CpuSet::count())
            .filter(|&c| allowed.is_set(c).unwrap_or(false))
            .collect();
        ensure!(!cpus.is_empty(), "this process may run on no CPU");
        let mut me = Self {
            stop: Arc::new(AtomicBool::new(false)),
            threads: Vec::with_capacity(cpus.len()),
        };
        let (tx, rx) = mpsc::channel();
        for &cpu in &cpus {
            let stop = Arc::clone(&me.stop);
            let tx = tx.clone();
            let thread = std::thread::Builder::new()
                .name(format!("msa-bench-awake-{cpu}"))
                .spawn(move || {
                    let ready = lower_this_thread(cpu);
                    let ok = ready.is_ok();
                    let _ = tx.send(ready);
                    if ok {
                        spin_until(&stop);
                    }
                })
                .context("starting a busy thread")?;
            me.threads.push(thread);
        }
        for _ in &cpus {
            rx.recv_timeout(START_WAIT)
                .map_err(|_| anyhow!("a busy thread did not start within {START_WAIT:?}"))??;
        }
        Ok(me)
    }

    /// How many busy threads run.
    pub(crate) fn threads(&self) -> usize {
        self.threads.len()
    }
}

impl Drop for KeepAwake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Pins the calling thread to `cpu` and lowers its priority to [`NICE`].
fn lower_this_thread(cpu: usize) -> anyhow::Result<()> {
    let mut set = CpuSet::new();
    set.set(cpu)?;
    sched_setaffinity(Pid::from_raw(0), &set)
        .with_context(|| format!("pinning a busy thread to CPU {cpu}"))?;
    let tid = gettid();
    let out = Command::new("renice")
        .args(["-n", &NICE.to_string(), "-p", &tid.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .context("running `renice` to lower a busy thread's priority")?;
    ensure!(
        out.status.success(),
        "`renice -n {NICE} -p {tid}` failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let nice = thread_nice(tid)?;
    if nice != NICE {
        bail!("a busy thread runs at nice {nice} after `renice`, not {NICE}");
    }
    Ok(())
}

/// The nice value of thread `tid` of this process, from `/proc`.
fn thread_nice(tid: Pid) -> anyhow::Result<i32> {
    let path = format!("/proc/self/task/{tid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_nice(&stat).ok_or_else(|| anyhow!("no nice value in {path}: {stat:?}"))
}

/// Field 19 of a `stat` line (`pid (comm) state ppid …`; comm may hold
/// spaces and parentheses, so fields are counted after the last `)`).
fn parse_nice(stat: &str) -> Option<i32> {
    let (_, rest) = stat.rsplit_once(')')?;
    // Fields 3.. follow; nice is field 19.
    rest.split_whitespace().nth(19 - 3)?.parse().ok()
}

fn spin_until(stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        for _ in 0..1_000 {
            std::hint::spin_loop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_is_field_19_of_a_stat_line() {
        let stat = "4242 (a (b) c) R 1 2 3 4 5 6 7 8 9 10 11 12 13 14 20 19 3 0 99";
        assert_eq!(parse_nice(stat), Some(19));
        assert_eq!(parse_nice("no parenthesis"), None);
    }
}
