//! Load-generator cost: `livegames load` (the library, with its defaults: latency,
//! seq and contract checks on every frame, `--ws-ping auto`) against a minimal
//! tokio-tungstenite client that only reads each frame and takes its `ts`, on the
//! same server, one after the other, each client in its own process.
//!
//! Run: `cargo bench --bench loadgen` (three rows, about 20 minutes with every peer
//! installed): 1,000 connections x 100 frames/s, 10,000 x 1/s and 100 x 10/s; or one
//! row with `cargo bench --bench loadgen -- --conns 1000 --rate 100 --seconds 10
//! --repeat 3` (`--peers node,artillery` runs only those peers, `--peers none` none;
//! `--ws-ping 0s` runs `load` without protocol pings, `--ws-ping 1s` with one a second
//! each). `--protocol sse` measures Server-Sent Events instead: the same server's
//! `/sse/live/{id}` streams, `load --protocol sse` against a minimal reqwest client
//! that splits events and takes each one's `ts` (no peers: they speak WebSocket).
//! `--protocol socketio` measures socket.io: npm's socket.io 4 server
//! (tests/peers/socketio-feed.js, `npm ci --prefix tests/peers`) broadcasting a `tick`
//! event of a livegames update's size at the row's rate, `load --protocol socketio
//! --sio-event tick` against the minimal client speaking just enough Engine.IO (the
//! open packet, `40`, pings answered, each `42["tick",…]`'s `ts` taken) and Artillery's
//! socket.io engine (benches/peers/artillery-socketio.yml).
//! `--compress` has `load` offer permessage-deflate (serve compresses each frame once
//! for all such clients): its CPU per frame then includes inflating, against the same
//! minimal client reading the same frames uncompressed (no peers).
//!
//! The server (release `livegames serve`) runs in its own process on CPU 0; each
//! client is this benchmark started again with `--client`, on CPU 1 with a one-worker
//! runtime, so its CPU time and memory are its own. Each client runs `--repeat` times
//! (default 3), the two alternating: the headline is the median of each round's CPU
//! ratio (the medians' ratio is printed too); then each installed
//! peer once (benches/peers: node `ws`, Python `websockets`, Artillery, Locust, Tsung).
//! Reported per client, over the steady window (from one second after the last
//! connection opened, for `--seconds`; 40 s at 100 x 10/s): frames/s, CPU-seconds per
//! 100,000 frames (the kernel's run-time clock), memory per connection (peak RSS minus
//! RSS before connecting, divided by the connections), delivery p99 (receive - `ts`).
//! `--unpinned` measures instead the way a user runs each client: nothing pinned, the
//! server and each client sharing the machine's cores; `livegames load` is the CLI with
//! its defaults (`load ws://HOST --games ... --conns N`), the bare client this bench's
//! minimal client on a default multi-threaded runtime, and node's `ws`; each client's
//! whole process tree is read from /proc over the steady window (frames: the client's
//! own count, or the server's for the CLI); `--repeat` rounds, each starting with the
//! next client; the headline ratios are the medians of each round's own.
//! Traffic goes to 127.0.0.1 only, for a bounded time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use livegames::client::ConnectOptions;
use livegames::load::LoadConfig;
use livegames::load::measure::host::process_cpu_seconds;
use livegames::load::measure::recorder::{Distribution, Quantile};
use livegames::load::plan::shard::Share;
use livegames::load::results::judge::Figures;
use livegames::load::session::config::{
    AUTO_PING_EVERY, AUTO_PINGS_PER_SECOND, VuConfig, ping_interval,
};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;

mod common;
mod peers;
use common::{now_micros, proc_stats, ts_of};

fn main() {
    let value = flag_value;
    let number = |name: &str| value(name).map(|v| v.parse::<f64>().expect(name));
    livegames::load::measure::host::raise_open_files_limit(12_000);
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if value("--cpu").is_some() {
        // A pinned client gets one core (CLIENT_CPU), and a runtime of one worker to
        // match: two workers taking turns on one core made the same client's CPU per
        // frame land on one of two values ~30 % apart from run to run.
        runtime.worker_threads(1);
    }
    let rt = runtime.enable_all().build().unwrap();
    if let Some(client) = value("--client") {
        // A child: one client, one line of figures on stdout.
        if let Some(cpu) = number("--cpu") {
            pin(std::process::id(), cpu as usize);
        }
        let conns = number("--conns").unwrap() as usize;
        let seconds = number("--seconds").unwrap() as u64;
        let urls: Vec<String> = value("--urls")
            .unwrap()
            .split(',')
            .map(str::to_owned)
            .collect();
        if std::env::args().any(|a| a == "--ticks") {
            // Watched from outside (`--unpinned`): ticks until SIGTERM, like node-ws.js.
            rt.block_on(async {
                // As node-ws.js: `ready` before connecting, so the memory the watcher
                // reads then is the baseline, without connections already opening.
                println!("ready");
                tokio::time::sleep(Duration::from_millis(200)).await;
                minimal_client(&urls, conns, false).ticks().await
            });
            return;
        }
        let outcome = rt.block_on(async {
            match (client.as_str(), flag_value("--protocol").as_deref()) {
                ("minimal", Some("sse")) => minimal_sse_client(&urls, conns, seconds).await,
                ("minimal", Some("socketio")) => {
                    minimal_client(&urls, conns, true)
                        .measure(conns, seconds)
                        .await
                }
                ("minimal", _) => {
                    minimal_client(&urls, conns, false)
                        .measure(conns, seconds)
                        .await
                }
                _ => livegames_load(&urls, conns, seconds).await,
            }
        });
        println!("{}", outcome.to_line());
        return;
    }
    // (connections, frames/s each, steady-window seconds): 100 x 10/s gets a longer
    // window (40,000 frames), so its CPU per frame is not a few noisy instants.
    let mut rows: Vec<(usize, f64, u64)> = match (number("--conns"), number("--rate")) {
        (Some(c), Some(r)) => vec![(c as usize, r, 10)],
        _ => vec![(1_000, 100.0, 10), (10_000, 1.0, 10), (100, 10.0, 40)],
    };
    if let Some(seconds) = number("--seconds") {
        rows.iter_mut().for_each(|row| row.2 = seconds as u64);
    }
    // `--peers node,tsung`: only the peers whose names start so (`--peers none`: none).
    // The peers speak WebSocket only: none for `--protocol sse`.
    let only_peers: Option<Vec<String>> = match sse_asked() || compress_asked() {
        true => Some(vec!["none".into()]),
        false => value("--peers").map(|list| list.split(',').map(str::to_owned).collect()),
    };
    let repeat = number("--repeat").unwrap_or(3.0).max(1.0) as usize;
    rt.block_on(async {
        println!(
            "{:<34} {:>10} {:>12} {:>12} {:>9}",
            "scenario / client", "frames/s", "cpu-s/100k", "KiB/conn", "p99 ms"
        );
        if std::env::args().any(|a| a == "--unpinned") {
            for (conns, rate, seconds) in rows {
                unpinned_row(conns, rate, seconds, repeat).await;
            }
            return;
        }
        for (conns, rate, seconds) in rows {
            let mut server = match socketio_asked() {
                true => start_socketio_feed(rate),
                false => common::start_livegames(rate).await,
            };
            if sse_asked() {
                server.urls = server.urls.iter().map(|u| sse_url(u)).collect();
            }
            pin(server.child.id(), SERVER_CPU);
            let (mut minimal, mut ours) = (Vec::new(), Vec::new());
            // Alternating, so a drift of the machine (the server warming up, another
            // process) falls on both clients alike.
            for round in 0..repeat {
                let order = if round % 2 == 0 {
                    ["minimal", "livegames"]
                } else {
                    ["livegames", "minimal"]
                };
                for client in order {
                    let outcome = child(client, &server.urls, conns, seconds);
                    match client {
                        "minimal" => minimal.push(outcome),
                        _ => ours.push(outcome),
                    }
                }
            }
            // The peers, once each, on the same server.
            let candidates: &[peers::Peer] = match socketio_asked() {
                true => &peers::SOCKETIO_PEERS,
                false => &peers::PEERS,
            };
            let peer_runs: Vec<(&str, Result<Outcome, String>)> = candidates
                .iter()
                .filter(|peer| wanted(peer.name, only_peers.as_deref()))
                .map(|peer| match peer.missing() {
                    Some(why) => (peer.name, Err(why)),
                    None => (
                        peer.name,
                        peer.run(&server.urls, conns, seconds, Some(CLIENT_CPU)),
                    ),
                })
                .collect();
            drop(server);
            println!(
                "  cpu-s/100k of each run: minimal {}; livegames load {}",
                cpu_of_each(&minimal),
                cpu_of_each(&ours)
            );
            // Each round's two runs are minutes apart at most, so the ratio within a
            // round cancels a drift of the machine that moves both (the same client's
            // CPU per frame moved by up to +-8 % between runs at 100 x 10/s); its median is the comparison's headline.
            let paired = median(
                minimal
                    .iter()
                    .zip(&ours)
                    .map(|(m, o)| o.cpu_per_100k / m.cpu_per_100k)
                    .collect(),
            );
            let (minimal, ours) = (Outcome::median(&minimal), Outcome::median(&ours));
            let name = format!("{conns} x {rate}/s");
            print_row(&format!("{name} minimal-tt"), &minimal);
            print_row(&format!("{name} livegames load"), &ours);
            for (peer, outcome) in &peer_runs {
                match outcome {
                    Ok(o) => print_row(&format!("{name} {peer}"), o),
                    Err(why) => println!("{:<34} {why}", format!("{name} {peer}")),
                }
            }
            println!(
                "  -> livegames load: {paired:.2}x the minimal client's CPU per frame (median of the {repeat} rounds' ratios; {:.2}x of the medians), {:.2}x its memory per connection (medians of {repeat})",
                ours.cpu_per_100k / minimal.cpu_per_100k,
                ours.kib_per_conn / minimal.kib_per_conn
            );
            for (peer, outcome) in &peer_runs {
                if let Ok(o) = outcome {
                    println!(
                        "  -> {peer}: {:.2}x the minimal client's CPU per frame, {:.2}x its memory per connection (one run)",
                        o.cpu_per_100k / minimal.cpu_per_100k,
                        o.kib_per_conn / minimal.kib_per_conn
                    );
                }
            }
        }
    });
}

/// One row of `--unpinned`: the bare client, the `livegames load` CLI with its
/// defaults and node's `ws`, each in its own process, none pinned, beside the server on
/// the same cores; their CPU is their whole process tree's over the steady window.
/// Rounds alternate the order (round r starts with client r mod 3), so a drift of the
/// machine falls on all alike; the headline ratios are each round's own, their median.
async fn unpinned_row(conns: usize, rate: f64, seconds: u64, repeat: usize) {
    let server = common::start_livegames(rate).await;
    let name = format!("{conns} x {rate}/s");
    let clients: Vec<&peers::Peer> = peers::UNPINNED
        .iter()
        .filter(|peer| match peer.missing() {
            Some(why) => {
                println!("{:<34} {why}", format!("{name} {}", peer.name));
                false
            }
            None => true,
        })
        .collect();
    // rounds[r][c]: client c's figures in round r.
    let mut rounds: Vec<Vec<Option<Outcome>>> = Vec::new();
    for round in 0..repeat {
        let mut this_round: Vec<Option<Outcome>> = (0..clients.len()).map(|_| None).collect();
        for k in 0..clients.len() {
            let c = (round + k) % clients.len();
            match clients[c].run(&server.urls, conns, seconds, None) {
                Ok(outcome) => this_round[c] = Some(outcome),
                Err(why) => println!("  {} (round {}): {why}", clients[c].name, round + 1),
            }
        }
        rounds.push(this_round);
    }
    drop(server);
    for (c, client) in clients.iter().enumerate() {
        let runs: Vec<&Outcome> = rounds.iter().filter_map(|r| r[c].as_ref()).collect();
        let each: Vec<String> = runs
            .iter()
            .map(|o| format!("{:.3}", o.cpu_per_100k))
            .collect();
        println!(
            "  cpu-s/100k of each run: {} {}",
            client.name,
            each.join(" ")
        );
    }
    for (c, client) in clients.iter().enumerate() {
        let runs: Vec<Outcome> = rounds.iter().filter_map(|r| r[c].clone()).collect();
        if !runs.is_empty() {
            print_row(
                &format!("{name} {} (unpinned)", client.name),
                &Outcome::median(&runs),
            );
        }
    }
    let position = |wanted: &str| clients.iter().position(|p| p.name == wanted);
    let Some(load) = position("livegames load") else {
        return;
    };
    for other in ["bare client", "node ws"] {
        let Some(o) = position(other) else { continue };
        let ratios: Vec<f64> = rounds
            .iter()
            .filter_map(|r| Some(r[load].as_ref()?.cpu_per_100k / r[o].as_ref()?.cpu_per_100k))
            .collect();
        let memory: Vec<f64> = rounds
            .iter()
            .filter_map(|r| Some(r[load].as_ref()?.kib_per_conn / r[o].as_ref()?.kib_per_conn))
            .collect();
        if ratios.is_empty() {
            println!("  -> livegames load against {other}: no round with both");
            continue;
        }
        let each: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
        println!(
            "  -> livegames load: {:.2}x {other}'s CPU per frame (median of {} rounds' ratios: {}), {:.2}x its memory per connection",
            median(ratios.clone()),
            ratios.len(),
            each.join(" "),
            median(memory)
        );
    }
}

/// Whether the peer `name` runs: all do without `--peers`; with it, those whose names
/// start with one of its words.
fn wanted(name: &str, only: Option<&[String]>) -> bool {
    only.is_none_or(|words| words.iter().any(|w| name.starts_with(w.as_str())))
}

/// The value after `name` on this process's command line.
fn flag_value(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    let at = args.iter().position(|a| a == name)?;
    args.get(at + 1).cloned()
}

/// The middle value (the upper one of an even count).
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn cpu_of_each(runs: &[Outcome]) -> String {
    let each: Vec<String> = runs
        .iter()
        .map(|o| format!("{:.3}", o.cpu_per_100k))
        .collect();
    each.join(" ")
}

/// The server runs on one core and each client on the other, so neither's CPU time
/// includes the cache and scheduler noise of sharing a core with the other (without
/// it, the same client's CPU per frame varied by 40 % from run to run here).
const SERVER_CPU: usize = 0;
const CLIENT_CPU: usize = 1;

/// Pins every thread of process `pid` to `cpu` with util-linux's `taskset`; without
/// it (or on a one-core machine) the figures are noisier, not wrong.
fn pin(pid: u32, cpu: usize) {
    let pinned = std::process::Command::new("taskset")
        .args(["-a", "-p", "-c", &cpu.to_string(), &pid.to_string()])
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !pinned {
        eprintln!("note: could not pin process {pid} to CPU {cpu}; figures will be noisier");
    }
}

/// Runs one client in a process of its own and reads its figures.
fn child(client: &str, urls: &[String], conns: usize, seconds: u64) -> Outcome {
    let mut command = std::process::Command::new(std::env::current_exe().unwrap());
    command
        .args(["--client", client, "--conns", &conns.to_string()])
        .args(["--seconds", &seconds.to_string(), "--urls", &urls.join(",")])
        .args(["--cpu", &CLIENT_CPU.to_string()]);
    // An ablation: `load` with another protocol-ping interval (`--ws-ping 0s`: none).
    if let Some(ping) = flag_value("--ws-ping") {
        command.args(["--ws-ping", &ping]);
    }
    if let Some(protocol) = flag_value("--protocol") {
        command.args(["--protocol", &protocol]);
    }
    if compress_asked() {
        command.arg("--compress");
    }
    let out = command.output().expect("the client runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{client}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Outcome::from_line(text.lines().last().unwrap_or(""))
}

#[derive(Clone)]
pub struct Outcome {
    fps: f64,
    cpu_per_100k: f64,
    kib_per_conn: f64,
    p99_ms: f64,
}

impl Outcome {
    fn to_line(&self) -> String {
        format!(
            "{} {} {} {}",
            self.fps, self.cpu_per_100k, self.kib_per_conn, self.p99_ms
        )
    }

    /// Each figure's median over the runs.
    fn median(runs: &[Outcome]) -> Outcome {
        let of = |f: fn(&Outcome) -> f64| median(runs.iter().map(f).collect());
        Outcome {
            fps: of(|o| o.fps),
            cpu_per_100k: of(|o| o.cpu_per_100k),
            kib_per_conn: of(|o| o.kib_per_conn),
            p99_ms: of(|o| o.p99_ms),
        }
    }

    fn from_line(line: &str) -> Outcome {
        let v: Vec<f64> = line
            .split_whitespace()
            .map(|x| x.parse().unwrap())
            .collect();
        Outcome {
            fps: v[0],
            cpu_per_100k: v[1],
            kib_per_conn: v[2],
            p99_ms: v[3],
        }
    }
}

fn print_row(name: &str, o: &Outcome) {
    // A client that measures no latency (Tsung here) has no p99, not a p99 of 0.
    let p99 = if o.p99_ms.is_nan() {
        "n/a".to_owned()
    } else {
        format!("{:.2}", o.p99_ms)
    };
    println!(
        "{name:<34} {:>10.0} {:>12.3} {:>12.1} {p99:>9}",
        o.fps, o.cpu_per_100k, o.kib_per_conn
    );
}

fn rss_kib() -> f64 {
    proc_stats(std::process::id()).1
}

/// The steady window: CPU and frames from one second after every connection is open,
/// for `seconds`; peak RSS against the RSS before connecting.
struct Window {
    rss_before: f64,
    peak_rss: AtomicU64,
    start: std::sync::Mutex<Option<(f64, u64, Instant)>>,
    end: std::sync::Mutex<Option<(f64, u64, Instant)>>,
}

impl Window {
    fn new() -> Window {
        Window {
            rss_before: rss_kib(),
            peak_rss: AtomicU64::new(0),
            start: std::sync::Mutex::new(None),
            end: std::sync::Mutex::new(None),
        }
    }

    /// Called about once a second with the frames so far and whether all are open.
    fn sample(&self, frames: u64, all_open_since: Option<Duration>, seconds: u64) {
        self.peak_rss.fetch_max(rss_kib() as u64, Ordering::Relaxed);
        let cpu = process_cpu_seconds().unwrap_or(0.0);
        let mut start = self.start.lock().unwrap();
        match *start {
            None if all_open_since.is_some_and(|d| d >= Duration::from_secs(1)) => {
                *start = Some((cpu, frames, Instant::now()));
            }
            Some((_, _, at)) if at.elapsed() >= Duration::from_secs(seconds) => {
                self.end
                    .lock()
                    .unwrap()
                    .get_or_insert((cpu, frames, Instant::now()));
            }
            _ => {}
        }
    }

    fn done(&self) -> bool {
        self.end.lock().unwrap().is_some()
    }

    fn outcome(&self, conns: usize, p99_ms: f64) -> Outcome {
        let (c0, f0, t0) = self.start.lock().unwrap().expect("a steady window");
        let (c1, f1, t1) = self.end.lock().unwrap().expect("a steady window");
        let frames = (f1 - f0).max(1) as f64;
        Outcome {
            fps: frames / (t1 - t0).as_secs_f64(),
            cpu_per_100k: (c1 - c0) / frames * 100_000.0,
            kib_per_conn: (self.peak_rss.load(Ordering::Relaxed) as f64 - self.rss_before).max(0.0)
                / conns as f64,
            p99_ms,
        }
    }
}

async fn livegames_load(urls: &[String], conns: usize, seconds: u64) -> Outcome {
    let window = Arc::new(Window::new());
    // The CLI's defaults: `--ws-ping auto`, its read buffer, a 30 s idle timeout.
    let config = LoadConfig {
        targets: urls
            .iter()
            .map(|u| {
                let url = url::Url::parse(u).expect("a stream URL");
                match socketio_asked() {
                    true => livegames::load::session::socketio::engine_io_url(&url).into(),
                    false => url.into(),
                }
            })
            .collect(),
        share: Share::whole(conns),
        clock_probe: None,
        // Long enough for the ramp, the warm-up second and the window.
        duration: Duration::from_secs(seconds + 20),
        ramp: Duration::ZERO,
        vu: VuConfig {
            connect: ConnectOptions {
                connect_timeout: Duration::from_secs(10),
                compress: if compress_asked() {
                    livegames::wire::Offer::On
                } else {
                    livegames::wire::Offer::Off
                },
                ..ConnectOptions::default()
            },
            idle_timeout: Duration::from_secs(30),
            send_rate: None,
            protocol: match flag_value("--protocol").as_deref() {
                Some("sse") => livegames::load::session::link::Protocol::Sse,
                Some("socketio") => livegames::load::session::link::Protocol::Socketio,
                _ => livegames::load::session::link::Protocol::Ws,
            },
            socketio: livegames::load::session::socketio::SocketIoOptions {
                event: Some("tick".into()),
                ..Default::default()
            },
            ws_ping: match flag_value("--ws-ping") {
                _ if sse_asked() => None,
                Some(every) => Some(humantime::parse_duration(&every).expect("--ws-ping"))
                    .filter(|d| !d.is_zero()),
                None => Some(ping_interval(
                    AUTO_PING_EVERY,
                    conns,
                    Some(AUTO_PINGS_PER_SECOND),
                )),
            },
            ..VuConfig::default()
        },
        budgets: Vec::new(),
        out: None,
    };
    let stop = CancellationToken::new();
    let frames = Arc::new(AtomicU64::new(0));
    let (w, f, s) = (window.clone(), frames.clone(), stop.clone());
    let summary = livegames::load::run(config, stop.clone(), move |tick| {
        let total = f.fetch_add(tick.frames, Ordering::Relaxed) + tick.frames;
        let since = tick
            .all_open_after
            .map(|at| tick.elapsed.saturating_sub(at));
        w.sample(total, since, seconds);
        if w.done() {
            s.cancel();
        }
    })
    .await;
    if compress_asked() {
        let compression = summary.totals.counts.compression.as_ref();
        assert!(
            compression.is_some_and(|z| z.agreed_everywhere()),
            "--compress: the server did not agree on every connection: {compression:?}"
        );
    }
    assert_eq!(
        summary.totals.counts.lost,
        Some(0),
        "the server dropped frames: the comparison would be unfair"
    );
    let p99 = summary
        .latency(Distribution::Delivery, Quantile::P99)
        .unwrap_or(f64::NAN)
        / 1000.0;
    window.outcome(conns, p99)
}

/// `--compress` on the command line.
fn compress_asked() -> bool {
    std::env::args().any(|a| a == "--compress")
}

/// `--protocol socketio` on the command line.
fn socketio_asked() -> bool {
    flag_value("--protocol").as_deref() == Some("socketio")
}

/// npm's socket.io server broadcasting `tick` at `rate` (tests/peers/socketio-feed.js),
/// on the server's CPU.
fn start_socketio_feed(rate: f64) -> common::Server {
    use std::io::BufRead;
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/socketio-feed.js");
    let mut child = std::process::Command::new("node")
        .arg(&script)
        .arg(rate.to_string())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("node runs the socket.io feed (npm ci --prefix tests/peers)");
    let stdout = child.stdout.take().expect("piped");
    let mut first = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut first)
        .expect("the feed says its port");
    let port = first
        .trim()
        .strip_prefix("port ")
        .expect("a `port N` line")
        .to_owned();
    common::Server {
        child,
        urls: vec![format!("ws://127.0.0.1:{port}/")],
    }
}

/// `--protocol sse` on the command line.
fn sse_asked() -> bool {
    flag_value("--protocol").as_deref() == Some("sse")
}

/// A stream URL of the server as its Server-Sent Events twin.
fn sse_url(ws: &str) -> String {
    ws.replacen("ws://", "http://", 1)
        .replacen("/ws/live/", "/sse/live/", 1)
}

/// The SSE baseline: one GET per stream, events split as they arrive, each one's `ts`
/// taken and the latency kept.
async fn minimal_sse_client(urls: &[String], conns: usize, seconds: u64) -> Outcome {
    let window = Window::new();
    let stop = CancellationToken::new();
    let frames = Arc::new(AtomicU64::new(0));
    let open = Arc::new(AtomicU64::new(0));
    let http = reqwest::Client::new();
    let mut tasks = Vec::new();
    for i in 0..conns {
        let url = urls[i % urls.len()].clone();
        let (stop, frames, open, http) = (stop.clone(), frames.clone(), open.clone(), http.clone());
        tasks.push(tokio::spawn(async move {
            let mut response = http.get(url).send().await.expect("connects");
            open.fetch_add(1, Ordering::Relaxed);
            let mut latencies = Vec::new();
            let mut pending = Vec::new();
            let stop = stop.child_token();
            let stopped = stop.cancelled();
            tokio::pin!(stopped);
            loop {
                let chunk = tokio::select! {
                    _ = &mut stopped => break,
                    c = response.chunk() => c,
                };
                let Ok(Some(chunk)) = chunk else { break };
                pending.extend_from_slice(&chunk);
                while let Some(event) = livegames::client::sse::take_event(&mut pending) {
                    if !event.has_data {
                        continue;
                    }
                    frames.fetch_add(1, Ordering::Relaxed);
                    if let Some(ts) = ts_of(&event.data) {
                        latencies.push((now_micros() - ts).max(0) as u32);
                    }
                }
            }
            latencies
        }));
    }
    let clients = Clients {
        window,
        stop,
        frames,
        open,
        tasks,
    };
    clients.measure(conns, seconds).await
}

/// The baseline: connect, read every frame, take its `ts` and keep the latency.
/// With `engine_io`, the socket.io baseline: just enough Engine.IO on the same socket
/// (the open packet is read, `40` connects the namespace, each `2` ping gets its `3`),
/// each `42["tick",…]` event's `ts` taken.
fn minimal_client(urls: &[String], conns: usize, engine_io: bool) -> Clients {
    let window = Window::new();
    // Stopped by a token, not a polling timeout: a timer per connection would cost
    // the baseline what a minimal client does not spend.
    let stop = CancellationToken::new();
    let frames = Arc::new(AtomicU64::new(0));
    let open = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for i in 0..conns {
        let url = match engine_io {
            true => format!(
                "{}socket.io/?EIO=4&transport=websocket",
                urls[i % urls.len()]
            ),
            false => urls[i % urls.len()].clone(),
        };
        let (stop, frames, open) = (stop.clone(), frames.clone(), open.clone());
        tasks.push(tokio::spawn(async move {
            use futures_util::SinkExt;
            let config = WebSocketConfig::default().read_buffer_size(4096);
            let (mut ws, _) =
                tokio_tungstenite::connect_async_with_config(url.as_str(), Some(config), true)
                    .await
                    .expect("connects");
            if !engine_io {
                open.fetch_add(1, Ordering::Relaxed);
            }
            let mut latencies = Vec::new();
            // Created once, on a child token of its own: a fresh wait per frame, or a
            // wait on the token all connections share, would take that token's
            // waiter-list lock on every message, a cost no minimal client pays.
            let stop = stop.child_token();
            let stopped = stop.cancelled();
            tokio::pin!(stopped);
            loop {
                let message = tokio::select! {
                    _ = &mut stopped => break,
                    m = ws.next() => m,
                };
                let text = match message {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(_)) => continue,
                    _ => break,
                };
                let packet = text.as_str();
                if !engine_io || packet.starts_with("42") {
                    frames.fetch_add(1, Ordering::Relaxed);
                    if let Some(ts) = ts_of(packet) {
                        latencies.push((now_micros() - ts).max(0) as u32);
                    }
                } else if packet == "2" {
                    let _ = ws.send(Message::text("3")).await;
                } else if packet.starts_with("40") {
                    open.fetch_add(1, Ordering::Relaxed);
                } else if packet.starts_with('0') {
                    let _ = ws.send(Message::text("40")).await;
                }
            }
            latencies
        }));
    }
    Clients {
        window,
        stop,
        frames,
        open,
        tasks,
    }
}

/// A minimal client's running connections and what they count.
struct Clients {
    window: Window,
    stop: CancellationToken,
    frames: Arc<AtomicU64>,
    open: Arc<AtomicU64>,
    /// Each connection's delivery latencies (µs), handed back when it stops.
    tasks: Vec<tokio::task::JoinHandle<Vec<u32>>>,
}

impl Clients {
    /// Samples the frame count each second until the steady window is done, stops
    /// the connections and gives the figures with their p99.
    async fn measure(mut self, conns: usize, seconds: u64) -> Outcome {
        let mut all_open_at = None;
        while !self.window.done() {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if all_open_at.is_none() && self.open.load(Ordering::Relaxed) == conns as u64 {
                all_open_at = Some(Instant::now());
            }
            self.window.sample(
                self.frames.load(Ordering::Relaxed),
                all_open_at.map(|t| t.elapsed()),
                seconds,
            );
        }
        let p99_us = self.stop_all().await;
        self.window.outcome(conns, p99_us as f64 / 1000.0)
    }

    /// Prints `tick FRAMES OPEN` each second until SIGTERM, then `p99 MICROS`.
    async fn ticks(mut self) {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate()).expect("a SIGTERM listener");
        let mut every = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = terminate.recv() => break,
                _ = every.tick() => println!(
                    "tick {} {}",
                    self.frames.load(Ordering::Relaxed),
                    self.open.load(Ordering::Relaxed)
                ),
            }
        }
        println!("p99 {}", self.stop_all().await);
    }

    /// Stops every connection; the p99 (µs) of their latencies.
    async fn stop_all(&mut self) -> u32 {
        self.stop.cancel();
        let mut all = Vec::new();
        for t in self.tasks.drain(..) {
            all.extend(t.await.unwrap());
        }
        all.sort_unstable();
        all.get(((all.len() as f64 - 1.0) * 0.99) as usize)
            .copied()
            .unwrap_or(0)
    }
}
