//! The alerting in deploy/: the rules pass promtool's checks and unit tests, the
//! Alertmanager config passes amtool, and an alert really travels from a real `serve`
//! through Debian's Prometheus and Alertmanager to a webhook.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::routing::post;
use serde_json::Value;

use crate::support::tools::tool;
use crate::support::*;

fn deploy(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(path)
}

/// Runs `program args`, asserting it succeeds; returns what it printed.
#[track_caller]
fn run_ok(program: &Path, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .expect("the tool runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{} {args:?}:\n{text}",
        program.display()
    );
    text
}

#[test]
fn the_alert_rules_pass_promtool_and_their_unit_tests() {
    let Some(promtool) = tool("promtool", "prometheus") else {
        return;
    };
    let rules = deploy("prometheus/alerts.yml");
    let checked = run_ok(&promtool, &["check", "rules", rules.to_str().unwrap()]);
    assert!(checked.contains("SUCCESS: 10 rules found"), "{checked}");
    let tests = deploy("prometheus/alerts.test.yml");
    let tested = run_ok(&promtool, &["test", "rules", tests.to_str().unwrap()]);
    assert!(tested.contains("SUCCESS"), "{tested}");
    let config = deploy("prometheus/prometheus.yml");
    run_ok(&promtool, &["check", "config", config.to_str().unwrap()]);
    // Every alert has a unit test and a runbook section.
    let rules_text = std::fs::read_to_string(&rules).unwrap();
    let tests_text = std::fs::read_to_string(&tests).unwrap();
    let runbook =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("RUNBOOK.md")).unwrap();
    for name in rules_text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
    {
        assert!(
            tests_text.contains(&format!("alertname: {name}")),
            "{name} has no test in alerts.test.yml"
        );
        let anchor = format!("alert-{}", name.to_lowercase());
        assert!(
            rules_text.contains(&format!("RUNBOOK.md#{anchor}")),
            "{name} links its runbook"
        );
        assert!(
            runbook.contains(&format!("### Alert: {name}\n")),
            "RUNBOOK.md has a section ### Alert: {name} (#{anchor})"
        );
    }
}

#[test]
fn the_alertmanager_config_passes_amtool() {
    let Some(amtool) = tool("amtool", "prometheus-alertmanager") else {
        return;
    };
    let config = deploy("alertmanager/alertmanager.yml");
    let checked = run_ok(&amtool, &["check-config", config.to_str().unwrap()]);
    assert!(checked.contains("2 receivers"), "{checked}");
}

/// A child process killed when the test ends, however it ends.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What the webhook receiver was sent.
type Received = Arc<Mutex<Vec<Value>>>;

async fn webhook() -> (String, Received) {
    let received: Received = Arc::default();
    let app = axum::Router::new()
        .route(
            "/hook",
            post(
                |State(r): State<Received>, body: axum::Json<Value>| async move {
                    r.lock().unwrap().push(body.0);
                    "ok"
                },
            ),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook"), received)
}

/// The deployed rules with every `for:` cut to 0s, so the test does not wait minutes
/// for what the expressions already say.
fn rules_without_waiting() -> String {
    std::fs::read_to_string(deploy("prometheus/alerts.yml"))
        .unwrap()
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("for: ") {
                let indent = &l[..l.len() - l.trim_start().len()];
                format!("{indent}for: 0s")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Starts `program` and waits until `ready_url` answers 200.
async fn daemon(program: &Path, args: &[String], ready_url: &str, log: &Path) -> Daemon {
    let child = Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("starts");
    let daemon = Daemon(child);
    wait_for("the daemon to be ready", || async {
        let r = reqwest::get(ready_url).await.ok()?;
        r.status().is_success().then_some(())
    })
    .await;
    daemon
}

/// issue 13, "test alert delivery": a real serve with its API-SPORTS circuit opened
/// and its InfluxDB gone; Prometheus scrapes it and evaluates deploy/'s rules;
/// Alertmanager delivers both alerts, with their runbook links, to a webhook.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_travel_from_serve_through_prometheus_and_alertmanager_to_a_webhook() {
    let (Some(prometheus), Some(alertmanager)) = (
        tool("prometheus", "prometheus"),
        tool("prometheus-alertmanager", "prometheus-alertmanager"),
    ) else {
        return;
    };
    let closed = closed_addr();
    let mut config = fast_config();
    config.apisports_url = Some(format!("http://{closed}/{{sport}}"));
    config.apisports_key = Some("test-key".into());
    config.influxdb =
        Some(livegames::influx::parse(&format!("http://{closed}/db"), |_| None).unwrap());
    let server = start(config).await;
    let serve_addr = server.http_url().trim_start_matches("http://").to_owned();

    let dir = std::env::temp_dir().join(format!("livegames-alerting-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (hook, received) = webhook().await;
    let am_port = free_port();
    std::fs::write(
        dir.join("alertmanager.yml"),
        format!(
            "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\n\
             receivers:\n  - name: hook\n    webhook_configs:\n      - url: {hook}\n        send_resolved: false\n"
        ),
    )
    .unwrap();
    let _am = daemon(
        &alertmanager,
        &[
            format!("--config.file={}", dir.join("alertmanager.yml").display()),
            format!("--storage.path={}", dir.join("am-data").display()),
            format!("--web.listen-address=127.0.0.1:{am_port}"),
            "--cluster.listen-address=".into(),
        ],
        &format!("http://127.0.0.1:{am_port}/-/ready"),
        &dir.join("alertmanager.log"),
    )
    .await;
    std::fs::write(dir.join("alerts.yml"), rules_without_waiting()).unwrap();
    std::fs::write(
        dir.join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files: [alerts.yml]\n\
             alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:{am_port}']\n\
             scrape_configs:\n  - job_name: livegames\n    static_configs:\n      - targets: ['{serve_addr}']\n"
        ),
    )
    .unwrap();
    let prom_port = free_port();
    let _prom = daemon(
        &prometheus,
        &[
            format!("--config.file={}", dir.join("prometheus.yml").display()),
            format!("--storage.tsdb.path={}", dir.join("prom-data").display()),
            format!("--web.listen-address=127.0.0.1:{prom_port}"),
        ],
        &format!("http://127.0.0.1:{prom_port}/-/ready"),
        &dir.join("prometheus.log"),
    )
    .await;

    // The fault: API-SPORTS unreachable until the NFL circuit opens.
    for _ in 0..3 {
        let status = get(&format!("{}/api/nfl/scores", server.http_url()))
            .await
            .status();
        assert_eq!(status, 502);
    }
    assert_eq!(
        metric(&server, "livegames_circuit_state{league=\"nfl\"}").await,
        2.0
    );

    let delivered = |name: &'static str| {
        let received = received.clone();
        move || {
            let received = received.clone();
            async move {
                let bodies = received.lock().unwrap().clone();
                bodies.into_iter().find_map(|b| {
                    b["alerts"]
                        .as_array()?
                        .iter()
                        .find(|a| a["labels"]["alertname"] == name && a["status"] == "firing")
                        .cloned()
                })
            }
        }
    };
    let circuit = wait_for_long(
        "CircuitBreakerOpen at the webhook",
        delivered("CircuitBreakerOpen"),
    )
    .await;
    assert_eq!(circuit["labels"]["league"], "nfl", "{circuit}");
    assert_eq!(circuit["labels"]["job"], "livegames", "{circuit}");
    assert_eq!(
        circuit["annotations"]["runbook_url"],
        "RUNBOOK.md#alert-circuitbreakeropen"
    );
    let influx = wait_for_long(
        "InfluxDBWriteFailures at the webhook",
        delivered("InfluxDBWriteFailures"),
    )
    .await;
    assert!(
        influx["annotations"]["summary"]
            .as_str()
            .unwrap()
            .starts_with("InfluxDB writes failing on 127.0.0.1:"),
        "{influx}"
    );
    server.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Like `wait_for`, with room for a scrape, an evaluation and a delivery on a busy
/// machine.
async fn wait_for_long<T, F, Fut>(what: &'static str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
