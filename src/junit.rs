//! JUnit XML for CI systems: one test suite of named cases (load budgets, smoke checks).

use std::fmt::Write;

use crate::text::escape_markup;

/// How one test case ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    /// `message` is the one-line reason; `details` the full text.
    Failed {
        kind: String,
        message: String,
        details: String,
    },
    Skipped {
        message: String,
    },
}

#[derive(Debug, Clone)]
pub struct Case {
    pub classname: String,
    pub name: String,
    pub time_s: f64,
    pub outcome: Outcome,
}

/// One `<testsuite>` element (no XML declaration), for embedding in `<testsuites>`.
pub fn suite_element(name: &str, timestamp: &str, time_s: f64, cases: &[Case]) -> String {
    let failures = cases
        .iter()
        .filter(|c| matches!(c.outcome, Outcome::Failed { .. }))
        .count();
    let skipped = cases
        .iter()
        .filter(|c| matches!(c.outcome, Outcome::Skipped { .. }))
        .count();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{time_s:.3}\" timestamp=\"{}\">",
        escape_markup(name),
        cases.len(),
        escape_markup(timestamp)
    );
    for case in cases {
        let _ = write!(
            out,
            "  <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
            escape_markup(&case.classname),
            escape_markup(&case.name),
            case.time_s
        );
        match &case.outcome {
            Outcome::Passed => out.push_str("/>\n"),
            Outcome::Failed {
                kind,
                message,
                details,
            } => {
                let _ = writeln!(
                    out,
                    ">\n    <failure message=\"{}\" type=\"{}\">{}</failure>\n  </testcase>",
                    escape_markup(message),
                    escape_markup(kind),
                    escape_markup(details)
                );
            }
            Outcome::Skipped { message } => {
                let _ = writeln!(
                    out,
                    ">\n    <skipped message=\"{}\"/>\n  </testcase>",
                    escape_markup(message)
                );
            }
        }
    }
    out.push_str("</testsuite>\n");
    out
}

/// A whole JUnit document with one suite.
pub fn document(name: &str, timestamp: &str, time_s: f64, cases: &[Case]) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{}",
        suite_element(name, timestamp, time_s, cases)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases_are_counted_and_text_is_escaped() {
        let cases = [
            Case {
                classname: "c".into(),
                name: "ok".into(),
                time_s: 0.5,
                outcome: Outcome::Passed,
            },
            Case {
                classname: "c".into(),
                name: "bad <one>".into(),
                time_s: 0.1,
                outcome: Outcome::Failed {
                    kind: "check".into(),
                    message: "got \"x\" & \u{1}".into(),
                    details: "line\nline".into(),
                },
            },
            Case {
                classname: "c".into(),
                name: "later".into(),
                time_s: 0.0,
                outcome: Outcome::Skipped {
                    message: "needs a game".into(),
                },
            },
        ];
        let xml = document("suite", "2026-11-23T00:00:00Z", 1.0, &cases);
        assert!(
            xml.contains("tests=\"3\" failures=\"1\" errors=\"0\" skipped=\"1\""),
            "{xml}"
        );
        assert!(xml.contains("name=\"bad &lt;one&gt;\""), "{xml}");
        assert!(xml.contains("got &quot;x&quot; &amp; \u{fffd}"), "{xml}");
        assert!(xml.contains("<skipped message=\"needs a game\"/>"), "{xml}");
    }
}
