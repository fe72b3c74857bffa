//! One direction of an in-memory connection, sans-IO: a bounded queue of
//! byte chunks, each stamped with the time it may be read (the time it was
//! written plus its link's latency), under the rules of its [`Link`].
//!
//! No lock, no waker, no clock: the caller passes the time in, generic
//! over its type (tokio's `Instant` for [`MemoryNetwork`], whose streams
//! add the locks, wakers and timers; the simulation's `Duration` since its
//! start, whose world schedules an event at [`PipeCore::readable_at`]).
//!
//! * Latency delays delivery, not the writer: each write is stamped on its
//!   own, so a batching writer keeps its throughput.
//! * A cut **stalls**: bytes written are held (the writer fills the pipe
//!   and then waits, like a full TCP send buffer) and the reader gets
//!   nothing, not even the writer's close. A heal releases what was held,
//!   in order: each chunk is readable from its stamp on.
//! * A reset ends the stream at once: the reader sees the end, the writer
//!   an error.
//!
//! [`MemoryNetwork`]: super::MemoryNetwork

use std::collections::VecDeque;
use std::ops::Add;
use std::time::Duration;

use super::link::Link;

/// What a read found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Read<T> {
    /// This many bytes were handed over (zero only for a zero-byte read).
    Data(usize),
    /// The stream ended: reset, or the writer went and everything was read.
    Eof,
    /// Nothing yet: the next chunk is readable at this time.
    Until(T),
    /// Nothing yet, and no time to wait for: the link is cut, or nothing
    /// is queued.
    Wait,
}

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wrote {
    /// This many bytes were queued (fewer than offered when the pipe is
    /// nearly full; zero only for a zero-byte write).
    Bytes(usize),
    /// Nothing was queued: the pipe holds its capacity until the reader
    /// reads.
    Full,
}

/// Why a write failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteError {
    /// The connection was reset.
    Reset,
    /// This end shut down, or the reader went (and the link carries that
    /// news: not across a cut).
    Closed,
}

/// One direction of a connection: see the module docs.
#[derive(Debug)]
pub(crate) struct PipeCore<T> {
    capacity: usize,
    link: Link,
    /// Chunks and when each may be read.
    chunks: VecDeque<(T, Vec<u8>)>,
    /// Bytes read from the front chunk.
    front_read: usize,
    /// Bytes queued and not read.
    buffered: usize,
    /// Reset: the end for the reader, an error for the writer.
    reset: bool,
    /// The writer shut down or went: the end once drained.
    writer_gone: bool,
    /// The reader went: writes fail (once the link carries the news).
    reader_gone: bool,
}

impl<T: Copy + Ord + Add<Duration, Output = T>> PipeCore<T> {
    /// An empty pipe holding at most `capacity` bytes, under `link`.
    pub(crate) fn new(capacity: usize, link: Link) -> Self {
        Self {
            capacity,
            link,
            chunks: VecDeque::new(),
            front_read: 0,
            buffered: 0,
            reset: false,
            writer_gone: false,
            reader_gone: false,
        }
    }

    /// The rules of this direction from now on: a cut stalls the reader,
    /// a heal releases what was held; a latency applies to bytes written
    /// from now on.
    pub(crate) fn set_link(&mut self, link: Link) {
        self.link = link;
    }

    /// Bytes a write may queue now.
    pub(crate) fn room(&self) -> usize {
        self.capacity - self.buffered
    }

    /// Queues as much of `data` as fits, readable from `now` plus the
    /// link's latency.
    ///
    /// # Errors
    /// [`WriteError::Reset`] after a reset; [`WriteError::Closed`] after
    /// [`shutdown`](Self::shutdown), or once the reader went unless the
    /// link is cut (a close does not cross a cut).
    pub(crate) fn write(&mut self, now: T, data: &[u8]) -> Result<Wrote, WriteError> {
        if self.reset {
            return Err(WriteError::Reset);
        }
        if self.writer_gone || (self.reader_gone && !self.link.cut) {
            return Err(WriteError::Closed);
        }
        if data.is_empty() {
            return Ok(Wrote::Bytes(0));
        }
        let room = self.room();
        if room == 0 {
            return Ok(Wrote::Full);
        }
        let n = room.min(data.len());
        self.chunks
            .push_back((now + self.link.latency, data[..n].to_vec()));
        self.buffered += n;
        Ok(Wrote::Bytes(n))
    }

    /// When the next chunk may be read: `None` while nothing is queued,
    /// the link is cut or the pipe was reset. A heal makes held chunks
    /// readable from their stamps on (at once, for chunks held longer than
    /// their latency).
    pub(crate) fn readable_at(&self) -> Option<T> {
        if self.reset || self.link.cut {
            return None;
        }
        self.chunks.front().map(|(at, _)| *at)
    }

    /// Whether a read now finds the end of the stream: reset, or the
    /// writer went and everything was read (a cut holds the writer's end
    /// as it holds its bytes).
    pub(crate) fn ended(&self) -> bool {
        self.reset || (self.writer_gone && self.chunks.is_empty() && !self.link.cut)
    }

    /// Hands up to `max` bytes readable at `now` to `put`, in order (in
    /// one or more slices).
    pub(crate) fn read(&mut self, now: T, max: usize, mut put: impl FnMut(&[u8])) -> Read<T> {
        if self.reset {
            return Read::Eof;
        }
        if max == 0 {
            return Read::Data(0);
        }
        if self.link.cut {
            return Read::Wait;
        }
        let mut read = 0;
        let mut until = None;
        while read < max {
            let Some((at, chunk)) = self.chunks.front() else {
                break;
            };
            if *at > now {
                until = Some(*at);
                break;
            }
            let n = (max - read).min(chunk.len() - self.front_read);
            put(&chunk[self.front_read..self.front_read + n]);
            read += n;
            if self.front_read + n == chunk.len() {
                self.chunks.pop_front();
                self.front_read = 0;
            } else {
                self.front_read += n;
            }
        }
        if read > 0 {
            self.buffered -= read;
            return Read::Data(read);
        }
        match until {
            Some(at) => Read::Until(at),
            None if self.writer_gone => Read::Eof,
            None => Read::Wait,
        }
    }

    /// Resets the connection: the reader sees the end, the writer
    /// [`WriteError::Reset`]. What was queued is gone.
    pub(crate) fn reset(&mut self) {
        self.reset = true;
        self.chunks.clear();
        self.buffered = 0;
        self.front_read = 0;
    }

    /// The writer shut down (or went): the reader sees the end once it
    /// read everything.
    pub(crate) fn shutdown(&mut self) {
        self.writer_gone = true;
    }

    /// The reader went: what was queued is gone, and writes fail.
    pub(crate) fn reader_gone(&mut self) {
        self.reader_gone = true;
        self.chunks.clear();
        self.buffered = 0;
        self.front_read = 0;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn pipe(capacity: usize) -> PipeCore<Duration> {
        PipeCore::new(capacity, Link::default())
    }

    /// Everything readable at `now`, or how the read ended.
    fn read_all(p: &mut PipeCore<Duration>, now: Duration) -> (Vec<u8>, Read<Duration>) {
        let mut got = Vec::new();
        loop {
            match p.read(now, 3, |b| got.extend_from_slice(b)) {
                Read::Data(_) => continue,
                end => return (got, end),
            }
        }
    }

    #[test]
    fn chunks_are_readable_from_their_stamp_in_order() {
        let mut p = PipeCore::new(
            64,
            Link {
                cut: false,
                latency: 10 * MS,
            },
        );
        assert_eq!(p.write(Duration::ZERO, b"hello").unwrap(), Wrote::Bytes(5));
        assert_eq!(p.write(5 * MS, b"world").unwrap(), Wrote::Bytes(5));
        assert_eq!(p.readable_at(), Some(10 * MS));
        assert_eq!(read_all(&mut p, 9 * MS), (vec![], Read::Until(10 * MS)));
        // Read in pieces of at most 3 bytes: a chunk may be split.
        assert_eq!(
            read_all(&mut p, 10 * MS),
            (b"hello".to_vec(), Read::Until(15 * MS))
        );
        assert_eq!(p.readable_at(), Some(15 * MS));
        assert_eq!(read_all(&mut p, 20 * MS), (b"world".to_vec(), Read::Wait));
        assert_eq!(p.readable_at(), None);
    }

    #[test]
    fn a_cut_stalls_and_a_heal_releases_in_order() {
        let mut p = pipe(64);
        p.set_link(Link {
            cut: true,
            latency: Duration::ZERO,
        });
        p.write(MS, b"ab").unwrap();
        p.write(2 * MS, b"cd").unwrap();
        p.shutdown();
        assert_eq!(p.readable_at(), None);
        assert_eq!(
            read_all(&mut p, 50 * MS),
            (vec![], Read::Wait),
            "not even the end"
        );
        p.set_link(Link::default());
        assert_eq!(p.readable_at(), Some(MS), "held chunks are due at once");
        assert_eq!(read_all(&mut p, 50 * MS), (b"abcd".to_vec(), Read::Eof));
    }

    #[test]
    fn a_full_pipe_takes_what_fits_then_nothing_until_read() {
        let mut p = pipe(4);
        assert_eq!(p.write(MS, b"abcdef").unwrap(), Wrote::Bytes(4));
        assert_eq!(p.room(), 0);
        assert_eq!(p.write(MS, b"ef").unwrap(), Wrote::Full);
        assert_eq!(p.read(MS, 2, |_| {}), Read::Data(2));
        assert_eq!(p.room(), 2);
        assert_eq!(p.write(MS, b"ef").unwrap(), Wrote::Bytes(2));
    }

    #[test]
    fn a_reset_ends_both_sides() {
        let mut p = pipe(64);
        p.write(MS, b"lost").unwrap();
        p.reset();
        assert_eq!(p.read(MS, 8, |_| {}), Read::Eof);
        assert_eq!(p.readable_at(), None);
        assert_eq!(p.write(MS, b"x"), Err(WriteError::Reset));
    }

    #[test]
    fn a_gone_reader_fails_writes_except_across_a_cut() {
        let mut p = pipe(64);
        p.set_link(Link {
            cut: true,
            latency: Duration::ZERO,
        });
        p.reader_gone();
        assert_eq!(
            p.write(MS, b"x").unwrap(),
            Wrote::Bytes(1),
            "the news is held"
        );
        p.set_link(Link::default());
        assert_eq!(p.write(MS, b"x"), Err(WriteError::Closed));
        let mut q = pipe(64);
        q.shutdown();
        assert_eq!(q.write(MS, b"x"), Err(WriteError::Closed));
        assert_eq!(q.read(MS, 8, |_| {}), Read::Eof);
    }
}
