//! serve writing to a real InfluxDB (Debian's 1.x, started on loopback): what lands
//! there equals what the stream sent, and an InfluxDB that stops never slows the
//! stream; writes resume, queued points included, when it comes back.

use std::time::{Duration, Instant};

use livegames::contract::schema::Body;
use serde_json::Value;

use crate::support::influxdb::InfluxDb;
use crate::support::*;

const DB: &str = "livegames_test";

fn store_config(influx: &InfluxDb) -> livegames::serve::ServeConfig {
    let mut config = fast_config();
    config.influxdb = Some(livegames::influx::parse(&influx.url(DB), |_| None).unwrap());
    config.influx.flush_every = Duration::from_millis(100);
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_points_and_scores_land_in_influxdb_as_the_stream_sent_them() {
    let Some(influx) = InfluxDb::start().await else {
        return;
    };
    let server = start(store_config(&influx)).await;
    let game = live_game(&server).await;
    wait_for("live points in InfluxDB", || async {
        (influx.count(DB, "live_point", "seq", "").await > 10).then_some(())
    })
    .await;
    // A point of the timeline, as InfluxDB has it: every field equal.
    let (_, timeline) = get_valid(
        &format!("{}/api/games/{game}/timeline", server.http_url()),
        Body::Timeline,
    )
    .await;
    let entry = timeline["points"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|p| !p["data"]["score"].is_null() && !p["data"]["market"].is_null())
        .expect("a point with a score and a quote")
        .clone();
    let seq = entry["seq"].as_u64().unwrap();
    let data = &entry["data"];
    let row = wait_for("that point in InfluxDB", || async {
        let q = format!("SELECT * FROM live_point WHERE game = '{game}' AND seq = {seq}");
        let series = influx.query(DB, &q).await;
        (!series.is_null()).then_some(series)
    })
    .await;
    let columns: Vec<&str> = row["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let value =
        |name: &str| row["values"][0][columns.iter().position(|c| *c == name).unwrap()].clone();
    assert_eq!(
        value("time").as_i64().unwrap(),
        data["observed_at"].as_i64().unwrap() * 1000,
        "stamped with observed_at"
    );
    assert_eq!(value("home_score"), data["score"]["home"]);
    assert_eq!(value("away_score"), data["score"]["away"]);
    assert_eq!(value("home_win_prob"), data["home_win_prob"]);
    assert_eq!(value("last_price"), data["market"]["last_price"]);
    assert_eq!(value("yes_bid"), data["market"]["yes_bid"]);
    assert_eq!(value("state"), data["state"]);
    assert_eq!(value("clock"), data["clock"]);
    assert_eq!(value("espn"), data["sources"]["espn"]);
    assert_eq!(value("cause"), data["cause"]);
    assert_eq!(value("league"), "nba");

    // A fresh scores fetch is written; a cached answer is not written again.
    let scores = get(&format!("{}/api/nfl/scores", server.http_url())).await;
    assert_eq!(scores.status(), 200);
    let games = scores.json::<Value>().await.unwrap()["games"]
        .as_array()
        .unwrap()
        .len() as u64;
    wait_for("the NFL scores in InfluxDB", || async {
        let n = influx
            .count(DB, "scores", "home_score", "WHERE league = 'nfl'")
            .await
            + influx
                .count(
                    DB,
                    "scores",
                    "status_detail",
                    "WHERE league = 'nfl' AND status = 'scheduled'",
                )
                .await;
        (n >= games).then_some(())
    })
    .await;
    let written_once = influx
        .count(DB, "scores", "status_detail", "WHERE league = 'nfl'")
        .await;
    assert_eq!(written_once, games, "one line per game of the fetch");
    let cached = get(&format!("{}/api/nfl/scores", server.http_url())).await;
    assert_eq!(cached.headers()["x-cache"], "HIT");
    assert_eq!(
        influx
            .count(DB, "scores", "status_detail", "WHERE league = 'nfl'")
            .await,
        games
    );

    let h = health_of(&server).await;
    assert_eq!(h["store"]["influxdb"]["state"], "ok", "{h}");
    assert!(
        !h.to_string().contains(&influx.http_port.to_string()),
        "no InfluxDB URL in the public /health: {h}"
    );
    assert!(
        metric(
            &server,
            "livegames_influxdb_lines_total{result=\"written\"}"
        )
        .await
            > 10.0
    );
    assert_eq!(
        metric(
            &server,
            "livegames_influxdb_lines_total{result=\"dropped\"}"
        )
        .await,
        0.0
    );
    server.stop().await.unwrap();
}

/// The delivery latency of the next `n` data frames on `client` (receive time -
/// observed_at), in ms.
async fn delivery_ms(client: &mut Client, n: usize) -> Vec<f64> {
    let mut latencies = Vec::with_capacity(n);
    while latencies.len() < n {
        let f = client.next_of("update").await;
        let observed = f.value["data"]["observed_at"].as_i64().unwrap();
        latencies.push((f.received_at - observed) as f64 / 1000.0);
    }
    latencies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_influxdb_never_slows_the_stream_and_writes_resume_when_it_returns() {
    let Some(mut influx) = InfluxDb::start().await else {
        return;
    };
    let mut config = store_config(&influx);
    config.influx.backoff.max = Duration::from_millis(500);
    let server = start(config).await;
    let game = live_game(&server).await;
    wait_for("writes under way", || async {
        (influx.count(DB, "live_point", "seq", "").await > 0).then_some(())
    })
    .await;
    let mut client = connect(&server, &format!("/ws/live/{game}")).await;
    client.next_of("snapshot").await;
    let healthy = delivery_ms(&mut client, 200).await;

    influx.stop();
    let stopped_at = now_micros();
    wait_for("/health to say the store is failing", || async {
        let h = health_of(&server).await;
        (h["store"]["influxdb"]["state"] == "failing" && h["status"] == "degraded").then_some(())
    })
    .await;
    let outage_started = Instant::now();
    let stopped = delivery_ms(&mut client, 200).await;
    let outage = outage_started.elapsed();
    assert!(
        metric(
            &server,
            "livegames_influxdb_writes_total{result=\"failed\"}"
        )
        .await
            >= 1.0
    );
    let queued = metric(&server, "livegames_influxdb_queue_lines ").await;
    assert!(queued > 0.0, "points wait in the queue: {queued}");

    let p99 = |v: &[f64]| {
        let mut sorted = v.to_vec();
        sorted.sort_by(f64::total_cmp);
        sorted[((sorted.len() as f64 * 0.99).ceil() as usize).saturating_sub(1)]
    };
    eprintln!(
        "delivery p99 with InfluxDB healthy {:.2} ms, stopped {:.2} ms ({} frames each; outage {outage:?})",
        p99(&healthy),
        p99(&stopped),
        stopped.len()
    );
    // The stream does not wait on the store: the same frames arrive, as fast (a
    // loaded 2-core machine adds noise, hence the slack, not a ratio).
    assert!(
        p99(&stopped) < p99(&healthy) + 100.0,
        "delivery p99 {:.1} ms while InfluxDB was stopped, {:.1} ms before",
        p99(&stopped),
        p99(&healthy)
    );

    influx.resume().await;
    wait_for("/health to say ok again", || async {
        (health_of(&server).await["store"]["influxdb"]["state"] == "ok").then_some(())
    })
    .await;
    // What was observed while InfluxDB was down was queued, and written on its return.
    let during = format!("WHERE time > {}", stopped_at * 1000);
    wait_for("points from the outage in InfluxDB", || async {
        (influx.count(DB, "live_point", "seq", &during).await > 0).then_some(())
    })
    .await;
    assert_eq!(
        metric(
            &server,
            "livegames_influxdb_lines_total{result=\"dropped\"}"
        )
        .await,
        0.0,
        "nothing dropped: the queue held the outage"
    );
    server.stop().await.unwrap();
}

/// issue 13: `load --out influxdb=URL` streams each second (k6's convention), tagged
/// with the run and the worker: what InfluxDB holds adds up to the report's totals,
/// second by second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_streams_each_second_to_influxdb_and_it_adds_up_to_the_report() {
    let Some(influx) = InfluxDb::start().await else {
        return;
    };
    let server = start(fast_config()).await;
    live_game(&server).await;
    let report = std::env::temp_dir().join(format!("livegames-out-{}", std::process::id()));
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_livegames"))
        .args([
            "load",
            &server.ws_url(),
            "--conns",
            "8",
            "--duration",
            "4s",
            "--ramp",
            "0s",
        ])
        .args(["--out", &format!("influxdb={}", influx.url("loadtests"))])
        .args(["--run-id", "ci-42", "--worker", "w1", "--quiet", "--report"])
        .arg(&report)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("lines written, 0 failed requests, 0 lines dropped"),
        "{stderr}"
    );
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(report.join("report.json")).unwrap())
            .unwrap();
    let seconds = json["per_second"].as_array().unwrap();
    let rows = influx
        .query(
            "loadtests",
            "SELECT frames, open, delivery_p99_ms, delivery_p95_ms FROM load WHERE run = 'ci-42' AND worker = 'w1'",
        )
        .await;
    let values = rows["values"]
        .as_array()
        .expect("the run's seconds in InfluxDB");
    // The report folds a last fraction of a second into the one before, and what
    // arrives while the connections close only into its totals; InfluxDB got each
    // as it happened.
    assert!(
        (seconds.len()..=seconds.len() + 2).contains(&values.len()),
        "{} lines for {} seconds: {values:?} vs {seconds:?}",
        values.len(),
        seconds.len()
    );
    let frames: i64 = values.iter().map(|v| v[1].as_i64().unwrap()).sum();
    assert_eq!(
        frames,
        json["totals"]["frames"].as_i64().unwrap(),
        "every frame, once"
    );
    assert_eq!(
        values[0][2].as_i64().unwrap(),
        seconds[0]["open"].as_i64().unwrap()
    );
    let p99_ms = seconds[0]["p99_us"].as_f64().unwrap() / 1000.0;
    assert!(
        (values[0][3].as_f64().unwrap() - p99_ms).abs() < 1e-9,
        "{values:?} vs {p99_ms}"
    );
    assert!(values[0][4].as_f64().is_some(), "p95 too");
    server.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&report);
}

/// serve's retention as /health shows it, once it has been looked at.
async fn retention_once_known(server: &livegames::serve::ServerHandle) -> Value {
    wait_for("the retention looked at", || async {
        let h = health_of(server).await;
        let retention = h["store"]["influxdb"]["retention"].clone();
        (retention["state"] != "pending").then_some(retention)
    })
    .await
}

/// The default policy of `DB`, as InfluxDB lists it: (name, duration, shard group).
async fn default_policy(influx: &InfluxDb) -> (String, String, String) {
    let series = influx
        .query(DB, &format!("SHOW RETENTION POLICIES ON {DB}"))
        .await;
    let row = series["values"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row[4] == true)
        .expect("a default policy")
        .clone();
    let text = |i: usize| row[i].as_str().unwrap().to_owned();
    (text(0), text(1), text(2))
}

/// `--influxdb-retention`: the database's default policy keeps data as long as serve
/// is told (a season by default, where InfluxDB would keep it forever), /health says
/// what it found and did, and a restart with the same wish finds it already so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_keeps_what_serve_writes_as_long_as_it_is_told() {
    let Some(influx) = InfluxDb::start().await else {
        return;
    };
    let server = start(store_config(&influx)).await;
    let retention = retention_once_known(&server).await;
    assert_eq!(retention["wanted"], "200d", "{retention}");
    assert_eq!(retention["state"], "applied", "{retention}");
    assert_eq!(retention["was"], "forever", "{retention}");
    assert_eq!(retention["policy"], "autogen", "{retention}");
    assert_eq!(
        default_policy(&influx).await,
        ("autogen".into(), "4800h0m0s".into(), "168h0m0s".into())
    );
    server.stop().await.unwrap();

    let mut config = store_config(&influx);
    config.influx.retention = livegames::influx::Retention::For(Duration::from_secs(36 * 3600));
    let server = start(config.clone()).await;
    let retention = retention_once_known(&server).await;
    assert_eq!(
        (&retention["state"], &retention["was"]),
        (&"applied".into(), &"200d".into()),
        "{retention}"
    );
    assert_eq!(
        default_policy(&influx).await,
        ("autogen".into(), "36h0m0s".into(), "1h0m0s".into())
    );
    server.stop().await.unwrap();

    let server = start(config).await;
    let retention = retention_once_known(&server).await;
    assert_eq!(retention["state"], "ok", "{retention}");
    assert_eq!(health_of(&server).await["status"], "healthy");
    server.stop().await.unwrap();

    let mut config = store_config(&influx);
    config.influx.retention = livegames::influx::Retention::Forever;
    let server = start(config).await;
    assert_eq!(retention_once_known(&server).await["state"], "applied");
    assert_eq!(default_policy(&influx).await.1, "0s");
}
