//! serve finds the day's games itself: ESPN's scoreboard matched to Kalshi's game
//! markets by date and teams (through the codes that differ), a game with no market
//! still served and named, and games added during the day followed without a restart.

use std::time::Duration;

use livegames::contract::League;
use livegames::serve::{ServeConfig, ServerHandle};
use serde_json::{Value, json};

use crate::support::replay::*;
use crate::support::*;

const KNICKS: &str = "401810999";
const MAGIC: &str = "401811001";
const WARRIORS: &str = "401811000";

fn knicks() -> Value {
    espn_event(
        KNICKS,
        "2026-01-15T00:30Z",
        ("BOS", "Boston Celtics"),
        ("NY", "New York Knicks"),
        in_progress(),
        json!({"id": "1", "text": "Brunson makes 3", "probability": {"homeWinPercentage": 0.64}}),
    )
}

fn magic() -> Value {
    espn_event(
        MAGIC,
        "2026-01-15T00:00Z",
        ("PHI", "Philadelphia 76ers"),
        ("ORL", "Orlando Magic"),
        in_progress(),
        json!({}),
    )
}

fn warriors() -> Value {
    espn_event(
        WARRIORS,
        "2026-01-15T03:00Z",
        ("SA", "San Antonio Spurs"),
        ("GS", "Golden State Warriors"),
        in_progress(),
        json!({}),
    )
}

fn knicks_markets() -> Vec<Value> {
    vec![
        // The same teams' game of the day before: not this game's market.
        kalshi_market("KXNBAGAME-26JAN13BOSNYK-NYK", "0.2000", "0.2200", "0.2100"),
        kalshi_market("KXNBAGAME-26JAN14BOSNYK-NYK", "0.6100", "0.6300", "0.6200"),
        kalshi_market("KXNBAGAME-26JAN14BOSNYK-BOS", "0.3700", "0.3900", "0.3800"),
    ]
}

async fn serve_on(espn: String, kalshi: String) -> ServerHandle {
    start(ServeConfig {
        espn_url: Some(espn),
        kalshi_url: Some(kalshi),
        kalshi_poll: Duration::from_millis(100),
        discover_every: Duration::from_millis(200),
        ..fast_config()
    })
    .await
}

async fn games(server: &ServerHandle) -> Vec<Value> {
    let list: Value = get(&format!("{}/api/live/games", server.http_url()))
        .await
        .json()
        .await
        .unwrap();
    list["games"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn games_are_found_and_matched_and_one_without_a_market_is_served_and_named() {
    let (_, espn) = start_espn(scoreboard(vec![knicks(), magic()])).await;
    let (_, kalshi) = start_kalshi(Value::Array(knicks_markets())).await;
    let server = serve_on(espn, kalshi).await;
    // Both games' first readings: the Knicks' price, and ESPN's state of the game
    // without a market (on a slow machine one can land well before the other).
    let listed = wait_for(
        "the Knicks' market price and the Magic's ESPN state",
        || async {
            let listed = games(&server).await;
            (listed.len() == 2
                && listed[0]["latest"]["market"]["last_price"] == 0.62
                && listed[1]["latest"]["as_of"]["espn"] != Value::Null)
                .then_some(listed)
        },
    )
    .await;
    let knicks = &listed[0];
    assert_eq!(
        knicks["id"], KNICKS,
        "a real ESPN's games go by its event ids"
    );
    assert_eq!(
        knicks["home"]["abbreviation"], "NYK",
        "ESPN's NY is Kalshi's NYK"
    );
    assert_eq!(
        knicks["latest"]["market"]["ticker"], "KXNBAGAME-26JAN14BOSNYK-NYK",
        "the Eastern date's market, not the day before's"
    );
    let magic = &listed[1];
    assert_eq!(magic["id"], MAGIC);
    assert_eq!(
        magic["latest"]["state"], "live",
        "served with ESPN's data: {magic}"
    );
    assert_eq!(magic["latest"]["market"], Value::Null);

    let page = health_of(&server).await;
    assert_eq!(
        page["games"],
        json!({"discovered": 2, "matched": 1, "unmatched": ["PHI @ ORL 2026-01-14"]}),
        "{page}"
    );
    assert_eq!(page["status"], "healthy", "{page}");
    assert_eq!(metric(&server, "livegames_games_unmatched").await, 1.0);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_game_added_during_the_day_is_followed_without_a_restart() {
    let (board, espn) = start_espn(scoreboard(vec![knicks()])).await;
    let (markets, kalshi) = start_kalshi(Value::Array(knicks_markets())).await;
    let server = serve_on(espn, kalshi).await;
    wait_for("the first game", || async {
        (games(&server).await.len() == 1).then_some(())
    })
    .await;

    // Later that day ESPN lists another game, and Kalshi opens its markets.
    board.set(scoreboard(vec![knicks(), warriors()]));
    let mut all = knicks_markets();
    all.push(kalshi_market(
        "KXNBAGAME-26JAN14SASGSW-GSW",
        "0.5500",
        "0.5700",
        "0.5600",
    ));
    all.push(kalshi_market(
        "KXNBAGAME-26JAN14SASGSW-SAS",
        "0.4300",
        "0.4500",
        "0.4400",
    ));
    markets.set(Value::Array(all));
    let warriors = wait_for("the new game with its price", || async {
        games(&server)
            .await
            .into_iter()
            .find(|g| g["id"] == WARRIORS && g["latest"]["market"]["last_price"] == 0.56)
    })
    .await;
    assert_eq!(warriors["home"]["abbreviation"], "GSW");
    assert_eq!(warriors["away"]["abbreviation"], "SAS");
    // Its stream works like any other's.
    let mut client = connect(&server, &format!("/ws/live/{WARRIORS}")).await;
    let snapshot = client.next_of("snapshot").await;
    assert_eq!(snapshot.value["game"]["id"], WARRIORS);
    assert_eq!(health_of(&server).await["games"]["discovered"], 2);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn games_with_no_market_at_all_make_health_degraded_with_the_reason() {
    let (_, espn) = start_espn(scoreboard(vec![magic()])).await;
    let (_, kalshi) = start_kalshi(Value::Array(knicks_markets())).await;
    let server = serve_on(espn, kalshi).await;
    let page = wait_for("health", || async {
        let page = health_of(&server).await;
        (page["games"]["discovered"] == 1).then_some(page)
    })
    .await;
    assert_eq!(page["status"], "degraded", "{page}");
    assert_eq!(page["games"]["matched"], 0);
    assert_eq!(page["games"]["unmatched"], json!(["PHI @ ORL 2026-01-14"]));
    server.stop().await.unwrap();
}

/// `livegames smoke` passes against serve running on real-shaped upstreams: games found
/// by discovery, prices polled from a Kalshi without a key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_passes_against_serve_on_real_shaped_upstreams() {
    use livegames::client::Target;
    use livegames::contract::schema::Schemas;
    use livegames::smoke::{SmokeConfig, Status};

    let (_, espn) = start_espn(scoreboard(vec![knicks(), magic()])).await;
    let (_, kalshi) = start_kalshi(Value::Array(knicks_markets())).await;
    let server = serve_on(espn, kalshi).await;
    wait_for("a priced live game", || async {
        let listed = games(&server).await;
        listed
            .iter()
            .any(|g| g["latest"]["state"] == "live" && !g["latest"]["market"].is_null())
            .then_some(())
    })
    .await;
    let config = SmokeConfig {
        timeout: Duration::from_secs(15),
        heartbeat: Duration::from_secs(1),
        game: Some(KNICKS.into()),
        ..SmokeConfig::new(Target::parse(&server.http_url()).unwrap())
    };
    let report = livegames::smoke::run(&config, Schemas::builtin(true)).await;
    let failed: Vec<String> = report
        .checks
        .iter()
        .filter(|c| c.status == Status::Fail)
        .map(|c| format!("{}: {}", c.name, c.detail))
        .collect();
    assert!(report.passed, "{}", failed.join("\n"));
    let passed = report
        .checks
        .iter()
        .filter(|c| c.status == Status::Pass)
        .count();
    assert!(passed >= 15, "only {passed} checks ran and passed");
    server.stop().await.unwrap();
}

/// The default run: the mocks show their recorded games on the day they are served,
/// and discovery (the code path a deployment runs) matches every one to its market,
/// under the recordings' NBA ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mocks_serve_their_games_today_and_discovery_matches_them_all() {
    let today = || livegames::clock::eastern_date(livegames::clock::unix_seconds());
    let before = today();
    let server = start(fast_config()).await;
    let listed = wait_for("every game with its market", || async {
        let listed = games(&server).await;
        listed
            .iter()
            .all(|g| !g["latest"]["market"].is_null())
            .then_some(listed)
    })
    .await;
    let after = today();
    assert_eq!(listed.len(), 6);
    assert!(listed.iter().any(|g| g["id"] == "0022400196"), "{listed:?}");
    for game in &listed {
        let start =
            livegames::feeds::espn::parse_time(game["scheduled_at"].as_str().unwrap()).unwrap();
        let day = livegames::clock::eastern_date(start as u64);
        assert!(day == before || day == after, "{game}");
        let ticker = game["latest"]["market"]["ticker"].as_str().unwrap();
        let ticker_date = livegames::feeds::discovery::kalshi_date(start);
        assert!(ticker.contains(&format!("-{ticker_date}")), "{game}");
    }
    let page = health_of(&server).await;
    assert_eq!(
        page["games"],
        json!({"discovered": 6, "matched": 6, "unmatched": []}),
        "{page}"
    );
    server.stop().await.unwrap();
}

/// `--leagues nba,nfl,nhl`: each league's ESPN scoreboard matched to its Kalshi game
/// series; an NHL game has no ESPN probability, so its win probability is null.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nfl_and_nhl_games_are_found_on_their_own_scoreboards_and_series() {
    let bills = espn_event(
        "401772988",
        "2026-01-15T01:15Z",
        ("KC", "Kansas City Chiefs"),
        ("BUF", "Buffalo Bills"),
        in_progress(),
        json!({"id": "40177298801", "text": "Allen pass complete", "probability": {"homeWinPercentage": 0.41}}),
    );
    let kings = espn_event(
        "401803322",
        "2026-01-15T03:30Z",
        ("VGK", "Vegas Golden Knights"),
        ("LA", "Los Angeles Kings"),
        in_progress(),
        json!({"id": "4018033227", "text": "Kopitar shot on goal"}),
    );
    let boards = json!({
        "basketball/nba": scoreboard(vec![knicks()]),
        "football/nfl": scoreboard(vec![bills]),
        "hockey/nhl": scoreboard(vec![kings]),
    });
    let (_, espn) = start_espn_boards(boards).await;
    let mut markets = knicks_markets();
    markets.extend([
        kalshi_market("KXNFLGAME-26JAN14KCBUF-BUF", "0.4000", "0.4200", "0.4100"),
        kalshi_market("KXNFLGAME-26JAN14KCBUF-KC", "0.5800", "0.6000", "0.5900"),
        kalshi_market("KXNHLGAME-26JAN14VGKLA-LA", "0.5300", "0.5500", "0.5400"),
        kalshi_market("KXNHLGAME-26JAN14VGKLA-VGK", "0.4500", "0.4700", "0.4600"),
    ]);
    let (_, kalshi) = start_kalshi(Value::Array(markets)).await;
    let server = start(ServeConfig {
        espn_url: Some(espn.clone()),
        kalshi_url: Some(kalshi.clone()),
        kalshi_poll: Duration::from_millis(100),
        leagues: vec![League::Nba, League::Nfl, League::Nhl],
        ..fast_config()
    })
    .await;
    let listed = wait_for("three leagues' games with their prices", || async {
        let listed = games(&server).await;
        (listed.len() == 3
            && listed.iter().all(|g| {
                !g["latest"]["market"]["last_price"].is_null() && g["latest"]["state"] == "live"
            }))
        .then_some(listed)
    })
    .await;
    let by_id = |id: &str| listed.iter().find(|g| g["id"] == id).unwrap().clone();
    let (bills, kings) = (by_id("401772988"), by_id("401803322"));
    assert_eq!(bills["league"], "nfl");
    assert_eq!(
        bills["latest"]["market"]["ticker"],
        "KXNFLGAME-26JAN14KCBUF-BUF"
    );
    assert_eq!(bills["latest"]["home_win_prob"], 0.41);
    assert_eq!(kings["league"], "nhl");
    assert_eq!(
        kings["latest"]["market"]["ticker"],
        "KXNHLGAME-26JAN14VGKLA-LA"
    );
    assert_eq!(kings["latest"]["market"]["last_price"], 0.54);
    assert_eq!(
        kings["latest"]["home_win_prob"],
        Value::Null,
        "ESPN gives NHL games no probability"
    );
    let page = health_of(&server).await;
    assert_eq!(page["games"]["matched"], 3, "{page}");
    server.stop().await.unwrap();

    // The default follows the NBA alone: the other boards are not asked for.
    let server = serve_on(espn, kalshi).await;
    let listed = wait_for("the NBA game", || async {
        let listed = games(&server).await;
        (!listed.is_empty()).then_some(listed)
    })
    .await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["league"], "nba");
    server.stop().await.unwrap();
}

/// The mocks answer the NFL and NHL discovery calls too: their scoreboards and game
/// series are the API-SPORTS recordings, replayed on the scores endpoints' clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mocks_serve_nfl_and_nhl_games_with_their_markets() {
    let server = start(ServeConfig {
        leagues: vec![League::Nba, League::Nfl, League::Nhl],
        ..fast_config()
    })
    .await;
    // The first game of each league is live from the start.
    let (chicago, dallas) = ("401671789", "401688101");
    let listed = wait_for("the first NFL and NHL games live, priced", || async {
        let listed = games(&server).await;
        let live_priced = |id: &str| {
            listed.iter().any(|g| {
                g["id"] == id
                    && g["latest"]["state"] == "live"
                    && g["latest"]["market"]["last_price"].is_number()
            })
        };
        (live_priced(chicago) && live_priced(dallas)).then_some(listed)
    })
    .await;
    assert_eq!(listed.len(), 14);
    let by_id = |id: &str| listed.iter().find(|g| g["id"] == id).unwrap().clone();
    let (bears, stars) = (by_id(chicago), by_id(dallas));
    assert_eq!(bears["league"], "nfl");
    assert_eq!(bears["home"]["abbreviation"], "CHI");
    assert!(bears["latest"]["home_win_prob"].is_number(), "{bears}");
    let ticker = bears["latest"]["market"]["ticker"].as_str().unwrap();
    assert!(
        ticker.starts_with("KXNFLGAME-") && ticker.ends_with("HOUCHI-CHI"),
        "{ticker}"
    );
    assert_eq!(stars["league"], "nhl");
    assert_eq!(stars["latest"]["home_win_prob"], Value::Null, "{stars}");
    let page = health_of(&server).await;
    assert_eq!(
        page["games"],
        json!({"discovered": 14, "matched": 14, "unmatched": []}),
        "{page}"
    );
    server.stop().await.unwrap();
}
