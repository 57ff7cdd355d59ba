//! STOMP 1.2 frames (`--decode stomp`) read as JSON, so the same pointers, session
//! steps and replies work on them: `{"command":"MESSAGE","headers":{...},"body":...}`,
//! the body parsed as JSON when it is JSON and kept as a string otherwise
//! (`--seq-field /body/seq`, `wait_for = "/command"` with `equals = "CONNECTED"`).
//! A heart-beat (end-of-lines alone) keeps the link alive and is not a frame.

use serde_json::{Map, Value};

/// What one WebSocket frame holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Stomp {
    /// A heart-beat: alive, nothing to read.
    HeartBeat,
    /// A frame, as JSON.
    Frame(Value),
}

/// Reads a STOMP frame; None when the bytes are not one.
pub fn read(bytes: &[u8]) -> Option<Stomp> {
    let text = std::str::from_utf8(bytes).ok()?;
    // Heart-beats may also come before a frame in the same message.
    let text = text.trim_start_matches(['\r', '\n']);
    if text.is_empty() {
        return Some(Stomp::HeartBeat);
    }
    let (head, body) = split_head(text)?;
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let command = lines.next()?;
    if command.is_empty() || !command.bytes().all(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let mut headers = Map::new();
    for line in lines {
        let (name, value) = line.split_once(':')?;
        // STOMP 1.2: a repeated header's first value is the one that counts.
        headers
            .entry(unescape(name))
            .or_insert_with(|| Value::String(unescape(value)));
    }
    let body = frame_body(body, headers.get("content-length"))?;
    let body = serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_owned()));
    let mut frame = Map::new();
    frame.insert("command".into(), command.into());
    frame.insert("headers".into(), Value::Object(headers));
    frame.insert("body".into(), body);
    Some(Stomp::Frame(Value::Object(frame)))
}

/// The head (command and headers) and what follows the blank line after it.
fn split_head(text: &str) -> Option<(&str, &str)> {
    let lf = text.find("\n\n").map(|at| (at, 2));
    let crlf = text.find("\r\n\r\n").map(|at| (at, 4));
    let (at, len) = match (lf, crlf) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b)?,
    };
    Some((&text[..at], &text[at + len..]))
}

/// The body: `content-length` bytes when given, else up to the NUL that ends the
/// frame (trailing end-of-lines after it are heart-beats).
fn frame_body<'a>(rest: &'a str, length: Option<&Value>) -> Option<&'a str> {
    if let Some(n) = length
        .and_then(Value::as_str)
        .and_then(|n| n.parse::<usize>().ok())
    {
        return rest.get(..n);
    }
    Some(match rest.find('\0') {
        Some(end) => &rest[..end],
        None => rest,
    })
}

/// STOMP 1.2 header escapes: `\n`, `\r`, `\c` (colon), `\\`.
fn unescape(text: &str) -> String {
    if !text.contains('\\') {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('c') => out.push(':'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_reads_as_json_with_its_body_parsed() {
        let frame = b"MESSAGE\ndestination:/topic/games.g1\nmessage-id:7\nsubscription:0\ncontent-type:application/json\n\n{\"seq\":7,\"ts\":1733000000000000}\0\n";
        let Some(Stomp::Frame(value)) = read(frame) else {
            panic!("a frame");
        };
        assert_eq!(value["command"], "MESSAGE");
        assert_eq!(value["headers"]["destination"], "/topic/games.g1");
        assert_eq!(value.pointer("/body/seq"), Some(&Value::from(7)));
    }

    #[test]
    fn heart_beats_crlf_escapes_lengths_and_text_bodies() {
        assert_eq!(read(b"\n"), Some(Stomp::HeartBeat));
        assert_eq!(read(b"\r\n\r\n"), Some(Stomp::HeartBeat));
        let Some(Stomp::Frame(v)) =
            read(b"\nCONNECTED\r\nversion:1.2\r\nheart-beat:0,1000\r\n\r\n\0")
        else {
            panic!("a frame");
        };
        assert_eq!(v["command"], "CONNECTED");
        assert_eq!(v["headers"]["heart-beat"], "0,1000");
        assert_eq!(v["body"], "");
        let Some(Stomp::Frame(v)) =
            read(b"MESSAGE\na\\cb:x\\ny\na\\cb:second\ncontent-length:2\n\nhi\0\0")
        else {
            panic!("a frame");
        };
        assert_eq!(
            v["headers"]["a:b"], "x\ny",
            "escapes, and the first value wins"
        );
        assert_eq!(v["body"], "hi");
        let Some(Stomp::Frame(v)) = read(b"ERROR\nmessage:bad\n\nnot json\0") else {
            panic!("a frame");
        };
        assert_eq!(v["body"], "not json");
    }

    #[test]
    fn what_is_not_stomp_is_none() {
        for bytes in [
            &b"{\"seq\":1}"[..],
            b"message\n\n\0",
            b"MESSAGE\nno colon here\n\n\0",
            b"MESSAGE only a command",
            b"\xff\xfe",
            b"MESSAGE\ncontent-length:99\n\nshort\0",
        ] {
            assert_eq!(read(bytes), None, "{:?}", String::from_utf8_lossy(bytes));
        }
    }
}
