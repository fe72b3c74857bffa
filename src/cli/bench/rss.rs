//! Resident memory of this process, from `/proc` (Linux only).

use anyhow::{anyhow, Context as _};

/// Page size assumed when converting `/proc/self/statm` pages.
const PAGE_BYTES: u64 = 4096;

/// Current resident set size, in KiB (`/proc/self/statm`, second field).
pub(crate) fn resident_kib() -> anyhow::Result<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").context("reading /proc/self/statm")?;
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .ok_or_else(|| anyhow!("/proc/self/statm has no resident field: {statm:?}"))?
        .parse()
        .context("parsing the resident pages in /proc/self/statm")?;
    Ok(pages * PAGE_BYTES / 1024)
}

/// Peak resident set size so far, in KiB (`VmHWM` in `/proc/self/status`).
pub(crate) fn peak_kib() -> anyhow::Result<u64> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .ok_or_else(|| anyhow!("/proc/self/status has no VmHWM line"))?;
    line.trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .context("parsing VmHWM in /proc/self/status")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes touched by the test so that the process certainly holds them.
    const TOUCHED: usize = 64 << 20;

    #[test]
    fn resident_and_peak_see_a_touched_buffer() {
        // Other tests run in parallel threads and allocate or free at any time, so
        // the test compares against a buffer far larger than their noise rather than
        // comparing two separate reads with each other.
        let buffer = vec![1u8; TOUCHED];
        let touched_kib = (TOUCHED / 1024) as u64;
        let now = resident_kib().unwrap();
        assert!(
            now >= touched_kib * 3 / 4,
            "resident {now} KiB while {touched_kib} KiB are touched"
        );
        std::hint::black_box(&buffer);
        drop(buffer);
        let peak = peak_kib().unwrap();
        assert!(
            peak >= touched_kib * 3 / 4,
            "peak {peak} KiB after touching {touched_kib} KiB"
        );
    }
}
