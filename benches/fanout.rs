//! Fan-out benchmark: `livegames serve` against a bare tokio-tungstenite broadcast
//! server, on loopback, at 100, 1,000 and 10,000 WebSocket clients.
//!
//! Run: `cargo bench --bench fanout` (all scenarios, about 6 minutes), or
//! `cargo bench --bench fanout -- --clients 1000 --rate 20 --seconds 10` for one
//! (`--server livegames` or `--server bare` for one server only).
//! `--compress shared|per-client` runs livegames alone with `--ws-compress` so, its
//! clients offering permessage-deflate as browsers do (`off`: they offer nothing, the
//! same clients otherwise); `wire B/frame` is what serve wrote on the wire per frame
//! delivered (its `livegames_ws_wire_bytes_sent_total`). `--serve-arg=ARG`
//! (repeatable) passes ARG to `livegames serve`, e.g. `--serve-arg=--ws-batch-window=0`.
//!
//! Each server runs in its own process so its CPU time (from /proc) and memory (RSS)
//! are its own. Clients run in this process, spread over the server's live games;
//! each records `receive time - ts` of every frame (delivery latency, one clock).
//! Reported per scenario and server: frames/s delivered, p50/p99/max latency,
//! server CPU-seconds per 100,000 frames, server memory per connection (RSS
//! growth while the clients are connected, divided by the number of clients), and
//! how evenly the clients are served: the 10th and 90th percentiles of each
//! client's own median latency (far apart when some clients are always written to
//! first and others last).
//!
//! Traffic goes to 127.0.0.1 only, for a bounded time.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

mod common;
use common::{Server, now_micros, proc_stats, read_addr, ts_of};

const GAMES: usize = 4;
const FRAME_PAD: usize = 380; // bare frames about as large as livegames updates

#[derive(Clone, Copy, Debug)]
struct Scenario {
    clients: usize,
    rate: f64,
    seconds: u64,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("bare-server") {
        let rate: f64 = args[2].parse().expect("rate");
        let raw = args.get(3).map(String::as_str) == Some("raw");
        return bare_server(rate, raw);
    }
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map(|v| v.parse::<f64>().expect(name))
    };
    let scenarios = match flag("--clients") {
        Some(clients) => vec![Scenario {
            clients: clients as usize,
            rate: flag("--rate").unwrap_or(1.0),
            seconds: flag("--seconds").unwrap_or(10.0) as u64,
        }],
        None => vec![
            Scenario {
                clients: 100,
                rate: 100.0,
                seconds: 10,
            },
            Scenario {
                clients: 1_000,
                rate: 20.0,
                seconds: 10,
            },
            Scenario {
                clients: 10_000,
                rate: 1.0,
                seconds: 15,
            },
        ],
    };
    // `--server livegames` (or `bare`) runs one of the two.
    let only = args
        .iter()
        .position(|a| a == "--server")
        .and_then(|i| args.get(i + 1));
    let compress = args
        .iter()
        .position(|a| a == "--compress")
        .and_then(|i| args.get(i + 1))
        .map(|mode| mode.to_owned());
    let serve_args: Vec<String> = args
        .iter()
        .filter_map(|a| a.strip_prefix("--serve-arg="))
        .map(str::to_owned)
        .collect();
    let kinds: Vec<ServerKind> = [ServerKind::Bare, ServerKind::Raw, ServerKind::Livegames]
        .into_iter()
        .filter(|k| only.is_none_or(|name| k.name().starts_with(name.as_str())))
        .filter(|k| compress.is_none() || matches!(k, ServerKind::Livegames))
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "fanout: {} cores; clients spread over live games; each game publishes RATE frames/s",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    if let Some(mode) = &compress {
        println!(
            "compression: serve --ws-compress {mode}, clients offer permessage-deflate unless off"
        );
    }
    println!(
        "{:<10} {:>7} {:>6} {:>11} {:>9} {:>9} {:>9} {:>13} {:>11} {:>7} {:>13} {:>13} {:>17}",
        "server",
        "clients",
        "rate",
        "frames/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "cpu-s/100k",
        "KiB/conn",
        "closed",
        "client cpu-s",
        "wire B/frame",
        "client p50 p10-p90"
    );
    for s in scenarios {
        for kind in kinds.iter().copied() {
            let result = rt.block_on(run(kind, s, compress.as_deref(), &serve_args));
            let wire = result
                .wire_per_frame
                .map_or_else(|| "n/a".to_owned(), |b| format!("{b:.0}"));
            println!(
                "{:<10} {:>7} {:>6} {:>11.0} {:>9.2} {:>9.2} {:>9.2} {:>13.3} {:>11.1} {:>7} {:>13.3} {:>13} {:>17}",
                kind.name(),
                s.clients,
                s.rate,
                result.fps,
                result.p50_ms,
                result.p99_ms,
                result.max_ms,
                result.cpu_per_100k,
                result.kib_per_conn,
                result.closed,
                result.client_cpu_per_100k,
                wire,
                format!(
                    "{:.1}-{:.1}",
                    result.client_medians_ms.0, result.client_medians_ms.1
                )
            );
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum ServerKind {
    Bare,
    /// The floor: each frame framed once per broadcast and written to every socket
    /// as is (one vectored write of whatever is queued), no WebSocket library on the
    /// hot path.
    Raw,
    Livegames,
}

impl ServerKind {
    fn name(self) -> &'static str {
        match self {
            ServerKind::Bare => "bare-tt",
            ServerKind::Raw => "raw-floor",
            ServerKind::Livegames => "livegames",
        }
    }
}

struct Outcome {
    fps: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    cpu_per_100k: f64,
    /// The same for this process's clients: the instrument's own cost.
    client_cpu_per_100k: f64,
    kib_per_conn: f64,
    /// Clients whose stream the server ended during the run (e.g. slow-consumer closes).
    closed: u64,
    /// Bytes serve wrote on the wire per frame delivered (livegames only).
    wire_per_frame: Option<f64>,
    /// The 10th and 90th percentiles of the clients' own median latencies: close
    /// together when no client is always served first (or last).
    client_medians_ms: (f64, f64),
}

async fn start(kind: ServerKind, rate: f64, compress: Option<&str>, extra: &[&str]) -> Server {
    match kind {
        ServerKind::Livegames => {
            let mut args = extra.to_vec();
            if let Some(mode) = compress.filter(|&mode| mode != "off") {
                args.extend(["--ws-compress", mode]);
            }
            common::start_livegames_with(rate, &args).await
        }
        ServerKind::Bare | ServerKind::Raw => {
            let mode = if matches!(kind, ServerKind::Raw) {
                "raw"
            } else {
                "tt"
            };
            let mut child = Command::new(std::env::current_exe().unwrap())
                .args(["bare-server", &rate.to_string(), mode])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("server starts");
            let addr = read_addr(&mut child);
            let urls = (0..GAMES).map(|g| format!("ws://{addr}/{g}")).collect();
            Server { child, urls }
        }
    }
}

/// serve's count of bytes written on the wire, from its /metrics.
async fn wire_bytes_sent(server: &Server) -> Option<f64> {
    let ws = url::Url::parse(server.urls.first()?).ok()?;
    let metrics = format!(
        "http://{}/metrics",
        ws.host_str()?.to_owned() + ":" + &ws.port()?.to_string()
    );
    let text = reqwest::get(metrics).await.ok()?.text().await.ok()?;
    text.lines()
        .find(|l| l.starts_with("livegames_ws_wire_bytes_sent_total "))?
        .rsplit(' ')
        .next()?
        .parse()
        .ok()
}

async fn run(
    kind: ServerKind,
    s: Scenario,
    compress: Option<&str>,
    serve_args: &[String],
) -> Outcome {
    let extra: Vec<&str> = serve_args.iter().map(String::as_str).collect();
    let server = start(kind, s.rate, compress, &extra).await;
    let offer = match compress {
        Some(mode) if mode != "off" => livegames::wire::Offer::On,
        _ => livegames::wire::Offer::Off,
    };
    let pid = server.child.id();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, rss_before) = proc_stats(pid);

    let measuring = Arc::new(AtomicBool::new(false));
    let stop = tokio_util::sync::CancellationToken::new();
    let counters = Arc::new(Counters::default());
    let connected = &counters.connected;
    let mut tasks = Vec::new();
    // Connect in waves so the accept queue never overflows.
    let per_task = 50;
    for chunk in 0..s.clients.div_ceil(per_task) {
        let n = per_task.min(s.clients - chunk * per_task);
        let urls: Vec<String> = (0..n)
            .map(|i| server.urls[(chunk * per_task + i) % server.urls.len()].clone())
            .collect();
        tasks.push(tokio::spawn(clients(
            urls,
            offer,
            measuring.clone(),
            stop.clone(),
            counters.clone(),
        )));
        if chunk % 20 == 19 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while connected.load(Ordering::Relaxed) < s.clients as u64 {
        assert!(
            Instant::now() < deadline,
            "only {} of {} clients connected",
            connected.load(Ordering::Relaxed),
            s.clients
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Settle (snapshots, first frames), then measure.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (cpu0, rss_connected) = proc_stats(pid);
    let (client_cpu0, _) = proc_stats(std::process::id());
    let wire0 = wire_bytes_sent(&server).await;
    measuring.store(true, Ordering::Relaxed);
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(s.seconds)).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = t0.elapsed().as_secs_f64();
    let (cpu1, _) = proc_stats(pid);
    let (client_cpu1, _) = proc_stats(std::process::id());
    let wire1 = wire_bytes_sent(&server).await;
    stop.cancel();
    let mut latencies = Vec::new();
    let mut client_medians = Vec::new();
    for t in tasks {
        for mut client in t.await.unwrap() {
            client.sort_unstable();
            if let Some(median) = client.get(client.len() / 2) {
                client_medians.push(*median);
            }
            latencies.extend(client);
        }
    }
    drop(server);
    latencies.sort_unstable();
    client_medians.sort_unstable();
    let client_pct = |p: f64| {
        client_medians
            .get(((client_medians.len() as f64 - 1.0) * p) as usize)
            .map_or(f64::NAN, |&us| us as f64 / 1000.0)
    };
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or(0) as f64
            / 1000.0
    };
    let delivered = counters.frames.load(Ordering::Relaxed) as f64;
    Outcome {
        fps: delivered / elapsed,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        max_ms: latencies.last().copied().unwrap_or(0) as f64 / 1000.0,
        cpu_per_100k: (cpu1 - cpu0) / delivered.max(1.0) * 100_000.0,
        client_cpu_per_100k: (client_cpu1 - client_cpu0) / delivered.max(1.0) * 100_000.0,
        kib_per_conn: (rss_connected - rss_before).max(0.0) / s.clients as f64,
        closed: counters.closed.load(Ordering::Relaxed),
        wire_per_frame: wire0
            .zip(wire1)
            .map(|(before, after)| (after - before) / delivered.max(1.0)),
        client_medians_ms: (client_pct(0.1), client_pct(0.9)),
    }
}

/// Counters shared by all client tasks.
#[derive(Default)]
struct Counters {
    frames: AtomicU64,
    connected: AtomicU64,
    closed: AtomicU64,
}

/// Several clients on one task: read frames, record latency while measuring.
async fn clients(
    urls: Vec<String>,
    compress: livegames::wire::Offer,
    measuring: Arc<AtomicBool>,
    stop: tokio_util::sync::CancellationToken,
    counters: Arc<Counters>,
) -> Vec<Vec<u32>> {
    let (frames, connected, closed) = (&counters.frames, &counters.connected, &counters.closed);
    // tungstenite zero-fills its whole read buffer before every read attempt, and a
    // reader attempts two per frame (the frame, then WouldBlock): 1 KiB holds one
    // frame of either server without paying for 4 KiB of memset twice per frame.
    // With an offer, the frame-layer client (which inflates) does the reading.
    let options = livegames::client::ConnectOptions {
        read_buffer: 1024,
        compress,
        ..Default::default()
    };
    let mut streams = futures_util::stream::SelectAll::new();
    let mut latencies = vec![Vec::new(); urls.len()];
    for (client, url) in urls.into_iter().enumerate() {
        let url = url::Url::parse(&url).expect("a stream URL");
        let ws = livegames::client::ws::connect(&url, &options)
            .await
            .expect("client connects")
            .socket;
        connected.fetch_add(1, Ordering::Relaxed);
        streams.push(ws.map(move |message| (client, message)));
    }
    // One stop future for the whole run: a timeout per frame would put a timer in
    // the wheel for every frame and make the instrument cost more than it must.
    let stopped = stop.cancelled();
    tokio::pin!(stopped);
    let mut read = 0u32;
    loop {
        // The stream comes first below, so a client that always has frames waiting
        // (a server at saturation) would never see the stop: look now and then.
        read = read.wrapping_add(1);
        if read.is_multiple_of(256) && stop.is_cancelled() {
            break;
        }
        let next = tokio::select! {
            biased;
            next = streams.next() => Ok(next),
            _ = &mut stopped => Err(()),
        };
        match next {
            Err(()) => break,
            Ok(Some((client, Ok(Message::Text(text))))) => {
                if measuring.load(Ordering::Relaxed) {
                    frames.fetch_add(1, Ordering::Relaxed);
                    if let Some(ts) = ts_of(text.as_str()) {
                        latencies[client]
                            .push((now_micros() - ts).clamp(0, u32::MAX as i64) as u32);
                    }
                }
            }
            Ok(Some((_, Ok(_)))) => {}
            Ok(Some((_, Err(_)))) | Ok(None) => {
                closed.fetch_add(1, Ordering::Relaxed);
                break;
            }
        }
    }
    latencies
}

/// The baseline: tokio-tungstenite with default settings, one broadcast per game,
/// one `send` (write + flush) per frame per client.
fn bare_server(rate: f64, raw: bool) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("{}", listener.local_addr().unwrap());
        let games: Vec<broadcast::Sender<Broadcast>> =
            (0..GAMES).map(|_| broadcast::channel(1024).0).collect();
        for (g, tx) in games.iter().cloned().enumerate() {
            tokio::spawn(async move {
                // Games tick on their own phases, as independent markets do (livegames' mock too).
                let period = Duration::from_secs_f64(1.0 / rate);
                let start = tokio::time::Instant::now() + period * g as u32 / GAMES as u32;
                let mut tick = tokio::time::interval_at(start, period);
                let pad = "x".repeat(FRAME_PAD);
                for seq in 0u64.. {
                    tick.tick().await;
                    let frame = format!(
                        r#"{{"type":"update","game_id":"{g}","seq":{seq},"ts":{},"data":"{pad}"}}"#,
                        now_micros()
                    );
                    let _ = tx.send(Broadcast::new(frame));
                }
            });
        }
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let games = games.clone();
            tokio::spawn(async move { bare_connection(stream, games, raw).await });
        }
    });
}

/// A frame as both bare servers send it: the text for tungstenite, and the same
/// frame already framed (header and payload) once for every client of the raw floor.
#[derive(Clone)]
struct Broadcast {
    text: Utf8Bytes,
    framed: bytes::Bytes,
}

impl Broadcast {
    fn new(text: String) -> Self {
        let mut framed = Vec::with_capacity(text.len() + 4);
        framed.push(0x81);
        let len = text.len();
        if len < 126 {
            framed.push(len as u8);
        } else {
            framed.push(126);
            framed.extend_from_slice(&(len as u16).to_be_bytes());
        }
        framed.extend_from_slice(text.as_bytes());
        Self {
            text: Utf8Bytes::from(text),
            framed: framed.into(),
        }
    }
}

async fn bare_connection(stream: TcpStream, games: Vec<broadcast::Sender<Broadcast>>, raw: bool) {
    let mut game = 0;
    // The callback's signature, Err type included, is tungstenite's.
    #[allow(clippy::result_large_err)]
    let callback = |req: &tokio_tungstenite::tungstenite::handshake::server::Request, resp| {
        game = req
            .uri()
            .path()
            .trim_start_matches('/')
            .parse()
            .unwrap_or(0);
        Ok(resp)
    };
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
        return;
    };
    let mut rx = games[game % GAMES].subscribe();
    if raw {
        return raw_writes(ws, rx).await;
    }
    loop {
        tokio::select! {
            frame = rx.recv() => match frame {
                Ok(frame) => if ws.send(Message::Text(frame.text)).await.is_err() { return },
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return,
            },
            incoming = ws.next() => if !matches!(incoming, Some(Ok(_))) { return },
        }
    }
}

/// Writes the frames framed once per broadcast straight to the socket: whatever is
/// queued for this client in one vectored write, no WebSocket library on the hot
/// path. Reads nothing: the clients send nothing.
async fn raw_writes(
    mut ws: tokio_tungstenite::WebSocketStream<TcpStream>,
    mut rx: broadcast::Receiver<Broadcast>,
) {
    use tokio::io::AsyncWriteExt;
    let tcp = ws.get_mut();
    let mut queued: Vec<bytes::Bytes> = Vec::with_capacity(64);
    loop {
        match rx.recv().await {
            Ok(first) => {
                queued.clear();
                queued.push(first.framed);
                while queued.len() < 64 {
                    match rx.try_recv() {
                        Ok(next) => queued.push(next.framed),
                        Err(_) => break,
                    }
                }
                if write_all_vectored(tcp, &mut queued).await.is_err() {
                    return;
                }
            }
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(_) => return,
        }
    }
    // One write for one frame, writev for several, until all are written.
    async fn write_all_vectored(
        tcp: &mut TcpStream,
        queued: &mut [bytes::Bytes],
    ) -> std::io::Result<()> {
        use bytes::Buf;
        let mut at = 0;
        while at < queued.len() {
            let mut slices = [std::io::IoSlice::new(&[]); 64];
            let count = queued.len() - at;
            for (slot, frame) in slices.iter_mut().zip(&queued[at..]) {
                *slot = std::io::IoSlice::new(frame);
            }
            let mut n = tcp.write_vectored(&slices[..count]).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            while n > 0 {
                let front = &mut queued[at];
                let take = n.min(front.len());
                front.advance(take);
                n -= take;
                if front.is_empty() {
                    at += 1;
                }
            }
        }
        Ok(())
    }
}
