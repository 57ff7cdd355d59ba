//! Real programs some tests run (Debian's packages, which `.ci/run` installs). On a
//! machine without one, its tests are skipped, saying so once; with
//! `LIVEGAMES_REQUIRE_TOOLS=1` (as in CI) a missing tool fails them instead.

use std::path::PathBuf;
use std::sync::Mutex;

/// Tools already reported missing (so each is said once).
static SAID: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());

/// The path of `name`, or None (after saying how to install it) when it is missing.
#[track_caller]
pub fn tool(name: &'static str, package: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    });
    if found.is_some() {
        return found;
    }
    let required = std::env::var("LIVEGAMES_REQUIRE_TOOLS").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "{name} is required (LIVEGAMES_REQUIRE_TOOLS=1) but not installed: apt-get install {package}"
    );
    let mut said = SAID.lock().unwrap_or_else(|e| e.into_inner());
    if !said.contains(&name) {
        said.push(name);
        eprintln!(
            "SKIPPED: tests that need {name}: it is not installed (apt-get install {package})"
        );
    }
    None
}
