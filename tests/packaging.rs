//! What the package promises about itself.

use std::process::Command;

/// `major.minor[.patch]` as a comparable triple.
fn version(text: &str) -> (u64, u64, u64) {
    let mut parts = text.split('.').map(|p| p.parse::<u64>().unwrap_or(0));
    (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    )
}

/// The platform this test was built for, as cargo names it (`rustc -vV`'s `host:`).
fn host_triple() -> String {
    let output = Command::new("rustc")
        .arg("-vV")
        .output()
        .expect("rustc -vV runs");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .expect("rustc -vV names its host")
        .to_string()
}

/// `rust-version` in Cargo.toml must be at least every locked dependency's own
/// `rust-version`: a lower one promises a build that cannot happen.
///
/// Only this platform's packages are read: a fresh machine's cargo cache holds what
/// `cargo build` downloaded for it, not the lockfile's Android or Windows crates, and
/// `--offline` must not need them.
#[test]
fn rust_version_covers_every_locked_dependency() {
    let host = host_triple();
    let output = Command::new(env!("CARGO"))
        .args(["metadata", "--locked", "--offline", "--format-version", "1"])
        .args(["--filter-platform", &host])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let packages = metadata["packages"].as_array().unwrap();
    let ours = packages
        .iter()
        .find(|p| p["name"] == "livegames")
        .and_then(|p| p["rust_version"].as_str())
        .expect("Cargo.toml declares rust-version");
    let needed = packages
        .iter()
        .filter_map(|p| {
            let declared = p["rust_version"].as_str()?;
            let name = p["name"].as_str().unwrap_or("?");
            let at = p["version"].as_str().unwrap_or("?");
            Some((version(declared), format!("{name} {at}")))
        })
        .max()
        .unwrap();
    assert!(
        version(ours) >= needed.0,
        "rust-version {ours} is below what {} declares ({:?})",
        needed.1,
        needed.0
    );
}
