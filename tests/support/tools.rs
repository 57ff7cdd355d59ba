//! Real programs some tests run (Debian's packages, which `.ci/run` installs). On a
//! machine without one, its tests are skipped, saying so once; with
//! `LIVEGAMES_REQUIRE_TOOLS=1` (as in CI) a missing tool fails them instead.
//! `LIVEGAMES_SKIP_BROWSER_TESTS=1` skips the browser tests even where Chromium is
//! installed (and, with `LIVEGAMES_REQUIRE_TOOLS=1`, fails them: the two disagree).

use std::path::PathBuf;
use std::sync::Mutex;

/// What a test that needs a tool does.
#[derive(Debug, PartialEq, Eq)]
pub enum Need {
    Run,
    /// Skip, saying this once.
    Skip(String),
    /// Fail with this message.
    Fail(String),
}

/// The decision, apart from the environment it is read from.
pub fn decide(name: &str, package: &str, found: bool, skip_asked: bool, required: bool) -> Need {
    match (found, skip_asked, required) {
        (_, true, true) => Need::Fail(format!(
            "tests that need {name} were asked to be skipped, but LIVEGAMES_REQUIRE_TOOLS=1 requires them"
        )),
        (_, true, false) => Need::Skip(format!("SKIPPED: tests that need {name}, as asked")),
        (true, false, _) => Need::Run,
        (false, false, true) => Need::Fail(format!(
            "{name} is required (LIVEGAMES_REQUIRE_TOOLS=1) but not installed: apt-get install {package}"
        )),
        (false, false, false) => Need::Skip(format!(
            "SKIPPED: tests that need {name}: it is not installed (apt-get install {package}; CI sets LIVEGAMES_REQUIRE_TOOLS=1 to require it)"
        )),
    }
}

/// Reasons already said (so each is said once).
static SAID: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Applies a decision: true to run; a skip is said once; a failure panics.
#[track_caller]
pub fn proceed(need: Need) -> bool {
    match need {
        Need::Run => true,
        Need::Fail(message) => panic!("{message}"),
        Need::Skip(reason) => {
            let mut said = SAID.lock().unwrap_or_else(|e| e.into_inner());
            if !said.contains(&reason) {
                // Straight to stderr: libtest captures eprintln! of a passing test,
                // and a skip nobody sees is a pass in disguise.
                use std::io::Write;
                let _ = writeln!(std::io::stderr(), "{reason}");
                said.push(reason);
            }
            false
        }
    }
}

pub fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| v == "1")
}

/// The path of `name` on PATH, or None (after saying how to install it) when it is
/// missing and not required.
#[track_caller]
pub fn tool(name: &'static str, package: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    });
    let need = decide(
        name,
        package,
        found.is_some(),
        false,
        env_flag("LIVEGAMES_REQUIRE_TOOLS"),
    );
    if proceed(need) { found } else { None }
}

/// The Chromium the browser tests drive: `$CHROMIUM`, or a distribution's; None (after
/// saying how to install it) where it is missing or `LIVEGAMES_SKIP_BROWSER_TESTS=1`.
#[track_caller]
pub fn chromium() -> Option<PathBuf> {
    let candidates = [
        std::env::var("CHROMIUM").unwrap_or_default(),
        "/usr/bin/chromium".into(),
        "/usr/bin/chromium-browser".into(),
        "/usr/bin/google-chrome".into(),
    ];
    let found = candidates
        .into_iter()
        .filter(|c| !c.is_empty())
        .map(PathBuf::from)
        .find(|p| p.exists());
    let need = decide(
        "chromium",
        "chromium",
        found.is_some(),
        env_flag("LIVEGAMES_SKIP_BROWSER_TESTS"),
        env_flag("LIVEGAMES_REQUIRE_TOOLS"),
    );
    if proceed(need) { found } else { None }
}

#[test]
fn a_missing_tool_is_skipped_unless_required_and_a_skip_is_only_on_request() {
    assert_eq!(
        decide("chromium", "chromium", true, false, false),
        Need::Run
    );
    assert_eq!(decide("chromium", "chromium", true, false, true), Need::Run);
    assert!(
        matches!(decide("chromium", "chromium", false, false, false), Need::Skip(r) if r.contains("apt-get install chromium"))
    );
    assert!(
        matches!(decide("chromium", "chromium", false, false, true), Need::Fail(m) if m.contains("LIVEGAMES_REQUIRE_TOOLS"))
    );
    // Asked to skip: skipped even when installed...
    assert!(matches!(
        decide("chromium", "chromium", true, true, false),
        Need::Skip(_)
    ));
    // ...but never where the tools are required.
    assert!(matches!(
        decide("chromium", "chromium", true, true, true),
        Need::Fail(_)
    ));
}
