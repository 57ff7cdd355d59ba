//! Siege: hostile clients all at once against a release `livegames serve`, while
//! control clients measure what an ordinary user gets.
//!
//! Run: `cargo bench --bench siege` (60 s), or with any of
//! `-- --seconds 60 --slow 200 --tricklers 500 --flooders 4 --churn 50 --control 10`.
//!
//! The attackers, each reconnecting as soon as the server is done with it:
//! - slow readers: WebSockets with a 4 KiB receive buffer that never read;
//! - header tricklers: TCP connections that send a request head one byte a second;
//! - ping flooders: WebSockets sending pings as fast as the socket takes them;
//! - churn: `--churn` new WebSockets a second that read their snapshot and close.
//!
//! Measured: the control clients' delivery latency (receive time - `ts`, one clock),
//! `/health` round trips, the server's CPU and peak RSS (from /proc), connections
//! refused (503 or not accepted), and the server's own counters of what it cut off.
//!
//! Traffic goes to 127.0.0.1 only, for a bounded time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

mod common;
use common::{now_micros, proc_stats, ts_of};

/// Ticks per second per live game: the control clients' stream.
const RATE: f64 = 10.0;

struct Plan {
    seconds: u64,
    slow: usize,
    tricklers: usize,
    flooders: usize,
    churn: f64,
    control: usize,
}

impl Plan {
    fn from_args() -> Self {
        let args: Vec<String> = std::env::args().collect();
        let flag = |name: &str, default: f64| {
            args.iter()
                .position(|a| a == name)
                .and_then(|i| args.get(i + 1))
                .map_or(default, |v| v.parse::<f64>().expect(name))
        };
        Plan {
            seconds: flag("--seconds", 60.0) as u64,
            slow: flag("--slow", 200.0) as usize,
            tricklers: flag("--tricklers", 500.0) as usize,
            flooders: flag("--flooders", 4.0) as usize,
            churn: flag("--churn", 50.0),
            control: flag("--control", 10.0) as usize,
        }
    }
}

/// What the attackers saw, counted as it happens.
#[derive(Default)]
struct Tally {
    slow_opened: AtomicU64,
    trickles_dropped: AtomicU64,
    floods_cut: AtomicU64,
    churned: AtomicU64,
    refused: AtomicU64,
    control_closed: AtomicU64,
}

impl Tally {
    fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

fn main() {
    let plan = Plan::from_args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(siege(plan));
}

async fn siege(plan: Plan) {
    let server = common::start_livegames(RATE).await;
    let pid = server.child.id();
    let addr = server.urls[0]
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let (_, rss_start) = proc_stats(pid);
    println!(
        "siege: {} s against a release serve on {} cores: {} slow readers, {} header tricklers, {} ping flooders, {} connections/s churn; {} control clients at {RATE} frames/s per game",
        plan.seconds,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        plan.slow,
        plan.tricklers,
        plan.flooders,
        plan.churn,
        plan.control
    );

    let stop = CancellationToken::new();
    let tally = Arc::new(Tally::default());
    let mut attackers = JoinSet::new();
    let urls = server.urls.clone();
    for i in 0..plan.slow {
        attackers.spawn(slow_reader(
            urls[i % urls.len()].clone(),
            stop.clone(),
            tally.clone(),
        ));
    }
    for _ in 0..plan.tricklers {
        attackers.spawn(trickler(addr.clone(), stop.clone(), tally.clone()));
    }
    for i in 0..plan.flooders {
        attackers.spawn(flooder(
            urls[i % urls.len()].clone(),
            stop.clone(),
            tally.clone(),
        ));
    }
    attackers.spawn(churn(urls.clone(), plan.churn, stop.clone(), tally.clone()));
    let mut controls = JoinSet::new();
    for i in 0..plan.control {
        controls.spawn(control(
            urls[i % urls.len()].clone(),
            stop.clone(),
            tally.clone(),
        ));
    }
    let probes = tokio::spawn(health_probes(addr.clone(), stop.clone()));

    let (cpu_start, _) = proc_stats(pid);
    let started = Instant::now();
    let mut rss_peak = rss_start;
    while started.elapsed() < Duration::from_secs(plan.seconds) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        rss_peak = rss_peak.max(proc_stats(pid).1);
    }
    let (cpu_end, rss_end) = proc_stats(pid);
    let elapsed = started.elapsed().as_secs_f64();
    let counters = server_counters(&addr).await;
    stop.cancel();

    let mut latencies = Vec::new();
    while let Some(samples) = controls.join_next().await {
        latencies.extend(samples.unwrap());
    }
    let (health_ms, health_failed) = probes.await.unwrap();
    attackers.abort_all();
    while attackers.join_next().await.is_some() {}
    drop(server);

    report(
        Report {
            latencies,
            health_ms,
            health_failed,
            cpu_share: (cpu_end - cpu_start) / elapsed,
            rss_start,
            rss_peak,
            rss_end,
            counters,
        },
        &tally,
    );
}

struct Report {
    latencies: Vec<u32>,
    health_ms: Vec<f64>,
    health_failed: u64,
    cpu_share: f64,
    rss_start: f64,
    rss_peak: f64,
    rss_end: f64,
    counters: Vec<(String, f64)>,
}

fn report(mut r: Report, tally: &Tally) {
    r.latencies.sort_unstable();
    let ms = |p: f64| {
        r.latencies
            .get(((r.latencies.len() as f64 - 1.0) * p) as usize)
            .map_or(f64::NAN, |us| *us as f64 / 1000.0)
    };
    r.health_ms.sort_by(f64::total_cmp);
    let health = |p: f64| {
        r.health_ms
            .get(((r.health_ms.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
    println!(
        "control delivery   {} frames  p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms  streams ended early {}",
        r.latencies.len(),
        ms(0.50),
        ms(0.99),
        ms(1.0),
        n(&tally.control_closed)
    );
    println!(
        "/health            {} probes  p99 {:.2} ms  max {:.2} ms  failed {}",
        r.health_ms.len(),
        health(0.99),
        health(1.0),
        r.health_failed
    );
    println!(
        "server             CPU {:.0} % of one core  RSS start {:.0} MiB, peak {:.0} MiB, end {:.0} MiB",
        r.cpu_share * 100.0,
        r.rss_start / 1024.0,
        r.rss_peak / 1024.0,
        r.rss_end / 1024.0
    );
    println!(
        "attackers          slow-reader connections {}  trickles dropped {}  floods cut {}  churned {}  refused {}",
        n(&tally.slow_opened),
        n(&tally.trickles_dropped),
        n(&tally.floods_cut),
        n(&tally.churned),
        n(&tally.refused)
    );
    println!("server counters");
    for (name, value) in &r.counters {
        println!("  {name} {value}");
    }
}

/// A WebSocket whose socket holds 4 KiB and that never reads: held until the server
/// would close it as slow (4008) or for 30 s, then opened again.
async fn slow_reader(url: String, stop: CancellationToken, tally: Arc<Tally>) {
    while !stop.is_cancelled() {
        let opened = async {
            let addr = host_of(&url).parse().ok()?;
            let socket = TcpSocket::new_v4().ok()?;
            socket.set_recv_buffer_size(4096).ok()?;
            let stream = socket.connect(addr).await.ok()?;
            tokio_tungstenite::client_async(url.as_str(), MaybeTlsStream::Plain(stream))
                .await
                .ok()
        };
        match opened.await {
            Some(ws) => {
                Tally::add(&tally.slow_opened);
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(30)) => drop(ws),
                }
            }
            None => refused(&tally, &stop).await,
        }
    }
}

/// A request head sent one byte a second, until the server drops the connection.
async fn trickler(addr: String, stop: CancellationToken, tally: Arc<Tally>) {
    let head = b"GET /health HTTP/1.1\r\nHost: siege\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    while !stop.is_cancelled() {
        let Ok(mut tcp) = TcpStream::connect(&addr).await else {
            refused(&tally, &stop).await;
            continue;
        };
        let mut buf = [0u8; 1024];
        let mut sent = 0;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                read = tcp.read(&mut buf) => {
                    if matches!(read, Ok(0) | Err(_)) {
                        Tally::add(&tally.trickles_dropped);
                        break;
                    }
                }
                _ = tokio::time::sleep(Duration::from_secs(1)) => {
                    let byte = head.get(sent).copied().unwrap_or(b'a');
                    sent += 1;
                    if tcp.write_all(&[byte]).await.is_err() {
                        Tally::add(&tally.trickles_dropped);
                        break;
                    }
                }
            }
        }
    }
}

/// Pings as fast as the socket takes them, reconnecting whenever it is cut off.
async fn flooder(url: String, stop: CancellationToken, tally: Arc<Tally>) {
    let ping: Utf8Bytes = r#"{"type":"ping","id":1}"#.into();
    while !stop.is_cancelled() {
        let Some(ws) = open(&url, &tally, &stop).await else {
            continue;
        };
        let (mut sink, mut stream) = ws.split();
        let ping = ping.clone();
        let writer =
            tokio::spawn(
                async move { while sink.send(Message::Text(ping.clone())).await.is_ok() {} },
            );
        let cut = async {
            while let Some(Ok(message)) = stream.next().await {
                if let Message::Close(frame) = message {
                    return frame.is_some_and(|f| u16::from(f.code) == 1008);
                }
            }
            false
        };
        tokio::select! {
            _ = stop.cancelled() => { writer.abort(); return; }
            was_cut = cut => if was_cut { Tally::add(&tally.floods_cut) },
        }
        writer.abort();
    }
}

/// `per_second` new WebSockets a second, each reading its first frame and closing.
async fn churn(urls: Vec<String>, per_second: f64, stop: CancellationToken, tally: Arc<Tally>) {
    if per_second <= 0.0 {
        return;
    }
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / per_second));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let in_flight = Arc::new(tokio::sync::Semaphore::new(256));
    for i in 0usize.. {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let Ok(permit) = in_flight.clone().try_acquire_owned() else {
            continue;
        };
        let (url, tally, stop) = (urls[i % urls.len()].clone(), tally.clone(), stop.clone());
        tokio::spawn(async move {
            let _permit = permit;
            if let Some(mut ws) = open(&url, &tally, &stop).await {
                let first = tokio::time::timeout(Duration::from_secs(5), ws.next()).await;
                if matches!(first, Ok(Some(Ok(Message::Text(_))))) {
                    Tally::add(&tally.churned);
                }
                let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
            }
        });
    }
}

/// An ordinary client: reads its stream and records every frame's delivery latency.
async fn control(url: String, stop: CancellationToken, tally: Arc<Tally>) -> Vec<u32> {
    let mut latencies = Vec::new();
    let Some(mut ws) = open(&url, &tally, &stop).await else {
        Tally::add(&tally.control_closed);
        return latencies;
    };
    loop {
        let next = tokio::select! {
            _ = stop.cancelled() => return latencies,
            next = ws.next() => next,
        };
        match next {
            Some(Ok(Message::Text(text))) => {
                if text.as_str().contains(r#""type":"update""#)
                    && let Some(ts) = ts_of(text.as_str())
                {
                    latencies.push((now_micros() - ts).clamp(0, u32::MAX as i64) as u32);
                }
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => {
                Tally::add(&tally.control_closed);
                return latencies;
            }
        }
    }
}

/// `/health` four times a second: round trips in ms and failures.
async fn health_probes(addr: String, stop: CancellationToken) -> (Vec<f64>, u64) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let url = format!("http://{addr}/health");
    let (mut times, mut failed) = (Vec::new(), 0);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return (times, failed),
            _ = tick.tick() => {}
        }
        let started = Instant::now();
        match client.get(&url).send().await {
            Ok(r) if r.status().is_success() => {
                times.push(started.elapsed().as_secs_f64() * 1000.0)
            }
            _ => failed += 1,
        }
    }
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens a WebSocket; a refusal is counted and waited out briefly.
async fn open(url: &str, tally: &Tally, stop: &CancellationToken) -> Option<Ws> {
    let connect = tokio_tungstenite::connect_async(url);
    match tokio::time::timeout(Duration::from_secs(10), connect).await {
        Ok(Ok((ws, _))) => Some(ws),
        Ok(Err(_)) | Err(_) => {
            refused(tally, stop).await;
            None
        }
    }
}

async fn refused(tally: &Tally, stop: &CancellationToken) {
    Tally::add(&tally.refused);
    tokio::select! {
        _ = stop.cancelled() => {}
        _ = tokio::time::sleep(Duration::from_millis(200)) => {}
    }
}

fn host_of(url: &str) -> &str {
    url.trim_start_matches("ws://").split('/').next().unwrap()
}

/// The server's own account: what it dropped, closed and refused.
async fn server_counters(addr: &str) -> Vec<(String, f64)> {
    let Ok(response) = reqwest::get(format!("http://{addr}/metrics")).await else {
        return vec![("(metrics unreachable)".into(), f64::NAN)];
    };
    let text = response.text().await.unwrap_or_default();
    let wanted = [
        "livegames_connections_dropped_total",
        "livegames_ws_closes_total",
        "livegames_ws_rate_limited_total",
        "livegames_ws_rejected_total",
        "livegames_ws_slow_consumer_closes_total",
        "livegames_accept_errors_total",
        "livegames_tcp_connections",
    ];
    text.lines()
        .filter(|line| wanted.iter().any(|w| line.starts_with(w)))
        .filter_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            let value: f64 = value.parse().ok()?;
            (value != 0.0).then(|| (name.to_owned(), value))
        })
        .collect()
}
