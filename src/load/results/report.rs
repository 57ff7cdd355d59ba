//! The files of a run's report directory: `report.json`, `report.html`
//! (self-contained: inline CSS and SVG, no network), `junit.xml` (one test case per
//! budget) and `latency.hlog` (the HdrHistogram interval log).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::html;
use super::summary::{LoadSummary, count_text};
use crate::units::format_micros;

/// Writes every report file into `dir`; returns their paths.
pub fn write_all(dir: &Path, summary: &LoadSummary) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let files = [
        (
            "report.json",
            serde_json::to_vec_pretty(summary).map_err(std::io::Error::other)?,
        ),
        ("report.html", html::page(summary).into_bytes()),
        ("junit.xml", junit(summary).into_bytes()),
        ("latency.hlog", summary.hdr_log.clone()),
    ];
    let mut paths = Vec::new();
    for (name, bytes) in files {
        let path = dir.join(name);
        std::fs::write(&path, bytes)?;
        paths.push(path);
    }
    Ok(paths)
}

/// JUnit XML: one test case per run check (so there is always at least one) and per
/// budget, failed ones with what was observed or measured against the limit.
pub fn junit(summary: &LoadSummary) -> String {
    crate::junit::document(
        "livegames load",
        &summary.started_at,
        summary.duration_s,
        &cases(summary),
    )
}

fn cases(summary: &LoadSummary) -> Vec<crate::junit::Case> {
    use crate::junit::{Case, Outcome};
    let checks = summary.checks.iter().map(|c| Case {
        classname: "livegames.load.checks".into(),
        name: c.name.into(),
        time_s: summary.duration_s,
        outcome: if c.passed {
            Outcome::Passed
        } else {
            Outcome::Failed {
                kind: "check".into(),
                message: c.observed.clone(),
                details: c.observed.clone(),
            }
        },
    });
    let budgets = summary.budgets.iter().map(|b| {
        let outcome = if b.passed {
            Outcome::Passed
        } else {
            let note = b
                .note
                .as_deref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default();
            let message = format!("measured {} against limit {}{note}", b.measured, b.limit);
            Outcome::Failed {
                kind: "budget".into(),
                details: message.clone(),
                message,
            }
        };
        Case {
            classname: "livegames.load.budgets".into(),
            name: b.budget.clone(),
            time_s: summary.duration_s,
            outcome,
        }
    });
    checks.chain(budgets).collect()
}

/// One stage of a scenario: its label, report directory and summary.
pub type StageResult = (String, PathBuf, LoadSummary);

/// `scenario.json` (every stage's budgets and key figures) and an overall
/// `junit.xml` (one test case per budget per stage) at the top of a scenario's report.
pub fn write_scenario(dir: &Path, stages: &[StageResult]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let json = serde_json::json!({
        "version": crate::load::results::summary::REPORT_VERSION,
        "passed": stages.iter().all(|(_, _, s)| s.passed()),
        "stages": stages.iter().map(|(label, d, s)| serde_json::json!({
            "name": label,
            "report": d.file_name().map(|n| n.to_string_lossy().into_owned()),
            "conns": s.conns,
            "duration_s": s.duration_s,
            "frames_per_s": s.totals.frames_per_s,
            "latency": s.latency,
            "lost": s.totals.counts.lost,
            "errors": s.totals.counts.errors,
            "budgets": s.budgets,
        })).collect::<Vec<_>>(),
    });
    std::fs::write(
        dir.join("scenario.json"),
        serde_json::to_vec_pretty(&json).map_err(std::io::Error::other)?,
    )?;
    let stage_cases: Vec<Vec<crate::junit::Case>> =
        stages.iter().map(|(_, _, s)| cases(s)).collect();
    let count: usize = stage_cases.iter().map(Vec::len).sum();
    let failures: usize = stage_cases
        .iter()
        .flatten()
        .filter(|c| matches!(c.outcome, crate::junit::Outcome::Failed { .. }))
        .count();
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites tests=\"{count}\" failures=\"{failures}\">\n"
    );
    for ((label, _, s), cases) in stages.iter().zip(&stage_cases) {
        out.push_str(&crate::junit::suite_element(
            &format!("livegames load: {label}"),
            &s.started_at,
            s.duration_s,
            cases,
        ));
    }
    out.push_str("</testsuites>\n");
    std::fs::write(dir.join("junit.xml"), out)
}

/// The per-stage summary table printed at the end of a scenario.
pub fn scenario_table(stages: &[StageResult]) -> String {
    let mut out = format!(
        "\n{:<28} {:>6} {:>10} {:>10} {:>10} {:>10} {:>6} {:>7}\n",
        "stage", "conns", "msgs/s", "p50", "p99", "max", "lost", "budgets"
    );
    for (label, _, s) in stages {
        // An HTTP stage shows users, requests/s and request latency in the same columns.
        let (d, open, rate) = match &s.http {
            Some(h) => (s.latency.get("http"), h.users as u64, h.requests_per_s),
            None => (
                s.latency.get("delivery"),
                s.totals.peak_open,
                s.totals.frames_per_s,
            ),
        };
        let f = |v: Option<f64>| v.map(format_micros).unwrap_or_else(|| "-".into());
        let verdict = if s.budgets.is_empty() {
            "-"
        } else if s.passed() {
            "PASS"
        } else {
            "FAIL"
        };
        let _ = writeln!(
            out,
            "{:<28} {:>6} {:>10.0} {:>10} {:>10} {:>10} {:>6} {:>7}",
            crate::text::cut(label, 28),
            open,
            rate,
            f(d.map(|p| p.p50_us)),
            f(d.map(|p| p.p99_us)),
            f(d.map(|p| p.max_us)),
            count_text(s.totals.counts.lost),
            verdict
        );
    }
    out
}
