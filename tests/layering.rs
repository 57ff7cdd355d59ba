//! Crude but cheap: the module boundaries of lib.rs, checked by reading the source.
//!
//! The allowed imports are the "may import" column of the table in `src/lib.rs`, so
//! the documented layering and the enforced one cannot drift apart.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    if dir.is_file() {
        return vec![dir.to_path_buf()];
    }
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// A module's files: `src/NAME/` or `src/NAME.rs`.
fn module_files(name: &str) -> Vec<PathBuf> {
    let dir = src().join(name);
    if dir.is_dir() {
        rust_files(&dir)
    } else {
        vec![src().join(format!("{name}.rs"))]
    }
}

/// The code of a line, without its comment.
fn code(line: &str) -> &str {
    line.split("//").next().unwrap_or("")
}

/// The top-level modules a piece of code names through `crate::` (including
/// `crate::{a, b::c}` groups).
fn crate_paths(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        // `$crate::` in a macro is the crate too; anything else ending in "crate" is not.
        let before = &rest[..at];
        let standalone = before
            .chars()
            .last()
            .is_none_or(|c| !c.is_alphanumeric() && c != '_' && c != ':');
        rest = &rest[at + "crate::".len()..];
        if !standalone && !before.ends_with('$') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let inside = group.split('}').next().unwrap_or("");
            found.extend(
                inside
                    .split(',')
                    .map(|p| p.trim().split("::").next().unwrap_or("").to_owned())
                    .filter(|p| !p.is_empty()),
            );
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            found.push(name);
        }
    }
    found
}

/// The layering table of `src/lib.rs`: module -> the modules it may import.
fn table() -> BTreeMap<String, BTreeSet<String>> {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    let mut rows = BTreeMap::new();
    for line in lib.lines() {
        let Some(row) = line.strip_prefix("//! | [`") else {
            continue;
        };
        let name = row.split('`').next().unwrap().to_owned();
        let may = line.rsplit('|').nth(1).unwrap().trim();
        let allowed = if may == "nothing" {
            BTreeSet::new()
        } else {
            may.split(',').map(|m| m.trim().to_owned()).collect()
        };
        rows.insert(name, allowed);
    }
    rows
}

fn declared_modules() -> BTreeSet<String> {
    std::fs::read_to_string(src().join("lib.rs"))
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("pub mod "))
        .map(|m| m.trim_end_matches(';').to_owned())
        .collect()
}

#[test]
fn every_module_is_in_the_layering_table() {
    let declared = declared_modules();
    let tabled: BTreeSet<String> = table().into_keys().collect();
    assert_eq!(
        declared, tabled,
        "lib.rs declares these modules; its layering table must list exactly them"
    );
}

#[test]
fn no_module_imports_what_the_table_does_not_allow() {
    let table = table();
    let known: BTreeSet<&String> = table.keys().collect();
    let mut bad = Vec::new();
    for (module, allowed) in &table {
        for file in module_files(module) {
            let text = std::fs::read_to_string(&file).unwrap();
            for (n, line) in text.lines().enumerate() {
                for used in crate_paths(code(line)) {
                    let own = &used == module;
                    if !own && known.contains(&used) && !allowed.contains(&used) {
                        bad.push(format!(
                            "{}:{}: {module} imports {used}: {}",
                            file.display(),
                            n + 1,
                            line.trim()
                        ));
                    }
                }
            }
        }
    }
    assert!(
        bad.is_empty(),
        "imports the layering table of src/lib.rs does not allow:\n{}",
        bad.join("\n")
    );
}

/// The table is the truth only if every edge it allows is one the code takes: an
/// allowance nobody uses would let the next import through unnoticed.
#[test]
fn every_permitted_import_is_used() {
    let mut unused = Vec::new();
    for (module, allowed) in table() {
        let used: BTreeSet<String> = module_files(&module)
            .iter()
            .flat_map(|file| {
                let text = std::fs::read_to_string(file).unwrap();
                text.lines()
                    .flat_map(|line| crate_paths(code(line)))
                    .collect::<Vec<_>>()
            })
            .collect();
        unused.extend(
            allowed
                .difference(&used)
                .map(|m| format!("{module} may import {m}, but no code of it does")),
        );
    }
    assert!(
        unused.is_empty(),
        "the layering table of src/lib.rs allows imports nobody uses; remove them:\n{}",
        unused.join("\n")
    );
}

#[test]
fn the_contract_is_pure() {
    let mut bad = Vec::new();
    for file in module_files("contract") {
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = code(line);
            // It may convert a time, never read one: `now` is a parameter.
            for io in [
                "tokio::",
                "axum::",
                "reqwest::",
                "std::fs",
                "std::net",
                "::now()",
                "clock::unix_",
            ] {
                if code.contains(io) {
                    bad.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        bad.is_empty(),
        "the contract must not do I/O:\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_checker_sees_grouped_and_macro_imports() {
    assert_eq!(crate_paths("use crate::serve::ServeConfig;"), ["serve"]);
    assert_eq!(
        crate_paths("use crate::{serve, load::run};"),
        ["serve", "load"]
    );
    assert_eq!(crate_paths("$crate::console::note(x)"), ["console"]);
    assert!(crate_paths("use tokio_tungstenite::crate::x;").is_empty());
}
