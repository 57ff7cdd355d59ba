//! The circuit breaker in front of API-SPORTS: after a run of failures calls fail
//! fast for a while, then one probe decides. Pure: the current time is a parameter.

use std::time::{Duration, Instant};

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
    /// When the current open spell began (a failed probe opens it again, not anew).
    spell_began: Option<Instant>,
    probe_in_flight: bool,
}

/// What a call's outcome did to the breaker, for its metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    None,
    /// A closed circuit opened.
    Opened,
    /// An open spell ended, after this long.
    Recovered(Duration),
}

impl CircuitBreaker {
    pub fn new(failure_threshold: u32, open_for: Duration) -> Self {
        Self {
            failure_threshold: failure_threshold.max(1),
            open_for,
            consecutive_failures: 0,
            opened_at: None,
            spell_began: None,
            probe_in_flight: false,
        }
    }

    /// Failures in a row so far.
    pub fn failures(&self) -> u32 {
        self.consecutive_failures
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

    pub fn success(&mut self, now: Instant) -> Change {
        self.consecutive_failures = 0;
        self.opened_at = None;
        self.probe_in_flight = false;
        match self.spell_began.take() {
            Some(began) => Change::Recovered(now.duration_since(began)),
            None => Change::None,
        }
    }

    /// A half-open probe was admitted but made no call: free the slot for another.
    pub fn success_if_probe(&mut self) {
        self.probe_in_flight = false;
    }

    pub fn failure(&mut self, now: Instant) -> Change {
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        let opens = self.probe_in_flight || self.consecutive_failures >= self.failure_threshold;
        self.probe_in_flight = false;
        if !opens {
            return Change::None;
        }
        self.opened_at = Some(now);
        if self.spell_began.is_some() {
            return Change::None;
        }
        self.spell_began = Some(now);
        Change::Opened
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

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
        c.success(t0 + 20 * S);
        assert_eq!(c.state(t0 + 20 * S), CircuitState::Closed);
    }

    #[test]
    fn a_spell_opens_once_and_recovers_after_its_whole_length() {
        let t0 = Instant::now();
        let mut c = CircuitBreaker::new(2, 10 * S);
        assert_eq!(c.failure(t0), Change::None);
        assert_eq!(c.failures(), 1);
        assert_eq!(c.failure(t0), Change::Opened);
        // A failed probe opens it again: the same spell.
        assert!(c.allow(t0 + 10 * S).is_ok());
        assert_eq!(c.failure(t0 + 10 * S), Change::None);
        assert!(c.allow(t0 + 20 * S).is_ok());
        assert_eq!(c.success(t0 + 21 * S), Change::Recovered(21 * S));
        assert_eq!(c.failures(), 0);
        assert_eq!(c.success(t0 + 22 * S), Change::None);
    }
}
