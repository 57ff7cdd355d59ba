//! Mock ESPN site API: the NBA scoreboard and game summary, replayed; the NFL and NHL
//! scoreboards from the API-SPORTS recordings ([`super::leagues`]).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::leagues;
use super::recordings::NbaRecording;
use super::replay::Phase;
use super::state::MockState;
use crate::contract::League;

pub(super) fn router() -> Router<MockState> {
    Router::new()
        .route(
            "/apis/site/v2/sports/basketball/nba/scoreboard",
            get(scoreboard),
        )
        .route("/apis/site/v2/sports/basketball/nba/summary", get(summary))
        .route(
            "/apis/site/v2/sports/football/nfl/scoreboard",
            get(|State(state): State<MockState>| async move {
                Json(leagues::scoreboard(&state, League::Nfl))
            }),
        )
        .route(
            "/apis/site/v2/sports/hockey/nhl/scoreboard",
            get(|State(state): State<MockState>| async move {
                Json(leagues::scoreboard(&state, League::Nhl))
            }),
        )
}

/// A recorded game as it stands at the current replay time.
struct Replayed<'a> {
    rec: &'a NbaRecording,
    phase: Phase,
    /// How many plays have happened.
    played: usize,
}

impl<'a> Replayed<'a> {
    fn at(state: &'a MockState, index: usize) -> Self {
        let rec = &state.0.recordings.nba[index];
        let (phase, _) = state.0.nba.phase(index, state.replay_s());
        let played = match phase {
            Phase::Scheduled { .. } => 0,
            Phase::Live { elapsed_s } => {
                rec.play_offsets.partition_point(|t| *t <= elapsed_s).max(1)
            }
            Phase::Final { .. } => rec.play_offsets.len(),
        };
        Replayed { rec, phase, played }
    }

    fn plays(&self) -> &'a [Value] {
        let all = self.rec.summary["plays"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        &all[..self.played.min(all.len())]
    }

    fn win_probability(&self) -> &'a [Value] {
        let all = self.rec.summary["winprobability"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        &all[..self.played.min(all.len())]
    }

    fn header_competition(&self) -> &'a Value {
        &self.rec.summary["header"]["competitions"][0]
    }

    /// Points per period so far for (home, away).
    fn linescores(&self) -> (Vec<i64>, Vec<i64>) {
        let (mut home, mut away) = (Vec::new(), Vec::new());
        let (mut prev_h, mut prev_a) = (0, 0);
        for play in self.plays() {
            let period = play["period"]["number"].as_u64().unwrap_or(1).max(1) as usize;
            while home.len() < period {
                home.push(0);
                away.push(0);
            }
            let (h, a) = (
                play["homeScore"].as_i64().unwrap_or(0),
                play["awayScore"].as_i64().unwrap_or(0),
            );
            home[period - 1] += h - prev_h;
            away[period - 1] += a - prev_a;
            (prev_h, prev_a) = (h, a);
        }
        (home, away)
    }

    fn status(&self) -> Value {
        let last = self.plays().last();
        match (self.phase, last) {
            (Phase::Scheduled { .. }, _) | (_, None) => json!({
                "clock": 720.0, "displayClock": "12:00", "period": 0,
                "type": {"id": "1", "name": "STATUS_SCHEDULED", "state": "pre", "completed": false,
                         "description": "Scheduled", "detail": "Scheduled", "shortDetail": "Scheduled"}
            }),
            (Phase::Final { .. }, Some(play)) => {
                let period = play["period"]["number"].as_u64().unwrap_or(4);
                let detail = if period > 4 { "Final/OT" } else { "Final" };
                json!({
                    "clock": 0.0, "displayClock": "0.0", "period": period,
                    "type": {"id": "3", "name": "STATUS_FINAL", "state": "post", "completed": true,
                             "description": "Final", "detail": detail, "shortDetail": detail}
                })
            }
            (Phase::Live { .. }, Some(play)) => live_status(play),
        }
    }

    fn competitors(&self, scoreboard_style: bool) -> Value {
        let (home_lines, away_lines) = self.linescores();
        let last = self.plays().last();
        let score = |key: &str| last.and_then(|p| p[key].as_i64()).unwrap_or(0);
        let competitors = self.header_competition()["competitors"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let out: Vec<Value> = competitors
            .into_iter()
            .map(|mut c| {
                let home = c["homeAway"] == "home";
                let lines = if home { &home_lines } else { &away_lines };
                c["score"] = json!(score(if home { "homeScore" } else { "awayScore" }).to_string());
                c["linescores"] = if scoreboard_style {
                    json!(
                        lines
                            .iter()
                            .map(|v| json!({"value": v}))
                            .collect::<Vec<_>>()
                    )
                } else {
                    json!(
                        lines
                            .iter()
                            .map(|v| json!({"displayValue": v.to_string()}))
                            .collect::<Vec<_>>()
                    )
                };
                if !matches!(self.phase, Phase::Final { .. }) {
                    c["winner"] = json!(false);
                }
                if scoreboard_style
                    && let Some(record) = c.as_object_mut().and_then(|o| o.remove("record"))
                {
                    c["records"] = record;
                }
                c
            })
            .collect();
        Value::Array(out)
    }

    fn situation(&self) -> Option<Value> {
        if !matches!(self.phase, Phase::Live { .. }) {
            return None;
        }
        let play = self.plays().last()?;
        let wp = self.win_probability().last()?["homeWinPercentage"].as_f64()?;
        Some(json!({
            "lastPlay": {
                "id": play["id"], "type": play["type"], "text": play["text"],
                "scoreValue": play["scoreValue"], "team": play.get("team").cloned().unwrap_or(Value::Null),
                "probability": {"homeWinPercentage": wp, "awayWinPercentage": ((1.0 - wp) * 1000.0).round() / 1000.0, "tiePercentage": 0.0}
            }
        }))
    }

    fn scoreboard_event(&self) -> Value {
        let header = &self.rec.summary["header"];
        let comp = self.header_competition();
        let team = |side: &str| {
            comp["competitors"]
                .as_array()
                .and_then(|cs| cs.iter().find(|c| c["homeAway"] == side))
                .map(|c| c["team"].clone())
                .unwrap_or(Value::Null)
        };
        let (home, away) = (team("home"), team("away"));
        let status = self.status();
        let mut competition = json!({
            "id": comp["id"], "uid": comp["uid"], "date": comp["date"], "startDate": comp["date"],
            "attendance": 18_624, "type": {"id": "1", "abbreviation": "STD"},
            "timeValid": true, "neutralSite": false, "conferenceCompetition": false,
            "playByPlayAvailable": true, "recent": matches!(self.phase, Phase::Live { .. }),
            "competitors": self.competitors(true), "notes": [], "status": status,
            "broadcasts": [], "format": {"regulation": {"periods": 4}}, "headlines": []
        });
        if let Some(situation) = self.situation() {
            competition["situation"] = situation;
        }
        json!({
            "id": header["id"], "uid": header["uid"], "date": comp["date"],
            "name": format!("{} at {}", away["displayName"].as_str().unwrap_or(""), home["displayName"].as_str().unwrap_or("")),
            "shortName": format!("{} @ {}", away["abbreviation"].as_str().unwrap_or(""), home["abbreviation"].as_str().unwrap_or("")),
            "season": {"year": 2025, "type": 2, "slug": "regular-season"},
            "competitions": [competition], "links": [], "status": status
        })
    }
}

fn live_status(play: &Value) -> Value {
    let period = play["period"]["number"].as_u64().unwrap_or(1);
    let display = play["clock"]["displayValue"]
        .as_str()
        .unwrap_or("12:00")
        .to_owned();
    let clock = clock_seconds(&display);
    let ended_period = play["type"]["text"] == "End Period";
    let ordinal = match period {
        1 => "1st".to_owned(),
        2 => "2nd".to_owned(),
        3 => "3rd".to_owned(),
        4 => "4th".to_owned(),
        n => format!("{}OT", n - 4),
    };
    let quarter = if period <= 4 {
        format!("{ordinal} Quarter")
    } else {
        ordinal.clone()
    };
    let (id, name, description, detail, short) = if ended_period && period == 2 {
        (
            "23",
            "STATUS_HALFTIME",
            "Halftime".to_owned(),
            "Halftime".to_owned(),
            "Halftime".to_owned(),
        )
    } else if ended_period {
        (
            "22",
            "STATUS_END_PERIOD",
            "End of Period".to_owned(),
            format!("End of {quarter}"),
            format!("End of {ordinal}"),
        )
    } else {
        (
            "2",
            "STATUS_IN_PROGRESS",
            "In Progress".to_owned(),
            format!("{display} - {quarter}"),
            format!("{display} - {ordinal}"),
        )
    };
    json!({
        "clock": clock, "displayClock": display, "period": period,
        "type": {"id": id, "name": name, "state": "in", "completed": false,
                 "description": description, "detail": detail, "shortDetail": short}
    })
}

/// Seconds left in the period from ESPN's display clock (`"5:32"` or `"24.3"`).
pub(crate) fn clock_seconds(display: &str) -> f64 {
    match display.split_once(':') {
        Some((m, s)) => m.parse::<f64>().unwrap_or(0.0) * 60.0 + s.parse::<f64>().unwrap_or(0.0),
        None => display.parse().unwrap_or(0.0),
    }
}

async fn scoreboard(State(state): State<MockState>) -> Json<Value> {
    let events: Vec<Value> = (0..state.0.recordings.nba.len())
        .map(|i| Replayed::at(&state, i).scoreboard_event())
        .collect();
    Json(json!({
        "leagues": [{"id": "46", "uid": "s:40~l:46", "name": "National Basketball Association", "abbreviation": "NBA", "slug": "nba"}],
        "season": {"type": 2, "year": 2025},
        "day": {"date": crate::clock::eastern_date(crate::clock::unix_seconds())},
        "events": events
    }))
}

#[derive(Deserialize)]
struct SummaryQuery {
    event: Option<String>,
}

async fn summary(State(state): State<MockState>, Query(q): Query<SummaryQuery>) -> Response {
    let Some(event) = q.event else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"code": 400, "message": "Missing required parameter: event"})),
        )
            .into_response();
    };
    let Some(index) = state
        .0
        .recordings
        .nba
        .iter()
        .position(|g| g.espn_event_id == event)
    else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"code": 404, "message": "Failed to get event summary"})),
        )
            .into_response();
    };
    let game = Replayed::at(&state, index);
    let mut header = game.rec.summary["header"].clone();
    header["competitions"][0]["competitors"] = game.competitors(false);
    header["competitions"][0]["status"] = game.status();
    Json(json!({
        "header": header,
        "format": {"regulation": {"periods": 4}},
        "plays": game.plays(),
        "winprobability": game.win_probability()
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_parses_minutes_and_tenths() {
        assert_eq!(clock_seconds("5:32"), 332.0);
        assert_eq!(clock_seconds("24.3"), 24.3);
    }

    #[test]
    fn halftime_and_end_of_period_statuses() {
        let end2 = json!({"period": {"number": 2}, "clock": {"displayValue": "0.0"}, "type": {"text": "End Period"}});
        assert_eq!(live_status(&end2)["type"]["id"], "23");
        let end3 = json!({"period": {"number": 3}, "clock": {"displayValue": "0.0"}, "type": {"text": "End Period"}});
        assert_eq!(live_status(&end3)["type"]["detail"], "End of 3rd Quarter");
        let live = json!({"period": {"number": 3}, "clock": {"displayValue": "5:32"}, "type": {"text": "Jump Shot"}});
        assert_eq!(live_status(&live)["type"]["shortDetail"], "5:32 - 3rd");
    }
}
