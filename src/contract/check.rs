//! Checking frames one at a time against the schemas and the seq rules; shared by
//! `contract validate` (recordings) and `smoke` (live streams).

use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value;

use super::frame::FrameType;
use super::rules::{SeqEvent, SeqTracker};
use super::schema::Schemas;
use crate::text::{cut, printable};

/// How much of a frame a violation shows.
pub const RAW_EXCERPT_BYTES: usize = 200;
/// Games whose seq is tracked; frames of further games are not followed.
const MAX_GAMES: usize = 10_000;

/// One broken rule, located.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Violation {
    /// The rule: `json`, `size`, `schema`, `seq`, `ts`, ...
    pub check: &'static str,
    /// 1-based frame number (in the file, or on the connection).
    pub frame: u64,
    /// JSON pointer of the field (`""`: the whole frame).
    pub pointer: String,
    pub expected: String,
    pub actual: String,
    /// The frame, cut to a readable length.
    pub raw: String,
}

impl Violation {
    /// A violation of the whole frame `raw` (cut here).
    pub fn new(
        check: &'static str,
        frame: u64,
        pointer: impl Into<String>,
        expected: impl Into<String>,
        actual: impl Into<String>,
        raw: &str,
    ) -> Self {
        // Everything here may come from the peer: shown, never obeyed by a terminal.
        let shown = |text: String| printable(&text).into_owned();
        Self {
            check,
            frame,
            pointer: shown(pointer.into()),
            expected: shown(expected.into()),
            actual: shown(actual.into()),
            raw: shown(cut(raw, RAW_EXCERPT_BYTES).replace(['\n', '\r'], " ")),
        }
    }
}

/// Checks frames in order: JSON, the schema of each frame's type, and per-game seq.
pub struct FrameChecker<'s> {
    schemas: &'s Schemas,
    seq: HashMap<String, SeqTracker>,
}

impl<'s> FrameChecker<'s> {
    pub fn new(schemas: &'s Schemas) -> Self {
        Self {
            schemas,
            seq: HashMap::new(),
        }
    }

    /// Starts `game`'s seq at `since`, for a resumed stream.
    pub fn resume_at(&mut self, game: &str, since: u64) {
        self.seq
            .insert(game.to_owned(), SeqTracker::starting_at(since));
    }

    /// Checks one frame's bytes; returns the parsed frame when it is JSON.
    pub fn check_bytes(
        &mut self,
        frame: u64,
        bytes: &[u8],
        out: &mut Vec<Violation>,
    ) -> Option<Value> {
        match serde_json::from_slice::<Value>(bytes) {
            Ok(value) => {
                let raw = String::from_utf8_lossy(bytes);
                self.check_value(frame, &value, &raw, out);
                Some(value)
            }
            Err(e) => {
                let raw = String::from_utf8_lossy(bytes);
                out.push(Violation::new(
                    "json",
                    frame,
                    "",
                    "one JSON object",
                    e.to_string(),
                    &raw,
                ));
                None
            }
        }
    }

    /// Checks one parsed frame (`raw` is its text, for the report).
    pub fn check_value(&mut self, frame: u64, value: &Value, raw: &str, out: &mut Vec<Violation>) {
        if !value.is_object() {
            out.push(Violation::new(
                "json",
                frame,
                "",
                "one JSON object",
                json_kind(value),
                raw,
            ));
            return;
        }
        for v in self.schemas.validate_frame(value) {
            out.push(Violation::new(
                "schema", frame, v.pointer, v.expected, v.actual, raw,
            ));
        }
        if let Some((expected, actual)) = self.observe_seq(value) {
            out.push(Violation::new("seq", frame, "/seq", expected, actual, raw));
        }
    }

    /// Feeds the frame's seq to its game's tracker; says what broke, if anything.
    fn observe_seq(&mut self, value: &Value) -> Option<(String, String)> {
        let kind = value
            .get("type")
            .and_then(Value::as_str)
            .and_then(FrameType::parse)?;
        let game = value.get("game_id").and_then(Value::as_str)?;
        let seq = match value.get("seq")? {
            Value::Number(n) => match n.as_u64() {
                Some(seq) => seq,
                // 1e300, 2^64 or 1.5 may pass a schema's "integer" but are no seq
                // a tracker can follow.
                None => {
                    return Some((
                        "an integer seq from 0 to 18446744073709551615".to_owned(),
                        format!("seq {n}"),
                    ));
                }
            },
            // Not a number at all: the schema names it.
            _ => return None,
        };
        if self.seq.len() >= MAX_GAMES && !self.seq.contains_key(game) {
            return None;
        }
        let tracker = self.seq.entry(game.to_owned()).or_default();
        let expected =
            |e: &str| format!("{e} (data frames step by exactly 1; others repeat the latest)");
        match tracker.observe(kind, seq) {
            SeqEvent::InOrder => None,
            SeqEvent::Gap {
                expected: e,
                got,
                missing,
            } => Some((
                expected(&format!("seq {e}")),
                format!("seq {got}: {missing} frame(s) missing"),
            )),
            SeqEvent::Duplicate { seq } => {
                Some((expected("a new seq"), format!("seq {seq} again")))
            }
            SeqEvent::Backwards { latest, got } => {
                Some((expected(&format!("seq >= {latest}")), format!("seq {got}")))
            }
        }
    }
}

/// "a string", "an array", ...: what a JSON value is, in words.
pub fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(frames: &[&str]) -> Vec<Violation> {
        let schemas = Schemas::builtin(false);
        let mut checker = FrameChecker::new(schemas);
        let mut out = Vec::new();
        for (i, f) in frames.iter().enumerate() {
            checker.check_bytes(i as u64 + 1, f.as_bytes(), &mut out);
        }
        out
    }

    const HB: &str = r#"{"type":"heartbeat","game_id":"g","seq":4,"ts":1763900000000000}"#;

    #[test]
    fn each_rule_is_named_with_its_frame() {
        let back = r#"{"type":"heartbeat","game_id":"g","seq":2,"ts":1763900000000000}"#;
        let found = check(&[HB, "[1]", "nope", back]);
        let names: Vec<(&str, u64)> = found.iter().map(|v| (v.check, v.frame)).collect();
        assert_eq!(names, [("json", 2), ("json", 3), ("seq", 4)]);
        assert_eq!(found[0].actual, "an array");
    }

    #[test]
    fn seqs_no_tracker_can_follow_are_violations() {
        for seq in ["1e300", "18446744073709551616", "1.5"] {
            let frame = format!(
                r#"{{"type":"update","game_id":"g","seq":{seq},"ts":1763900000000000,"data":{{}}}}"#
            );
            let found = check(&[&frame]);
            let seq_rule: Vec<&Violation> = found.iter().filter(|v| v.check == "seq").collect();
            assert_eq!(seq_rule.len(), 1, "{seq}: {found:?}");
            assert!(seq_rule[0].expected.contains("integer seq"), "{seq}");
        }
        // The largest seq, then 0: not in order.
        let at = |seq: &str| {
            format!(r#"{{"type":"heartbeat","game_id":"g","seq":{seq},"ts":1763900000000000}}"#)
        };
        let found = check(&[&at("18446744073709551615"), &at("0")]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!((found[0].check, found[0].frame), ("seq", 2));
    }

    #[test]
    fn a_resumed_tracker_expects_the_next_seq() {
        let mut checker = FrameChecker::new(Schemas::builtin(false));
        checker.resume_at("g", 3);
        let mut out = Vec::new();
        checker.check_bytes(1, HB.as_bytes(), &mut out);
        assert_eq!(
            out[0].check, "seq",
            "heartbeat at 4 after since=3 means a lost frame"
        );
    }

    #[test]
    fn a_frame_that_is_not_one_object_is_named_with_what_it_was() {
        let found = check(&["{\"type\":", "\"text\"", "null"]);
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(
            found
                .iter()
                .all(|v| v.check == "json" && v.expected == "one JSON object")
        );
        assert_eq!(found[1].actual, "a string");
        assert_eq!(found[2].actual, "null");
    }
}
