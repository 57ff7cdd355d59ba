//! Messages a client sends, with placeholders filled per message: `--send-template`
//! and `--subscribe` share one set ([`PLACEHOLDERS`]), and a template naming any
//! other is refused when it is read, not sent literally.
//!
//! A placeholder is `{name}` with a lowercase name; JSON's own braces (`{"a":1}`,
//! `{}`) are never one.

use std::fmt::Write;

/// The placeholders a template may use, and what each becomes.
pub const PLACEHOLDERS: &[(&str, &str)] = &[
    ("id", "the message's number (1, 2, ...), per connection"),
    (
        "game_id",
        "the game's id, JSON-escaped (for use inside a JSON string)",
    ),
    ("since", "the last seq received, or null"),
    ("user", "the virtual user's number (0, 1, ...)"),
    ("shard", "this worker's shard index (0 when not sharded)"),
    ("now_ms", "the time of sending, Unix milliseconds"),
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Id,
    GameId,
    Since,
    User,
    Shard,
    NowMs,
}

/// A message with its placeholders found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
    /// The template as written.
    source: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("unknown placeholder {{{name}}}: the placeholders are {}", known())]
    Unknown { name: String },
    #[error("not JSON once its placeholders are filled in ({reason}): {source_text}")]
    NotJson { reason: String, source_text: String },
}

fn known() -> String {
    PLACEHOLDERS
        .iter()
        .map(|(name, _)| format!("{{{name}}}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What fills a template's placeholders for one message.
#[derive(Debug, Clone, Copy, Default)]
pub struct Fill<'a> {
    pub id: u64,
    /// The game's id as is; it is JSON-escaped when filled.
    pub game_id: &'a str,
    pub since: Option<u64>,
    pub user: usize,
    pub shard: u32,
    pub now_ms: i64,
}

impl Template {
    /// Our contract's ping, `{"type":"ping","id":{id}}`.
    pub fn contract_ping() -> Template {
        Template {
            parts: vec![
                Part::Text(r#"{"type":"ping","id":"#.into()),
                Part::Id,
                Part::Text("}".into()),
            ],
            source: r#"{"type":"ping","id":{id}}"#.into(),
        }
    }

    /// Reads a template: its placeholders must be known, and it must be JSON once
    /// they are filled in.
    pub fn parse(source: &str) -> Result<Template, TemplateError> {
        let source = source.trim();
        let parts = split(source)?;
        let template = Template {
            parts,
            source: source.to_owned(),
        };
        let sample = template.render(&Fill {
            id: 1,
            game_id: "g",
            ..Fill::default()
        });
        if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(&sample) {
            return Err(TemplateError::NotJson {
                reason: e.to_string(),
                source_text: source.to_owned(),
            });
        }
        Ok(template)
    }

    /// Reads a template sent as it is, not JSON (a STOMP frame): its placeholders must
    /// be known; `{game_id}` is filled JSON-escaped, as everywhere.
    pub fn parse_text(source: &str) -> Result<Template, TemplateError> {
        Ok(Template {
            parts: split(source)?,
            source: source.to_owned(),
        })
    }

    /// The template as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// One message.
    pub fn render(&self, fill: &Fill) -> String {
        let mut out = String::with_capacity(self.source.len() + 16);
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Id => {
                    let _ = write!(out, "{}", fill.id);
                }
                Part::GameId => push_json_inner(&mut out, fill.game_id),
                Part::Since => match fill.since {
                    Some(seq) => {
                        let _ = write!(out, "{seq}");
                    }
                    None => out.push_str("null"),
                },
                Part::User => {
                    let _ = write!(out, "{}", fill.user);
                }
                Part::Shard => {
                    let _ = write!(out, "{}", fill.shard);
                }
                Part::NowMs => {
                    let _ = write!(out, "{}", fill.now_ms);
                }
            }
        }
        out
    }
}

/// `text` as the inside of a JSON string: quotes, backslashes and controls escaped.
fn push_json_inner(out: &mut String, text: &str) {
    let quoted = serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into());
    out.push_str(&quoted[1..quoted.len() - 1]);
}

fn split(source: &str) -> Result<Vec<Part>, TemplateError> {
    let mut parts = Vec::new();
    let mut text = String::new();
    let mut rest = source;
    while let Some(open) = rest.find('{') {
        let (before, from_brace) = rest.split_at(open);
        text.push_str(before);
        let name_len = from_brace[1..]
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(from_brace.len() - 1);
        let name = &from_brace[1..1 + name_len];
        let closes = from_brace[1 + name_len..].starts_with('}');
        let starts_lower = name.starts_with(|c: char| c.is_ascii_lowercase());
        if !(closes && starts_lower) {
            // JSON's own brace.
            text.push('{');
            rest = &from_brace[1..];
            continue;
        }
        let part = match name {
            "id" => Part::Id,
            "game_id" => Part::GameId,
            "since" => Part::Since,
            "user" => Part::User,
            "shard" => Part::Shard,
            "now_ms" => Part::NowMs,
            other => {
                return Err(TemplateError::Unknown {
                    name: other.to_owned(),
                });
            }
        };
        if !text.is_empty() {
            parts.push(Part::Text(std::mem::take(&mut text)));
        }
        parts.push(part);
        rest = &from_brace[name_len + 2..];
    }
    text.push_str(rest);
    if !text.is_empty() {
        parts.push(Part::Text(text));
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_placeholder_is_filled_and_json_braces_are_left_alone() {
        let t = Template::parse(
            r#"{"op":"sub","game":"{game_id}","after":{since},"n":{id},"u":{user},"s":{shard},"t":{now_ms},"x":{}}"#,
        )
        .unwrap();
        let message = t.render(&Fill {
            id: 7,
            game_id: "a\"b",
            since: Some(41),
            user: 3,
            shard: 1,
            now_ms: 1_700_000_000_123,
        });
        assert_eq!(
            message,
            r#"{"op":"sub","game":"a\"b","after":41,"n":7,"u":3,"s":1,"t":1700000000123,"x":{}}"#
        );
        let first = t.render(&Fill::default());
        assert!(first.contains(r#""after":null"#), "{first}");
    }

    #[test]
    fn the_contract_ping_is_what_parsing_it_gives() {
        let parsed = Template::parse(r#"{"type":"ping","id":{id}}"#).unwrap();
        assert_eq!(Template::contract_ping(), parsed);
    }

    #[test]
    fn an_unknown_placeholder_is_refused_naming_it() {
        let e = Template::parse(r#"{"type":"ping","id":{id},"who":"{username}"}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown placeholder {username}: the placeholders are {id}, {game_id}, {since}, {user}, {shard}, {now_ms}"
        );
    }

    #[test]
    fn a_template_that_is_not_json_is_refused() {
        let e = Template::parse(r#"{"type":"ping","id":{id}"#).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("not JSON once its placeholders are filled in"),
            "{e}"
        );
        assert!(Template::parse("42").is_ok(), "any JSON value");
    }
}
