use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::*;

fn livegames(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_livegames"))
        .args(args)
        .output()
        .expect("the binary runs")
}

#[test]
fn bad_flags_exit_2_naming_the_flag() {
    let out = livegames(&["serve", "--rate", "0"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--rate") && err.contains("positive"), "{err}");
    let out = livegames(&["serve", "--fault", "espn"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("SOURCE=MODE"));
    let out = livegames(&["serve", "--stale-after", "10s", "--down-after", "1s"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--down-after"));
    let out = livegames(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn help_exits_0() {
    let out = livegames(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("serve"));
}

#[test]
fn smoke_exits_3_when_nothing_answers_and_2_for_bad_usage() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let out = livegames(&["smoke", "--url", &format!("http://127.0.0.1:{port}")]);
    assert_eq!(out.status.code(), Some(3));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("cannot reach") && text.contains("connection refused"),
        "{text}"
    );
    for bad in [
        vec!["smoke", "--url", "ftp://h"],
        vec!["smoke", "--checks", "ws.nope"],
        vec!["smoke", "--messages", "0"],
        vec!["smoke", "--timeout", "soon"],
        vec!["smoke", "--schema-dir", "/no/such/dir"],
    ] {
        let out = livegames(&bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert!(!out.stderr.is_empty(), "{bad:?} says why");
    }
}

/// Runs the binary without blocking the runtime that serves the test's server.
async fn livegames_async(args: Vec<String>) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        livegames(&args)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_reports_json_and_junit_and_exits_by_verdict() {
    use crate::support::contract_server::{self, Breakage, HEARTBEAT};
    let dir = std::env::temp_dir().join(format!("lg-smoke-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let junit = dir.join("smoke.xml");
    let heartbeat = format!("{}ms", HEARTBEAT.as_millis());
    for (breakage, code) in [(Breakage::None, 0), (Breakage::SeqBackwards, 1)] {
        let addr = contract_server::start(breakage).await;
        let args: Vec<String> = [
            "smoke",
            "--url",
            &format!("http://{addr}"),
            "--heartbeat",
            &heartbeat,
            "--timeout",
            "10s",
            "--json",
            "--junit",
            junit.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let out = livegames_async(args).await;
        assert_eq!(
            out.status.code(),
            Some(code),
            "{breakage:?}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let report: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("--json prints JSON only");
        assert_eq!(report["passed"], code == 0);
        let xml = std::fs::read_to_string(&junit).unwrap();
        assert!(
            xml.contains("<testcase classname=\"livegames.smoke\" name=\"ws.seq\""),
            "{xml}"
        );
        if code == 1 {
            let seq = report["checks"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["name"] == "ws.seq")
                .unwrap();
            assert_eq!(seq["status"], "fail");
            assert_eq!(seq["violations"][0]["pointer"], "/seq");
            assert!(xml.contains("failures=\"1\""), "{xml}");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_address_in_use_exits_1_with_the_reason() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = livegames(&["serve", "--addr", &addr]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot listen"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_address_can_come_from_livegames_addr() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_livegames"))
        .arg("serve")
        .env("LIVEGAMES_ADDR", &addr)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("cannot listen on {addr}")), "{err}");
}

#[tokio::test]
async fn sigterm_closes_clients_with_1001_and_exits_0() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_livegames"))
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--speed",
            "60",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The log's first line says where the server listens.
    let stderr = child.stderr.take().unwrap();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                && let Some(addr) = v["local_addr"].as_str()
            {
                let _ = addr_tx.send(addr.to_owned());
            }
        }
    });
    let addr = addr_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the server logs its address");
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws/live/0022400196"))
        .await
        .unwrap();
    let mut client = Client::new(ws);
    assert_eq!(client.next_frame().await.kind, "snapshot");
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    assert_eq!(client.closed().await.map(|c| c.0), Some(1001));
    let status = wait_for("the process to exit", || {
        let s = child.try_wait().unwrap();
        async move { s }
    })
    .await;
    assert_eq!(status.code(), Some(0));
}

#[tokio::test]
async fn contract_validate_passes_a_recording_of_our_server_and_names_what_breaks() {
    let server = start(fast_config()).await;
    let game = live_game(&server).await;
    let mut client = connect(&server, &format!("/ws/live/{game}")).await;
    let mut lines = Vec::new();
    for _ in 0..20 {
        lines.push(client.next_frame().await.value.to_string());
    }
    server.stop().await.unwrap();
    let dir = std::env::temp_dir().join(format!("livegames-contract-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.jsonl");
    std::fs::write(&good, lines.join("\n")).unwrap();
    let out = livegames(&["contract", "validate", good.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("valid: 20 frames"));

    // Break it three ways: a frame without type, a seq going backwards, and junk.
    let mut bad = lines.clone();
    let mut no_type: serde_json::Value = serde_json::from_str(&bad[3]).unwrap();
    no_type.as_object_mut().unwrap().remove("type");
    bad[3] = no_type.to_string();
    bad.push(bad[1].clone());
    bad.push("{not json".into());
    let bad_file = dir.join("bad.jsonl");
    std::fs::write(&bad_file, bad.join("\n")).unwrap();
    let out = livegames(&["contract", "validate", bad_file.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let found: Vec<(String, u64)> = report["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["check"].as_str().unwrap().to_owned(),
                v["frame"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(found.contains(&("schema".into(), 4)), "{found:?}");
    assert!(
        found.iter().any(|(c, f)| c == "seq" && *f == 21),
        "{found:?}"
    );
    assert!(found.contains(&("json".into(), 22)), "{found:?}");

    let out = livegames(&[
        "contract",
        "validate",
        dir.join("missing.jsonl").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let out = livegames(&["contract", "schema", "update"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(serde_json::from_slice::<serde_json::Value>(&out.stdout).is_ok());
    assert_eq!(
        livegames(&["contract", "schema", "nope"]).status.code(),
        Some(2)
    );
}

#[tokio::test]
async fn contract_record_writes_frames_that_validate() {
    let server = start(fast_config()).await;
    let _ = live_game(&server).await;
    let out_file =
        std::env::temp_dir().join(format!("livegames-record-{}.jsonl", std::process::id()));
    let url = server.ws_url();
    let record = tokio::task::spawn_blocking({
        let out_file = out_file.clone();
        move || {
            livegames(&[
                "contract",
                "record",
                &url,
                "--out",
                out_file.to_str().unwrap(),
                "--frames",
                "15",
            ])
        }
    })
    .await
    .unwrap();
    assert_eq!(
        record.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&record.stderr)
    );
    let text = std::fs::read_to_string(&out_file).unwrap();
    assert_eq!(text.lines().count(), 15);
    let out = livegames(&["contract", "validate", out_file.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    server.stop().await.unwrap();
    let unreachable = livegames(&[
        "contract",
        "record",
        "ws://127.0.0.1:9/ws/live/x",
        "--out",
        out_file.to_str().unwrap(),
    ]);
    assert_eq!(unreachable.status.code(), Some(3));
}

/// issue 9: `livegames contract validate BIG.jsonl | head -1` must end quietly (exit 0,
/// no panic), however much is left to print when the reader goes away.
#[test]
fn a_reader_that_closes_stdout_early_ends_the_command_quietly() {
    use std::io::Write;
    let dir = std::env::temp_dir().join(format!("lg-pipe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let big = dir.join("big.jsonl");
    // 5,000 frames that are not JSON: 1,000 listed violations, far more than a pipe holds.
    let mut file = std::io::BufWriter::new(std::fs::File::create(&big).unwrap());
    for n in 0..5_000 {
        writeln!(file, "not a frame {n} {}", "x".repeat(200)).unwrap();
    }
    file.flush().unwrap();
    drop(file);
    let mut child = Command::new(env!("CARGO_BIN_EXE_livegames"))
        .args(["contract", "validate", big.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("FAIL json frame 1"), "{first}");
    // The reader is gone (its end of the pipe closed when dropped above).
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.is_empty(), "nothing to say about a closed pipe: {err}");
    // With the reader there to the end, the verdict is the exit code as usual.
    let whole = livegames(&["contract", "validate", big.to_str().unwrap()]);
    assert_eq!(whole.status.code(), Some(1));
    std::fs::remove_dir_all(&dir).unwrap();
}
