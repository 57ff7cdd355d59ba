//! The peers `livegames load` is compared with in benches/loadgen.rs, run on the same
//! server in the same bench run when they are installed: node's `ws`
//! (`npm install --prefix benches/peers`) and Python's `websockets` (`pip install
//! websockets`). Each is a small client beside this file that parses every frame as
//! JSON and takes its `ts`, as `load` does, and reports `tick FRAMES OPEN` each
//! second; its CPU and memory are read from /proc, over the same steady window.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::Outcome;
use crate::common::proc_stats;

/// How long a peer may take to open every connection before it is given up on.
const OPEN_DEADLINE: Duration = Duration::from_secs(90);
/// A peer whose once-a-second tick does not come for this long is saturated (its
/// event loop is not getting round to it) and is given up on.
const SILENT_FOR: Duration = Duration::from_secs(30);

pub struct Peer {
    pub name: &'static str,
    program: &'static str,
    script: &'static str,
}

pub const PEERS: [Peer; 2] = [
    Peer {
        name: "node ws",
        program: "node",
        script: "node-ws.js",
    },
    Peer {
        name: "python websockets",
        program: "python3",
        script: "py-websockets.py",
    },
];

fn here() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/peers")
}

impl Peer {
    /// Why this peer cannot run here, if it cannot.
    pub fn missing(&self) -> Option<String> {
        let probe = match self.program {
            "node" => Command::new("node")
                .args(["-e", "require('ws')"])
                .current_dir(here())
                .output(),
            _ => Command::new("python3")
                .args(["-c", "import websockets"])
                .output(),
        };
        match probe {
            Ok(out) if out.status.success() => None,
            _ => Some(match self.program {
                "node" => "not installed (npm install --prefix benches/peers)".into(),
                _ => "not installed (pip install websockets)".into(),
            }),
        }
    }

    /// Runs the peer with `conns` connections over `urls` on `cpu`; its figures over
    /// `seconds` from one second after all are open, or why there are none.
    pub fn run(
        &self,
        urls: &[String],
        conns: usize,
        seconds: u64,
        cpu: usize,
    ) -> Result<Outcome, String> {
        let mut child = Command::new(self.program)
            .arg(here().join(self.script))
            .arg(conns.to_string())
            .arg(urls.join(","))
            .current_dir(here())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.program))?;
        let pid = child.id();
        crate::pin(pid, cpu);
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let outcome = watch(&rx, pid, conns, seconds);
        // SIGTERM: the peer prints its p99 and exits.
        let _ = Command::new("kill").arg(pid.to_string()).status();
        let p99_us = rx
            .recv_timeout(Duration::from_secs(10))
            .ok()
            .and_then(|l| l.strip_prefix("p99 ")?.trim().parse::<f64>().ok());
        let _ = child.kill();
        let _ = child.wait();
        outcome.map(|mut o| {
            o.p99_ms = p99_us.unwrap_or(f64::NAN) / 1000.0;
            o
        })
    }
}

/// Follows a peer's ticks through the steady window.
fn watch(
    rx: &mpsc::Receiver<String>,
    pid: u32,
    conns: usize,
    seconds: u64,
) -> Result<Outcome, String> {
    let started = Instant::now();
    let (mut base_rss, mut peak_rss) = (0.0_f64, 0.0_f64);
    let mut all_open_at: Option<Instant> = None;
    let mut window: Option<(f64, u64, Instant)> = None;
    let mut most_open = 0;
    loop {
        let line = rx.recv_timeout(SILENT_FOR).map_err(|_| {
            format!("saturated: no tick for {SILENT_FOR:?} with {most_open} of {conns} open")
        })?;
        let (cpu, rss) = proc_stats(pid);
        if line == "ready" {
            base_rss = rss;
            continue;
        }
        let mut parts = line
            .split_whitespace()
            .skip(1)
            .map(|n| n.parse::<u64>().unwrap_or(0));
        let (Some(frames), Some(open)) = (parts.next(), parts.next()) else {
            continue;
        };
        peak_rss = peak_rss.max(rss);
        most_open = most_open.max(open);
        let now = Instant::now();
        if open as usize >= conns && all_open_at.is_none() {
            all_open_at = Some(now);
        }
        match (all_open_at, window) {
            (None, _) if now - started > OPEN_DEADLINE => {
                return Err(format!("held at most {most_open} of {conns} connections"));
            }
            (Some(at), None) if now - at >= Duration::from_secs(1) => {
                window = Some((cpu, frames, now))
            }
            (_, Some((cpu0, frames0, t0))) if now - t0 >= Duration::from_secs(seconds) => {
                let frames = (frames - frames0).max(1) as f64;
                return Ok(Outcome {
                    fps: frames / (now - t0).as_secs_f64(),
                    cpu_per_100k: (cpu - cpu0) / frames * 100_000.0,
                    kib_per_conn: (peak_rss - base_rss).max(0.0) / conns as f64,
                    p99_ms: f64::NAN,
                });
            }
            _ => {}
        }
    }
}
