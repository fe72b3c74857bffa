//! The node's threads: an actix System thread, its arbiters, and the
//! deadline sweeper; stopped and joined at shutdown.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{JoinHandle, ThreadId};

use actix::{Arbiter, System};

/// Everything a node must stop and join.
#[derive(Debug)]
pub(crate) struct Threads {
    pub(crate) arbiters: Vec<Arbiter>,
    pub(crate) system: Option<(System, JoinHandle<()>)>,
    pub(crate) sweeper_stop: Arc<AtomicBool>,
    pub(crate) sweeper: Option<JoinHandle<()>>,
    pub(crate) ids: Vec<ThreadId>,
}

impl Threads {
    pub(crate) fn is_node_thread(&self) -> bool {
        let me = std::thread::current().id();
        self.ids.contains(&me)
    }

    fn signal_stop(&mut self) {
        self.sweeper_stop.store(true, Ordering::Release);
        if let Some(s) = &self.sweeper {
            s.thread().unpark();
        }
        for a in &self.arbiters {
            a.stop();
        }
    }

    /// Stops every thread without waiting (the node was dropped).
    pub(crate) fn stop_detached(mut self) {
        self.signal_stop();
        if let Some((sys, _)) = &self.system {
            sys.stop();
        }
    }

    /// Stops every thread and joins them, off the caller's executor.
    pub(crate) async fn stop_and_join(mut self) {
        self.signal_stop();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let joiner = std::thread::Builder::new()
            .name("msa-joiner".into())
            .spawn(move || {
                for a in self.arbiters.drain(..) {
                    let _ = a.join();
                }
                if let Some(s) = self.sweeper.take() {
                    let _ = s.join();
                }
                if let Some((sys, handle)) = self.system.take() {
                    sys.stop();
                    let _ = handle.join();
                }
                let _ = tx.send(());
            });
        match joiner {
            Ok(j) => {
                let _ = rx.await;
                let _ = j.join();
            }
            Err(e) => {
                tracing::error!(error = %e, "could not spawn the joiner thread; threads left to exit on their own")
            }
        }
    }
}
