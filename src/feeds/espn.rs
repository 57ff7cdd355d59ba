//! ESPN site API client: polls each followed league's scoreboard (NBA, NFL, NHL) for
//! each game's state, score, clock and latest win probability
//! (`situation.lastPlay.probability`; NHL games have none, so theirs stays null).

use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::discovery::{ScheduledGame, Side};
use super::health::{HealthPolicy, HealthTracker};
use super::rounds::{Round, Upstream, unless_stopped};
use super::{FeedError, FeedEvent, FeedSink, GameObservation, report_health, send};
use crate::contract::{GameState, League, Score, Source, UnixMicros};
use crate::retry::Backoff;

#[derive(Debug, Clone)]
pub struct EspnFeed {
    http: reqwest::Client,
    /// Each followed league's scoreboard URL.
    scoreboards: Vec<(League, String)>,
    poll: Duration,
    timeout: Duration,
    health: HealthPolicy,
    backoff: Backoff,
}

impl EspnFeed {
    /// `base_url` is the host part, e.g. `https://site.api.espn.com`; `leagues` the
    /// scoreboards to follow.
    pub fn new(
        http: reqwest::Client,
        base_url: &str,
        leagues: &[League],
        poll: Duration,
        timeout: Duration,
        health: HealthPolicy,
        backoff: Backoff,
    ) -> Self {
        let base = base_url.trim_end_matches('/');
        let scoreboards = leagues
            .iter()
            .map(|league| (*league, scoreboard_url(base, *league)))
            .collect();
        Self {
            http,
            scoreboards,
            poll,
            timeout,
            health,
            backoff,
        }
    }

    /// The leagues followed.
    pub fn leagues(&self) -> impl Iterator<Item = League> + '_ {
        self.scoreboards.iter().map(|(league, _)| *league)
    }

    /// One fetch of every followed scoreboard, parsed into observations.
    pub async fn fetch(&self) -> Result<Vec<GameObservation>, FeedError> {
        let mut games = Vec::new();
        for (_, url) in &self.scoreboards {
            let board = self.scoreboard(url).await?;
            let observed_at = UnixMicros(crate::clock::unix_micros());
            games.extend(
                board
                    .events
                    .into_iter()
                    .filter_map(|e| observation(e, observed_at)),
            );
        }
        Ok(games)
    }

    /// The scoreboards' games as discovery needs them: ids, leagues, start times and
    /// teams.
    pub async fn fetch_schedule(&self) -> Result<Vec<ScheduledGame>, FeedError> {
        let mut games = Vec::new();
        for (league, url) in &self.scoreboards {
            let board = self.scoreboard(url).await?;
            games.extend(board.events.iter().filter_map(|e| scheduled(e, *league)));
        }
        Ok(games)
    }

    async fn scoreboard(&self, url: &str) -> Result<Scoreboard, FeedError> {
        let response = self
            .http
            .get(url)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| FeedError::from_reqwest(e, self.timeout))?;
        let status = response.status();
        if status.as_u16() == 429 {
            return Err(FeedError::RateLimited);
        }
        if !status.is_success() {
            return Err(FeedError::Status(status.as_u16()));
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| FeedError::from_reqwest(e, self.timeout))?;
        serde_json::from_slice(&body).map_err(|e| FeedError::Malformed(e.to_string()))
    }
}

/// ESPN's scoreboard of `league` under `base`.
pub fn scoreboard_url(base: &str, league: League) -> String {
    format!(
        "{base}/apis/site/v2/sports/{}/scoreboard",
        sport_path(league)
    )
}

/// ESPN's `{sport}/{league}` path of a league.
pub fn sport_path(league: League) -> &'static str {
    match league {
        League::Nba => "basketball/nba",
        League::Nfl => "football/nfl",
        League::Nhl => "hockey/nhl",
    }
}

impl Upstream for EspnFeed {
    const SOURCE: Source = Source::Espn;
    const ROUND: &'static str = "scoreboard fetch";

    fn policies(&self) -> (&HealthPolicy, &Backoff) {
        (&self.health, &self.backoff)
    }

    /// One poll of the scoreboard; the next comes after `poll`.
    async fn round(
        &self,
        sink: &FeedSink,
        stop: &CancellationToken,
        health: &mut HealthTracker,
    ) -> Round {
        let Some(games) = unless_stopped(stop, self.fetch()).await else {
            return Round::Stopped;
        };
        match games {
            Ok(games) => {
                report_health(sink, Source::Espn, health.success(Instant::now()), None).await;
                let ids = games.iter().map(|g| g.espn_event_id.clone()).collect();
                for game in games {
                    send(sink, FeedEvent::Game(game)).await;
                }
                let source = Source::Espn;
                send(sink, FeedEvent::Listed { source, ids }).await;
                Round::Again(self.poll)
            }
            Err(e) => Round::Failed(e),
        }
    }
}

#[derive(Deserialize)]
struct Scoreboard {
    #[serde(default)]
    events: Vec<Event>,
}

#[derive(Deserialize)]
struct Event {
    id: String,
    /// Scheduled start, UTC, `2026-05-09T01:30Z`.
    #[serde(default)]
    date: Option<String>,
    #[serde(default)]
    competitions: Vec<Competition>,
}

#[derive(Deserialize)]
struct Competition {
    #[serde(default)]
    competitors: Vec<Competitor>,
    status: Status,
    situation: Option<Situation>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Competitor {
    home_away: String,
    score: Option<String>,
    #[serde(default)]
    team: Option<CompetitorTeam>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CompetitorTeam {
    abbreviation: String,
    #[serde(default)]
    display_name: Option<String>,
}

/// An event as discovery needs it; None when it lacks a start or a team.
fn scheduled(event: &Event, league: League) -> Option<ScheduledGame> {
    let comp = event.competitions.first()?;
    let side = |which: &str| {
        let team = comp
            .competitors
            .iter()
            .find(|c| c.home_away == which)?
            .team
            .as_ref()?;
        Some(Side {
            espn: team.abbreviation.clone(),
            name: team
                .display_name
                .clone()
                .unwrap_or_else(|| team.abbreviation.clone()),
        })
    };
    Some(ScheduledGame {
        espn_event_id: event.id.clone(),
        league,
        start_s: parse_time(event.date.as_deref()?)?,
        home: side("home")?,
        away: side("away")?,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Status {
    display_clock: Option<String>,
    period: Option<u32>,
    #[serde(rename = "type")]
    kind: StatusType,
}

#[derive(Deserialize)]
struct StatusType {
    state: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    completed: Option<bool>,
}

impl StatusType {
    /// The game's state from ESPN's status: `state` (pre, in, post) says where it
    /// stands, `name` and `completed` what happened. A postponed or cancelled game is
    /// `post` but not `completed`: not a final.
    fn game_state(&self) -> Option<GameState> {
        let named = match self.name.as_deref() {
            Some("STATUS_POSTPONED") => Some(GameState::Postponed),
            Some("STATUS_CANCELED" | "STATUS_CANCELLED" | "STATUS_FORFEIT_CANCELED") => {
                Some(GameState::Canceled)
            }
            Some("STATUS_SUSPENDED") => Some(GameState::Suspended),
            _ => None,
        };
        match (self.state.as_str(), named) {
            (_, Some(state)) => Some(state),
            ("pre", None) => Some(GameState::Scheduled),
            // A delay (STATUS_DELAYED, STATUS_RAIN_DELAY) stays live: it resumes.
            ("in", None) => Some(GameState::Live),
            ("post", None) if self.completed != Some(false) => Some(GameState::Final),
            // Over but not completed, under a name this table does not know: it will
            // not be played on as scheduled.
            ("post", None) => Some(GameState::Suspended),
            _ => None,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Situation {
    last_play: Option<LastPlay>,
}

#[derive(Deserialize)]
struct LastPlay {
    id: Option<String>,
    text: Option<String>,
    probability: Option<Probability>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probability {
    home_win_percentage: f64,
}

fn observation(event: Event, observed_at: crate::contract::UnixMicros) -> Option<GameObservation> {
    let comp = event.competitions.into_iter().next()?;
    let state = comp.status.kind.game_state()?;
    let played = matches!(
        state,
        GameState::Live | GameState::Final | GameState::Suspended
    );
    let score_of = |side: &str| {
        comp.competitors
            .iter()
            .find(|c| c.home_away == side)
            .and_then(|c| c.score.as_deref())
            .and_then(|s| s.parse::<u32>().ok())
    };
    let score = match (score_of("home"), score_of("away")) {
        (Some(home), Some(away)) if played => Some(Score { home, away }),
        _ => None,
    };
    let last_play = comp.situation.and_then(|s| s.last_play);
    // ESPN sends fractions; some renderings send percentages. Accept both.
    let home_win_prob = last_play
        .as_ref()
        .and_then(|p| p.probability.as_ref())
        .map(|p| {
            if p.home_win_percentage > 1.0 {
                p.home_win_percentage / 100.0
            } else {
                p.home_win_percentage
            }
        })
        .filter(|p| (0.0..=1.0).contains(p));
    Some(GameObservation {
        espn_event_id: event.id,
        state,
        period: comp.status.period.filter(|p| *p > 0 && played),
        clock: comp.status.display_clock.filter(|_| played),
        score,
        home_win_prob,
        last_play_id: last_play.as_ref().and_then(|p| p.id.clone()),
        last_play: last_play.and_then(|p| p.text),
        observed_at,
    })
}

/// Seconds since the epoch of an ESPN time, `2024-11-17T00:30Z` or `2024-11-17T00:30:05Z`.
pub fn parse_time(s: &str) -> Option<i64> {
    let with_seconds = if s.len() == 17 {
        format!("{}:00Z", &s[..16])
    } else {
        s.to_owned()
    };
    humantime::parse_rfc3339(&with_seconds)
        .ok()
        .map(|t| crate::clock::micros_of(t).div_euclid(1_000_000))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::UnixMicros;

    #[test]
    fn parses_a_live_event_with_probability() {
        let json = r#"{"events":[{"id":"401","competitions":[{
            "competitors":[{"homeAway":"home","score":"61"},{"homeAway":"away","score":"58"}],
            "status":{"clock":332.0,"displayClock":"5:32","period":3,"type":{"id":"2","state":"in","completed":false}},
            "situation":{"lastPlay":{"id":"4017","text":"Tatum makes 3","probability":{"homeWinPercentage":0.71}}}}]}]}"#;
        let board: Scoreboard = serde_json::from_str(json).unwrap();
        let obs = observation(board.events.into_iter().next().unwrap(), UnixMicros(5)).unwrap();
        assert_eq!(obs.state, GameState::Live);
        assert_eq!(obs.score, Some(Score { home: 61, away: 58 }));
        assert_eq!((obs.period, obs.clock.as_deref()), (Some(3), Some("5:32")));
        assert_eq!(obs.home_win_prob, Some(0.71));
    }

    fn state_of(status: &str) -> (GameState, Option<Score>) {
        let json = format!(
            r#"{{"events":[{{"id":"401","competitions":[{{
            "competitors":[{{"homeAway":"home","score":"0"}},{{"homeAway":"away","score":"0"}}],
            "status":{{"displayClock":"0.0","period":0,"type":{status}}}}}]}}]}}"#
        );
        let board: Scoreboard = serde_json::from_str(&json).unwrap();
        let obs = observation(board.events.into_iter().next().unwrap(), UnixMicros(5)).unwrap();
        (obs.state, obs.score)
    }

    /// Real scoreboards: a postponed or cancelled game is `post` but not completed,
    /// and is neither final nor 0-0.
    #[test]
    fn postponed_and_cancelled_games_are_not_finals() {
        let postponed = r#"{"id":"6","name":"STATUS_POSTPONED","state":"post","completed":false}"#;
        assert_eq!(state_of(postponed), (GameState::Postponed, None));
        let canceled = r#"{"id":"5","name":"STATUS_CANCELED","state":"post","completed":false}"#;
        assert_eq!(state_of(canceled), (GameState::Canceled, None));
        let suspended = r#"{"id":"7","name":"STATUS_SUSPENDED","state":"in","completed":false}"#;
        assert_eq!(state_of(suspended).0, GameState::Suspended);
        let delayed = r#"{"id":"2","name":"STATUS_DELAYED","state":"in","completed":false}"#;
        assert_eq!(state_of(delayed).0, GameState::Live);
        let final_ = r#"{"id":"3","name":"STATUS_FINAL","state":"post","completed":true}"#;
        assert_eq!(state_of(final_).0, GameState::Final);
        let unnamed_post = r#"{"state":"post"}"#;
        assert_eq!(state_of(unnamed_post).0, GameState::Final);
    }

    #[test]
    fn percentages_are_read_as_fractions_and_scheduled_games_have_no_score() {
        let json = r#"{"events":[{"id":"401","competitions":[{
            "competitors":[{"homeAway":"home","score":"0"},{"homeAway":"away","score":"0"}],
            "status":{"displayClock":"12:00","period":0,"type":{"state":"pre"}},
            "situation":{"lastPlay":{"probability":{"homeWinPercentage":64.0}}}}]}]}"#;
        let board: Scoreboard = serde_json::from_str(json).unwrap();
        let obs = observation(board.events.into_iter().next().unwrap(), UnixMicros(5)).unwrap();
        assert_eq!(
            (obs.state, obs.score, obs.period),
            (GameState::Scheduled, None, None)
        );
        assert_eq!(obs.home_win_prob, Some(0.64));
    }

    #[test]
    fn espn_times_parse_with_and_without_seconds() {
        assert_eq!(parse_time("1970-01-01T00:01Z"), Some(60));
        assert_eq!(parse_time("1970-01-01T00:01:05Z"), Some(65));
        assert_eq!(parse_time("garbage"), None);
    }
}
