//! The image, run: deploy/Dockerfile's runtime stage built around the binary these
//! tests were built with (`deploy/image.sh runtime`), started with podman on the host's
//! network: it runs as uid 10001 on a read-only root, answers /health and streams a
//! WebSocket to a client outside, its HEALTHCHECK is in the image and passes on the
//! port `LIVEGAMES_ADDR` names (and fails where nothing serves), and SIGTERM stops it
//! within the grace with exit 0. Needs podman and the base image
//! (`bash deploy/image.sh base`): skipped without them, failed where tools are
//! required (CI).

use std::path::Path;
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::support::tools::{Need, env_flag, proceed};
use crate::support::*;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// podman with the project's settings (unless CONTAINERS_CONF names others).
fn podman() -> Command {
    let mut command = Command::new("podman");
    if std::env::var_os("CONTAINERS_CONF").is_none() {
        command.env(
            "CONTAINERS_CONF",
            root().join("deploy/podman/containers.conf"),
        );
    }
    command
}

fn run(command: &mut Command) -> Output {
    command.output().expect("podman runs")
}

/// The image tag, built once per test run; None when podman or the base image is
/// missing (skipped, or failed where tools are required).
fn image() -> Option<&'static str> {
    static BUILT: OnceLock<Option<&'static str>> = OnceLock::new();
    *BUILT.get_or_init(|| {
        let has_podman = Command::new("podman").arg("--version").output().is_ok();
        let has_base = has_podman
            && run(podman().args(["image", "exists", "docker.io/library/debian:bookworm-slim"]))
                .status
                .success();
        let need = match (has_podman && has_base, env_flag("LIVEGAMES_REQUIRE_TOOLS")) {
            (true, _) => Need::Run,
            (false, true) => Need::Fail(
                "the container tests need podman and its base image (LIVEGAMES_REQUIRE_TOOLS=1): apt-get install podman runc mmdebstrap; bash deploy/image.sh base".into(),
            ),
            (false, false) => Need::Skip(
                "SKIPPED: the container tests: apt-get install podman runc mmdebstrap; bash deploy/image.sh base".into(),
            ),
        };
        if !proceed(need) {
            return None;
        }
        let tag = "localhost/livegames:test";
        let out = run(Command::new("bash")
            .arg(root().join("deploy/image.sh"))
            .args(["runtime", env!("CARGO_BIN_EXE_livegames"), tag]));
        assert!(out.status.success(), "deploy/image.sh runtime: {}", printed(&out));
        Some(tag)
    })
}

/// A container started for one test, removed when dropped.
struct Container {
    name: String,
}

impl Container {
    fn start(image: &str, args: &[&str], command: &[&str]) -> Container {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let name = format!(
            "livegames-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let out = run(podman()
            .args([
                "run",
                "-d",
                "--name",
                &name,
                "--network=host",
                "--read-only",
            ])
            .args(args)
            .arg(image)
            .args(command));
        assert!(out.status.success(), "podman run: {}", printed(&out));
        Container { name }
    }

    fn exec(&self, command: &[&str]) -> Output {
        run(podman().args(["exec", &self.name]).args(command))
    }

    fn healthcheck(&self) -> bool {
        run(podman().args(["healthcheck", "run", &self.name]))
            .status
            .success()
    }

    fn inspect(&self, format: &str) -> String {
        let out = run(podman().args(["inspect", "--format", format, &self.name]));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = run(podman().args(["rm", "-f", "-t", "0", &self.name]));
    }
}

/// Waits (with the harness's deadline) until the container says it is healthy.
async fn wait_healthy(port: u16) -> serde_json::Value {
    let url = format!("http://127.0.0.1:{port}/health");
    wait_for("the container's /health to say healthy", || async {
        let response = reqwest::get(&url).await.ok()?;
        let body = response.json::<serde_json::Value>().await.ok()?;
        (body["status"] == "healthy").then_some(body)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_image_runs_as_deployed_and_stops_on_sigterm() {
    let Some(image) = image() else {
        return;
    };
    let port = free_port();
    // Every address, as the image's default: what serve advertises must still work.
    let addr = format!("LIVEGAMES_ADDR=0.0.0.0:{port}");
    let container = Container::start(image, &["-e", &addr], &[]);
    wait_healthy(port).await;

    let uid = container.exec(&["id", "-u"]);
    assert_eq!(String::from_utf8_lossy(&uid.stdout).trim(), "10001");
    let write = container.exec(&["sh", "-c", "touch /probe"]);
    assert!(!write.status.success(), "the root is read-only");
    assert!(
        printed(&write).contains("Read-only file system"),
        "{}",
        printed(&write)
    );

    // A client outside the container streams a game, from the URL serve advertises.
    let list: serde_json::Value = reqwest::get(format!("http://127.0.0.1:{port}/api/live/games"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ws_url = list["games"][0]["ws_url"].as_str().unwrap().to_owned();
    assert!(
        ws_url.starts_with(&format!("ws://127.0.0.1:{port}/")),
        "{ws_url}"
    );
    let (ws, _) = tokio_tungstenite::connect_async(ws_url.as_str())
        .await
        .unwrap();
    let mut client = Client::new(ws);
    assert_eq!(client.next_frame().await.kind, "snapshot");

    // The HEALTHCHECK survived the build and passes on this (non-default) port.
    assert!(
        container
            .inspect("{{.Config.Healthcheck.Test}}")
            .contains("LIVEGAMES_ADDR"),
        "the image keeps its HEALTHCHECK"
    );
    assert!(container.healthcheck(), "healthy on port {port}");

    // SIGTERM: the client gets 1001 and the container exits 0, well within the grace.
    let started = Instant::now();
    let stop = tokio::task::spawn_blocking({
        let name = container.name.clone();
        move || run(podman().args(["stop", "-t", "10", &name]))
    });
    let (code, _) = client.closed().await.expect("a close frame");
    assert_eq!(code, 1001);
    let out = stop.await.unwrap();
    assert!(out.status.success(), "podman stop: {}", printed(&out));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(container.inspect("{{.State.ExitCode}}"), "0");
}

/// Where nothing serves on `LIVEGAMES_ADDR`'s port, the same HEALTHCHECK fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_healthcheck_fails_where_nothing_serves() {
    let Some(image) = image() else {
        return;
    };
    let nothing = format!("LIVEGAMES_ADDR=127.0.0.1:{}", closed_addr().port());
    let container = Container::start(image, &["-e", &nothing, "--entrypoint", "sleep"], &["60"]);
    assert!(!container.healthcheck(), "unhealthy: nothing serves there");
}
