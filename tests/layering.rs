//! Crude but cheap: the module boundaries of lib.rs, checked by reading the source.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path) -> Vec<PathBuf> {
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

fn offenders(dir: &str, forbidden: &[&str], allowed: &[&str]) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(dir);
    let mut found = Vec::new();
    for file in rust_files(&root) {
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for f in forbidden {
                if code.contains(f) && !allowed.iter().any(|a| code.contains(a)) {
                    found.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
                }
            }
        }
    }
    found
}

#[test]
fn the_contract_is_pure() {
    let bad = offenders(
        "contract",
        &[
            "tokio::",
            "axum::",
            "reqwest::",
            "std::fs",
            "std::net",
            "crate::",
        ],
        &["crate::contract"],
    );
    assert!(
        bad.is_empty(),
        "the contract must not do I/O or import other parts:\n{}",
        bad.join("\n")
    );
}

#[test]
fn feeds_do_not_reach_into_the_server() {
    let bad = offenders("feeds", &["crate::serve", "crate::cli::"], &[]);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn load_tests_any_server_the_same_way_and_never_reaches_into_ours() {
    let bad = offenders(
        "load",
        &["crate::serve", "crate::feeds", "crate::cli::"],
        &[],
    );
    assert!(
        bad.is_empty(),
        "load must test our server exactly as it tests anyone's:\n{}",
        bad.join("\n")
    );
    let bad = offenders(
        "client",
        &[
            "crate::serve",
            "crate::feeds",
            "crate::load",
            "crate::cli::",
        ],
        &[],
    );
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
