//! The order of a sequential stop, found in time linear in the children.
//!
//! A supervisor that stops its children one after another (the node's root,
//! a [`SupervisorSpec`](super::SupervisorSpec)) stops the last live child,
//! waits for its exit, then the next live one before it. Scanning from the
//! end for "the last live child" on every exit made a node's shutdown
//! quadratic in its services (100k services took 20.9 s to stop, 10k 0.12 s):
//! every exit walked past all the children already stopped. The cursor
//! remembers where the previous scan stopped instead. That is sound because
//! once a supervisor stops no child comes back to life: a stopping
//! supervisor refuses new children and restarts nothing, so a child the
//! cursor has passed (stopped, down or done) stays passed.

/// Where the next reverse scan for a live child starts.
#[derive(Debug, Default)]
pub(super) struct StopCursor {
    /// Children at this index and after it have been passed; `None` until
    /// the first scan.
    next: Option<usize>,
    /// Children looked at by every scan together (for tests: linear means
    /// at most one look per child per stop).
    steps: u64,
}

impl StopCursor {
    /// The last child before the cursor for which `live` holds, scanning
    /// backwards from where the previous call left off (from `len` the
    /// first time). Each child is looked at once over a whole stop.
    pub(super) fn next_live(&mut self, len: usize, live: impl Fn(usize) -> bool) -> Option<usize> {
        let mut i = self.next.unwrap_or(len).min(len);
        while i > 0 {
            i -= 1;
            self.steps += 1;
            if live(i) {
                self.next = Some(i);
                return Some(i);
            }
        }
        self.next = Some(0);
        None
    }

    /// How many children the scans have looked at so far.
    #[cfg(test)]
    pub(super) fn steps(&self) -> u64 {
        self.steps
    }
}

#[cfg(test)]
mod tests;
