//! InfluxDB line protocol: `measurement,tag=v field=1i,other=0.5 1700000000000000000`.
//!
//! Text from upstreams (a play's description, a team name) reaches these lines, so
//! every key and value is escaped as the protocol requires, line breaks become spaces,
//! and values the protocol cannot carry (NaN, infinities, empty tags) are left out
//! rather than corrupting the batch they travel in.

use std::fmt::Write;

/// One field value.
#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    Float(f64),
    Int(i64),
    Bool(bool),
    Text(String),
}

/// A point being written: add tags and fields, then [`Line::finish`] it.
pub struct Line<'a> {
    out: &'a mut String,
    start: usize,
    fields: usize,
    in_fields: bool,
}

/// Starts a line for `measurement` at the end of `out`.
pub fn line<'a>(out: &'a mut String, measurement: &str) -> Line<'a> {
    let start = out.len();
    escape_into(out, measurement, &[',', ' ']);
    Line {
        out,
        start,
        fields: 0,
        in_fields: false,
    }
}

impl Line<'_> {
    /// Adds a tag; an empty value is left out (the protocol has no empty tags). Tags
    /// must come before the first field.
    pub fn tag(self, key: &str, value: &str) -> Self {
        debug_assert!(!self.in_fields, "tags go before fields");
        if value.is_empty() || self.in_fields {
            return self;
        }
        self.out.push(',');
        escape_into(self.out, key, &[',', '=', ' ']);
        self.out.push('=');
        escape_into(self.out, value, &[',', '=', ' ']);
        self
    }

    pub fn field(mut self, key: &str, value: Field) -> Self {
        if let Field::Float(f) = value
            && !f.is_finite()
        {
            return self;
        }
        self.out.push(if self.in_fields { ',' } else { ' ' });
        self.in_fields = true;
        self.fields += 1;
        escape_into(self.out, key, &[',', '=', ' ']);
        self.out.push('=');
        match value {
            // `{:?}` keeps a decimal point or exponent, so 1.0 stays a float.
            Field::Float(f) => {
                let _ = write!(self.out, "{f:?}");
            }
            Field::Int(i) => {
                let _ = write!(self.out, "{i}i");
            }
            Field::Bool(b) => self.out.push_str(if b { "true" } else { "false" }),
            Field::Text(s) => {
                self.out.push('"');
                escape_into(self.out, &s, &['"', '\\']);
                self.out.push('"');
            }
        }
        self
    }

    /// A field only when there is a value.
    pub fn field_opt(self, key: &str, value: Option<Field>) -> Self {
        match value {
            Some(v) => self.field(key, v),
            None => self,
        }
    }

    /// Ends the line with its timestamp (nanoseconds) and a newline. A line without
    /// fields is invalid in the protocol: it is removed, and `false` returned.
    pub fn finish(self, unix_nanos: i64) -> bool {
        if self.fields == 0 {
            self.out.truncate(self.start);
            return false;
        }
        let _ = writeln!(self.out, " {unix_nanos}");
        true
    }
}

/// Appends `text` with a backslash before each of `special` and before each of its
/// own backslashes (a reader takes any backslash as escaping the next character, so
/// an unescaped one at the end of a tag would swallow the separator after it), and
/// line breaks (which would end the line) as spaces.
fn escape_into(out: &mut String, text: &str, special: &[char]) {
    for c in text.chars() {
        match c {
            '\n' | '\r' => out.push(' '),
            c if c == '\\' || special.contains(&c) => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_point_with_tags_and_every_field_type() {
        let mut out = String::new();
        let ok = line(&mut out, "live_point")
            .tag("game", "0022400196")
            .tag("league", "nba")
            .field("home_score", Field::Int(25))
            .field("home_win_prob", Field::Float(1.0))
            .field("final", Field::Bool(false))
            .field("clock", Field::Text("5:32".into()))
            .finish(1_700_000_000_000_000_000);
        assert!(ok);
        assert_eq!(
            out,
            "live_point,game=0022400196,league=nba home_score=25i,home_win_prob=1.0,final=false,clock=\"5:32\" 1700000000000000000\n"
        );
    }

    #[test]
    fn hostile_text_is_escaped_and_cannot_start_a_new_line() {
        let mut out = String::new();
        line(&mut out, "m,x y")
            .tag("team", "Trail Blazers,=x")
            .field(
                "play",
                Field::Text("he said \"and one\" \\o/\nm2 x=1i 0".into()),
            )
            .finish(1);
        assert_eq!(
            out,
            "m\\,x\\ y,team=Trail\\ Blazers\\,\\=x play=\"he said \\\"and one\\\" \\\\o/ m2 x=1i 0\" 1\n"
        );
        assert_eq!(out.lines().count(), 1);
    }

    #[test]
    fn values_the_protocol_cannot_carry_are_left_out() {
        let mut out = String::from("before\n");
        let ok = line(&mut out, "m")
            .tag("empty", "")
            .field("nan", Field::Float(f64::NAN))
            .field_opt("none", None)
            .finish(1);
        assert!(!ok, "no fields: no line");
        assert_eq!(out, "before\n", "and nothing half-written");
        line(&mut out, "m")
            .tag("empty", "")
            .field("inf", Field::Float(f64::INFINITY))
            .field("x", Field::Float(0.5))
            .finish(2);
        assert_eq!(out, "before\nm x=0.5 2\n");
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Splits text at the separators the protocol sees: an unescaped `sep`, and
        /// with `quotes` (the field set) only outside a quoted string value. A
        /// backslash escapes the character after it.
        fn split_unescaped(text: &str, sep: char, quotes: bool) -> Vec<String> {
            let mut parts = vec![String::new()];
            let (mut escaped, mut quoted) = (false, false);
            for c in text.chars() {
                if escaped {
                    parts.last_mut().unwrap().push(c);
                    escaped = false;
                } else if c == '\\' {
                    parts.last_mut().unwrap().push(c);
                    escaped = true;
                } else if c == '"' && quotes {
                    quoted = !quoted;
                    parts.last_mut().unwrap().push(c);
                } else if c == sep && !quoted {
                    parts.push(String::new());
                } else {
                    parts.last_mut().unwrap().push(c);
                }
            }
            parts
        }

        proptest! {
            /// Whatever text reaches a line (a play's description, a team name), the
            /// line keeps its shape as the protocol reads it: one line, three
            /// space-separated parts (series, fields, timestamp), one tag and two
            /// fields, each tag with one `=`.
            #[test]
            fn any_text_keeps_the_line_in_shape(
                measurement in "\\PC{1,12}",
                tag_value in "\\PC{1,20}",
                text in "\\PC{0,40}",
            ) {
                let mut out = String::new();
                let written = line(&mut out, &measurement)
                    .tag("team", &tag_value)
                    .field("play", Field::Text(text))
                    .field("n", Field::Int(1))
                    .finish(1);
                prop_assert!(written);
                prop_assert!(out.ends_with('\n'));
                let body = &out[..out.len() - 1];
                prop_assert!(!body.contains('\n'), "{:?}", out);
                // The series (measurement and tags) ends at the first unescaped
                // space; quotes mean nothing there. Then fields, then the time.
                let series_end = split_unescaped(body, ' ', false)[0].len();
                let series = split_unescaped(&body[..series_end], ',', false);
                let rest: Vec<String> = split_unescaped(&body[series_end + 1..], ' ', true);
                let parts = [vec![body[..series_end].to_owned()], rest].concat();
                prop_assert_eq!(parts.len(), 3, "{:?}", out);
                prop_assert_eq!(series.len(), 2, "{:?}", out);
                prop_assert_eq!(split_unescaped(&series[1], '=', false).len(), 2, "{:?}", out);
                prop_assert_eq!(split_unescaped(&parts[1], ',', true).len(), 2, "{:?}", out);
                prop_assert_eq!(parts[2].as_str(), "1");
            }
        }
    }
}
