//! The ops view (`GET /api/ops`, drawn by the dashboard's `#/ops`): the five things
//! an operator looks at first, service health, API usage, the scores cache, InfluxDB
//! writes and the circuit breakers, as figures now and series over the last minutes,
//! and which alerts of `deploy/prometheus/alerts.yml` would fire now, judged with the
//! same thresholds, ranges and `for:` as Prometheus.
//!
//! The figures are serve's own `/metrics`, read back ([`Snapshot`]) every
//! `--ops-every` into a bounded ring: nothing is counted twice, and what the page
//! shows is what Prometheus scrapes.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use super::alerts::{Rule, rules};
use super::exposition::{Keys, Snapshot, increase, quantile};

/// How far back the ring reaches: the longest alert range (15 m) and a little more.
pub const KEPT: Duration = Duration::from_secs(16 * 60);
/// A rate over this is what "now" means for figures without a rule of their own.
const RECENT: Duration = Duration::from_secs(60);

/// The last [`KEPT`] of snapshots, oldest first.
pub struct OpsHistory {
    ring: Mutex<VecDeque<Arc<Snapshot>>>,
    keys: Mutex<Keys>,
    rules: Vec<Rule>,
}

impl Default for OpsHistory {
    fn default() -> Self {
        OpsHistory {
            ring: Mutex::default(),
            keys: Mutex::default(),
            rules: rules(),
        }
    }
}

impl OpsHistory {
    fn ring(&self) -> std::sync::MutexGuard<'_, VecDeque<Arc<Snapshot>>> {
        self.ring.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps a snapshot (of what the view reads: [`KEEP`]); those older than [`KEPT`]
    /// go.
    pub fn record(&self, snapshot: Snapshot) {
        let snapshot = {
            let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
            snapshot.compact(KEEP, &mut keys)
        };
        let mut ring = self.ring();
        while ring
            .front()
            .is_some_and(|old| snapshot.at.duration_since(old.at) > KEPT)
        {
            ring.pop_front();
        }
        ring.push_back(Arc::new(snapshot));
    }

    /// The view, with `now` (a fresh snapshot) as its latest point.
    pub fn view(&self, now: Snapshot) -> Value {
        let mut samples: Vec<Arc<Snapshot>> = self.ring().iter().cloned().collect();
        if samples.last().is_none_or(|last| last.at < now.at) {
            samples.push(Arc::new(now));
        }
        let view = View {
            samples: &samples,
            rules: &self.rules,
        };
        json!({
            "at_ms": view.now().at_ms,
            "groups": [view.service(), view.api(), view.cache(), view.influxdb(), view.circuits()],
            "alerts": view.alerts(),
        })
    }
}

/// A figure: a value (null when not measured, with the reason), its unit and meaning.
fn figure(id: &str, label: &str, value: Option<f64>, unit: &str, help: &str) -> Value {
    json!({"id": id, "label": label, "value": value.filter(|v| v.is_finite()), "unit": unit, "help": help})
}

/// A series over the ring: one point per snapshot after the first.
fn series(id: &str, label: &str, unit: &str, points: Vec<(i64, Option<f64>)>) -> Value {
    let points: Vec<Value> = points
        .into_iter()
        .map(|(t, v)| json!([t, v.filter(|v| v.is_finite())]))
        .collect();
    json!({"id": id, "label": label, "unit": unit, "points": points})
}

/// The series the view reads, each with the labels it reads them by: a snapshot in
/// the ring holds these alone (some 60 series instead of hundreds with every route's
/// buckets), their keys shared across the ring: about a kilobyte a snapshot.
const KEEP: &[(&str, &[&str])] = &[
    (REQUESTS, &["status"]),
    ("livegames_http_request_duration_seconds_bucket", &["le"]),
    ("livegames_broadcast_latency_seconds_bucket", &["le"]),
    ("livegames_ws_connections", &[]),
    ("livegames_uptime_seconds", &[]),
    ("livegames_ws_slow_consumer_closes_total", &[]),
    ("livegames_source_state", &["source"]),
    ("livegames_game_live", &["game"]),
    ("livegames_game_frame_age_seconds", &["game"]),
    (CACHE, &["result"]),
    (EVICTIONS, &[]),
    (REFUSED, &["code"]),
    ("livegames_apisports_quota_used", &["window"]),
    ("livegames_apisports_quota_remaining", &["window"]),
    ("livegames_apisports_quota_limit", &["window"]),
    ("livegames_circuit_state", &["league"]),
    ("livegames_circuit_failures", &["league"]),
    ("livegames_circuit_opens_total", &["league"]),
    ("livegames_circuit_recovery_seconds", &["league"]),
    (WRITES, &["result"]),
    (LINES, &["result"]),
    ("livegames_influxdb_queue_lines", &[]),
    ("livegames_influxdb_write_seconds_bucket", &["le"]),
    ("livegames_influxdb_batch_lines_sum", &[]),
    ("livegames_influxdb_batch_lines_count", &[]),
];

struct View<'a> {
    samples: &'a [Arc<Snapshot>],
    rules: &'a [Rule],
}

const REQUESTS: &str = "livegames_http_requests_total";
const HTTP_SECONDS: &str = "livegames_http_request_duration_seconds";
const DELIVERY: &str = "livegames_broadcast_latency_seconds";
const CACHE: &str = "livegames_scores_cache_total";
const EVICTIONS: &str = "livegames_scores_cache_evictions_total";
const REFUSED: &str = "livegames_scores_refused_total";
const WRITES: &str = "livegames_influxdb_writes_total";
const LINES: &str = "livegames_influxdb_lines_total";
const WRITE_SECONDS: &str = "livegames_influxdb_write_seconds";
const BATCH: &str = "livegames_influxdb_batch_lines";

impl<'a> View<'a> {
    fn now(&self) -> &Snapshot {
        self.samples
            .last()
            .expect("the view always has its fresh snapshot")
    }

    /// The latest snapshot at least `back` before `at` (or the oldest kept).
    fn before(&self, at: usize, back: Duration) -> &Snapshot {
        let end = self.samples[at].at;
        self.samples[..at]
            .iter()
            .rev()
            .find(|s| end.duration_since(s.at) >= back)
            .or(self.samples.first())
            .expect("at least one snapshot")
    }

    /// How much counter `name{labels}` grew over `back`, ending at sample `at`.
    fn grew(&self, at: usize, back: Duration, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let before = self.before(at, back);
        increase(self.samples[at].sum(name, labels), before.sum(name, labels))
    }

    /// Per second, over `back`.
    fn rate(&self, at: usize, back: Duration, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let seconds = self.samples[at]
            .at
            .duration_since(self.before(at, back).at)
            .as_secs_f64();
        let grew = self.grew(at, back, name, labels)?;
        (seconds > 0.0).then(|| grew / seconds)
    }

    /// `part` of `whole` over `back`; None when `whole` did not grow.
    fn share(
        &self,
        at: usize,
        back: Duration,
        part: (&str, &[(&str, &str)]),
        whole: (&str, &[(&str, &str)]),
    ) -> Option<f64> {
        let whole = self.grew(at, back, whole.0, whole.1)?;
        let part = self.grew(at, back, part.0, part.1).unwrap_or(0.0);
        (whole > 0.0).then(|| part / whole)
    }

    /// The share of HTTP requests answered 5xx over `back`; None with no requests.
    fn error_share(&self, at: usize, back: Duration) -> Option<f64> {
        let whole = self.grew(at, back, REQUESTS, &[])?;
        let statuses: std::collections::BTreeSet<String> = self.samples[at]
            .by_label(REQUESTS, "status")
            .into_iter()
            .map(|(status, _)| status)
            .filter(|status| status.starts_with('5'))
            .collect();
        let failed: f64 = statuses
            .iter()
            .map(|status| {
                self.grew(at, back, REQUESTS, &[("status", status)])
                    .unwrap_or(0.0)
            })
            .fold(0.0, |total, n| total + n);
        (whole > 0.0).then(|| failed / whole)
    }

    fn p99(&self, at: usize, back: Duration, histogram: &str) -> Option<f64> {
        let now = self.samples[at].buckets(histogram, &[]);
        let before = self.before(at, back).buckets(histogram, &[]);
        quantile(0.99, &now, &before)
    }

    /// A figure computed at every sample after the first, as a series.
    fn over_time(&self, f: impl Fn(usize) -> Option<f64>) -> Vec<(i64, Option<f64>)> {
        (1..self.samples.len())
            .map(|i| (self.samples[i].at_ms, f(i)))
            .collect()
    }

    fn last(&self) -> usize {
        self.samples.len() - 1
    }

    fn range_of(&self, alert: &str, otherwise: Duration) -> Duration {
        self.rules
            .iter()
            .find(|r| r.name == alert)
            .and_then(|r| r.range)
            .unwrap_or(otherwise)
    }

    fn service(&self) -> Value {
        let n = self.last();
        let errors = self.range_of("HighErrorRate", Duration::from_secs(300));
        let error_share = |i| self.error_share(i, errors);
        let now = self.now();
        json!({
            "id": "service", "title": "Service health",
            "figures": [
                figure("uptime", "Uptime", now.sum("livegames_uptime_seconds", &[]), "s",
                    "How long this server has been running (a restart sets it back to 0)."),
                figure("requests", "Requests", self.rate(n, RECENT, REQUESTS, &[]), "/s",
                    "HTTP requests answered per second over the last minute (WebSocket upgrades count once)."),
                figure("error_rate", "Errors (5xx)", error_share(n), "ratio",
                    "Share of HTTP requests answered 5xx over the HighErrorRate alert's range; empty when there were no requests."),
                figure("response_p99", "Response p99", self.p99(n, errors, HTTP_SECONDS), "s",
                    "99th percentile time to answer an HTTP request (to the response head), all routes."),
                figure("ws_connections", "WebSocket clients", now.sum("livegames_ws_connections", &[]), "",
                    "Open WebSocket connections now."),
                figure("delivery_p99", "Delivery p99", self.p99(n, self.range_of("DeliveryP99AboveBudget", Duration::from_secs(300)), DELIVERY), "s",
                    "99th percentile time from serializing a live frame to handing it to a client socket."),
            ],
            "series": [
                series("requests", "requests/s", "/s", self.over_time(|i| self.rate(i, Duration::ZERO, REQUESTS, &[]))),
                series("error_rate", "5xx share", "ratio", self.over_time(error_share)),
                series("response_p99", "response p99", "s", self.over_time(|i| self.p99(i, errors, HTTP_SECONDS))),
            ],
        })
    }

    fn api(&self) -> Value {
        let now = self.now();
        let day = [("window", "day")];
        let minute = [("window", "minute")];
        // Before the first request the quota is unknown (its gauges read 0): not 0 left.
        let known = |s: &Snapshot, name: &str, window: &[(&str, &str)]| {
            let limit = s.sum("livegames_apisports_quota_limit", window)?;
            (limit > 0.0).then(|| s.sum(name, window)).flatten()
        };
        let hits = |s: &Snapshot| {
            let limited = s.sum(REFUSED, &[("code", "rate_limited")])?;
            Some(limited + s.sum(REFUSED, &[("code", "quota_exhausted")])?)
        };
        json!({
            "id": "api", "title": "API usage",
            "figures": [
                figure("requests_today", "Requests today", known(now, "livegames_apisports_quota_used", &day), "",
                    "API-SPORTS requests used today (UTC), as API-SPORTS reports it when it does."),
                figure("quota_remaining", "Quota left today", known(now, "livegames_apisports_quota_remaining", &day), "",
                    "API-SPORTS requests left today; at 0 the scores endpoints answer 503 quota_exhausted until 00:00 UTC."),
                figure("quota_limit", "Daily quota", known(now, "livegames_apisports_quota_limit", &day), "",
                    "API-SPORTS requests allowed per day (the plan's, or --apisports-daily-quota)."),
                figure("minute_remaining", "Left this minute", known(now, "livegames_apisports_quota_remaining", &minute), "",
                    "API-SPORTS requests left in this minute (the client-side limit)."),
                figure("rate_limit_hits", "Rate-limit hits", hits(now), "",
                    "Scores requests answered 503 because a quota was spent (rate_limited, quota_exhausted), since the start."),
            ],
            "series": [
                series("quota_remaining", "quota left today", "", self.over_time(|i| known(&self.samples[i], "livegames_apisports_quota_remaining", &day))),
                series("rate_limit_hits", "rate-limit hits", "", self.over_time(|i| hits(&self.samples[i]))),
            ],
        })
    }

    fn cache(&self) -> Value {
        let n = self.last();
        let now = self.now();
        let range = self.range_of("ScoresCacheHitRateLow", Duration::from_secs(900));
        let hit_ratio = |i| self.share(i, range, (CACHE, &[("result", "hit")]), (CACHE, &[]));
        json!({
            "id": "cache", "title": "Scores cache",
            "figures": [
                figure("hits", "Hits", now.sum(CACHE, &[("result", "hit")]), "",
                    "Scores requests answered from the cache, since the start."),
                figure("misses", "Misses", now.sum(CACHE, &[("result", "miss")]), "",
                    "Scores requests that had to ask API-SPORTS, since the start."),
                figure("hit_ratio", "Hit ratio", hit_ratio(n), "ratio",
                    "Hits among lookups over the ScoresCacheHitRateLow alert's range; empty with no lookups."),
                figure("evictions", "Evictions", now.sum(EVICTIONS, &[]), "",
                    "Entries removed: found past --scores-ttl, or cleared through the admin API."),
                figure("eviction_rate", "Eviction rate", self.rate(n, RECENT, EVICTIONS, &[]).map(|r| r * 60.0), "/min",
                    "Entries removed per minute over the last minute."),
            ],
            "series": [
                series("hits", "hits/s", "/s", self.over_time(|i| self.rate(i, Duration::ZERO, CACHE, &[("result", "hit")]))),
                series("misses", "misses/s", "/s", self.over_time(|i| self.rate(i, Duration::ZERO, CACHE, &[("result", "miss")]))),
                series("evictions", "evictions/s", "/s", self.over_time(|i| self.rate(i, Duration::ZERO, EVICTIONS, &[]))),
            ],
        })
    }

    fn influxdb(&self) -> Value {
        let n = self.last();
        let now = self.now();
        let range = self.range_of("InfluxDBWriteFailures", Duration::from_secs(300));
        let success = |i| self.share(i, range, (WRITES, &[("result", "ok")]), (WRITES, &[]));
        let batch = |i| {
            let lines = self.grew(i, range, &format!("{BATCH}_sum"), &[])?;
            let writes = self.grew(i, range, &format!("{BATCH}_count"), &[])?;
            (writes > 0.0).then(|| lines / writes)
        };
        json!({
            "id": "influxdb", "title": "InfluxDB writes",
            "figures": [
                figure("success_rate", "Write success", success(n), "ratio",
                    "Write requests InfluxDB accepted, of all made, over the InfluxDBWriteFailures alert's range; empty with no writes (or no --influxdb)."),
                figure("batch_lines", "Batch size", batch(n), "lines",
                    "Mean lines per accepted write over the same range."),
                figure("write_p99", "Write latency p99", self.p99(n, range, WRITE_SECONDS), "s",
                    "99th percentile time of a write request, answered or failed."),
                figure("queued", "Queued lines", now.sum("livegames_influxdb_queue_lines", &[]), "",
                    "Lines waiting to be written; past --influxdb-queue the oldest are dropped."),
                figure("dropped", "Dropped lines", now.sum(LINES, &[("result", "dropped")]), "",
                    "Lines that will never be written (queue full, refused, or unsent at shutdown), since the start."),
            ],
            "series": [
                series("writes_ok", "writes ok/s", "/s", self.over_time(|i| self.rate(i, Duration::ZERO, WRITES, &[("result", "ok")]))),
                series("writes_failed", "writes failed/s", "/s", self.over_time(|i| self.rate(i, Duration::ZERO, WRITES, &[("result", "failed")]))),
                series("write_p99", "write p99", "s", self.over_time(|i| self.p99(i, range, WRITE_SECONDS))),
            ],
        })
    }

    fn circuits(&self) -> Value {
        let now = self.now();
        let mut figures = Vec::new();
        let mut lines = Vec::new();
        let mut leagues = now.by_label("livegames_circuit_state", "league");
        leagues.sort_by(|a, b| a.0.cmp(&b.0));
        for (league, state) in leagues {
            let of = [("league", league.as_str())];
            let shown = match state as i64 {
                0 => "closed",
                1 => "half_open",
                _ => "open",
            };
            let mut state_figure = figure(
                &format!("{league}_state"),
                &format!("{} circuit", league.to_uppercase()),
                Some(state),
                "state",
                "0 closed (calls go through), 1 half-open (one probe), 2 open (scores answer 503 circuit_open).",
            );
            state_figure["text"] = json!(shown);
            figures.push(state_figure);
            figures.push(figure(
                &format!("{league}_failures"),
                &format!("{} failures in a row", league.to_uppercase()),
                now.sum("livegames_circuit_failures", &of),
                "",
                "API-SPORTS failures in a row; the circuit opens at --apisports-breaker-failures.",
            ));
            figures.push(figure(
                &format!("{league}_opens"),
                &format!("{} times opened", league.to_uppercase()),
                now.sum("livegames_circuit_opens_total", &of),
                "",
                "Times the circuit opened since the start.",
            ));
            figures.push(figure(&format!("{league}_recovery"), &format!("{} last recovery", league.to_uppercase()),
                now.sum("livegames_circuit_recovery_seconds", &of), "s",
                "How long the last open spell lasted, from opening to the probe that closed it; empty until one closed."));
            let league_name = league.clone();
            lines.push(series(
                &format!("{league}_state"),
                &format!("{} state", league.to_uppercase()),
                "state",
                self.over_time(move |i| {
                    self.samples[i].sum(
                        "livegames_circuit_state",
                        &[("league", league_name.as_str())],
                    )
                }),
            ));
        }
        json!({"id": "circuit", "title": "Circuit breakers", "figures": figures, "series": lines})
    }

    /// Each rule: firing (its condition held for its `for:`), pending (holds, not yet
    /// long enough), ok, or not measured (nothing to judge yet).
    fn alerts(&self) -> Vec<Value> {
        self.rules
            .iter()
            .map(|rule| {
                let judged: Vec<(Duration, Option<(bool, f64)>)> = (0..self.samples.len())
                    .map(|i| {
                        (
                            self.now().at.duration_since(self.samples[i].at),
                            self.condition(rule, i),
                        )
                    })
                    .collect();
                let (state, observed) = match judged.last().and_then(|(_, j)| *j) {
                    None => ("not_measured", None),
                    Some((false, v)) => ("ok", Some(v)),
                    Some((true, v)) => {
                        let held = judged
                            .iter()
                            .rev()
                            .take_while(|(_, j)| matches!(j, Some((true, _))))
                            .last()
                            .map_or(Duration::ZERO, |(ago, _)| *ago);
                        (
                            if held >= rule.hold {
                                "firing"
                            } else {
                                "pending"
                            },
                            Some(v),
                        )
                    }
                };
                json!({
                    "name": rule.name, "severity": rule.severity, "state": state,
                    "observed": observed.filter(|v| v.is_finite()),
                    "threshold": rule.thresholds.first(),
                    "for_s": rule.hold.as_secs(),
                    "summary": rule.summary,
                })
            })
            .collect()
    }

    /// The rule's condition at sample `i`, with the value it compared; None when it
    /// cannot be judged from serve's own figures.
    fn condition(&self, rule: &Rule, i: usize) -> Option<(bool, f64)> {
        let s = &self.samples[i];
        let t = |k: usize| rule.thresholds.get(k).copied();
        let range = rule.range.unwrap_or(Duration::from_secs(300));
        match rule.name.as_str() {
            // This page answering is the server up.
            "LivegamesDown" => Some((false, 1.0)),
            "LivegamesUnhealthy" => {
                let worst = ["espn", "kalshi"]
                    .iter()
                    .filter_map(|src| s.max("livegames_source_state", &[("source", src)]))
                    .fold(None, |a: Option<f64>, v| Some(a.map_or(v, |a| a.max(v))))?;
                Some((worst == t(0)?, worst))
            }
            "ApiSportsQuotaHigh" => {
                let used = s.sum("livegames_apisports_quota_used", &[("window", "day")])?;
                let limit = s.sum("livegames_apisports_quota_limit", &[("window", "day")])?;
                let share = (limit > 0.0).then(|| used / limit)?;
                Some((share > t(0)?, share))
            }
            "HighErrorRate" => {
                let share = self.error_share(i, range)?;
                Some((share > t(0)?, share))
            }
            "CircuitBreakerOpen" => {
                let worst = s.max("livegames_circuit_state", &[])?;
                Some((worst == t(0)?, worst))
            }
            "InfluxDBWriteFailures" => {
                // Without a store (or before its first write) there is nothing to judge.
                let writes = s.sum(WRITES, &[])? + s.sum(LINES, &[("result", "dropped")])?;
                if writes == 0.0 {
                    return None;
                }
                let failed = self.grew(i, range, WRITES, &[("result", "failed")])?;
                let dropped = self
                    .grew(i, range, LINES, &[("result", "dropped")])
                    .unwrap_or(0.0);
                Some((
                    failed > t(0)? || dropped > t(1).unwrap_or(0.0),
                    failed + dropped,
                ))
            }
            "ScoresCacheHitRateLow" => {
                let ratio = self.share(i, range, (CACHE, &[("result", "hit")]), (CACHE, &[]))?;
                let busy = self.rate(i, range, CACHE, &[])?;
                Some((ratio < t(0)? && busy > t(1).unwrap_or(0.0), ratio))
            }
            "LiveGameSilent" => {
                let live: Vec<String> = s
                    .by_label("livegames_game_live", "game")
                    .into_iter()
                    .filter(|(_, v)| Some(*v) == t(1))
                    .map(|(game, _)| game)
                    .collect();
                let worst = live
                    .iter()
                    .filter_map(|g| s.sum("livegames_game_frame_age_seconds", &[("game", g)]))
                    .fold(0.0, f64::max);
                Some((worst > t(0)?, worst))
            }
            "SlowConsumerClosesRising" => {
                let closes = self.grew(i, range, "livegames_ws_slow_consumer_closes_total", &[])?;
                Some((closes > t(0)?, closes))
            }
            "DeliveryP99AboveBudget" => {
                let p99 = self.p99(i, range, DELIVERY)?;
                Some((p99 > t(0)?, p99))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
