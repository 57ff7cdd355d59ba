//! issue 10: `load`, `smoke` and `contract record` against servers that are not ours,
//! through the binary as a user runs it.

use std::process::Command;

use crate::support::foreign::{self, Foreign, GAME, TestPki};

fn livegames(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_livegames"))
        .args(args)
        .output()
        .expect("the binary runs")
}

/// Runs the binary without blocking the runtime that serves the test's server.
async fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
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
    let dir_arg = dir.to_str().unwrap();
    let base = [
        "load",
        &url,
        "--conns",
        "3",
        "--duration",
        "2s",
        "--ramp",
        "0s",
        "--quiet",
        "--report",
        dir_arg,
    ];

    // Without the token discovery is refused, and said so.
    let (code, _, err) = run(&base).await;
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("401"), "{err}");

    // With the token but no subprotocol, every upgrade is refused.
    let (code, out, err) = run(&[&base[..], &["-H", auth]].concat()).await;
    assert_eq!(code, Some(3), "{out}{err}");
    assert_eq!(
        report(&dir)["totals"]["errors"]["handshake_400"],
        3,
        "{out}"
    );

    // With both, frames flow and the report names the subprotocol.
    let (code, out, err) = run(&[
        &base[..],
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
    ]
    .concat())
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
    let pki = TestPki::new("load");
    let addr = foreign::start(Foreign {
        tls: Some(pki.server.clone()),
        ..Foreign::default()
    })
    .await;
    let stream = format!("wss://localhost:{}/ws/live/{GAME}", addr.port());
    let dir = report_dir("tls");
    let dir_arg = dir.to_str().unwrap();
    let base = [
        "load",
        &stream,
        "--conns",
        "2",
        "--duration",
        "1s",
        "--ramp",
        "0s",
        "--quiet",
        "--report",
        dir_arg,
    ];

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
    let (code, out, err) = run(&[&base[..], &["--cacert", ca]].concat()).await;
    assert_eq!(code, Some(0), "{out}{err}");
    let json = report(&dir);
    assert_eq!(json["totals"]["connected"], 2);
    assert_eq!(json["tls_verified"], true);

    // The certificate names localhost only: 127.0.0.1 is a name mismatch.
    let by_ip = format!("wss://127.0.0.1:{}/ws/live/{GAME}", addr.port());
    let (code, out, _) = run(&[
        "load",
        &by_ip,
        "--conns",
        "1",
        "--duration",
        "1s",
        "--quiet",
        "--cacert",
        ca,
        "--report",
        dir_arg,
    ])
    .await;
    assert_eq!(code, Some(3), "{out}");
    assert_eq!(
        report(&dir)["totals"]["errors"]["tls_name_mismatch"],
        1,
        "{out}"
    );

    // --insecure verifies nothing, and says so on the terminal and in the report.
    let (code, out, err) = run(&[&base[..], &["--insecure"]].concat()).await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(err.contains("--insecure"), "{err}");
    assert_eq!(report(&dir)["tls_verified"], false);

    // Discovery and smoke's REST requests use the same trust.
    let host = format!("wss://localhost:{}", addr.port());
    let (code, _, err) = run(&[
        "load",
        &host,
        "--conns",
        "1",
        "--duration",
        "1s",
        "--quiet",
        "--report",
        dir_arg,
    ])
    .await;
    assert_eq!(code, Some(3));
    assert!(err.contains("unknown issuer"), "{err}");
    let (code, _, err) = run(&[
        "load",
        &host,
        "--conns",
        "1",
        "--duration",
        "1s",
        "--quiet",
        "--cacert",
        ca,
        "--report",
        dir_arg,
    ])
    .await;
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
