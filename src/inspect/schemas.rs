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

/// A schema name that `contract schema` does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no schema named {name:?}; known: frames, rest, {}", known.join(", "))]
pub struct UnknownSchema {
    pub name: String,
    pub known: Vec<String>,
}

/// One of the schema documents built into the binary, parsed.
fn embedded(text: &str) -> Value {
    // The embedded documents are compiled by the contract's own tests, so this can
    // only fail in a binary built from a broken tree.
    serde_json::from_str(text).expect("the embedded schemas are JSON")
}

/// The published schema of `kind` (a frame type, a REST body, or everything).
pub fn schema_text(kind: Option<&str>) -> Result<String, UnknownSchema> {
    let frames = embedded(schema::FRAMES_SCHEMA);
    let rest = embedded(schema::REST_SCHEMA);
    let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap_or_default();
    match kind {
        None | Some("frames") => Ok(pretty(&frames)),
        Some("rest") => Ok(pretty(&rest)),
        Some(k) => frames["$defs"]
            .get(k)
            .or_else(|| rest["$defs"].get(k))
            .map(pretty)
            .ok_or_else(|| UnknownSchema {
                name: k.to_owned(),
                known: [&frames, &rest]
                    .iter()
                    .filter_map(|doc| doc["$defs"].as_object())
                    .flat_map(|defs| defs.keys().cloned())
                    .collect(),
            }),
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
}
