//! Reading a Server-Sent Events stream (the WHATWG `text/event-stream` grammar, as
//! far as a client of a live feed needs it): bytes in, whole events out, any of the
//! three line endings, several `data:` lines joined by newlines, comments skipped.

/// One event: its `event:`, `id:` and `data:` (empty when absent). A block with no
/// field at all (a comment, a keep-alive) is an event with nothing in it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Event {
    pub name: String,
    pub id: String,
    pub data: String,
    /// Whether the block carried any `data:` line (a keep-alive carries none).
    pub has_data: bool,
}

/// The next whole event in `pending` (taken out of it), or None until one is complete.
pub fn take_event(pending: &mut Vec<u8>) -> Option<Event> {
    let (end, separator) = block_end(pending)?;
    let block: Vec<u8> = pending.drain(..end + separator).collect();
    let text = String::from_utf8_lossy(&block[..end]);
    let mut event = Event::default();
    let mut data: Vec<&str> = Vec::new();
    for line in text.split(['\n', '\r']) {
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => event.name = value.to_owned(),
            "id" => event.id = value.to_owned(),
            "data" => data.push(value),
            _ => {}
        }
    }
    event.has_data = !data.is_empty();
    event.data = data.join("\n");
    Some(event)
}

/// Where the first event block ends (a blank line, in any of SSE's line endings) and
/// the separator's length.
fn block_end(bytes: &[u8]) -> Option<(usize, usize)> {
    const SEPARATORS: [&[u8]; 3] = [b"\r\n\r\n", b"\n\n", b"\r\r"];
    SEPARATORS
        .iter()
        .filter_map(|sep| {
            bytes
                .windows(sep.len())
                .position(|w| w == *sep)
                .map(|at| (at, sep.len()))
        })
        .min_by_key(|(at, _)| *at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_come_whole_with_their_fields() {
        let mut pending =
            b"event: update\nid: 7\ndata: {\"seq\":7}\n\n: keep-alive\n\ndata: a\ndata: b\r\n\r\ndata: {\"se".to_vec();
        let first = take_event(&mut pending).unwrap();
        assert_eq!(
            (first.name.as_str(), first.id.as_str(), first.data.as_str()),
            ("update", "7", "{\"seq\":7}")
        );
        let keep_alive = take_event(&mut pending).unwrap();
        assert!(!keep_alive.has_data);
        assert_eq!(take_event(&mut pending).unwrap().data, "a\nb");
        assert_eq!(take_event(&mut pending), None, "an event not yet complete");
        assert_eq!(pending, b"data: {\"se");
    }

    #[test]
    fn blocks_end_at_the_first_blank_line_in_any_line_ending() {
        assert_eq!(block_end(b"data: 1\n\ndata: 2\n\n"), Some((7, 2)));
        assert_eq!(block_end(b"data: 1\r\n\r\n"), Some((7, 4)));
        assert_eq!(block_end(b"data: 1\r\rx"), Some((7, 2)));
        assert_eq!(block_end(b"data: 1\n"), None);
    }
}
