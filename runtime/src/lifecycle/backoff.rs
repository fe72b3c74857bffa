//! Exponential backoff between restarts.

use std::time::Duration;

/// Delay before the n-th consecutive restart: `initial * factor^(n-1)`,
/// capped at `max`. The count resets once a child has run for `max` without
/// failing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// Delay before the first restart.
    pub initial: Duration,
    /// Upper bound.
    pub max: Duration,
    /// Growth per consecutive restart (≥ 1).
    pub factor: f64,
}

impl Backoff {
    /// A backoff doubling from `initial` up to `max`.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// let b = msa_runtime::Backoff::exponential(Duration::from_millis(10), Duration::from_secs(1));
    /// assert_eq!(b.delay(1), Duration::from_millis(10));
    /// assert_eq!(b.delay(3), Duration::from_millis(40));
    /// assert_eq!(b.delay(30), Duration::from_secs(1));
    /// ```
    pub fn exponential(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            factor: 2.0,
        }
    }

    /// The delay before the `n`-th consecutive restart (n ≥ 1).
    pub fn delay(&self, n: u32) -> Duration {
        let exp = n.saturating_sub(1).min(64) as i32;
        let secs = self.initial.as_secs_f64() * self.factor.max(1.0).powi(exp);
        if !secs.is_finite() || secs >= self.max.as_secs_f64() {
            self.max
        } else {
            Duration::from_secs_f64(secs)
        }
    }
}
