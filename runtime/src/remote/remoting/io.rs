//! Raw frame reads and writes on a stream's halves.

use std::sync::atomic::Ordering;

use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};

use super::{ConnectionError, Remoting};
use crate::remote::frame::{encode_into, Frame, FrameDecoder};
use crate::remote::stats::RemoteStats;
use crate::remote::transport::BoxStream;

impl Remoting {
    pub(super) async fn read_frame(
        &self,
        rd: &mut ReadHalf<BoxStream>,
        dec: &mut FrameDecoder,
        buf: &mut [u8],
    ) -> Result<Frame, ConnectionError> {
        let conn = crate::remote::stats::ConnStats::default();
        read_frame_counted(rd, dec, buf, Some((&self.stats, &conn))).await
    }

    pub(super) async fn write_frame(
        &self,
        wr: &mut WriteHalf<BoxStream>,
        f: &Frame,
    ) -> Result<(), ConnectionError> {
        let n = write_raw(wr, f, self.cfg.max_frame_bytes).await?;
        self.stats.bytes_out.fetch_add(n as u64, Ordering::Relaxed);
        Ok(())
    }
}

/// Writes one frame and flushes; returns the bytes written.
pub(super) async fn write_raw(
    wr: &mut WriteHalf<BoxStream>,
    f: &Frame,
    max: usize,
) -> Result<usize, ConnectionError> {
    let mut out = Vec::new();
    encode_into(f, max, &mut out)?;
    wr.write_all(&out).await?;
    wr.flush().await?;
    Ok(out.len())
}

pub(super) async fn read_raw(
    rd: &mut ReadHalf<BoxStream>,
    dec: &mut FrameDecoder,
    buf: &mut [u8],
) -> Result<Frame, ConnectionError> {
    read_frame_counted(rd, dec, buf, None).await
}

/// Reads the next frame, counting bytes in when given counters.
pub(super) async fn read_frame_counted(
    rd: &mut ReadHalf<BoxStream>,
    dec: &mut FrameDecoder,
    buf: &mut [u8],
    stats: Option<(&RemoteStats, &crate::remote::stats::ConnStats)>,
) -> Result<Frame, ConnectionError> {
    loop {
        if let Some(f) = dec.next_frame()? {
            return Ok(f);
        }
        let n = rd.read(buf).await?;
        if n == 0 {
            return Err(ConnectionError::Closed);
        }
        if let Some((node, conn)) = stats {
            node.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
            conn.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
        }
        dec.push(&buf[..n]);
    }
}
