//! Fuzz: mutated HTTP requests, WebSocket frames and `contract validate` inputs
//! thrown at a real `livegames serve` for a bounded time. It fails (exit 1) on a
//! panic line in the server's log, a 5xx other than the documented JSON 502/503, a
//! hang, bytes that are not HTTP or not WebSocket frames, a smuggled header echoed,
//! a control request answered wrongly, `/health` not answering, or memory or open
//! files grown past a bound once the campaign's connections are gone.
//!
//! Run: `cargo bench --profile dev --bench fuzz -- --seconds 120` (the dev profile
//! keeps overflow checks and debug assertions on, so arithmetic that would wrap in
//! a release build panics here and is found); `--seed N` replays a campaign's
//! inputs; `--url http://host:port` fuzzes a server already running (only what a
//! client can see is judged then). Inputs that found something are written to
//! `target/fuzz/` with a line each in `target/fuzz/findings.txt`; the first input of
//! each outcome (a 4xx, silence, a 1002) is in `target/fuzz/examples.txt`.
//! Traffic goes to the given address only (127.0.0.1 by default), for a bounded time.

use std::io::BufReader;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;

// `cargo bench` builds with cfg(test) but without the #[test] functions, so the
// engine's test modules look unused here; tests/fuzz_harness.rs runs them.
#[allow(unused_imports, dead_code)]
mod engine;
use engine::process::{Bounds, Usage, grown, usage, watch_log};
use engine::{Finding, Kind, Plan, Report};

const ADMIN_TOKEN: &str = "fuzz";

#[derive(Parser, Debug)]
#[command(about = "Fuzz a livegames server with mutated HTTP, WebSocket and validate input")]
struct Args {
    /// How long to send inputs.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Seed of the mutations (default: from the clock; printed, to replay a run).
    #[arg(long)]
    seed: Option<u64>,
    /// Concurrent clients.
    #[arg(long, default_value_t = 4)]
    workers: usize,
    /// A running server to fuzz instead of starting one.
    #[arg(long)]
    url: Option<url::Url>,
    /// The running server's admin token (with --url).
    #[arg(long)]
    admin_token: Option<String>,
    /// Most memory growth allowed, in MiB, once the campaign's connections are gone.
    #[arg(long, default_value_t = 96.0)]
    max_rss_growth_mib: f64,
    /// Most open files more than before, once the campaign's connections are gone.
    #[arg(long, default_value_t = 16)]
    max_fd_growth: u64,
    /// Where the inputs that found something are written.
    #[arg(long, default_value = "target/fuzz")]
    out: PathBuf,
    /// Passed by `cargo bench`.
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let code = match runtime.block_on(fuzz(&args)) {
        Ok(report) if report.finding_count() == 0 => 0,
        Ok(_) => 1,
        Err(e) => {
            eprintln!("fuzz: {e}");
            2
        }
    };
    runtime.shutdown_timeout(Duration::from_secs(1));
    std::process::exit(code);
}

async fn fuzz(args: &Args) -> Result<Report, String> {
    let seed = args
        .seed
        .unwrap_or_else(|| livegames::clock::unix_micros() as u64);
    let plan = Plan {
        run_for: Duration::from_secs(args.seconds),
        seed,
        workers: args.workers,
        answer_deadline: Duration::from_secs(15),
    };
    let mut server = match &args.url {
        Some(_) => None,
        None => Some(Served::start()?),
    };
    let (addr, token) = match (&args.url, &server) {
        (Some(url), _) => (address_of(url)?, args.admin_token.clone()),
        (None, Some(served)) => (served.addr, Some(ADMIN_TOKEN.to_owned())),
        (None, None) => unreachable!("a server was started"),
    };
    let target = discover(addr, token).await?;
    println!(
        "fuzzing http://{addr} for {} s with seed {seed}: {} games, {} sample frames, {} clients",
        args.seconds,
        target.game_ids.len(),
        target.sample_frames.len(),
        plan.workers
    );
    let before = server.as_ref().and_then(|s| usage(s.child.id()));
    let mut report = engine::run(&target, plan).await;
    if let Some(served) = &mut server {
        served.judge(before, bounds(args), &mut report).await;
    }
    report.findings.sort_by_key(|f| f.kind);
    print_report(&report, seed, addr);
    write_findings(&args.out, &report)
        .map_err(|e| format!("writing {}: {e}", args.out.display()))?;
    Ok(report)
}

fn bounds(args: &Args) -> Bounds {
    Bounds {
        rss_mib: args.max_rss_growth_mib,
        open_files: args.max_fd_growth,
    }
}

fn address_of(url: &url::Url) -> Result<SocketAddr, String> {
    url.socket_addrs(|| Some(80))
        .map_err(|e| format!("{url}: {e}"))?
        .into_iter()
        .next()
        .ok_or_else(|| format!("{url}: no address"))
}

/// The target's games, waiting (20 s at most) for the first to be listed.
async fn discover(addr: SocketAddr, token: Option<String>) -> Result<engine::Target, String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let target = engine::discover(addr, token.clone(), Duration::from_secs(10)).await;
        match target {
            Ok(t) if !t.game_ids.is_empty() && !t.sample_frames.is_empty() => return Ok(t),
            Ok(t) if Instant::now() >= deadline => return Ok(t),
            Err(e) if Instant::now() >= deadline => return Err(e),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// A `livegames serve` child process and the panic lines of its log.
struct Served {
    child: Child,
    addr: SocketAddr,
    panics: Arc<Mutex<Vec<String>>>,
}

impl Served {
    fn start() -> Result<Served, String> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_livegames"))
            .args(["serve", "--addr", "127.0.0.1:0", "--log-format", "json"])
            .args(["--admin-token", ADMIN_TOKEN, "--history-mib", "1"])
            .args(["--header-timeout", "2s", "--idle-timeout", "2s"])
            .args(["--upstream-timeout", "2s"])
            .env("RUST_LOG", "warn,livegames::serve=info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start livegames serve: {e}"))?;
        let stderr = child.stderr.take().expect("piped stderr");
        let panics = Arc::new(Mutex::new(Vec::new()));
        let (tell_addr, addr) = std::sync::mpsc::channel();
        let seen = panics.clone();
        std::thread::spawn(move || watch_log(BufReader::new(stderr), tell_addr, seen));
        let addr = addr
            .recv_timeout(Duration::from_secs(30))
            .map_err(|_| "livegames serve did not say its address within 30 s".to_owned())?;
        Ok(Served {
            child,
            addr,
            panics,
        })
    }

    /// The process's findings: panics, growth once the campaign's connections are
    /// closed (open files get 20 s to come back), and an exit during the run.
    async fn judge(&mut self, before: Option<Usage>, bounds: Bounds, report: &mut Report) {
        let pid = self.child.id();
        let settle = Instant::now() + Duration::from_secs(20);
        let mut after = usage(pid);
        while let (Some(b), Some(a)) = (before, after) {
            if grown(b, a, bounds).is_none() || Instant::now() >= settle {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            after = usage(pid);
        }
        match (before, after) {
            (Some(b), Some(a)) => {
                println!(
                    "server: memory {:.1} -> {:.1} MiB, open files {} -> {}",
                    b.rss_mib, a.rss_mib, b.open_files, a.open_files
                );
                if let Some(said) = grown(b, a, bounds) {
                    report.add(process_finding(Kind::Growth, said));
                }
            }
            _ => report.add(process_finding(
                Kind::Panic,
                format!("the server exited: {:?}", self.child.try_wait()),
            )),
        }
        // Lines written by now are read within moments; a panic at the very end is
        // still in the pipe.
        tokio::time::sleep(Duration::from_millis(300)).await;
        for line in self.panics.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            report.add(process_finding(Kind::Panic, line.clone()));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn process_finding(kind: Kind, detail: String) -> Finding {
    Finding::new(kind, "process", detail, Vec::new())
}

fn print_report(report: &Report, seed: u64, addr: SocketAddr) {
    let inputs: Vec<String> = report
        .inputs
        .iter()
        .map(|(target, n)| format!("{n} {target}"))
        .collect();
    println!("inputs: {}", inputs.join(", "));
    println!("outcomes:");
    for (class, n) in &report.outcomes {
        println!(
            "  {n:>8}  {}",
            engine::mutate::escaped(class.as_bytes(), 120)
        );
    }
    if report.finding_count() == 0 {
        println!("findings: none (seed {seed})");
        return;
    }
    println!(
        "findings: {} (seed {seed}; inputs in target/fuzz, replay an HTTP one with `nc -N {} {} < FILE`)",
        report.finding_count(),
        addr.ip(),
        addr.port()
    );
    for (i, f) in report.findings.iter().enumerate() {
        println!("  {}", finding_line(i, f));
    }
    if report.unlisted_findings > 0 {
        println!("  ... and {} more", report.unlisted_findings);
    }
}

fn finding_line(i: usize, f: &Finding) -> String {
    let times = if f.times > 1 {
        format!(" (x{})", f.times)
    } else {
        String::new()
    };
    format!(
        "{:03} {:?} {}{times}: {} [{}]",
        i + 1,
        f.kind,
        f.target,
        f.detail,
        engine::mutate::escaped(&f.input, 160)
    )
}

/// Each finding's input as `NNN-target.bin`, `findings.txt` with a line each, and
/// `examples.txt` with the first input of each outcome class.
fn write_findings(out: &Path, report: &Report) -> std::io::Result<()> {
    std::fs::create_dir_all(out)?;
    let examples: String = report
        .examples
        .iter()
        .map(|(class, input)| format!("{class}: {}\n", engine::mutate::escaped(input, 400)))
        .collect();
    std::fs::write(out.join("examples.txt"), examples)?;
    let mut lines = String::new();
    for (i, f) in report.findings.iter().enumerate() {
        if !f.input.is_empty() {
            std::fs::write(out.join(format!("{:03}-{}.bin", i + 1, f.target)), &f.input)?;
        }
        lines.push_str(&finding_line(i, f));
        lines.push('\n');
    }
    std::fs::write(out.join("findings.txt"), lines)
}
