//! Timer coalescing (issue 12: an idle node of three wakes ≤ 20 times a
//! second). Every periodic timer of a node's remoting (the data
//! connections' heartbeat ticks, the reachability judgement, the rejoin
//! tick, foca's timers) falls on one grid of instants counted from the
//! node's epoch, so timers that are due together fire in one wake-up of
//! the arbiter instead of each at its own phase.

use std::time::Duration;

use tokio::time::Instant;

/// Instants that are whole multiples of a period after an epoch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Grid {
    epoch: Instant,
}

impl Grid {
    pub(crate) fn new(epoch: Instant) -> Self {
        Self { epoch }
    }

    /// The grid whose points are whole seconds of the system clock (and the
    /// periods that divide a second): nodes whose clocks agree (one host, or
    /// hosts kept in time) send their periodic frames at the same instants,
    /// so what a node receives from its peers comes while it is awake for
    /// its own timers. The phase is read once; a clock step later only moves
    /// the phase.
    pub(crate) fn of_system_clock() -> Self {
        let now = Instant::now();
        let into_second = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| Duration::from_nanos(u64::from(d.subsec_nanos())))
            .unwrap_or_default();
        Self::new(now.checked_sub(into_second).unwrap_or(now))
    }

    /// The grid point of `step` nearest to `t` (ties round up); `t` itself
    /// when `step` is zero or `t` is before the epoch.
    pub(crate) fn nearest(&self, t: Instant, step: Duration) -> Instant {
        let step_ns = step.as_nanos();
        let Some(since) = t.checked_duration_since(self.epoch) else {
            return t;
        };
        if step_ns == 0 {
            return t;
        }
        let n = (since.as_nanos() + step_ns / 2) / step_ns;
        self.point(n, step_ns).unwrap_or(t)
    }

    /// The first grid point of `step` at or after `t`.
    pub(crate) fn at_or_after(&self, t: Instant, step: Duration) -> Instant {
        let step_ns = step.as_nanos();
        let Some(since) = t.checked_duration_since(self.epoch) else {
            return t;
        };
        if step_ns == 0 {
            return t;
        }
        let n = since.as_nanos().div_ceil(step_ns);
        self.point(n, step_ns).unwrap_or(t)
    }

    fn point(&self, n: u128, step_ns: u128) -> Option<Instant> {
        let ns = u64::try_from(n.checked_mul(step_ns)?).ok()?;
        self.epoch.checked_add(Duration::from_nanos(ns))
    }

    /// An interval of `period` whose first tick is now and whose later
    /// ticks fall on the grid of `period` (a late tick skips to the next
    /// grid point, so the phase never drifts).
    pub(crate) fn interval(&self, period: Duration) -> tokio::time::Interval {
        let now = Instant::now();
        let next = self.at_or_after(now, period);
        // The first tick one period before the next grid point: it is
        // already due, and the ticks after it are on the grid.
        let first = next.checked_sub(period).unwrap_or(now).min(now);
        let mut i = tokio::time::interval_at(first, period.max(Duration::from_millis(1)));
        i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        i
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_round_to_the_grid_of_the_epoch() {
        let e = Instant::now();
        let g = Grid::new(e);
        let ms = Duration::from_millis;
        assert_eq!(g.nearest(e + ms(524), ms(50)), e + ms(500));
        assert_eq!(g.nearest(e + ms(525), ms(50)), e + ms(550));
        assert_eq!(g.nearest(e + ms(501), ms(250)), e + ms(500));
        assert_eq!(g.at_or_after(e + ms(501), ms(250)), e + ms(750));
        assert_eq!(g.at_or_after(e + ms(750), ms(250)), e + ms(750));
        // No grid: the instant itself.
        assert_eq!(g.nearest(e + ms(7), Duration::ZERO), e + ms(7));
    }

    #[tokio::test(start_paused = true)]
    async fn an_interval_ticks_now_then_on_the_grid() {
        let ms = Duration::from_millis;
        let e = Instant::now();
        let g = Grid::new(e);
        tokio::time::advance(ms(130)).await;
        let mut i = g.interval(ms(500));
        let t0 = i.tick().await;
        assert!(t0 <= Instant::now(), "the first tick is due at once");
        assert_eq!(i.tick().await, e + ms(500));
        assert_eq!(i.tick().await, e + ms(1000));
        // A late tick skips to the grid rather than shifting it.
        tokio::time::advance(ms(1200)).await;
        let _late = i.tick().await;
        assert_eq!(i.tick().await, e + ms(2500));
    }
}
