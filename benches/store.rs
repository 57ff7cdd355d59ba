//! The InfluxDB store, against Debian's real `influxd` on loopback:
//!
//! 1. Writer throughput: 200,000 `live_point` lines pushed at once, batch sizes 1,000,
//!    5,000 and 10,000; lines/s until InfluxDB has acknowledged them all.
//! 2. The stream with InfluxDB healthy, then stopped: `livegames serve --influxdb` with
//!    WebSocket clients on its live games; delivery latency (receive time -
//!    `observed_at`) p50/p99/max over the same length of time in each phase.
//!
//! Run: `cargo bench --bench store` (about a minute; needs `apt-get install influxdb`).
//! Traffic goes to 127.0.0.1 only, for a bounded time.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use livegames::influx::{Field, Tally, Writer, WriterConfig, line};

const LINES: u64 = 200_000;
const CLIENTS: usize = 200;
const PHASE: Duration = Duration::from_secs(15);

struct Influxd {
    child: Option<Child>,
    port: u16,
    dir: std::path::PathBuf,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Influxd {
    async fn start() -> Influxd {
        let dir =
            std::env::temp_dir().join(format!("livegames-bench-influx-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let port = free_port();
        let d = dir.display();
        std::fs::write(
            dir.join("influxdb.conf"),
            format!(
                "reporting-disabled = true\nbind-address = \"127.0.0.1:{}\"\n[meta]\n  dir = \"{d}/meta\"\n[data]\n  dir = \"{d}/data\"\n  wal-dir = \"{d}/wal\"\n  query-log-enabled = false\n[http]\n  bind-address = \"127.0.0.1:{port}\"\n  log-enabled = false\n[monitor]\n  store-enabled = false\n",
                free_port()
            ),
        )
        .unwrap();
        let mut db = Influxd {
            child: None,
            port,
            dir,
        };
        db.resume().await;
        db
    }

    async fn resume(&mut self) {
        let child = Command::new("influxd")
            .arg("-config")
            .arg(self.dir.join("influxdb.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("influxd (apt-get install influxdb)");
        self.child = Some(child);
        let ping = format!("http://127.0.0.1:{}/ping", self.port);
        let started = Instant::now();
        while reqwest::get(&ping).await.ok().map(|r| r.status().as_u16()) != Some(204) {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "influxd did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Influxd {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A `live_point` line like serve's, for game `n % 6` at time `n` µs after a start.
fn point_line(n: u64) -> String {
    let mut out = String::with_capacity(320);
    line(&mut out, "live_point")
        .tag("game", &format!("00224001{:02}", n % 6))
        .tag("league", "nba")
        .tag("home", "BOS")
        .tag("away", "MIL")
        .tag(
            "cause",
            if n.is_multiple_of(3) {
                "play"
            } else {
                "market"
            },
        )
        .field("seq", Field::Int(n as i64))
        .field("state", Field::Text("live".into()))
        .field("period", Field::Int(2))
        .field("clock", Field::Text("5:32".into()))
        .field("home_score", Field::Int(61))
        .field("away_score", Field::Int(58))
        .field("home_win_prob", Field::Float(0.53))
        .field("yes_bid", Field::Float(0.52))
        .field("yes_ask", Field::Float(0.54))
        .field("last_price", Field::Float(0.53))
        .field("espn", Field::Text("ok".into()))
        .field("kalshi", Field::Text("ok".into()))
        .field(
            "last_play",
            Field::Text("Jayson Tatum makes 26-foot three point jumper".into()),
        )
        .finish(1_796_000_000_000_000_000 + n as i64 * 1000);
    out
}

async fn throughput(influx: &Influxd, batch: usize) {
    let counts = Arc::new(Tally::default());
    let url = format!("http://127.0.0.1:{}/bench_{batch}", influx.port);
    let target = livegames::influx::parse(&url, |_| None).unwrap();
    let config = WriterConfig {
        batch_lines: batch,
        queue_lines: LINES as usize + 1,
        flush_every: Duration::from_millis(100),
        timeout: Duration::from_secs(30),
        ..WriterConfig::default()
    };
    let (writer, task) = Writer::new(target, config, reqwest::Client::new(), counts.clone());
    let stop = tokio_util::sync::CancellationToken::new();
    let handle = tokio::spawn(task.run(stop.clone()));
    let lines: Vec<String> = (0..LINES).map(point_line).collect();
    let bytes: usize = lines.iter().map(String::len).sum();
    let started = Instant::now();
    for l in lines {
        writer.push(l);
    }
    let pushed = started.elapsed();
    while counts.counts().0 + counts.counts().2 < LINES {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let took = started.elapsed();
    stop.cancel();
    let _ = handle.await;
    println!(
        "batch {batch:>6}: {LINES} lines ({:.1} MB) written in {:.2} s = {:>7.0} lines/s; pushing them took {:.0} ms ({:.2} µs/line); failed requests {}, dropped {}",
        bytes as f64 / 1e6,
        took.as_secs_f64(),
        LINES as f64 / took.as_secs_f64(),
        pushed.as_secs_f64() * 1000.0,
        pushed.as_secs_f64() * 1e6 / LINES as f64,
        counts.counts().1,
        counts.counts().2,
    );
}

use livegames::clock::unix_micros as now_micros;

/// Clients on every live game, each recording receive time - observed_at.
async fn clients(
    ws_base: &str,
    games: &[String],
    samples: Arc<std::sync::Mutex<Vec<f64>>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    for i in 0..CLIENTS {
        let url = format!("{ws_base}/ws/live/{}", games[i % games.len()]);
        let samples = samples.clone();
        let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .unwrap();
        tasks.push(tokio::spawn(async move {
            while let Some(Ok(msg)) = ws.next().await {
                let now = now_micros();
                let Ok(text) = msg.into_text() else { continue };
                if !text.starts_with("{\"type\":\"update\"") {
                    continue;
                }
                let v: serde_json::Value = serde_json::from_str(&text).unwrap();
                if let Some(observed) = v["data"]["observed_at"].as_i64() {
                    samples
                        .lock()
                        .unwrap()
                        .push((now - observed) as f64 / 1000.0);
                }
            }
        }));
    }
    tasks
}

fn summary(samples: &mut [f64]) -> String {
    samples.sort_by(f64::total_cmp);
    let at =
        |p: f64| samples[((samples.len() as f64 * p).ceil() as usize).clamp(1, samples.len()) - 1];
    format!(
        "{} frames, delivery p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        samples.len(),
        at(0.50),
        at(0.99),
        at(1.0)
    )
}

async fn stream_with_store_stopped(influx: &mut Influxd) {
    let mut config = livegames::serve::ServeConfig::embedded(20.0);
    config.influxdb = Some(
        livegames::influx::parse(&format!("http://127.0.0.1:{}/stream", influx.port), |_| {
            None
        })
        .unwrap(),
    );
    let server = livegames::serve::spawn(config, "127.0.0.1:0")
        .await
        .unwrap();
    // The replay needs a moment before its games are live.
    let mut games: Vec<String> = Vec::new();
    let started = Instant::now();
    while games.is_empty() {
        assert!(started.elapsed() < Duration::from_secs(30), "no live game");
        tokio::time::sleep(Duration::from_millis(200)).await;
        let list: serde_json::Value = reqwest::get(format!("{}/api/live/games", server.http_url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        games = list["games"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|g| g["latest"]["state"] == "live")
            .map(|g| g["id"].as_str().unwrap().to_owned())
            .collect();
    }
    let samples = Arc::new(std::sync::Mutex::new(Vec::new()));
    let tasks = clients(&server.ws_url(), &games, samples.clone()).await;
    tokio::time::sleep(Duration::from_secs(2)).await; // past the connection burst
    samples.lock().unwrap().clear();
    tokio::time::sleep(PHASE).await;
    let mut healthy = std::mem::take(&mut *samples.lock().unwrap());
    influx.stop();
    tokio::time::sleep(PHASE).await;
    let mut stopped = std::mem::take(&mut *samples.lock().unwrap());
    let health: serde_json::Value = reqwest::get(format!("{}/health", server.http_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    println!(
        "{CLIENTS} clients on {} live games, {} s each phase:",
        games.len(),
        PHASE.as_secs()
    );
    println!("  InfluxDB healthy: {}", summary(&mut healthy));
    println!("  InfluxDB stopped: {}", summary(&mut stopped));
    println!(
        "  /health store while stopped: {}",
        health["store"]["influxdb"]
    );
    for t in tasks {
        t.abort();
    }
    server.stop().await.unwrap();
}

#[tokio::main]
async fn main() {
    let mut influx = Influxd::start().await;
    println!("InfluxDB 1.x (Debian) on 127.0.0.1:{}", influx.port);
    for batch in [1_000, 5_000, 10_000] {
        throughput(&influx, batch).await;
    }
    stream_with_store_stopped(&mut influx).await;
}
