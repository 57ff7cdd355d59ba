//! `livegames contract validate`: recorded frames (JSON Lines, or one JSON array)
//! checked against the contract, read one frame at a time so memory stays bounded by
//! the largest frame (itself capped), not by the file.

use std::io::BufRead;

use serde::Serialize;

use crate::contract::check::{FrameChecker, RAW_EXCERPT_BYTES, Violation};
use crate::contract::schema::Schemas;

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

/// A JSON array, element by element: the bytes of each element are split off as they
/// stream in (only strings, escapes and nesting are tracked, nothing is parsed), so at
/// most one element of at most [`MAX_FRAME_BYTES`] is held; a longer one is skipped to
/// its end and reported as a size violation, and the elements after it are still
/// checked.
fn validate_array(mut input: impl BufRead, checker: &mut Checker) -> std::io::Result<()> {
    let mut splitter = ArraySplitter::default();
    loop {
        let buf = input.fill_buf()?;
        if buf.is_empty() {
            splitter.at_end(checker);
            return Ok(());
        }
        let (used, done) = splitter.feed(buf, checker);
        input.consume(used);
        if done {
            return refuse_trailing_input(input, checker);
        }
    }
}

/// After the array's closing `]` only whitespace may follow: anything else (a second
/// array, a frame on its own line) would otherwise never be checked.
fn refuse_trailing_input(mut input: impl BufRead, checker: &mut Checker) -> std::io::Result<()> {
    loop {
        let buf = input.fill_buf()?;
        if buf.is_empty() {
            return Ok(());
        }
        if let Some(start) = buf.iter().position(|b| !b.is_ascii_whitespace()) {
            let excerpt = &buf[start..buf.len().min(start + RAW_EXCERPT_BYTES)];
            checker.report.frames += 1;
            let frame = checker.report.frames;
            let violation = Violation::new(
                "json",
                frame,
                "",
                "nothing after the array's closing ]",
                "more input after it",
                &String::from_utf8_lossy(excerpt),
            );
            checker.report.add(violation);
            return Ok(());
        }
        let n = buf.len();
        input.consume(n);
    }
}

/// Where the splitter is in the array.
#[derive(Default)]
struct ArraySplitter {
    /// The opening `[` has been read.
    opened: bool,
    /// Nesting inside the current element.
    depth: usize,
    in_string: bool,
    escaped: bool,
    /// The current element's bytes (at most MAX_FRAME_BYTES of them).
    element: Vec<u8>,
    /// The current element is longer than what is kept.
    truncated: bool,
}

impl ArraySplitter {
    /// Takes bytes; returns how many it used, and whether the array has ended.
    fn feed(&mut self, buf: &[u8], checker: &mut Checker) -> (usize, bool) {
        let mut i = 0;
        while i < buf.len() {
            if self.in_string {
                // Fast path through string content: find the next quote or backslash.
                if !self.escaped {
                    let rest = &buf[i..];
                    let skip = rest
                        .iter()
                        .position(|b| *b == b'"' || *b == b'\\')
                        .unwrap_or(rest.len());
                    self.keep(&rest[..skip]);
                    i += skip;
                    if i == buf.len() {
                        break;
                    }
                }
                let b = buf[i];
                self.keep(&[b]);
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                }
                i += 1;
                continue;
            }
            let b = buf[i];
            i += 1;
            if !self.opened {
                // validate() has seen that the first non-blank byte is '['.
                self.opened = b == b'[';
                continue;
            }
            match b {
                b'"' => {
                    self.in_string = true;
                    self.keep(&[b]);
                }
                b'{' | b'[' => {
                    self.depth += 1;
                    self.keep(&[b]);
                }
                b']' if self.depth == 0 => {
                    self.finish(checker);
                    return (i, true);
                }
                b'}' | b']' => {
                    self.depth = self.depth.saturating_sub(1);
                    self.keep(&[b]);
                }
                b',' if self.depth == 0 => self.finish(checker),
                b if b.is_ascii_whitespace() && self.depth == 0 && self.element.is_empty() => {}
                b => self.keep(&[b]),
            }
        }
        (i, false)
    }

    fn keep(&mut self, bytes: &[u8]) {
        let room = MAX_FRAME_BYTES.saturating_sub(self.element.len());
        if bytes.len() > room {
            self.truncated = true;
        }
        self.element
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    /// The current element is complete: check it.
    fn finish(&mut self, checker: &mut Checker) {
        let blank = self.element.iter().all(u8::is_ascii_whitespace);
        if !blank || self.truncated {
            checker.raw_bytes(&self.element, self.truncated);
        }
        self.element.clear();
        self.truncated = false;
    }

    /// The input ended before the array did.
    fn at_end(&mut self, checker: &mut Checker) {
        checker.report.frames += 1;
        let frame = checker.report.frames;
        let raw =
            String::from_utf8_lossy(&self.element[..self.element.len().min(RAW_EXCERPT_BYTES)])
                .into_owned();
        checker.report.add(Violation::new(
            "json",
            frame,
            "",
            "a JSON array of frame objects, closed with ]",
            "the input ended inside the array",
            &raw,
        ));
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

    #[test]
    fn input_after_the_arrays_closing_bracket_is_a_violation() {
        let frame = r#"{"type":"heartbeat","game_id":"g","seq":1,"ts":1763900000000000}"#;
        let report = check(format!("[{frame}]\n{{\"type\":\"bogus\"}}\n").as_bytes());
        assert!(!report.passed(), "{}", report.render_text());
        assert!(
            report
                .render_text()
                .contains("nothing after the array's closing ]"),
            "{}",
            report.render_text()
        );
        // Whitespace after it is fine.
        let report = check(format!("[{frame}]\n\n  \n").as_bytes());
        assert!(report.passed(), "{}", report.render_text());
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
    fn arrays_are_split_at_their_own_commas_and_oversized_elements_are_named() {
        let tricky = r#"{"type":"heartbeat","game_id":"g, [\"]} {","seq":3,"ts":1763900000000000}"#;
        let r = check(format!("[{GOOD} , {tricky}]").as_bytes());
        assert_eq!((r.frames, r.valid_frames), (2, 2), "{r:?}");
        let big = format!(
            r#"{{"type":"heartbeat","pad":"{}"}}"#,
            "x".repeat(MAX_FRAME_BYTES * 2)
        );
        let r = check(format!("[{GOOD},{big},{GOOD}]").as_bytes());
        assert_eq!((r.frames, r.valid_frames), (3, 2), "{:?}", r.violations);
        assert_eq!((r.violations[0].check, r.violations[0].frame), ("size", 2));
        let r = check(format!("[{GOOD}, {{\"type\":").as_bytes());
        assert_eq!(
            r.violations.last().unwrap().actual,
            "the input ended inside the array"
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Text that looks like recorded frames: pieces of frames, brackets, commas,
        /// quotes and escapes, numbers of every size, line breaks.
        fn recording() -> impl Strategy<Value = String> {
            let piece = prop::sample::select(vec![
                GOOD,
                "[",
                "]",
                ",",
                "{",
                "}",
                "\"",
                "\\",
                "\n",
                " ",
                "\"seq\":",
                "18446744073709551616",
                "-1",
                "1e300",
                "null",
                "{\"type\":\"update\"}",
                r#"{"type":"heartbeat","game_id":"g","seq":4,"ts":1763900000000000}"#,
            ]);
            proptest::collection::vec(piece, 0..30).prop_map(|pieces| pieces.concat())
        }

        proptest! {
            /// Whatever the input, validate reads it to a verdict that adds up: no
            /// panic, no frame counted as valid and violating at once.
            #[test]
            fn any_recording_gets_a_verdict_that_adds_up(text in recording()) {
                let report = check(text.as_bytes());
                prop_assert!(report.valid_frames <= report.frames);
                prop_assert_eq!(report.passed(), report.violation_count == 0);
            }

            #[test]
            fn any_bytes_get_a_verdict(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
                let report = check(&bytes);
                prop_assert!(report.valid_frames <= report.frames);
            }
        }
    }
}
