//! `livegames smoke`: checks a running server, ours or anyone's, against the
//! published contract, and says exactly what is wrong.
//!
//! Every check runs (no stop at the first failure); checks that need something an
//! earlier one could not provide (a game, an open stream) are skipped with the reason.
//! Independent checks run concurrently, so a run takes about as long as its slowest
//! check (the stream: `--messages` frames; the heartbeat: one interval of silence).
//!
//! Layout: [`check`] names the checks and holds their results, [`config`] says what
//! to check and [`report`] what was found; `ctx` and `conn` are
//! the plumbing (one HTTP client, one WebSocket connection with deadlines); `rest` and
//! `diff` are helpers; `checks/` holds the checks by group; [`render`] prints.

pub mod check;
mod checks;
pub mod config;
mod conn;
mod ctx;
mod diff;
pub mod render;
pub mod report;
mod rest;

use std::time::Instant;

use crate::contract::schema::Schemas;
pub use check::{CheckId, CheckResult, MAX_LISTED, Selection, Status};
use checks::rest::Targets;
use checks::{admin, consistency, protocol, rest as rest_checks, stream};
pub use config::{READ_BUFFER, SmokeConfig};
use ctx::Ctx;
use report::RunFacts;
pub use report::{Counts, REPORT_VERSION, SmokeReport};

/// Runs every selected check against `config.target`.
pub async fn run(config: &SmokeConfig, schemas: &Schemas) -> SmokeReport {
    let started = Instant::now();
    let started_at = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
    let facts = |game, unreachable| RunFacts {
        started,
        started_at: started_at.clone(),
        game,
        unreachable,
    };
    let ctx = match Ctx::new(config, schemas) {
        Ok(ctx) => ctx,
        Err(e) => {
            let why = e.to_string();
            return SmokeReport::finish(config, schemas, facts(None, Some(why)), Vec::new());
        }
    };
    let (mut results, targets) = match first_contact(&ctx).await {
        Ok(found) => found,
        Err(why) => {
            return SmokeReport::finish(config, schemas, facts(None, Some(why)), Vec::new());
        }
    };
    // Boxed: the joined checks make a large future, too large for small stacks.
    results.extend(Box::pin(checks_on_games(&ctx, &targets)).await);
    results.sort_by_key(|r| r.name.order());
    SmokeReport::finish(config, schemas, facts(targets.game.clone(), None), results)
}

/// `/health` and `/api/live/games` together: their checks, and the games the other
/// checks watch. Err(why) when neither answered: the server is unreachable.
async fn first_contact(ctx: &Ctx<'_>) -> Result<(Vec<CheckResult>, Targets), String> {
    let sel = &ctx.config.checks;
    let (health, games) = tokio::join!(
        rest_checks::health(ctx),
        rest_checks::games(ctx, ctx.config.game.as_deref())
    );
    let (health, health_unreachable) = health;
    let (games, targets, games_unreachable) = games;
    if let (Some(reason), Some(_)) = (health_unreachable, games_unreachable) {
        return Err(reason);
    }
    let mut results = Vec::new();
    results.extend(sel.has(CheckId::Health).then_some(health));
    results.extend(sel.has(CheckId::Games).then_some(games));
    if sel.has(CheckId::Advertised) {
        results.push(rest_checks::advertised(ctx, &targets));
    }
    Ok((results, targets))
}

/// Every other selected check: the independent ones at once, then those that compare
/// against the main stream, then the admin round trip (it changes the server).
async fn checks_on_games(ctx: &Ctx<'_>, targets: &Targets) -> Vec<CheckResult> {
    let sel = &ctx.config.checks;
    let game = targets.game.as_deref();
    let no_game = targets.no_game.as_str();
    // resume, the timeline comparison and the heartbeat's silences use the main stream too
    let needs_main = CheckId::ALL
        .into_iter()
        .any(|id| id.on_main_stream() && sel.has(id))
        || sel.any(&[
            CheckId::WsHeartbeat,
            CheckId::WsResume,
            CheckId::WsEpoch,
            CheckId::TimelineMatchesStream,
        ]);
    let quiet_game = targets.quiet_game.as_deref().or(game);
    let (
        timeline,
        main,
        heartbeat,
        ping,
        unknown_game,
        unknown_path,
        nfl,
        nhl,
        upstreams,
        store,
        sse,
    ) = tokio::join!(
        check(ctx, CheckId::Timeline, || rest_checks::timeline(
            ctx, game, no_game
        )),
        when(needs_main, || stream::bounded_main_stream(
            ctx, game, no_game
        )),
        check(ctx, CheckId::WsHeartbeat, || protocol::heartbeat(
            ctx, quiet_game, no_game
        )),
        check(ctx, CheckId::WsPing, || protocol::ping(ctx, game, no_game)),
        check(ctx, CheckId::WsUnknownGame, || protocol::unknown_game(ctx)),
        check(ctx, CheckId::HttpUnknownPath, || rest_checks::unknown_path(
            ctx
        )),
        check(ctx, CheckId::ScoresNfl, || rest_checks::scores(ctx, "nfl")),
        check(ctx, CheckId::ScoresNhl, || rest_checks::scores(ctx, "nhl")),
        check(ctx, CheckId::HealthUpstreams, || rest_checks::upstreams(
            ctx
        )),
        check(ctx, CheckId::HealthStore, || rest_checks::store(ctx)),
        check(ctx, CheckId::SseStream, || {
            crate::smoke::checks::sse::stream(ctx, game, no_game)
        }),
    );
    let main = main.unwrap_or_default();
    let mut results: Vec<CheckResult> = main
        .results
        .iter()
        .filter(|r| sel.has(r.name))
        .cloned()
        .collect();
    results.extend(heartbeat.map(|quiet| protocol::merge_heartbeat(quiet, &main)));
    let (resume, epoch, matches) = tokio::join!(
        check(ctx, CheckId::WsResume, || consistency::resume(ctx, &main)),
        check(ctx, CheckId::WsEpoch, || consistency::epoch(
            ctx, targets, &main
        )),
        check(ctx, CheckId::TimelineMatchesStream, || {
            consistency::timeline_matches(ctx, &main)
        }),
    );
    results.extend(
        [
            timeline,
            resume,
            epoch,
            ping,
            unknown_game,
            unknown_path,
            matches,
            nfl,
            nhl,
            upstreams,
            store,
            sse,
        ]
        .into_iter()
        .flatten(),
    );
    results.extend(
        check(ctx, CheckId::AdminFaults, || {
            admin::admin_faults(ctx, game, no_game)
        })
        .await,
    );
    results
}

/// Runs check `id` when it is selected, bounded by --timeout.
async fn check<F, Fut>(ctx: &Ctx<'_>, id: CheckId, check: F) -> Option<CheckResult>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = CheckResult>,
{
    if ctx.config.checks.has(id) {
        Some(bounded(ctx, id, check()).await)
    } else {
        None
    }
}

/// Runs one check; one that has not ended within --timeout fails, saying so. (A
/// backstop: the checks bound their own waits by `Ctx::deadline`.)
async fn bounded(
    ctx: &Ctx<'_>,
    id: CheckId,
    check: impl std::future::Future<Output = CheckResult>,
) -> CheckResult {
    match tokio::time::timeout(ctx.timeout(), check).await {
        Ok(result) => result,
        Err(_) => CheckResult::fail(id, ctx.timeout(), ctx.not_finished()),
    }
}

/// Runs `check` when `selected`.
async fn when<T, F, Fut>(selected: bool, check: F) -> Option<T>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    if selected { Some(check().await) } else { None }
}
