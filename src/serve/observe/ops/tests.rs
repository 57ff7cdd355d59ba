//! The view over rings of made-up snapshots: when alerts fire, what the figures
//! compute, what the ring keeps.

use std::time::Instant;

use super::*;

fn at(t0: Instant, seconds: u64, text: &str) -> Snapshot {
    Snapshot::parse(
        text,
        seconds as i64 * 1000,
        t0 + Duration::from_secs(seconds),
    )
}

fn alert<'v>(view: &'v Value, name: &str) -> &'v Value {
    view["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name)
        .unwrap()
}

const OPEN: &str = "livegames_circuit_state{league=\"nfl\"} 2\n";

#[test]
fn an_alert_fires_once_its_condition_held_for_its_for() {
    let t0 = Instant::now();
    let history = OpsHistory::default();
    history.record(at(t0, 0, OPEN));
    history.record(at(t0, 30, OPEN));
    let pending = history.view(at(t0, 40, OPEN));
    assert_eq!(alert(&pending, "CircuitBreakerOpen")["state"], "pending");
    let firing = history.view(at(t0, 61, OPEN));
    assert_eq!(alert(&firing, "CircuitBreakerOpen")["state"], "firing");
    assert_eq!(alert(&firing, "CircuitBreakerOpen")["observed"], 2.0);
    let closed = history.view(at(t0, 62, "livegames_circuit_state{league=\"nfl\"} 0\n"));
    assert_eq!(alert(&closed, "CircuitBreakerOpen")["state"], "ok");
    // No source figures at all: nothing to judge, which is not ok.
    assert_eq!(
        alert(&closed, "LivegamesUnhealthy")["state"],
        "not_measured"
    );
}

#[test]
fn the_error_rate_is_the_5xx_share_over_the_rules_range() {
    let t0 = Instant::now();
    let counts = |ok: u64, failed: u64| {
        format!(
            "livegames_http_requests_total{{route=\"/a\",status=\"200\"}} {ok}\n\
             livegames_http_requests_total{{route=\"/b\",status=\"503\"}} {failed}\n\
             livegames_http_requests_total{{route=\"/c\",status=\"503\"}} {failed}\n"
        )
    };
    let history = OpsHistory::default();
    history.record(at(t0, 0, &counts(100, 0)));
    // 10 more requests in the window, 4 of them 503 (2 routes x 2).
    let view = history.view(at(t0, 60, &counts(106, 2)));
    let service = &view["groups"][0];
    let error_rate = service["figures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "error_rate")
        .unwrap();
    assert_eq!(error_rate["value"], 0.4);
    assert_eq!(alert(&view, "HighErrorRate")["state"], "pending");
}

/// Every series the view reads survives compaction: the view of a compacted
/// snapshot is the view of the whole one.
#[test]
fn the_ring_keeps_every_series_the_view_reads() {
    let metrics = crate::serve::observe::Metrics::new();
    metrics.count_request("/health", 200, Duration::from_millis(3));
    metrics.count_request("/api/nfl/scores", 503, Duration::from_millis(40));
    metrics.set_quota("day", 100, 40);
    metrics.broadcast_latency.observe(0.002);
    metrics.influxdb_write_seconds.observe(0.01);
    metrics.influxdb_batch_lines.observe(50.0);
    metrics.uptime.set(12.0);
    let t0 = Instant::now();
    let whole = |seconds| Snapshot::parse(&metrics.render(), 0, t0 + Duration::from_secs(seconds));
    let history = OpsHistory::default();
    history.record(Snapshot::parse("", 0, t0));
    let full = history.view(whole(10));
    let mut keys = Keys::default();
    let compact = history.view(whole(10).compact(KEEP, &mut keys));
    assert_eq!(full["groups"], compact["groups"]);
    assert_eq!(full["alerts"], compact["alerts"]);
    assert!(whole(10).compact(KEEP, &mut keys).len() < whole(10).len());
}

#[test]
fn the_ring_keeps_sixteen_minutes() {
    let t0 = Instant::now();
    let history = OpsHistory::default();
    for minute in 0..30 {
        history.record(at(t0, minute * 60, OPEN));
    }
    let kept = history.ring().len();
    assert_eq!(kept, 17, "minutes 13..=29");
}
