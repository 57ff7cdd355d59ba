//! The smoke report for people (a checklist, coloured on a terminal) and machines
//! (JSON, JUnit XML).

use std::fmt::Write;

use super::check::{CheckResult, MAX_LISTED, Status};
use super::report::SmokeReport;
use crate::junit::{Case, Outcome};

/// Violations shown per failed check in the text output (JSON has up to 50).
const SHOWN: usize = 5;

/// ANSI colours, or none.
#[derive(Debug, Clone, Copy)]
pub struct Palette {
    colour: bool,
}

impl Palette {
    pub fn new(colour: bool) -> Self {
        Self { colour }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    fn status(&self, status: Status) -> String {
        match status {
            Status::Pass => self.paint("32", "PASS"),
            Status::Fail => self.paint("1;31", "FAIL"),
            Status::Skip => self.paint("33", "SKIP"),
        }
    }
}

fn duration(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else {
        format!("{ms:.0} ms")
    }
}

/// The checklist: one line per check, then each failure's violations.
pub fn text(report: &SmokeReport, palette: Palette) -> String {
    let mut out = String::new();
    let strict = if report.strict { ", strict" } else { "" };
    let unverified = if report.tls_verified {
        ""
    } else {
        ", TLS not verified: --insecure"
    };
    let _ = writeln!(
        out,
        "livegames smoke {} (contract {}{strict}{unverified})",
        report.target, report.contract_version
    );
    if let Some(why) = &report.unreachable {
        let _ = writeln!(
            out,
            "{} cannot reach {}: {why}",
            palette.status(Status::Fail),
            report.target
        );
        return out;
    }
    let width = report
        .checks
        .iter()
        .map(|c| c.name.name().len())
        .max()
        .unwrap_or(10);
    for check in &report.checks {
        let _ = writeln!(
            out,
            "{} {:width$} {:>8}  {}",
            palette.status(check.status),
            check.name,
            if check.status == Status::Skip {
                String::new()
            } else {
                duration(check.duration_ms)
            },
            check.detail
        );
        if check.status == Status::Fail {
            violations(&mut out, check);
        }
    }
    let verdict = if report.passed {
        palette.paint("32", "passed")
    } else {
        palette.paint("1;31", "FAILED")
    };
    let _ = writeln!(
        out,
        "{verdict}: {} passed, {} failed, {} skipped in {:.1} s",
        report.counts.passed, report.counts.failed, report.counts.skipped, report.duration_s
    );
    out
}

fn violations(out: &mut String, check: &CheckResult) {
    for v in check.violations.iter().take(SHOWN) {
        let mut place = match (v.frame, v.raw.is_empty()) {
            (0, true) => String::new(),
            (0, false) => "body".to_owned(),
            (n, _) => format!("frame {n}"),
        };
        if !v.pointer.is_empty() {
            place = format!("{place} at {:?}", v.pointer)
                .trim_start()
                .to_owned();
        }
        if !place.is_empty() {
            place.push_str(": ");
        }
        let _ = writeln!(
            out,
            "       {place}expected {}; got {}",
            v.expected, v.actual
        );
        if !v.raw.is_empty() {
            let _ = writeln!(out, "         {}", v.raw);
        }
    }
    if check.violation_count > SHOWN {
        let _ = writeln!(
            out,
            "       ... and {} more (--json lists up to {})",
            check.violation_count - SHOWN,
            MAX_LISTED
        );
    }
}

/// The report as pretty JSON.
pub fn json(report: &SmokeReport) -> String {
    serde_json::to_string_pretty(report).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// JUnit XML: one test case per check.
pub fn junit(report: &SmokeReport) -> String {
    let mut cases: Vec<Case> = report
        .checks
        .iter()
        .map(|check| {
            let outcome = match check.status {
                Status::Pass => Outcome::Passed,
                Status::Skip => Outcome::Skipped {
                    message: check.detail.clone(),
                },
                Status::Fail => {
                    let mut details = String::new();
                    violations(&mut details, check);
                    Outcome::Failed {
                        kind: "contract".into(),
                        message: check.detail.clone(),
                        details,
                    }
                }
            };
            Case {
                classname: "livegames.smoke".into(),
                name: check.name.name().into(),
                time_s: check.duration_ms / 1000.0,
                outcome,
            }
        })
        .collect();
    if let Some(why) = &report.unreachable {
        cases.push(Case {
            classname: "livegames.smoke".into(),
            name: "reachable".into(),
            time_s: report.duration_s,
            outcome: Outcome::Failed {
                kind: "unreachable".into(),
                message: format!("cannot reach {}: {why}", report.target),
                details: String::new(),
            },
        });
    }
    crate::junit::document(
        &format!("livegames smoke {}", report.target),
        &report.started_at,
        report.duration_s,
        &cases,
    )
}
