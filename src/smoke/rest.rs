//! Helpers of the REST checks: bodies as JSON or as a failed check, schema violations
//! of a body, and bodies shown in one line.

use std::time::Duration;

use serde_json::Value;

use super::check::{CheckId, CheckResult};
use crate::client::http::Answer;
use crate::contract::check::Violation;
use crate::contract::schema::{Body, Schemas};
use crate::text::cut;

/// A body for a message: its start, or "(empty body)".
pub(crate) fn body_excerpt(body: &[u8], max: usize) -> String {
    if body.is_empty() {
        return "(empty body)".into();
    }
    let text = String::from_utf8_lossy(body);
    // One line: an HTML error page would otherwise break the checklist apart.
    let flat: Vec<&str> = text.split_whitespace().collect();
    cut(&flat.join(" "), max)
}

/// The body as JSON, or a failed check saying what came instead.
pub(crate) fn json(
    id: CheckId,
    took: Duration,
    status: u16,
    body: &[u8],
) -> Result<Value, CheckResult> {
    serde_json::from_slice(body).map_err(|e| {
        CheckResult::fail(
            id,
            took,
            format!(
                "HTTP {status} with a body that is not JSON ({e}): {}",
                body_excerpt(body, 120)
            ),
        )
    })
}

/// Schema violations of a REST body, as violations of "frame" 0 (the body).
pub(crate) fn body_violations(schemas: &Schemas, body: Body, value: &Value) -> Vec<Violation> {
    let raw = value.to_string();
    schemas
        .validate(body, value)
        .into_iter()
        .map(|v| Violation::new("schema", 0, v.pointer, v.expected, v.actual, &raw))
        .collect()
}

/// None when the request was answered 200; otherwise what came instead, for `what`.
pub(crate) fn expect_ok(answer: Answer, what: &str) -> Option<String> {
    match answer {
        Answer::Reply { status: 200, .. } => None,
        Answer::Reply { status, body } => Some(format!(
            "{what}: HTTP {status}: {}",
            body_excerpt(&body, 120)
        )),
        Answer::Unreachable(why) => Some(format!("{what}: {why}")),
    }
}
