//! A source's health: ok, stale or down, from when it last answered well. Pure: the
//! current time is a parameter, so each rule is unit-tested without a clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::contract::SourceHealth;

/// When a source counts as stale or down, and what its health is told to.
#[derive(Debug, Clone)]
pub struct HealthPolicy {
    /// No successful fetch for this long: stale.
    pub stale_after: Duration,
    /// No successful fetch for this long: down.
    pub down_after: Duration,
    /// Where each success is published (`/health` shows its age).
    pub liveness: Liveness,
    /// Time this process did not run: not the source's silence.
    pub stalls: Stalls,
}

impl HealthPolicy {
    pub fn new(stale_after: Duration, down_after: Duration) -> Self {
        Self {
            stale_after,
            down_after,
            liveness: Liveness::new(),
            stalls: Stalls::default(),
        }
    }
}

/// When a source last answered well, shared between its feed and whoever reports it.
#[derive(Debug, Clone)]
pub struct Liveness {
    base: Instant,
    /// Nanoseconds after `base` of the last success, plus one (0: never).
    last: Arc<AtomicU64>,
}

impl Liveness {
    pub fn new() -> Self {
        Self {
            base: Instant::now(),
            last: Arc::new(AtomicU64::new(0)),
        }
    }

    pub fn mark(&self, at: Instant) {
        let nanos = at.saturating_duration_since(self.base).as_nanos() as u64;
        self.last.store(nanos.saturating_add(1), Ordering::Relaxed);
    }

    pub fn last(&self) -> Option<Instant> {
        match self.last.load(Ordering::Relaxed) {
            0 => None,
            n => Some(self.base + Duration::from_nanos(n - 1)),
        }
    }
}

impl Default for Liveness {
    fn default() -> Self {
        Self::new()
    }
}

/// Time the whole process did not run (a `kill -STOP`, a starved machine), as a
/// watchdog measured it. Health subtracts it: a paused process must not find every
/// source "down" the moment it runs again.
#[derive(Debug, Clone)]
pub struct Stalls(Arc<StallClock>);

#[derive(Debug)]
struct StallClock {
    base: Instant,
    /// Stalled time measured so far, µs.
    total: AtomicU64,
    /// When the watchdog last looked, µs after `base` (0: no watchdog).
    beat: AtomicU64,
}

impl Stalls {
    /// The watchdog is this late before its lateness counts as a stall.
    pub const AFTER: Duration = Duration::from_millis(500);

    pub fn new() -> Self {
        Self(Arc::new(StallClock {
            base: Instant::now(),
            total: AtomicU64::new(0),
            beat: AtomicU64::new(0),
        }))
    }

    fn micros(&self, at: Instant) -> u64 {
        (at.saturating_duration_since(self.0.base).as_micros() as u64).max(1)
    }

    /// The watchdog looked at the clock at `now`: a long gap since its last look is
    /// a stall. Returns the stall it found.
    pub fn observe(&self, now: Instant) -> Option<Duration> {
        let now = self.micros(now);
        let last = self.0.beat.swap(now, Ordering::Relaxed);
        let gap = Duration::from_micros(now.saturating_sub(last));
        (last != 0 && gap > Self::AFTER).then(|| {
            self.0
                .total
                .fetch_add(gap.as_micros() as u64, Ordering::Relaxed);
            gap
        })
    }

    /// All stalls up to `now`, in µs: a mark to measure later stalls from.
    pub fn mark(&self, now: Instant) -> u64 {
        self.0.total.load(Ordering::Relaxed) + self.unseen(now)
    }

    /// The stalls between `mark` and `now`.
    pub fn since(&self, mark: u64, now: Instant) -> Duration {
        Duration::from_micros(self.mark(now).saturating_sub(mark))
    }

    /// A stall the watchdog has not seen yet: the process just resumed and the
    /// caller ran before the watchdog did.
    fn unseen(&self, now: Instant) -> u64 {
        match self.0.beat.load(Ordering::Relaxed) {
            0 => 0,
            beat => match self.micros(now).saturating_sub(beat) {
                late if late > Self::AFTER.as_micros() as u64 => late,
                _ => 0,
            },
        }
    }
}

impl Default for Stalls {
    fn default() -> Self {
        Self::new()
    }
}

/// The health of one source, driven by successes, failures and silence.
#[derive(Debug, Clone)]
pub struct HealthTracker {
    policy: HealthPolicy,
    state: SourceHealth,
    last_success: Option<Instant>,
    started: Instant,
    /// The stalls total at the last success (or the start).
    stalls_mark: u64,
    /// A bad answer came after the last good one: signs of life alone (pings) do
    /// not make the source healthy until good data does.
    failing: bool,
}

impl HealthTracker {
    /// A source starts `stale`: it has not answered yet.
    pub fn new(policy: HealthPolicy, now: Instant) -> Self {
        Self {
            stalls_mark: policy.stalls.mark(now),
            policy,
            state: SourceHealth::Stale,
            last_success: None,
            started: now,
            failing: false,
        }
    }

    pub fn state(&self) -> SourceHealth {
        self.state
    }

    /// Records a good answer; returns the new state if it changed.
    pub fn success(&mut self, now: Instant) -> Option<SourceHealth> {
        self.failing = false;
        self.last_success = Some(now);
        self.stalls_mark = self.policy.stalls.mark(now);
        self.policy.liveness.mark(now);
        self.set(SourceHealth::Ok)
    }

    /// Records a failure; returns the new state if it changed. One bad answer changes
    /// nothing by itself: the state follows how long the source has been without a
    /// good one (hysteresis), so a source that fails now and then does not flap.
    pub fn failure(&mut self, now: Instant) -> Option<SourceHealth> {
        self.failing = true;
        self.worsen_by_silence(now)
    }

    /// Records a sign of life that carries no data (a ping, a pong): it keeps a
    /// healthy source healthy, but cannot vouch for one whose data is bad.
    pub fn alive(&mut self, now: Instant) -> Option<SourceHealth> {
        if self.failing {
            self.worsen_by_silence(now)
        } else {
            self.success(now)
        }
    }

    /// Re-evaluates after a period with no news (a stream that went quiet).
    pub fn tick(&mut self, now: Instant) -> Option<SourceHealth> {
        self.worsen_by_silence(now)
    }

    /// How long the source has been without a good answer, not counting the time this
    /// process was stalled.
    fn silent_for(&self, now: Instant) -> Duration {
        now.duration_since(self.last_success.unwrap_or(self.started))
            .saturating_sub(self.policy.stalls.since(self.stalls_mark, now))
    }

    fn worsen_by_silence(&mut self, now: Instant) -> Option<SourceHealth> {
        let silent_for = self.silent_for(now);
        let next = if silent_for >= self.policy.down_after {
            SourceHealth::Down
        } else if silent_for >= self.policy.stale_after {
            SourceHealth::Stale
        } else {
            return None;
        };
        // Silence and failures only make things worse, never better.
        if rank(next) > rank(self.state) {
            self.set(next)
        } else {
            None
        }
    }

    fn set(&mut self, next: SourceHealth) -> Option<SourceHealth> {
        (next != self.state).then(|| {
            self.state = next;
            next
        })
    }
}

fn rank(h: SourceHealth) -> u8 {
    match h {
        SourceHealth::Ok => 0,
        SourceHealth::Stale => 1,
        SourceHealth::Down => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn health_goes_stale_then_down_and_recovers() {
        let policy = HealthPolicy::new(2 * S, 5 * S);
        let t0 = Instant::now();
        let mut h = HealthTracker::new(policy.clone(), t0);
        assert_eq!(h.success(t0), Some(SourceHealth::Ok));
        assert_eq!(
            policy.liveness.last(),
            Some(t0),
            "each success is published"
        );
        // One bad answer changes nothing; the silence since the last good one does.
        assert_eq!(h.failure(t0 + S), None);
        assert_eq!(h.failure(t0 + 2 * S), Some(SourceHealth::Stale));
        assert_eq!(h.failure(t0 + 3 * S), None);
        assert_eq!(h.failure(t0 + 5 * S), Some(SourceHealth::Down));
        assert_eq!(h.success(t0 + 6 * S), Some(SourceHealth::Ok));
        assert_eq!(h.tick(t0 + 7 * S), None);
        assert_eq!(h.tick(t0 + 9 * S), Some(SourceHealth::Stale));
        assert_eq!(h.tick(t0 + 11 * S), Some(SourceHealth::Down));
    }

    #[test]
    fn a_stalled_process_does_not_find_its_sources_down() {
        let policy = HealthPolicy::new(2 * S, 5 * S);
        let stalls = policy.stalls.clone();
        let t0 = Instant::now();
        let mut h = HealthTracker::new(policy, t0);
        stalls.observe(t0);
        assert_eq!(h.success(t0), Some(SourceHealth::Ok));
        // `kill -STOP` for 10 s; on `-CONT` the feed looks before the watchdog does.
        assert_eq!(h.tick(t0 + 10 * S), None, "an unseen stall counts too");
        let seen = stalls.observe(t0 + 10 * S + S / 10).expect("a stall");
        assert!(seen.abs_diff(10 * S + S / 10) < S / 1000, "{seen:?}");
        assert_eq!(h.tick(t0 + 10 * S + S / 2), None);
        // Really silent after that: stale, then down, on the source's own time.
        let step = S * 2 / 5;
        for k in 1..=5 {
            assert_eq!(stalls.observe(t0 + 10 * S + S / 10 + k * step), None);
        }
        assert_eq!(h.tick(t0 + 12 * S + S / 5), Some(SourceHealth::Stale));
        for k in 1..=10 {
            assert_eq!(stalls.observe(t0 + 12 * S + S / 10 + k * step), None);
        }
        assert_eq!(h.tick(t0 + 16 * S + S / 5), Some(SourceHealth::Down));
        // A success while the stall is unseen is not undone when the watchdog sees it.
        let mut fresh = HealthTracker::new(HealthPolicy::new(2 * S, 5 * S), t0);
        let stalls = fresh.policy.stalls.clone();
        stalls.observe(t0);
        assert_eq!(fresh.success(t0 + 10 * S), Some(SourceHealth::Ok));
        for k in 0..=5 {
            stalls.observe(t0 + 10 * S + S / 10 + k * step);
        }
        assert_eq!(fresh.tick(t0 + 12 * S + S / 5), Some(SourceHealth::Stale));
        // Pings between bad answers do not make a source with bad data healthy.
        let mut bad_data = HealthTracker::new(HealthPolicy::new(2 * S, 5 * S), t0);
        assert_eq!(bad_data.success(t0), Some(SourceHealth::Ok));
        assert_eq!(bad_data.alive(t0 + S), None);
        assert_eq!(bad_data.failure(t0 + S + S / 2), None);
        assert_eq!(bad_data.alive(t0 + 2 * S), None, "ping after bad data");
        assert_eq!(bad_data.failure(t0 + 3 * S), Some(SourceHealth::Stale));
        assert_eq!(bad_data.alive(t0 + 4 * S), None);
        assert_eq!(bad_data.failure(t0 + 6 * S), Some(SourceHealth::Down));
        assert_eq!(bad_data.success(t0 + 7 * S), Some(SourceHealth::Ok));
        // A source that never answered: stale until down_after has passed.
        let mut never = HealthTracker::new(HealthPolicy::new(2 * S, 5 * S), t0);
        assert_eq!(never.failure(t0 + S), None);
        assert_eq!(never.failure(t0 + 5 * S), Some(SourceHealth::Down));
    }
}
