//! Helpers shared by the benchmarks: server processes, addresses, /proc figures.

#![allow(dead_code)] // each benchmark uses a different part

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A server process and the WebSocket URLs of its games.
pub struct Server {
    pub child: Child,
    pub urls: Vec<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A release `livegames serve` with a near-frozen replay: its stream is the market
/// ticks, `rate` per second per live game.
pub async fn start_livegames(rate: f64) -> Server {
    start_livegames_with(rate, &[]).await
}

/// [`start_livegames`] with more serve flags.
pub async fn start_livegames_with(rate: f64, extra: &[&str]) -> Server {
    let mut c = Command::new(env!("CARGO_BIN_EXE_livegames"));
    c.args([
        "serve",
        "--addr",
        "127.0.0.1:0",
        "--speed",
        "0.001",
        "--rate",
        &rate.to_string(),
        "--log-format",
        "json",
        "--max-conns",
        "100000",
    ]);
    c.args(extra);
    c.env("RUST_LOG", "warn,livegames::serve=info");
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("server starts");
    let addr = read_addr(&mut child);
    let urls = live_game_urls(&addr).await;
    Server { child, urls }
}

/// The bare server prints its address on stdout; livegames logs it as JSON on stderr.
pub fn read_addr(child: &mut Child) -> String {
    use std::io::{BufRead, BufReader};
    let (tx, rx) = std::sync::mpsc::channel();
    let out = child.stdout.take().unwrap();
    let err = child.stderr.take().unwrap();
    let tx2 = tx.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line.trim().to_owned());
        }
    });
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                && let Some(a) = v["local_addr"].as_str()
            {
                let _ = tx2.send(a.to_owned());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(30))
        .expect("server address")
}

pub async fn live_game_urls(addr: &str) -> Vec<String> {
    let url = format!("http://{addr}/api/live/games");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = reqwest::get(&url).await
            && let Ok(list) = r.json::<serde_json::Value>().await
        {
            let live: Vec<String> = list["games"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|g| g["latest"]["state"] == "live" && !g["latest"]["market"].is_null())
                .map(|g| g["ws_url"].as_str().unwrap().to_owned())
                .collect();
            if !live.is_empty() {
                return live;
            }
        }
        assert!(Instant::now() < deadline, "no live game on {addr}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Unix time in microseconds: the library's one clock.
#[allow(unused_imports)] // not every benchmark reads the clock
pub use livegames::clock::unix_micros as now_micros;

/// The `ts` field of a frame, found without parsing the whole frame.
pub fn ts_of(text: &str) -> Option<i64> {
    let start = text.find("\"ts\":")? + 5;
    let digits: &str = &text[start..];
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}

/// CPU-seconds (to the nanosecond, see `cpu_seconds_of`) and RSS (KiB) of a process.
pub fn proc_stats(pid: u32) -> (f64, f64) {
    let cpu = livegames::load::measure::host::cpu_seconds_of(pid).unwrap_or(0.0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0.0);
    (cpu, rss)
}

/// [`proc_stats`] summed over a process and every process below it (a peer tool's
/// launcher script, its VM, its workers).
pub fn tree_stats(pid: u32) -> (f64, f64) {
    let mut family = vec![pid];
    let mut i = 0;
    while i < family.len() {
        family.extend(children_of(family[i]));
        i += 1;
    }
    family
        .into_iter()
        .map(proc_stats)
        .fold((0.0, 0.0), |(c, r), (c1, r1)| (c + c1, r + r1))
}

fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    stat.rsplit(") ")
                        .next()?
                        .split_whitespace()
                        .nth(1)?
                        .parse()
                        .ok()
                })
                == Some(parent)
        })
        .collect()
}
