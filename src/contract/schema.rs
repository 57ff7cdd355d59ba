//! The published JSON Schemas (`fixtures/schemas`), built into the binary, and
//! validation against them.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use serde_json::Value;

use super::frame::FrameType;
use crate::text::excerpt;

/// `fixtures/schemas/frames.schema.json`: every WebSocket frame type.
pub const FRAMES_SCHEMA: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/schemas/frames.schema.json"
));
/// `fixtures/schemas/rest.schema.json`: every REST response body.
pub const REST_SCHEMA: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/schemas/rest.schema.json"
));

/// The file names of the two documents, in a schema folder (`--schema-dir`).
pub const FRAMES_FILE: &str = "frames.schema.json";
pub const REST_FILE: &str = "rest.schema.json";

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

/// Why a set of schema documents cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    #[error("{file} is not JSON: {reason}")]
    NotJson { file: &'static str, reason: String },
    #[error("the schemas do not register: {0}")]
    Register(String),
    #[error("schema {definition}: {reason}")]
    Compile { definition: String, reason: String },
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

/// A compiled set of the contract's schemas: the built-in ones or a user's copy, lenient
/// (unknown fields allowed: forward compatibility) or strict (unknown fields are
/// violations).
pub struct Schemas {
    validators: HashMap<Body, jsonschema::Validator>,
    version: String,
    strict: bool,
}

impl std::fmt::Debug for Schemas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schemas")
            .field("version", &self.version)
            .field("strict", &self.strict)
            .finish()
    }
}

impl Schemas {
    /// Compiles the frames and REST schema documents (the text of
    /// `frames.schema.json` and `rest.schema.json`).
    pub fn from_texts(frames: &str, rest: &str, strict: bool) -> Result<Self, SchemaError> {
        let not_json = |file: &'static str| {
            move |e: serde_json::Error| SchemaError::NotJson {
                file,
                reason: e.to_string(),
            }
        };
        let mut frames: Value = serde_json::from_str(frames).map_err(not_json(FRAMES_FILE))?;
        let mut rest: Value = serde_json::from_str(rest).map_err(not_json(REST_FILE))?;
        let version = frames
            .get("x-contract-version")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_owned();
        // Registered under our URIs whatever their own $id says, so the REST
        // document's relative references to the frames document resolve.
        frames["$id"] = Value::from(FRAMES_URI);
        rest["$id"] = Value::from(REST_URI);
        if strict {
            close_objects(&mut frames, &mut rest);
        }
        let registry = jsonschema::Registry::new()
            .add(FRAMES_URI, frames)
            .and_then(|r| r.add(REST_URI, rest))
            .and_then(|r| r.prepare())
            .map_err(|e| SchemaError::Register(e.to_string()))?;
        let mut validators = HashMap::new();
        for body in Body::all() {
            let schema = serde_json::json!({ "$ref": body.definition_uri() });
            let validator = jsonschema::options()
                .with_registry(&registry)
                .build(&schema)
                .map_err(|e| SchemaError::Compile {
                    definition: body.definition_uri(),
                    reason: e.to_string(),
                })?;
            validators.insert(body, validator);
        }
        Ok(Self {
            validators,
            version,
            strict,
        })
    }

    /// The schemas built into the binary (`fixtures/schemas`).
    pub fn builtin(strict: bool) -> &'static Schemas {
        static LENIENT: OnceLock<Schemas> = OnceLock::new();
        static STRICT: OnceLock<Schemas> = OnceLock::new();
        let cell = if strict { &STRICT } else { &LENIENT };
        // The embedded schemas are compiled by this module's tests, so failing here
        // means the binary was built from a broken tree.
        cell.get_or_init(|| {
            Schemas::from_texts(FRAMES_SCHEMA, REST_SCHEMA, strict)
                .expect("the embedded schemas compile")
        })
    }

    /// The contract version the schemas declare (`x-contract-version`).
    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn is_strict(&self) -> bool {
        self.strict
    }

    /// Validates `value` against the schema of `body`; an empty list means valid.
    pub fn validate(&self, body: Body, value: &Value) -> Vec<SchemaViolation> {
        self.validators[&body]
            .iter_errors(value)
            .map(|e| {
                let (expected, actual) = expectation(&e);
                SchemaViolation {
                    pointer: e.instance_path().as_str().to_owned(),
                    expected,
                    actual,
                }
            })
            .collect()
    }

    /// Validates a server frame, choosing the schema by its `type`.
    pub fn validate_frame(&self, value: &Value) -> Vec<SchemaViolation> {
        match value.get("type").and_then(Value::as_str) {
            Some(kind) => match FrameType::parse(kind) {
                Some(t) => self.validate(Body::Frame(t), value),
                None => vec![SchemaViolation {
                    pointer: "/type".into(),
                    expected: "one of snapshot, update, status, heartbeat, final, error, pong"
                        .into(),
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
}

/// What the schema wanted and what came, in words, for the common keywords.
fn expectation(e: &jsonschema::ValidationError<'_>) -> (String, String) {
    use jsonschema::error::{TypeKind, ValidationErrorKind as K};
    let actual = || excerpt(e.instance(), 120);
    match e.kind() {
        K::Minimum { limit } => (format!("at least {limit}"), actual()),
        K::Maximum { limit } => (format!("at most {limit}"), actual()),
        K::ExclusiveMinimum { limit } => (format!("more than {limit}"), actual()),
        K::ExclusiveMaximum { limit } => (format!("less than {limit}"), actual()),
        K::MinLength { limit } => (format!("at least {limit} characters"), actual()),
        K::Required { property } => (format!("a field {property}"), "missing".into()),
        K::Type {
            kind: TypeKind::Single(t),
        } => (format!("a value of type {t}"), actual()),
        K::Enum { options } => (format!("one of {options}"), actual()),
        K::Constant { expected_value } => (expected_value.to_string(), actual()),
        K::Pattern { pattern } => (format!("a string matching {pattern}"), actual()),
        K::UnevaluatedProperties { unexpected } | K::AdditionalProperties { unexpected } => (
            "only the fields the contract defines (--strict)".into(),
            format!("unknown field(s) {}", unexpected.join(", ")),
        ),
        K::OneOfNotValid { .. } | K::AnyOf { .. } => {
            ("one of the forms the schema allows".into(), actual())
        }
        _ => (e.to_string(), actual()),
    }
}

/// Validates `value` against the built-in (lenient) schema of `body`.
pub fn validate(body: Body, value: &Value) -> Vec<SchemaViolation> {
    Schemas::builtin(false).validate(body, value)
}

/// Validates a server frame against the built-in (lenient) schemas.
pub fn validate_frame(value: &Value) -> Vec<SchemaViolation> {
    Schemas::builtin(false).validate_frame(value)
}

/// Strict mode: every object schema that lists `properties` refuses the others.
/// Definitions that others extend through `allOf` (the envelope, game_info) stay
/// open themselves (JSON Schema evaluates them alone) and are closed where they are
/// used directly instead.
fn close_objects(frames: &mut Value, rest: &mut Value) {
    let mut bases = HashSet::new();
    collect_all_of_bases(frames, &mut bases);
    collect_all_of_bases(rest, &mut bases);
    for doc in [frames, rest] {
        if let Some(defs) = doc.get_mut("$defs").and_then(Value::as_object_mut) {
            for (name, def) in defs.iter_mut() {
                close_schema(def, !bases.contains(name), &bases);
            }
        }
    }
}

fn def_name(reference: &str) -> Option<&str> {
    reference.rsplit_once("#/$defs/").map(|(_, name)| name)
}

fn collect_all_of_bases(node: &Value, bases: &mut HashSet<String>) {
    match node {
        Value::Object(map) => {
            if let Some(Value::Array(parts)) = map.get("allOf") {
                for part in parts {
                    if let Some(name) = part.get("$ref").and_then(Value::as_str).and_then(def_name)
                    {
                        bases.insert(name.to_owned());
                    }
                }
            }
            map.values().for_each(|v| collect_all_of_bases(v, bases));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_all_of_bases(v, bases)),
        _ => {}
    }
}

fn close_schema(node: &mut Value, close_here: bool, bases: &HashSet<String>) {
    let Value::Object(map) = node else { return };
    let refers_to_base = map
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(def_name)
        .is_some_and(|name| bases.contains(name));
    if (close_here && map.contains_key("properties")) || refers_to_base {
        map.insert("unevaluatedProperties".into(), Value::Bool(false));
    }
    for (key, child) in map.iter_mut() {
        match (key.as_str(), child) {
            ("properties", Value::Object(props)) => {
                props
                    .values_mut()
                    .for_each(|p| close_schema(p, true, bases));
            }
            ("items" | "additionalProperties", c) => close_schema(c, true, bases),
            ("oneOf" | "anyOf", Value::Array(options)) => {
                options
                    .iter_mut()
                    .for_each(|o| close_schema(o, true, bases));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_definition_compiles_lenient_and_strict() {
        for strict in [false, true] {
            let schemas = Schemas::builtin(strict);
            assert_eq!(schemas.validators.len(), Body::all().len());
            assert_eq!(schemas.version(), crate::contract::FRAMES_SCHEMA_VERSION);
        }
    }

    fn point() -> Value {
        json!({"observed_at": 1, "cause": "play", "state": "live", "period": 1, "clock": "1:00",
               "score": {"home": 1, "away": 0}, "home_win_prob": 0.5, "last_play": null,
               "market": null, "sources": {"espn": "ok", "kalshi": "down"}})
    }

    fn snapshot() -> Value {
        json!({"type": "snapshot", "game_id": "g1", "seq": 3, "ts": 1_763_900_000_000_000i64,
               "game": {"id": "g1", "league": "nba", "scheduled_at": "2026-11-23T00:00:00Z",
                        "home": {"abbreviation": "BOS", "name": "Celtics"},
                        "away": {"abbreviation": "NYK", "name": "Knicks"}},
               "data": point()})
    }

    #[test]
    fn unknown_fields_pass_unless_strict_and_strict_names_where() {
        let lenient = Schemas::builtin(false);
        let strict = Schemas::builtin(true);
        assert!(
            strict.validate_frame(&snapshot()).is_empty(),
            "a valid frame stays valid"
        );
        for (pointer, extended) in [
            ("", {
                let mut v = snapshot();
                v["extra"] = json!(1);
                v
            }),
            ("/game", {
                let mut v = snapshot();
                v["game"]["venue"] = json!("TD Garden");
                v
            }),
            ("/data/score", {
                let mut v = snapshot();
                v["data"]["score"]["ot"] = json!(0);
                v
            }),
        ] {
            assert!(lenient.validate_frame(&extended).is_empty(), "{extended}");
            let found = strict.validate_frame(&extended);
            assert!(
                found.iter().any(|v| v.pointer == pointer),
                "{pointer}: {found:?}"
            );
        }
        let heartbeat =
            json!({"type":"heartbeat","game_id":"g","seq":1,"ts":1_763_900_000_000_000i64,"x":1});
        assert!(!strict.validate_frame(&heartbeat).is_empty());
    }

    #[test]
    fn a_users_schema_copy_is_compiled_or_refused_with_a_reason() {
        let own = Schemas::from_texts(
            &FRAMES_SCHEMA.replace("livegames.dev", "example.com"),
            REST_SCHEMA,
            false,
        )
        .unwrap();
        assert!(own.validate_frame(&snapshot()).is_empty());
        let e = Schemas::from_texts("{", REST_SCHEMA, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("frames.schema.json is not JSON"), "{e}");
        let without_update = FRAMES_SCHEMA.replace("\"update\": {", "\"renamed\": {");
        let e = Schemas::from_texts(&without_update, REST_SCHEMA, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("update"), "{e}");
    }

    #[test]
    fn heartbeat_valid_and_missing_seq_named() {
        let ok = json!({"type":"heartbeat","game_id":"g1","seq":3,"ts":1_763_900_000_000_000i64});
        assert!(validate_frame(&ok).is_empty());
        let bad = json!({"type":"heartbeat","game_id":"g1","ts":1_763_900_000_000_000i64});
        let v = validate_frame(&bad);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(
            (v[0].expected.as_str(), v[0].actual.as_str()),
            ("a field \"seq\"", "missing")
        );
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
    fn a_frame_without_a_known_type_says_what_it_had() {
        let schemas = Schemas::builtin(false);
        let missing = schemas.validate_frame(&json!({"seq": 1}));
        assert_eq!(
            (missing[0].pointer.as_str(), missing[0].actual.as_str()),
            ("/type", "missing")
        );
        let number = schemas.validate_frame(&json!({"type": 7}));
        assert_eq!(number[0].actual, "7");
        let unknown = schemas.validate_frame(&json!({"type": "bogus"}));
        assert!(
            unknown[0].expected.starts_with("one of snapshot"),
            "{unknown:?}"
        );
        assert_eq!(unknown[0].actual, "\"bogus\"");
    }

    #[test]
    fn each_kind_of_mistake_is_said_in_words() {
        let schemas = Schemas::builtin(false);
        let said = |frame: Value| {
            let found = schemas.validate_frame(&frame);
            assert!(!found.is_empty(), "{frame} is invalid");
            (found[0].expected.clone(), found[0].actual.clone())
        };
        let mut negative_seq = snapshot();
        negative_seq["seq"] = json!(-1);
        assert_eq!(said(negative_seq), ("at least 0".into(), "-1".into()));
        let mut bad_state = snapshot();
        bad_state["data"]["state"] = json!("halftime");
        let (expected, actual) = said(bad_state);
        assert!(expected.starts_with("one of"), "{expected}");
        assert_eq!(actual, "\"halftime\"");
        let mut no_game = snapshot();
        no_game.as_object_mut().unwrap().remove("game_id");
        assert_eq!(
            said(no_game),
            ("a field \"game_id\"".into(), "missing".into())
        );
        let mut text_seq = snapshot();
        text_seq["seq"] = json!("3");
        let (expected, _) = said(text_seq);
        assert!(expected.contains("integer"), "{expected}");
    }
}
