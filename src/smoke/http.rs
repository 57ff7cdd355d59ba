//! The REST checks: health, games list, timeline, unknown path, scores, and the
//! timeline compared with what the stream sent.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::stream::MainStream;
use super::{CheckResult, Targets};
use crate::contract::check::{Violation, json_kind};
use crate::contract::schema::{Body, Schemas, cut, excerpt};

/// Bodies larger than this are refused rather than read into memory.
const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

pub(crate) struct Ctx<'a> {
    pub client: &'a reqwest::Client,
    /// `http(s)://host:port`, no trailing slash.
    pub base: &'a str,
    pub schemas: &'a Schemas,
    pub timeout: Duration,
}

pub(crate) fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default()
}

/// What a GET came back with.
pub(crate) enum Answer {
    Reply {
        status: u16,
        body: Vec<u8>,
    },
    /// No HTTP answer at all: refused, DNS, TLS, timeout; the reason in one line.
    Unreachable(String),
}

pub(crate) async fn get(ctx: &Ctx<'_>, path: &str) -> Answer {
    request(ctx, ctx.client.get(format!("{}{path}", ctx.base))).await
}

pub(crate) async fn request(ctx: &Ctx<'_>, request: reqwest::RequestBuilder) -> Answer {
    let mut response = match request.send().await {
        Ok(r) => r,
        Err(e) => return Answer::Unreachable(reason(&e, ctx.timeout)),
    };
    let status = response.status().as_u16();
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_BODY_BYTES {
                    return Answer::Unreachable(format!(
                        "HTTP {status} with a body over {} MiB",
                        MAX_BODY_BYTES >> 20
                    ));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Answer::Reply { status, body },
            Err(e) => return Answer::Unreachable(reason(&e, ctx.timeout)),
        }
    }
}

/// One line saying why a request got no answer, from the error and its causes.
pub(crate) fn reason(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return format!("no answer within {}", humantime::format_duration(timeout));
    }
    let mut parts: Vec<String> = Vec::new();
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(err) = source {
        let text = err.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = err.source();
    }
    let all = parts.join(": ");
    let innermost = parts.last().cloned().unwrap_or_default();
    let lower = all.to_lowercase();
    if lower.contains("connection refused") {
        "connection refused".into()
    } else if lower.contains("dns") || lower.contains("lookup") || lower.contains("resolve") {
        format!("cannot resolve the host: {innermost}")
    } else if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake")
    {
        format!("TLS failed: {innermost}")
    } else {
        all
    }
}

/// A body for a message: its start, or "(empty body)".
pub(crate) fn body_excerpt(body: &[u8], max: usize) -> String {
    if body.is_empty() {
        return "(empty body)".into();
    }
    let text = String::from_utf8_lossy(body);
    // One line: an HTML error page would otherwise break the checklist apart.
    let flat: Vec<&str> = text.split_whitespace().collect();
    cut(&flat.join(" "), max)
}

/// The body as JSON, or a failed check saying what came instead.
fn json(
    name: &'static str,
    took: Duration,
    status: u16,
    body: &[u8],
) -> Result<Value, CheckResult> {
    serde_json::from_slice(body).map_err(|e| {
        CheckResult::fail(
            name,
            took,
            format!(
                "HTTP {status} with a body that is not JSON ({e}): {}",
                body_excerpt(body, 120)
            ),
        )
    })
}

/// Schema violations of a REST body, as violations of "frame" 0 (the body).
fn body_violations(schemas: &Schemas, body: Body, value: &Value) -> Vec<Violation> {
    let raw = value.to_string();
    schemas
        .validate(body, value)
        .into_iter()
        .map(|v| Violation::new("schema", 0, v.pointer, v.expected, v.actual, &raw))
        .collect()
}

/// `GET /health`; also says whether the server was unreachable.
pub(crate) async fn health(ctx: &Ctx<'_>) -> (CheckResult, Option<String>) {
    const NAME: &str = "health";
    let started = Instant::now();
    let (status, body) = match get(ctx, "/health").await {
        Answer::Reply { status, body } => (status, body),
        Answer::Unreachable(why) => {
            let detail = format!("cannot reach {}/health: {why}", ctx.base);
            return (
                CheckResult::fail(NAME, started.elapsed(), detail),
                Some(why),
            );
        }
    };
    let took = started.elapsed();
    if status != 200 {
        let text = body_excerpt(&body, 160);
        return (
            CheckResult::fail(NAME, took, format!("HTTP {status} (expected 200): {text}")),
            None,
        );
    }
    let value = match json(NAME, took, status, &body) {
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
    (CheckResult::judged(NAME, took, ok, violations), None)
}

/// `GET /api/live/games`: a valid list, and the games to test.
pub(crate) async fn games(
    ctx: &Ctx<'_>,
    wanted: Option<&str>,
) -> (CheckResult, Targets, Option<String>) {
    const NAME: &str = "games";
    let started = Instant::now();
    let mut targets = Targets {
        game: wanted.map(str::to_owned),
        quiet_game: None,
        no_game: "no game to stream (see the games check)".into(),
    };
    let (status, body) = match get(ctx, "/api/live/games").await {
        Answer::Reply { status, body } => (status, body),
        Answer::Unreachable(why) => {
            let detail = format!("cannot reach {}/api/live/games: {why}", ctx.base);
            return (
                CheckResult::fail(NAME, started.elapsed(), detail),
                targets,
                Some(why),
            );
        }
    };
    let took = started.elapsed();
    if status != 200 {
        let text = body_excerpt(&body, 160);
        let detail = format!("HTTP {status} (expected 200): {text}");
        return (CheckResult::fail(NAME, took, detail), targets, None);
    }
    let value = match json(NAME, took, status, &body) {
        Ok(v) => v,
        Err(failed) => return (failed, targets, None),
    };
    let violations = body_violations(ctx.schemas, Body::GamesList, &value);
    let listed: Vec<(&str, &str)> = value["games"]
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
        .unwrap_or_default();
    let live = listed.iter().filter(|(_, s)| *s == "live").count();
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
    let summary = format!("{} games, {live} live", listed.len());
    let result = match (&targets.game, wanted) {
        (_, _) if !violations.is_empty() => CheckResult::judged(NAME, took, "", violations),
        (None, _) if listed.is_empty() => {
            targets.no_game = "the server lists no games".into();
            CheckResult::fail(NAME, took, "the server lists no games")
        }
        (None, _) => {
            targets.no_game = "no game is live (see the games check)".into();
            CheckResult::fail(
                NAME,
                took,
                format!(
                    "{summary}: no game is live, so the stream checks have nothing to watch (pass --game ID to test one anyway)"
                ),
            )
        }
        (Some(game), Some(_)) if !listed.iter().any(|(id, _)| id == game) => CheckResult::pass(
            NAME,
            took,
            format!("{summary}; testing --game {game} (not in the list)"),
        ),
        (Some(game), _) => CheckResult::pass(NAME, took, format!("{summary}; testing {game}")),
    };
    (result, targets, None)
}

fn timeline_path(game: &str, since: Option<u64>) -> String {
    let mut url = reqwest::Url::parse("http://x/api/games/").expect("static URL");
    if let Ok(mut segments) = url.path_segments_mut() {
        segments.pop_if_empty().push(game).push("timeline");
    }
    if let Some(since) = since {
        url.set_query(Some(&format!("since={since}")));
    }
    match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    }
}

/// Fetches and parses a timeline; a failed check when that is not possible.
async fn fetch_timeline(
    ctx: &Ctx<'_>,
    name: &'static str,
    game: &str,
    since: Option<u64>,
) -> Result<(Value, Duration), CheckResult> {
    let started = Instant::now();
    let path = timeline_path(game, since);
    match get(ctx, &path).await {
        Answer::Unreachable(why) => Err(CheckResult::fail(
            name,
            started.elapsed(),
            format!("GET {path}: {why}"),
        )),
        Answer::Reply { status: 200, body } => {
            let took = started.elapsed();
            json(name, took, 200, &body).map(|v| (v, took))
        }
        Answer::Reply { status, body } => Err(CheckResult::fail(
            name,
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
    const NAME: &str = "timeline";
    let Some(game) = game else {
        return CheckResult::skip(NAME, no_game);
    };
    let (value, took) = match fetch_timeline(ctx, NAME, game, None).await {
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
    if let (Some(last), Some(last_seq)) = (seqs.last(), value["last_seq"].as_u64()) {
        if *last > last_seq {
            violations.push(Violation::new(
                "seq",
                0,
                "/last_seq",
                format!("at least {last} (the last point's seq)"),
                last_seq.to_string(),
                &raw,
            ));
        }
    }
    let ok = match (seqs.first(), seqs.last()) {
        (Some(a), Some(b)) => format!("{} points, seq {a}..{b}", seqs.len()),
        _ => "no points yet".to_owned(),
    };
    CheckResult::judged(NAME, took, ok, violations)
}

/// An unknown path must be a 404, not a catch-all 200.
pub(crate) async fn unknown_path(ctx: &Ctx<'_>) -> CheckResult {
    const NAME: &str = "http.unknown_path";
    let path = "/api/livegames-smoke/no-such-path";
    let started = Instant::now();
    match get(ctx, path).await {
        Answer::Reply { status: 404, .. } => {
            CheckResult::pass(NAME, started.elapsed(), format!("GET {path}: 404"))
        }
        Answer::Reply { status, body } => CheckResult::fail(
            NAME,
            started.elapsed(),
            format!(
                "GET {path}: HTTP {status} (expected 404): {}",
                body_excerpt(&body, 120)
            ),
        ),
        Answer::Unreachable(why) => {
            CheckResult::fail(NAME, started.elapsed(), format!("GET {path}: {why}"))
        }
    }
}

/// `GET /api/{league}/scores`: 200 with valid scores, or 503 with a JSON reason.
pub(crate) async fn scores(ctx: &Ctx<'_>, league: &'static str) -> CheckResult {
    let name = if league == "nfl" {
        "scores.nfl"
    } else {
        "scores.nhl"
    };
    let path = format!("/api/{league}/scores");
    let started = Instant::now();
    let (status, body) = match get(ctx, &path).await {
        Answer::Reply { status, body } => (status, body),
        Answer::Unreachable(why) => {
            return CheckResult::fail(name, started.elapsed(), format!("GET {path}: {why}"));
        }
    };
    let took = started.elapsed();
    if status != 200 && status != 503 {
        return CheckResult::fail(
            name,
            took,
            format!(
                "HTTP {status} (expected 200, or 503 with a reason): {}",
                body_excerpt(&body, 120)
            ),
        );
    }
    let value = match json(name, took, status, &body) {
        Ok(v) => v,
        Err(failed) => return failed,
    };
    if status == 503 {
        let violations = body_violations(ctx.schemas, Body::Error, &value);
        let why = value["message"].as_str().unwrap_or("");
        return CheckResult::judged(name, took, format!("503: {}", cut(why, 100)), violations);
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
    CheckResult::judged(name, took, format!("200: {count} games"), violations)
}

/// The timeline, fetched after the stream, holds every point the stream sent with the
/// same data, and every point has the shape of live update data.
pub(crate) async fn timeline_matches(ctx: &Ctx<'_>, main: &MainStream) -> CheckResult {
    const NAME: &str = "timeline.matches_stream";
    let (Some(game), Some(since)) = (main.game.as_deref(), main.snapshot_seq) else {
        return CheckResult::skip(NAME, main.skip_reason.clone());
    };
    let Some(reference) = main.points().next().map(|(_, _, data)| data) else {
        return CheckResult::skip(NAME, "the stream sent no update or final frame to compare");
    };
    let (value, took) = match fetch_timeline(ctx, NAME, game, Some(since)).await {
        Ok(v) => v,
        Err(failed) => return failed,
    };
    let points = value["points"].as_array().cloned().unwrap_or_default();
    let first_retained = value["first_retained_seq"].as_u64().unwrap_or(0);
    let last_seq = value["last_seq"].as_u64().unwrap_or(0);
    let mut violations = Vec::new();
    for (i, point) in points.iter().enumerate() {
        if let Some((pointer, expected, actual)) = shape_diff(reference, &point["data"], "") {
            violations.push(Violation::new(
                "shape",
                0,
                format!("/points/{i}/data{pointer}"),
                format!("the shape of live update data: {expected}"),
                actual,
                &point.to_string(),
            ));
        }
    }
    let mut compared = 0;
    for (seq, frame_no, data) in main.points() {
        let point = points.iter().find(|p| p["seq"].as_u64() == Some(seq));
        match point {
            Some(point) => {
                compared += 1;
                if let Some(pointer) = first_difference(data, &point["data"], String::new()) {
                    violations.push(Violation::new(
                        "timeline",
                        frame_no,
                        format!("/data{pointer}"),
                        format!(
                            "the timeline's point {seq} to hold what the stream sent: {}",
                            excerpt(data.pointer(&pointer).unwrap_or(data), 80)
                        ),
                        excerpt(point["data"].pointer(&pointer).unwrap_or(&Value::Null), 80),
                        &point.to_string(),
                    ));
                }
            }
            None if seq >= first_retained && seq <= last_seq => {
                violations.push(Violation::new(
                    "timeline",
                    frame_no,
                    "/seq",
                    format!("the timeline to hold point {seq}, which the stream sent"),
                    "no such point",
                    "",
                ));
            }
            None => {}
        }
    }
    let ok =
        format!("{compared} points equal to what the stream sent; every point has the live shape");
    CheckResult::judged(NAME, took, ok, violations)
}

/// Where two values first differ (a JSON pointer), if they do.
pub(crate) fn first_difference(a: &Value, b: &Value, at: String) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for key in x.keys().chain(y.keys()) {
                let next = format!("{at}/{}", key.replace('~', "~0").replace('/', "~1"));
                match (x.get(key), y.get(key)) {
                    (Some(p), Some(q)) => {
                        if let Some(found) = first_difference(p, q, next) {
                            return Some(found);
                        }
                    }
                    _ => return Some(next),
                }
            }
            None
        }
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                return Some(at);
            }
            x.iter()
                .zip(y)
                .enumerate()
                .find_map(|(i, (p, q))| first_difference(p, q, format!("{at}/{i}")))
        }
        (Value::Number(x), Value::Number(y)) => (x.as_f64() != y.as_f64()).then_some(at),
        _ => (a != b).then_some(at),
    }
}

/// Whether `actual` has the shape of `reference`: the same keys at every level and
/// the same kinds of values (`null` stands in for any kind: a source may be down).
fn shape_diff(reference: &Value, actual: &Value, at: &str) -> Option<(String, String, String)> {
    match (reference, actual) {
        (Value::Null, _) | (_, Value::Null) => None,
        (Value::Object(r), Value::Object(a)) => {
            if let Some(missing) = r.keys().find(|k| !a.contains_key(*k)) {
                return Some((
                    at.to_owned(),
                    format!("a field {missing:?}"),
                    "missing".into(),
                ));
            }
            if let Some(extra) = a.keys().find(|k| !r.contains_key(*k)) {
                return Some((
                    format!("{at}/{extra}"),
                    "no such field (live updates do not have it)".into(),
                    excerpt(&a[extra], 60),
                ));
            }
            r.iter()
                .find_map(|(k, v)| shape_diff(v, &a[k], &format!("{at}/{k}")))
        }
        (r, a) if json_kind(r) == json_kind(a) => None,
        (r, a) => Some((
            at.to_owned(),
            json_kind(r).to_owned(),
            format!("{}: {}", json_kind(a), excerpt(a, 60)),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn differences_are_located() {
        let a = json!({"score": {"home": 3, "away": 1}, "clock": "1:00"});
        assert_eq!(first_difference(&a, &a.clone(), String::new()), None);
        let b = json!({"score": {"home": 3, "away": 2}, "clock": "1:00"});
        assert_eq!(
            first_difference(&a, &b, String::new()).as_deref(),
            Some("/score/away")
        );
        assert_eq!(
            first_difference(&json!(1), &json!(1.0), String::new()),
            None
        );
    }

    #[test]
    fn shapes_allow_nulls_and_name_the_field() {
        let live = json!({"score": {"home": 3, "away": 1}, "market": {"last_price": 0.5}});
        let down = json!({"score": null, "market": {"last_price": 0.4}});
        assert_eq!(shape_diff(&live, &down, ""), None);
        let renamed = json!({"score": {"home": 3, "visitors": 1}, "market": null});
        assert_eq!(shape_diff(&live, &renamed, "").unwrap().0, "/score");
        let stringly = json!({"score": {"home": "3", "away": 1}, "market": null});
        let (at, expected, _) = shape_diff(&live, &stringly, "").unwrap();
        assert_eq!(
            (at.as_str(), expected.as_str()),
            ("/score/home", "a number")
        );
    }

    #[test]
    fn timeline_paths_are_encoded() {
        assert_eq!(timeline_path("g1", None), "/api/games/g1/timeline");
        assert_eq!(
            timeline_path("a b", Some(4)),
            "/api/games/a%20b/timeline?since=4"
        );
    }
}
