//! The schemas a command checks against (built in, or a user's copy from
//! `--schema-dir`), and `livegames contract schema`.
//!
//! Reading a schema folder is I/O, so it lives here rather than in the pure
//! `contract`; [`Schemas::from_dir`] is an inherent method all the same, so `smoke`
//! and `validate` load schemas one way.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::contract::schema::{self, FRAMES_FILE, REST_FILE, SchemaError, Schemas};

/// Why a schema folder cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SchemaDirError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{dir}: {source}")]
    Invalid { dir: PathBuf, source: SchemaError },
}

impl Schemas {
    /// Compiles `frames.schema.json` and `rest.schema.json` from `dir`.
    pub fn from_dir(dir: &Path, strict: bool) -> Result<Schemas, SchemaDirError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path).map_err(|source| SchemaDirError::Read { path, source })
        };
        Schemas::from_texts(&read(FRAMES_FILE)?, &read(REST_FILE)?, strict).map_err(|source| {
            SchemaDirError::Invalid {
                dir: dir.to_path_buf(),
                source,
            }
        })
    }
}

/// The schemas to check against: the built-in ones, or a user's copy.
#[derive(Debug)]
pub enum LoadedSchemas {
    Builtin(&'static Schemas),
    Dir(Box<Schemas>),
}

impl std::ops::Deref for LoadedSchemas {
    type Target = Schemas;
    fn deref(&self) -> &Schemas {
        match self {
            LoadedSchemas::Builtin(s) => s,
            LoadedSchemas::Dir(s) => s,
        }
    }
}

/// The built-in schemas, or a user's copy from `dir`.
pub fn load(dir: Option<&Path>, strict: bool) -> Result<LoadedSchemas, SchemaDirError> {
    Ok(match dir {
        None => LoadedSchemas::Builtin(Schemas::builtin(strict)),
        Some(dir) => LoadedSchemas::Dir(Box::new(Schemas::from_dir(dir, strict)?)),
    })
}

/// A schema name that `contract schema` cannot print.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnknownSchema {
    #[error("no schema named {name:?}; known: frames, rest, {}", known.join(", "))]
    Unknown { name: String, known: Vec<String> },
    #[error(
        "{name:?} names two schemas: frames/{name} ({in_frames}) and rest/{name} ({in_rest}); say which"
    )]
    Ambiguous {
        name: String,
        in_frames: String,
        in_rest: String,
    },
}

/// One of the schema documents built into the binary, parsed.
fn embedded(text: &str) -> Value {
    // The embedded documents are compiled by the contract's own tests, so this can
    // only fail in a binary built from a broken tree.
    serde_json::from_str(text).expect("the embedded schemas are JSON")
}

/// The published schema of `kind`: `frames`, `rest`, or one definition by name
/// (`update`, `games_list`; `frames/NAME` or `rest/NAME` where both documents have
/// one), printed as a document of its own that a validator can use as it is.
pub fn schema_text(kind: Option<&str>) -> Result<String, UnknownSchema> {
    let documents = [
        ("frames", embedded(schema::FRAMES_SCHEMA)),
        ("rest", embedded(schema::REST_SCHEMA)),
    ];
    let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap_or_default();
    let name = match kind {
        None | Some("frames") => return Ok(pretty(&documents[0].1)),
        Some("rest") => return Ok(pretty(&documents[1].1)),
        Some(name) => name,
    };
    let (wanted_doc, def) = match name.split_once('/') {
        Some((doc, def)) => (Some(doc), def),
        None => (None, name),
    };
    let found: Vec<&(&str, Value)> = documents
        .iter()
        .filter(|(doc, value)| {
            wanted_doc.is_none_or(|w| w == *doc) && value["$defs"].get(def).is_some()
        })
        .collect();
    match found.as_slice() {
        [(_, document)] => Ok(pretty(&standalone(document, def))),
        [(_, frames), (_, rest)] => Err(UnknownSchema::Ambiguous {
            name: def.to_owned(),
            in_frames: about(&frames["$defs"][def]),
            in_rest: about(&rest["$defs"][def]),
        }),
        _ => Err(UnknownSchema::Unknown {
            name: name.to_owned(),
            known: known_names(&documents),
        }),
    }
}

/// Every name `schema_text` takes, a name in both documents given both ways.
fn known_names(documents: &[(&str, Value)]) -> Vec<String> {
    let defs = |doc: &Value| -> Vec<String> {
        doc["$defs"]
            .as_object()
            .map(|d| d.keys().cloned().collect())
            .unwrap_or_default()
    };
    let (frames, rest) = (defs(&documents[0].1), defs(&documents[1].1));
    let mut known: Vec<String> = Vec::new();
    for (doc, names, other) in [("frames", &frames, &rest), ("rest", &rest, &frames)] {
        for name in names {
            known.push(if other.contains(name) {
                format!("{doc}/{name}")
            } else {
                name.clone()
            });
        }
    }
    known
}

/// A definition's description, or its first words of type, for the ambiguity message.
fn about(def: &Value) -> String {
    def["description"]
        .as_str()
        .map(|d| crate::text::cut(d, 60))
        .unwrap_or_else(|| crate::text::excerpt(def, 60))
}

/// `name` from `document` as a schema of its own: the definition and every
/// definition it refers to, directly or not, under `$defs`, so each `$ref` resolves.
fn standalone(document: &Value, name: &str) -> Value {
    let defs = &document["$defs"];
    let mut needed = std::collections::BTreeSet::new();
    let mut queue = vec![name.to_owned()];
    while let Some(next) = queue.pop() {
        if needed.insert(next.clone()) {
            collect_refs(&defs[next.as_str()], &mut queue);
        }
    }
    let kept: serde_json::Map<String, Value> = needed
        .into_iter()
        .map(|n| {
            let def = defs[n.as_str()].clone();
            (n, def)
        })
        .collect();
    serde_json::json!({
        "$schema": document["$schema"],
        "title": name,
        "$ref": format!("#/$defs/{name}"),
        "$defs": kept,
    })
}

/// The `#/$defs/NAME` names referred to anywhere in `value`.
fn collect_refs(value: &Value, into: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(name) = map
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("#/$defs/"))
            {
                into.push(name.to_owned());
            }
            map.values().for_each(|v| collect_refs(v, into));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, into)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_load_from_a_folder_or_say_why_not() {
        let dir = std::env::temp_dir().join(format!("lg-schemas-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let e = load(Some(&dir), false).unwrap_err().to_string();
        assert!(e.contains("frames.schema.json"), "{e}");
        std::fs::write(dir.join("frames.schema.json"), schema::FRAMES_SCHEMA).unwrap();
        std::fs::write(dir.join("rest.schema.json"), schema::REST_SCHEMA).unwrap();
        assert!(matches!(load(Some(&dir), true), Ok(LoadedSchemas::Dir(_))));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn schemas_are_printed_by_name() {
        assert!(schema_text(Some("update")).unwrap().contains("\"data\""));
        assert!(schema_text(Some("games_list")).unwrap().contains("games"));
        assert!(schema_text(None).unwrap().contains("$defs"));
        let e = schema_text(Some("nope")).unwrap_err().to_string();
        assert!(e.contains("known") && e.contains("games_list"), "{e}");
    }

    /// Every printed definition is a schema of its own: every `$ref` in it resolves,
    /// and it validates what it describes.
    #[test]
    fn a_printed_definition_stands_alone() {
        let update: Value = serde_json::from_str(&schema_text(Some("update")).unwrap()).unwrap();
        let mut refs = Vec::new();
        collect_refs(&update, &mut refs);
        assert!(refs.contains(&"envelope".to_owned()), "{refs:?}");
        for r in refs {
            assert!(update["$defs"].get(&r).is_some(), "dangling $ref {r}");
        }
        let validator = jsonschema::validator_for(&update).expect("compiles on its own");
        let frame = serde_json::json!({"type": "update", "game_id": "g", "seq": 1, "ts": 1_700_000_000_000_000i64, "data": {}});
        assert!(!validator.is_valid(&frame), "an empty point is not a point");
        let heartbeat = serde_json::json!({"type": "heartbeat", "game_id": "g", "seq": 1, "ts": 1});
        assert!(!validator.is_valid(&heartbeat));
    }

    #[test]
    fn names_in_both_documents_are_asked_for_by_document() {
        let e = schema_text(Some("health")).unwrap_err();
        assert!(matches!(e, UnknownSchema::Ambiguous { .. }), "{e}");
        assert!(e.to_string().contains("rest/health"), "{e}");
        let body = schema_text(Some("rest/health")).unwrap();
        assert!(body.contains("uptime_s"), "the /health body: {body}");
        let source = schema_text(Some("frames/health")).unwrap();
        assert!(source.contains("stale"), "{source}");
        let UnknownSchema::Unknown { known, .. } = schema_text(Some("nope")).unwrap_err() else {
            panic!("unknown")
        };
        let mut unique = known.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), known.len(), "no name twice: {known:?}");
        assert!(known.contains(&"rest/health".to_owned()) && known.contains(&"update".to_owned()));
    }
}
