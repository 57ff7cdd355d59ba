//! Several hosts, simulated for real: deploy/netns/run-shards.sh puts each `load`
//! worker in its own Linux network namespace with its own address (veth pairs on a
//! bridge it makes), against `livegames serve` in the root namespace, and merges. The
//! merged totals are the workers' sums, its percentiles those of all their samples
//! together, and a worker killed mid-run fails the merged verdict with its shard
//! named. Needs root (CI runs as root) and iproute2.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::support::printed;
use crate::support::tools::{env_flag, tool};

fn root_and_ip() -> bool {
    let Some(_) = tool("ip", "iproute2") else {
        return false;
    };
    let uid = Command::new("id").arg("-u").output().unwrap();
    if String::from_utf8_lossy(&uid.stdout).trim() == "0" {
        return true;
    }
    assert!(
        !env_flag("LIVEGAMES_REQUIRE_TOOLS"),
        "the network-namespace test needs root"
    );
    eprintln!("SKIPPED: network namespaces need root");
    false
}

fn run_script(name: &str, extra: &[&str]) -> (Output, PathBuf) {
    let out_dir =
        std::env::temp_dir().join(format!("livegames-netns-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out_dir);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/netns/run-shards.sh");
    let out = Command::new("bash")
        .arg(script)
        .args(["--bin", env!("CARGO_BIN_EXE_livegames")])
        .args(["--workers", "3", "--conns", "30", "--duration", "3s"])
        .arg("--out")
        .arg(&out_dir)
        .args(extra)
        .output()
        .unwrap();
    (out, out_dir)
}

fn report(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap()).unwrap()
}

#[test]
fn workers_in_their_own_namespaces_merge_exactly_and_a_killed_one_is_named() {
    if !root_and_ip() {
        return;
    }
    let (out, dir) = run_script("whole", &["--budget", "conns>=30"]);
    let said = printed(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    for i in 0..3 {
        assert!(said.contains(&format!("worker {i}: namespace")), "{said}");
        assert!(
            said.contains(&format!(".{}, reaches the server", 10 + i)),
            "{said}"
        );
    }
    let shards: Vec<PathBuf> = (0..3).map(|i| dir.join(format!("shard-{i}"))).collect();
    let workers: Vec<Value> = shards.iter().map(|d| report(d)).collect();
    let merged = report(&dir.join("merged"));
    let sum = |key: &str| -> u64 {
        workers
            .iter()
            .map(|w| w["totals"][key].as_u64().unwrap())
            .sum()
    };
    assert_eq!(sum("connected"), 30);
    assert_eq!(merged["totals"]["connected"].as_u64().unwrap(), 30);
    assert_eq!(merged["totals"]["frames"].as_u64().unwrap(), sum("frames"));
    let names: std::collections::BTreeSet<&str> = workers
        .iter()
        .map(|w| w["worker"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names.len(),
        3,
        "each worker is named by its namespace: {names:?}"
    );
    crate::support::assert_merged_latencies_exact(&merged, &shards);

    let (out, _) = run_script("killed", &["--kill", "1"]);
    let said = printed(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("worker 1: killed"), "{said}");
    assert!(said.contains("shard 1/3: no report"), "{said}");
    // Nothing is left behind: no namespace of ours remains.
    let namespaces = Command::new("ip").args(["netns", "list"]).output().unwrap();
    assert!(
        !String::from_utf8_lossy(&namespaces.stdout)
            .lines()
            .any(|l| l.starts_with("lg") && l.contains('w')),
        "namespaces left behind: {}",
        String::from_utf8_lossy(&namespaces.stdout)
    );
}
