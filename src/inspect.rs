//! `livegames contract validate|schema`: the contract, offline.
//!
//! `validate` reads recorded frames (JSON Lines, or one JSON array) from any reader,
//! one frame at a time, so memory stays bounded by the largest frame (itself capped),
//! not by the file.

use std::io::{BufRead, Read};

use serde::Serialize;
use serde_json::Value;

pub use crate::contract::check::Violation;
use crate::contract::check::{FrameChecker, RAW_EXCERPT_BYTES};
use crate::contract::schema::{self, Schemas, cut};
use crate::contract::{FRAMES_SCHEMA_VERSION, FrameType};

/// Frames longer than this are reported and skipped, not parsed.
pub const MAX_FRAME_BYTES: usize = 1024 * 1024;
/// Violations listed in full; the rest are only counted.
pub const MAX_LISTED: usize = 1000;

#[derive(Debug, Clone, Default, Serialize)]
pub struct ValidateReport {
    pub contract_version: String,
    /// Unknown fields counted as violations (`--strict`).
    pub strict: bool,
    pub frames: u64,
    pub valid_frames: u64,
    pub violation_count: u64,
    pub violations: Vec<Violation>,
}

impl ValidateReport {
    pub fn passed(&self) -> bool {
        self.violation_count == 0
    }

    fn add(&mut self, v: Violation) {
        self.violation_count += 1;
        if self.violations.len() < MAX_LISTED {
            self.violations.push(v);
        }
    }

    pub fn render_text(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        for v in &self.violations {
            let _ = writeln!(
                out,
                "FAIL {} frame {} at {:?}: expected {}; got {}\n     frame: {}",
                v.check, v.frame, v.pointer, v.expected, v.actual, v.raw
            );
        }
        if self.violation_count as usize > self.violations.len() {
            let _ = writeln!(
                out,
                "... and {} more violations",
                self.violation_count as usize - self.violations.len()
            );
        }
        let verdict = if self.passed() { "valid" } else { "INVALID" };
        let strict = if self.strict { ", strict" } else { "" };
        let _ = writeln!(
            out,
            "{verdict}: {} frames, {} valid, {} violations (contract {}{strict})",
            self.frames, self.valid_frames, self.violation_count, self.contract_version
        );
        out
    }
}

/// Checks frame after frame against the schemas and the seq rules.
struct Checker<'s> {
    report: ValidateReport,
    frames: FrameChecker<'s>,
    found: Vec<Violation>,
}

impl<'s> Checker<'s> {
    fn new(schemas: &'s Schemas) -> Self {
        Self {
            report: ValidateReport {
                contract_version: schemas.version().to_owned(),
                strict: schemas.is_strict(),
                ..Default::default()
            },
            frames: FrameChecker::new(schemas),
            found: Vec::new(),
        }
    }

    fn raw_bytes(&mut self, bytes: &[u8], truncated: bool) {
        self.report.frames += 1;
        let frame = self.report.frames;
        if truncated {
            self.found.push(Violation::new(
                "size",
                frame,
                "",
                format!("a frame of at most {MAX_FRAME_BYTES} bytes"),
                "a longer frame",
                &String::from_utf8_lossy(&bytes[..bytes.len().min(RAW_EXCERPT_BYTES * 2)]),
            ));
        } else {
            self.frames.check_bytes(frame, bytes, &mut self.found);
        }
        self.settle();
    }

    fn value(&mut self, value: Value) {
        self.report.frames += 1;
        let frame = self.report.frames;
        let raw = cut(&value.to_string(), RAW_EXCERPT_BYTES);
        self.frames
            .check_value(frame, &value, &raw, &mut self.found);
        self.settle();
    }

    /// Files the current frame's violations (none: one more valid frame).
    fn settle(&mut self) {
        if self.found.is_empty() {
            self.report.valid_frames += 1;
        }
        for v in self.found.drain(..) {
            self.report.add(v);
        }
    }
}

/// Validates JSON Lines or a JSON array of frames from `input`.
pub fn validate(mut input: impl BufRead, schemas: &Schemas) -> std::io::Result<ValidateReport> {
    let mut checker = Checker::new(schemas);
    // Look at the first non-blank byte to tell an array from JSON Lines.
    let first = loop {
        let buf = input.fill_buf()?;
        if buf.is_empty() {
            break None;
        }
        match buf.iter().position(|b| !b.is_ascii_whitespace()) {
            Some(i) => break Some(buf[i]),
            None => {
                let n = buf.len();
                input.consume(n);
            }
        }
    };
    match first {
        None => {}
        Some(b'[') => validate_array(input, &mut checker)?,
        Some(_) => validate_lines(input, &mut checker)?,
    }
    Ok(checker.report)
}

fn validate_lines(mut input: impl BufRead, checker: &mut Checker) -> std::io::Result<()> {
    let mut line = Vec::new();
    loop {
        line.clear();
        let (read, truncated) = read_capped_line(&mut input, &mut line)?;
        if read == 0 {
            return Ok(());
        }
        if line.iter().all(u8::is_ascii_whitespace) && !truncated {
            continue;
        }
        checker.raw_bytes(&line, truncated);
    }
}

/// Reads one line into `line`, keeping at most [`MAX_FRAME_BYTES`]; returns the bytes
/// consumed and whether the line was longer than kept.
fn read_capped_line(
    input: &mut impl BufRead,
    line: &mut Vec<u8>,
) -> std::io::Result<(usize, bool)> {
    let mut consumed = 0;
    let mut truncated = false;
    loop {
        let buf = input.fill_buf()?;
        if buf.is_empty() {
            return Ok((consumed, truncated));
        }
        let (chunk, done) = match buf.iter().position(|b| *b == b'\n') {
            Some(i) => (&buf[..i], Some(i + 1)),
            None => (buf, None),
        };
        let room = MAX_FRAME_BYTES.saturating_sub(line.len());
        if chunk.len() > room {
            truncated = true;
        }
        line.extend_from_slice(&chunk[..chunk.len().min(room)]);
        let used = done.unwrap_or(buf.len());
        consumed += used;
        input.consume(used);
        if done.is_some() {
            return Ok((consumed, truncated));
        }
    }
}

/// A JSON array, element by element (never the whole array in memory).
fn validate_array(input: impl Read, checker: &mut Checker) -> std::io::Result<()> {
    use serde::de::{Deserializer, SeqAccess, Visitor};
    struct Frames<'a, 's>(&'a mut Checker<'s>);
    impl<'de> Visitor<'de> for Frames<'_, '_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an array of frames")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while let Some(value) = seq.next_element::<Value>()? {
                self.0.value(value);
            }
            Ok(())
        }
    }
    let mut de = serde_json::Deserializer::from_reader(input);
    if let Err(e) = de.deserialize_seq(Frames(checker)) {
        checker.report.frames += 1;
        let frame = checker.report.frames;
        checker.report.add(Violation::new(
            "json",
            frame,
            "",
            "a JSON array of frame objects",
            e.to_string(),
            "",
        ));
    }
    Ok(())
}

/// The schemas to check against: the built-in ones, or a user's copy.
#[derive(Debug)]
pub enum LoadedSchemas {
    Builtin(&'static Schemas),
    Dir(Box<Schemas>),
}

impl std::ops::Deref for LoadedSchemas {
    type Target = Schemas;
    fn deref(&self) -> &Schemas {
        match self {
            LoadedSchemas::Builtin(s) => s,
            LoadedSchemas::Dir(s) => s,
        }
    }
}

/// The built-in schemas, or `frames.schema.json` and `rest.schema.json` from `dir`.
pub fn load_schemas(dir: Option<&std::path::Path>, strict: bool) -> Result<LoadedSchemas, String> {
    let Some(dir) = dir else {
        return Ok(LoadedSchemas::Builtin(Schemas::builtin(strict)));
    };
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))
    };
    let schemas = Schemas::from_texts(
        &read("frames.schema.json")?,
        &read("rest.schema.json")?,
        strict,
    )
    .map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(LoadedSchemas::Dir(Box::new(schemas)))
}

/// How a recording ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordEnd {
    /// The wanted number of frames was recorded.
    Frames,
    /// The time was up.
    Time,
    /// The server closed the stream (code, if it sent one).
    Closed(Option<u16>),
}

/// One frame as one JSON Lines line: compact JSON as it came, or (for a frame that
/// is not JSON) its text with line breaks flattened, so `validate` reports it.
pub fn jsonl_line(text: &str) -> String {
    if !text.contains('\n') {
        return text.to_owned();
    }
    match serde_json::from_str::<Value>(text) {
        Ok(v) => v.to_string(),
        Err(_) => text.replace(['\n', '\r'], " "),
    }
}

/// The AsyncAPI 3.0 document of the WebSocket API, generated from the published
/// frame schemas (`fixtures/asyncapi.json` is this, checked by a drift test).
pub fn asyncapi() -> Result<Value, String> {
    let frames: Value = serde_json::from_str(schema::FRAMES_SCHEMA).map_err(|e| e.to_string())?;
    // The schemas' local references point into components.schemas once moved there.
    let defs_text = frames["$defs"]
        .to_string()
        .replace("#/$defs/", "#/components/schemas/");
    let mut schemas: serde_json::Map<String, Value> =
        serde_json::from_str(&defs_text).map_err(|e| e.to_string())?;
    schemas.insert(
        "ping".into(),
        serde_json::json!({"type": "object", "required": ["type", "id"], "properties": {"type": {"const": "ping"}, "id": {"description": "echoed in the pong"}}}),
    );
    let server_types: Vec<&str> = FrameType::ALL.iter().map(|t| t.as_str()).collect();
    let mut messages = serde_json::Map::new();
    let mut channel_messages = serde_json::Map::new();
    for name in server_types.iter().copied().chain(["ping"]) {
        let description = if name == "ping" {
            "client to server: answered with a pong"
        } else {
            "server to client"
        };
        messages.insert(name.into(), serde_json::json!({"name": name, "contentType": "application/json", "summary": description, "payload": {"$ref": format!("#/components/schemas/{name}")}}));
        channel_messages.insert(
            name.into(),
            serde_json::json!({"$ref": format!("#/components/messages/{name}")}),
        );
    }
    let receive: Vec<Value> = server_types
        .iter()
        .map(|n| serde_json::json!({"$ref": format!("#/channels/live/messages/{n}")}))
        .collect();
    Ok(serde_json::json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "livegames live stream",
            "version": FRAMES_SCHEMA_VERSION,
            "description": "One JSON object per text frame. Every frame has type, game_id, seq (data-bearing update/status/final frames add exactly 1; others repeat the latest) and ts (Unix microseconds when the server wrote it). ?since=SEQ replays every data-bearing frame after SEQ, then a snapshot. Close codes: 1001 shutdown, 1009 frame over 64 KiB, 4008 slow consumer, 4404 unknown game. Generated from fixtures/schemas/frames.schema.json by `livegames contract asyncapi`."
        },
        "servers": {"local": {"host": "127.0.0.1:8000", "protocol": "ws", "description": "livegames serve"}},
        "channels": {"live": {
            "address": "/ws/live/{game_id}",
            "parameters": {"game_id": {"description": "a game id from GET /api/live/games"}},
            "messages": channel_messages
        }},
        "operations": {
            "receiveFrames": {"action": "receive", "channel": {"$ref": "#/channels/live"}, "messages": receive},
            "sendPing": {"action": "send", "channel": {"$ref": "#/channels/live"}, "messages": [{"$ref": "#/channels/live/messages/ping"}]}
        },
        "components": {"messages": messages, "schemas": schemas}
    }))
}

/// The published schema of `kind` (a frame type, a REST body, or everything).
pub fn schema_text(kind: Option<&str>) -> Result<String, String> {
    let frames: Value = serde_json::from_str(schema::FRAMES_SCHEMA).map_err(|e| e.to_string())?;
    let rest: Value = serde_json::from_str(schema::REST_SCHEMA).map_err(|e| e.to_string())?;
    let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap_or_default();
    match kind {
        None | Some("frames") => Ok(pretty(&frames)),
        Some("rest") => Ok(pretty(&rest)),
        Some(k) => frames["$defs"]
            .get(k)
            .or_else(|| rest["$defs"].get(k))
            .map(pretty)
            .ok_or_else(|| {
                let names: Vec<&str> = frames["$defs"]
                    .as_object()
                    .into_iter()
                    .chain(rest["$defs"].as_object())
                    .flat_map(|m| m.keys().map(String::as_str))
                    .collect();
                format!(
                    "no schema named {k:?}; known: frames, rest, {}",
                    names.join(", ")
                )
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &[u8]) -> ValidateReport {
        validate(
            std::io::Cursor::new(input.to_vec()),
            Schemas::builtin(false),
        )
        .unwrap()
    }

    const GOOD: &str = r#"{"type":"heartbeat","game_id":"g","seq":3,"ts":1763900000000000}"#;

    #[test]
    fn good_lines_and_arrays_pass() {
        let lines = format!("{GOOD}\n\n{GOOD}\n");
        let r = check(lines.as_bytes());
        assert!(r.passed(), "{r:?}");
        assert_eq!((r.frames, r.valid_frames), (2, 2));
        let r = check(format!("  [{GOOD}, {GOOD}]").as_bytes());
        assert_eq!((r.frames, r.valid_frames, r.violation_count), (2, 2, 0));
        assert_eq!(check(b"").frames, 0);
    }

    #[test]
    fn each_broken_rule_is_named_with_frame_and_pointer() {
        let input = concat!(
            r#"{"type":"update","game_id":"g","seq":5,"ts":1763900000000000,"data":{}}"#,
            "\n",
            r#"{"game_id":"g","seq":6,"ts":1763900000000000}"#,
            "\n",
            r#"{"type":"heartbeat","game_id":"g","seq":4,"ts":1763900000000000}"#,
            "\n{\"type\": truncated\n"
        );
        let r = check(input.as_bytes());
        let checks: Vec<(&str, u64)> = r.violations.iter().map(|v| (v.check, v.frame)).collect();
        assert!(checks.contains(&("schema", 1)), "{checks:?}");
        assert!(
            r.violations
                .iter()
                .any(|v| v.frame == 2 && v.pointer == "/type"),
            "{r:?}"
        );
        assert!(checks.contains(&("seq", 3)), "{checks:?}");
        assert!(checks.contains(&("json", 4)), "{checks:?}");
    }

    #[test]
    fn hostile_input_is_reported_not_panicked_on() {
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let huge_number = r#"{"type":"heartbeat","game_id":"g","seq":1e999,"ts":1}"#;
        let input = [
            GOOD.as_bytes(),
            b"\n",
            deep.as_bytes(),
            b"\n",
            huge_number.as_bytes(),
            b"\n",
            &[0xff, 0xfe, b'{', b'}'],
            b"\n",
        ]
        .concat();
        let r = check(&input);
        assert_eq!((r.frames, r.valid_frames), (4, 1), "{r:?}");
        assert!(r.violations.iter().all(|v| v.check == "json"), "{r:?}");
        // The same nesting as a whole file is read as an array and refused as one.
        assert!(!check(deep.as_bytes()).passed());
        let long = vec![b'x'; MAX_FRAME_BYTES + 10];
        let r = check(&[&long[..], b"\n", GOOD.as_bytes()].concat());
        assert_eq!((r.violations[0].check, r.valid_frames), ("size", 1));
        let r = check(b"[1, {\"type\":");
        assert!(!r.passed());
    }

    fn peak_rss_kib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0)
    }

    #[test]
    fn a_100_mb_input_is_read_in_bounded_memory() {
        use std::io::Read as _;
        let before = peak_rss_kib();
        // 100 MiB: 100,000 lines of 1 KiB that are not JSON, then one 8 MiB line.
        let line: Vec<u8> = [vec![b'x'; 1023], vec![b'\n']].concat();
        let lines = std::io::Cursor::new(line).repeat_reader(100_000);
        let giant = std::io::repeat(b'y').take(8 << 20);
        let r = validate(
            std::io::BufReader::new(lines.chain(giant)),
            Schemas::builtin(false),
        )
        .unwrap();
        assert_eq!(r.frames, 100_001);
        assert_eq!(r.violation_count, 100_001);
        assert_eq!(r.violations.len(), MAX_LISTED, "only so many are kept");
        let grown_mib = (peak_rss_kib().saturating_sub(before)) / 1024;
        assert!(
            grown_mib < 40,
            "peak memory grew by {grown_mib} MiB reading 100 MiB"
        );
    }

    /// Repeats a reader's content `n` times without holding the copies.
    trait RepeatReader: Sized {
        fn repeat_reader(self, n: usize) -> Repeated;
    }
    impl RepeatReader for std::io::Cursor<Vec<u8>> {
        fn repeat_reader(self, n: usize) -> Repeated {
            Repeated {
                cursor: self,
                left: n,
            }
        }
    }
    struct Repeated {
        cursor: std::io::Cursor<Vec<u8>>,
        left: usize,
    }
    impl std::io::Read for Repeated {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            loop {
                if self.left == 0 {
                    return Ok(0);
                }
                let n = self.cursor.read(buf)?;
                if n > 0 {
                    return Ok(n);
                }
                self.left -= 1;
                self.cursor.set_position(0);
            }
        }
    }

    #[test]
    fn unknown_fields_are_violations_only_when_strict() {
        let extended = GOOD.replacen('{', r#"{"region":"eu","#, 1);
        let lenient = check(extended.as_bytes());
        assert!(lenient.passed(), "{lenient:?}");
        let strict = validate(std::io::Cursor::new(extended), Schemas::builtin(true)).unwrap();
        assert_eq!(strict.violation_count, 1, "{strict:?}");
        assert_eq!(strict.violations[0].check, "schema");
        assert!(strict.violations[0].actual.contains("region"), "{strict:?}");
        assert!(strict.render_text().contains("strict"));
    }

    #[test]
    fn schemas_load_from_a_folder_or_say_why_not() {
        let dir = std::env::temp_dir().join(format!("lg-schemas-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let e = load_schemas(Some(&dir), false).unwrap_err();
        assert!(e.contains("frames.schema.json"), "{e}");
        std::fs::write(dir.join("frames.schema.json"), schema::FRAMES_SCHEMA).unwrap();
        std::fs::write(dir.join("rest.schema.json"), schema::REST_SCHEMA).unwrap();
        assert!(matches!(
            load_schemas(Some(&dir), true),
            Ok(LoadedSchemas::Dir(_))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn recorded_lines_stay_one_per_frame() {
        assert_eq!(jsonl_line("{\"a\":1}"), "{\"a\":1}");
        assert_eq!(jsonl_line("{\n  \"a\": 1\n}"), "{\"a\":1}");
        assert_eq!(jsonl_line("not\njson"), "not json");
    }

    #[test]
    fn the_committed_asyncapi_document_matches_the_schemas() {
        let generated = serde_json::to_string_pretty(&asyncapi().unwrap()).unwrap() + "\n";
        let committed = include_str!("../fixtures/asyncapi.json");
        assert!(
            generated == committed,
            "fixtures/asyncapi.json is out of date: run `cargo run -- contract asyncapi > fixtures/asyncapi.json`"
        );
        assert!(
            !generated.contains("#/$defs/"),
            "every reference points into components"
        );
    }

    #[test]
    fn schemas_are_printed_by_name() {
        assert!(schema_text(Some("update")).unwrap().contains("\"data\""));
        assert!(schema_text(Some("games_list")).unwrap().contains("games"));
        assert!(schema_text(None).unwrap().contains("$defs"));
        assert!(schema_text(Some("nope")).unwrap_err().contains("known"));
    }
}
