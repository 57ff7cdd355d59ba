//! Latency budgets: `p99<250ms`, `connect_p99<1s`, `errors<1%`, `lost=0`,
//! `reconnect_success>=99%`, `conns>=50`. Parsed once, evaluated against a run's
//! figures; each gives pass/fail with measured vs limit.
//!
//! To add a budget metric: 1. add a [`Metric`] variant and its name in
//! [`Metric::parse`]; 2. give it a value in [`Figures`] and in [`Metric::measure`];
//! 3. say which limits it takes in [`Metric::kind`]; 4. list it in README "Budgets".

use std::fmt;

use serde::Serialize;

use super::recorder::{Distribution, Quantile};
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
    fn holds(self, measured: f64, limit: f64) -> bool {
        match self {
            Op::Lt => measured < limit,
            Op::Le => measured <= limit,
            Op::Gt => measured > limit,
            Op::Ge => measured >= limit,
            Op::Eq => (measured - limit).abs() < 1e-9,
        }
    }

    fn as_str(self) -> &'static str {
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

/// A latency percentile over one window of a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowValue {
    /// Seconds from the run's start.
    pub from_s: f64,
    pub to_s: f64,
    pub value_us: f64,
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

/// The figures budgets are checked against. Latencies in microseconds; None when the
/// run produced no samples of that kind.
pub trait Figures {
    fn latency(&self, dist: Distribution, q: Quantile) -> Option<f64>;
    fn connection_attempts(&self) -> u64;
    fn errors(&self) -> u64;
    /// Frames lost, or why loss is unknown (seq not checked, or a restarted server
    /// could not replay what it had sent).
    fn lost(&self) -> Result<u64, String>;
    fn reconnect_attempts(&self) -> u64;
    fn reconnect_successes(&self) -> u64;
    fn peak_conns(&self) -> u64;
    /// A percentile in each `window` of the run that has samples, in order.
    fn latency_windows(
        &self,
        dist: Distribution,
        q: Quantile,
        window: std::time::Duration,
    ) -> Vec<WindowValue>;
}

/// One budget's verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetResult {
    pub budget: String,
    pub passed: bool,
    /// The measured value, as written in the report (e.g. `231.4ms`, `0.2%`).
    pub measured: String,
    pub limit: String,
    /// Why a budget fails without a value to compare (e.g. no samples).
    pub note: Option<String>,
}

impl Metric {
    /// The measured value in the limit's unit (µs, %, count), or why there is none.
    fn measure(self, figures: &dyn Figures, limit: &Limit) -> Result<(f64, String), String> {
        match self {
            Metric::Latency(dist, q) => figures
                .latency(dist, q)
                .map(|us| (us, format_micros(us)))
                .ok_or_else(|| format!("no {dist:?} samples were measured")),
            Metric::Errors => {
                let errors = figures.errors();
                match limit {
                    Limit::Percent(_) => {
                        let attempts = figures.connection_attempts().max(1);
                        let pct = errors as f64 * 100.0 / attempts as f64;
                        Ok((pct, format!("{pct:.2}% ({errors} of {attempts} attempts)")))
                    }
                    _ => Ok((errors as f64, errors.to_string())),
                }
            }
            Metric::Lost => figures.lost().map(|n| (n as f64, n.to_string())),
            Metric::Conns => Ok((
                figures.peak_conns() as f64,
                figures.peak_conns().to_string(),
            )),
            Metric::ReconnectSuccess => {
                let attempts = figures.reconnect_attempts();
                if attempts == 0 {
                    return Err("no reconnects were attempted".into());
                }
                let pct = figures.reconnect_successes() as f64 * 100.0 / attempts as f64;
                Ok((
                    pct,
                    format!(
                        "{pct:.2}% ({} of {attempts})",
                        figures.reconnect_successes()
                    ),
                ))
            }
        }
    }
}

impl Budget {
    pub fn evaluate(&self, figures: &dyn Figures) -> BudgetResult {
        let limit_value = match self.limit {
            Limit::Duration(us) => us as f64,
            Limit::Percent(p) => p,
            Limit::Count(n) => n as f64,
        };
        let limit = format!("{}{}", self.op.as_str(), self.limit);
        if let (Some(window), Metric::Latency(dist, q)) = (self.window, self.metric) {
            return self.evaluate_windows(
                figures.latency_windows(dist, q, window),
                limit,
                limit_value,
            );
        }
        match self.metric.measure(figures, &self.limit) {
            Ok((value, shown)) => BudgetResult {
                budget: self.text.clone(),
                passed: self.op.holds(value, limit_value),
                measured: shown,
                limit,
                note: None,
            },
            // A budget on something that never happened cannot be said to hold.
            Err(why) => BudgetResult {
                budget: self.text.clone(),
                passed: false,
                measured: "n/a".into(),
                limit,
                note: Some(why),
            },
        }
    }
}

impl Budget {
    /// Every window must hold; the worst one is what the result shows.
    fn evaluate_windows(
        &self,
        windows: Vec<WindowValue>,
        limit: String,
        limit_value: f64,
    ) -> BudgetResult {
        let high_is_bad = matches!(self.op, Op::Lt | Op::Le | Op::Eq);
        let worst = windows.iter().copied().reduce(|a, b| {
            let b_worse = if high_is_bad {
                b.value_us > a.value_us
            } else {
                b.value_us < a.value_us
            };
            if b_worse { b } else { a }
        });
        let Some(worst) = worst else {
            return BudgetResult {
                budget: self.text.clone(),
                passed: false,
                measured: "n/a".into(),
                limit,
                note: Some("no window of the run had samples".into()),
            };
        };
        let failing = windows
            .iter()
            .filter(|w| !self.op.holds(w.value_us, limit_value))
            .count();
        let window = humantime::format_duration(self.window.unwrap_or_default());
        BudgetResult {
            budget: self.text.clone(),
            passed: failing == 0,
            measured: format!(
                "{} in {:.0}-{:.0}s (the worst of {} {window} windows; {failing} over the limit)",
                format_micros(worst.value_us),
                worst.from_s,
                worst.to_s,
                windows.len()
            ),
            limit,
            note: None,
        }
    }
}

/// Parses every budget of a list, stopping at the first bad one.
pub fn parse_all(texts: &[String]) -> Result<Vec<Budget>, BudgetError> {
    texts.iter().map(|t| t.parse()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake;
    impl Figures for Fake {
        fn latency(&self, dist: Distribution, q: Quantile) -> Option<f64> {
            match (dist, q) {
                (Distribution::Delivery, Quantile::P99) => Some(231_400.0),
                (Distribution::Connect, Quantile::P99) => Some(1_500_000.0),
                _ => None,
            }
        }
        fn connection_attempts(&self) -> u64 {
            200
        }
        fn errors(&self) -> u64 {
            3
        }
        fn lost(&self) -> Result<u64, String> {
            Ok(0)
        }
        fn reconnect_attempts(&self) -> u64 {
            10
        }
        fn reconnect_successes(&self) -> u64 {
            10
        }
        fn peak_conns(&self) -> u64 {
            50
        }
        fn latency_windows(
            &self,
            dist: Distribution,
            _: Quantile,
            window: std::time::Duration,
        ) -> Vec<WindowValue> {
            // Delivery p99 per 10 s window: 120 ms, 312 ms, 90 ms.
            let w = window.as_secs_f64();
            match dist {
                Distribution::Delivery => [120_000.0, 312_000.0, 90_000.0]
                    .iter()
                    .enumerate()
                    .map(|(i, v)| WindowValue {
                        from_s: i as f64 * w,
                        to_s: (i + 1) as f64 * w,
                        value_us: *v,
                    })
                    .collect(),
                _ => Vec::new(),
            }
        }
    }

    #[test]
    fn a_window_budget_holds_only_when_every_window_does() {
        let held: Budget = "p99<400ms over 10s".parse().unwrap();
        assert_eq!(held.window, Some(std::time::Duration::from_secs(10)));
        assert!(held.evaluate(&Fake).passed);
        let broken: Budget = "p99 < 250ms over 10s".parse().unwrap();
        let r = broken.evaluate(&Fake);
        assert!(!r.passed);
        assert_eq!(
            r.measured,
            "312.00ms in 10-20s (the worst of 3 10s windows; 1 over the limit)"
        );
        // Nothing measured never passes.
        let r = "rtt_p99<1s over 10s"
            .parse::<Budget>()
            .unwrap()
            .evaluate(&Fake);
        assert!(!r.passed && r.measured == "n/a", "{r:?}");
    }

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

    fn check(text: &str) -> BudgetResult {
        text.parse::<Budget>().unwrap().evaluate(&Fake)
    }

    #[test]
    fn latency_budgets_compare_in_microseconds() {
        let r = check("p99<250ms");
        assert!(r.passed, "{r:?}");
        assert_eq!(
            (r.measured.as_str(), r.limit.as_str()),
            ("231.40ms", "<250.00ms")
        );
        assert!(!check("p99 < 200ms").passed);
        assert!(!check("connect_p99<1s").passed);
    }

    #[test]
    fn rates_counts_and_conns() {
        let r = check("errors<1%");
        assert!(!r.passed, "3 of 200 is 1.5%: {r:?}");
        assert!(r.measured.starts_with("1.50%"));
        assert!(check("errors<5").passed);
        assert!(check("lost=0").passed);
        assert!(check("reconnect_success>=99%").passed);
        assert!(check("conns>=50").passed);
        assert!(!check("conns>50").passed);
    }

    #[test]
    fn a_budget_without_samples_fails_and_says_why() {
        let r = check("rtt_p99<100ms");
        assert!(!r.passed);
        assert!(r.note.unwrap().contains("Rtt"));
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
}
