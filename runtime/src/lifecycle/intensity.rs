//! Restart intensity: at most N restarts in a sliding window (sans-IO).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// At most `max_restarts` restarts within `within`; one more makes the
/// supervisor give up and escalate. OTP's default is 1 in 5 s; msa's is 3 in 5 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Intensity {
    /// Restarts allowed within the window.
    pub max_restarts: u32,
    /// The window.
    pub within: Duration,
}

impl Default for Intensity {
    fn default() -> Self {
        Self {
            max_restarts: 3,
            within: Duration::from_secs(5),
        }
    }
}

impl Intensity {
    /// The shortest period accepted: a shorter one (OTP refuses 0) lets a
    /// child that fails at once restart without bound, since restarts never
    /// pile up in the window.
    pub const MIN_PERIOD: Duration = Duration::from_millis(1);

    /// Why this intensity is refused, if it is.
    pub(crate) fn invalid(&self) -> Option<String> {
        (self.within < Self::MIN_PERIOD).then(|| {
            format!(
                "the restart period {:?} is shorter than {:?}",
                self.within,
                Self::MIN_PERIOD
            )
        })
    }

    /// Checks this intensity for `owner` (a service or supervisor name).
    pub(crate) fn validate(&self, owner: &str) -> Result<(), crate::error::SpawnError> {
        match self.invalid() {
            Some(reason) => Err(crate::error::SpawnError::InvalidIntensity {
                owner: owner.to_string(),
                reason,
            }),
            None => Ok(()),
        }
    }
}

/// The restart history of one supervisor. Pure: time comes in as an argument.
#[derive(Debug, Clone)]
pub(crate) struct RestartWindow {
    limit: Intensity,
    restarts: VecDeque<Instant>,
}

impl RestartWindow {
    pub(crate) fn new(limit: Intensity) -> Self {
        Self {
            limit,
            restarts: VecDeque::new(),
        }
    }

    /// The restarts allowed within the period.
    pub(crate) fn max_restarts(&self) -> u32 {
        self.limit.max_restarts
    }

    /// Records a restart at `now`; returns `false` when it exceeds the intensity
    /// (the supervisor must give up instead of restarting).
    pub(crate) fn record(&mut self, now: Instant) -> bool {
        while let Some(&t) = self.restarts.front() {
            if now.saturating_duration_since(t) > self.limit.within {
                self.restarts.pop_front();
            } else {
                break;
            }
        }
        if self.restarts.len() as u64 >= u64::from(self.limit.max_restarts) {
            return false;
        }
        self.restarts.push_back(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_max_restarts_then_refuses() {
        let mut w = RestartWindow::new(Intensity {
            max_restarts: 2,
            within: Duration::from_secs(5),
        });
        let t0 = Instant::now();
        assert!(w.record(t0));
        assert!(w.record(t0 + Duration::from_secs(1)));
        assert!(!w.record(t0 + Duration::from_secs(2)));
    }

    #[test]
    fn old_restarts_leave_the_window() {
        let mut w = RestartWindow::new(Intensity {
            max_restarts: 1,
            within: Duration::from_secs(5),
        });
        let t0 = Instant::now();
        assert!(w.record(t0));
        assert!(!w.record(t0 + Duration::from_secs(4)));
        assert!(w.record(t0 + Duration::from_secs(6)));
    }

    #[test]
    fn zero_intensity_never_restarts() {
        let mut w = RestartWindow::new(Intensity {
            max_restarts: 0,
            within: Duration::from_secs(5),
        });
        assert!(!w.record(Instant::now()));
    }
}
