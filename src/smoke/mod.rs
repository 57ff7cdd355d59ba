//! `livegames smoke`: checks a running server, ours or anyone's, against the
//! published contract, and says exactly what is wrong.
//!
//! Every check runs (no stop at the first failure); checks that need something an
//! earlier one could not provide (a game, an open stream) are skipped with the reason.
//! Independent checks run concurrently, so a run takes about as long as its slowest
//! check (the stream: `--messages` frames; the heartbeat: one interval of silence).
//!
//! Layout: [`check`] names the checks and holds their results; `ctx` and `conn` are
//! the plumbing (one HTTP client, one WebSocket connection with deadlines); `rest` and
//! `diff` are helpers; `checks/` holds the checks by group; [`render`] prints.

pub mod check;
mod checks;
mod conn;
mod ctx;
mod diff;
pub mod render;
mod rest;

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::client::{ConnectOptions, Target};
use crate::contract::schema::Schemas;
pub use check::{CheckId, CheckResult, MAX_LISTED, Selection, Status};
use checks::stream::MAIN_STREAM_CHECKS;
use checks::{admin, consistency, protocol, rest as rest_checks, stream};
use ctx::Ctx;

/// Version of the `--json` report layout.
pub const REPORT_VERSION: u32 = 1;
/// The read buffer of smoke's connections: a few frames of our contract's size.
pub const READ_BUFFER: usize = 16 * 1024;
/// Frames larger than this end the connection (tungstenite refuses them).
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// What to check and how patiently.
#[derive(Debug, Clone)]
pub struct SmokeConfig {
    /// The server, in any of the four schemes; its REST and stream URLs derive from it.
    pub target: Target,
    /// The game to stream; default: the first live one.
    pub game: Option<String>,
    /// Frames to receive after the snapshot.
    pub messages: usize,
    /// How long any one check may wait (connecting included).
    pub timeout: Duration,
    /// How far a frame's `ts` may be from the local clock.
    pub max_skew: Duration,
    /// The server's heartbeat interval (the contract: 5 s).
    pub heartbeat: Duration,
    pub checks: Selection,
    pub admin_token: Option<String>,
    /// How connections are opened; their connect timeout is [`SmokeConfig::timeout`].
    pub connect: ConnectOptions,
}

impl SmokeConfig {
    /// `livegames smoke`'s defaults against `target`.
    pub fn new(target: Target) -> Self {
        let timeout = Duration::from_secs(30);
        Self {
            target,
            game: None,
            messages: 20,
            timeout,
            max_skew: Duration::from_secs(2),
            heartbeat: Duration::from_secs(crate::contract::HEARTBEAT_INTERVAL_SECS),
            checks: Selection::default_checks(),
            admin_token: None,
            connect: ConnectOptions {
                connect_timeout: timeout,
                read_buffer: READ_BUFFER,
                max_message: Some(MAX_MESSAGE_BYTES),
            },
        }
    }
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct SmokeReport {
    pub version: u32,
    pub target: String,
    pub contract_version: String,
    pub strict: bool,
    pub game: Option<String>,
    pub started_at: String,
    pub duration_s: f64,
    pub passed: bool,
    pub counts: Counts,
    /// Set when the server could not be reached at all (exit 3).
    pub unreachable: Option<String>,
    pub checks: Vec<CheckResult>,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Counts {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
}

impl SmokeReport {
    /// The result of check `name`, if it ran.
    pub fn check(&self, name: &str) -> Option<&CheckResult> {
        self.checks.iter().find(|c| c.name.name() == name)
    }

    /// Names of the checks that failed.
    pub fn failed(&self) -> Vec<&'static str> {
        self.checks
            .iter()
            .filter(|c| c.status == Status::Fail)
            .map(|c| c.name.name())
            .collect()
    }
}

/// Runs every selected check against `config.target`.
pub async fn run(config: &SmokeConfig, schemas: &Schemas) -> SmokeReport {
    let started = Instant::now();
    let started_at = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
    let sel = &config.checks;
    let ctx = Ctx::new(config, schemas);
    let finish = |game, unreachable, results| {
        SmokeReport::finish(
            config,
            schemas,
            started,
            started_at.clone(),
            game,
            unreachable,
            results,
        )
    };

    let (health, games) = tokio::join!(
        rest_checks::health(&ctx),
        rest_checks::games(&ctx, config.game.as_deref())
    );
    let (health, health_unreachable) = health;
    let (games, targets, games_unreachable) = games;
    if let (Some(reason), Some(_)) = (health_unreachable, games_unreachable) {
        return finish(None, Some(reason), Vec::new());
    }
    let mut results = Vec::new();
    results.extend(sel.has(CheckId::Health).then_some(health));
    results.extend(sel.has(CheckId::Games).then_some(games));

    let game = targets.game.as_deref();
    let no_game = targets.no_game.as_str();
    // resume, the timeline comparison and the heartbeat's silences use the main stream too
    let needs_main = sel.any(&MAIN_STREAM_CHECKS)
        || sel.any(&[
            CheckId::WsHeartbeat,
            CheckId::WsResume,
            CheckId::TimelineMatchesStream,
        ]);
    let quiet_game = targets.quiet_game.as_deref().or(game);
    let (timeline, main, heartbeat, ping, unknown_game, unknown_path, nfl, nhl) = tokio::join!(
        when(sel.has(CheckId::Timeline), || rest_checks::timeline(
            &ctx, game, no_game
        )),
        when(needs_main, || stream::main_stream(&ctx, game, no_game)),
        when(sel.has(CheckId::WsHeartbeat), || protocol::heartbeat(
            &ctx, quiet_game, no_game
        )),
        when(sel.has(CheckId::WsPing), || protocol::ping(
            &ctx, game, no_game
        )),
        when(sel.has(CheckId::WsUnknownGame), || protocol::unknown_game(
            &ctx
        )),
        when(sel.has(CheckId::HttpUnknownPath), || {
            rest_checks::unknown_path(&ctx)
        }),
        when(sel.has(CheckId::ScoresNfl), || rest_checks::scores(
            &ctx, "nfl"
        )),
        when(sel.has(CheckId::ScoresNhl), || rest_checks::scores(
            &ctx, "nhl"
        )),
    );
    let main = main.unwrap_or_default();
    results.extend(main.results.iter().filter(|r| sel.has(r.name)).cloned());
    results.extend(heartbeat.map(|quiet| protocol::merge_heartbeat(quiet, &main)));
    let (resume, matches) = tokio::join!(
        when(sel.has(CheckId::WsResume), || consistency::resume(
            &ctx, &main
        )),
        when(sel.has(CheckId::TimelineMatchesStream), || {
            consistency::timeline_matches(&ctx, &main)
        }),
    );
    results.extend(
        [
            timeline,
            resume,
            ping,
            unknown_game,
            unknown_path,
            matches,
            nfl,
            nhl,
        ]
        .into_iter()
        .flatten(),
    );
    if sel.has(CheckId::AdminFaults) {
        results.push(admin::admin_faults(&ctx, game, no_game).await);
    }
    results.sort_by_key(|r| r.name.order());
    finish(targets.game.clone(), None, results)
}

/// Runs `check` when `selected`.
async fn when<T, F, Fut>(selected: bool, check: F) -> Option<T>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    if selected { Some(check().await) } else { None }
}

impl SmokeReport {
    fn finish(
        config: &SmokeConfig,
        schemas: &Schemas,
        started: Instant,
        started_at: String,
        game: Option<String>,
        unreachable: Option<String>,
        checks: Vec<CheckResult>,
    ) -> Self {
        let count = |s: Status| checks.iter().filter(|c| c.status == s).count();
        let counts = Counts {
            passed: count(Status::Pass),
            failed: count(Status::Fail),
            skipped: count(Status::Skip),
        };
        SmokeReport {
            version: REPORT_VERSION,
            target: config.target.origin(),
            contract_version: schemas.version().to_owned(),
            strict: schemas.is_strict(),
            game,
            started_at,
            duration_s: started.elapsed().as_secs_f64(),
            passed: unreachable.is_none() && counts.failed == 0,
            counts,
            unreachable,
            checks,
        }
    }
}
