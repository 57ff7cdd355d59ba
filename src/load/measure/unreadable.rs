//! Frames a run could not read as the shape it was told to expect, by kind, with the
//! first few shown (escaped, cut) and, where the bytes have a known look (socket.io,
//! MQTT, STOMP, SSE, an HTML page), what they look like: a run that received only
//! such frames measured nothing, and its verdict says what arrived instead.

/// Why a frame could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreadable {
    /// A binary frame that is not UTF-8 text (UTF-8 binary frames are read as text).
    Binary,
    /// Text that is not JSON.
    NotJson,
    /// JSON with none of the fields the run reads (seq, ts, reply id).
    NoFields,
    /// A binary frame `--decode msgpack` could not decode.
    NotMsgpack,
    /// A binary frame `--decode cbor` could not decode.
    NotCbor,
    /// A frame `--decode stomp` could not read as a STOMP frame.
    NotStomp,
}

impl Unreadable {
    /// The kind's key in the report.
    pub fn as_str(self) -> &'static str {
        match self {
            Unreadable::Binary => "binary",
            Unreadable::NotJson => "not_json",
            Unreadable::NoFields => "no_fields",
            Unreadable::NotMsgpack => "not_msgpack",
            Unreadable::NotCbor => "not_cbor",
            Unreadable::NotStomp => "not_stomp",
        }
    }

    /// How the kind reads in a sentence: "4 frames were {...}".
    pub fn described(kind: &str) -> &'static str {
        match kind {
            "binary" => "binary",
            "not_json" => "not JSON",
            "no_fields" => "JSON without the seq or ts fields the run reads",
            "not_msgpack" => "not MessagePack",
            "not_cbor" => "not CBOR",
            "not_stomp" => "not STOMP frames",
            _ => "unreadable",
        }
    }
}

/// Examples kept per run.
pub const MAX_EXAMPLES: usize = 5;
/// Bytes of a frame an example shows.
const EXAMPLE_BYTES: usize = 60;

/// A frame as a person can read it in a report or a terminal: text escaped and cut,
/// binary as its length and first bytes in hex.
pub fn example(kind: Unreadable, frame: &[u8]) -> String {
    match (kind, std::str::from_utf8(frame)) {
        (Unreadable::Binary | Unreadable::NotMsgpack | Unreadable::NotCbor, _) | (_, Err(_)) => {
            let head: Vec<String> = frame.iter().take(16).map(|b| format!("{b:02x}")).collect();
            let more = if frame.len() > 16 { " …" } else { "" };
            format!("{} bytes: {}{more}", frame.len(), head.join(" "))
        }
        (_, Ok(text)) => {
            let cut = crate::text::cut(text, EXAMPLE_BYTES);
            format!("`{}`", crate::text::printable(&cut).replace('\n', "\\n"))
        }
    }
}

/// What a frame looks like, when it has a known look.
pub fn looks_like(frame: &[u8]) -> Option<&'static str> {
    let text = std::str::from_utf8(frame).ok().map(str::trim_start);
    if text.is_some_and(socket_io) {
        return Some(
            "socket.io (Engine.IO packets: a digit, then JSON): measure it with --protocol socketio",
        );
    }
    // Checked before the text looks: MQTT's small packets are often valid ASCII.
    if mqtt(frame) {
        return Some("MQTT packets (a broker's WebSocket listener)");
    }
    let t = text?;
    if ["CONNECTED\n", "MESSAGE\n", "ERROR\n", "RECEIPT\n"]
        .iter()
        .any(|p| t.starts_with(p))
    {
        return Some("STOMP frames");
    }
    if ["data:", "event:", "id:", "retry:"]
        .iter()
        .any(|p| t.starts_with(p))
    {
        return Some("Server-Sent Events (SSE) lines");
    }
    let lower = t.get(..15).unwrap_or(t).to_ascii_lowercase();
    if lower.starts_with("<!doctype") || lower.starts_with("<html") {
        return Some("an HTML page (an error page or a proxy's answer?)");
    }
    None
}

/// Engine.IO packet types are one digit (0 open ... 6 noop); socket.io messages are
/// `4` then a socket.io type digit (`42[...]`, `40{...}`).
fn socket_io(t: &str) -> bool {
    let mut chars = t.chars();
    let (Some(first), second) = (chars.next(), chars.next()) else {
        return false;
    };
    match (first, second) {
        ('0', Some('{')) => true,
        ('4', Some(d)) if d.is_ascii_digit() => true,
        ('2' | '3', None) => true,
        ('2' | '3', Some('p')) => t == "2probe" || t == "3probe",
        _ => false,
    }
}

/// An MQTT control packet: a known type nibble and a remaining length that fits.
fn mqtt(frame: &[u8]) -> bool {
    let Some((&first, rest)) = frame.split_first() else {
        return false;
    };
    let kind = first >> 4;
    if !(1..=14).contains(&kind) {
        return false;
    }
    let mut length = 0usize;
    for (i, &b) in rest.iter().take(4).enumerate() {
        length |= ((b & 0x7f) as usize) << (7 * i);
        if b & 0x80 == 0 {
            return length == rest.len() - i - 1;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_looks_are_named() {
        let name = |f: &[u8]| looks_like(f).map(|s| s.split_whitespace().next().unwrap());
        assert_eq!(
            name(br#"0{"sid":"abc","pingInterval":25000}"#),
            Some("socket.io")
        );
        assert_eq!(name(br#"42["tick",{"n":1}]"#), Some("socket.io"));
        assert_eq!(name(b"2"), Some("socket.io"));
        assert_eq!(
            name(b"MESSAGE\ndestination:/topic/a\n\n{}\0"),
            Some("STOMP")
        );
        assert_eq!(name(b"data: {\"a\":1}\n\n"), Some("Server-Sent"));
        assert_eq!(name(b"<!DOCTYPE html><html>"), Some("an"));
        // CONNACK: type 2, remaining length 2.
        assert_eq!(name(&[0x20, 0x02, 0x00, 0x00]), Some("MQTT"));
        for plain in [&b"hello"[..], b"7", b"{\"a\":1}", &[0xff, 0x00, 0x12]] {
            assert_eq!(looks_like(plain), None, "{plain:?}");
        }
    }

    #[test]
    fn examples_are_escaped_and_cut() {
        assert_eq!(
            example(Unreadable::NotJson, b"42[\"t\"]\x1b[2J"),
            "`42[\"t\"]\\u{1b}[2J`"
        );
        assert_eq!(
            example(Unreadable::Binary, &[1, 2, 255]),
            "3 bytes: 01 02 ff"
        );
        let long = example(Unreadable::NotJson, &[b'x'; 500]);
        assert!(long.len() < 80 && long.ends_with("…`"), "{long}");
        assert!(example(Unreadable::Binary, &[0; 40]).ends_with(" …"));
    }
}
