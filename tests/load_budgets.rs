use std::process::Command;

fn load(args: &[&str]) -> (Option<i32>, String, String) {
    let report = std::env::temp_dir().join(format!(
        "livegames-test-{}-{}",
        std::process::id(),
        args.join("_").replace(['/', '<', '>', '=', '%', ':'], "")
    ));
    let out = Command::new(env!("CARGO_BIN_EXE_livegames"))
        .arg("load")
        .args(args)
        .args(["--quiet", "--report", report.to_str().unwrap()])
        .output()
        .expect("the binary runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn budgets_that_hold_exit_0_and_write_a_versioned_report() {
    let report = std::env::temp_dir().join(format!("livegames-report-{}", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_livegames"))
        .args([
            "load",
            "--conns",
            "5",
            "--duration",
            "2s",
            "--ramp",
            "0s",
            "--budget",
            "p99<10s",
            "--budget",
            "conns>=5",
            "--budget",
            "lost=0",
            "--quiet",
            "--report",
        ])
        .arg(&report)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("budget PASS p99<10s"), "{stdout}");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(report.join("report.json")).unwrap()).unwrap();
    assert!(json["version"].is_string());
    assert_eq!(json["totals"]["connected"], 5);
    assert_eq!(json["budgets"].as_array().unwrap().len(), 3);
    let junit = std::fs::read_to_string(report.join("junit.xml")).unwrap();
    assert!(
        // Three run checks (connections, frames, stayed) and the three budgets.
        junit.contains(r#"tests="6" failures="0""#) && junit.contains(r#"name="p99&lt;10s""#),
        "{junit}"
    );
    let html = std::fs::read_to_string(report.join("report.html")).unwrap();
    assert!(html.contains("<svg") && html.contains("all budgets met"));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "the HTML report needs no network"
    );
    let hlog = std::fs::read(report.join("latency.hlog")).unwrap();
    let intervals = livegames::load::measure::hdrlog::read(&hlog).unwrap();
    let delivered: u64 = intervals
        .iter()
        .filter(|i| i.tag == "delivery")
        .map(|i| i.histogram.len())
        .sum();
    assert_eq!(
        delivered,
        json["latency"]["delivery"]["count"].as_u64().unwrap(),
        "the log holds every sample"
    );
}

#[test]
fn runs_merge_into_one_report_with_exact_counts() {
    let base = std::env::temp_dir().join(format!("livegames-merge-{}", std::process::id()));
    let (a, b, merged) = (base.join("a"), base.join("b"), base.join("merged"));
    for (dir, conns) in [(&a, "3"), (&b, "4")] {
        let out = Command::new(env!("CARGO_BIN_EXE_livegames"))
            .args([
                "load",
                "--conns",
                conns,
                "--duration",
                "2s",
                "--ramp",
                "0s",
                "--quiet",
                "--report",
            ])
            .arg(dir)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = Command::new(env!("CARGO_BIN_EXE_livegames"))
        .args(["report", "merge"])
        .args([&a, &b])
        .arg("--report")
        .arg(&merged)
        .args(["--budget", "conns>=7"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read = |d: &std::path::Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(d.join("report.json")).unwrap()).unwrap()
    };
    let (ra, rb, rm) = (read(&a), read(&b), read(&merged));
    let sum = |k: &str| ra["totals"][k].as_u64().unwrap() + rb["totals"][k].as_u64().unwrap();
    assert_eq!(rm["totals"]["frames"].as_u64().unwrap(), sum("frames"));
    assert_eq!(rm["totals"]["connected"].as_u64().unwrap(), 7);
    let count = |r: &serde_json::Value| r["latency"]["delivery"]["count"].as_u64().unwrap();
    assert_eq!(
        count(&rm),
        count(&ra) + count(&rb),
        "merged histograms hold every sample"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_livegames"))
        .args(["report", "merge"])
        .arg(&a)
        .arg("--report")
        .arg(&merged)
        .args(["--budget", "conns>=100"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let out = Command::new(env!("CARGO_BIN_EXE_livegames"))
        .args(["report", "merge"])
        .arg(&base)
        .arg("--report")
        .arg(&merged)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("report.json"));
}

#[test]
fn a_budget_that_fails_exits_1_with_measured_and_limit() {
    let (code, stdout, _) = load(&["--conns", "3", "--duration", "2s", "--budget", "p50<1us"]);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains("budget FAIL p50<1us: measured"), "{stdout}");
}

#[test]
fn bad_budget_syntax_exits_2_saying_what_was_expected() {
    let (code, _, stderr) = load(&["--budget", "p99<<fast"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("p99<<fast"), "{stderr}");
    let (code, _, stderr) = load(&["--budget", "latency<1s"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("unknown metric"), "{stderr}");
}

#[test]
fn an_unreachable_target_exits_3() {
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    // The port is closed again: nothing listens there.
    let (code, _, stderr) = load(&[
        "ws://ADDR/ws/live/x"
            .replace("ADDR", &free.to_string())
            .as_str(),
        "--conns",
        "2",
        "--duration",
        "1s",
    ]);
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("refused"), "{stderr}");
}

/// Writes `toml` as a scenario file and runs it; returns the output and the report directory.
fn run_scenario(name: &str, toml: &str) -> (std::process::Output, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("livegames-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{name}.toml"));
    std::fs::write(&file, toml).unwrap();
    let report = dir.join("report");
    let out = Command::new(env!("CARGO_BIN_EXE_livegames"))
        .args(["load", "--quiet", "--scenario"])
        .arg(&file)
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    (out, report)
}

#[test]
fn a_scenario_runs_its_stages_with_per_stage_reports() {
    let (out, report) = run_scenario(
        "scenario",
        "budgets = [\"lost=0\"]\n[[stages]]\nname = \"small\"\nconns = 2\nduration = \"1s\"\nramp = \"0s\"\n[[stages]]\nname = \"bigger\"\nconns = 4\nduration = \"1s\"\nramp = \"0s\"\nbudgets = [\"conns>=4\"]\n",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("== stage 1/2: small") && stdout.contains("== stage 2/2: bigger"),
        "{stdout}"
    );
    let scenario: serde_json::Value =
        serde_json::from_slice(&std::fs::read(report.join("scenario.json")).unwrap()).unwrap();
    assert_eq!(scenario["stages"].as_array().unwrap().len(), 2);
    assert_eq!(
        scenario["stages"][1]["budgets"].as_array().unwrap().len(),
        2,
        "scenario-wide and stage budgets"
    );
    assert!(
        report.join("01-small/report.json").exists()
            && report.join("02-bigger/report.html").exists()
    );
}

#[test]
fn a_malformed_scenario_exits_2_with_the_line_and_what_was_expected() {
    let file = std::env::temp_dir().join(format!("livegames-bad-{}.toml", std::process::id()));
    std::fs::write(&file, "[[stages]]\nconns = 10\nduration = \"forever\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_livegames"))
        .args(["load", "--scenario"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 3") && err.contains("duration like"),
        "{err}"
    );
}

#[test]
fn ctrl_c_stops_the_run_and_still_writes_the_report() {
    use std::io::{BufRead, BufReader};
    let report = std::env::temp_dir().join(format!("livegames-sigint-{}", std::process::id()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_livegames"))
        .args([
            "load",
            "--conns",
            "3",
            "--duration",
            "60s",
            "--ramp",
            "0s",
            "--report",
        ])
        .arg(&report)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Ctrl-C once the run says every connection is open (issue 12: not before).
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("all 3 connections open") {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "the run ended before its connections were open"
        );
    }
    let started = std::time::Instant::now();
    assert!(
        Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let status = child.wait().unwrap();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "Ctrl-C must stop a 60 s run promptly"
    );
    assert_eq!(
        status.code(),
        Some(0),
        "no budgets: stopping early is not a failure"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(report.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["stopped_early"], true);
    assert_eq!(json["totals"]["connected"], 3);
}

#[test]
fn a_scenario_can_mix_http_and_websocket_stages() {
    let (out, report) = run_scenario(
        "mixed",
        "[[stages]]\nname = \"rest\"\nhttp = true\npaths = [\"/api/live/games\"]\nconns = 2\nduration = \"1s\"\nramp = \"0s\"\nbudgets = [\"http_p99<5s\", \"errors<1%\"]\n[[stages]]\nname = \"ws\"\nconns = 2\nduration = \"1s\"\nramp = \"0s\"\n",
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let rest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(report.join("01-rest/report.json")).unwrap())
            .unwrap();
    assert!(rest["http"]["requests"].as_u64().unwrap() > 0, "{rest}");
    assert!(rest["latency"]["http"]["count"].as_u64().unwrap() > 0);
    let ws: serde_json::Value =
        serde_json::from_slice(&std::fs::read(report.join("02-ws/report.json")).unwrap()).unwrap();
    assert_eq!(ws["totals"]["connected"], 2);
}

#[test]
fn quiet_means_nothing_on_stderr_unless_the_run_fails() {
    let run = |budget: &str| {
        let report = std::env::temp_dir().join(format!(
            "livegames-quiet-{}-{}",
            std::process::id(),
            budget.len()
        ));
        Command::new(env!("CARGO_BIN_EXE_livegames"))
            .args(["load", "--conns", "2", "--duration", "1s", "--ramp", "0s"])
            .args(["--budget", budget, "--quiet", "--json", "--report"])
            .arg(&report)
            .output()
            .unwrap()
    };
    let passed = run("conns>=2");
    assert_eq!(passed.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&passed.stderr),
        "",
        "quiet and green"
    );
    let json: serde_json::Value = serde_json::from_slice(&passed.stdout).unwrap();
    assert!(json["checks"].is_array());
    let failed = run("conns>=200");
    assert_eq!(failed.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&failed.stderr).contains("report: "),
        "a failed run says where its report is"
    );
}

#[test]
fn templates_share_placeholders_and_an_unknown_one_is_refused() {
    let (code, _, stderr) = load(&["--subscribe", r#"{"op":"sub","who":"{username}"}"#]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("--subscribe: unknown placeholder {username}: the placeholders are {id}, {game_id}, {since}, {user}, {shard}, {now_ms}"),
        "{stderr}"
    );
    let file = std::env::temp_dir().join(format!("lg-template-{}.json", std::process::id()));
    std::fs::write(&file, r#"{"type":"ping","id":{id},"game":"{gameid}"}"#).unwrap();
    let (code, _, stderr) = load(&[
        "--send-template",
        file.to_str().unwrap(),
        "--send-rate",
        "1",
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("unknown placeholder {gameid}"), "{stderr}");
}

/// Every handshake says who calls, unless -H says otherwise.
#[test]
fn the_handshake_carries_a_user_agent_unless_one_is_given() {
    use std::io::{Read, Write};
    let heads = |extra: &[&str]| {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("ws://{}/ws/live/1", listener.local_addr().unwrap());
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut head = vec![0u8; 4096];
            let n = stream.read(&mut head).unwrap();
            let _ =
                stream.write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n");
            String::from_utf8_lossy(&head[..n]).to_lowercase()
        });
        let mut args = vec![url.as_str(), "--conns", "1", "--duration", "1s"];
        args.extend_from_slice(extra);
        let _ = load(&args);
        server.join().unwrap()
    };
    let head = heads(&[]);
    assert!(
        head.contains(&format!(
            "user-agent: livegames/{}",
            env!("CARGO_PKG_VERSION")
        )),
        "{head}"
    );
    let head = heads(&["-H", "User-Agent: probe/2"]);
    assert!(head.contains("user-agent: probe/2"), "{head}");
    assert_eq!(head.matches("user-agent").count(), 1, "{head}");
}

#[test]
fn sse_refuses_what_needs_a_way_back_to_the_server() {
    for flag in [
        &["--send-rate", "1"][..],
        &["--subscribe", "{}"],
        &["--subprotocol", "x"],
    ] {
        let mut args = vec!["--protocol", "sse"];
        args.extend_from_slice(flag);
        let (code, _, stderr) = load(&args);
        assert_eq!(code, Some(2), "{flag:?}: {stderr}");
        assert!(
            stderr.contains(&format!("{} needs a WebSocket", flag[0])),
            "{stderr}"
        );
    }
}
