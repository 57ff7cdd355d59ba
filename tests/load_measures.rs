use std::time::Duration;

use livegames::client::ConnectOptions;
use livegames::load::measure::recorder::{Distribution, Quantile};
use livegames::load::plan::shard::Share;
use livegames::load::session::VuConfig;
use livegames::load::{LoadConfig, results::summary::LoadSummary};
use livegames::retry::Backoff;
use tokio_util::sync::CancellationToken;

use crate::support::fake::{self, Behaviour};
use crate::support::*;

fn vu(send_rate: Option<f64>) -> VuConfig {
    VuConfig {
        connect: ConnectOptions {
            connect_timeout: Duration::from_secs(5),
            ..ConnectOptions::default()
        },
        idle_timeout: Duration::from_secs(10),
        send_rate,
        ws_ping: Some(Duration::from_millis(200)),
        ..VuConfig::default()
    }
}

async fn load(targets: Vec<String>, conns: usize, secs: u64, vu: VuConfig) -> LoadSummary {
    let config = LoadConfig {
        targets: targets
            .iter()
            .map(|t| url::Url::parse(t).expect("a stream URL").into())
            .collect(),
        share: Share::whole(conns),
        clock_probe: None,
        duration: Duration::from_secs(secs),
        ramp: Duration::ZERO,
        vu,
        budgets: Vec::new(),
        out: None,
    };
    livegames::load::run(config, CancellationToken::new(), |_| {}).await
}

fn pct(s: &LoadSummary, d: Distribution, q: Quantile) -> f64 {
    use livegames::load::results::judge::Figures;
    s.latency(d, q)
        .unwrap_or_else(|| panic!("no {d:?} samples"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_received_match_frames_the_server_sent() {
    let server = start(fast_config()).await;
    let game = live_game(&server).await;
    let url = format!("{}/ws/live/{game}", server.ws_url());
    let summary = load(vec![url], 5, 3, vu(Some(5.0))).await;
    let sent_by_server = metric(&server, "livegames_ws_frames_sent_total").await as u64;
    let received = summary.totals.counts.frames;
    assert!(received > 50, "{received}");
    // Frames written in the last instant before the clients closed may not have been read.
    assert!(
        received <= sent_by_server && sent_by_server - received <= 5 * 5,
        "server wrote {sent_by_server}, clients read {received}"
    );
    assert_eq!(
        (
            summary.totals.counts.lost,
            summary.totals.counts.duplicates,
            summary.totals.counts.reordered
        ),
        (Some(0), Some(0), Some(0))
    );
    assert_eq!(summary.totals.counts.connected, 5);
    assert_eq!(summary.totals.peak_open, 5);
    assert!(
        summary.totals.counts.pongs >= summary.totals.counts.pings_sent.saturating_sub(5)
            && summary.totals.counts.pongs > 0
    );
    assert!(
        summary.totals.counts.errors.is_empty(),
        "{:?}",
        summary.totals.counts.errors
    );
    assert!(pct(&summary, Distribution::Delivery, Quantile::P99) < 1_000_000.0);
    assert!(
        summary.latency.contains_key("e2e")
            && summary.latency.contains_key("rtt")
            && summary.latency.contains_key("connect")
    );
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_injected_delay_shows_up_in_the_percentiles() {
    let addr = fake::start(Behaviour::Delayed {
        delay: Duration::from_millis(200),
        every: Duration::from_millis(250),
    })
    .await;
    let summary = load(vec![format!("ws://{addr}/")], 3, 2, vu(None)).await;
    let p50 = pct(&summary, Distribution::Delivery, Quantile::P50);
    let p99 = pct(&summary, Distribution::Delivery, Quantile::P99);
    assert!(
        p50 >= 200_000.0,
        "p50 {p50} µs must include the 200 ms delay"
    );
    assert!(p99 < 400_000.0, "p99 {p99} µs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_stalls_for_1s_shows_up_as_p99_of_at_least_1s_with_client_traffic() {
    let addr = fake::start(Behaviour::StallOnce {
        after: 10,
        stall: Duration::from_secs(1),
    })
    .await;
    let summary = load(vec![format!("ws://{addr}/")], 1, 3, vu(Some(20.0))).await;
    let p99 = pct(&summary, Distribution::Rtt, Quantile::P99);
    assert!(p99 >= 1_000_000.0, "rtt p99 {p99} µs hides the 1 s stall");
    // Open model: every ping sent during the stall is timed from its slot, so many
    // samples are long, not just the one a closed-loop client would have measured.
    let slow = summary
        .latencies
        .get(Distribution::Rtt)
        .count_between(500_000, 10_000_000);
    assert!(slow >= 8, "only {slow} rtt samples over 500 ms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_counts_as_a_disconnect_with_its_close_code() {
    let addr = fake::start(Behaviour::CloseAfter {
        after: Duration::from_millis(300),
        code: 1011,
    })
    .await;
    let summary = load(vec![format!("ws://{addr}/")], 4, 2, vu(None)).await;
    assert_eq!(summary.totals.counts.disconnects, 4);
    assert_eq!(
        summary.totals.counts.errors.get("close_1011"),
        Some(&4),
        "{:?}",
        summary.totals.counts.errors
    );
    assert_eq!(summary.totals.peak_open, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnecting_users_come_back_and_each_return_is_timed() {
    let addr = fake::start(Behaviour::CloseAfter {
        after: Duration::from_millis(300),
        code: 1011,
    })
    .await;
    let mut config = vu(None);
    config.reconnect = Some(Backoff {
        base: Duration::from_millis(50),
        max: Duration::from_millis(200),
    });
    let summary = load(vec![format!("ws://{addr}/")], 2, 2, config).await;
    assert!(
        summary.totals.counts.reconnect_attempts >= 2,
        "{:?}",
        summary.totals
    );
    assert_eq!(
        summary.totals.counts.reconnect_attempts, summary.totals.counts.reconnect_successes,
        "the server always takes them back"
    );
    assert_eq!(
        summary.latencies.get(Distribution::Reconnect).len(),
        summary.totals.counts.reconnect_successes
    );
    assert!(summary.latency.contains_key("reconnect"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_that_leave_and_resume_with_since_lose_nothing() {
    let server = start(fast_config()).await;
    let game = live_game(&server).await;
    let mut config = vu(Some(2.0));
    config.churn = Some(Duration::from_millis(700));
    let summary = load(
        vec![format!("{}/ws/live/{game}", server.ws_url())],
        4,
        3,
        config,
    )
    .await;
    let t = &summary.totals.counts;
    assert!(t.reconnect_attempts >= 8, "{t:?}");
    assert_eq!(t.reconnect_successes, t.reconnect_attempts, "{t:?}");
    assert_eq!(
        (t.lost, t.duplicates, t.reordered),
        (Some(0), Some(0), Some(0)),
        "every resume replays exactly what was missed: {t:?}"
    );
    assert!(t.errors.is_empty(), "{:?}", t.errors);
    assert!(summary.latency.contains_key("reconnect"));
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_load_counts_requests_by_path_and_status() {
    use livegames::load::session::http::{HttpConfig, run};
    crate::support::capture_logs();
    let server = start(fast_config()).await;
    let config = HttpConfig {
        base_url: server.http_url(),
        paths: vec!["/api/live/games".into(), "/no/such/path".into()],
        users: 3,
        duration: Duration::from_secs(2),
        ramp: Duration::ZERO,
        timeout: Duration::from_secs(5),
        connect: ConnectOptions::default(),
    };
    let mut recorder = livegames::load::measure::recorder::Recorder::new();
    let http = run(&config, &mut recorder).await.unwrap();
    let ok = &http.by_path["GET /api/live/games"];
    let missing = &http.by_path["GET /no/such/path"];
    assert!(
        ok.requests > 10 && ok.failures == 0 && ok.status_codes.get(&200) == Some(&ok.requests),
        "{ok:?}"
    );
    assert!(
        missing.failures == missing.requests && missing.status_codes.contains_key(&404),
        "{missing:?}"
    );
    assert_eq!(http.requests, ok.requests + missing.requests);
    // goose may count a request that was in flight when the run stopped without
    // timing it: at most one per user.
    let timed = recorder.latencies.get(Distribution::Http).len();
    assert!(
        timed <= http.requests && timed + config.users as u64 >= http.requests,
        "every finished request timed: {timed} of {}",
        http.requests
    );
    let budgets = [
        "errors<1%".parse().unwrap(),
        "http_p99<10s".parse().unwrap(),
    ];
    let summary = livegames::load::results::summary::http_summary(
        std::time::SystemTime::now(),
        config.duration,
        &config.base_url,
        recorder,
        http,
        &budgets,
        true,
    );
    assert!(
        !summary.budgets[0].passed,
        "half the requests failed: {:?}",
        summary.budgets[0]
    );
    assert!(summary.budgets[1].passed);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_send_template_is_sent_on_schedule_and_answered() {
    let server = start(fast_config()).await;
    let game = live_game(&server).await;
    let mut config = vu(Some(10.0));
    config.send_template = livegames::client::template::Template::parse(
        r#"{"type":"ping","id":{id},"client":"custom"}"#,
    )
    .unwrap();
    let summary = load(
        vec![format!("{}/ws/live/{game}", server.ws_url())],
        2,
        2,
        config,
    )
    .await;
    let t = &summary.totals.counts;
    assert!(t.pings_sent >= 30, "10/s for 2 s on 2 connections: {t:?}");
    assert!(
        t.pongs + 4 >= t.pings_sent,
        "the server answers the template's pings: {t:?}"
    );
    server.stop().await.unwrap();
}

/// Server-Sent Events: the same figures as a WebSocket run, and users that leave and
/// come back resume with Last-Event-ID, losing nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_streams_are_measured_and_resume_with_last_event_id() {
    use livegames::load::session::link::Protocol;
    let server = start(fast_config()).await;
    let game = live_game(&server).await;
    let mut config = vu(None);
    config.protocol = Protocol::Sse;
    config.ws_ping = None;
    config.churn = Some(Duration::from_millis(700));
    let url = format!("{}/sse/live/{game}", server.http_url());
    let summary = load(vec![url], 4, 3, config).await;
    let t = &summary.totals.counts;
    assert!(t.frames > 20, "{t:?}");
    assert!(t.unreadable.is_empty(), "{t:?}");
    assert!(t.reconnect_attempts >= 8, "{t:?}");
    assert_eq!(t.reconnect_successes, t.reconnect_attempts, "{t:?}");
    assert_eq!(
        (t.lost, t.duplicates, t.reordered),
        (Some(0), Some(0), Some(0)),
        "every resume replays exactly what was missed: {t:?}"
    );
    assert!(t.errors.is_empty(), "{:?}", t.errors);
    assert!(
        summary.latency.contains_key("delivery"),
        "{:?}",
        summary.latency
    );
    assert!(
        summary.checks.iter().all(|c| c.passed),
        "{:?}",
        summary.checks
    );
    assert!(metric(&server, "livegames_sse_events_sent_total").await > 0.0);

    // Not an event stream: refused, saying what came instead.
    let mut config = vu(None);
    config.protocol = Protocol::Sse;
    config.ws_ping = None;
    let json = format!("{}/api/live/games", server.http_url());
    let summary = load(vec![json], 1, 1, config).await;
    let said = &summary.totals.counts.error_examples["handshake_200"];
    assert!(
        said.ends_with("(content-type \"application/json\", not text/event-stream)"),
        "{said}"
    );
    server.stop().await.unwrap();
}
