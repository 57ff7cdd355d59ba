//! `livegames serve` as a process: signals with its log output gone, a paused process.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

/// Where the server's stderr goes.
#[derive(Debug, Clone, Copy)]
enum Stderr {
    /// `2>/dev/full`: every write fails with ENOSPC.
    Full,
    /// `2>&-`: started without a stderr.
    Closed,
    /// `2>&1 | head -1`: a pipe whose reader exits after the first line.
    ReaderGone,
    /// Kept, to read.
    Piped,
}

struct ServeProcess {
    child: Child,
    addr: String,
}

/// How to start the server process.
struct Launch<'a> {
    stderr: Stderr,
    extra: &'a [&'a str],
    /// RLIMIT_NOFILE (soft and hard) for the server.
    open_files: Option<u64>,
}

impl<'a> Launch<'a> {
    fn with_open_files(mut self, files: u64) -> Self {
        self.open_files = Some(files);
        self
    }
}

impl<'a> std::future::IntoFuture for Launch<'a> {
    type Output = ServeProcess;
    type IntoFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ServeProcess> + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(ServeProcess::launch(self))
    }
}

impl ServeProcess {
    fn start<'a>(stderr: Stderr, extra: &'a [&'a str]) -> Launch<'a> {
        Launch {
            stderr,
            extra,
            open_files: None,
        }
    }

    /// Starts the binary on a free port and waits until `/health` answers.
    async fn launch(launch: Launch<'_>) -> Self {
        let Launch {
            stderr,
            extra,
            open_files,
        } = launch;
        // The port is picked here because a server without a stderr cannot say
        // which one it took; a port taken in between shows as exit 1 and is retried.
        for _ in 0..5 {
            let addr = free_addr();
            let mut command = Command::new(env!("CARGO_BIN_EXE_livegames"));
            command
                .args(["serve", "--addr", &addr, "--speed", "60"])
                .args(extra)
                .stdout(Stdio::null());
            if let Some(files) = open_files {
                // SAFETY: only an async-signal-safe setrlimit(2) between fork and exec.
                unsafe {
                    command.pre_exec(move || {
                        let limit = libc::rlimit {
                            rlim_cur: files as libc::rlim_t,
                            rlim_max: files as libc::rlim_t,
                        };
                        if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                        Ok(())
                    });
                }
            }
            match stderr {
                Stderr::Full => {
                    command.stderr(std::fs::File::create("/dev/full").unwrap());
                }
                Stderr::Closed => unsafe {
                    // SAFETY: only an async-signal-safe close(2) between fork and exec.
                    command.pre_exec(|| {
                        libc::close(2);
                        Ok(())
                    });
                },
                Stderr::ReaderGone | Stderr::Piped => {
                    command.stderr(Stdio::piped());
                }
            }
            let mut child = command.spawn().expect("the binary starts");
            if let Stderr::ReaderGone = stderr {
                let mut first = String::new();
                let mut reader = BufReader::new(child.stderr.take().unwrap());
                reader.read_line(&mut first).unwrap();
                assert!(!first.is_empty(), "the server logs a first line");
                // `head -1` exits: the read end closes, later writes get EPIPE.
            }
            let mut server = ServeProcess { child, addr };
            if server.answers().await {
                return server;
            }
            let _ = server.child.kill();
            let _ = server.child.wait();
        }
        panic!("the server did not start on any of five free ports");
    }

    /// Waits until `/health` answers; false if the process exited first.
    async fn answers(&mut self) -> bool {
        let url = format!("http://{}/health", self.addr);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.child.try_wait().unwrap().is_some() {
                return false;
            }
            let reply = reqwest::Client::new()
                .get(&url)
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if reply.is_ok() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("/health did not answer within 20 s");
    }

    async fn client(&self, game: &str) -> Client {
        let url = format!("ws://{}/ws/live/{game}", self.addr);
        let (ws, _) = tokio::time::timeout(
            Duration::from_secs(10),
            tokio_tungstenite::connect_async(url),
        )
        .await
        .expect("connect in time")
        .expect("handshake");
        Client::new(ws)
    }

    fn signal(&self, name: &str) {
        let sent = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -{name}");
    }

    async fn exit_code(mut self) -> Option<i32> {
        let status = wait_for("the server to exit", || {
            let exited = self.child.try_wait().unwrap();
            async move { exited }
        })
        .await;
        status.code()
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

const GAME: &str = "0022400196";

/// The server logs while its stderr is broken (a connection, a 404, the shutdown),
/// and still stops on the signal with close 1001 for its clients and exit 0.
async fn stops_on_signal_with_stderr(stderr: Stderr, log_format: &str, signal: &str) {
    let server = ServeProcess::start(stderr, &["--log-format", log_format]).await;
    let mut client = server.client(GAME).await;
    assert_eq!(client.next_frame().await.kind, "snapshot");
    let missing = reqwest::get(format!("http://{}/no/such/page", server.addr))
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    server.signal(signal);
    assert_eq!(
        client.closed().await.map(|c| c.0),
        Some(1001),
        "{stderr:?}, {log_format} logs, SIG{signal}"
    );
    assert_eq!(
        server.exit_code().await,
        Some(0),
        "{stderr:?}, {log_format} logs, SIG{signal}"
    );
}

#[tokio::test]
async fn sigterm_works_with_stderr_full() {
    stops_on_signal_with_stderr(Stderr::Full, "text", "TERM").await;
}

#[tokio::test]
async fn ctrl_c_works_with_stderr_closed() {
    stops_on_signal_with_stderr(Stderr::Closed, "text", "INT").await;
}

#[tokio::test]
async fn sigterm_works_with_the_log_reader_gone() {
    stops_on_signal_with_stderr(Stderr::ReaderGone, "json", "TERM").await;
    stops_on_signal_with_stderr(Stderr::ReaderGone, "text", "INT").await;
}

/// `kill -STOP` for longer than `--down-after`, then `-CONT`: the sources did not go
/// silent, the process did; no status frame may call them stale or down.
#[tokio::test]
async fn a_paused_process_does_not_find_its_sources_down() {
    let server = ServeProcess::start(
        Stderr::Piped,
        &[
            "--stale-after",
            "1s",
            "--down-after",
            "2s",
            "--espn-poll",
            "200ms",
            // A quiet market: Kalshi's health rests on pings and silence timers,
            // which fire the moment the process runs again.
            "--rate",
            "0.2",
        ],
    )
    .await;
    let mut client = server.client(GAME).await;
    // Healthy first: a frame that says every stream source is ok.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(Instant::now() < deadline, "the sources never became ok");
        let f = client.next_frame().await;
        let sources = f.value.get("sources").or(f.value["data"].get("sources"));
        if sources.is_some_and(|s| s["espn"] == "ok" && s["kalshi"] == "ok") {
            break;
        }
    }
    server.signal("STOP");
    // The scenario itself: a pause longer than --down-after.
    std::thread::sleep(Duration::from_secs(3));
    server.signal("CONT");
    let watch_until = Instant::now() + Duration::from_secs(2);
    let mut seen = 0;
    while let Ok(f) = tokio::time::timeout_at(watch_until.into(), client.next_frame()).await {
        seen += 1;
        let sources = f.value.get("sources").or(f.value["data"].get("sources"));
        if let Some(sources) = sources {
            assert!(
                sources["espn"] == "ok" && sources["kalshi"] == "ok",
                "after the pause: {}",
                f.value
            );
        }
    }
    assert!(seen > 0, "frames flow after the pause");
}

/// issue 11: 600 header-trickling connections against a server allowed 512 files:
/// `/health` still answers within seconds, and says the sources are healthy (the
/// feeds reach the mock upstreams on a listener of their own).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tricklers_beyond_the_file_limit_do_not_lock_out_health() {
    use tokio::io::AsyncWriteExt;
    const TRICKLERS: usize = 600;
    const FILES: u64 = 512;
    // This test's own side needs the 600 sockets too.
    livegames::fdlimit::raise_open_files(4 * TRICKLERS as u64);
    let server = ServeProcess::start(Stderr::Piped, &[])
        .with_open_files(FILES)
        .await;
    let stop = tokio_util::sync::CancellationToken::new();
    let mut tricklers = tokio::task::JoinSet::new();
    for _ in 0..TRICKLERS {
        let (addr, stop) = (server.addr.clone(), stop.clone());
        tricklers.spawn(async move {
            let Ok(mut tcp) = tokio::net::TcpStream::connect(&addr).await else {
                return;
            };
            if tcp
                .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .await
                .is_err()
            {
                return;
            }
            // One byte a second: never a complete head.
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                if tcp.write_all(b"a").await.is_err() {
                    return;
                }
            }
        });
    }
    let mut slowest = Duration::ZERO;
    for _ in 0..5 {
        // The scenario: the crowd stays while /health is asked once a second.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let asked = Instant::now();
        let reply = reqwest::Client::new()
            .get(format!("http://{}/health", server.addr))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .expect("/health answers despite the tricklers");
        let took = asked.elapsed();
        slowest = slowest.max(took);
        assert_eq!(reply.status(), 200);
        let body: serde_json::Value = reply.json().await.unwrap();
        assert_eq!(body["status"], "healthy", "{body}");
        assert!(took < Duration::from_secs(3), "/health took {took:?}");
    }
    stop.cancel();
    while tricklers.join_next().await.is_some() {}
    eprintln!("{TRICKLERS} tricklers vs {FILES} files: slowest /health {slowest:?}");
}
