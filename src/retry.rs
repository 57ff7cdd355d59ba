//! Retry timing shared by everything that reconnects (feeds, load's virtual users).

use std::time::Duration;

/// Exponential backoff: `base` after the first failure, doubling, never above `max`.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The wait after a failure, given the previous wait (None after a success).
    pub fn next(&self, previous: Option<Duration>) -> Duration {
        match previous {
            None => self.base.min(self.max),
            // max-then-min, not clamp: clamp panics when base > max.
            Some(prev) => prev.saturating_mul(2).max(self.base).min(self.max),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn backoff_doubles_from_base_and_caps_at_max() {
        let b = Backoff {
            base: S / 4,
            max: 2 * S,
        };
        let waits: Vec<_> = std::iter::successors(Some(b.next(None)), |w| Some(b.next(Some(*w))))
            .take(6)
            .collect();
        assert_eq!(waits, [S / 4, S / 2, S, 2 * S, 2 * S, 2 * S]);
    }

    #[test]
    fn backoff_cap_is_a_ceiling_not_a_floor() {
        // tokio-console's `max(backoff, MAX)` bug: the cap must never raise a short wait.
        let b = Backoff {
            base: S / 10,
            max: 5 * S,
        };
        assert_eq!(b.next(None), S / 10);
        assert_eq!(b.next(Some(S / 10)), S / 5);
    }
}
