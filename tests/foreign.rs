//! `load`, `smoke` and `contract record` against servers that are not ours, through the
//! binary as a user runs it.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::foreign::{self, Foreign, GAME, Stream, TestPki};

fn livegames(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_livegames"))
        .args(args)
        .output()
        .expect("the binary runs")
}

/// `livegames load URL --conns N --duration D --quiet --report DIR`, and `extra`: the
/// way most tests here run it.
fn load_args(url: &str, conns: u32, duration: &str, report: &Path, extra: &[&str]) -> Vec<String> {
    let report = report.to_str().expect("a UTF-8 report path");
    let conns = conns.to_string();
    let common = [
        "load",
        url,
        "--conns",
        &conns,
        "--duration",
        duration,
        "--quiet",
    ];
    with(
        &with(&[], &common),
        &[&["--report", report], extra].concat(),
    )
}

/// `args` and then `extra`.
fn with(args: &[String], extra: &[&str]) -> Vec<String> {
    args.iter()
        .cloned()
        .chain(extra.iter().map(|s| s.to_string()))
        .collect()
}

/// Runs the binary without blocking the runtime that serves the test's server.
async fn run(args: &[impl AsRef<str>]) -> (Option<i32>, String, String) {
    let args: Vec<String> = args.iter().map(|s| s.as_ref().to_owned()).collect();
    let out = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        livegames(&args)
    })
    .await
    .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn report_dir(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("lg-foreign-{name}-{}", std::process::id()))
}

fn report(dir: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bearer_token_and_a_subprotocol_get_load_smoke_and_record_through() {
    let addr = foreign::start(Foreign {
        token: Some("s3cret"),
        subprotocol: Some("feed.v2"),
        ..Foreign::default()
    })
    .await;
    let url = format!("ws://{addr}");
    let auth = "Authorization: Bearer s3cret";
    let dir = report_dir("token");
    let base = load_args(&url, 3, "2s", &dir, &["--ramp", "0s"]);

    // Without the token discovery is refused, and said so.
    let (code, _, err) = run(&base).await;
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("401"), "{err}");

    // With the token but no subprotocol, every upgrade is refused.
    let (code, out, err) = run(&with(&base, &["-H", auth])).await;
    assert_eq!(code, Some(3), "{out}{err}");
    assert_eq!(
        report(&dir)["totals"]["errors"]["handshake_400"],
        3,
        "{out}"
    );

    // With both, frames flow and the report names the subprotocol.
    let (code, out, err) = run(&with(
        &base,
        &[
            "-H",
            auth,
            "--subprotocol",
            "other",
            "--subprotocol",
            "feed.v2",
            "--budget",
            "lost=0",
        ],
    ))
    .await;
    assert_eq!(code, Some(0), "{out}{err}");
    let json = report(&dir);
    assert_eq!(json["subprotocol"], "feed.v2", "{out}");
    assert_eq!(json["totals"]["connected"], 3);
    assert!(json["totals"]["frames"].as_u64().unwrap() > 30, "{out}");
    assert!(out.contains("subprotocol: feed.v2"), "{out}");

    // smoke's REST requests carry the header too.
    let http = format!("http://{addr}");
    let smoke = ["smoke", "--url", &http, "--checks", "health", "--json"];
    let (code, out, _) = run(&smoke).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("HTTP 401"), "{out}");
    let (code, out, _) = run(&[&smoke[..], &["-H", auth]].concat()).await;
    assert_eq!(code, Some(0), "{out}");
    // ...and its streams offer the subprotocol, and say which one was picked.
    let stream_checks = [
        "smoke",
        "--url",
        &http,
        "--checks",
        "ws.connect",
        "--game",
        GAME,
        "-H",
        auth,
        "--subprotocol",
        "feed.v2",
    ];
    let (code, out, _) = run(&stream_checks).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("(subprotocol feed.v2)"), "{out}");

    // contract record, with both.
    let recording = dir.join("frames.jsonl");
    let record = [
        "contract",
        "record",
        &url,
        "--out",
        recording.to_str().unwrap(),
        "--frames",
        "5",
    ];
    let (code, _, err) = run(&[&record[..], &["-H", auth]].concat()).await;
    assert_eq!(code, Some(3), "no subprotocol offered: {err}");
    assert!(err.contains("400"), "{err}");
    let (code, _, err) =
        run(&[&record[..], &["-H", auth, "--subprotocol", "feed.v2"]].concat()).await;
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        std::fs::read_to_string(&recording).unwrap().lines().count(),
        5
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_private_ca_is_trusted_with_cacert_and_refused_with_the_reason_otherwise() {
    if crate::support::tools::tool("openssl", "openssl").is_none() {
        return;
    }
    let pki = TestPki::new("load");
    let addr = foreign::start(Foreign {
        tls: Some(pki.server.clone()),
        ..Foreign::default()
    })
    .await;
    let stream = format!("wss://localhost:{}/ws/live/{GAME}", addr.port());
    let dir = report_dir("tls");
    let base = load_args(&stream, 2, "1s", &dir, &["--ramp", "0s"]);

    // The platform does not know our CA: an unknown issuer, counted as such.
    let (code, out, err) = run(&base).await;
    assert_eq!(code, Some(3), "{out}{err}");
    assert_eq!(
        report(&dir)["totals"]["errors"]["tls_unknown_issuer"],
        2,
        "{out}"
    );

    // --cacert trusts it.
    let ca = pki.ca_pem.to_str().unwrap();
    let (code, out, err) = run(&with(&base, &["--cacert", ca])).await;
    assert_eq!(code, Some(0), "{out}{err}");
    let json = report(&dir);
    assert_eq!(json["totals"]["connected"], 2);
    assert_eq!(json["tls_verified"], true);

    // The certificate names localhost only: 127.0.0.1 is a name mismatch.
    let by_ip = format!("wss://127.0.0.1:{}/ws/live/{GAME}", addr.port());
    let (code, out, _) = run(&load_args(&by_ip, 1, "1s", &dir, &["--cacert", ca])).await;
    assert_eq!(code, Some(3), "{out}");
    assert_eq!(
        report(&dir)["totals"]["errors"]["tls_name_mismatch"],
        1,
        "{out}"
    );

    // --insecure verifies nothing, and says so on the terminal and in the report.
    let (code, out, err) = run(&with(&base, &["--insecure"])).await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(err.contains("--insecure"), "{err}");
    assert_eq!(report(&dir)["tls_verified"], false);

    // Discovery and smoke's REST requests use the same trust.
    let host = format!("wss://localhost:{}", addr.port());
    let (code, _, err) = run(&load_args(&host, 1, "1s", &dir, &[])).await;
    assert_eq!(code, Some(3));
    assert!(err.contains("unknown issuer"), "{err}");
    let (code, _, err) = run(&load_args(&host, 1, "1s", &dir, &["--cacert", ca])).await;
    assert_eq!(code, Some(0), "{err}");
    let https = format!("https://localhost:{}", addr.port());
    let (code, out, _) = run(&[
        "smoke", "--url", &https, "--checks", "health", "--cacert", ca,
    ])
    .await;
    assert_eq!(code, Some(0), "{out}");
    let (code, out, _) = run(&["smoke", "--url", &https, "--checks", "health"]).await;
    assert_eq!(code, Some(3), "{out}");
    assert!(out.contains("unknown issuer"), "{out}");
    let (code, out, _) = run(&["smoke", "--url", &https, "--checks", "health", "--insecure"]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("TLS not verified: --insecure"), "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn connect_flags_are_checked_before_anything_runs() {
    let out = livegames(&["load", "-H", "no colon here"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Name: value"));
    let out = livegames(&["load", "--max-message", "1 parsec"]);
    assert_eq!(out.status.code(), Some(2));
    let out = livegames(&["load", "--cacert", "/no/such/ca.pem"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/ca.pem"));
    let out = livegames(&["smoke", "--insecure", "--cacert", "/tmp/x.pem"]);
    assert_eq!(out.status.code(), Some(2));
}

/// Watches a child's peak resident memory (VmHWM, KiB) until `done` is set. (The
/// kernel's rusage of a child counts the parent's memory from before the exec, so it
/// cannot be used here.)
fn watch_peak_rss(
    pid: u32,
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut peak = 0;
        while !done.load(std::sync::atomic::Ordering::Relaxed) {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            if let Some(kib) = status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            {
                peak = peak.max(kib);
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        peak
    })
}

/// Runs the binary to its end and returns its exit code, stdout, stderr and peak
/// resident memory (KiB).
async fn run_measured(args: &[impl AsRef<str>]) -> (Option<i32>, String, String, u64) {
    let args: Vec<String> = args.iter().map(|s| s.as_ref().to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let child = Command::new(env!("CARGO_BIN_EXE_livegames"))
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let watcher = watch_peak_rss(child.id(), done.clone());
        let out = child.wait_with_output().unwrap();
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        let peak = watcher.join().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
            peak,
        )
    })
    .await
    .unwrap()
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = report_dir(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscribe_protocol_with_its_own_field_names_and_pong_is_measured() {
    let addr = foreign::start(Foreign {
        stream: Stream::Subscribed,
        ..Foreign::default()
    })
    .await;
    let dir = tempdir("subscribe");
    let template = dir.join("ping.json");
    std::fs::write(&template, r#"{"op":"ping","ref":{id}}"#).unwrap();
    let url = format!("ws://{addr}/ws/live/{{game_id}}");
    let report_dir = dir.join("report");
    let base = load_args(
        &url,
        4,
        "2s",
        &report_dir,
        &["--games", GAME, "--ramp", "0s"],
    );
    // Without the subscribe message the server says nothing: nothing measured fails.
    let (code, out, _) = run(&base).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("check FAIL frames: no frames received"),
        "{out}"
    );
    let junit = std::fs::read_to_string(report_dir.join("junit.xml")).unwrap();
    assert!(
        junit.contains("<testcase classname=\"livegames.load.checks\" name=\"frames\""),
        "{junit}"
    );

    let shaped = [
        "--subscribe",
        r#"{"op":"subscribe","game":"{game_id}","after":{since}}"#,
        "--seq-field",
        "/n",
        "--ts-field",
        "/t",
        "--ts-unit",
        "ms",
        "--send-rate",
        "5",
        "--send-template",
        template.to_str().unwrap(),
        "--pong-match",
        "/ref",
        "--budget",
        "lost=0",
        "--budget",
        "rtt_p99<1s",
        "--budget",
        "p99<1s",
        "--budget",
        "first_frame_p99<500ms",
    ];
    let (code, out, err) = run(&with(&base, &shaped)).await;
    assert_eq!(code, Some(0), "{out}{err}");
    let json = report(&report_dir);
    let totals = &json["totals"];
    assert!(totals["frames"].as_u64().unwrap() > 100, "{out}");
    assert_eq!(totals["lost"], 0, "seq read at /n: {out}");
    assert!(
        totals["pongs"].as_u64().unwrap() >= 20,
        "replies matched at /ref: {out}"
    );
    assert!(
        json["latency"]["rtt"]["count"].as_u64().unwrap() >= 20,
        "{out}"
    );
    assert!(
        json["latency"]["delivery"]["count"].as_u64().unwrap() > 100,
        "ts read at /t in ms: {out}"
    );

    // A seq pointer that no frame has: loss is unknown, not 0, and lost=0 cannot pass.
    let unknown = with(
        &with(&base, &shaped[..2]),
        &["--seq-field", "/missing", "--budget", "lost=0"],
    );
    let (code, out, _) = run(&unknown).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("lost n/a"), "{out}");
    assert!(out.contains("budget FAIL lost=0: measured n/a"), "{out}");
    assert!(report(&report_dir)["totals"]["lost"].is_null());

    // contract record speaks the same protocol.
    let recording = dir.join("frames.jsonl");
    let (code, _, err) = run(&[
        "contract",
        "record",
        &url,
        "--out",
        recording.to_str().unwrap(),
        "--frames",
        "5",
        "--subscribe",
        r#"{"op":"subscribe","game":"{game_id}"}"#,
    ])
    .await;
    assert_eq!(code, Some(0), "{err}");
    let lines = std::fs::read_to_string(&recording).unwrap();
    assert_eq!(lines.lines().count(), 5, "{lines}");
    assert!(
        lines.lines().all(|l| l.contains("\"kind\":\"tick\"")),
        "{lines}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_a_restart_lost_fail_the_loss_budget() {
    let addr = foreign::start(Foreign {
        stream: Stream::RestartWithLoss,
        ..Foreign::default()
    })
    .await;
    let dir = tempdir("restart");
    let url = format!("ws://{addr}/ws/live/{GAME}");
    let (code, out, err) = run(&load_args(
        &url,
        10,
        "3s",
        &dir,
        &["--ramp", "0s", "--reconnect", "--budget", "lost=0"],
    ))
    .await;
    assert_eq!(code, Some(1), "{out}{err}");
    let totals = report(&dir)["totals"].clone();
    assert_eq!(
        totals["lost"], 100,
        "seqs 10..19 on each of 10 connections: {out}"
    );
    assert_eq!(totals["reordered"], 0, "{out}");
    assert_eq!(totals["restarts"], 10, "{out}");
    assert_eq!(totals["unrecoverable"], 10, "{out}");
    assert!(out.contains("budget FAIL lost=0"), "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_server_and_oversized_messages_measure_nothing_and_fail() {
    let dir = tempdir("silent");
    let silent = foreign::start(Foreign {
        stream: Stream::Silent,
        ..Foreign::default()
    })
    .await;
    let url = format!("ws://{silent}/ws/live/{GAME}");
    let (code, out, _) = run(&load_args(&url, 3, "1s", &dir, &[])).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("check PASS connections: 3 of 3 users connected"),
        "{out}"
    );
    assert!(
        out.contains("check FAIL frames: no frames received"),
        "{out}"
    );
    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    assert!(junit.contains("tests=\"3\" failures=\"1\""), "{junit}");

    // 60 MiB messages: each connection ends at the 1 MiB cap, counted by kind, in
    // bounded memory.
    let huge = foreign::start_huge_messages().await;
    let url = format!("ws://{huge}/ws/live/{GAME}");
    let (code, out, _, peak_kib) =
        run_measured(&load_args(&url, 10, "2s", &dir, &["--ramp", "0s"])).await;
    assert_eq!(code, Some(1), "{out}");
    assert_eq!(
        report(&dir)["totals"]["errors"]["message_too_large"],
        10,
        "{out}"
    );
    assert!(
        peak_kib > 0 && peak_kib < 200 << 10,
        "peak RSS {peak_kib} KiB"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A server with nothing to say is not a dead connection: with pings on, a connection
/// quiet for `--idle-timeout` is asked with a ping, and fails only if not even the
/// pong comes. The ping interval (`1h` here, as `auto` stretches it at 10,000
/// connections) plays no part.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_connection_is_pinged_before_it_counts_as_idle() {
    let dir = tempdir("idle");
    let errors = |dir: &std::path::Path| report(dir)["totals"]["errors"].clone();
    let quiet = |stream| async move {
        let addr = foreign::start(Foreign {
            stream,
            ..Foreign::default()
        })
        .await;
        format!("ws://{addr}/ws/live/{GAME}")
    };
    let (silent, deaf) = (quiet(Stream::Silent).await, quiet(Stream::Deaf).await);
    let load = |url: String, ping: &'static str| {
        let dir = dir.clone();
        async move {
            let args = load_args(
                &url,
                3,
                "5s",
                &dir,
                &["--ramp", "0s", "--idle-timeout", "2s", "--ws-ping", ping],
            );
            run(&args).await.1
        }
    };

    // Answers pings: alive for the whole run, each connection asked after every 2 s
    // of quiet (its pong has 0.67 s: ample on a loaded machine).
    let out = load(silent.clone(), "1h").await;
    assert_eq!(errors(&dir), serde_json::json!({}), "{out}");
    let asked = report(&dir)["latency"]["ws_rtt"]["count"]
        .as_u64()
        .unwrap_or(0);
    assert!(
        asked >= 3,
        "each connection's quiet spells were pinged: {asked}"
    );

    // The same server without pings: nothing comes, so each connection is idle.
    let out = load(silent, "0s").await;
    assert_eq!(errors(&dir)["idle_timeout"], 3, "{out}");

    // Never answers: the ping goes unanswered and each connection is idle, within the
    // timeout and its grace (2.7 s of a 5 s run).
    let out = load(deaf, "1h").await;
    assert_eq!(errors(&dir)["idle_timeout"], 3, "{out}");
    let answered = report(&dir)["latency"]["ws_rtt"]["count"].as_u64();
    assert_eq!(answered.unwrap_or(0), 0, "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_games_list_is_refused_at_32_mib_in_bounded_memory() {
    let addr = foreign::start(Foreign {
        huge_games_list: true,
        ..Foreign::default()
    })
    .await;
    let dir = tempdir("huge-body");
    let url = format!("ws://{addr}");
    let (code, _, err, peak_kib) = run_measured(&load_args(&url, 10, "1s", &dir, &[])).await;
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("over 32 MiB"), "{err}");
    assert!(
        peak_kib > 0 && peak_kib < 200 << 10,
        "peak RSS {peak_kib} KiB"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Runs `load --reconnect --budget lost=0` with 5 clients against our server, restarts
/// the server once its game passed `restart_at_seq` (the new run with `second`), and
/// returns load's exit code, stdout and report totals.
async fn restart_under_load(
    restart_at_seq: u64,
    down_for: std::time::Duration,
    second: livegames::serve::ServeConfig,
    name: &str,
) -> (Option<i32>, String, serde_json::Value) {
    use crate::support::{fast_config, game_seq, live_game, metric, start, wait_for};
    let first = start(fast_config()).await;
    let addr = first.local_addr.to_string();
    let game = live_game(&first).await;
    let dir = tempdir(name);
    let url = format!("ws://{addr}/ws/live/{game}");
    let args = load_args(
        &url,
        5,
        "8s",
        &dir,
        &["--ramp", "0s", "--reconnect", "--budget", "lost=0"],
    );
    let child = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_livegames"))
            .args(&args)
            .output()
            .unwrap()
    });
    wait_for("5 clients", || async {
        (metric(&first, "livegames_ws_connections ").await >= 5.0).then_some(())
    })
    .await;
    wait_for("the stream to move on", || async {
        (game_seq(&first, &game).await >= restart_at_seq).then_some(())
    })
    .await;
    first.stop().await.unwrap();
    // The scenario: the server is away this long (the clients back off meanwhile).
    tokio::time::sleep(down_for).await;
    let second = livegames::serve::spawn(second, &addr).await.unwrap();
    let out = child.await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let totals = report(&dir)["totals"].clone();
    second.stop().await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    (out.status.code(), text, totals)
}

/// issue 10: our own server, restarted under load (its seqs start again), must fail a
/// loss budget: the clients' resumes are refused and what the old server sent after
/// their last seq is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_server_restarted_under_load_fails_the_loss_budget() {
    // Far enough ahead that the restarted server is still behind when they resume.
    let (code, text, totals) = restart_under_load(
        60,
        Duration::ZERO,
        crate::support::fast_config(),
        "our-restart",
    )
    .await;
    assert_eq!(code, Some(1), "{text}");
    assert_eq!(totals["unrecoverable"], 5, "{text}");
    assert_eq!(totals["reordered"], 0, "{text}");
    assert!(text.contains("budget FAIL lost=0"), "{text}");
}

/// issue 11: a restarted server already past the clients' last seq would replay its
/// new run's frames as if they were the old one's (seqs alone cannot tell). With
/// epochs (contract 1.1.0) load resumes with `&epoch=`, is refused with
/// `epoch_changed`, and counts the restart: the loss budget fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_ahead_of_the_clients_is_named_by_the_epoch() {
    // Away for a while and ten times faster after it: past the clients' seq before
    // their backed-off reconnects reach it.
    let mut second = crate::support::fast_config();
    second.rate = 200.0;
    let (code, text, totals) =
        restart_under_load(3, Duration::from_millis(1500), second, "epoch-restart").await;
    assert_eq!(code, Some(1), "{text}");
    assert_eq!(totals["restarts"], 5, "{text} {totals}");
    assert_eq!(totals["unrecoverable"], 5, "{text}");
    let examples: Vec<&str> = totals["unrecoverable_examples"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e.as_str())
        .collect();
    assert!(
        examples.iter().all(|e| e.contains("epoch_changed")),
        "{examples:?}"
    );
    // "after seq A is gone (...); it went on at seq B": the new run was ahead (B > A).
    let ahead = examples.iter().any(|e| {
        let number_after = |mark: &str| -> Option<u64> {
            let rest = &e[e.find(mark)? + mark.len()..];
            rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
        };
        matches!((number_after("after seq "), number_after("went on at seq ")), (Some(a), Some(b)) if b > a)
    });
    assert!(ahead, "the restarted server was not ahead: {examples:?}");
    assert!(text.contains("budget FAIL lost=0"), "{text}");
}

fn smoke_config(
    addr: std::net::SocketAddr,
    timeout: std::time::Duration,
) -> livegames::smoke::SmokeConfig {
    livegames::smoke::SmokeConfig {
        timeout,
        heartbeat: std::time::Duration::from_millis(300),
        game: Some(GAME.into()),
        ..livegames::smoke::SmokeConfig::new(
            livegames::client::Target::parse(&format!("http://{addr}")).unwrap(),
        )
    }
}

async fn smoke_against(
    stream: Stream,
    timeout: std::time::Duration,
) -> livegames::smoke::SmokeReport {
    let addr = foreign::start(Foreign {
        stream,
        ..Foreign::default()
    })
    .await;
    livegames::smoke::run(
        &smoke_config(addr, timeout),
        livegames::contract::schema::Schemas::builtin(false),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_never_passes_a_check_that_observed_nothing_and_ends_within_its_timeout() {
    use livegames::smoke::Status;
    let timeout = std::time::Duration::from_secs(3);
    let listing = |r: &livegames::smoke::SmokeReport| {
        livegames::smoke::render::text(r, livegames::smoke::render::Palette::new(false))
    };
    // A stream that says nothing: ws.frames fails; the frame checks are skipped, saying why.
    let silent = smoke_against(Stream::Silent, timeout).await;
    let text = listing(&silent);
    assert_eq!(
        silent.check("ws.frames").unwrap().status,
        Status::Fail,
        "{text}"
    );
    for name in ["ws.json", "ws.schema", "ws.seq", "ws.ts"] {
        let c = silent.check(name).unwrap();
        assert_eq!(c.status, Status::Skip, "{name}: {text}");
        assert!(c.detail.contains("no frames arrived"), "{name}: {text}");
    }
    assert_eq!(
        silent.check("ws.heartbeat").unwrap().status,
        Status::Fail,
        "{text}"
    );

    // A stream closed at once: the heartbeat check cannot pass.
    let closed = smoke_against(Stream::CloseAtOnce, timeout).await;
    let text = listing(&closed);
    let heartbeat = closed.check("ws.heartbeat").unwrap();
    assert_eq!(heartbeat.status, Status::Fail, "{text}");
    assert!(heartbeat.violations[0].actual.contains("1011"), "{text}");

    // A flood that never answers pings: ws.ping fails, and no check outlasts --timeout.
    let flood = smoke_against(Stream::Flood, timeout).await;
    let text = listing(&flood);
    assert_eq!(
        flood.check("ws.ping").unwrap().status,
        Status::Fail,
        "{text}"
    );
    for c in &flood.checks {
        assert!(
            c.duration_ms <= timeout.as_secs_f64() * 1000.0 + 50.0,
            "{} took {} ms with --timeout 3s:\n{text}",
            c.name,
            c.duration_ms
        );
    }
    assert!(flood.duration_s < timeout.as_secs_f64() + 2.0, "{text}");
}

/// issue 10: text from a peer (frames, bodies, files) never reaches the terminal raw.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_characters_from_a_peer_are_escaped_in_everything_printed() {
    let addr = foreign::start(Foreign {
        stream: Stream::ControlBytes,
        ..Foreign::default()
    })
    .await;
    let http = format!("http://{addr}");
    let (_, out, err) = run(&[
        "smoke",
        "--url",
        &http,
        "--game",
        GAME,
        "--checks",
        "ws.*",
        "--timeout",
        "3s",
        "--heartbeat",
        "300ms",
    ])
    .await;
    assert!(out.contains("\\u{1b}"), "the escape is shown: {out}");
    assert!(
        !out.contains('\u{1b}') && !err.contains('\u{1b}'),
        "{out:?}"
    );
    assert!(!out.contains('\u{7}'), "{out:?}");

    let dir = tempdir("control");
    let garbage = dir.join("garbage.jsonl");
    std::fs::write(
        &garbage,
        "\u{1b}[2J\u{1b}]0;title\u{7}\n{\"type\":\"\u{1b}[31m\"}\n",
    )
    .unwrap();
    let (code, out, err) = run(&["contract", "validate", garbage.to_str().unwrap()]).await;
    assert_eq!(code, Some(1));
    assert!(
        !out.contains('\u{1b}') && !err.contains('\u{1b}'),
        "{out:?}"
    );
    assert!(out.contains("\\u{1b}"), "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// issue 10: a 1 GiB element of a JSON array is one size violation, read in bounded
/// memory, and the frames after it are still checked.
#[test]
fn contract_validate_reads_a_1_gib_array_element_in_bounded_memory() {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_livegames"))
        .args(["contract", "validate", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = watch_peak_rss(child.id(), done.clone());
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let good = br#"{"type":"heartbeat","game_id":"g","seq":1,"ts":1763900000000000}"#;
        stdin.write_all(b"[").unwrap();
        stdin.write_all(good).unwrap();
        stdin.write_all(br#",{"type":"heartbeat","pad":""#).unwrap();
        let chunk = vec![b'z'; 1 << 20];
        for _ in 0..1024 {
            stdin.write_all(&chunk).unwrap();
        }
        stdin.write_all(br#""},"#).unwrap();
        stdin.write_all(good).unwrap();
        stdin.write_all(b"]").unwrap();
    });
    writer.join().unwrap();
    let out = child.wait_with_output().unwrap();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let peak_mib = watcher.join().unwrap() / 1024;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("INVALID: 3 frames, 2 valid, 1 violations"),
        "{text}"
    );
    assert!(text.contains("FAIL size frame 2"), "{text}");
    assert!(peak_mib > 0, "the watcher saw the process");
    assert!(peak_mib < 100, "peak RSS {peak_mib} MiB");
}
