//! The REST checks: health, the games list (which also picks the games the stream
//! checks watch), the timeline, an unknown path, and the scores endpoints.

use std::time::{Duration, Instant};

use serde_json::Value;
use url::Url;

use crate::client::http::Answer;
use crate::client::target::encode_segment;
use crate::contract::check::Violation;
use crate::contract::schema::Body;
use crate::smoke::check::{CheckId, CheckResult};
use crate::smoke::ctx::Ctx;
use crate::smoke::rest::{body_excerpt, body_violations, json};
use crate::text::{cut, excerpt};

/// The game the stream checks use, and a quiet one for the heartbeat check.
#[derive(Debug, Clone, Default)]
pub(crate) struct Targets {
    pub game: Option<String>,
    pub quiet_game: Option<String>,
    /// Why there is no game, when there is none.
    pub no_game: String,
    /// What `GET /api/live/games` said of the server: its contract version and epoch.
    pub contract_version: Option<String>,
    pub epoch: Option<String>,
    /// Each listed game's advertised URLs: (game, field, URL as given, cut).
    pub advertised: Vec<(String, &'static str, String)>,
}

/// The `ws_url` and `timeline_url` of each listed game.
fn advertised_urls(list: &serde_json::Value) -> Vec<(String, &'static str, String)> {
    let games = list["games"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    games
        .iter()
        .take(MAX_GAMES_LOOKED_AT)
        .flat_map(|g| {
            let id = cut(g["id"].as_str().unwrap_or("?"), 64);
            ["ws_url", "timeline_url"]
                .into_iter()
                .filter_map(move |field| {
                    let url = g[field].as_str()?;
                    Some((id.clone(), field, cut(url, 300)))
                })
        })
        .collect()
}

/// Games whose advertised URLs are compared (a huge list is not a reason to wait).
const MAX_GAMES_LOOKED_AT: usize = 200;

/// Each game's `ws_url` and `timeline_url` point at the scheme, host and port smoke
/// reached the server at: a client following them to another host or port would
/// bypass what smoke went through (a proxy's backend address leaking out is the
/// common case).
pub(crate) fn advertised(ctx: &Ctx<'_>, targets: &Targets) -> CheckResult {
    const ID: CheckId = CheckId::Advertised;
    let started = Instant::now();
    if targets.advertised.is_empty() {
        return CheckResult::skip(ID, "no game advertised a ws_url or timeline_url");
    }
    let reached = ctx.config.target.http_base();
    let ws_reached = ctx.config.target.ws_base();
    let secure = reached.scheme() == "https";
    let place = |u: &Url| {
        (
            u.host_str().map(str::to_ascii_lowercase),
            u.port_or_known_default(),
        )
    };
    let want = place(&reached);
    let mut elsewhere = Vec::new();
    for (game, field, raw) in &targets.advertised {
        let expected_scheme = match (*field, secure) {
            ("ws_url", false) => "ws",
            ("ws_url", true) => "wss",
            (_, false) => "http",
            (_, true) => "https",
        };
        // A relative URL is resolved against where it came from.
        let base = if *field == "ws_url" {
            &ws_reached
        } else {
            &reached
        };
        let parsed = match Url::parse(raw) {
            Err(url::ParseError::RelativeUrlWithoutBase) => base.join(raw),
            other => other,
        };
        let problem = match parsed {
            Err(e) => Some(format!("is not a URL ({e})")),
            Ok(u) if u.scheme() != expected_scheme => Some(format!(
                "uses {}:// where this server was reached over {}://",
                u.scheme(),
                reached.scheme()
            )),
            Ok(u) if place(&u) != want => Some(format!(
                "points at {}, not {}",
                authority(&u),
                authority(&reached)
            )),
            Ok(_) => None,
        };
        if let Some(problem) = problem {
            elsewhere.push(format!("game {game}: {field} {raw} {problem}"));
        }
    }
    let took = started.elapsed();
    let count = targets.advertised.len();
    if elsewhere.is_empty() {
        return CheckResult::pass(
            ID,
            took,
            format!("{count} advertised URLs point at {}", authority(&reached)),
        );
    }
    let first = &elsewhere[0];
    let more = match elsewhere.len() {
        1 => String::new(),
        n => format!(" (and {} more)", n - 1),
    };
    if ctx.config.advertised_elsewhere_ok {
        return CheckResult::pass(
            ID,
            took,
            format!("{first}{more}; expected (--advertised-elsewhere-ok)"),
        );
    }
    CheckResult::fail(
        ID,
        took,
        format!(
            "{first}{more}: clients following it bypass what smoke reached. Behind a proxy, start serve with --trust-proxy (it follows Forwarded / X-Forwarded-Host, -Proto and -Port) or --public-url; if this is intended, pass --advertised-elsewhere-ok"
        ),
    )
}

fn authority(u: &Url) -> String {
    match (u.host_str(), u.port_or_known_default()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        _ => u.as_str().to_owned(),
    }
}

/// `GET /health`; also says whether the server was unreachable.
pub(crate) async fn health(ctx: &Ctx<'_>) -> (CheckResult, Option<String>) {
    const ID: CheckId = CheckId::Health;
    let started = Instant::now();
    let (status, body) = match ctx.get("/health").await {
        Answer::Reply { status, body } => (status, body),
        Answer::Unreachable(why) => {
            let detail = format!("cannot reach {}/health: {why}", ctx.origin());
            return (CheckResult::fail(ID, started.elapsed(), detail), Some(why));
        }
    };
    let took = started.elapsed();
    if status != 200 {
        let text = body_excerpt(&body, 160);
        return (
            CheckResult::fail(ID, took, format!("HTTP {status} (expected 200): {text}")),
            None,
        );
    }
    let value = match json(ID, took, status, &body) {
        Ok(v) => v,
        Err(failed) => return (failed, None),
    };
    let violations = body_violations(ctx.schemas, Body::Health, &value);
    let state = value["status"].as_str().unwrap_or("?");
    let sources: Vec<String> = value["sources"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(name, s)| format!("{name} {}", s["state"].as_str().unwrap_or("?")))
                .collect()
        })
        .unwrap_or_default();
    let ok = format!("{state}; {}", sources.join(", "));
    (CheckResult::judged(ID, took, ok, violations), None)
}

/// `health.upstreams`: every upstream `/health` lists is ok; the ones that are not are
/// named with what the server says of them. After a deploy this is where a missing API
/// key or an unreachable API-SPORTS shows. `stale` is on its way somewhere (a server
/// that just started, a slow poll) and gets until `--timeout`; `down` is judged at once.
pub(crate) async fn upstreams(ctx: &Ctx<'_>) -> CheckResult {
    const ID: CheckId = CheckId::HealthUpstreams;
    let started = Instant::now();
    let sources = match settled_section(ctx, ID, "sources", "stale").await {
        Ok(Some(sources)) => sources,
        Ok(None) => return CheckResult::skip(ID, "/health lists no upstreams"),
        Err(skipped) => return skipped,
    };
    let seen: Vec<String> = sources
        .iter()
        .map(|(name, s)| format!("{name} {}", state_of(s)))
        .collect();
    let violations = not_ok(&sources, "sources", |state, detail| {
        format!("{state}: {}", cut(detail, 160))
    });
    CheckResult::judged(ID, started.elapsed(), seen.join(", "), violations)
}

/// `health.store`: each store `/health` reports has written (an idle one is given
/// until `--timeout` to make its first write); none reported: skipped, saying so.
pub(crate) async fn store(ctx: &Ctx<'_>) -> CheckResult {
    const ID: CheckId = CheckId::HealthStore;
    let started = Instant::now();
    let stores = match settled_section(ctx, ID, "store", "idle").await {
        Ok(Some(stores)) => stores,
        Ok(None) => {
            return CheckResult::skip(
                ID,
                "/health reports no store (livegames serve writes to InfluxDB with --influxdb)",
            );
        }
        Err(skipped) => return skipped,
    };
    let violations = not_ok(&stores, "store", |state, detail| {
        if state == "idle" {
            format!(
                "idle: nothing written within --timeout ({})",
                humantime::format_duration(ctx.timeout())
            )
        } else {
            format!("{state}: {}", cut(detail, 160))
        }
    });
    let ok = stores
        .iter()
        .map(|(name, s)| {
            let queued = s["queued_lines"].as_u64().unwrap_or(0);
            format!("{name} {}, {queued} lines queued", state_of(s))
        })
        .collect::<Vec<_>>()
        .join(", ");
    CheckResult::judged(ID, started.elapsed(), ok, violations)
}

/// `/health`'s `section` (sources, store) once none of its entries is in the
/// `transitional` state (stale, idle) any more, or as it is at `--timeout`. Ok(None): the section is
/// absent or empty. Err: the check is skipped because `/health` did not answer.
async fn settled_section(
    ctx: &Ctx<'_>,
    id: CheckId,
    section: &str,
    transitional: &str,
) -> Result<Option<serde_json::Map<String, Value>>, CheckResult> {
    let started = Instant::now();
    loop {
        let mut value = health_body(ctx, id).await?;
        let Some(entries) = value[section].as_object_mut().filter(|m| !m.is_empty()) else {
            return Ok(None);
        };
        let settling = entries.values().any(|e| e["state"] == transitional);
        if settling && started.elapsed() + Duration::from_millis(250) < ctx.timeout() {
            tokio::time::sleep(Duration::from_millis(250)).await;
            continue;
        }
        return Ok(Some(std::mem::take(entries)));
    }
}

fn state_of(entry: &Value) -> &str {
    entry["state"].as_str().unwrap_or("?")
}

/// A violation for each entry of `/health`'s `section` whose state is not `ok`, with
/// what `found` makes of its state and detail.
fn not_ok(
    entries: &serde_json::Map<String, Value>,
    section: &str,
    found: impl Fn(&str, &str) -> String,
) -> Vec<Violation> {
    entries
        .iter()
        .filter(|(_, e)| state_of(e) != "ok")
        .map(|(name, e)| {
            let detail = e["detail"].as_str().unwrap_or("no detail");
            Violation::new(
                "health",
                0,
                format!("/{section}/{name}/state"),
                "ok",
                found(state_of(e), detail),
                "",
            )
        })
        .collect()
}

/// `/health` as JSON; when it does not answer 200 with JSON, the check is skipped
/// pointing at `health`, which judges that.
async fn health_body(ctx: &Ctx<'_>, id: CheckId) -> Result<Value, CheckResult> {
    let why = match ctx.get("/health").await {
        Answer::Reply { status: 200, body } => match serde_json::from_slice::<Value>(&body) {
            Ok(v) if v.is_object() => return Ok(v),
            _ => "/health is not a JSON object".to_owned(),
        },
        Answer::Reply { status, .. } => format!("/health answered HTTP {status}"),
        Answer::Unreachable(why) => format!("/health: {why}"),
    };
    Err(CheckResult::skip(
        id,
        format!("{why} (see the health check)"),
    ))
}

/// The listed games: (id, state of the latest point).
fn listed_games(list: &Value) -> Vec<(&str, &str)> {
    list["games"]
        .as_array()
        .map(|games| {
            games
                .iter()
                .filter_map(|g| {
                    let id = g["id"].as_str()?;
                    Some((id, g["latest"]["state"].as_str().unwrap_or("")))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The game to stream (the one asked for, else the first live one) and a quiet one
/// for the heartbeat (not live, not the streamed one).
fn choose_games(targets: &mut Targets, listed: &[(&str, &str)]) {
    if targets.game.is_none() {
        targets.game = listed
            .iter()
            .find(|(_, s)| *s == "live")
            .map(|(id, _)| (*id).to_owned());
    }
    targets.quiet_game = listed
        .iter()
        .find(|(id, s)| *s != "live" && Some(*id) != targets.game.as_deref())
        .map(|(id, _)| (*id).to_owned());
}

/// `GET /api/live/games`: a valid list, and the games to test.
pub(crate) async fn games(
    ctx: &Ctx<'_>,
    wanted: Option<&str>,
) -> (CheckResult, Targets, Option<String>) {
    const ID: CheckId = CheckId::Games;
    let started = Instant::now();
    let mut targets = Targets {
        game: wanted.map(str::to_owned),
        quiet_game: None,
        no_game: "no game to stream (see the games check)".into(),
        contract_version: None,
        epoch: None,
        advertised: Vec::new(),
    };
    let (status, body) = match ctx.get("/api/live/games").await {
        Answer::Reply { status, body } => (status, body),
        Answer::Unreachable(why) => {
            let detail = format!("cannot reach {}/api/live/games: {why}", ctx.origin());
            return (
                CheckResult::fail(ID, started.elapsed(), detail),
                targets,
                Some(why),
            );
        }
    };
    let took = started.elapsed();
    if status != 200 {
        let text = body_excerpt(&body, 160);
        let detail = format!("HTTP {status} (expected 200): {text}");
        return (CheckResult::fail(ID, took, detail), targets, None);
    }
    let value = match json(ID, took, status, &body) {
        Ok(v) => v,
        Err(failed) => return (failed, targets, None),
    };
    let violations = body_violations(ctx.schemas, Body::GamesList, &value);
    targets.contract_version = value["contract_version"].as_str().map(|v| cut(v, 32));
    targets.epoch = value["epoch"].as_str().map(|e| cut(e, 128));
    targets.advertised = advertised_urls(&value);
    let listed = listed_games(&value);
    let live = listed.iter().filter(|(_, s)| *s == "live").count();
    choose_games(&mut targets, &listed);
    let summary = format!("{} games, {live} live", listed.len());
    let result = match (&targets.game, wanted) {
        (_, _) if !violations.is_empty() => CheckResult::judged(ID, took, "", violations),
        (None, _) if listed.is_empty() => {
            targets.no_game = "the server lists no games".into();
            CheckResult::fail(ID, took, "the server lists no games")
        }
        (None, _) => {
            targets.no_game = "no game is live (see the games check)".into();
            CheckResult::fail(
                ID,
                took,
                format!(
                    "{summary}: no game is live, so the stream checks have nothing to watch (pass --game ID to test one anyway)"
                ),
            )
        }
        (Some(game), Some(_)) if !listed.iter().any(|(id, _)| id == game) => CheckResult::pass(
            ID,
            took,
            format!("{summary}; testing --game {game} (not in the list)"),
        ),
        (Some(game), _) => CheckResult::pass(ID, took, format!("{summary}; testing {game}")),
    };
    (result, targets, None)
}

fn timeline_path(game: &str, since: Option<u64>) -> String {
    let path = format!("/api/games/{}/timeline", encode_segment(game));
    match since {
        Some(since) => format!("{path}?since={since}"),
        None => path,
    }
}

/// Fetches and parses a timeline; a failed check when that is not possible.
pub(crate) async fn fetch_timeline(
    ctx: &Ctx<'_>,
    id: CheckId,
    game: &str,
    since: Option<u64>,
) -> Result<(Value, Duration), CheckResult> {
    let started = Instant::now();
    let path = timeline_path(game, since);
    match ctx.get(&path).await {
        Answer::Unreachable(why) => Err(CheckResult::fail(
            id,
            started.elapsed(),
            format!("GET {path}: {why}"),
        )),
        Answer::Reply { status: 200, body } => {
            let took = started.elapsed();
            json(id, took, 200, &body).map(|v| (v, took))
        }
        Answer::Reply { status, body } => Err(CheckResult::fail(
            id,
            started.elapsed(),
            format!(
                "GET {path}: HTTP {status} (expected 200): {}",
                body_excerpt(&body, 160)
            ),
        )),
    }
}

/// `GET /api/games/{id}/timeline`: valid, about this game, seqs rising.
pub(crate) async fn timeline(ctx: &Ctx<'_>, game: Option<&str>, no_game: &str) -> CheckResult {
    const ID: CheckId = CheckId::Timeline;
    let Some(game) = game else {
        return CheckResult::skip(ID, no_game);
    };
    let (value, took) = match fetch_timeline(ctx, ID, game, None).await {
        Ok(v) => v,
        Err(failed) => return failed,
    };
    let mut violations = body_violations(ctx.schemas, Body::Timeline, &value);
    let raw = cut(&value.to_string(), 200);
    if value["game_id"].as_str().is_some_and(|id| id != game) {
        violations.push(Violation::new(
            "schema",
            0,
            "/game_id",
            format!("{game:?}"),
            excerpt(&value["game_id"], 80),
            &raw,
        ));
    }
    let seqs: Vec<u64> = value["points"]
        .as_array()
        .map(|p| p.iter().filter_map(|p| p["seq"].as_u64()).collect())
        .unwrap_or_default();
    for (i, pair) in seqs.windows(2).enumerate() {
        if pair[1] <= pair[0] {
            violations.push(Violation::new(
                "seq",
                0,
                format!("/points/{}/seq", i + 1),
                format!("a seq above {}", pair[0]),
                pair[1].to_string(),
                &raw,
            ));
        }
    }
    if let (Some(last), Some(last_seq)) = (seqs.last(), value["last_seq"].as_u64())
        && *last > last_seq
    {
        violations.push(Violation::new(
            "seq",
            0,
            "/last_seq",
            format!("at least {last} (the last point's seq)"),
            last_seq.to_string(),
            &raw,
        ));
    }
    let ok = match (seqs.first(), seqs.last()) {
        (Some(a), Some(b)) => format!("{} points, seq {a}..{b}", seqs.len()),
        _ => "no points yet".to_owned(),
    };
    CheckResult::judged(ID, took, ok, violations)
}

/// An unknown path must be a 404, not a catch-all 200.
pub(crate) async fn unknown_path(ctx: &Ctx<'_>) -> CheckResult {
    const ID: CheckId = CheckId::HttpUnknownPath;
    let path = "/api/livegames-smoke/no-such-path";
    let started = Instant::now();
    match ctx.get(path).await {
        Answer::Reply { status: 404, .. } => {
            CheckResult::pass(ID, started.elapsed(), format!("GET {path}: 404"))
        }
        Answer::Reply { status, body } => CheckResult::fail(
            ID,
            started.elapsed(),
            format!(
                "GET {path}: HTTP {status} (expected 404): {}",
                body_excerpt(&body, 120)
            ),
        ),
        Answer::Unreachable(why) => {
            CheckResult::fail(ID, started.elapsed(), format!("GET {path}: {why}"))
        }
    }
}

/// `GET /api/{league}/scores`: 200 with valid scores, or 503 with a JSON reason.
pub(crate) async fn scores(ctx: &Ctx<'_>, league: &'static str) -> CheckResult {
    let id = if league == "nfl" {
        CheckId::ScoresNfl
    } else {
        CheckId::ScoresNhl
    };
    let path = format!("/api/{league}/scores");
    let started = Instant::now();
    let (status, body) = match ctx.get(&path).await {
        Answer::Reply { status, body } => (status, body),
        Answer::Unreachable(why) => {
            return CheckResult::fail(id, started.elapsed(), format!("GET {path}: {why}"));
        }
    };
    let took = started.elapsed();
    if status != 200 && status != 503 {
        return CheckResult::fail(
            id,
            took,
            format!(
                "HTTP {status} (expected 200, or 503 with a reason): {}",
                body_excerpt(&body, 120)
            ),
        );
    }
    let value = match json(id, took, status, &body) {
        Ok(v) => v,
        Err(failed) => return failed,
    };
    if status == 503 {
        let violations = body_violations(ctx.schemas, Body::Error, &value);
        let why = value["message"].as_str().unwrap_or("");
        return CheckResult::judged(id, took, format!("503: {}", cut(why, 100)), violations);
    }
    let mut violations = body_violations(ctx.schemas, Body::Scores, &value);
    if value["league"].as_str().is_some_and(|l| l != league) {
        violations.push(Violation::new(
            "schema",
            0,
            "/league",
            format!("{league:?}"),
            excerpt(&value["league"], 40),
            &value.to_string(),
        ));
    }
    let count = value["games"].as_array().map_or(0, Vec::len);
    CheckResult::judged(id, took, format!("200: {count} games"), violations)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeline_paths_are_encoded() {
        assert_eq!(timeline_path("g1", None), "/api/games/g1/timeline");
        assert_eq!(
            timeline_path("a b", Some(4)),
            "/api/games/a%20b/timeline?since=4"
        );
    }
}
