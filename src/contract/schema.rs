//! The published JSON Schemas (`fixtures/schemas`), built into the binary, and
//! validation against them.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::Value;

use super::frame::FrameType;

/// `fixtures/schemas/frames.schema.json`: every WebSocket frame type.
pub const FRAMES_SCHEMA: &str = include_str!("../../fixtures/schemas/frames.schema.json");
/// `fixtures/schemas/rest.schema.json`: every REST response body.
pub const REST_SCHEMA: &str = include_str!("../../fixtures/schemas/rest.schema.json");

const FRAMES_URI: &str = "https://livegames.dev/schemas/frames.schema.json";
const REST_URI: &str = "https://livegames.dev/schemas/rest.schema.json";

/// A body the contract describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Body {
    Frame(FrameType),
    GamesList,
    Timeline,
    Health,
    Scores,
    Error,
}

impl Body {
    fn definition_uri(self) -> String {
        match self {
            Body::Frame(t) => format!("{FRAMES_URI}#/$defs/{}", t.as_str()),
            Body::GamesList => format!("{REST_URI}#/$defs/games_list"),
            Body::Timeline => format!("{REST_URI}#/$defs/timeline"),
            Body::Health => format!("{REST_URI}#/$defs/health"),
            Body::Scores => format!("{REST_URI}#/$defs/scores"),
            Body::Error => format!("{REST_URI}#/$defs/error"),
        }
    }

    fn all() -> Vec<Body> {
        let mut all: Vec<Body> = FrameType::ALL.into_iter().map(Body::Frame).collect();
        all.extend([
            Body::GamesList,
            Body::Timeline,
            Body::Health,
            Body::Scores,
            Body::Error,
        ]);
        all
    }
}

/// One place where a value breaks the schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaViolation {
    /// JSON pointer of the offending field (`""` is the whole value).
    pub pointer: String,
    /// What the schema expected, in words.
    pub expected: String,
    /// What came, cut to a readable length.
    pub actual: String,
}

fn validators() -> &'static HashMap<Body, jsonschema::Validator> {
    static VALIDATORS: OnceLock<HashMap<Body, jsonschema::Validator>> = OnceLock::new();
    VALIDATORS.get_or_init(|| {
        // The embedded schemas are checked by this module's tests, so failing here
        // means the binary was built from a broken tree.
        let frames: Value = serde_json::from_str(FRAMES_SCHEMA).expect("frames schema is JSON");
        let rest: Value = serde_json::from_str(REST_SCHEMA).expect("rest schema is JSON");
        let registry = jsonschema::Registry::new()
            .add(FRAMES_URI, frames)
            .and_then(|r| r.add(REST_URI, rest))
            .and_then(|r| r.prepare())
            .expect("schemas register");
        Body::all()
            .into_iter()
            .map(|body| {
                let schema = serde_json::json!({ "$ref": body.definition_uri() });
                let validator = jsonschema::options()
                    .with_registry(&registry)
                    .build(&schema)
                    .expect("schema definition compiles");
                (body, validator)
            })
            .collect()
    })
}

/// Validates `value` against the schema of `body`; an empty list means valid.
pub fn validate(body: Body, value: &Value) -> Vec<SchemaViolation> {
    validators()[&body]
        .iter_errors(value)
        .map(|e| SchemaViolation {
            pointer: e.instance_path().as_str().to_owned(),
            expected: e.to_string(),
            actual: excerpt(e.instance(), 120),
        })
        .collect()
}

/// Validates a server frame, choosing the schema by its `type`.
pub fn validate_frame(value: &Value) -> Vec<SchemaViolation> {
    match value.get("type").and_then(Value::as_str) {
        Some(kind) => match FrameType::parse(kind) {
            Some(t) => validate(Body::Frame(t), value),
            None => vec![SchemaViolation {
                pointer: "/type".into(),
                expected: "one of snapshot, update, status, heartbeat, final, error, pong".into(),
                actual: excerpt(&value["type"], 120),
            }],
        },
        None => vec![SchemaViolation {
            pointer: "/type".into(),
            expected: "a string field \"type\"".into(),
            actual: match value.get("type") {
                Some(v) => excerpt(v, 120),
                None => "missing".into(),
            },
        }],
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_definition_compiles() {
        assert_eq!(validators().len(), Body::all().len());
    }

    #[test]
    fn heartbeat_valid_and_missing_seq_named() {
        let ok = json!({"type":"heartbeat","game_id":"g1","seq":3,"ts":1_763_900_000_000_000i64});
        assert!(validate_frame(&ok).is_empty());
        let bad = json!({"type":"heartbeat","game_id":"g1","ts":1_763_900_000_000_000i64});
        let v = validate_frame(&bad);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].expected.contains("seq"), "{v:?}");
    }

    #[test]
    fn millisecond_ts_is_rejected() {
        let ms = json!({"type":"heartbeat","game_id":"g1","seq":3,"ts":1_763_900_000_000i64});
        let v = validate_frame(&ms);
        assert_eq!(v[0].pointer, "/ts");
    }

    #[test]
    fn missing_type_is_named() {
        let v = validate_frame(&json!({"seq":1}));
        assert_eq!(
            (v[0].pointer.as_str(), v[0].actual.as_str()),
            ("/type", "missing")
        );
    }

    #[test]
    fn cut_respects_char_boundaries() {
        assert_eq!(cut("héllo", 2), "h…");
        assert_eq!(cut("abc", 5), "abc");
    }
}
