//! The seed loop: asks the node's [`Discovery`] for seeds every
//! `discovery_interval` and keeps one dial loop per address found.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::watch;

use super::Remoting;
use crate::remote::discovery::Discovery;

impl Remoting {
    /// Dials every seed `discovery` finds, until the node closes: a new
    /// address gets a dial loop, an address no longer found has its dial
    /// loop stopped (its connection, if any, lives on), and a failed round
    /// keeps the addresses of the one before. The node's own advertised
    /// address is skipped (a headless Service lists every pod, this one too);
    /// when it is the first address of the answer, the node is its first
    /// seed and may found the cluster (`JoinGate::set_first_seed`).
    pub(crate) async fn seed_loop(self: Arc<Self>, discovery: Arc<dyn Discovery>) {
        // Dropping an address's sender stops its dial loop.
        let mut dialing: HashMap<String, watch::Sender<()>> = HashMap::new();
        let mut closed = self.closed.subscribe();
        while !self.is_closing() {
            let round = tokio::select! {
                r = discovery.seeds() => r,
                _ = closed.changed() => break,
            };
            match round {
                Ok(found) => {
                    // Only the first seed may found the cluster (be `up`
                    // with no member to admit it; `remote/join.rs`).
                    let first = found.first().is_some_and(|a| *a == self.local.addr);
                    self.join_first_seed(first);
                    let found: std::collections::HashSet<String> = found
                        .into_iter()
                        .filter(|a| !a.is_empty() && *a != self.local.addr)
                        .collect();
                    dialing.retain(|addr, _| {
                        let keep = found.contains(addr);
                        if !keep {
                            tracing::info!(%addr, "seed no longer discovered; stopped dialing it");
                        }
                        keep
                    });
                    let mut new: Vec<_> = found
                        .into_iter()
                        .filter(|a| !dialing.contains_key(a))
                        .collect();
                    new.sort();
                    for addr in new {
                        tracing::debug!(%addr, "dialing seed");
                        let (tx, rx) = watch::channel(());
                        actix_rt::spawn(self.clone().dial_loop(addr.clone(), rx));
                        dialing.insert(addr, tx);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "seed discovery failed; keeping the seeds found before");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(self.cfg.discovery_interval) => {}
                _ = closed.changed() => break,
            }
        }
    }
}
