//! A stream that obeys its node's [`Faults`]: it names its peer from the
//! first frame it reads, then holds or delays that peer's bytes as the
//! rules say.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use super::{Faults, Gate};
use crate::remote::frame::{Frame, FrameDecoder};
use crate::remote::transport::BoxStream;

/// The largest first frame read to learn the peer's name (a `Hello` or
/// `Challenge` is a few hundred bytes). The handshake's own bound: a longer
/// first frame names nobody and goes to the node at once, which refuses it
/// from its length prefix, so an unauthenticated peer cannot make this
/// layer buffer more than a handshake frame either.
const SNIFF_MAX: usize = crate::remote::frame::DEFAULT_MAX_HANDSHAKE_FRAME_BYTES;

/// Bytes a delayed stream reads ahead of its node.
const DELAY_BUFFER: usize = 4 * 1024 * 1024;

/// Who is at the other end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Peer {
    /// Not known before the first frame is read.
    Unknown,
    /// A node (its `Hello` or `Challenge` named a listening address).
    Node(String),
    /// A client, or a first frame that names nobody: never faulted.
    Other,
}

/// A stream under fault rules.
pub(super) struct FaultStream {
    inner: BoxStream,
    faults: Arc<Faults>,
    peer: Peer,
    /// The address dialed, if this end dialed.
    dialed: Option<String>,
    /// The node last found at the dialed address: writes before the peer
    /// is named go by it.
    expected: Option<String>,
    /// Bytes read before the peer was named.
    sniff: Vec<u8>,
    /// Bytes read and not yet delivered, each chunk with its delivery time.
    queue: VecDeque<(Instant, Vec<u8>)>,
    front_read: usize,
    queued: usize,
    eof: bool,
    timer: Option<Pin<Box<Sleep>>>,
}

impl FaultStream {
    /// A stream this node dialed at `addr`, where `expected` was found before.
    pub(super) fn dialed(
        inner: BoxStream,
        faults: Arc<Faults>,
        addr: String,
        expected: Option<String>,
    ) -> Self {
        let mut s = Self::accepted(inner, faults);
        s.dialed = Some(addr);
        s.expected = expected;
        s
    }

    /// A stream this node accepted.
    pub(super) fn accepted(inner: BoxStream, faults: Arc<Faults>) -> Self {
        Self {
            inner,
            faults,
            peer: Peer::Unknown,
            dialed: None,
            expected: None,
            sniff: Vec::new(),
            queue: VecDeque::new(),
            front_read: 0,
            queued: 0,
            eof: false,
            timer: None,
        }
    }

    fn gate_in(&self) -> Gate {
        match &self.peer {
            Peer::Node(n) => self.faults.gate_in(n),
            _ => Gate::Open,
        }
    }

    fn out_peer(&self) -> Option<&str> {
        match &self.peer {
            Peer::Node(n) => Some(n),
            Peer::Unknown => self.expected.as_deref(),
            Peer::Other => None,
        }
    }

    fn set_peer(&mut self, peer: Peer) {
        if let (Peer::Node(n), Some(addr)) = (&peer, &self.dialed) {
            self.faults.learn(addr, n);
        }
        self.peer = peer;
        let sniffed = std::mem::take(&mut self.sniff);
        if !sniffed.is_empty() {
            let at = match self.gate_in() {
                Gate::Delay(d) => Instant::now() + d,
                _ => Instant::now(),
            };
            self.queued += sniffed.len();
            self.queue.push_back((at, sniffed));
        }
    }

    /// Reads until the first frame names the peer.
    fn poll_identify(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut tmp = [0u8; 4096];
        loop {
            let mut rb = ReadBuf::new(&mut tmp);
            ready!(Pin::new(&mut self.inner).poll_read(cx, &mut rb))?;
            let got = rb.filled();
            if got.is_empty() {
                self.eof = true;
                self.set_peer(Peer::Other);
                return Poll::Ready(Ok(()));
            }
            self.sniff.extend_from_slice(got);
            if let Some(p) = identify(&self.sniff) {
                self.set_peer(p);
                return Poll::Ready(Ok(()));
            }
        }
    }

    /// Reads what the socket has into the queue, each chunk due `delay`
    /// from now (bounded by [`DELAY_BUFFER`]).
    fn fill(&mut self, cx: &mut Context<'_>, delay: std::time::Duration) -> io::Result<()> {
        let mut tmp = vec![0u8; 64 * 1024];
        while !self.eof && self.queued < DELAY_BUFFER {
            let mut rb = ReadBuf::new(&mut tmp);
            match Pin::new(&mut self.inner).poll_read(cx, &mut rb) {
                Poll::Pending => break,
                Poll::Ready(Err(e)) => return Err(e),
                Poll::Ready(Ok(())) if rb.filled().is_empty() => self.eof = true,
                Poll::Ready(Ok(())) => {
                    let chunk = rb.filled().to_vec();
                    self.queued += chunk.len();
                    self.queue.push_back((Instant::now() + delay, chunk));
                }
            }
        }
        Ok(())
    }

    /// Copies queued bytes due by `now` (all of them when `None`) into
    /// `buf`; whether any were.
    fn deliver(&mut self, buf: &mut ReadBuf<'_>, now: Option<Instant>) -> bool {
        let mut any = false;
        while buf.remaining() > 0 {
            let Some((at, chunk)) = self.queue.front() else {
                break;
            };
            if now.is_some_and(|now| *at > now) {
                break;
            }
            let n = buf.remaining().min(chunk.len() - self.front_read);
            buf.put_slice(&chunk[self.front_read..self.front_read + n]);
            any = true;
            self.queued -= n;
            if self.front_read + n == chunk.len() {
                self.queue.pop_front();
                self.front_read = 0;
            } else {
                self.front_read += n;
            }
        }
        any
    }
}

/// The peer named by the first frame in `bytes`, `None` until it is whole.
pub(super) fn identify(bytes: &[u8]) -> Option<Peer> {
    let prefix = bytes.get(..4)?;
    let len = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
    if len > SNIFF_MAX {
        return Some(Peer::Other);
    }
    let frame = bytes.get(..4 + len)?;
    let mut dec = FrameDecoder::new(SNIFF_MAX);
    dec.push(frame);
    Some(match dec.next_frame() {
        Ok(Some(
            Frame::Hello { node, .. }
            | Frame::Challenge { node, .. }
            | Frame::LegacyHello { node, .. },
        )) if !node.addr.is_empty() => Peer::Node(node.name),
        _ => Peer::Other,
    })
}

impl AsyncRead for FaultStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = &mut *self;
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            if me.peer == Peer::Unknown {
                ready!(me.poll_identify(cx))?;
            }
            match me.gate_in() {
                Gate::Cut => {
                    me.faults.park(cx.waker());
                    return Poll::Pending;
                }
                Gate::Open => {
                    if me.deliver(buf, None) || me.eof {
                        return Poll::Ready(Ok(()));
                    }
                    return Pin::new(&mut me.inner).poll_read(cx, buf);
                }
                Gate::Delay(d) => {
                    me.fill(cx, d)?;
                    let now = Instant::now();
                    if me.deliver(buf, Some(now)) {
                        return Poll::Ready(Ok(()));
                    }
                    let Some(due) = me.queue.front().map(|(at, _)| *at) else {
                        if me.eof {
                            return Poll::Ready(Ok(()));
                        }
                        // `fill` left the socket to wake us.
                        return Poll::Pending;
                    };
                    let timer = me
                        .timer
                        .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
                    if timer.deadline() != due {
                        timer.as_mut().reset(due);
                    }
                    if timer.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                }
            }
        }
    }
}

impl FaultStream {
    /// Whether writes must wait (the peer is cut); parks the task if so.
    fn hold_writes(&self, cx: &mut Context<'_>) -> bool {
        let held = self.out_peer().is_some_and(|p| self.faults.cut_out(p));
        if held {
            self.faults.park(cx.waker());
        }
        held
    }
}

impl AsyncWrite for FaultStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.hold_writes(cx) {
            return Poll::Pending;
        }
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.hold_writes(cx) {
            return Poll::Pending;
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
