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
        let today = crate::clock::eastern_date(crate::clock::unix_seconds());
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
