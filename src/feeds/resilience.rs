//! Timeouts, backoff, health, circuit breaking, rate limiting and caching for
//! upstream calls. Everything here is pure: the current time is a parameter, so each
//! rule is unit-tested without a clock.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::contract::SourceHealth;

pub use crate::retry::Backoff;

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

/// Closed (calls go through), open (calls fail fast), half-open (one probe).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    Closed,
    Open,
    HalfOpen,
}

impl CircuitState {
    pub fn as_str(self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half_open",
        }
    }
}

#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    failure_threshold: u32,
    open_for: Duration,
    consecutive_failures: u32,
    opened_at: Option<Instant>,
    probe_in_flight: bool,
}

impl CircuitBreaker {
    pub fn new(failure_threshold: u32, open_for: Duration) -> Self {
        Self {
            failure_threshold: failure_threshold.max(1),
            open_for,
            consecutive_failures: 0,
            opened_at: None,
            probe_in_flight: false,
        }
    }

    pub fn state(&self, now: Instant) -> CircuitState {
        match self.opened_at {
            None => CircuitState::Closed,
            Some(at) if now.duration_since(at) >= self.open_for => CircuitState::HalfOpen,
            Some(_) => CircuitState::Open,
        }
    }

    /// May a call go out now? Err carries how long until the next probe.
    pub fn allow(&mut self, now: Instant) -> Result<(), Duration> {
        match self.state(now) {
            CircuitState::Closed => Ok(()),
            CircuitState::HalfOpen if !self.probe_in_flight => {
                self.probe_in_flight = true;
                Ok(())
            }
            CircuitState::HalfOpen => Err(Duration::ZERO),
            CircuitState::Open => {
                let opened = self.opened_at.unwrap_or(now);
                Err(self.open_for.saturating_sub(now.duration_since(opened)))
            }
        }
    }

    pub fn success(&mut self) {
        self.consecutive_failures = 0;
        self.opened_at = None;
        self.probe_in_flight = false;
    }

    /// A half-open probe was admitted but made no call: free the slot for another.
    pub fn success_if_probe(&mut self) {
        self.probe_in_flight = false;
    }

    pub fn failure(&mut self, now: Instant) {
        self.consecutive_failures += 1;
        if self.probe_in_flight || self.consecutive_failures >= self.failure_threshold {
            self.opened_at = Some(now);
        }
        self.probe_in_flight = false;
    }
}

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

/// A map whose entries expire `ttl` after they were put.
#[derive(Debug)]
pub struct TtlCache<K, V> {
    ttl: Duration,
    entries: HashMap<K, (Instant, V)>,
}

impl<K: Eq + Hash, V: Clone> TtlCache<K, V> {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: HashMap::new(),
        }
    }

    pub fn get(&self, key: &K, now: Instant) -> Option<V> {
        self.entries
            .get(key)
            .filter(|(at, _)| now.duration_since(*at) < self.ttl)
            .map(|(_, v)| v.clone())
    }

    /// The entry with how long ago it was put.
    pub fn get_aged(&self, key: &K, now: Instant) -> Option<(V, Duration)> {
        self.entries
            .get(key)
            .map(|(at, v)| (now.duration_since(*at), v))
            .filter(|(age, _)| *age < self.ttl)
            .map(|(age, v)| (v.clone(), age))
    }

    pub fn put(&mut self, key: K, value: V, now: Instant) {
        self.entries.insert(key, (now, value));
    }

    /// Forgets every entry; returns how many there were.
    pub fn clear(&mut self) -> usize {
        let n = self.entries.len();
        self.entries.clear();
        n
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

    #[test]
    fn circuit_opens_after_threshold_and_half_opens_for_one_probe() {
        let t0 = Instant::now();
        let mut c = CircuitBreaker::new(3, 10 * S);
        for _ in 0..3 {
            assert!(c.allow(t0).is_ok());
            c.failure(t0);
        }
        assert_eq!(c.state(t0), CircuitState::Open);
        assert_eq!(c.allow(t0 + S), Err(9 * S));
        assert_eq!(c.state(t0 + 10 * S), CircuitState::HalfOpen);
        assert!(c.allow(t0 + 10 * S).is_ok());
        assert!(c.allow(t0 + 10 * S).is_err(), "only one probe at a time");
        c.failure(t0 + 10 * S);
        assert_eq!(c.state(t0 + 11 * S), CircuitState::Open);
        assert!(c.allow(t0 + 20 * S).is_ok());
        c.success();
        assert_eq!(c.state(t0 + 20 * S), CircuitState::Closed);
    }

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

    #[test]
    fn ttl_cache_expires() {
        let t0 = Instant::now();
        let mut c = TtlCache::new(S);
        c.put("nfl", 1, t0);
        assert_eq!(c.get(&"nfl", t0 + S / 2), Some(1));
        assert_eq!(c.get(&"nfl", t0 + S), None);
    }
}
