//! Faults injected into the mock upstreams: `--fault` at start, `POST /admin/faults`
//! at run time.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::contract::Source;

/// How a faulty upstream misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultMode {
    /// Answers 503 to every request and drops streams.
    Down,
    /// Delays every answer (and every streamed message) by [`SLOW_DELAY`].
    Slow,
    /// Answers 500 with an error body.
    Error,
    /// Answers 200 with a body that is not valid JSON (streams send garbage frames).
    Malformed,
    /// Answers as the real upstream does when its rate limit is hit.
    RateLimited,
}

/// How long a `slow` upstream takes: longer than the aggregator's request timeout.
pub const SLOW_DELAY: Duration = Duration::from_secs(3);

impl FaultMode {
    pub const ALL: [FaultMode; 5] = [
        FaultMode::Down,
        FaultMode::Slow,
        FaultMode::Error,
        FaultMode::Malformed,
        FaultMode::RateLimited,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FaultMode::Down => "down",
            FaultMode::Slow => "slow",
            FaultMode::Error => "error",
            FaultMode::Malformed => "malformed",
            FaultMode::RateLimited => "rate_limited",
        }
    }
}

/// A fault to inject: `SOURCE=MODE[:DURATION]`, e.g. `espn=down:30s`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultSpec {
    pub source: Source,
    pub mode: FaultMode,
    /// None: until cleared.
    pub duration: Option<Duration>,
}

impl FromStr for FaultSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (source, rest) = s.split_once('=').ok_or_else(|| {
            format!("expected SOURCE=MODE[:DURATION] (e.g. espn=down:30s), got {s:?}")
        })?;
        let source = Source::parse(source).ok_or_else(|| {
            format!("unknown source {source:?}; expected espn, kalshi or apisports")
        })?;
        let (mode, duration) = match rest.split_once(':') {
            Some((m, d)) => (m, Some(d)),
            None => (rest, None),
        };
        let mode = FaultMode::ALL
            .into_iter()
            .find(|m| m.as_str() == mode)
            .ok_or_else(|| {
                format!("unknown fault mode {mode:?}; expected down, slow, error, malformed or rate_limited")
            })?;
        let duration = duration.map(parse_duration).transpose()?;
        Ok(FaultSpec {
            source,
            mode,
            duration,
        })
    }
}

/// The longest fault: longer ones are refused rather than passed to a clock that
/// cannot add them (use no duration for a fault that lasts until cleared).
pub const MAX_FAULT_DURATION: Duration = Duration::from_secs(30 * 24 * 3600);

/// A fault's duration in humantime ("30s", "5m"), at most [`MAX_FAULT_DURATION`].
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text).map_err(|e| format!("bad duration {text:?}: {e}"))?;
    if d > MAX_FAULT_DURATION {
        return Err(format!(
            "bad duration {text:?}: longer than 30 days; leave the duration out for a fault that lasts until cleared"
        ));
    }
    Ok(d)
}

#[derive(Debug, Clone, Copy)]
struct ActiveFault {
    mode: FaultMode,
    until: Option<Instant>,
}

/// The faults currently injected, shared by the mock routers and the admin API.
#[derive(Debug, Clone, Default)]
pub struct FaultPlan {
    active: Arc<RwLock<HashMap<Source, ActiveFault>>>,
}

/// A fault as the admin API lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultView {
    pub source: Source,
    pub mode: FaultMode,
    /// Seconds left, or null when it lasts until cleared.
    pub remaining_s: Option<f64>,
}

impl FaultPlan {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn inject(&self, spec: &FaultSpec, now: Instant) {
        let fault = ActiveFault {
            mode: spec.mode,
            // Durations are bounded when parsed; one built in code that the clock
            // cannot add lasts until cleared.
            until: spec.duration.and_then(|d| now.checked_add(d)),
        };
        self.write().insert(spec.source, fault);
    }

    /// Clears the fault on `source`, or all faults when None.
    pub fn clear(&self, source: Option<Source>) {
        match source {
            Some(s) => {
                self.write().remove(&s);
            }
            None => self.write().clear(),
        }
    }

    /// The fault on `source` right now, if any.
    pub fn active(&self, source: Source, now: Instant) -> Option<FaultMode> {
        let guard = self.active.read().unwrap_or_else(|e| e.into_inner());
        guard
            .get(&source)
            .filter(|f| f.until.is_none_or(|u| now < u))
            .map(|f| f.mode)
    }

    pub fn list(&self, now: Instant) -> Vec<FaultView> {
        let guard = self.active.read().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<FaultView> = guard
            .iter()
            .filter(|(_, f)| f.until.is_none_or(|u| now < u))
            .map(|(source, f)| FaultView {
                source: *source,
                mode: f.mode,
                remaining_s: f.until.map(|u| u.duration_since(now).as_secs_f64()),
            })
            .collect();
        out.sort_by_key(|f| f.source.as_str());
        out
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<Source, ActiveFault>> {
        self.active.write().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_specs_parse_and_explain_mistakes() {
        let f: FaultSpec = "espn=down:30s".parse().unwrap();
        assert_eq!(
            f,
            FaultSpec {
                source: Source::Espn,
                mode: FaultMode::Down,
                duration: Some(Duration::from_secs(30))
            }
        );
        let f: FaultSpec = "kalshi=rate_limited".parse().unwrap();
        assert_eq!(f.duration, None);
        assert!(
            "espn"
                .parse::<FaultSpec>()
                .unwrap_err()
                .contains("SOURCE=MODE")
        );
        assert!(
            "nba=down"
                .parse::<FaultSpec>()
                .unwrap_err()
                .contains("unknown source")
        );
        assert!(
            "espn=broken"
                .parse::<FaultSpec>()
                .unwrap_err()
                .contains("unknown fault mode")
        );
        assert!(
            "espn=down:soon"
                .parse::<FaultSpec>()
                .unwrap_err()
                .contains("bad duration")
        );
        for huge in ["9223372036854775808s", "18446744073709551615s", "31days"] {
            let error = format!("espn=down:{huge}")
                .parse::<FaultSpec>()
                .unwrap_err();
            assert!(error.contains("longer than 30 days"), "{huge}: {error}");
        }
        assert!("espn=down:30days".parse::<FaultSpec>().is_ok());
    }

    #[test]
    fn faults_expire_and_clear() {
        let plan = FaultPlan::new();
        let t0 = Instant::now();
        plan.inject(&"espn=slow:10s".parse().unwrap(), t0);
        plan.inject(&"kalshi=down".parse().unwrap(), t0);
        assert_eq!(plan.active(Source::Espn, t0), Some(FaultMode::Slow));
        assert_eq!(
            plan.active(Source::Espn, t0 + Duration::from_secs(10)),
            None
        );
        assert_eq!(plan.list(t0).len(), 2);
        plan.clear(Some(Source::Kalshi));
        assert_eq!(plan.active(Source::Kalshi, t0), None);
    }
}
