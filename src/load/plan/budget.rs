//! Budgets as written and parsed: `p99<250ms`, `connect_p99<1s`, `errors<1%`,
//! `lost=0`, `reconnect_success>=99%`, `conns>=50`, `p99<250ms over 10s`. They are
//! judged against a run's figures in `results::judge`.
//!
//! To add a budget metric: 1. add a [`Metric`] variant and its name in
//! [`Metric::parse`]; 2. give it a value in `results::judge::Figures` and in
//! `Metric::measure`; 3. say which limits it takes in [`Metric::kind`]; 4. list it in
//! README "Budgets".

use std::fmt;

use serde::Serialize;

use crate::load::measure::recorder::{Distribution, Quantile};
use crate::units::format_micros;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    Latency(Distribution, Quantile),
    /// Share (or count) of connection attempts that failed or ended in an error.
    Errors,
    /// Frames missing from seq gaps.
    Lost,
    /// Share of reconnect attempts that resumed the stream.
    ReconnectSuccess,
    /// Most connections open at once.
    Conns,
}

const METRIC_HELP: &str = "p50|p90|p95|p99|p999|max (delivery latency), connect_*, first_frame_*, rtt_*, ws_rtt_*, http_*, e2e_*, reconnect_* (same percentiles), errors, lost, reconnect_success, conns";

impl Metric {
    fn parse(s: &str) -> Option<Metric> {
        match s {
            "errors" => return Some(Metric::Errors),
            "lost" => return Some(Metric::Lost),
            "reconnect_success" => return Some(Metric::ReconnectSuccess),
            "conns" => return Some(Metric::Conns),
            _ => {}
        }
        let (dist, q) = match s.rsplit_once('_') {
            Some((prefix, q)) => {
                let dist = match prefix {
                    "connect" => Distribution::Connect,
                    "first_frame" => Distribution::FirstFrame,
                    "rtt" => Distribution::Rtt,
                    "ws_rtt" => Distribution::WsRtt,
                    "http" => Distribution::Http,
                    "e2e" => Distribution::EndToEnd,
                    "reconnect" => Distribution::Reconnect,
                    "delivery" => Distribution::Delivery,
                    _ => return None,
                };
                (dist, q)
            }
            None => (Distribution::Delivery, s),
        };
        Quantile::parse(q).map(|q| Metric::Latency(dist, q))
    }

    fn kind(self) -> LimitKind {
        match self {
            Metric::Latency(..) => LimitKind::Duration,
            Metric::Errors => LimitKind::PercentOrCount,
            Metric::ReconnectSuccess => LimitKind::Percent,
            Metric::Lost | Metric::Conns => LimitKind::Count,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LimitKind {
    Duration,
    Percent,
    PercentOrCount,
    Count,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Op {
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = "=")]
    Eq,
}

impl Op {
    pub(crate) fn holds(self, measured: f64, limit: f64) -> bool {
        match self {
            Op::Lt => measured < limit,
            Op::Le => measured <= limit,
            Op::Gt => measured > limit,
            Op::Ge => measured >= limit,
            Op::Eq => (measured - limit).abs() < 1e-9,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "=",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Limit {
    /// Microseconds.
    Duration(u64),
    /// 0..=100.
    Percent(f64),
    Count(u64),
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::Duration(us) => f.write_str(&format_micros(*us as f64)),
            Limit::Percent(p) => write!(f, "{p}%"),
            Limit::Count(n) => write!(f, "{n}"),
        }
    }
}

/// A parsed budget.
#[derive(Debug, Clone, PartialEq)]
pub struct Budget {
    pub text: String,
    pub metric: Metric,
    pub op: Op,
    pub limit: Limit,
    /// `p99<250ms over 10s`: every 10 s window of the run (from its start) must meet
    /// the limit on its own, not only the run as a whole. Latency percentiles only.
    pub window: Option<std::time::Duration>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("budget {text:?}: {reason}")]
pub struct BudgetError {
    pub text: String,
    pub reason: String,
}

impl std::str::FromStr for Budget {
    type Err = BudgetError;

    fn from_str(text: &str) -> Result<Budget, BudgetError> {
        let err = |reason: String| BudgetError {
            text: text.to_owned(),
            reason,
        };
        let (expr, window) = split_window(text).map_err(err)?;
        let compact: String = expr.chars().filter(|c| !c.is_whitespace()).collect();
        let (at, op, width) = ["<=", ">=", "<", ">", "=="]
            .iter()
            .chain(&["="])
            .filter_map(|op| compact.find(op).map(|i| (i, *op)))
            .min_by_key(|(i, op)| (*i, std::cmp::Reverse(op.len())))
            .map(|(i, op)| (i, op, op.len()))
            .ok_or_else(|| {
                err("expected METRIC OP VALUE, e.g. p99<250ms (operators: < <= > >= =)".into())
            })?;
        let op = match op {
            "<" => Op::Lt,
            "<=" => Op::Le,
            ">" => Op::Gt,
            ">=" => Op::Ge,
            _ => Op::Eq,
        };
        let (name, value) = (&compact[..at], &compact[at + width..]);
        let metric = Metric::parse(name)
            .ok_or_else(|| err(format!("unknown metric {name:?}; expected {METRIC_HELP}")))?;
        if value.is_empty() {
            return Err(err(format!("expected a value after {:?}", op.as_str())));
        }
        let limit = parse_limit(metric.kind(), value).map_err(err)?;
        if window.is_some() && !matches!(metric, Metric::Latency(..)) {
            return Err(err(format!(
                "\"over WINDOW\" applies to latency percentiles (p99<250ms over 10s), not to {name:?}"
            )));
        }
        Ok(Budget {
            text: text.trim().to_owned(),
            metric,
            op,
            limit,
            window,
        })
    }
}

/// `p99<250ms over 10s` -> (`p99<250ms`, 10 s).
fn split_window(text: &str) -> Result<(&str, Option<std::time::Duration>), String> {
    let Some((expr, window)) = text.split_once(" over ") else {
        return Ok((text, None));
    };
    let window = window.trim();
    let length = humantime::parse_duration(window)
        .map_err(|_| format!("{window:?} is not a window length like 10s or 1m"))?;
    if length < std::time::Duration::from_secs(1) {
        return Err(format!(
            "a window of {window} is shorter than the one second a run's figures are kept by"
        ));
    }
    Ok((expr, Some(length)))
}

fn parse_limit(kind: LimitKind, value: &str) -> Result<Limit, String> {
    let percent = |v: &str| -> Result<Limit, String> {
        let n: f64 = v
            .parse()
            .map_err(|_| format!("{value:?} is not a percentage like 1% or 99.5%"))?;
        if !(0.0..=100.0).contains(&n) {
            return Err(format!("{value:?} is not between 0% and 100%"));
        }
        Ok(Limit::Percent(n))
    };
    let count = |v: &str| -> Result<Limit, String> {
        v.parse::<u64>()
            .map(Limit::Count)
            .map_err(|_| format!("{value:?} is not a whole number"))
    };
    match kind {
        LimitKind::Duration => {
            let d = humantime::parse_duration(value)
                .map_err(|e| format!("{value:?} is not a duration like 250ms or 1s ({e})"))?;
            Ok(Limit::Duration(d.as_micros().min(u64::MAX as u128) as u64))
        }
        LimitKind::Percent => match value.strip_suffix('%') {
            Some(v) => percent(v),
            None => Err(format!("{value:?}: expected a percentage like 99%")),
        },
        LimitKind::PercentOrCount => match value.strip_suffix('%') {
            Some(v) => percent(v),
            None => count(value),
        },
        LimitKind::Count => count(value),
    }
}

/// Parses every budget of a list, stopping at the first bad one.
pub fn parse_all(texts: &[String]) -> Result<Vec<Budget>, BudgetError> {
    texts.iter().map(|t| t.parse()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_windows_are_refused_with_the_reason() {
        let e = "p99<250ms over soon"
            .parse::<Budget>()
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a window length"), "{e}");
        let e = "p99<250ms over 100ms"
            .parse::<Budget>()
            .unwrap_err()
            .to_string();
        assert!(e.contains("shorter than the one second"), "{e}");
        let e = "errors<1% over 10s"
            .parse::<Budget>()
            .unwrap_err()
            .to_string();
        assert!(e.contains("applies to latency percentiles"), "{e}");
    }

    #[test]
    fn syntax_errors_say_what_was_expected() {
        let e = "p99".parse::<Budget>().unwrap_err();
        assert!(e.reason.contains("METRIC OP VALUE"), "{e}");
        let e = "p98<1s".parse::<Budget>().unwrap_err();
        assert!(e.reason.contains("unknown metric"), "{e}");
        let e = "p99<fast".parse::<Budget>().unwrap_err();
        assert!(e.reason.contains("duration"), "{e}");
        let e = "p99<".parse::<Budget>().unwrap_err();
        assert!(e.reason.contains("value after"), "{e}");
        let e = "reconnect_success>=99".parse::<Budget>().unwrap_err();
        assert!(e.reason.contains("percentage"), "{e}");
        let e = "errors<150%".parse::<Budget>().unwrap_err();
        assert!(e.reason.contains("between"), "{e}");
        assert_eq!("lost<=2".parse::<Budget>().unwrap().op, Op::Le);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Any text is a budget or a specific error, never a panic.
            #[test]
            fn any_text_parses_or_is_refused(text in "[ -~]{0,40}") {
                let _ = text.parse::<Budget>();
            }

            /// Budget-shaped text with any numbers and units: the same.
            #[test]
            fn budget_shaped_text_parses_or_is_refused(
                metric in prop::sample::select(vec!["p99", "p50", "p99.9", "max", "conns", "lost", "errors", "fps", "rtt_p99", "x"]),
                op in prop::sample::select(vec!["<", "<=", ">", ">=", "==", "=", "!"]),
                number in prop_oneof![any::<f64>().prop_map(|f| f.to_string()), "[0-9]{1,30}", Just("1e400".to_owned())],
                unit in prop::sample::select(vec!["", "ms", "s", "us", "%", "/s", "µs", "h"]),
                window in prop::sample::select(vec!["", " over 10s", " over 0s", " over 99999999999999999999s", " over"]),
            ) {
                let _ = format!("{metric}{op}{number}{unit}{window}").parse::<Budget>();
            }
        }
    }
}
