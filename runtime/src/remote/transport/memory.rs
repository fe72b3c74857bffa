//! An in-process network for tests: every node in one process, links that
//! can be cut, healed, slowed down and reset.
//!
//! Each connection is two one-way pipes of at most [`PIPE_BYTES`] each. A
//! pipe is a queue of chunks stamped with the time they may be read (the
//! time written plus the link's latency), so latency delays delivery without
//! throttling the writer, as on a real link. `tokio::io::duplex` would give
//! the same bounded pipe but no per-chunk delivery time, so latency could
//! only be added by stalling each write, which serialises a batching
//! writer's throughput to one chunk per latency.
//!
//! **A cut stalls, as a real partition does**: bytes written across a cut
//! link are held (the writer blocks once the pipe is full, like a full TCP
//! send buffer) and the reader waits; neither side learns anything, not even
//! that the other closed. A heal delivers what was held, in order. Failure
//! detection is the node's business (heartbeats, `dead_after`), exactly as
//! over TCP. New connections across a cut (in either direction: a handshake
//! needs both) fail at once with `ConnectionRefused`.
//!
//! The rules and the pipes are a sans-IO core shared with the
//! deterministic simulation (`sim`), so both carry bytes the same way:
//! [`link`] (the rules of directed links between hosts: cut, latency) and
//! [`pipe`] (one direction of a connection, generic over the time type).
//! This file adds what tokio needs: locks, wakers, timers, listeners.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep};

use super::{BoxFuture, BoxStream, Listener, LocalBoxFuture, Transport};
use link::{Link, LinkRules};
use pipe::{PipeCore, Read, WriteError, Wrote};

pub(crate) mod link;
pub(crate) mod pipe;

/// Bytes one direction of a connection holds before its writer waits.
pub(crate) const PIPE_BYTES: usize = 256 * 1024;

/// Connections a listener queues before new ones are refused.
const BACKLOG: usize = 1024;

/// An in-process network: the [`Transport`] of every node on it, and the
/// controller that cuts, heals, slows and resets links between them.
///
/// Give each node its own clone: a clone shares the network but is a
/// separate endpoint, whose host is the one of the first address it binds
/// (`a` for `a:0`). Its connections come from that host, so
/// `cut("a", "b")` stops traffic between the nodes bound at `a:…` and
/// `b:…`. An endpoint that never binds dials from a fresh `anon-N` host
/// (or name it with [`endpoint`](Self::endpoint)).
///
/// Addresses are `host:port` (`a:0` picks a port unique on the network)
/// or any other name, bound as given. The controller methods take a host
/// or a full address (`"a"` or `"a:3"`); a rule applies to the host.
///
/// What a cut does to open connections is described in the module docs:
/// it stalls them, as a real partition does. Latency uses tokio's clock,
/// so a paused test clock drives it.
///
/// # Examples
/// ```
/// use msa_runtime::remote::transport::{MemoryNetwork, Transport};
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let net = MemoryNetwork::new();
/// let (a, b) = (net.clone(), net.clone());
/// let mut listener = b.bind("b:0").unwrap();
/// let addr = listener.local_addr(); // "b:1": unique on this network
/// let _listen_a = a.bind("a:0").unwrap(); // a's connections now come from host "a"
///
/// let mut out = a.connect(addr.clone()).await.unwrap();
/// let (mut inn, from) = listener.accept().await.unwrap();
/// assert!(from.starts_with("a:"));
/// out.write_all(b"hi").await.unwrap();
/// let mut buf = [0u8; 2];
/// inn.read_exact(&mut buf).await.unwrap();
/// assert_eq!(&buf, b"hi");
///
/// // A partition: new connections are refused until the heal.
/// net.cut("a", "b");
/// assert!(a.connect(addr.clone()).await.is_err());
/// net.heal("a", "b");
/// assert!(a.connect(addr).await.is_ok());
///
/// // Established streams closed, as if the link reset: the reader sees EOF.
/// net.drop_connections("a", "b");
/// assert_eq!(inn.read(&mut buf).await.unwrap(), 0);
/// # });
/// ```
#[derive(Debug)]
pub struct MemoryNetwork {
    net: Arc<Net>,
    /// The host this endpoint dials from: named, or its first bind's.
    host: Mutex<Option<String>>,
}

impl Clone for MemoryNetwork {
    /// Another endpoint on the same network, with no host of its own yet.
    fn clone(&self) -> Self {
        Self {
            net: self.net.clone(),
            host: Mutex::new(None),
        }
    }
}

impl Default for MemoryNetwork {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Debug, Default)]
struct Net {
    state: Mutex<State>,
    /// Woken when links are healed or dials stop hanging: the dials that
    /// hang across a cut look again.
    healed: tokio::sync::Notify,
}

#[derive(Debug, Default)]
struct State {
    listeners: HashMap<String, Listening>,
    /// The last port handed out (listeners and dialers alike).
    last_port: u64,
    last_anon: u64,
    last_listener: u64,
    /// The rules of directed host pairs `(from, to)`: cut, latency.
    rules: LinkRules<String>,
    /// Connections, to apply rule changes to (dead ones pruned as we go).
    conns: Vec<Weak<Conn>>,
    /// A dial across a cut hangs until the heal (as behind a firewall that
    /// drops packets) instead of being refused (as behind one that
    /// rejects them).
    hang_dials: bool,
}

#[derive(Debug)]
struct Listening {
    id: u64,
    tx: mpsc::Sender<(BoxStream, String)>,
}

impl State {
    fn link(&self, from: &str, to: &str) -> Link {
        self.rules.link(&from.to_string(), &to.to_string())
    }

    /// Applies the current rules to every open connection between hosts
    /// `x` and `y` (any order), or to every connection with `None`.
    fn apply(&mut self, between: Option<(&str, &str)>) {
        self.conns.retain(|c| c.strong_count() > 0);
        for c in self.conns.iter().filter_map(Weak::upgrade) {
            if between.is_some_and(|(x, y)| !c.between(x, y)) {
                continue;
            }
            c.there.set_link(self.link(&c.dialer, &c.listener));
            c.back.set_link(self.link(&c.listener, &c.dialer));
        }
    }

    fn next_port(&mut self) -> u64 {
        self.last_port += 1;
        self.last_port
    }
}

/// The host part of an address: `a` of `a:3`; a name without a numeric
/// port is its own host.
fn host_of(addr: &str) -> &str {
    match addr.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => addr,
    }
}

impl MemoryNetwork {
    /// A new, empty network with every link up and no added latency.
    pub fn new() -> Self {
        Self {
            net: Arc::new(Net::default()),
            host: Mutex::new(None),
        }
    }

    /// Another endpoint on this network that dials from `host`, whatever
    /// it binds.
    pub fn endpoint(&self, host: impl Into<String>) -> Self {
        Self {
            net: self.net.clone(),
            host: Mutex::new(Some(host.into())),
        }
    }

    /// Stops delivery between `a` and `b` both ways: open connections stall
    /// and new ones are refused.
    pub fn cut(&self, a: &str, b: &str) {
        self.cut_one_way(a, b);
        self.cut_one_way(b, a);
    }

    /// Stops delivery from `from` to `to` only: bytes from `to` still
    /// arrive. New connections either way are refused (a handshake needs
    /// both directions).
    pub fn cut_one_way(&self, from: &str, to: &str) {
        let (from, to) = (host_of(from), host_of(to));
        let mut st = self.net.state.lock();
        st.rules.cut_one_way(from.to_string(), to.to_string());
        st.apply(Some((from, to)));
    }

    /// How a new connection across a cut fails: refused at once (`false`,
    /// the default, as behind a firewall that rejects packets) or never
    /// answered (`true`, as behind one that drops them): the dial waits
    /// until the heal, or until the dialer gives up (its connect
    /// timeout). A node restarted into a partition stays joining while its
    /// seeds' dials hang (docs/cluster.md, "Joining").
    pub fn set_dials_hang_across_cuts(&self, hang: bool) {
        self.net.state.lock().hang_dials = hang;
        self.net.healed.notify_waiters();
    }

    /// Restores delivery between `a` and `b` both ways; what was held is
    /// delivered.
    pub fn heal(&self, a: &str, b: &str) {
        let (a, b) = (host_of(a), host_of(b));
        let mut st = self.net.state.lock();
        st.rules.heal(&a.to_string(), &b.to_string());
        st.apply(Some((a, b)));
        drop(st);
        self.net.healed.notify_waiters();
    }

    /// Restores every link.
    pub fn heal_all(&self) {
        let mut st = self.net.state.lock();
        st.rules.heal_all();
        st.apply(None);
        drop(st);
        self.net.healed.notify_waiters();
    }

    /// Delays every write between `a` and `b`, both ways, by `latency`
    /// (zero removes the delay). Applies to bytes written from now on, and
    /// a new connection waits one round trip.
    pub fn set_latency(&self, a: &str, b: &str, latency: Duration) {
        self.set_latency_one_way(a, b, latency);
        self.set_latency_one_way(b, a, latency);
    }

    /// Delays every write from `from` to `to` by `latency`.
    pub fn set_latency_one_way(&self, from: &str, to: &str, latency: Duration) {
        let (from, to) = (host_of(from), host_of(to));
        let mut st = self.net.state.lock();
        st.rules
            .set_latency_one_way(from.to_string(), to.to_string(), latency);
        st.apply(Some((from, to)));
    }

    /// Closes every open connection between `a` and `b`, as a reset would:
    /// readers see EOF, writers `ConnectionReset`. New connections are
    /// allowed.
    pub fn drop_connections(&self, a: &str, b: &str) {
        let (a, b) = (host_of(a), host_of(b));
        let mut st = self.net.state.lock();
        st.conns.retain(|w| match w.upgrade() {
            Some(c) if c.between(a, b) => {
                c.there.reset();
                c.back.reset();
                false
            }
            Some(_) => true,
            None => false,
        });
    }

    /// The host this endpoint dials from.
    fn dialing_host(&self, st: &mut State) -> String {
        let mut host = self.host.lock();
        match &*host {
            Some(h) => h.clone(),
            None => {
                st.last_anon += 1;
                let h = format!("anon-{}", st.last_anon);
                *host = Some(h.clone());
                h
            }
        }
    }
}

impl Transport for MemoryNetwork {
    fn connect(&self, addr: String) -> BoxFuture<io::Result<BoxStream>> {
        let net = self.net.clone();
        let from = {
            let mut st = net.state.lock();
            self.dialing_host(&mut st)
        };
        Box::pin(async move {
            let to = host_of(&addr).to_string();
            let rtt = net.state.lock().rules.round_trip(&from, &to);
            if !rtt.is_zero() {
                tokio::time::sleep(rtt).await;
            }
            // Dropped: no answer until the heal (the dialer's timeout ends
            // the wait first, as for a SYN that is never answered).
            loop {
                // Listen first, then look: a heal meanwhile is not missed.
                let healed = net.healed.notified();
                tokio::pin!(healed);
                healed.as_mut().enable();
                let hangs = {
                    let st = net.state.lock();
                    st.hang_dials && st.rules.dial_blocked(&from, &to)
                };
                if !hangs {
                    break;
                }
                healed.await;
            }
            let mut st = net.state.lock();
            if st.rules.dial_blocked(&from, &to) {
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionRefused,
                    format!("memory network: the link between {from} and {to} is cut"),
                ));
            }
            let refused = || {
                io::Error::new(
                    io::ErrorKind::ConnectionRefused,
                    format!("memory network: nothing listens at {addr}"),
                )
            };
            let Some(tx) = st.listeners.get(&addr).map(|l| l.tx.clone()) else {
                return Err(refused());
            };
            let peer = format!("{from}:{}", st.next_port());
            let (there, back) = (st.link(&from, &to), st.link(&to, &from));
            let conn = Arc::new(Conn {
                dialer: from,
                listener: to,
                there: Pipe::new(there),
                back: Pipe::new(back),
            });
            st.conns.retain(|c| c.strong_count() > 0);
            st.conns.push(Arc::downgrade(&conn));
            drop(st);
            let accepted = MemStream::new(conn.clone(), Side::Listener);
            if tx.try_send((Box::new(accepted), peer)).is_err() {
                return Err(refused());
            }
            Ok(Box::new(MemStream::new(conn, Side::Dialer)) as BoxStream)
        })
    }

    fn bind(&self, addr: &str) -> io::Result<Box<dyn Listener>> {
        let host = host_of(addr);
        if host.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("memory network: no host in {addr:?}"),
            ));
        }
        let mut st = self.net.state.lock();
        let addr = if addr.ends_with(":0") && host.len() + 2 == addr.len() {
            loop {
                let a = format!("{host}:{}", st.next_port());
                if !st.listeners.contains_key(&a) {
                    break a;
                }
            }
        } else if st.listeners.contains_key(addr) {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("memory network: {addr} is bound"),
            ));
        } else {
            addr.to_string()
        };
        st.last_listener += 1;
        let id = st.last_listener;
        let (tx, rx) = mpsc::channel(BACKLOG);
        st.listeners.insert(addr.clone(), Listening { id, tx });
        self.host.lock().get_or_insert_with(|| host.to_string());
        Ok(Box::new(MemListener {
            net: self.net.clone(),
            addr,
            id,
            rx,
        }))
    }

    fn is_local(&self, _addr: &str) -> bool {
        true
    }
}

struct MemListener {
    net: Arc<Net>,
    addr: String,
    id: u64,
    rx: mpsc::Receiver<(BoxStream, String)>,
}

impl Listener for MemListener {
    fn accept(&mut self) -> LocalBoxFuture<'_, io::Result<(BoxStream, String)>> {
        Box::pin(async move {
            self.rx
                .recv()
                .await
                .ok_or_else(|| io::Error::other("memory network: the listener was unbound"))
        })
    }

    fn local_addr(&self) -> String {
        self.addr.clone()
    }
}

impl Drop for MemListener {
    fn drop(&mut self) {
        let mut st = self.net.state.lock();
        if st
            .listeners
            .get(&self.addr)
            .is_some_and(|l| l.id == self.id)
        {
            st.listeners.remove(&self.addr);
        }
    }
}

/// One connection: a pipe each way.
#[derive(Debug)]
struct Conn {
    dialer: String,
    listener: String,
    /// Dialer to listener.
    there: Pipe,
    /// Listener to dialer.
    back: Pipe,
}

impl Conn {
    fn between(&self, x: &str, y: &str) -> bool {
        (self.dialer == x && self.listener == y) || (self.dialer == y && self.listener == x)
    }
}

/// One direction of a connection: the core's pipe, and who waits on it.
#[derive(Debug)]
struct Pipe(Mutex<PipeState>);

#[derive(Debug)]
struct PipeState {
    core: PipeCore<Instant>,
    read_waker: Option<Waker>,
    write_waker: Option<Waker>,
}

impl Pipe {
    fn new(link: Link) -> Self {
        Self(Mutex::new(PipeState {
            core: PipeCore::new(PIPE_BYTES, link),
            read_waker: None,
            write_waker: None,
        }))
    }

    fn set_link(&self, link: Link) {
        let mut st = self.0.lock();
        st.core.set_link(link);
        st.wake_both();
    }

    fn reset(&self) {
        let mut st = self.0.lock();
        st.core.reset();
        st.wake_both();
    }
}

impl PipeState {
    fn wake_both(&mut self) {
        if let Some(w) = self.read_waker.take() {
            w.wake();
        }
        if let Some(w) = self.write_waker.take() {
            w.wake();
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Side {
    Dialer,
    Listener,
}

/// One end of a connection.
struct MemStream {
    conn: Arc<Conn>,
    side: Side,
    /// Waits for the front chunk's delivery time.
    delay: Option<Pin<Box<Sleep>>>,
}

impl MemStream {
    fn new(conn: Arc<Conn>, side: Side) -> Self {
        Self {
            conn,
            side,
            delay: None,
        }
    }

    fn incoming(&self) -> &Pipe {
        match self.side {
            Side::Dialer => &self.conn.back,
            Side::Listener => &self.conn.there,
        }
    }

    fn outgoing(&self) -> &Pipe {
        match self.side {
            Side::Dialer => &self.conn.there,
            Side::Listener => &self.conn.back,
        }
    }
}

impl AsyncRead for MemStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            let wait_until = {
                let this = &*self;
                let mut st = this.incoming().0.lock();
                let max = buf.remaining();
                match st.core.read(Instant::now(), max, |b| buf.put_slice(b)) {
                    Read::Data(n) => {
                        if n > 0 {
                            if let Some(w) = st.write_waker.take() {
                                w.wake();
                            }
                        }
                        return Poll::Ready(Ok(()));
                    }
                    Read::Eof => return Poll::Ready(Ok(())),
                    Read::Wait => {
                        st.read_waker = Some(cx.waker().clone());
                        return Poll::Pending;
                    }
                    Read::Until(at) => {
                        st.read_waker = Some(cx.waker().clone());
                        at
                    }
                }
            };
            let delay = self
                .delay
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(wait_until)));
            if delay.deadline() != wait_until {
                delay.as_mut().reset(wait_until);
            }
            if delay.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }
}

impl AsyncWrite for MemStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut st = self.outgoing().0.lock();
        match st.core.write(Instant::now(), data) {
            Err(WriteError::Reset) => Poll::Ready(Err(io::ErrorKind::ConnectionReset.into())),
            Err(WriteError::Closed) => Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
            Ok(Wrote::Full) => {
                st.write_waker = Some(cx.waker().clone());
                Poll::Pending
            }
            Ok(Wrote::Bytes(n)) => {
                if n > 0 {
                    if let Some(w) = st.read_waker.take() {
                        w.wake();
                    }
                }
                Poll::Ready(Ok(n))
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut st = self.outgoing().0.lock();
        st.core.shutdown();
        st.wake_both();
        Poll::Ready(Ok(()))
    }
}

impl Drop for MemStream {
    fn drop(&mut self) {
        {
            let mut st = self.outgoing().0.lock();
            st.core.shutdown();
            st.wake_both();
        }
        let mut st = self.incoming().0.lock();
        st.core.reader_gone();
        st.wake_both();
    }
}

#[cfg(test)]
mod tests;
