//! What can be checked here of deploy/ without running containers (this machine
//! cannot run them, and no registry is reachable to pull base images): the systemd
//! unit passes `systemd-analyze verify`, the Dockerfile passes checkov's Dockerfile
//! policies and is shaped for production, the compose file is valid Compose and
//! production-shaped. README "Deploying" says what was and was not verified.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::printed;
use crate::support::tools::tool;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap()
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    let Some(analyze) = tool("systemd-analyze", "systemd") else {
        return;
    };
    // verify checks that ExecStart= exists: point it at the binary cargo built.
    let unit = read("deploy/systemd/livegames.service")
        .replace("/usr/local/bin/livegames", env!("CARGO_BIN_EXE_livegames"));
    assert!(unit.contains("ExecStart=") && unit.contains("NoNewPrivileges=yes"));
    let dir: PathBuf = std::env::temp_dir().join(format!("livegames-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("livegames.service");
    std::fs::write(&path, unit).unwrap();
    let out = Command::new(analyze)
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let said = printed(&out);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success() && said.trim().is_empty(),
        "systemd-analyze verify: {said}"
    );
}

#[test]
fn the_dockerfile_is_multi_stage_non_root_and_passes_checkov() {
    let dockerfile = read("deploy/Dockerfile");
    let froms: Vec<&str> = dockerfile
        .lines()
        .filter(|l| l.starts_with("FROM "))
        .collect();
    assert_eq!(froms.len(), 2, "build and runtime stages: {froms:?}");
    assert!(
        froms[0].starts_with("FROM rust:1.88"),
        "the official Rust image at our MSRV"
    );
    assert!(dockerfile.contains("--locked --bin livegames"));
    assert!(dockerfile.contains("USER 10001"), "not root");
    assert!(
        dockerfile.contains("HEALTHCHECK") && dockerfile.contains("CMD [\"livegames\", \"smoke\""),
        "the binary checks itself"
    );
    let Some(checkov) = tool("checkov", "checkov (pip install checkov)") else {
        return;
    };
    let out = Command::new(checkov)
        .args([
            "--framework",
            "dockerfile",
            "--skip-download",
            "--compact",
            "-f",
        ])
        .arg(root().join("deploy/Dockerfile"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "checkov: {said}");
    assert!(said.contains("Failed checks: 0"), "{said}");
}

#[test]
fn the_compose_file_is_valid_compose_and_production_shaped() {
    let Some(python) = tool("python3", "python3") else {
        return;
    };
    // The Compose spec's JSON schema (fixtures/compose_spec.json, from docker-compose
    // 1.29.2) and production rules: restart policies and resource limits everywhere,
    // no development bind mounts (only read-only config files), secrets from the
    // environment, not in the file.
    let script = r#"
import json, sys, yaml, jsonschema
schema = json.load(open(sys.argv[1]))
doc = yaml.safe_load(open(sys.argv[2]))
errors = [f"{list(e.path)}: {e.message}" for e in jsonschema.Draft7Validator(schema).iter_errors(doc)]
for name, svc in doc["services"].items():
    if svc.get("restart") not in ("unless-stopped", "always", "on-failure"):
        errors.append(f"{name}: no restart policy")
    if not svc.get("deploy", {}).get("resources", {}).get("limits"):
        errors.append(f"{name}: no resource limits")
    for volume in svc.get("volumes", []):
        source = volume.split(":")[0]
        if source.startswith(("./", "../", "/")) and not volume.endswith(":ro"):
            errors.append(f"{name}: writable bind mount {volume}")
    for key, value in (svc.get("environment") or {}).items():
        if any(word in key for word in ("PASSWORD", "KEY", "TOKEN")) and not str(value).startswith("${"):
            errors.append(f"{name}: secret {key} written in the file")
print("\n".join(errors))
sys.exit(1 if errors else 0)
"#;
    let out = Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(root().join("fixtures/compose_spec.json"))
        .arg(root().join("deploy/compose.yaml"))
        .output()
        .unwrap();
    let said = printed(&out);
    assert!(
        !said.contains("ModuleNotFoundError")
            || !crate::support::tools::env_flag("LIVEGAMES_REQUIRE_TOOLS"),
        "PyYAML and jsonschema are required (pip install pyyaml jsonschema): {said}"
    );
    if said.contains("ModuleNotFoundError") {
        eprintln!(
            "SKIPPED: the compose check needs PyYAML and jsonschema (pip install pyyaml jsonschema)"
        );
        return;
    }
    assert!(out.status.success(), "deploy/compose.yaml:\n{said}");
    // Prometheus in compose scrapes the service by its compose name.
    let prometheus = read("deploy/prometheus/prometheus.yml");
    assert!(prometheus.contains("livegames:8000") && prometheus.contains("alertmanager:9093"));
}
