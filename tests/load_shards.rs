//! A run over several workers (`load --shard I/N`, `--start-at`) merged into one
//! verdict (`report merge`), against one real server: the merged totals are the sum
//! of the workers', its percentiles those of all their samples together, and a
//! missing, killed or mismatched worker is named.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{self, DEADLINE, printed};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("livegames-shards-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// One worker of a 3-shard run of 7 connections, as a process of its own.
fn worker(url: &str, shard: &str, dir: &Path, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_livegames"))
        .args(["load", url, "--conns", "7", "--ramp", "0s", "--quiet"])
        .args(["--shard", shard, "--run-id", "r1", "--worker"])
        .arg(format!("w{}", &shard[..1]))
        .args(extra)
        .arg("--report")
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs")
}

fn finished(child: Child) -> Output {
    child.wait_with_output().expect("the worker ends")
}

fn merge(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_livegames"));
    command.args(["report", "merge"]);
    for a in args {
        command.arg(a);
    }
    command.output().expect("the binary runs")
}

fn report(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_shards_merge_into_the_run_one_process_would_have_made() {
    let server = support::start(support::fast_config()).await;
    let url = server.http_url();
    let base = scratch("three");
    let dirs: Vec<PathBuf> = (0..3).map(|i| base.join(format!("shard-{i}"))).collect();
    // One start instant for all three, as a Kubernetes run would set it.
    let start_at =
        humantime::format_rfc3339_millis(std::time::SystemTime::now() + Duration::from_secs(3))
            .to_string();
    let workers: Vec<Child> = (0..3)
        .map(|i| {
            let shard = format!("{i}/3");
            worker(
                &url,
                &shard,
                &dirs[i],
                &["--duration", "3s", "--start-at", &start_at],
            )
        })
        .collect();
    for w in workers {
        let out = finished(w);
        assert_eq!(out.status.code(), Some(0), "{}", printed(&out));
    }
    let reports: Vec<Value> = dirs.iter().map(|d| report(d)).collect();
    // 7 over 3 shards: 3, 2, 2; each report names its shard, worker, run and start.
    let conns: Vec<u64> = reports
        .iter()
        .map(|r| r["conns"].as_u64().unwrap())
        .collect();
    assert_eq!(conns, [3, 2, 2]);
    for (i, r) in reports.iter().enumerate() {
        assert_eq!(r["worker"]["shard"]["index"], i);
        assert_eq!(r["worker"]["shard"]["count"], 3);
        assert_eq!(r["worker"]["name"], format!("w{i}"));
        assert_eq!(r["worker"]["run_id"], "r1");
        // Each worker measured its clock against the server's while it waited.
        assert!(
            r["clock"]["offset_us"].is_i64(),
            "shard {i}: {}",
            r["clock"]
        );
        assert!(r["clock"]["uncertainty_us"].as_u64().unwrap() < 1_000_000);
        let slip = r["start"]["slip_ms"].as_f64().unwrap();
        assert!(
            (0.0..2_000.0).contains(&slip),
            "shard {i} slipped {slip} ms"
        );
        assert_eq!(
            humantime::parse_rfc3339_weak(r["start"]["at"].as_str().unwrap()).unwrap(),
            humantime::parse_rfc3339_weak(&start_at).unwrap()
        );
    }

    let merged_dir = base.join("merged");
    let out = merge(&[
        &dirs[0],
        &dirs[1],
        &dirs[2],
        &"--report",
        &merged_dir,
        &"--budget",
        &"conns>=7",
        &"--budget",
        &"p99<10s over 1s",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", printed(&out));
    let merged = report(&merged_dir);
    let sum = |key: &str| -> u64 {
        reports
            .iter()
            .map(|r| r["totals"][key].as_u64().unwrap())
            .sum()
    };
    assert_eq!(merged["totals"]["connected"], 7);
    // All open once the last worker had all of its open.
    let last_open = reports
        .iter()
        .map(|r| r["totals"]["all_open_after_s"].as_f64().unwrap())
        .fold(0.0, f64::max);
    let merged_open = merged["totals"]["all_open_after_s"].as_f64().unwrap();
    assert!(
        merged_open >= last_open - 0.01,
        "{merged_open} vs {last_open}"
    );
    assert_eq!(merged["totals"]["frames"].as_u64().unwrap(), sum("frames"));
    assert_eq!(merged["conns"], 7);
    let shards = merged["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "shards")
        .expect("a shards check");
    assert_eq!(shards["passed"], true);
    assert_eq!(shards["observed"], "3 of 3 shards reported, none failed");
    // Exact: the merged percentiles are those of every sample together.
    support::assert_merged_latencies_exact(&merged, &dirs);

    // A shard left out fails the verdict, named; --allow-partial judges the rest.
    let out = merge(&[&dirs[0], &dirs[2], &"--report", &base.join("partial")]);
    assert_eq!(out.status.code(), Some(1), "{}", printed(&out));
    assert!(
        printed(&out).contains("shard 1/3: no report"),
        "{}",
        printed(&out)
    );
    let out = merge(&[
        &dirs[0],
        &dirs[2],
        &"--allow-partial",
        &"--report",
        &base.join("partial"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", printed(&out));
    assert!(
        printed(&out).contains("--allow-partial: judged without shard 1/3"),
        "{}",
        printed(&out)
    );
    // --shards says how many there were, even when the last one left nothing.
    let out = merge(&[
        &dirs[0],
        &dirs[1],
        &dirs[2],
        &"--shards",
        &"4",
        &"--report",
        &base.join("x"),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", printed(&out));
    assert!(
        printed(&out).contains("but 4 were expected"),
        "{}",
        printed(&out)
    );
    server.shutdown.trigger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_run_fails_the_merged_verdict_by_name() {
    let server = support::start(support::fast_config()).await;
    let url = server.http_url();
    let base = scratch("killed");
    let dirs: Vec<PathBuf> = (0..2).map(|i| base.join(format!("shard-{i}"))).collect();
    for dir in &dirs {
        std::fs::create_dir_all(dir).unwrap();
    }
    let survivor = worker(&url, "0/2", &dirs[0], &["--duration", "2s"]);
    let mut doomed = Command::new(env!("CARGO_BIN_EXE_livegames"))
        .args([
            "load",
            &url,
            "--conns",
            "7",
            "--ramp",
            "0s",
            "--duration",
            "60s",
        ])
        .args(["--shard", "1/2", "--run-id", "r1", "--report"])
        .arg(&dirs[1])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Killed once its connections are open (it says so on stderr), before it reports.
    let stderr = doomed.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if line.contains("connections open") {
                let _ = tx.send(());
            }
        }
    });
    let deadline = Instant::now() + DEADLINE;
    while rx.try_recv().is_err() {
        assert!(
            Instant::now() < deadline,
            "the doomed worker never connected"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    doomed.kill().unwrap();
    let _ = doomed.wait();
    let out = finished(survivor);
    assert_eq!(out.status.code(), Some(0), "{}", printed(&out));
    assert!(!dirs[1].join("report.json").exists());

    let out = merge(&[&dirs[0], &dirs[1], &"--report", &base.join("merged")]);
    assert_eq!(out.status.code(), Some(1), "{}", printed(&out));
    let said = printed(&out);
    assert!(said.contains("shard 1/2: no report"), "{said}");
    assert!(said.contains("shard-1: no report.json"), "{said}");
    server.shutdown.trigger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_that_are_not_one_run_are_refused_naming_the_file() {
    let server = support::start(support::fast_config()).await;
    let url = server.http_url();
    let base = scratch("mismatch");
    let (a, b) = (base.join("a"), base.join("b"));
    let run = |shard: &str, dir: &Path| finished(worker(&url, shard, dir, &["--duration", "1s"]));
    for (shard, dir) in [("0/2", &a), ("1/2", &b)] {
        let out = run(shard, dir);
        assert_eq!(out.status.code(), Some(0), "{}", printed(&out));
    }
    let rewrite = |dir: &Path, edit: &dyn Fn(&mut Value)| {
        let mut r = report(dir);
        edit(&mut r);
        std::fs::write(dir.join("report.json"), serde_json::to_vec(&r).unwrap()).unwrap();
    };
    let refused = |why: &str| {
        let out = merge(&[&a, &b, &"--report", &base.join("merged")]);
        assert_eq!(out.status.code(), Some(2), "{why}: {}", printed(&out));
        let said = printed(&out);
        assert!(
            said.contains(&b.join("report.json").display().to_string()),
            "{why}: {said}"
        );
        said
    };
    rewrite(&b, &|r| r["worker"]["run_id"] = "r2".into());
    assert!(refused("run id").contains("run id r2"));
    rewrite(&b, &|r| {
        r["worker"]["run_id"] = "r1".into();
        r["worker"]["shard"] = serde_json::json!({"index": 1, "count": 3});
    });
    assert!(refused("shard count").contains("but 2 were expected"));
    rewrite(&b, &|r| {
        r["worker"]["shard"] = serde_json::json!({"index": 0, "count": 2})
    });
    assert!(refused("same shard").contains("shard 0/2 again"));
    rewrite(&b, &|r| {
        r["worker"]["shard"] = serde_json::json!({"index": 1, "count": 2});
        r["livegames_version"] = "0.0.1".into();
    });
    assert!(refused("version").contains("written by livegames 0.0.1"));
    server.shutdown.trigger();
}

#[test]
fn bad_shard_and_start_flags_exit_2_saying_why() {
    let cases: [(&[&str], &str); 5] = [
        (
            &["--shard", "3/3"],
            "shard 3 of 3 is out of range: shards are numbered 0 to 2",
        ),
        (&["--shard", "1of3"], "expected I/N"),
        (&["--shards", "3"], "JOB_COMPLETION_INDEX"),
        (
            &["--conns", "2", "--shard", "0/3"],
            "--conns 2 over 3 shards leaves shard 2 with no connection",
        ),
        (
            &["--start-at", "2020-01-01T00:00:00Z"],
            "give a time in the future",
        ),
    ];
    for (args, expected) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_livegames"))
            .arg("load")
            .args(args)
            .env_remove("JOB_COMPLETION_INDEX")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", printed(&out));
        assert!(
            printed(&out).contains(expected),
            "{args:?}: {}",
            printed(&out)
        );
    }
}
