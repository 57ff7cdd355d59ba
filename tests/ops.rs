//! The ops page (`#/ops`) in Chromium against a real serve: each group shows the
//! right figure after a known sequence driven through the API and the admin API, and
//! the alerts of alerts.yml go pending with the figures that trip them.

use std::time::Duration;

use crate::support::browser::Browser;
use crate::support::influxdb::InfluxDb;
use crate::support::*;

const TOKEN: &str = "ops-test";

/// A figure's raw value as the page holds it (None: shown as not measured).
fn figure(id: &str) -> String {
    format!(
        "(() => {{ const f = document.querySelector('[data-figure=\"{id}\"]'); return f ? f.dataset.value : null; }})()"
    )
}

fn alert_state(name: &str) -> String {
    format!("document.querySelector('[data-alert=\"{name}\"]')?.dataset.state")
}

async fn scores(server: &livegames::serve::ServerHandle) -> u16 {
    get(&format!("{}/api/nfl/scores", server.http_url()))
        .await
        .status()
        .as_u16()
}

async fn admin(
    server: &livegames::serve::ServerHandle,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) {
    let mut request = reqwest::Client::new()
        .request(method, format!("{}{path}", server.http_url()))
        .bearer_auth(TOKEN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let status = request.send().await.unwrap().status();
    assert!(status.is_success(), "{path}: {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_ops_group_shows_what_a_known_sequence_did() {
    let Some(mut browser) = Browser::launch().await else {
        return;
    };
    let Some(mut influx) = InfluxDb::start().await else {
        return;
    };
    let mut config = fast_config();
    config.admin_token = Some(TOKEN.into());
    config.ops_every = Duration::from_millis(200);
    config.influxdb = Some(livegames::influx::parse(&influx.url("ops"), |_| None).unwrap());
    config.influx.flush_every = Duration::from_millis(100);
    config.influx.backoff.max = Duration::from_millis(300);
    config.scores.daily_quota = 6;
    config.scores.breaker_failures = 1;
    config.scores.breaker_open_for = Duration::from_secs(1);
    let server = start(config).await;
    browser
        .goto(&format!("{}/?opsEvery=300#/ops", server.http_url()))
        .await;
    browser
        .wait_for(
            "the ops page",
            "document.querySelector('#ops-service') && document.querySelector('#ops-firing')",
        )
        .await;
    // Not measured yet is a dash, never 0.
    assert_eq!(browser.eval(&figure("hit_ratio")).await, "");
    assert_eq!(
        browser.eval(&alert_state("DeliveryP99AboveBudget")).await,
        "not_measured"
    );

    // Cache: a miss, then two hits.
    for _ in 0..3 {
        assert_eq!(scores(&server).await, 200);
    }
    browser
        .wait_for(
            "1 miss and 2 hits",
            &format!("{} === '1' && {} === '2'", figure("misses"), figure("hits")),
        )
        .await;
    let ratio: f64 = browser
        .eval(&figure("hit_ratio"))
        .await
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((ratio - 2.0 / 3.0).abs() < 1e-9, "{ratio}");

    // Circuit: API-SPORTS down opens it on the first failure; back up, a probe closes it.
    admin(
        &server,
        reqwest::Method::POST,
        "/admin/faults",
        Some(serde_json::json!({"source": "apisports", "mode": "down"})),
    )
    .await;
    admin(
        &server,
        reqwest::Method::DELETE,
        "/admin/scores/cache",
        None,
    )
    .await;
    assert_ne!(scores(&server).await, 200);
    browser
        .wait_for(
            "the NFL circuit open",
            &format!(
                "{} === '2' && {} === '1' && {} === '1'",
                figure("nfl_state"),
                figure("nfl_opens"),
                figure("nfl_failures")
            ),
        )
        .await;
    assert_eq!(
        browser
            .eval("document.querySelector('[data-figure=\"nfl_state\"] .value').innerText")
            .await,
        "open"
    );
    browser
        .wait_for(
            "CircuitBreakerOpen pending",
            &format!("{} === 'pending'", alert_state("CircuitBreakerOpen")),
        )
        .await;
    assert_eq!(
        browser.eval(&figure("evictions")).await,
        "1",
        "the admin API's clear"
    );
    admin(
        &server,
        reqwest::Method::DELETE,
        "/admin/faults?source=apisports",
        None,
    )
    .await;
    wait_for("the probe closing the circuit", || async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        (scores(&server).await == 200).then_some(())
    })
    .await;
    let recovery = browser
        .wait_for(
            "the NFL circuit closed with its recovery time",
            &format!(
                "{} === '0' && {}",
                figure("nfl_state"),
                figure("nfl_recovery")
            ),
        )
        .await;
    let recovery: f64 = recovery.as_str().unwrap().parse().unwrap();
    assert!(
        recovery >= 1.0,
        "the spell lasted at least --breaker-open-for: {recovery}"
    );

    // Quota: spend the day's (6) with fresh fetches; the next is a rate-limit hit.
    let mut refused = 0;
    for _ in 0..8 {
        admin(
            &server,
            reqwest::Method::DELETE,
            "/admin/scores/cache",
            None,
        )
        .await;
        if scores(&server).await == 503 {
            refused += 1;
        }
    }
    assert!(refused >= 1);
    browser
        .wait_for(
            "the quota spent",
            &format!(
                "{} === '0' && {} === '6' && Number({}) >= 1",
                figure("quota_remaining"),
                figure("requests_today"),
                figure("rate_limit_hits")
            ),
        )
        .await;
    browser
        .wait_for(
            "ApiSportsQuotaHigh pending",
            &format!("{} === 'pending'", alert_state("ApiSportsQuotaHigh")),
        )
        .await;

    // InfluxDB: stopped, writes fail and the alert goes pending; back, writes succeed.
    browser
        .wait_for(
            "writes accepted",
            &format!("{} === '1'", figure("success_rate")),
        )
        .await;
    influx.stop();
    browser
        .wait_for(
            "writes failing",
            &format!(
                "Number({}) < 1 && {} === 'pending'",
                figure("success_rate"),
                alert_state("InfluxDBWriteFailures")
            ),
        )
        .await;
    influx.resume().await;
    // The stream goes on writing (a flush every 100 ms here), so a sample of the
    // queue catches at most a flush's worth of lines once the backlog is gone: on a
    // busy machine the sample rarely lands just after a flush, so exactly 0 is not
    // what drained means.
    browser
        .wait_for(
            "the queue drained",
            &format!(
                "((queued) => queued !== null && queued !== '' && Number(queued) < 30)({})",
                figure("queued")
            ),
        )
        .await;
    let p99 = browser.eval(&figure("write_p99")).await;
    assert!(p99.as_str().unwrap().parse::<f64>().unwrap() > 0.0, "{p99}");
    // Every figure says what it means on hover.
    let untitled = browser
        .eval("[...document.querySelectorAll('[data-figure]')].filter(f => !f.title).map(f => f.dataset.figure)")
        .await;
    assert_eq!(untitled, serde_json::json!([]), "figures without a meaning");
    // Charts drawn on the game chart's time ticks.
    let ticks = browser
        .eval("document.querySelector('canvas[data-series=\"requests\"]').__axes.x.ticks.length")
        .await;
    assert!(ticks.as_u64().unwrap() >= 2, "{ticks}");
    browser.screenshot("ops").await;
    server.stop().await.unwrap();
}
