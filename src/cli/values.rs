//! The value parsers flags share: each turns one argument into a typed value or a
//! message that says what was expected (clap puts the flag's name in front).

use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue};

use crate::client::Target;
use crate::client::target::parse_header;
use crate::contract::League;
use crate::units;

pub(super) fn duration(s: &str) -> Result<Duration, String> {
    units::parse_duration(s)
}

/// `--influxdb-retention`: 0 (keep forever) or at least an hour (InfluxDB's least).
pub(super) fn retention(s: &str) -> Result<Duration, String> {
    let d = duration(s)?;
    let least = crate::influx::retention::MIN_RETENTION;
    if !d.is_zero() && d < least {
        return Err(format!(
            "must be 0 (keep forever) or at least {}",
            units::show_duration(least)
        ));
    }
    Ok(d)
}

/// A duration that must be more than zero (a timeout, an interval).
pub(super) fn nonzero_duration(s: &str) -> Result<Duration, String> {
    let d = duration(s)?;
    if d.is_zero() {
        return Err("must be more than 0".into());
    }
    Ok(d)
}

pub(super) fn positive(s: &str) -> Result<f64, String> {
    units::parse_positive(s)
}

/// A server's message rate: ticks per second per game.
pub(super) fn rate(s: &str) -> Result<f64, String> {
    let v = positive(s)?;
    if v > 1000.0 {
        return Err(format!("at most 1000 ticks per second per game, got {v}"));
    }
    Ok(v)
}

/// A count of connections or messages: 1 to 100,000.
pub(super) fn count(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=100_000).contains(&n) => Ok(n),
        Ok(n) => Err(format!("must be 1..=100000, got {n}")),
        Err(e) => Err(e.to_string()),
    }
}

/// An upstream URL for `serve` (kept as given, without a trailing slash).
pub(super) fn url(s: &str) -> Result<String, String> {
    Target::parse(s).map_err(|e| e.to_string())?;
    Ok(s.trim_end_matches('/').to_owned())
}

/// The server (or stream) a client command tests.
pub(super) fn target(s: &str) -> Result<Target, String> {
    Target::parse(s).map_err(|e| e.to_string())
}

pub(super) fn header(s: &str) -> Result<(HeaderName, HeaderValue), String> {
    parse_header(s)
}

pub(super) fn byte_size(s: &str) -> Result<usize, String> {
    units::parse_bytes(s)
}

/// A league's name: `nba`, `nfl` or `nhl`.
pub(super) fn league(s: &str) -> Result<League, String> {
    League::ALL
        .into_iter()
        .find(|l| l.as_str().eq_ignore_ascii_case(s.trim()))
        .ok_or_else(|| format!("unknown league {s:?}: expected nba, nfl or nhl"))
}
