//! The per-connection limit on client frames: a token bucket that admits a steady
//! `rate` per second with bursts of up to `burst`. The contract needs one ping every
//! few seconds, so the default is far above any honest client; what it stops is a
//! client that floods the server with frames that each cost a parse and a reply.

use std::time::{Duration, Instant};

/// What to do with one client frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Within the limit: handle it.
    Yes,
    /// The first frame over the limit: drop it and tell the client (once).
    Warn,
    /// Over the limit again, but within the grace the warning gives: drop it silently.
    Drop,
    /// Still flooding after the warning: close with 1008.
    Cut,
}

/// Frames per second and burst a connection may send.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InboundRate {
    pub per_second: f64,
    pub burst: f64,
}

impl InboundRate {
    /// `per_second` with bursts of twice that; None when `per_second` is 0 (no limit).
    pub fn per_second(per_second: u32) -> Option<Self> {
        (per_second > 0).then_some(Self {
            per_second: per_second as f64,
            burst: 2.0 * per_second as f64,
        })
    }
}

/// One connection's bucket.
#[derive(Debug)]
pub struct InboundLimit {
    rate: InboundRate,
    tokens: f64,
    refilled_at: Instant,
    /// Frames dropped since the warning; past `burst` the client is cut off.
    excess: f64,
    warned: bool,
}

impl InboundLimit {
    pub fn new(rate: InboundRate, now: Instant) -> Self {
        Self {
            rate,
            tokens: rate.burst,
            refilled_at: now,
            excess: 0.0,
            warned: false,
        }
    }

    pub fn admit(&mut self, now: Instant) -> Admit {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Admit::Yes;
        }
        if !self.warned {
            self.warned = true;
            return Admit::Warn;
        }
        // The frames already in flight when the warning left are forgiven; a client
        // that goes on past another burst's worth is not listening.
        self.excess += 1.0;
        if self.excess > self.rate.burst {
            Admit::Cut
        } else {
            Admit::Drop
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.refilled_at);
        if elapsed < Duration::from_micros(100) {
            return;
        }
        self.refilled_at = now;
        self.tokens =
            (self.tokens + elapsed.as_secs_f64() * self.rate.per_second).min(self.rate.burst);
        // A client that let its bucket fill up again has slowed down: forgiven.
        if self.tokens >= self.rate.burst {
            self.warned = false;
            self.excess = 0.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(per_second: u32) -> (InboundLimit, Instant) {
        let now = Instant::now();
        let rate = InboundRate::per_second(per_second).unwrap();
        (InboundLimit::new(rate, now), now)
    }

    #[test]
    fn zero_means_no_limit() {
        assert_eq!(InboundRate::per_second(0), None);
    }

    #[test]
    fn a_burst_of_twice_the_rate_is_admitted_then_one_warning() {
        let (mut limit, now) = limit(10);
        for _ in 0..20 {
            assert_eq!(limit.admit(now), Admit::Yes);
        }
        assert_eq!(limit.admit(now), Admit::Warn);
        assert_eq!(limit.admit(now), Admit::Drop);
    }

    #[test]
    fn a_flood_after_the_warning_is_cut_after_another_burst() {
        let (mut limit, now) = limit(10);
        let verdicts: Vec<Admit> = (0..60).map(|_| limit.admit(now)).collect();
        assert_eq!(verdicts.iter().filter(|v| **v == Admit::Yes).count(), 20);
        assert_eq!(verdicts[20], Admit::Warn);
        assert_eq!(verdicts[21..41], [Admit::Drop; 20]);
        assert_eq!(verdicts[41], Admit::Cut);
    }

    #[test]
    fn the_steady_rate_is_admitted_forever() {
        let (mut limit, start) = limit(10);
        for i in 0..10_000u64 {
            let now = start + Duration::from_millis(100 * i);
            assert_eq!(limit.admit(now), Admit::Yes, "frame {i}");
        }
    }

    #[test]
    fn a_client_that_slows_down_after_the_warning_is_forgiven() {
        let (mut limit, now) = limit(10);
        while limit.admit(now) != Admit::Warn {}
        assert_eq!(limit.admit(now), Admit::Drop);
        // Two seconds of silence refill the bucket: a fresh burst, a fresh warning.
        let later = now + Duration::from_secs(2);
        for _ in 0..20 {
            assert_eq!(limit.admit(later), Admit::Yes);
        }
        assert_eq!(limit.admit(later), Admit::Warn);
    }
}
