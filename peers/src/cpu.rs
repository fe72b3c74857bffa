//! The CPU state a run is reported with: the load average, and optionally
//! one lowest-priority busy thread per CPU that keeps the CPUs awake (on a
//! virtual machine, waking an idle CPU costs tens of microseconds, which
//! would dominate every cross-thread hand-off).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::Context as _;

/// The one-minute load average (`/proc/loadavg`), where readable.
pub(crate) fn load_average() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next().map(str::to_owned)
}

/// Busy threads at the lowest priority, one per CPU, until dropped.
#[derive(Debug)]
pub(crate) struct KeepAwake {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl KeepAwake {
    pub(crate) fn start() -> anyhow::Result<Self> {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..cpus)
            .map(|i| {
                let stop = stop.clone();
                std::thread::Builder::new()
                    .name(format!("keep-awake-{i}"))
                    .spawn(move || {
                        lowest_priority();
                        while !stop.load(Ordering::Relaxed) {
                            std::hint::spin_loop();
                        }
                    })
                    .context("starting a keep-awake thread")
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self { stop, threads })
    }
}

impl Drop for KeepAwake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            // A busy loop does not panic; nothing to report if it did.
            let _ = t.join();
        }
    }
}

/// Nice 19 for the calling thread (Linux: `setpriority` on a thread id
/// applies to that thread only). Best effort.
fn lowest_priority() {
    // SAFETY: plain system calls with no pointers; failure only leaves the
    // thread at its current priority.
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 19);
    }
}
