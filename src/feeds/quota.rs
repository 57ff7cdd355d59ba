//! API-SPORTS's plan limits, counted on our side: requests per minute and per UTC
//! day. The scores client keeps within them; the mock upstream enforces them.

/// A client-side limit of requests per minute and per UTC day, in fixed windows.
/// What is left is the lower of this budget and what the upstream last said it has
/// left (less the requests made since), so its headers can only lower it.
#[derive(Debug, Clone)]
pub struct QuotaLimiter {
    per_day: u32,
    per_minute: u32,
    day: u64,
    used_today: u32,
    minute: u64,
    used_this_minute: u32,
    /// The upstream's word on the day and the minute: (left, requests made since).
    upstream_day: Option<(u32, u32)>,
    upstream_minute: Option<(u32, u32)>,
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
            upstream_day: None,
            upstream_minute: None,
        }
    }

    /// Takes one request from the quota at `unix_s` (seconds since the epoch, UTC).
    pub fn try_acquire(&mut self, unix_s: u64) -> Result<(), QuotaError> {
        self.roll(unix_s);
        if self.remaining_today() == 0 {
            return Err(QuotaError::DailySpent {
                resets_in_s: Self::daily_reset_in(unix_s),
            });
        }
        if self.remaining_this_minute() == 0 {
            return Err(QuotaError::MinuteSpent {
                resets_in_s: 60 - unix_s % 60,
            });
        }
        self.used_today += 1;
        self.used_this_minute += 1;
        for (_, since) in [&mut self.upstream_day, &mut self.upstream_minute]
            .into_iter()
            .flatten()
        {
            *since += 1;
        }
        Ok(())
    }

    /// Applies the upstream's `x-ratelimit-requests-remaining` (daily) header.
    pub fn observe_daily_remaining(&mut self, unix_s: u64, remaining: u32) {
        self.roll(unix_s);
        self.upstream_day = Some((remaining, 0));
    }

    /// Applies the upstream's `X-RateLimit-Remaining` (per-minute) header.
    pub fn observe_minute_remaining(&mut self, unix_s: u64, remaining: u32) {
        self.roll(unix_s);
        self.upstream_minute = Some((remaining, 0));
    }

    /// The upstream said the day's quota is spent, whatever was counted here.
    pub fn observe_daily_spent(&mut self, unix_s: u64) {
        self.observe_daily_remaining(unix_s, 0);
    }

    /// Seconds until the daily quota resets (00:00 UTC).
    pub fn daily_reset_in(unix_s: u64) -> u64 {
        86_400 - unix_s % 86_400
    }

    pub fn remaining_today(&self) -> u32 {
        lower(
            self.per_day.saturating_sub(self.used_today),
            self.upstream_day,
        )
    }

    pub fn remaining_this_minute(&self) -> u32 {
        lower(
            self.per_minute.saturating_sub(self.used_this_minute),
            self.upstream_minute,
        )
    }

    pub fn limits(&self) -> (u32, u32) {
        (self.per_day, self.per_minute)
    }

    fn roll(&mut self, unix_s: u64) {
        let (day, minute) = (unix_s / 86_400, unix_s / 60);
        if day != self.day {
            self.day = day;
            self.used_today = 0;
            self.upstream_day = None;
        }
        if minute != self.minute {
            self.minute = minute;
            self.used_this_minute = 0;
            self.upstream_minute = None;
        }
    }
}

/// The lower of our own budget's remainder and the upstream's last word less what
/// was asked since.
fn lower(own: u32, upstream: Option<(u32, u32)>) -> u32 {
    match upstream {
        Some((left, since)) => own.min(left.saturating_sub(since)),
        None => own,
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

    /// The upstream's count includes our requests: its word replaces ours for what
    /// it saw, and only what was asked after it is taken off again.
    #[test]
    fn the_upstreams_word_is_not_counted_twice() {
        let mut q = QuotaLimiter::new(100, 10);
        let t = 86_400 * 100 + 5;
        for _ in 0..5 {
            q.try_acquire(t).unwrap();
        }
        q.observe_daily_remaining(t, 90);
        assert_eq!(q.remaining_today(), 90);
        q.try_acquire(t).unwrap();
        assert_eq!(q.remaining_today(), 89);
        // A plan larger than our budget: our budget still binds.
        q.observe_daily_remaining(t, 7_000);
        assert_eq!(q.remaining_today(), 94);
        q.observe_minute_remaining(t, 1);
        assert_eq!(q.remaining_this_minute(), 1);
        q.try_acquire(t).unwrap();
        assert_eq!(q.remaining_this_minute(), 0);
        q.observe_daily_spent(t);
        assert_eq!(q.remaining_today(), 0);
    }
}
