//! API-SPORTS's plan limits, counted on our side: requests per minute and per UTC
//! day. The scores client keeps within them; the mock upstream enforces them.

/// A client-side limit of requests per minute and per UTC day, in fixed windows.
/// The upstream's own remaining-count headers can only lower what is left.
#[derive(Debug, Clone)]
pub struct QuotaLimiter {
    per_day: u32,
    per_minute: u32,
    day: u64,
    used_today: u32,
    minute: u64,
    used_this_minute: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaError {
    /// The daily quota is spent; it resets at 00:00 UTC.
    DailySpent { resets_in_s: u64 },
    /// The per-minute limit is reached.
    MinuteSpent { resets_in_s: u64 },
}

impl QuotaLimiter {
    pub fn new(per_day: u32, per_minute: u32) -> Self {
        Self {
            per_day,
            per_minute,
            day: 0,
            used_today: 0,
            minute: 0,
            used_this_minute: 0,
        }
    }

    /// Takes one request from the quota at `unix_s` (seconds since the epoch, UTC).
    pub fn try_acquire(&mut self, unix_s: u64) -> Result<(), QuotaError> {
        self.roll(unix_s);
        if self.used_today >= self.per_day {
            return Err(QuotaError::DailySpent {
                resets_in_s: 86_400 - unix_s % 86_400,
            });
        }
        if self.used_this_minute >= self.per_minute {
            return Err(QuotaError::MinuteSpent {
                resets_in_s: 60 - unix_s % 60,
            });
        }
        self.used_today += 1;
        self.used_this_minute += 1;
        Ok(())
    }

    /// Applies the upstream's `x-ratelimit-requests-remaining` (daily) header.
    pub fn observe_daily_remaining(&mut self, unix_s: u64, remaining: u32) {
        self.roll(unix_s);
        let used_per_upstream = self.per_day.saturating_sub(remaining);
        self.used_today = self.used_today.max(used_per_upstream);
    }

    pub fn remaining_today(&self) -> u32 {
        self.per_day.saturating_sub(self.used_today)
    }

    pub fn remaining_this_minute(&self) -> u32 {
        self.per_minute.saturating_sub(self.used_this_minute)
    }

    pub fn limits(&self) -> (u32, u32) {
        (self.per_day, self.per_minute)
    }

    fn roll(&mut self, unix_s: u64) {
        let (day, minute) = (unix_s / 86_400, unix_s / 60);
        if day != self.day {
            self.day = day;
            self.used_today = 0;
        }
        if minute != self.minute {
            self.minute = minute;
            self.used_this_minute = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_counts_per_day_and_minute_and_honours_upstream_remaining() {
        let mut q = QuotaLimiter::new(5, 2);
        let t = 86_400 * 100 + 30;
        assert!(q.try_acquire(t).is_ok());
        assert!(q.try_acquire(t).is_ok());
        assert_eq!(
            q.try_acquire(t),
            Err(QuotaError::MinuteSpent { resets_in_s: 30 })
        );
        assert!(q.try_acquire(t + 60).is_ok());
        q.observe_daily_remaining(t + 60, 0);
        assert!(matches!(
            q.try_acquire(t + 120),
            Err(QuotaError::DailySpent { .. })
        ));
        assert!(q.try_acquire(t + 86_400).is_ok(), "resets at 00:00 UTC");
    }
}
