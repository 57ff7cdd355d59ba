//! The dashboard's end-to-end specs (tests/e2e: Playwright in TypeScript, one
//! `livegames serve` per spec) run as part of `cargo test`, against this build's binary
//! and the system's Chromium. Like the other tools' tests, they are skipped (saying
//! how to install what is missing) without Node, the specs' npm packages or Chromium,
//! and fail instead where `LIVEGAMES_REQUIRE_TOOLS=1` (CI). Playwright's own output is
//! in target/e2e/run.log; traces, screenshots and the HTML report of a failure under
//! target/e2e.

use std::io::Write;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::support::peers::peer_installed;
use crate::support::tools;

/// Longer than the suite takes on a loaded 2-core machine (about 3 minutes alone).
const SUITE_DEADLINE: Duration = Duration::from_secs(20 * 60);

#[test]
fn the_dashboard_specs_pass_in_playwright() {
    let Some(chromium) = tools::chromium() else {
        return;
    };
    let Some(npx) = tools::tool("npx", "nodejs npm") else {
        return;
    };
    let e2e = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e");
    let installed = e2e.join("node_modules/@playwright/test").is_dir();
    let how = "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix tests/e2e";
    if !peer_installed("Playwright", installed, how) {
        return;
    }
    assert_types_check(&npx, &e2e);
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/e2e");
    std::fs::create_dir_all(&target).unwrap();
    let log_path = target.join("run.log");
    let mut playwright = Command::new(&npx);
    playwright
        .args(["playwright", "test"])
        .current_dir(&e2e)
        .env("LIVEGAMES_BIN", env!("CARGO_BIN_EXE_livegames"))
        .env("CHROMIUM", &chromium);
    let status = run_logged(playwright, &log_path);
    let output = tail(&log_path);
    assert!(
        status.success(),
        "the Playwright specs failed ({status}); traces, screenshots and the report under target/e2e:\n{output}"
    );
    assert!(output.contains(" passed"), "no spec ran:\n{output}");
    say_skipped(&output);
}

/// The specs' types (Playwright itself runs TypeScript without checking it).
fn assert_types_check(npx: &Path, e2e: &Path) {
    let typecheck = Command::new(npx)
        .args(["tsc", "-p", "."])
        .current_dir(e2e)
        .output()
        .expect("npx starts");
    assert!(
        typecheck.status.success(),
        "the specs do not type-check (npm run typecheck --prefix tests/e2e):\n{}",
        String::from_utf8_lossy(&typecheck.stdout)
    );
}

/// Runs `command` with its output in `log_path`, killed past [`SUITE_DEADLINE`].
fn run_logged(mut command: Command, log_path: &Path) -> ExitStatus {
    let log = std::fs::File::create(log_path).unwrap();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("npx starts");
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > SUITE_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the Playwright specs ran past {SUITE_DEADLINE:?}:\n{}",
                tail(log_path)
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A spec whose own tool is missing (influxd for the ops page) skips itself (where
/// tools are required it fails instead): said on stderr, like the other skips.
fn say_skipped(output: &str) {
    let skipped: Vec<&str> = output.lines().filter(|l| l.contains("skipped")).collect();
    if !skipped.is_empty() {
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: some Playwright specs ({}): see target/e2e/run.log",
            skipped.join("; ").trim()
        );
    }
}

/// The last lines Playwright printed (its failures and summary come last).
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(200)..].join("\n")
}
