//! Fault injection inside the transport: per-peer cuts (each direction on
//! its own) and an added delay, set at run time by an operator (`msa
//! cluster partition`, `slow`, `heal`) with no root and no firewall.
//!
//! [`FaultTransport`] wraps any transport; every stream it opens or accepts
//! is a [`stream::FaultStream`] that learns which node is at the other end
//! from the first frame it reads (the dialer's `Hello`, or the listener's
//! `Challenge`: both carry the sender's name) and then consults the node's
//! [`Faults`] on every read and write:
//!
//! - **inbound cut** from peer P: bytes from P are not read any more (they
//!   stay in the socket; P's writes block once its buffers fill), as
//!   behind a firewall that drops P's packets;
//! - **outbound cut** to P: writes to P wait (the writer blocks) and new
//!   connections to P's address are refused at once;
//! - **delay**: every byte read from a peer node is handed to the node
//!   `delay` after it arrived (a delay line: throughput is not throttled).
//!
//! A cut therefore behaves as a partition does on TCP: nobody learns
//! anything, frames (data and membership alike) stop, and failure detection
//! (heartbeats, `dead_after`, SWIM probes) finds out by itself. A heal
//! releases everything held, in order; connections that gave up meanwhile
//! are re-dialed by the node as after any network failure. Client
//! connections (`msa cluster status` and the fault commands themselves:
//! no listening address in their `Hello`) are never cut nor delayed, so an
//! operator can always heal.
//!
//! With no rule set, a stream costs one atomic load per read or write.

use std::collections::{BTreeSet, HashMap};
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Waker;
use std::time::Duration;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::{BoxFuture, BoxStream, Listener, LocalBoxFuture, Transport};

mod stream;
#[cfg(test)]
mod tests;

use stream::FaultStream;

/// The faults a node applies to its own traffic, by peer node name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultRules {
    /// Peers whose frames this node does not read.
    pub cut_in: BTreeSet<String>,
    /// Peers this node does not write to (nor connect to).
    pub cut_out: BTreeSet<String>,
    /// Added to the delivery of every frame from a peer node, in ms.
    pub delay_in_ms: u64,
}

impl FaultRules {
    fn is_empty(&self) -> bool {
        self.cut_in.is_empty() && self.cut_out.is_empty() && self.delay_in_ms == 0
    }
}

/// What a stream may do with its peer's bytes right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Gate {
    /// Pass everything.
    Open,
    /// Hold: the peer is cut.
    Cut,
    /// Deliver each byte this long after it arrived.
    Delay(Duration),
}

/// The fault rules of one node, shared by all its streams: change them
/// with [`cut`](Self::cut), [`set_delay`](Self::set_delay) and
/// [`heal`](Self::heal); every stream sees the change at its next read or
/// write, and streams held by a cut wake up at a heal.
///
/// # Examples
/// ```
/// use msa_runtime::remote::transport::Faults;
///
/// let faults = Faults::default();
/// faults.cut("node3", true, false); // stop reading node3's frames
/// faults.set_delay(std::time::Duration::from_millis(50));
/// assert!(faults.rules().cut_in.contains("node3"));
/// assert_eq!(faults.rules().delay_in_ms, 50);
/// faults.heal();
/// assert_eq!(faults.rules(), Default::default());
/// ```
#[derive(Debug, Default)]
pub struct Faults {
    rules: Mutex<FaultRules>,
    /// Whether any rule is set (the fast path skips the lock when not).
    active: AtomicBool,
    /// Streams waiting for a rule to change.
    parked: Mutex<Vec<Waker>>,
    /// Waiters on a change, outside a poll (connects).
    changed: tokio::sync::Notify,
    /// Dialed addresses and the node found there.
    names: Mutex<HashMap<String, String>>,
}

impl Faults {
    /// Cuts traffic with node `peer`: `inbound` stops reading its frames,
    /// `outbound` stops writing to it and refuses new connections to it.
    /// Adds to the rules already set.
    pub fn cut(&self, peer: &str, inbound: bool, outbound: bool) {
        self.change(|r| {
            if inbound {
                r.cut_in.insert(peer.to_string());
            }
            if outbound {
                r.cut_out.insert(peer.to_string());
            }
        });
    }

    /// Delays the delivery of every frame from any peer node by `delay`
    /// (zero removes the delay).
    pub fn set_delay(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.change(|r| r.delay_in_ms = ms);
    }

    /// Clears every cut and delay.
    pub fn heal(&self) {
        self.change(|r| *r = FaultRules::default());
    }

    /// The rules set now.
    pub fn rules(&self) -> FaultRules {
        self.rules.lock().clone()
    }

    /// Remembers that node `name` listens at `addr`, so that a connection
    /// to `addr` across an outbound cut is refused before it is opened.
    pub fn learn(&self, addr: &str, name: &str) {
        self.names.lock().insert(addr.to_string(), name.to_string());
    }

    fn change(&self, f: impl FnOnce(&mut FaultRules)) {
        {
            let mut r = self.rules.lock();
            f(&mut r);
            self.active.store(!r.is_empty(), Ordering::Release);
        }
        for w in std::mem::take(&mut *self.parked.lock()) {
            w.wake();
        }
        self.changed.notify_waiters();
    }

    fn is_active(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }

    /// What a stream from `peer` may deliver now.
    pub(super) fn gate_in(&self, peer: &str) -> Gate {
        if !self.is_active() {
            return Gate::Open;
        }
        let r = self.rules.lock();
        if r.cut_in.contains(peer) {
            Gate::Cut
        } else if r.delay_in_ms > 0 {
            Gate::Delay(Duration::from_millis(r.delay_in_ms))
        } else {
            Gate::Open
        }
    }

    /// Whether writes to `peer` must wait.
    pub(super) fn cut_out(&self, peer: &str) -> bool {
        self.is_active() && self.rules.lock().cut_out.contains(peer)
    }

    /// Wakes `w` at the next change of the rules.
    pub(super) fn park(&self, w: &Waker) {
        let mut parked = self.parked.lock();
        if !parked.iter().any(|p| p.will_wake(w)) {
            parked.push(w.clone());
        }
    }

    fn name_at(&self, addr: &str) -> Option<String> {
        self.names.lock().get(addr).cloned()
    }

    /// `stream`, which this node dialed at `addr`, under these rules.
    ///
    /// For a stream whose peer this layer cannot name from the bytes the
    /// transport carries: over TLS, the transport's streams carry
    /// ciphertext, so remoting wraps the decrypted stream again, where the
    /// first frame names the peer (the wrapper under TLS names nobody and
    /// lets every byte through).
    pub(crate) fn wrap_dialed(self: &Arc<Self>, stream: BoxStream, addr: &str) -> BoxStream {
        let name = self.name_at(addr);
        Box::new(FaultStream::dialed(
            stream,
            self.clone(),
            addr.to_string(),
            name,
        ))
    }

    /// `stream`, which this node accepted, under these rules (see
    /// [`wrap_dialed`](Self::wrap_dialed)).
    pub(crate) fn wrap_accepted(self: &Arc<Self>, stream: BoxStream) -> BoxStream {
        Box::new(FaultStream::accepted(stream, self.clone()))
    }
}

/// A transport whose streams obey a node's [`Faults`]. Every node wraps its
/// transport in one (see [`Transport::faults`]).
#[derive(Debug)]
pub struct FaultTransport {
    inner: Arc<dyn Transport>,
    faults: Arc<Faults>,
}

impl FaultTransport {
    /// Wraps `inner`, with no fault set.
    pub fn new(inner: Arc<dyn Transport>) -> Self {
        Self {
            inner,
            faults: Arc::new(Faults::default()),
        }
    }
}

impl Transport for FaultTransport {
    fn connect(&self, addr: String) -> BoxFuture<io::Result<BoxStream>> {
        let faults = self.faults.clone();
        let name = faults.name_at(&addr);
        if let Some(n) = &name {
            if faults.cut_out(n) || faults.gate_in(n) == Gate::Cut {
                let e = io::Error::new(
                    io::ErrorKind::ConnectionRefused,
                    format!("{n} ({addr}) is cut off by fault injection"),
                );
                return Box::pin(async move { Err(e) });
            }
        }
        let connect = self.inner.connect(addr.clone());
        Box::pin(async move {
            let s = connect.await?;
            Ok(Box::new(FaultStream::dialed(s, faults, addr, name)) as BoxStream)
        })
    }

    fn bind(&self, addr: &str) -> io::Result<Box<dyn Listener>> {
        let inner = self.inner.bind(addr)?;
        Ok(Box::new(FaultListener {
            inner,
            faults: self.faults.clone(),
        }))
    }

    fn is_local(&self, addr: &str) -> bool {
        self.inner.is_local(addr)
    }

    fn faults(&self) -> Option<Arc<Faults>> {
        Some(self.faults.clone())
    }
}

/// Wraps every accepted stream.
struct FaultListener {
    inner: Box<dyn Listener>,
    faults: Arc<Faults>,
}

impl Listener for FaultListener {
    fn accept(&mut self) -> LocalBoxFuture<'_, io::Result<(BoxStream, String)>> {
        Box::pin(async move {
            let (s, from) = self.inner.accept().await?;
            let s = FaultStream::accepted(s, self.faults.clone());
            Ok((Box::new(s) as BoxStream, from))
        })
    }

    fn local_addr(&self) -> String {
        self.inner.local_addr()
    }
}
