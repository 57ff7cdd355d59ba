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

/// A successful fetch and what the upstream said of the quota.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub games: Vec<ScoreGame>,
    /// `x-ratelimit-requests-remaining`: requests left today.
    pub daily_remaining: Option<u32>,
}

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

    pub async fn games(&self, league: League) -> Result<Fetched, FeedError> {
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
        let today = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        let response = self
            .http
            .get(&url)
            .header("x-apisports-key", key)
            .query(&[("league", league_id), ("date", &today[..10])])
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| FeedError::from_reqwest(e, self.timeout))?;
        let daily_remaining = response
            .headers()
            .get("x-ratelimit-requests-remaining")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|e| FeedError::from_reqwest(e, self.timeout))?;
        if status == 429 {
            return Err(FeedError::RateLimited);
        }
        let envelope: Envelope = serde_json::from_slice(&body).map_err(|e| {
            if (200..300).contains(&status) {
                FeedError::Malformed(e.to_string())
            } else {
                FeedError::Status(status)
            }
        })?;
        check_errors(&envelope.errors)?;
        if !(200..300).contains(&status) {
            return Err(FeedError::Status(status));
        }
        let games = envelope
            .response
            .iter()
            .map(|g| {
                if league == League::Nfl {
                    football(g)
                } else {
                    hockey(g)
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Fetched {
            games,
            daily_remaining,
        })
    }
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
    if map.contains_key("rateLimit") || map.contains_key("requests") {
        return Err(FeedError::RateLimited);
    }
    let text: Vec<String> = map
        .iter()
        .map(|(k, v)| format!("{k}: {}", v.as_str().unwrap_or("")))
        .collect();
    Err(FeedError::Upstream(text.join("; ")))
}

fn status_of(short: &str) -> GameState {
    match short {
        "NS" | "TBD" | "PST" | "CANC" => GameState::Scheduled,
        "FT" | "AOT" | "AP" | "AET" | "AWD" | "ABD" => GameState::Final,
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
            Err(FeedError::RateLimited)
        );
        assert!(
            matches!(check_errors(&json!({"token": "bad key"})), Err(FeedError::Upstream(m)) if m.contains("token"))
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
