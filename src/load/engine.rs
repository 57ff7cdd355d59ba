//! The engine of a WebSocket load: connections open on a ramp, each a
//! [`VirtualUser`] recording into one of a few [`Recorder`] shards; once a second the
//! collector folds the shards into the run totals and a per-second series, and hands
//! a [`Tick`] to whoever shows progress. It is given WebSocket URLs and knows nothing
//! of the server behind them.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use url::Url;

use crate::load::measure::collector::{Collector, SecondsOut, Tick};
use crate::load::measure::gauges::Gauges;
use crate::load::measure::host;
use crate::load::measure::recorder::Recorder;
use crate::load::plan::budget::Budget;
use crate::load::plan::shard::Share;
use crate::load::results::summary::{self, LoadSummary};
use crate::load::session::link::Protocol;
use crate::load::session::user::VirtualUser;
use crate::load::session::{StreamTarget, VuConfig};
use crate::load::user_threads::{UserThread, UserThreads};

#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// The streams, one per game; connections are spread over them in turn.
    pub targets: Vec<StreamTarget>,
    /// The run's connections and this process's share of them (all, on one worker).
    pub share: Share,
    pub duration: Duration,
    /// Connections open evenly over this time (zero: all at once).
    pub ramp: Duration,
    pub vu: VuConfig,
    pub budgets: Vec<Budget>,
    /// Where each second's figures are also sent (`--out influxdb=`).
    pub out: Option<SecondsOut>,
    /// A clock exchange made before the run (round trip µs, server minus ours µs),
    /// weighed with the run's own pongs for the report's clock estimate.
    pub clock_probe: Option<(u64, i64)>,
}

/// Recorder shards per core: a few more shards than cores, so connections rarely
/// share a lock at the same instant, few enough that the per-second fold stays cheap.
const SHARDS_PER_CORE: usize = 4;
/// Connections per recorder shard, at least: each shard (and its spare) holds a set of
/// histograms, ~90 KiB each once latencies reach a second, so a shard per few
/// connections would cost more memory than the connections themselves; a lock shared
/// by 128 connections is still rarely contended (a frame holds it well under 1 µs).
const CONNS_PER_SHARD: usize = 128;
/// How long the users have to close their sockets when the run ends (each close is
/// itself bounded, so this is only reached when the machine is overwhelmed).
const USERS_CLOSE_GRACE: Duration = Duration::from_secs(5);
/// How many recorder shards `conns` connections share.
fn shard_count(conns: usize, cores: usize) -> usize {
    conns
        .div_ceil(CONNS_PER_SHARD)
        .clamp(1, cores.max(1) * SHARDS_PER_CORE)
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Runs the load to completion (or until `stop`), then returns what was measured.
pub async fn run(
    config: LoadConfig,
    stop: CancellationToken,
    on_tick: impl Fn(Tick),
) -> LoadSummary {
    let started_wall = std::time::SystemTime::now();
    let cpu_before = host::process_cpu_seconds();
    let conns = config.share.conns;
    let threads = UserThreads::start_or_current(cores().min(conns.max(1)));
    // A multiple of the threads, so no shard is shared between two threads' users.
    let shards: Vec<Arc<Mutex<Recorder>>> = (0..shard_count(conns, cores())
        .next_multiple_of(threads.len()))
        .map(|_| Arc::new(Mutex::new(Recorder::new())))
        .collect();
    let gauges = Arc::new(Gauges::new(conns as u64));
    let users = CancellationToken::new();
    let tracker = TaskTracker::new();
    let started = Instant::now();
    let ramp = Ramp {
        config: &config,
        started,
        shards: &shards,
        gauges: &gauges,
        users: &users,
        tracker: &tracker,
        threads: (0..threads.len()).map(|i| threads.handle(i)).collect(),
    };
    let spawner = ramp.spawn();
    let mut collector = Collector::new(
        shards.clone(),
        gauges.clone(),
        started,
        started_wall,
        config.out.clone(),
    );
    let (seconds, stopped_early) = collector
        .until(started + config.duration, &stop, on_tick)
        .await;
    users.cancel();
    spawner.abort();
    tracker.close();
    // Every user closes its socket (each close is bounded on its own).
    let _ = tokio::time::timeout(USERS_CLOSE_GRACE, tracker.wait()).await;
    threads.finish().await;
    // What arrived while the users were closing counts in the totals; as a point of
    // the per-second series it would be a stub of a second with nobody connected.
    let _closing = collector.fold();
    let (mut total, hdr_log) = collector.finish();
    if let Some((rtt, offset)) = config.clock_probe {
        total.counters.observe_offset(rtt, offset);
    }
    let elapsed = started.elapsed();
    let cpu = host::process_cpu_seconds().map(|after| after - cpu_before.unwrap_or(after));
    let urls: Vec<Url> = config.targets.iter().map(|t| t.url.clone()).collect();
    summary::build(summary::Inputs {
        targets: &urls,
        conns,
        budgets: &config.budgets,
        total: &total,
        hdr_log,
        seconds,
        peak_open: gauges.peak_open.load(Ordering::Relaxed),
        all_open_after: gauges.all_open_at.get().map(|t| t.duration_since(started)),
        elapsed,
        started_wall,
        cpu_seconds: cpu,
        stopped_early,
        subprotocol: gauges.subprotocol.get().cloned(),
        tls_verified: !config.vu.connect.insecure,
        seq_read: config.vu.reader.reads_seq(),
        drops_allowed: config.vu.drops_allowed,
    })
}

/// What the ramp needs to start the users.
struct Ramp<'a> {
    config: &'a LoadConfig,
    started: Instant,
    shards: &'a [Arc<Mutex<Recorder>>],
    gauges: &'a Arc<Gauges>,
    users: &'a CancellationToken,
    tracker: &'a TaskTracker,
    /// Where the users run: user `local` on thread `local mod threads`.
    threads: Vec<UserThread>,
}

impl Ramp<'_> {
    /// Starts this process's connections, each at the instant the ramp gives its
    /// index in the whole run (`ramp * j / conns`), as a task owned by the tracker and
    /// stopped by `users`. Connection `j` streams target `j mod targets`, so shards
    /// of a run spread over the games as one process would. The users go to the user
    /// threads in turn; with the recorder shards a multiple of the threads (see
    /// [`run`]), a shard's users share its lock only with users of their own thread.
    fn spawn(&self) -> tokio::task::JoinHandle<()> {
        let (tracker, users, shards, gauges, targets, threads) = (
            self.tracker.clone(),
            self.users.clone(),
            self.shards.to_vec(),
            self.gauges.clone(),
            self.config.targets.clone(),
            self.threads.clone(),
        );
        let vu_config = Arc::new(with_sse_client(self.config.vu.clone()));
        let (share, ramp, started) = (self.config.share, self.config.ramp, self.started);
        tokio::spawn(async move {
            for local in 0..share.conns {
                let i = share.global(local);
                let at = started + ramp.mul_f64(i as f64 / share.run_conns.max(1) as f64);
                tokio::select! {
                    _ = users.cancelled() => return,
                    _ = tokio::time::sleep_until(at.into()) => {}
                }
                let user = VirtualUser {
                    index: i,
                    shard_index: share.shard.index as u32,
                    target: targets[i % targets.len()].clone(),
                    config: vu_config.clone(),
                    shard: shards[local % shards.len()].clone(),
                    gauges: gauges.clone(),
                    stop: users.clone(),
                };
                threads[local % threads.len()].spawn(&tracker, user.run());
            }
        })
    }
}

/// The run's one HTTP client for Server-Sent Events streams, when it speaks SSE and
/// was given none (a client that cannot be built leaves each connect to say so).
fn with_sse_client(mut vu: VuConfig) -> VuConfig {
    if vu.protocol == Protocol::Sse && vu.sse_client.is_none() {
        match crate::client::http::stream_client(&vu.connect) {
            Ok(client) => vu.sse_client = Some(client),
            Err(e) => tracing::warn!(error = %e, "no HTTP client for Server-Sent Events"),
        }
    }
    vu
}

#[cfg(test)]
mod tail_tests {
    use super::*;

    #[test]
    fn few_connections_share_few_recorder_shards() {
        assert_eq!(shard_count(1, 2), 1);
        assert_eq!(shard_count(128, 2), 1);
        assert_eq!(shard_count(129, 2), 2);
        // Many connections: a few shards per core, however many connections.
        assert_eq!(shard_count(1_000, 2), 8);
        assert_eq!(shard_count(100_000, 2), 8);
        assert_eq!(shard_count(100_000, 16), 64);
        // No connections (HTTP users only) still records somewhere.
        assert_eq!(shard_count(0, 2), 1);
    }
}
