//! Soak: a release `livegames serve` at its default (seed) rates under a steady load
//! with churn, resumes, scores requests and every kind of upstream fault injected and
//! cleared in turn, sampled every 10 s; at the end, a fitted slope (with its 95 %
//! bound) says whether memory, open files, history, queues or delivery p99 grew.
//!
//! Run: `cargo bench --bench soak` (30 minutes, 1,000 connections), or with
//! `-- --minutes 5 --conns 200` (`--history-mib 1`: serve's history cap, reached
//! within minutes instead of days). Writes `target/soak/samples.csv` and
//! `target/soak/soak.svg` (one panel per figure).
//!
//! The load is `livegames load` itself, in its own process: `--conns` WebSockets over
//! the live games, each closing itself every 60 s and resuming with `?since=`
//! (`--churn 60s --reconnect`). Faults: every `minutes / 15` a fault of the next
//! mode (down, slow, error, malformed, rate_limited) on the next source (espn, kalshi,
//! apisports), held for a third of that and cleared: all 15 pairs in a 30-minute run.
//! Traffic goes to 127.0.0.1 only, for a bounded time.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use livegames::serve::observe::exposition::{Snapshot, quantile};

mod common;
use common::{proc_stats, read_addr};

const TOKEN: &str = "soak";
const SAMPLE_EVERY: Duration = Duration::from_secs(10);
const SOURCES: [&str; 3] = ["espn", "kalshi", "apisports"];
const MODES: [&str; 5] = ["down", "slow", "error", "malformed", "rate_limited"];

/// One 10-second sample of the server.
#[derive(Debug, Clone)]
struct Sample {
    t_s: f64,
    rss_mib: f64,
    /// Anonymous memory (heap, stacks): what the server allocated.
    anon_mib: f64,
    /// File-backed pages: the binary's code and data as the kernel read them in.
    file_mib: f64,
    open_files: f64,
    history_mib: f64,
    send_queue_max: f64,
    ws_connections: f64,
    /// Delivery (serialize to socket write) p99 over the 10 s, ms; None with no frames.
    delivery_p99_ms: Option<f64>,
}

const FIGURES: [(&str, &str); 9] = [
    ("rss_mib", "RSS (MiB)"),
    ("file_mib", "RSS of the binary (MiB)"),
    ("anon_mib", "RSS anonymous (MiB)"),
    ("anon_less_history_mib", "anonymous less history (MiB)"),
    ("open_files", "open files"),
    ("history_mib", "history (MiB)"),
    ("send_queue_max", "longest send queue (frames)"),
    ("ws_connections", "WebSocket clients"),
    ("delivery_p99_ms", "delivery p99 (ms)"),
];

impl Sample {
    fn figure(&self, name: &str) -> Option<f64> {
        match name {
            "rss_mib" => Some(self.rss_mib),
            "file_mib" => Some(self.file_mib),
            "anon_mib" => Some(self.anon_mib),
            "anon_less_history_mib" => Some(self.anon_mib - self.history_mib),
            "open_files" => Some(self.open_files),
            "history_mib" => Some(self.history_mib),
            "send_queue_max" => Some(self.send_queue_max),
            "ws_connections" => Some(self.ws_connections),
            "delivery_p99_ms" => self.delivery_p99_ms,
            _ => None,
        }
    }
}

fn flag(name: &str, default: f64) -> f64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |v| v.parse().expect(name))
}

fn main() {
    let minutes = flag("--minutes", 30.0);
    let conns = flag("--conns", 1000.0) as usize;
    // A smaller history cap (serve's --history-mib) reaches its bound within the run.
    let history_mib = Some(flag("--history-mib", f64::NAN)).filter(|m| m.is_finite());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(soak(
        Duration::from_secs_f64(minutes * 60.0),
        conns,
        history_mib,
    ));
}

async fn soak(length: Duration, conns: usize, history_mib: Option<f64>) {
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/soak");
    std::fs::create_dir_all(&out).unwrap();
    let mut server = Command::new(env!("CARGO_BIN_EXE_livegames"))
        .args(["serve", "--addr", "127.0.0.1:0", "--log-format", "json"])
        .args(["--admin-token", TOKEN, "--max-conns", "100000"])
        .args(
            history_mib
                .iter()
                .flat_map(|m| ["--history-mib".to_owned(), m.to_string()]),
        )
        .env("RUST_LOG", "warn,livegames::serve=info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve starts");
    let addr = read_addr(&mut server);
    let base = format!("http://{addr}");
    let pid = server.id();
    let ramp = Duration::from_secs(30);
    let mut load = Command::new(env!("CARGO_BIN_EXE_livegames"))
        .args(["load", &base, "--conns", &conns.to_string()])
        .args([
            "--ramp",
            "30s",
            "--duration",
            &format!("{}s", length.as_secs()),
        ])
        .args(["--churn", "60s", "--reconnect", "--allow-drops", "--quiet"])
        .args(["--report", out.join("load").to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("load starts");
    let http = reqwest::Client::new();
    let started = Instant::now();
    let end = started + length + ramp;
    let background = tokio::spawn(background_traffic(http.clone(), base.clone(), length, end));
    let mut samples = Vec::new();
    let mut before = metrics(&http, &base).await;
    let mut next = started + SAMPLE_EVERY;
    while Instant::now() < end {
        tokio::time::sleep_until(next.into()).await;
        next += SAMPLE_EVERY;
        let now = metrics(&http, &base).await;
        let sample = sample(pid, started, &now, &before);
        eprintln!(
            "{:>6.0} s  rss {:>6.1} MiB (anon {:>5.1}, binary {:>5.1})  files {:>5}  history {:>5.2} MiB  queue {:>4}  clients {:>5}  p99 {}",
            sample.t_s,
            sample.rss_mib,
            sample.anon_mib,
            sample.file_mib,
            sample.open_files,
            sample.history_mib,
            sample.send_queue_max,
            sample.ws_connections,
            sample
                .delivery_p99_ms
                .map_or("n/a".into(), |p| format!("{p:.1} ms"))
        );
        samples.push(sample);
        before = now;
    }
    background.abort();
    // The load ends on its own at the end of its duration; past a margin it is stopped.
    let load_status = wait_or_kill(&mut load, Duration::from_secs(60));
    let _ = server.kill();
    let _ = server.wait();
    write_csv(&out.join("samples.csv"), &samples);
    write_svg(&out.join("soak.svg"), &samples);
    // Steady: from a minute after the ramp to 20 s before the load stops; and again
    // once the ops page's ring (16 minutes of samples) is full, when the run is long
    // enough to say anything after it.
    let stop = length + ramp - Duration::from_secs(20);
    report(
        &samples,
        (ramp + Duration::from_secs(60), stop),
        load_status,
    );
    let ring_full = ramp + Duration::from_secs(17 * 60);
    if stop > ring_full + Duration::from_secs(200) {
        println!("\nonce the ops ring is full (its 16 minutes of samples held):");
        report(&samples, (ring_full, stop), load_status);
    }
}

/// Scores requests every 2 s, and the fault cycle.
async fn background_traffic(http: reqwest::Client, base: String, length: Duration, end: Instant) {
    let step = length / 15;
    let mut fault_at = Instant::now() + step;
    let mut n = 0;
    while Instant::now() < end {
        for league in ["nfl", "nhl"] {
            let _ = http.get(format!("{base}/api/{league}/scores")).send().await;
        }
        if Instant::now() >= fault_at && n < 15 {
            let (source, mode) = (SOURCES[n % 3], MODES[n % 5]);
            n += 1;
            fault_at += step;
            eprintln!("fault {n}/15: {source} {mode} for {:?}", step / 3);
            let _ = http
                .post(format!("{base}/admin/faults"))
                .bearer_auth(TOKEN)
                .json(&serde_json::json!({"source": source, "mode": mode, "duration": format!("{}s", (step / 3).as_secs().max(1))}))
                .send()
                .await;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

fn wait_or_kill(child: &mut std::process::Child, margin: Duration) -> Option<i32> {
    let deadline = Instant::now() + margin;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = child.kill();
    child.wait().ok().and_then(|s| s.code())
}

async fn metrics(http: &reqwest::Client, base: &str) -> Snapshot {
    let text = match http.get(format!("{base}/metrics")).send().await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    };
    Snapshot::parse(
        &text,
        livegames::clock::unix_micros() / 1000,
        Instant::now(),
    )
}

fn sample(pid: u32, started: Instant, now: &Snapshot, before: &Snapshot) -> Sample {
    let (_, rss_kib) = proc_stats(pid);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = |field: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    let open_files = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0);
    let figure = |name: &str| now.sum(name, &[]).unwrap_or(f64::NAN);
    let histogram = "livegames_broadcast_latency_seconds";
    let p99 = quantile(
        0.99,
        &now.buckets(histogram, &[]),
        &before.buckets(histogram, &[]),
    );
    Sample {
        t_s: started.elapsed().as_secs_f64(),
        rss_mib: rss_kib / 1024.0,
        anon_mib: kib("RssAnon:") / 1024.0,
        file_mib: kib("RssFile:") / 1024.0,
        open_files: open_files as f64,
        history_mib: figure("livegames_history_bytes") / 1_048_576.0,
        send_queue_max: figure("livegames_send_queue_frames_max"),
        ws_connections: figure("livegames_ws_connections"),
        delivery_p99_ms: p99.map(|s| s * 1000.0),
    }
}

/// Least squares: (slope per hour, its 95 % half-width, mean).
fn fit(points: &[(f64, f64)]) -> Option<(f64, f64, f64)> {
    let n = points.len() as f64;
    if n < 3.0 {
        return None;
    }
    let mean_t = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_v = points.iter().map(|p| p.1).sum::<f64>() / n;
    let stt: f64 = points.iter().map(|p| (p.0 - mean_t).powi(2)).sum();
    let stv: f64 = points.iter().map(|p| (p.0 - mean_t) * (p.1 - mean_v)).sum();
    if stt == 0.0 {
        return None;
    }
    let slope = stv / stt;
    let residual: f64 = points
        .iter()
        .map(|p| (p.1 - mean_v - slope * (p.0 - mean_t)).powi(2))
        .sum();
    let stderr = (residual / (n - 2.0) / stt).sqrt();
    // t(0.975) for the sample sizes here (>= 20) is close to 2.
    Some((slope * 3600.0, 2.0 * stderr * 3600.0, mean_v))
}

fn report(samples: &[Sample], (from, to): (Duration, Duration), load_exit: Option<i32>) {
    let steady: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.t_s >= from.as_secs_f64() && s.t_s <= to.as_secs_f64())
        .collect();
    let span_h = steady.last().map_or(0.0, |l| l.t_s) / 3600.0
        - steady.first().map_or(0.0, |f| f.t_s) / 3600.0;
    println!(
        "\nsoak: {} samples, steady from {:.0} s ({:.1} min); load exited {load_exit:?}",
        steady.len(),
        from.as_secs_f64(),
        span_h * 60.0
    );
    println!(
        "{:<28} {:>10} {:>14} {:>14} {:>16}  verdict",
        "figure", "mean", "slope /h", "95% bound /h", "over the run"
    );
    for (name, label) in FIGURES {
        let points: Vec<(f64, f64)> = steady
            .iter()
            .filter_map(|s| Some((s.t_s, s.figure(name)?)))
            .filter(|(_, v)| v.is_finite())
            .collect();
        let Some((slope, bound, mean)) = fit(&points) else {
            println!("{label:<28} not measured");
            continue;
        };
        let over_run = slope * span_h;
        // Grew: the slope is above 0 beyond its bound, and by more than 2 % of the
        // mean over the run (a real leak, not a fitted wobble).
        let grew = slope - bound > 0.0 && over_run > 0.02 * mean.abs().max(1.0);
        // History grows by design until each game holds --history-mib; RSS grows with
        // it: what must stay flat is the rest.
        let verdict = match (name, grew) {
            ("history_mib" | "rss_mib" | "anon_mib", true) => {
                "grows with history (bounded by --history-mib per game)"
            }
            // Code paths run for the first time (a fault, a rare branch) page in more
            // of the binary: bounded by its size, and given back under memory pressure.
            ("file_mib", true) => "pages in code as it runs (bounded by the binary)",
            (_, true) => "GREW",
            (_, false) => "flat",
        };
        println!(
            "{label:<28} {mean:>10.2} {slope:>14.3} {bound:>14.3} {over_run:>16.3}  {verdict}"
        );
    }
}

fn write_csv(path: &std::path::Path, samples: &[Sample]) {
    let mut f = std::fs::File::create(path).unwrap();
    writeln!(f, "t_s,{}", FIGURES.map(|(n, _)| n).join(",")).unwrap();
    for s in samples {
        let row: Vec<String> = FIGURES
            .iter()
            .map(|(n, _)| s.figure(n).map_or(String::new(), |v| format!("{v:.3}")))
            .collect();
        writeln!(f, "{:.1},{}", s.t_s, row.join(",")).unwrap();
    }
}

/// One small panel per figure: its line over the run, its least and most.
fn write_svg(path: &std::path::Path, samples: &[Sample]) {
    let (w, h, pad) = (640.0, 120.0, 40.0);
    let t_max = samples.last().map_or(1.0, |s| s.t_s).max(1.0);
    let mut svg = format!(
        "<svg xmlns='http://www.w3.org/2000/svg' width='{w}' height='{}' font-family='sans-serif' font-size='11'>\n<rect width='100%' height='100%' fill='white'/>\n",
        FIGURES.len() as f64 * (h + 20.0)
    );
    for (k, (name, label)) in FIGURES.iter().enumerate() {
        let top = k as f64 * (h + 20.0) + 16.0;
        let values: Vec<(f64, f64)> = samples
            .iter()
            .filter_map(|s| Some((s.t_s, s.figure(name)?)))
            .filter(|(_, v)| v.is_finite())
            .collect();
        let max = values.iter().map(|v| v.1).fold(0.0, f64::max).max(1e-9) * 1.1;
        let points: Vec<String> = values
            .iter()
            .map(|(t, v)| {
                let x = pad + t / t_max * (w - 2.0 * pad);
                let y = top + h - v / max * h;
                format!("{x:.1},{y:.1}")
            })
            .collect();
        svg += &format!(
            "<text x='{pad}' y='{}'>{label} (0 to {max:.1}) over {:.0} min</text>\n<rect x='{pad}' y='{top}' width='{}' height='{h}' fill='none' stroke='#ccc'/>\n<polyline fill='none' stroke='#1f77b4' stroke-width='1.5' points='{}'/>\n",
            top - 4.0,
            t_max / 60.0,
            w - 2.0 * pad,
            points.join(" ")
        );
    }
    svg += "</svg>\n";
    std::fs::write(path, svg).unwrap();
}
