//! Headless Chromium driven over the DevTools protocol (CDP) with the WebSocket client
//! we already have: no npm, no extra crates.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use super::DEADLINE;

type Cdp =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The Chromium to drive: `$CHROMIUM`, or Debian's package.
fn chromium() -> Option<PathBuf> {
    let candidates = [
        std::env::var("CHROMIUM").unwrap_or_default(),
        "/usr/bin/chromium".into(),
        "/usr/bin/chromium-browser".into(),
        "/usr/bin/google-chrome".into(),
    ];
    candidates
        .into_iter()
        .filter(|c| !c.is_empty())
        .map(PathBuf::from)
        .find(|p| p.exists())
}

pub struct Browser {
    child: Child,
    cdp: Cdp,
    session: String,
    next_id: u64,
    profile: PathBuf,
}

impl Browser {
    /// Starts headless Chromium with one blank tab; None when the browser tests are
    /// skipped (no Chromium, or LIVEGAMES_SKIP_BROWSER_TESTS=1), said once. With
    /// LIVEGAMES_REQUIRE_TOOLS=1 (CI) they never are.
    #[track_caller]
    pub fn launch() -> impl std::future::Future<Output = Option<Browser>> {
        let found = chromium();
        let need = super::tools::decide(
            "chromium",
            "chromium",
            found.is_some(),
            super::tools::env_flag("LIVEGAMES_SKIP_BROWSER_TESTS"),
            super::tools::env_flag("LIVEGAMES_REQUIRE_TOOLS"),
        );
        let run = super::tools::proceed(need);
        async move {
            match found {
                Some(binary) if run => Some(Self::start_retrying(&binary).await),
                _ => None,
            }
        }
    }

    /// Starts Chromium; a browser that dies before it listens (it happens on a
    /// machine short of memory) is started again, twice at most, and the third
    /// failure shows what it printed.
    async fn start_retrying(binary: &Path) -> Browser {
        let mut said = String::new();
        for _ in 0..3 {
            match Self::start(binary).await {
                Ok(browser) => return browser,
                Err(stderr) => said = stderr,
            }
        }
        panic!("chromium exited three times before listening; it printed:\n{said}");
    }

    async fn start(binary: &Path) -> Result<Browser, String> {
        let profile = std::env::temp_dir().join(format!(
            "lg-chromium-{}-{}",
            std::process::id(),
            super::now_micros()
        ));
        // The flags this closed network needs: no background traffic, no QUIC.
        let mut child = Command::new(binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--window-size=1280,900",
                "--remote-debugging-port=0",
                "about:blank",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("chromium starts");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let printed = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let keep = printed.clone();
        // Keep draining stderr so Chromium never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(at) = line.find("ws://") {
                    let _ = tx.send(line[at..].trim().to_owned());
                } else {
                    let mut kept = keep.lock().unwrap_or_else(|e| e.into_inner());
                    if kept.len() < 40 {
                        kept.push(line);
                    }
                }
            }
        });
        let endpoint = tokio::task::spawn_blocking(move || rx.recv_timeout(DEADLINE))
            .await
            .unwrap();
        let Ok(endpoint) = endpoint else {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_dir_all(&profile);
            return Err(printed.lock().unwrap_or_else(|e| e.into_inner()).join("\n"));
        };
        let (cdp, _) = tokio_tungstenite::connect_async(&endpoint).await.unwrap();
        let mut browser = Browser {
            child,
            cdp,
            session: String::new(),
            next_id: 0,
            profile,
        };
        let target = browser
            .call("Target.createTarget", json!({"url": "about:blank"}))
            .await;
        let attached = browser
            .call(
                "Target.attachToTarget",
                json!({"targetId": target["targetId"], "flatten": true}),
            )
            .await;
        browser.session = attached["sessionId"].as_str().unwrap().to_owned();
        Ok(browser)
    }

    /// Sends a command (to the tab once attached) and returns its result.
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if !self.session.is_empty() {
            message["sessionId"] = json!(self.session);
        }
        self.cdp
            .send(Message::text(message.to_string()))
            .await
            .unwrap();
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let next = tokio::time::timeout_at(deadline, self.cdp.next())
                .await
                .unwrap_or_else(|_| panic!("no answer to {method}"));
            let Some(Ok(Message::Text(text))) = next else {
                panic!("the DevTools connection ended during {method}");
            };
            let reply: Value = serde_json::from_str(text.as_str()).unwrap();
            if reply["id"] == id {
                assert!(reply.get("error").is_none(), "{method}: {reply}");
                return reply["result"].clone();
            }
        }
    }

    pub async fn goto(&mut self, url: &str) {
        self.call("Page.navigate", json!({"url": url})).await;
    }

    /// Evaluates `expression` in the page (promises awaited) and returns its value.
    pub async fn eval(&mut self, expression: &str) -> Value {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
            )
            .await;
        assert!(
            result.get("exceptionDetails").is_none(),
            "{expression}: {result}"
        );
        result["result"]["value"].clone()
    }

    /// Polls `expression` until it is truthy; returns its value.
    #[track_caller]
    pub fn wait_for<'a>(
        &'a mut self,
        what: &'static str,
        expression: &'a str,
    ) -> impl std::future::Future<Output = Value> + 'a {
        let caller = std::panic::Location::caller();
        async move {
            let started = Instant::now();
            loop {
                let value = self.eval(expression).await;
                let truthy = !matches!(&value, Value::Null | Value::Bool(false))
                    && value != json!(0)
                    && value != json!("");
                if truthy {
                    return value;
                }
                assert!(
                    started.elapsed() < DEADLINE,
                    "{caller}: timed out waiting for {what} ({expression} = {value})"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    /// A PNG of the tab, written to `target/screenshots/NAME.png` (and to
    /// `docs/screenshots/` when LIVEGAMES_UPDATE_SCREENSHOTS=1, for the README).
    pub async fn screenshot(&mut self, name: &str) -> PathBuf {
        use base64::Engine;
        let shot = self
            .call("Page.captureScreenshot", json!({"format": "png"}))
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut dirs = vec![root.join("target/screenshots")];
        if std::env::var("LIVEGAMES_UPDATE_SCREENSHOTS").as_deref() == Ok("1") {
            dirs.push(root.join("docs/screenshots"));
        }
        for dir in &dirs {
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(dir.join(format!("{name}.png")), &png).unwrap();
        }
        dirs[0].join(format!("{name}.png"))
    }

    /// JavaScript heap in use after a full garbage collection, in bytes.
    pub async fn heap_after_gc(&mut self) -> f64 {
        self.call("HeapProfiler.collectGarbage", json!({})).await;
        let usage = self.call("Runtime.getHeapUsage", json!({})).await;
        usage["usedSize"].as_f64().unwrap()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}
