//! Load-generator overhead: `livegames load` (the library, with latency, seq and
//! contract checks on every frame) against a minimal tokio-tungstenite client doing
//! the same reading, on the same server, on this machine.
//!
//! Run: `cargo bench --bench loadgen` (about 3 minutes), or
//! `cargo bench --bench loadgen -- --conns 1000 --rate 100 --seconds 10`.
//!
//! The server (release `livegames serve`) runs in its own process; both clients run
//! in this process, one after the other, so this process's CPU time (from /proc) is
//! the client's. Reported: frames/s received, client CPU-seconds per 100,000 frames,
//! delivery p99 (receive − `ts`: the client's own delay shows up here), and, for
//! `livegames load` with 10,000 connections, how long until all were open and the
//! client memory per connection. Traffic goes to 127.0.0.1 only, for a bounded time.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use livegames::client::ConnectOptions;
use livegames::load::LoadConfig;
use livegames::load::budget::Figures;
use livegames::load::host::process_cpu_seconds;
use livegames::load::plan::VuConfig;
use livegames::load::recorder::{Distribution, Quantile};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;

mod common;
use common::{now_micros, proc_stats, ts_of};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map(|v| v.parse::<f64>().expect(name))
    };
    let conns = flag("--conns").unwrap_or(1000.0) as usize;
    let rate = flag("--rate").unwrap_or(100.0);
    let seconds = flag("--seconds").unwrap_or(10.0) as u64;
    livegames::load::host::raise_open_files_limit(12_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let server = common::start_livegames(rate).await;
        println!("loadgen: {conns} connections x {rate} frames/s per game, {seconds}s each");
        println!("{:<28} {:>10} {:>14} {:>10} {:>10}", "client", "frames/s", "cpu-s/100k", "p50 ms", "p99 ms");
        let minimal = minimal_client(&server.urls, conns, seconds).await;
        print_row("minimal-tt (saturating)", &minimal);
        let ours = livegames_load(&server.urls, conns, seconds).await;
        print_row("livegames load (saturating)", &ours);
        println!(
            "  -> livegames load delivers {:.0}% of the minimal client's frames per CPU-second",
            minimal.cpu_per_100k / ours.cpu_per_100k * 100.0
        );
        drop(server);

        // Latency overhead where the machine is not saturated: a fifth of the rate.
        let light = (rate / 5.0).max(1.0);
        let server = common::start_livegames(light).await;
        let minimal = minimal_client(&server.urls, conns, seconds).await;
        print_row(&format!("minimal-tt ({light}/s)"), &minimal);
        let ours = livegames_load(&server.urls, conns, seconds).await;
        print_row(&format!("livegames load ({light}/s)"), &ours);
        println!("  -> latency overhead of livegames load at p99: {:+.2} ms (p50 {:+.2} ms)", ours.p99_ms - minimal.p99_ms, ours.p50_ms - minimal.p50_ms);
        drop(server);

        // Many connections: how fast they open, and what one more connection costs
        // this process (the difference between 1,000 and 10,000 connections, so the
        // fixed cost of the histograms does not count).
        let server = common::start_livegames(1.0).await;
        let thousand = livegames_load(&server.urls, 1_000, 3).await;
        let many = livegames_load(&server.urls, 10_000, 5).await;
        println!(
            "10,000 connections: all open after {:.2}s (ramp 0); client memory {:.1} KiB per connection ({:.0} MiB RSS at 1,000, {:.0} MiB at 10,000)",
            many.all_open_after_s.unwrap_or(f64::NAN),
            (many.peak_rss_kib - thousand.peak_rss_kib).max(0.0) / 9_000.0,
            thousand.peak_rss_kib / 1024.0,
            many.peak_rss_kib / 1024.0
        );
    });
}

struct Outcome {
    fps: f64,
    cpu_per_100k: f64,
    p50_ms: f64,
    p99_ms: f64,
    all_open_after_s: Option<f64>,
    peak_rss_kib: f64,
}

fn print_row(name: &str, o: &Outcome) {
    println!(
        "{name:<28} {:>10.0} {:>14.3} {:>10.2} {:>10.2}",
        o.fps, o.cpu_per_100k, o.p50_ms, o.p99_ms
    );
}

async fn livegames_load(urls: &[String], conns: usize, seconds: u64) -> Outcome {
    let config = LoadConfig {
        targets: urls
            .iter()
            .map(|u| url::Url::parse(u).expect("a stream URL").into())
            .collect(),
        conns,
        duration: Duration::from_secs(seconds),
        ramp: Duration::ZERO,
        vu: VuConfig {
            connect: ConnectOptions {
                connect_timeout: Duration::from_secs(10),
                ..ConnectOptions::default()
            },
            idle_timeout: Duration::from_secs(30),
            send_rate: None,
            ws_ping: None,
            ..VuConfig::default()
        },
        budgets: Vec::new(),
        out: None,
    };
    let peak_rss = Arc::new(AtomicU64::new(0));
    let rss = peak_rss.clone();
    let cpu0 = process_cpu_seconds().unwrap_or(0.0);
    let summary = livegames::load::run(config, CancellationToken::new(), move |_| {
        let (_, kib) = proc_stats(std::process::id());
        rss.fetch_max(kib as u64, Ordering::Relaxed);
    })
    .await;
    let cpu = process_cpu_seconds().unwrap_or(0.0) - cpu0;
    assert_eq!(
        summary.totals.counts.lost,
        Some(0),
        "the server dropped frames: the comparison would be unfair"
    );
    let q = |q| {
        summary
            .latency(Distribution::Delivery, q)
            .unwrap_or(f64::NAN)
            / 1000.0
    };
    Outcome {
        fps: summary.totals.frames_per_s,
        cpu_per_100k: cpu / summary.totals.counts.frames.max(1) as f64 * 100_000.0,
        p50_ms: q(Quantile::P50),
        p99_ms: q(Quantile::P99),
        all_open_after_s: summary.totals.all_open_after_s,
        peak_rss_kib: peak_rss.load(Ordering::Relaxed) as f64,
    }
}

/// The baseline: connect, read every frame, take its `ts` and keep the latency.
async fn minimal_client(urls: &[String], conns: usize, seconds: u64) -> Outcome {
    let stop = Arc::new(AtomicBool::new(false));
    let frames = Arc::new(AtomicU64::new(0));
    let cpu0 = process_cpu_seconds().unwrap_or(0.0);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..conns {
        let url = urls[i % urls.len()].clone();
        let (stop, frames) = (stop.clone(), frames.clone());
        tasks.push(tokio::spawn(async move {
            let config = WebSocketConfig::default().read_buffer_size(4096);
            let (mut ws, _) =
                tokio_tungstenite::connect_async_with_config(url.as_str(), Some(config), true)
                    .await
                    .expect("connects");
            let mut latencies = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match tokio::time::timeout(Duration::from_millis(200), ws.next()).await {
                    Ok(Some(Ok(Message::Text(text)))) => {
                        frames.fetch_add(1, Ordering::Relaxed);
                        if let Some(ts) = ts_of(text.as_str()) {
                            latencies.push((now_micros() - ts).max(0) as u32);
                        }
                    }
                    Ok(Some(Ok(_))) | Err(_) => {}
                    _ => break,
                }
            }
            latencies
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let cpu = process_cpu_seconds().unwrap_or(0.0) - cpu0;
    all.sort_unstable();
    let pct = |p: f64| {
        all.get(((all.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or(0) as f64
            / 1000.0
    };
    let n = frames.load(Ordering::Relaxed);
    Outcome {
        fps: n as f64 / elapsed,
        cpu_per_100k: cpu / n.max(1) as f64 * 100_000.0,
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
        all_open_after_s: None,
        peak_rss_kib: 0.0,
    }
}
