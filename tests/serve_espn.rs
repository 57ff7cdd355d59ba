//! serve against an ESPN scoreboard shaped as the real one (written from its public
//! documentation, not the mock's recordings), one scripted poll at a time.

use livegames::serve::{ServeConfig, ServerHandle};
use serde_json::{Value, json};

use crate::support::replay::{espn_event, scoreboard, start_espn};
use crate::support::*;

const EVENT: &str = "401810999";
const GAME: &str = "0022500612";

fn event(state: &str, name: &str, completed: bool, last_play: Value) -> Value {
    let status = json!({"clock": 332.0, "displayClock": "5:32", "period": 3,
        "type": {"id": "2", "name": name, "state": state, "completed": completed}});
    espn_event(
        EVENT,
        "2026-01-15T00:30Z",
        ("BOS", "Boston Celtics"),
        ("NY", "New York Knicks"),
        status,
        last_play,
    )
}

/// A games map with one game: event 401810999, NYK at home against BOS.
fn games_map() -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("lg-espn-map-{}.json", std::process::id()));
    let map = json!({"version": 1, "games": [{"game": "nba-2026-01-14-BOS-NYK", "league": "nba",
        "scheduled_at": "2026-01-15T00:30:00Z", "nba_game_id": GAME, "espn_event_id": EVENT,
        "kalshi_event_ticker": "KXNBAGAME-26JAN14BOSNYK",
        "kalshi_markets": ["KXNBAGAME-26JAN14BOSNYK-NYK", "KXNBAGAME-26JAN14BOSNYK-BOS"],
        "kalshi_home_market": "KXNBAGAME-26JAN14BOSNYK-NYK",
        "home": {"nba": "NYK", "name": "New York Knicks", "espn": "NY", "espn_id": "18", "nba_team_id": 1610612752},
        "away": {"nba": "BOS", "name": "Boston Celtics", "espn": "BOS", "espn_id": "2", "nba_team_id": 1610612738}}]});
    std::fs::write(&path, map.to_string()).unwrap();
    path
}

async fn serve_on(espn: String) -> ServerHandle {
    start(ServeConfig {
        espn_url: Some(espn),
        games_map: Some(games_map()),
        ..fast_config()
    })
    .await
}

async fn latest(server: &ServerHandle) -> Value {
    let list: Value = get(&format!("{}/api/live/games", server.http_url()))
        .await
        .json()
        .await
        .unwrap();
    list["games"][0]["latest"].clone()
}

/// The next status frame that says ESPN is `state` for this game (others, such as
/// Kalshi's, are passed over; at most 20).
async fn next_espn_status(client: &mut Client, state: &str) -> Value {
    for _ in 0..20 {
        let status = client.next_of("status").await;
        if status.value["sources"]["espn"] == state
            && status.value["message"]
                .as_str()
                .is_some_and(|m| m.contains("espn"))
        {
            return status.value;
        }
    }
    panic!("no status frame with espn {state} among the next 20");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_game_that_drops_off_the_scoreboard_is_stale_for_that_game() {
    let live = event(
        "in",
        "STATUS_IN_PROGRESS",
        false,
        json!({"id": "1", "text": "Brunson makes 3",
        "probability": {"homeWinPercentage": 0.64}}),
    );
    let (board, url) = start_espn(scoreboard(vec![live.clone()])).await;
    let server = serve_on(url).await;
    wait_for("the live game", || async {
        let p = latest(&server).await;
        (p["state"] == "live" && p["sources"]["espn"] == "ok").then_some(())
    })
    .await;
    let mut client = connect(&server, &format!("/ws/live/{GAME}")).await;
    client.next_of("snapshot").await;

    // ESPN still answers, but no longer lists the game.
    board.set(scoreboard(vec![]));
    // Other sources' status frames (kalshi's) may come first: wait for ESPN's.
    let status = next_espn_status(&mut client, "stale").await;
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("no longer lists"),
        "{status}"
    );
    assert_eq!(latest(&server).await["sources"]["espn"], "stale");
    let unlisted = metric(
        &server,
        "livegames_upstream_games_unlisted{source=\"espn\"}",
    )
    .await;
    assert_eq!(unlisted, 1.0);
    // Listed again: ok again.
    board.set(scoreboard(vec![live]));
    let status = next_espn_status(&mut client, "ok").await;
    assert_eq!(status["message"], "espn lists this game again", "{status}");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postponed_is_not_final_and_a_play_without_probability_keeps_the_last() {
    let with = event(
        "in",
        "STATUS_IN_PROGRESS",
        false,
        json!({"id": "1", "text": "Brunson makes 3",
        "probability": {"homeWinPercentage": 0.64}}),
    );
    let (board, url) = start_espn(scoreboard(vec![with])).await;
    let server = serve_on(url).await;
    wait_for("the probability", || async {
        (latest(&server).await["home_win_prob"] == 0.64).then_some(())
    })
    .await;
    let without = event(
        "in",
        "STATUS_IN_PROGRESS",
        false,
        json!({"id": "2", "text": "Timeout"}),
    );
    board.set(scoreboard(vec![without]));
    let p = wait_for("the next play", || async {
        let p = latest(&server).await;
        (p["last_play"] == "Timeout").then_some(p)
    })
    .await;
    assert_eq!(p["home_win_prob"], 0.64, "{p}");

    let postponed = event("post", "STATUS_POSTPONED", false, json!({}));
    board.set(scoreboard(vec![postponed]));
    let p = wait_for("postponed", || async {
        let p = latest(&server).await;
        (p["state"] == "postponed").then_some(p)
    })
    .await;
    assert_eq!(p["score"], Value::Null, "not a 0-0 or 61-58 final: {p}");
    server.stop().await.unwrap();
}
