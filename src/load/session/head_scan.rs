//! Our contract's frame head in one pass over the bytes: the whole frame validated as
//! JSON and the seven fields `load` reads taken on the way, with no deserializer
//! machinery. At 100,000 frames a second reading is the largest part of what `load`
//! spends per frame beyond a bare client (docs/PERFORMANCE.md).
//!
//! It takes on only what our servers send: plain (unescaped) keys and wanted strings,
//! integer numbers in the number fields. On anything else (an
//! escape where a field is matched, a fraction, a repeated field, nesting deeper than
//! [`MAX_DEPTH`], or bytes that are not JSON) it says nothing, and the frame is read
//! by serde_json, whose verdict stands: so it can never accept what the reader would
//! refuse, nor read a field differently (a property test holds it to that).

/// Deeper than this, the scan leaves the frame to serde_json (which refuses 128).
const MAX_DEPTH: usize = 64;

/// The wanted fields of a frame, or None when the scan is not sure (see the module's
/// doc).
pub(super) fn scan(text: &str) -> Option<HeadFields<'_>> {
    let mut scanner = Scanner {
        text,
        bytes: text.as_bytes(),
        at: 0,
    };
    let mut head = Head::default();
    scanner.space();
    scanner.eat(b'{')?;
    scanner.members(|s, key| s.head_field(key?, &mut head))?;
    scanner.space();
    (scanner.at == scanner.bytes.len()).then_some(())?;
    Some(head.fields)
}

/// The contract's fields `load` reads, as the frame has them (numbers that are not
/// integers and strings that are null: None). The frame reader makes its facts of
/// them, from this scan or from serde_json alike.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(super) struct HeadFields<'a> {
    pub kind: Option<&'a str>,
    pub seq: Option<i64>,
    pub ts: Option<i64>,
    pub id: Option<i64>,
    pub observed_at: Option<i64>,
    pub code: Option<&'a str>,
    pub epoch: Option<&'a str>,
}

/// The wanted fields as they are found.
#[derive(Default)]
struct Head<'a> {
    fields: HeadFields<'a>,
    /// Which wanted fields were seen (a bit each): a repeated one is serde's error.
    seen: u8,
}

/// Bytes that end a run of plain string bytes: the quote, the backslash and the
/// control characters (which JSON does not allow unescaped).
static STRING_STOP: [bool; 256] = {
    let mut stop = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        stop[b] = true;
        b += 1;
    }
    stop[b'"' as usize] = true;
    stop[b'\\' as usize] = true;
    stop
};

struct Scanner<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

/// Eight bytes at a time, as serde_json skips strings: a set high bit in each byte
/// lane that is (at least the lowest such lane exactly) a quote, a backslash or a
/// control character.
fn string_stops(chunk: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_in = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let quote = zero_in(chunk ^ (ONES * u64::from(b'"')));
    let backslash = zero_in(chunk ^ (ONES * u64::from(b'\\')));
    let control = chunk.wrapping_sub(ONES * 0x20) & !chunk & HIGH;
    quote | backslash | control
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.at + word.len();
        (self.bytes.get(self.at..end)? == word).then(|| self.at = end)
    }

    /// An object's members, from after its `{` to after its `}`; `each` reads each
    /// value, given its key (None when the key has escapes: it cannot be matched).
    fn members(
        &mut self,
        mut each: impl FnMut(&mut Self, Option<&'a str>) -> Option<()>,
    ) -> Option<()> {
        self.space();
        if self.peek()? == b'}' {
            self.at += 1;
            return Some(());
        }
        loop {
            self.space();
            let key = self.string()?;
            self.space();
            self.eat(b':')?;
            self.space();
            each(self, key)?;
            self.space();
            match self.peek()? {
                b',' => self.at += 1,
                b'}' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// A string, validated: its text when it has no escapes, else Some(None).
    fn string(&mut self) -> Option<Option<&'a str>> {
        self.eat(b'"')?;
        let start = self.at;
        let mut plain = true;
        loop {
            self.skip_plain_run();
            while !STRING_STOP[*self.bytes.get(self.at)? as usize] {
                self.at += 1;
            }
            match self.bytes[self.at] {
                b'"' => break,
                b'\\' => {
                    plain = false;
                    self.escape()?;
                }
                _ => return None,
            }
        }
        let text = self.text.get(start..self.at);
        self.at += 1;
        // Cut at ASCII quotes of a `str`: always on a character boundary.
        Some(text.filter(|_| plain))
    }

    /// Passes over plain string bytes eight at a time, up to the first that may stop
    /// the string (the byte loop after it finds which).
    fn skip_plain_run(&mut self) {
        while let Some(chunk) = self.bytes.get(self.at..self.at + 8) {
            let lanes = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
            let stops = string_stops(lanes);
            if stops != 0 {
                self.at += (stops.trailing_zeros() / 8) as usize;
                return;
            }
            self.at += 8;
        }
    }

    /// One escape, from its backslash.
    fn escape(&mut self) -> Option<()> {
        match *self.bytes.get(self.at + 1)? {
            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.at += 2,
            b'u' => {
                let hex = self.bytes.get(self.at + 2..self.at + 6)?;
                hex.iter().all(u8::is_ascii_hexdigit).then_some(())?;
                self.at += 6;
            }
            _ => return None,
        }
        Some(())
    }

    /// A number, validated; its value when it is an integer that surely fits an i64
    /// (a fraction, an exponent or 19 digits and more: None, for serde to read).
    fn number(&mut self) -> Option<Option<i64>> {
        let negative = self.peek() == Some(b'-');
        if negative {
            self.at += 1;
        }
        let digits = self.at;
        match self.peek()? {
            b'0' => self.at += 1,
            b'1'..=b'9' => self.skip_digits(),
            _ => return None,
        }
        let whole = &self.bytes[digits..self.at];
        let mut integer = true;
        if self.peek() == Some(b'.') {
            self.at += 1;
            self.digits()?;
            integer = false;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            self.digits()?;
            integer = false;
        }
        if !integer || whole.len() > 18 {
            return Some(None);
        }
        let magnitude = whole.iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0'));
        Some(Some(if negative { -magnitude } else { magnitude }))
    }

    fn skip_digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
    }

    /// At least one digit.
    fn digits(&mut self) -> Option<()> {
        let start = self.at;
        self.skip_digits();
        (self.at > start).then_some(())
    }

    /// Any JSON value, validated and passed over.
    fn skip(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'{' => {
                self.at += 1;
                self.members(|s, _| s.skip(depth + 1))
            }
            b'[' => {
                self.at += 1;
                self.elements(depth + 1)
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.number().map(drop),
            _ => None,
        }
    }

    /// An array's elements, from after its `[` to after its `]`.
    fn elements(&mut self, depth: usize) -> Option<()> {
        self.space();
        if self.peek()? == b']' {
            self.at += 1;
            return Some(());
        }
        loop {
            self.space();
            self.skip(depth)?;
            self.space();
            match self.peek()? {
                b',' => self.at += 1,
                b']' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// A number field: an integer's value; None for any other value (as the reader's
    /// `Number` does); a fraction or exponent is not taken on (serde reads it).
    fn number_field(&mut self) -> Option<Option<i64>> {
        match self.peek()? {
            b'-' | b'0'..=b'9' => self.number()?.map(Some),
            _ => self.skip(2).map(|()| None),
        }
    }

    /// A string field: its text, or None for null; escapes and other types are not
    /// taken on.
    fn string_field(&mut self) -> Option<Option<&'a str>> {
        match self.peek()? {
            b'n' => self.literal(b"null").map(|()| None),
            b'"' => self.string()?.map(Some),
            _ => None,
        }
    }

    /// One member of the frame's top-level object.
    fn head_field(&mut self, key: &str, head: &mut Head<'a>) -> Option<()> {
        let bit = match key {
            "type" => 1,
            "seq" => 2,
            "ts" => 4,
            "id" => 8,
            "data" => 16,
            "code" => 32,
            "epoch" => 64,
            _ => return self.skip(1),
        };
        (head.seen & bit == 0).then_some(())?;
        head.seen |= bit;
        match key {
            "type" => head.fields.kind = self.string_field()?,
            "seq" => head.fields.seq = self.number_field()?,
            "ts" => head.fields.ts = self.number_field()?,
            "id" => head.fields.id = self.number_field()?,
            "code" => head.fields.code = self.string_field()?,
            "epoch" => head.fields.epoch = self.string_field()?,
            _ => head.fields.observed_at = self.data()?,
        }
        Some(())
    }

    /// `data`: an object's `observed_at`; any other value has none.
    fn data(&mut self) -> Option<Option<i64>> {
        if self.peek()? != b'{' {
            return self.skip(2).map(|()| None);
        }
        self.at += 1;
        let mut observed_at = None;
        let mut seen = false;
        self.members(|s, key| match key? {
            "observed_at" if !seen => {
                seen = true;
                observed_at = s.number_field()?;
                Some(())
            }
            "observed_at" => None,
            _ => s.skip(2),
        })?;
        Some(observed_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::FrameType;
    use crate::load::session::frame::{FrameFacts, FrameReader, facts_of};
    use proptest::prelude::*;

    const UPDATE: &str = include_str!("../../../benches/data/update-frame.json");
    const SNAPSHOT: &str = include_str!("../../../benches/data/snapshot-frame.json");

    /// What serde_json's reader makes of a frame.
    fn by_serde(text: &str) -> Option<FrameFacts> {
        FrameReader::Contract.read_with_serde(text).ok()
    }

    /// What the scan makes of it, as the reader's facts.
    fn by_scan(text: &str) -> Option<FrameFacts> {
        scan(text).map(facts_of)
    }

    #[test]
    fn our_servers_frames_are_read_by_the_scan_as_serde_reads_them() {
        for frame in [
            UPDATE,
            SNAPSHOT,
            r#"{"type":"pong","id":9,"seq":4,"ts":1}"#,
            r#"{"type":"error","code":"resume_gap","seq":3,"ts":1,"message":"gone"}"#,
            r#"{"type":"heartbeat","seq":0,"ts":-5}"#,
            " {\"type\" : \"update\" ,\n\"seq\":\t1, \"data\": null} ",
            r#"{"type":"update","seq":1,"data":"a foreign server's text"}"#,
            r#"{"type":"update","seq":1,"data":[7]}"#,
            r#"{"type":"update","seq":1,"data":{"observed_at":7,"x":[1,-2.5e3,{"y":[]},true,false,null,"a\"b\u00e9"]}}"#,
        ] {
            let scanned = by_scan(frame).unwrap_or_else(|| panic!("not scanned: {frame}"));
            assert_eq!(Some(scanned), by_serde(frame), "{frame}");
        }
        let update = by_scan(UPDATE).unwrap();
        assert_eq!(update.kind, Some(FrameType::Update));
        assert!(update.seq.is_some() && update.ts.is_some() && update.observed_at.is_some());
        let snapshot = by_scan(SNAPSHOT).unwrap();
        assert!(snapshot.epoch.is_some(), "a snapshot's epoch is read");
    }

    #[test]
    fn what_is_not_json_is_never_scanned() {
        for bad in [
            "",
            "{",
            r#"{"type":"update",}"#,
            r#"{"type":"update"} x"#,
            r#"{"seq":01}"#,
            r#"{"seq":1.}"#,
            r#"{"seq":-}"#,
            r#"{"x":[1,]}"#,
            r#"{"x":"a\qb"}"#,
            r#"{"x":"\u12"}"#,
            "{\"x\":\"a\u{1}b\"}",
            r#"{"x":tru}"#,
            r#"{"x" 1}"#,
            r#"{"x":1 "y":2}"#,
            r#"["update",1]"#,
        ] {
            assert_eq!(scan(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn what_the_scan_does_not_take_on_is_left_to_serde() {
        for frame in [
            // An escaped key could be a wanted one.
            r#"{"typ\u0065":"update","seq":1}"#,
            r#"{"type":"upd\u0061te"}"#,
            r#"{"seq":1.5}"#,
            r#"{"ts":1e3}"#,
            r#"{"seq":1,"seq":2}"#,
            r#"{"data":{"observed_at":1,"observed_at":2}}"#,
            r#"{"type":5}"#,
            r#"{"seq":12345678901234567890}"#,
        ] {
            assert_eq!(scan(frame), None, "{frame}");
        }
        // Deep nesting: serde's to refuse or read.
        let deep = format!("{{\"x\":{}1{}}}", "[".repeat(100), "]".repeat(100));
        assert_eq!(scan(&deep), None);
    }

    /// JSON-ish text: mostly frames of our shape with random values, some mangled.
    fn frames() -> impl Strategy<Value = String> {
        let value = prop_oneof![
            any::<i64>().prop_map(|n| n.to_string()),
            (any::<i32>(), 0u32..1000).prop_map(|(a, b)| format!("{a}.{b}")),
            "[a-z\\\\\"u0-9 ]{0,6}".prop_map(|s| format!("\"{s}\"")),
            Just("null".to_owned()),
            Just("true".to_owned()),
            Just("[1,{\"a\":[]}]".to_owned()),
            Just("{\"observed_at\":5}".to_owned()),
        ];
        let key = prop_oneof![
            Just("type"),
            Just("seq"),
            Just("ts"),
            Just("id"),
            Just("data"),
            Just("code"),
            Just("epoch"),
            Just("observed_at"),
            Just("other"),
        ];
        let members = prop::collection::vec((key, value), 0..8).prop_map(|members| {
            let inner: Vec<String> = members
                .iter()
                .map(|(k, v)| format!("\"{k}\":{v}"))
                .collect();
            format!("{{{}}}", inner.join(","))
        });
        prop_oneof![
            members.clone(),
            (members, any::<prop::sample::Index>(), any::<u8>()).prop_map(|(text, at, byte)| {
                // One byte changed (kept ASCII, so the text stays UTF-8).
                let mut bytes = text.into_bytes();
                let at = at.index(bytes.len());
                bytes[at] = byte & 0x7f;
                String::from_utf8(bytes).unwrap()
            }),
            (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(at, byte)| {
                let mut bytes = UPDATE.as_bytes().to_vec();
                let at = at.index(bytes.len());
                bytes[at] = byte & 0x7f;
                String::from_utf8(bytes).unwrap()
            }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]
        /// The scan never accepts what serde refuses, nor reads a field otherwise.
        #[test]
        fn whatever_the_scan_reads_serde_reads_the_same(text in frames()) {
            if let Some(scanned) = by_scan(&text) {
                prop_assert_eq!(Some(scanned), by_serde(&text), "{}", text);
            }
        }
    }
}
