//! `livegames smoke`: checks a running server, ours or anyone's, against the
//! published contract, and says exactly what is wrong.
//!
//! Every check runs (no stop at the first failure); checks that need something an
//! earlier one could not provide (a game, an open stream) are skipped with the reason.
//! Independent checks run concurrently, so a run takes about as long as its slowest
//! check (the stream: `--messages` frames; the heartbeat: one interval of silence).

mod http;
pub mod render;
mod stream;

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::contract::check::Violation;
use crate::contract::schema::Schemas;

/// Version of the `--json` report layout.
pub const REPORT_VERSION: u32 = 1;
/// Violations listed per check; the rest are counted.
pub const MAX_LISTED: usize = 50;

/// Every check, in report order: name, what it verifies, on by default.
pub const CHECKS: &[(&str, &str, bool)] = &[
    (
        "health",
        "GET /health answers 200 with a known status",
        true,
    ),
    (
        "games",
        "GET /api/live/games is valid and lists a live game",
        true,
    ),
    ("timeline", "GET /api/games/{id}/timeline is valid", true),
    ("ws.connect", "WS /ws/live/{id} opens", true),
    (
        "ws.snapshot_first",
        "the first frame is the game's snapshot",
        true,
    ),
    (
        "ws.frames",
        "--messages frames arrive within --timeout",
        true,
    ),
    ("ws.json", "every frame is one JSON object", true),
    (
        "ws.schema",
        "every frame is valid against its type's schema",
        true,
    ),
    (
        "ws.seq",
        "seq never goes back; data frames step by exactly 1",
        true,
    ),
    (
        "ws.ts",
        "ts is Unix microseconds within --max-skew of the local clock",
        true,
    ),
    (
        "ws.heartbeat",
        "a heartbeat comes when nothing else does",
        true,
    ),
    (
        "ws.resume",
        "?since=SEQ continues at SEQ+1, then a snapshot",
        true,
    ),
    ("ws.ping", "a ping gets its pong", true),
    (
        "ws.unknown_game",
        "an unknown game gets an error frame and close 4404",
        true,
    ),
    ("http.unknown_path", "an unknown path gets 404", true),
    (
        "timeline.matches_stream",
        "timeline points have the shape and data of live updates",
        true,
    ),
    (
        "scores.nfl",
        "GET /api/nfl/scores answers 200 with scores or 503 with a reason",
        true,
    ),
    (
        "scores.nhl",
        "GET /api/nhl/scores answers 200 with scores or 503 with a reason",
        true,
    ),
    (
        "admin.faults",
        "an injected ESPN outage shows in status frames and /health, then clears (needs --admin-token)",
        false,
    ),
];

/// Which checks to run, from `--checks`: names, `ws.*`-style prefixes, `default`, `all`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection(Vec<&'static str>);

impl Selection {
    pub fn default_checks() -> Self {
        Self(CHECKS.iter().filter(|c| c.2).map(|c| c.0).collect())
    }

    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut chosen: Vec<&'static str> = Vec::new();
        for word in spec.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            let matched: Vec<&'static str> = match word {
                "all" => CHECKS.iter().map(|c| c.0).collect(),
                "default" => Self::default_checks().0,
                w if w.ends_with(".*") => {
                    let prefix = &w[..w.len() - 1];
                    CHECKS
                        .iter()
                        .map(|c| c.0)
                        .filter(|n| n.starts_with(prefix))
                        .collect()
                }
                w => CHECKS.iter().map(|c| c.0).filter(|n| *n == w).collect(),
            };
            if matched.is_empty() {
                let names: Vec<&str> = CHECKS.iter().map(|c| c.0).collect();
                return Err(format!(
                    "--checks: unknown check {word:?}; known: default, all, {}, or a prefix such as ws.*",
                    names.join(", ")
                ));
            }
            for name in matched {
                if !chosen.contains(&name) {
                    chosen.push(name);
                }
            }
        }
        if chosen.is_empty() {
            return Err("--checks: name at least one check".into());
        }
        Ok(Self(chosen))
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.contains(&name)
    }

    fn any(&self, names: &[&str]) -> bool {
        names.iter().any(|n| self.has(n))
    }
}

/// What to check and how patiently.
#[derive(Debug, Clone)]
pub struct SmokeConfig {
    /// `http(s)://host:port` of the server.
    pub base: String,
    /// The game to stream; default: the first live one.
    pub game: Option<String>,
    /// Frames to receive after the snapshot.
    pub messages: usize,
    /// How long any one check may wait.
    pub timeout: Duration,
    /// How far a frame's `ts` may be from the local clock.
    pub max_skew: Duration,
    /// The server's heartbeat interval (the contract: 5 s).
    pub heartbeat: Duration,
    pub checks: Selection,
    pub admin_token: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    Skip,
}

/// One line of the checklist.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub name: &'static str,
    pub about: &'static str,
    pub status: Status,
    pub duration_ms: f64,
    /// One line: what was seen (pass), why it failed, or why it was skipped.
    pub detail: String,
    pub violation_count: usize,
    /// The first [`MAX_LISTED`] violations.
    pub violations: Vec<Violation>,
}

impl CheckResult {
    fn new(name: &'static str, took: Duration) -> Self {
        let about = CHECKS
            .iter()
            .find(|c| c.0 == name)
            .map(|c| c.1)
            .unwrap_or("");
        Self {
            name,
            about,
            status: Status::Pass,
            duration_ms: took.as_secs_f64() * 1000.0,
            detail: String::new(),
            violation_count: 0,
            violations: Vec::new(),
        }
    }

    pub(crate) fn pass(name: &'static str, took: Duration, detail: impl Into<String>) -> Self {
        Self {
            detail: detail.into(),
            ..Self::new(name, took)
        }
    }

    pub(crate) fn fail(name: &'static str, took: Duration, detail: impl Into<String>) -> Self {
        Self {
            status: Status::Fail,
            detail: detail.into(),
            ..Self::new(name, took)
        }
    }

    pub(crate) fn skip(name: &'static str, why: impl Into<String>) -> Self {
        Self {
            status: Status::Skip,
            detail: why.into(),
            ..Self::new(name, Duration::ZERO)
        }
    }

    /// Pass with `ok` when `violations` is empty, else fail listing them.
    pub(crate) fn judged(
        name: &'static str,
        took: Duration,
        ok: impl Into<String>,
        violations: Vec<Violation>,
    ) -> Self {
        if violations.is_empty() {
            return Self::pass(name, took, ok);
        }
        let count = violations.len();
        let first = &violations[0];
        let detail = format!(
            "{count} violation{}: expected {}; got {}",
            if count == 1 { "" } else { "s" },
            first.expected,
            first.actual
        );
        Self {
            status: Status::Fail,
            detail,
            violation_count: count,
            violations: violations.into_iter().take(MAX_LISTED).collect(),
            ..Self::new(name, took)
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
        self.checks.iter().find(|c| c.name == name)
    }

    /// Names of the checks that failed.
    pub fn failed(&self) -> Vec<&'static str> {
        self.checks
            .iter()
            .filter(|c| c.status == Status::Fail)
            .map(|c| c.name)
            .collect()
    }
}

/// The game the stream checks use, and a quiet one for the heartbeat check.
#[derive(Debug, Clone, Default)]
pub(crate) struct Targets {
    pub game: Option<String>,
    pub quiet_game: Option<String>,
    /// Why there is no game, when there is none.
    pub no_game: String,
}

/// Runs every selected check against `config.base`.
pub async fn run(config: &SmokeConfig, schemas: &Schemas) -> SmokeReport {
    let started = Instant::now();
    let started_at = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
    let sel = &config.checks;
    let client = http::client(config.timeout);
    let ctx = http::Ctx {
        client: &client,
        base: config.base.trim_end_matches('/'),
        schemas,
        timeout: config.timeout,
    };
    let mut results = Vec::new();

    let (health, games) = tokio::join!(
        http::health(&ctx),
        http::games(&ctx, config.game.as_deref())
    );
    let (health, health_unreachable) = health;
    let (games, targets, games_unreachable) = games;
    let unreachable = match (health_unreachable, games_unreachable) {
        (Some(reason), Some(_)) => Some(reason),
        _ => None,
    };
    if let Some(reason) = unreachable {
        return SmokeReport::finish(
            config,
            schemas,
            started,
            started_at,
            None,
            Some(reason),
            results,
        );
    }
    results.extend(sel.has("health").then_some(health));
    results.extend(sel.has("games").then_some(games));

    let ws_base = stream::ws_base(ctx.base);
    let stream_ctx = stream::Ctx {
        ws_base: &ws_base,
        schemas,
        config,
    };
    let game = targets.game.as_deref();
    let (timeline, main, heartbeat, ping, unknown_game, unknown_path, nfl, nhl) = tokio::join!(
        when(sel.has("timeline"), || http::timeline(
            &ctx,
            game,
            &targets.no_game
        )),
        when(
            // resume, the timeline comparison and the heartbeat's silences use it too
            sel.any(stream::MAIN_STREAM_CHECKS)
                || sel.any(&["ws.heartbeat", "ws.resume", "timeline.matches_stream"]),
            || stream::main_stream(&stream_ctx, game, &targets.no_game)
        ),
        when(sel.has("ws.heartbeat"), || stream::heartbeat(
            &stream_ctx,
            targets.quiet_game.as_deref().or(game),
            &targets.no_game
        )),
        when(sel.has("ws.ping"), || stream::ping(
            &stream_ctx,
            game,
            &targets.no_game
        )),
        when(sel.has("ws.unknown_game"), || stream::unknown_game(
            &stream_ctx
        )),
        when(sel.has("http.unknown_path"), || http::unknown_path(&ctx)),
        when(sel.has("scores.nfl"), || http::scores(&ctx, "nfl")),
        when(sel.has("scores.nhl"), || http::scores(&ctx, "nhl")),
    );
    results.extend(timeline);
    let main = main.unwrap_or_default();
    results.extend(main.results.iter().filter(|r| sel.has(r.name)).cloned());
    if let Some(quiet) = heartbeat {
        results.push(stream::merge_heartbeat(quiet, &main));
    }
    let (resume, matches) = tokio::join!(
        when(sel.has("ws.resume"), || stream::resume(&stream_ctx, &main)),
        when(sel.has("timeline.matches_stream"), || {
            http::timeline_matches(&ctx, &main)
        }),
    );
    results.extend(resume);
    results.extend(ping);
    results.extend(unknown_game);
    results.extend(unknown_path);
    results.extend(matches);
    results.extend(nfl);
    results.extend(nhl);
    if sel.has("admin.faults") {
        results.push(stream::admin_faults(&stream_ctx, &ctx, game, &targets.no_game).await);
    }
    results.sort_by_key(|r| CHECKS.iter().position(|c| c.0 == r.name));
    SmokeReport::finish(
        config,
        schemas,
        started,
        started_at,
        targets.game.clone(),
        None,
        results,
    )
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
            target: config.base.clone(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selections_take_names_prefixes_and_groups() {
        let ws = Selection::parse("ws.*").unwrap();
        assert!(ws.has("ws.seq") && ws.has("ws.ping") && !ws.has("health"));
        let all = Selection::parse("all").unwrap();
        assert!(all.has("admin.faults"));
        assert!(!Selection::default_checks().has("admin.faults"));
        let mixed = Selection::parse("default, admin.faults").unwrap();
        assert!(mixed.has("admin.faults") && mixed.has("health"));
        let e = Selection::parse("health,nope").unwrap_err();
        assert!(e.contains("\"nope\"") && e.contains("ws.seq"), "{e}");
        assert!(Selection::parse(" , ").is_err());
    }

    #[test]
    fn a_check_with_violations_fails_and_names_the_first() {
        let v = Violation::new("seq", 7, "/seq", "seq 8", "seq 6", "{}");
        let r = CheckResult::judged("ws.seq", Duration::from_millis(5), "ok", vec![v]);
        assert_eq!(r.status, Status::Fail);
        assert_eq!(r.detail, "1 violation: expected seq 8; got seq 6");
        let ok = CheckResult::judged("ws.seq", Duration::ZERO, "in order", vec![]);
        assert_eq!((ok.status, ok.detail.as_str()), (Status::Pass, "in order"));
    }
}
