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

    #[test]
    fn resident_and_peak_are_read_and_consistent() {
        let now = resident_kib().unwrap();
        let peak = peak_kib().unwrap();
        assert!(now > 0);
        assert!(peak >= now, "peak {peak} KiB below current {now} KiB");
    }
}
