//! Judging: each budget against what a run measured, with the measured value next to
//! the limit. Nothing measured never passes: a budget on something that never
//! happened fails and says so.

use serde::Serialize;

use crate::load::measure::recorder::{Distribution, Quantile};
use crate::load::plan::budget::{Budget, Limit, Metric, Op};
use crate::units::format_micros;

/// A latency percentile over one window of a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowValue {
    /// Seconds from the run's start.
    pub from_s: f64,
    pub to_s: f64,
    pub value_us: f64,
}

/// The figures budgets are checked against. Latencies in microseconds; None when the
/// run produced no samples of that kind.
pub trait Figures {
    fn latency(&self, dist: Distribution, q: Quantile) -> Option<f64>;
    fn connection_attempts(&self) -> u64;
    /// Frames received (each can carry at most one error: an error frame).
    fn frames(&self) -> u64;
    fn errors(&self) -> u64;
    /// Frames lost, or why loss is unknown (seq not checked, or a restarted server
    /// could not replay what it had sent).
    fn lost(&self) -> Result<u64, String>;
    /// Connections that ended before the run did and had the chance to come back
    /// (those still within their reconnect window at the end are left out).
    fn connections_lost(&self) -> u64;
    /// Lost connections whose user got a new one that delivered a frame.
    fn reconnect_successes(&self) -> u64;
    /// Every reconnect attempt, failed retries included.
    fn reconnect_attempts(&self) -> u64;
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
                    // Every error belongs to an attempt (a connection or a request)
                    // or to a frame, so the share is over both and cannot pass 100 %.
                    Limit::Percent(_) => {
                        let (attempts, frames) = (figures.connection_attempts(), figures.frames());
                        let over = attempts + frames;
                        if over == 0 {
                            return Err(
                                "no connection, request or frame to count errors over".into()
                            );
                        }
                        let pct = (errors as f64 * 100.0 / over as f64).min(100.0);
                        let of = if frames > 0 {
                            format!("{attempts} attempts + {frames} frames")
                        } else {
                            format!("{attempts} attempts")
                        };
                        Ok((pct, format!("{pct:.2}% ({errors} errors of {of})")))
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
                let lost = figures.connections_lost();
                if lost == 0 {
                    return Err("no connection was lost, so no reconnect was needed".into());
                }
                let back = figures.reconnect_successes().min(lost);
                let pct = back as f64 * 100.0 / lost as f64;
                Ok((
                    pct,
                    format!(
                        "{pct:.2}% ({back} of {lost} lost connections came back; {} attempts)",
                        figures.reconnect_attempts()
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
        fn frames(&self) -> u64 {
            0
        }
        fn connections_lost(&self) -> u64 {
            10
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
        assert_eq!(r.measured, "1.50% (3 errors of 200 attempts)");
        assert!(check("errors<5").passed);
        assert!(check("lost=0").passed);
        let r = check("reconnect_success>=99%");
        assert!(r.passed, "{r:?}");
        assert_eq!(
            r.measured,
            "100.00% (10 of 10 lost connections came back; 10 attempts)"
        );
        assert!(check("conns>=50").passed);
        assert!(!check("conns>50").passed);
    }

    #[test]
    fn a_budget_without_samples_fails_and_says_why() {
        let r = check("rtt_p99<100ms");
        assert!(!r.passed);
        assert!(r.note.unwrap().contains("Rtt"));
    }
}
