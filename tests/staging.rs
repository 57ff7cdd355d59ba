//! Staging, for real: `deploy/staging.sh` brings up deploy/compose.yaml on serve's
//! mocks with podman-compose (serve around this test's binary, InfluxDB, Prometheus and
//! Alertmanager), checks it from outside (smoke, Prometheus scraping with every rule
//! loaded, points in InfluxDB, an alert in Alertmanager) and takes it down. About two
//! minutes; needs podman, podman-compose and mmdebstrap (or a registry): skipped
//! without them, failed where tools are required (CI).

use std::process::Command;

use crate::support::printed;
use crate::support::tools::{Need, env_flag, proceed};

fn installed(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn the_compose_stack_comes_up_on_the_mocks_and_passes_its_checks() {
    let ready = installed("podman") && installed("podman-compose") && installed("curl");
    let need = match (ready, env_flag("LIVEGAMES_REQUIRE_TOOLS")) {
        (true, _) => Need::Run,
        (false, true) => Need::Fail(
            "staging needs podman, podman-compose and curl (LIVEGAMES_REQUIRE_TOOLS=1): apt-get install podman runc mmdebstrap curl; pip install podman-compose".into(),
        ),
        (false, false) => Need::Skip(
            "SKIPPED: the staging test: apt-get install podman runc mmdebstrap curl; pip install podman-compose".into(),
        ),
    };
    if !proceed(need) {
        return;
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("bash")
        .arg(root.join("deploy/staging.sh"))
        .arg(env!("CARGO_BIN_EXE_livegames"))
        .output()
        .unwrap();
    let said = printed(&out);
    assert!(out.status.success(), "deploy/staging.sh:\n{said}");
    for step in [
        "staging: Alertmanager reads its secrets",
        "staging: serve healthy",
        "staging: smoke passed",
        "rules loaded",
        "staging: serve's points are in InfluxDB",
        "staging: CircuitBreakerOpen reached Alertmanager",
    ] {
        assert!(said.contains(step), "{step:?} missing from:\n{said}");
    }
}
