//! deploy/k8s, checked offline: `kubectl kustomize` builds it, every object passes
//! strict schema validation (PyPI kubernetes-validate), the workers Job and the run
//! ConfigMap agree on the shard count, the workers' arguments are ones `load`
//! accepts, and the merge Job's script, run here on real worker reports, exits with
//! the verdict and names a missing shard.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::printed;
use crate::support::tools::tool;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("livegames-k8s-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The rendered manifests, as YAML.
fn rendered() -> Option<String> {
    let kubectl = tool("kubectl", "kubernetes-client")?;
    let out = Command::new(kubectl)
        .args(["kustomize"])
        .arg(root().join("deploy/k8s"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kubectl kustomize deploy/k8s: {}",
        printed(&out)
    );
    Some(String::from_utf8(out.stdout).unwrap())
}

/// What the Python helper pulls out of the rendered objects (PyYAML), one
/// `key=value` per line.
fn facts(yaml: &str) -> Option<std::collections::BTreeMap<String, String>> {
    let python = tool("python3", "python3")?;
    let script = r#"
import sys, yaml
docs = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(open(sys.argv[1])) if d}
run = docs[("ConfigMap", "livegames-run")]["data"]
workers = docs[("Job", "livegames-workers")]["spec"]
merge = docs[("Job", "livegames-merge")]["spec"]["template"]["spec"]["containers"][0]
worker = workers["template"]["spec"]["containers"][0]
images = {c["image"] for d in docs.values() if d["kind"] in ("Deployment", "Job")
          for c in d["spec"]["template"]["spec"]["containers"]}
print("shards=" + run["SHARDS"])
print("completions=" + str(workers["completions"]))
print("parallelism=" + str(workers["parallelism"]))
print("mode=" + workers["completionMode"])
print("images=" + ",".join(sorted(images)))
print("worker_args=" + "\x1f".join(worker["args"]))
print("merge_script=" + merge["args"][0].replace("\n", "\x1e"))
for key, value in run.items():
    print("env." + key + "=" + value)
"#;
    let rendered = scratch("facts").join("rendered.yaml");
    std::fs::write(&rendered, yaml).unwrap();
    let out = Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(&rendered)
        .output()
        .unwrap();
    let said = printed(&out);
    if said.contains("ModuleNotFoundError") {
        assert!(
            !crate::support::tools::env_flag("LIVEGAMES_REQUIRE_TOOLS"),
            "PyYAML is required (pip install pyyaml): {said}"
        );
        eprintln!("SKIPPED: the k8s checks need PyYAML (pip install pyyaml)");
        return None;
    }
    assert!(out.status.success(), "{said}");
    Some(
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    )
}

#[test]
fn the_manifests_build_and_pass_strict_schema_validation() {
    let Some(yaml) = rendered() else {
        return;
    };
    let Some(validate) = tool(
        "kubernetes-validate",
        "python3-pip (pip install kubernetes-validate)",
    ) else {
        return;
    };
    let dir = scratch("validate");
    let good = dir.join("rendered.yaml");
    std::fs::write(&good, &yaml).unwrap();
    let out = Command::new(&validate)
        .arg("--strict")
        .arg(&good)
        .output()
        .unwrap();
    let said = printed(&out);
    assert!(
        out.status.success(),
        "kubernetes-validate --strict:\n{said}"
    );
    for kind in [
        "namespace",
        "deployment",
        "service",
        "persistentvolumeclaim",
        "job/livegames-workers",
        "job/livegames-merge",
        "configmap/livegames-run",
    ] {
        assert!(
            said.contains(&format!("passed for resource {kind}")),
            "{kind} not validated:\n{said}"
        );
    }
    // Strict really is strict: a misspelt field fails.
    let bad = dir.join("bad.yaml");
    std::fs::write(
        &bad,
        yaml.replace(
            "completionMode: Indexed",
            "completionMode: Indexed\n  paralelism: 4",
        ),
    )
    .unwrap();
    let out = Command::new(&validate)
        .arg("--strict")
        .arg(&bad)
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "a misspelt field passed: {}",
        printed(&out)
    );
}

#[test]
fn the_workers_job_and_the_run_agree_and_load_accepts_the_workers_arguments() {
    let Some(yaml) = rendered() else {
        return;
    };
    let Some(facts) = facts(&yaml) else {
        return;
    };
    assert_eq!(facts["mode"], "Indexed");
    assert_eq!(
        facts["completions"], facts["shards"],
        "completions vs SHARDS"
    );
    assert_eq!(
        facts["parallelism"], facts["shards"],
        "parallelism vs SHARDS"
    );
    assert_eq!(
        facts["images"], "livegames:0.1.0",
        "one image for every container"
    );
    // The worker's arguments as Kubernetes expands them, the scenario from the repo.
    let mut args: Vec<String> = facts["worker_args"]
        .split('\x1f')
        .map(|a| {
            let mut a = a.to_owned();
            for (key, value) in facts
                .iter()
                .filter_map(|(k, v)| Some((k.strip_prefix("env.")?, v)))
            {
                a = a.replace(&format!("$({key})"), value);
            }
            a.replace("$(POD_NAME)", "livegames-workers-1-x")
                .replace("$(SHARD_INDEX)", "1")
                .replace(
                    "/etc/livegames/scenario.toml",
                    root().join("deploy/k8s/scenario.toml").to_str().unwrap(),
                )
                .replace("/reports/", &format!("{}/", scratch("args").display()))
        })
        .collect();
    assert_eq!(args[0], "load");
    // As shipped, START_AT is a placeholder: every worker refuses it, saying why.
    let out = Command::new(env!("CARGO_BIN_EXE_livegames"))
        .args(&args)
        .env("JOB_COMPLETION_INDEX", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", printed(&out));
    assert!(
        printed(&out)
            .contains("--start-at \"set-me-to-an-rfc3339-time\": expected an RFC 3339 time"),
        "{}",
        printed(&out)
    );
    // With a real START_AT every other argument is accepted: the run gets as far as
    // the (unreachable, made-up) target and exits 3, not 2.
    let at = args.iter().position(|a| a == "--start-at").unwrap() + 1;
    args[at] = "+1s".into();
    let target = args
        .iter()
        .position(|a| a.starts_with("http://livegames-serve"))
        .unwrap();
    args[target] = format!("http://{}", crate::support::closed_addr());
    let out = Command::new(env!("CARGO_BIN_EXE_livegames"))
        .args(&args)
        .env("JOB_COMPLETION_INDEX", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", printed(&out));
}

#[test]
fn the_merge_jobs_script_exits_with_the_verdict_and_names_a_missing_shard() {
    let Some(yaml) = rendered() else {
        return;
    };
    let Some(facts) = facts(&yaml) else {
        return;
    };
    let reports = scratch("merge");
    // Two real worker reports of one run (each against its own embedded server).
    for index in 0..2 {
        let out = Command::new(env!("CARGO_BIN_EXE_livegames"))
            .args([
                "load",
                "--conns",
                "4",
                "--duration",
                "2s",
                "--ramp",
                "0s",
                "--quiet",
            ])
            .args([
                "--shard",
                &format!("{index}/2"),
                "--run-id",
                "k8s",
                "--report",
            ])
            .arg(reports.join(format!("k8s/shard-{index}")))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", printed(&out));
    }
    let script = facts["merge_script"]
        .replace('\x1e', "\n")
        .replace("/reports/", &format!("{}/", reports.display()));
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_livegames")).parent().unwrap();
    let run = || {
        Command::new("/bin/sh")
            .arg("-c")
            .arg(&script)
            .env("PATH", format!("{}:/usr/bin:/bin", bin_dir.display()))
            .env("RUN_ID", "k8s")
            .env("SHARDS", "2")
            .env("MERGE_WAIT_SECONDS", "0")
            .output()
            .unwrap()
    };
    let out = run();
    assert_eq!(out.status.code(), Some(0), "{}", printed(&out));
    assert!(
        printed(&out).contains("2 of 2 shards reported"),
        "{}",
        printed(&out)
    );
    assert!(reports.join("k8s/merged/report.json").exists());
    assert!(reports.join("k8s/merged/junit.xml").exists());
    // A worker that died before reporting: the verdict fails and names it.
    std::fs::remove_file(reports.join("k8s/shard-1/report.json")).unwrap();
    let out = run();
    assert_eq!(out.status.code(), Some(1), "{}", printed(&out));
    assert!(
        printed(&out).contains("shard 1/2: no report"),
        "{}",
        printed(&out)
    );
}
