//! The peers `livegames load` is compared with in benches/loadgen.rs, run on the same
//! server in the same bench run when they are installed:
//!
//! - node's `ws` and Python's `websockets`: small clients beside this file that parse
//!   every frame as JSON and take its `ts`, as `load` does, and print `tick FRAMES
//!   OPEN` each second (`npm install --prefix benches/peers`; `pip install websockets`);
//! - Artillery (its WebSocket engine, artillery.yml, with a processor that parses every
//!   frame and records its latency in an Artillery histogram; installed by the same
//!   `npm install`, with PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 on a closed network);
//! - Locust (locustfile.py: a websocket-client user under gevent that reports every
//!   frame as a request with its latency; `pip install locust websocket-client`);
//! - Tsung (Debian's `tsung`: `ts_websocket` sessions that hold their socket; Tsung
//!   reads and discards the frames and measures nothing per frame - "holds only");
//! - for `--protocol socketio`, Artillery's socket.io engine alone
//!   (artillery-socketio.yml: a `tick` listener recording each event's latency).
//!
//! The tools report no per-second frame count of their own, so for them frames and
//! open connections are the server's (`livegames_ws_frames_sent_total`,
//! `livegames_ws_connections` on /metrics): one client runs at a time, so they are
//! that client's. CPU and memory of each peer's whole process tree (launcher script,
//! VM, workers) are read from /proc over the same steady window as for `load`.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::Outcome;
use crate::common::tree_stats;

/// How long a peer may take to open every connection before it is given up on.
const OPEN_DEADLINE: Duration = Duration::from_secs(90);
/// A peer whose once-a-second tick does not come for this long is saturated (its
/// event loop is not getting round to it) and is given up on.
const SILENT_FOR: Duration = Duration::from_secs(30);

pub struct Peer {
    pub name: &'static str,
    tool: Tool,
}

#[derive(Clone, Copy)]
enum Tool {
    /// This bench's bare tokio-tungstenite client (`--client minimal --ticks`), on a
    /// default runtime: what a user's own `#[tokio::main]` client would be.
    Bare,
    /// The `livegames` CLI's `load` with its defaults.
    LoadCli,
    NodeWs,
    PythonWebsockets,
    Artillery,
    Locust,
    Tsung,
    ArtillerySocketio,
}

/// The peers of a socket.io run.
pub const SOCKETIO_PEERS: [Peer; 1] = [Peer {
    name: "artillery socket.io",
    tool: Tool::ArtillerySocketio,
}];

/// The clients of an unpinned run (`--unpinned`): each one as a user runs it, its own
/// process on a machine it shares with the server; rounds alternate among them.
pub const UNPINNED: [Peer; 3] = [
    Peer {
        name: "bare client",
        tool: Tool::Bare,
    },
    Peer {
        name: "livegames load",
        tool: Tool::LoadCli,
    },
    Peer {
        name: "node ws",
        tool: Tool::NodeWs,
    },
];

pub const PEERS: [Peer; 5] = [
    Peer {
        name: "node ws",
        tool: Tool::NodeWs,
    },
    Peer {
        name: "python websockets",
        tool: Tool::PythonWebsockets,
    },
    Peer {
        name: "artillery",
        tool: Tool::Artillery,
    },
    Peer {
        name: "locust",
        tool: Tool::Locust,
    },
    Peer {
        name: "tsung (holds only)",
        tool: Tool::Tsung,
    },
];

fn here() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/peers")
}

fn artillery_bin() -> PathBuf {
    here().join("node_modules/.bin/artillery")
}

/// Whether a probe command runs and succeeds.
fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .current_dir(here())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Where a run's scratch files go (a Tsung config and log, Locust's CSV).
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> std::io::Result<Scratch> {
        let dir =
            std::env::temp_dir().join(format!("livegames-bench-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::env::var_os("KEEP_SCRATCH").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Peer {
    /// Why this peer cannot run here, if it cannot.
    pub fn missing(&self) -> Option<String> {
        let (present, hint) = match self.tool {
            Tool::Bare | Tool::LoadCli => (true, ""),
            Tool::NodeWs => (
                runs("node", &["-e", "require('ws')"]),
                "not installed (npm install --prefix benches/peers)",
            ),
            Tool::PythonWebsockets => (
                runs("python3", &["-c", "import websockets"]),
                "not installed (pip install websockets)",
            ),
            Tool::Artillery | Tool::ArtillerySocketio => (
                artillery_bin().exists() && runs("node", &["--version"]),
                "not installed (PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --prefix benches/peers)",
            ),
            Tool::Locust => (
                runs("python3", &["-c", "import locust, websocket"]),
                "not installed (pip install locust websocket-client)",
            ),
            Tool::Tsung => (
                runs("tsung", &["-v"]),
                "not installed (apt-get install tsung)",
            ),
        };
        (!present).then(|| hint.to_owned())
    }

    /// Runs the peer with `conns` connections over `urls` on `cpu` (None: wherever the
    /// kernel puts it); its figures over `seconds` from one second after all are open,
    /// or why there are none.
    pub fn run(
        &self,
        urls: &[String],
        conns: usize,
        seconds: u64,
        cpu: Option<usize>,
    ) -> Result<Outcome, String> {
        let scratch = Scratch::new(self.name.split(' ').next().unwrap_or("peer"))
            .map_err(|e| format!("no scratch folder: {e}"))?;
        let epmd_was_running = runs("pgrep", &["-x", "epmd"]);
        let mut command = self.command(urls, conns, &scratch.0)?;
        if let Some(cpu) = cpu {
            command = on_cpu(command, cpu);
        }
        // Its own process group, so the whole tree (a launcher script, its VM) stops.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut child = command
            .current_dir(here())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.name))?;
        let pid = child.id();
        let lines = read_lines(&mut child);
        let outcome = match self.tool {
            Tool::NodeWs | Tool::PythonWebsockets | Tool::Bare => {
                watch(pid, conns, seconds, || own_tick(&lines))
            }
            _ => {
                let metrics = metrics_url(&urls[0]);
                let mut next = Instant::now();
                watch(pid, conns, seconds, || {
                    next += Duration::from_secs(1);
                    std::thread::sleep(next.saturating_duration_since(Instant::now()));
                    Ok(server_tick(&metrics))
                })
            }
        };
        let p99_ms = self.stop(&mut child, &lines, &scratch.0);
        if matches!(self.tool, Tool::Tsung) && !epmd_was_running {
            // Erlang's port mapper, started by Tsung's VM as a daemon of its own.
            let _ = runs("epmd", &["-kill"]);
        }
        outcome.map(|o| Outcome { p99_ms, ..o })
    }

    fn command(&self, urls: &[String], conns: usize, scratch: &Path) -> Result<Command, String> {
        let mut c;
        match self.tool {
            Tool::Bare => {
                c = Command::new(std::env::current_exe().map_err(|e| e.to_string())?);
                c.args(["--client", "minimal", "--ticks", "--seconds", "0"])
                    .args(["--conns", &conns.to_string(), "--urls", &urls.join(",")]);
            }
            Tool::LoadCli => {
                // The CLI as a user types it: the host, the games, the connections; every
                // other setting its default. It runs until stopped (SIGINT), then prints
                // its summary as JSON.
                let games: Vec<&str> = urls
                    .iter()
                    .filter_map(|u| u.rsplit_once("/ws/live/").map(|(_, id)| id))
                    .collect();
                let host = urls[0].split("/ws/live/").next().unwrap_or(&urls[0]);
                c = Command::new(env!("CARGO_BIN_EXE_livegames"));
                c.args(["load", host, "--games", &games.join(",")])
                    .args(["--conns", &conns.to_string(), "--duration", "1h"])
                    .args(["--quiet", "--json", "--report"])
                    .arg(scratch.join("report"));
            }
            Tool::NodeWs | Tool::PythonWebsockets => {
                let (program, script) = match self.tool {
                    Tool::NodeWs => ("node", "node-ws.js"),
                    _ => ("python3", "py-websockets.py"),
                };
                c = Command::new(program);
                c.arg(here().join(script))
                    .arg(conns.to_string())
                    .arg(urls.join(","));
            }
            Tool::Artillery => {
                // All users arrive within a second, as `load` and the others open theirs.
                let arrivals = format!(
                    r#"{{"config":{{"phases":[{{"duration":1,"arrivalCount":{conns}}}]}}}}"#
                );
                c = Command::new(artillery_bin());
                c.args(["run", "--overrides", &arrivals, "artillery.yml"])
                    .env("BENCH_URLS", urls.join(","))
                    .env("ARTILLERY_DISABLE_TELEMETRY", "true");
            }
            Tool::ArtillerySocketio => {
                let arrivals = format!(
                    r#"{{"config":{{"phases":[{{"duration":1,"arrivalCount":{conns}}}]}}}}"#
                );
                c = Command::new(artillery_bin());
                c.args(["run", "--overrides", &arrivals, "--target"])
                    .arg(http_base(&urls[0]))
                    .arg("artillery-socketio.yml")
                    .env("ARTILLERY_DISABLE_TELEMETRY", "true");
            }
            Tool::Locust => {
                let csv = scratch.join("locust");
                c = Command::new("python3");
                c.args(["-m", "locust", "-f", "locustfile.py", "--headless"])
                    .args(["-u", &conns.to_string(), "-r", &conns.to_string()])
                    .args(["--run-time", "1h", "--only-summary", "--host"])
                    .arg(http_base(&urls[0]))
                    .arg("--csv")
                    .arg(&csv)
                    .env("BENCH_URLS", urls.join(","));
            }
            Tool::Tsung => {
                let config = tsung_config(urls, conns, scratch)?;
                c = Command::new("tsung");
                c.arg("-f")
                    .arg(config)
                    .arg("-l")
                    .arg(scratch.join("log"))
                    .arg("start")
                    .env("HOME", scratch);
            }
        }
        Ok(c)
    }

    /// Stops the peer and returns its own p99 delivery latency (ms), where it has one.
    fn stop(&self, child: &mut Child, lines: &mpsc::Receiver<String>, scratch: &Path) -> f64 {
        let group = format!("-{}", child.id());
        let p99_ms = match self.tool {
            Tool::NodeWs | Tool::PythonWebsockets | Tool::Bare => {
                // SIGTERM: the client prints its p99 (µs) and exits.
                let _ = Command::new("kill").arg(child.id().to_string()).status();
                let deadline = Instant::now() + Duration::from_secs(10);
                std::iter::from_fn(|| {
                    lines
                        .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                        .ok()
                })
                .find_map(|l| l.strip_prefix("p99 ")?.trim().parse::<f64>().ok())
                .map_or(f64::NAN, |us| us / 1000.0)
            }
            // SIGINT: load stops as on Ctrl-C and prints its summary.
            Tool::LoadCli => {
                let _ = Command::new("kill")
                    .args(["-INT", &child.id().to_string()])
                    .status();
                load_p99(lines)
            }
            // The last p99 of Artillery's `delivery_ms` histogram in its 10 s reports.
            Tool::Artillery | Tool::ArtillerySocketio => last_artillery_p99(lines),
            // Locust rewrites its stats CSV every few seconds.
            Tool::Locust => locust_p99(&scratch.join("locust_stats.csv")),
            Tool::Tsung => f64::NAN,
        };
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = child.kill();
        let _ = child.wait();
        p99_ms
    }
}

/// `command` started by `taskset` on `cpu`, so every process and thread of the peer
/// (a VM, its schedulers, workers) is born there; as it is when `taskset` is missing.
fn on_cpu(command: Command, cpu: usize) -> Command {
    if !runs("taskset", &["-V"]) {
        eprintln!("note: no taskset; the peers run unpinned and their figures are noisier");
        return command;
    }
    let mut pinned = Command::new("taskset");
    pinned
        .args(["-c", &cpu.to_string()])
        .arg(command.get_program())
        .args(command.get_args());
    for (name, value) in command.get_envs() {
        if let Some(value) = value {
            pinned.env(name, value);
        }
    }
    pinned
}

/// The peer's stdout, line by line, from a thread.
fn read_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().expect("piped");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// One second's figures: frames so far and connections open, or None before the
/// client has started connecting.
type Tick = Option<(u64, u64)>;

/// A client's own `tick FRAMES OPEN` line (`ready` before it connects).
fn own_tick(lines: &mpsc::Receiver<String>) -> Result<Tick, String> {
    let line = lines
        .recv_timeout(SILENT_FOR)
        .map_err(|_| format!("saturated: no tick for {SILENT_FOR:?}"))?;
    let mut parts = line
        .split_whitespace()
        .skip(1)
        .map(|n| n.parse::<u64>().unwrap_or(0));
    Ok(match (parts.next(), parts.next()) {
        (Some(frames), Some(open)) => Some((frames, open)),
        _ => None,
    })
}

/// The server's count of frames sent and connections open.
fn server_tick(metrics: &str) -> Tick {
    let text = http_get(metrics)?;
    let value = |name: &str| {
        text.lines().find_map(|l| {
            l.strip_prefix(name)?
                .strip_prefix(' ')?
                .trim()
                .parse::<f64>()
                .ok()
        })
    };
    let frames = value("livegames_ws_frames_sent_total")? as u64;
    let open = value("livegames_ws_connections")? as u64;
    // Before any of this client's connections, it is still starting (loading a VM,
    // its workers): its memory then is its baseline.
    (open > 0).then_some((frames, open))
}

/// `http://HOST:PORT` of a `ws://HOST:PORT/...` URL.
fn http_base(ws_url: &str) -> String {
    let rest = ws_url.strip_prefix("ws://").unwrap_or(ws_url);
    let host = rest.split('/').next().unwrap_or(rest);
    format!("http://{host}")
}

fn metrics_url(ws_url: &str) -> String {
    format!("{}/metrics", http_base(ws_url))
}

/// A plain HTTP/1.0 GET of a loopback URL (no client library for one line a second).
fn http_get(url: &str) -> Option<String> {
    let rest = url.strip_prefix("http://")?;
    let (host, path) = rest.split_at(rest.find('/')?);
    let mut stream = std::net::TcpStream::connect(host).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").ok()?;
    let mut body = String::new();
    stream.take(4 << 20).read_to_string(&mut body).ok()?;
    Some(body.split_once("\r\n\r\n")?.1.to_owned())
}

fn last_artillery_p99(lines: &mpsc::Receiver<String>) -> f64 {
    let (mut in_delivery, mut p99) = (false, f64::NAN);
    for line in lines.try_iter() {
        let line = line.trim();
        if line.ends_with(':') {
            in_delivery = line == "delivery_ms:";
        } else if in_delivery && let Some(value) = line.strip_prefix("p99:") {
            p99 = value.trim_start_matches(['.', ' ']).parse().unwrap_or(p99);
        }
    }
    p99
}

/// The delivery p99 (ms) of `load --json`'s summary, printed as it stops.
fn load_p99(lines: &mpsc::Receiver<String>) -> f64 {
    let mut text = String::new();
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(30)) {
        text.push_str(&line);
    }
    serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|summary| summary.pointer("/latency/delivery/p99_us")?.as_f64())
        .map_or(f64::NAN, |us| us / 1000.0)
}

fn locust_p99(csv: &Path) -> f64 {
    let Ok(text) = std::fs::read_to_string(csv) else {
        return f64::NAN;
    };
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
    let Some(column) = header.iter().position(|h| *h == "99%") else {
        return f64::NAN;
    };
    lines
        .find(|l| l.starts_with("WS,frame,"))
        .and_then(|l| l.split(',').nth(column)?.parse().ok())
        .unwrap_or(f64::NAN)
}

/// A Tsung config: `conns` users arriving at `conns` a second (Tsung's arrivals are
/// random: a one-second phase leaves some out, so the phase is longer and capped by
/// `maxnumber`), each holding a `ts_websocket` session on the next game (round robin)
/// for an hour.
fn tsung_config(urls: &[String], conns: usize, scratch: &Path) -> Result<PathBuf, String> {
    let base = http_base(&urls[0]);
    let (host, port) = base
        .trim_start_matches("http://")
        .rsplit_once(':')
        .ok_or("no port in the URL")?;
    let games: Vec<&str> = urls
        .iter()
        .filter_map(|u| u.rsplit_once("/ws/live/").map(|(_, id)| id))
        .collect();
    let games_file = scratch.join("games.csv");
    std::fs::write(&games_file, games.join("\n") + "\n").map_err(|e| e.to_string())?;
    let config = format!(
        r#"<?xml version="1.0"?>
<!DOCTYPE tsung SYSTEM "/usr/share/tsung/tsung-1.0.dtd">
<tsung loglevel="error" dumptraffic="false" version="1.0">
  <clients><client host="localhost" use_controller_vm="true" maxusers="{max}"/></clients>
  <servers><server host="{host}" port="{port}" type="tcp"/></servers>
  <load><arrivalphase phase="1" duration="30" unit="second">
    <users maxnumber="{conns}" arrivalrate="{conns}" unit="second"/>
  </arrivalphase></load>
  <options><option name="file_server" id="games" value="{games}"/></options>
  <sessions><session name="view" probability="100" type="ts_websocket">
    <setdynvars sourcetype="file" fileid="games" delimiter=";" order="iter"><var name="game"/></setdynvars>
    <request subst="true"><websocket type="connect" path="/ws/live/%%_game%%"/></request>
    <thinktime value="3600"/>
  </session></sessions>
</tsung>
"#,
        max = conns.max(1000),
        games = games_file.display(),
    );
    let path = scratch.join("tsung.xml");
    std::fs::write(&path, config).map_err(|e| e.to_string())?;
    Ok(path)
}

/// Follows a peer's ticks through the steady window.
fn watch(
    pid: u32,
    conns: usize,
    seconds: u64,
    mut tick: impl FnMut() -> Result<Tick, String>,
) -> Result<Outcome, String> {
    let started = Instant::now();
    let (mut base_rss, mut peak_rss) = (None::<f64>, 0.0_f64);
    let mut all_open_at: Option<Instant> = None;
    let mut window: Option<(f64, u64, Instant)> = None;
    let mut most_open = 0;
    loop {
        let ticked = tick().map_err(|why| format!("{why} with {most_open} of {conns} open"))?;
        let (cpu, rss) = tree_stats(pid);
        let now = Instant::now();
        let Some((frames, open)) = ticked else {
            // Not connecting yet: its memory so far is its baseline.
            if all_open_at.is_none() && most_open == 0 {
                base_rss = Some(rss);
            }
            if now - started > OPEN_DEADLINE {
                return Err(format!("held at most {most_open} of {conns} connections"));
            }
            continue;
        };
        peak_rss = peak_rss.max(rss);
        most_open = most_open.max(open);
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
                    kib_per_conn: (peak_rss - base_rss.unwrap_or(0.0)).max(0.0) / conns as f64,
                    p99_ms: f64::NAN,
                });
            }
            _ => {}
        }
    }
}
