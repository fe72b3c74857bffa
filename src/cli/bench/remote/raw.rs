//! The raw TCP baseline: a plain tokio stream between the same two
//! processes, carrying fixed 32-byte frames behind a 4-byte big-endian length
//! prefix (36 bytes on the wire, about the size of an msa `Tell` of a u64).
//!
//! The body's first byte says what the frame is ([`Kind`]); the next eight
//! carry a u64 (little endian). The server counts `Data` frames, answers a
//! `CountRequest` with the count so far and echoes a `Ping`. Like msa's
//! connection writer, it writes whatever answers one read produced in one
//! write: it flushes when its input is drained.

use std::io;
use std::thread::JoinHandle;
use std::time::Instant;

use anyhow::{ensure, Context as _};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

use super::super::services::YIELD_EVERY;
use super::measure::{latency_histogram, Measurement};

/// Bytes in a frame's body.
pub(crate) const BODY_BYTES: usize = 32;
/// Bytes of a whole frame: length prefix and body.
pub(crate) const FRAME_BYTES: usize = 4 + BODY_BYTES;

/// What a frame is (the first byte of its body).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Kind {
    /// Counted by the server; never answered.
    Data = 0,
    /// Asks for the count; the answer is a `CountReply`.
    CountRequest = 1,
    /// The server's count.
    CountReply = 2,
    /// Echoed as it is.
    Ping = 3,
}

impl Kind {
    fn of(byte: u8) -> Option<Self> {
        [Self::Data, Self::CountRequest, Self::CountReply, Self::Ping]
            .into_iter()
            .find(|k| *k as u8 == byte)
    }
}

/// One whole frame.
fn frame(kind: Kind, value: u64) -> [u8; FRAME_BYTES] {
    let mut f = [0u8; FRAME_BYTES];
    f[..4].copy_from_slice(&(BODY_BYTES as u32).to_be_bytes());
    f[4] = kind as u8;
    f[5..13].copy_from_slice(&value.to_le_bytes());
    f
}

/// Splits a whole frame into its kind and value.
fn parse(f: &[u8]) -> io::Result<(Kind, u64)> {
    let bad = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
    let len = u32::from_be_bytes([f[0], f[1], f[2], f[3]]) as usize;
    if len != BODY_BYTES {
        return Err(bad(format!("frame length {len}, expected {BODY_BYTES}")));
    }
    let kind = Kind::of(f[4]).ok_or_else(|| bad(format!("unknown frame kind {}", f[4])))?;
    let mut v = [0u8; 8];
    v.copy_from_slice(&f[5..13]);
    Ok((kind, u64::from_le_bytes(v)))
}

/// Serves one raw connection until the peer closes it (the child's side).
pub(crate) async fn serve(stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let (mut rd, mut wr) = stream.into_split();
    let mut buf = vec![0u8; 64 * 1024];
    let mut filled = 0;
    let mut out = Vec::with_capacity(64 * 1024);
    let mut count = 0u64;
    loop {
        let n = rd.read(&mut buf[filled..]).await?;
        if n == 0 {
            return Ok(());
        }
        filled += n;
        let mut at = 0;
        while filled - at >= FRAME_BYTES {
            let f = &buf[at..at + FRAME_BYTES];
            match parse(f)? {
                (Kind::Data, _) => count += 1,
                (Kind::CountRequest, _) => out.extend_from_slice(&frame(Kind::CountReply, count)),
                (Kind::Ping, _) => out.extend_from_slice(f),
                (Kind::CountReply, _) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "a count reply sent to the server",
                    ))
                }
            }
            at += FRAME_BYTES;
        }
        buf.copy_within(at..filled, 0);
        filled -= at;
        if !out.is_empty() {
            wr.write_all(&out).await?;
            out.clear();
        }
    }
}

/// The bench's end of the raw connection.
#[derive(Debug)]
pub(crate) struct RawClient {
    rd: OwnedReadHalf,
    wr: BufWriter<OwnedWriteHalf>,
}

impl RawClient {
    /// Connects to the child's raw listener.
    pub(crate) async fn connect(addr: &str) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to the raw TCP listener at {addr}"))?;
        stream.set_nodelay(true)?;
        let (rd, wr) = stream.into_split();
        Ok(Self {
            rd,
            wr: BufWriter::with_capacity(64 * 1024, wr),
        })
    }

    async fn read_frame(&mut self) -> anyhow::Result<(Kind, u64)> {
        let mut f = [0u8; FRAME_BYTES];
        self.rd
            .read_exact(&mut f)
            .await
            .context("reading from the raw connection")?;
        Ok(parse(&f)?)
    }

    /// The server's count of `Data` frames on this connection.
    async fn count(&mut self) -> anyhow::Result<u64> {
        self.wr.write_all(&frame(Kind::CountRequest, 0)).await?;
        self.wr.flush().await?;
        match self.read_frame().await? {
            (Kind::CountReply, n) => Ok(n),
            (k, _) => anyhow::bail!("expected a count reply, got {k:?}"),
        }
    }

    /// `messages` one-way frames, flushed every [`YIELD_EVERY`] (the local
    /// batch), then a count request; the clock stops when the count is
    /// confirmed.
    pub(crate) async fn one_way(&mut self, messages: u64) -> anyhow::Result<Measurement> {
        let before = self.count().await?;
        let start = Instant::now();
        for i in 1..=messages {
            self.wr.write_all(&frame(Kind::Data, i)).await?;
            if i % YIELD_EVERY == 0 {
                self.wr.flush().await?;
                tokio::task::yield_now().await;
            }
        }
        let counted = self.count().await? - before;
        let elapsed = start.elapsed();
        ensure!(
            counted == messages,
            "the raw server counted {counted} frames, {messages} were sent"
        );
        Ok(Measurement {
            messages,
            elapsed,
            latency_ns: None,
            retries: 0,
        })
    }

    /// One ping-pong of `i`.
    #[inline]
    async fn ping(&mut self, i: u64) -> anyhow::Result<()> {
        self.wr.write_all(&frame(Kind::Ping, i)).await?;
        self.wr.flush().await?;
        let got = self.read_frame().await?;
        ensure!(got == (Kind::Ping, i), "ping {i} came back as {got:?}");
        Ok(())
    }

    /// `pings` sequential ping-pongs, each one timed.
    pub(crate) async fn ping_pong(&mut self, pings: u64) -> anyhow::Result<Measurement> {
        let mut hist = latency_histogram()?;
        let start = Instant::now();
        for i in 0..pings {
            let sent = Instant::now();
            self.ping(i).await?;
            hist.saturating_record(u64::try_from(sent.elapsed().as_nanos()).unwrap_or(u64::MAX));
        }
        Ok(Measurement {
            messages: pings,
            elapsed: start.elapsed(),
            latency_ns: Some(hist),
            retries: 0,
        })
    }
}

/// One ping handed to the [`HandoffClient`]'s thread, and where its reply goes.
type PingRequest = (u64, oneshot::Sender<anyhow::Result<()>>);

/// The baseline of `remote_ask_natural`: a [`RawClient`] on a thread of its
/// own (a current-thread tokio runtime, as an actix arbiter is), driven from
/// the caller's thread. Each ping goes to that thread through a channel and
/// its reply comes back through a oneshot, so each round trip crosses
/// threads twice, as an ask from outside a node's arbiters does.
#[derive(Debug)]
pub(crate) struct HandoffClient {
    requests: Option<mpsc::Sender<PingRequest>>,
    thread: Option<JoinHandle<()>>,
}

impl HandoffClient {
    /// Starts the thread and connects its client to `addr`.
    pub(crate) async fn start(addr: &str) -> anyhow::Result<Self> {
        let (requests, mut rx) = mpsc::channel::<PingRequest>(1);
        let (ready_tx, ready_rx) = oneshot::channel::<anyhow::Result<()>>();
        let addr = addr.to_string();
        let thread = std::thread::Builder::new()
            .name("msa-bench-raw-handoff".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.into()));
                        return;
                    }
                };
                rt.block_on(async move {
                    let mut client = match RawClient::connect(&addr).await {
                        Ok(c) => {
                            let _ = ready_tx.send(Ok(()));
                            c
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    while let Some((i, reply)) = rx.recv().await {
                        let _ = reply.send(client.ping(i).await);
                    }
                });
            })
            .context("starting the raw hand-off thread")?;
        let me = Self {
            requests: Some(requests),
            thread: Some(thread),
        };
        ready_rx
            .await
            .map_err(|_| anyhow::anyhow!("the raw hand-off thread ended before it connected"))??;
        Ok(me)
    }

    /// `pings` sequential ping-pongs through the client's thread, each one
    /// timed on the calling thread from the hand-off to the reply's arrival.
    pub(crate) async fn ping_pong(&self, pings: u64) -> anyhow::Result<Measurement> {
        let requests = self
            .requests
            .as_ref()
            .context("the raw hand-off client has stopped")?;
        let mut hist = latency_histogram()?;
        let start = Instant::now();
        for i in 0..pings {
            let sent = Instant::now();
            let (tx, rx) = oneshot::channel();
            requests
                .send((i, tx))
                .await
                .map_err(|_| anyhow::anyhow!("the raw hand-off thread has ended"))?;
            rx.await
                .map_err(|_| anyhow::anyhow!("the raw hand-off thread dropped ping {i}"))??;
            hist.saturating_record(u64::try_from(sent.elapsed().as_nanos()).unwrap_or(u64::MAX));
        }
        Ok(Measurement {
            messages: pings,
            elapsed: start.elapsed(),
            latency_ns: Some(hist),
            retries: 0,
        })
    }

    /// Closes the channel (the thread's loop ends and its connection
    /// closes) and joins the thread.
    pub(crate) fn stop(mut self) -> anyhow::Result<()> {
        drop(self.requests.take());
        match self.thread.take().map(JoinHandle::join) {
            Some(Err(_)) => anyhow::bail!("the raw hand-off thread panicked"),
            _ => Ok(()),
        }
    }
}

impl Drop for HandoffClient {
    /// Without [`stop`](Self::stop) (a failed bench), the thread ends on
    /// its own once its channel is closed, or with the process.
    fn drop(&mut self) {
        drop(self.requests.take());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_bad_ones_are_refused() {
        let f = frame(Kind::Ping, 42);
        assert_eq!(f.len(), FRAME_BYTES);
        assert_eq!(parse(&f).unwrap(), (Kind::Ping, 42));
        let mut bad = f;
        bad[3] = 0;
        assert!(parse(&bad).is_err());
        let mut bad = f;
        bad[4] = 99;
        assert!(parse(&bad).is_err());
    }
}
