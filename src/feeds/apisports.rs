//! API-SPORTS client (american-football v1 for the NFL, hockey v1 for the NHL):
//! fetches `games` and normalizes them. Requests are made on demand by the scores
//! endpoints, behind their cache, quota and circuit breaker.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::FeedError;
use crate::contract::{GameState, League, ScoreGame, ScoredTeam};

/// The default upstream: `{sport}` becomes `american-football` or `hockey`.
pub const REAL_URL_TEMPLATE: &str = "https://v1.{sport}.api-sports.io";

#[derive(Debug, Clone)]
pub struct ApiSportsClient {
    http: reqwest::Client,
    /// Base URL with a `{sport}` placeholder.
    url_template: String,
    key: Option<String>,
    timeout: Duration,
}

/// One answer: the games or why not, and what the upstream said of the quota (on
/// every answer, errors included).
#[derive(Debug, Clone)]
pub struct Fetched {
    pub games: Result<Vec<ScoreGame>, FeedError>,
    /// `x-ratelimit-requests-remaining`: requests left today.
    pub daily_remaining: Option<u32>,
    /// `X-RateLimit-Remaining`: requests left this minute.
    pub minute_remaining: Option<u32>,
}

/// The time zone the leagues' days are counted in, as API-SPORTS names it.
pub const LEAGUE_TIME_ZONE: &str = "America/New_York";

impl ApiSportsClient {
    pub fn new(
        http: reqwest::Client,
        url_template: &str,
        key: Option<String>,
        timeout: Duration,
    ) -> Self {
        Self {
            http,
            url_template: url_template.trim_end_matches('/').to_owned(),
            key,
            timeout,
        }
    }

    pub fn has_key(&self) -> bool {
        self.key.is_some()
    }

    /// Today's games of `league`: the league's own day (US Eastern), so evening games
    /// do not vanish when UTC's day turns.
    pub async fn games(&self, league: League) -> Fetched {
        match self.request(league).await {
            Ok(response) => read_answer(league, response).await,
            Err(e) => Fetched {
                games: Err(e),
                daily_remaining: None,
                minute_remaining: None,
            },
        }
    }

    async fn request(&self, league: League) -> Result<reqwest::Response, FeedError> {
        let (sport, league_id) = match league {
            League::Nfl => ("american-football", "1"),
            League::Nhl => ("hockey", "57"),
            League::Nba => {
                return Err(FeedError::Upstream(
                    "API-SPORTS is not used for the NBA".into(),
                ));
            }
        };
        let key = self
            .key
            .as_deref()
            .ok_or_else(|| FeedError::Upstream("no API key configured".into()))?;
        let url = format!("{}/games", self.url_template.replace("{sport}", sport));
        let today = eastern_date(crate::clock::unix_seconds());
        self.http
            .get(&url)
            .header("x-apisports-key", key)
            .query(&[
                ("league", league_id),
                ("date", &today),
                ("timezone", LEAGUE_TIME_ZONE),
            ])
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| FeedError::from_reqwest(e, self.timeout))
    }
}

/// The quota headers, then the body: games, or the failure the body or status says.
async fn read_answer(league: League, response: reqwest::Response) -> Fetched {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok())
    };
    let daily_remaining = header("x-ratelimit-requests-remaining");
    let minute_remaining = header("x-ratelimit-remaining");
    let status = response.status().as_u16();
    let games = match response.bytes().await {
        Ok(body) => games_in(league, status, &body),
        Err(e) => Err(FeedError::Connect(e.to_string())),
    };
    Fetched {
        games,
        daily_remaining,
        minute_remaining,
    }
}

fn games_in(league: League, status: u16, body: &[u8]) -> Result<Vec<ScoreGame>, FeedError> {
    let envelope: Result<Envelope, _> = serde_json::from_slice(body);
    if let Ok(envelope) = &envelope {
        // The body's reason first: a 429 or a 200 may both carry it.
        check_errors(&envelope.errors)?;
    }
    if status == 429 {
        return Err(FeedError::RateLimited);
    }
    if !(200..300).contains(&status) {
        return Err(FeedError::Status(status));
    }
    let envelope = envelope.map_err(|e| FeedError::Malformed(e.to_string()))?;
    envelope
        .response
        .iter()
        .map(|g| match league {
            League::Nfl => football(g),
            _ => hockey(g),
        })
        .collect()
}

/// The US Eastern calendar day of `unix_s`, `YYYY-MM-DD`: UTC-4 from the second
/// Sunday of March (07:00 UTC) to the first Sunday of November (06:00 UTC), else UTC-5.
pub fn eastern_date(unix_s: u64) -> String {
    let utc_days = (unix_s / 86_400) as i64;
    let (year, _, _) = civil_from_days(utc_days);
    let dst_start = days_from_civil(year, 3, 8 + (7 - weekday(days_from_civil(year, 3, 8))) % 7)
        * 86_400
        + 7 * 3_600;
    let dst_end = days_from_civil(
        year,
        11,
        1 + (7 - weekday(days_from_civil(year, 11, 1))) % 7,
    ) * 86_400
        + 6 * 3_600;
    let t = unix_s as i64;
    let offset = if (dst_start..dst_end).contains(&t) {
        4
    } else {
        5
    };
    let (y, m, d) = civil_from_days((t - offset * 3_600).div_euclid(86_400));
    format!("{y:04}-{m:02}-{d:02}")
}

/// 0 = Sunday, for a day count since 1970-01-01 (a Thursday).
fn weekday(days: i64) -> i64 {
    (days + 4).rem_euclid(7)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[derive(Deserialize)]
struct Envelope {
    /// `[]` on success, an object of messages on failure.
    errors: Value,
    #[serde(default)]
    response: Vec<Value>,
}

/// API-SPORTS reports failures in the body of an HTTP 200.
fn check_errors(errors: &Value) -> Result<(), FeedError> {
    let Some(map) = errors.as_object().filter(|m| !m.is_empty()) else {
        return Ok(());
    };
    let said = |key: &str| {
        map.get(key)
            .map(|v| v.as_str().unwrap_or_default().to_owned())
    };
    if let Some(why) = said("requests") {
        return Err(FeedError::QuotaSpent(why));
    }
    if map.contains_key("rateLimit") {
        return Err(FeedError::RateLimited);
    }
    if let Some(why) = said("plan") {
        return Err(FeedError::Plan(why));
    }
    if let Some(why) = said("token") {
        return Err(FeedError::Refused(format!(
            "API-SPORTS refused the key: {why}"
        )));
    }
    let text: Vec<String> = map
        .iter()
        .map(|(k, v)| format!("{k}: {}", v.as_str().unwrap_or("")))
        .collect();
    Err(FeedError::Upstream(text.join("; ")))
}

/// A game's state from API-SPORTS' short status, both sports' tables (American
/// football: NS Q1-Q4 OT HT FT AOT CANC PST; hockey: NS P1-P3 OT PT BT AW POST CANC
/// INTR ABD AOT AP FT). An awarded game has a result, so it is final; an abandoned
/// one will not be played on.
fn status_of(short: &str) -> GameState {
    match short {
        "NS" | "TBD" => GameState::Scheduled,
        "FT" | "AOT" | "AP" | "AET" | "AW" | "AWD" => GameState::Final,
        "PST" | "POST" => GameState::Postponed,
        "CANC" | "ABD" => GameState::Canceled,
        "INTR" | "SUSP" => GameState::Suspended,
        // Q1-Q4, OT, HT, P1-P3, PT, BT, LIVE: in play.
        _ => GameState::Live,
    }
}

fn team(v: &Value, score: Option<u32>) -> Result<ScoredTeam, FeedError> {
    Ok(ScoredTeam {
        id: v["id"]
            .as_i64()
            .ok_or_else(|| FeedError::Malformed("team without id".into()))?,
        name: v["name"].as_str().unwrap_or_default().to_owned(),
        score,
    })
}

fn score(v: &Value) -> Option<u32> {
    v.as_u64().and_then(|s| u32::try_from(s).ok())
}

fn football(g: &Value) -> Result<ScoreGame, FeedError> {
    let status = &g["game"]["status"];
    Ok(ScoreGame {
        id: g["game"]["id"]
            .as_i64()
            .ok_or_else(|| FeedError::Malformed("game without id".into()))?,
        status: status_of(status["short"].as_str().unwrap_or("")),
        status_detail: status["long"].as_str().unwrap_or_default().to_owned(),
        clock: status["timer"].as_str().map(str::to_owned),
        home: team(&g["teams"]["home"], score(&g["scores"]["home"]["total"]))?,
        away: team(&g["teams"]["away"], score(&g["scores"]["away"]["total"]))?,
    })
}

fn hockey(g: &Value) -> Result<ScoreGame, FeedError> {
    let status = &g["status"];
    Ok(ScoreGame {
        id: g["id"]
            .as_i64()
            .ok_or_else(|| FeedError::Malformed("game without id".into()))?,
        status: status_of(status["short"].as_str().unwrap_or("")),
        status_detail: status["long"].as_str().unwrap_or_default().to_owned(),
        clock: g["timer"].as_str().map(str::to_owned),
        home: team(&g["teams"]["home"], score(&g["scores"]["home"]))?,
        away: team(&g["teams"]["away"], score(&g["scores"]["away"]))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both sports' status tables, as the real API sends them.
    #[test]
    fn every_status_code_has_its_state() {
        for code in ["NS", "TBD"] {
            assert_eq!(status_of(code), GameState::Scheduled, "{code}");
        }
        for code in [
            "Q1", "Q2", "Q3", "Q4", "OT", "HT", "BT", "P1", "P2", "P3", "PT",
        ] {
            assert_eq!(status_of(code), GameState::Live, "{code}");
        }
        for code in ["FT", "AOT", "AP", "AW", "AWD"] {
            assert_eq!(status_of(code), GameState::Final, "{code}");
        }
        for code in ["PST", "POST"] {
            assert_eq!(status_of(code), GameState::Postponed, "{code}");
        }
        for code in ["CANC", "ABD"] {
            assert_eq!(status_of(code), GameState::Canceled, "{code}");
        }
        assert_eq!(status_of("INTR"), GameState::Suspended);
    }
    use serde_json::json;

    #[test]
    fn errors_in_a_200_body_are_failures() {
        assert!(check_errors(&json!([])).is_ok());
        assert_eq!(
            check_errors(&json!({"rateLimit": "Too many"})),
            Err(FeedError::RateLimited)
        );
        assert_eq!(
            check_errors(&json!({"requests": "limit for the day"})),
            Err(FeedError::QuotaSpent("limit for the day".into()))
        );
        assert_eq!(
            check_errors(
                &json!({"plan": "Free plans do not have access to this season, try from 2022 to 2024."})
            ),
            Err(FeedError::Plan(
                "Free plans do not have access to this season, try from 2022 to 2024.".into()
            ))
        );
        assert!(
            matches!(check_errors(&json!({"token": "bad key"})), Err(FeedError::Refused(m)) if m.contains("bad key"))
        );
        assert!(
            matches!(check_errors(&json!({"other": "x"})), Err(FeedError::Upstream(m)) if m.contains("other"))
        );
    }

    /// Evening games in the US are the next UTC day: the league's day is Eastern.
    #[test]
    fn the_league_day_is_the_us_eastern_day() {
        let at = |iso: &str| {
            humantime::parse_rfc3339(iso)
                .unwrap()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
        };
        // 8 pm EST on 2 Dec is 01:00 UTC on 3 Dec.
        assert_eq!(eastern_date(at("2026-12-03T01:00:00Z")), "2026-12-02");
        assert_eq!(eastern_date(at("2026-12-03T05:00:00Z")), "2026-12-03");
        // EDT (UTC-4) in summer: 23:30 EDT on 4 July is 03:30 UTC on 5 July.
        assert_eq!(eastern_date(at("2026-07-05T03:30:00Z")), "2026-07-04");
        assert_eq!(eastern_date(at("2026-07-05T04:00:00Z")), "2026-07-05");
        // The switches: 8 March 2026 07:00 UTC (2 am EST) and 1 November 06:00 UTC.
        assert_eq!(eastern_date(at("2026-03-08T06:59:00Z")), "2026-03-08");
        assert_eq!(eastern_date(at("2026-03-09T03:59:00Z")), "2026-03-08");
        assert_eq!(eastern_date(at("2026-03-09T04:00:00Z")), "2026-03-09");
        assert_eq!(eastern_date(at("2026-11-02T04:30:00Z")), "2026-11-01");
        assert_eq!(eastern_date(at("2026-11-02T05:00:00Z")), "2026-11-02");
        assert_eq!(eastern_date(at("2024-02-29T12:00:00Z")), "2024-02-29");
    }

    #[test]
    fn football_and_hockey_items_normalize() {
        let nfl = json!({"game": {"id": 7, "status": {"short": "Q3", "long": "Third Quarter", "timer": "07:12"}},
            "teams": {"home": {"id": 16, "name": "Chicago Bears"}, "away": {"id": 26, "name": "Houston Texans"}},
            "scores": {"home": {"total": 17}, "away": {"total": 10}}});
        let g = football(&nfl).unwrap();
        assert_eq!(
            (g.status, g.home.score, g.clock.as_deref()),
            (GameState::Live, Some(17), Some("07:12"))
        );
        let nhl = json!({"id": 9, "timer": null, "status": {"long": "Not Started", "short": "NS"},
            "teams": {"home": {"id": 1, "name": "A"}, "away": {"id": 2, "name": "B"}}, "scores": {"home": null, "away": null}});
        let g = hockey(&nhl).unwrap();
        assert_eq!((g.status, g.home.score), (GameState::Scheduled, None));
    }
}
