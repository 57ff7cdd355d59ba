//! Text that came from somewhere else, made safe to show: cut to a length, control
//! characters made visible for a terminal, markup escaped for HTML and XML reports.
//! A peer's text (a close reason, a body, a game id) goes through here before it
//! reaches a person.

use std::borrow::Cow;

use serde_json::Value;

/// A value rendered as JSON and cut to at most `max` bytes (on a char boundary).
pub fn excerpt(value: &Value, max: usize) -> String {
    cut(&value.to_string(), max)
}

/// `text` cut to at most `max` bytes on a char boundary, with an ellipsis when cut.
pub fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// `text` with its control characters written as escapes (`\u{1b}`), so that text
/// from a peer can never move the cursor, clear the screen or ring the bell when it
/// is printed. Tabs and line breaks are kept.
pub fn printable(text: &str) -> Cow<'_, str> {
    let hidden = |c: char| c.is_control() && !matches!(c, '\t' | '\n' | '\r');
    if !text.contains(hidden) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if hidden(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `text` escaped for HTML and XML, in element text and in quoted attributes. The
/// control characters XML 1.0 cannot carry become U+FFFD (a raw frame may hold
/// anything), so the same escaper serves the HTML report and JUnit.
pub fn escape_markup(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_respects_char_boundaries() {
        assert_eq!(cut("héllo", 2), "h…");
        assert_eq!(cut("abc", 5), "abc");
    }

    #[test]
    fn control_characters_are_shown_not_obeyed() {
        assert_eq!(printable("plain\ttext\n"), "plain\ttext\n");
        assert_eq!(
            printable("\u{1b}[2Jx\u{7}\u{9b}"),
            "\\u{1b}[2Jx\\u{7}\\u{9b}"
        );
    }
}
