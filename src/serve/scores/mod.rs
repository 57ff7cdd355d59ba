//! `GET /api/nfl/scores` and `GET /api/nhl/scores`: API-SPORTS behind a TTL cache, a
//! client-side quota (per day and per minute) and a circuit breaker per league.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::error::ApiError;
use super::observe::{CacheLabel, CodeLabel, LeagueLabel, Metrics, SourceEntry};
use super::store::Store;
use crate::contract::{League, ScoresBody, Source, SourceHealth};
use crate::feeds::FeedError;
use crate::feeds::apisports::ApiSportsClient;
use crate::feeds::quota::{QuotaError, QuotaLimiter};

pub mod breaker;
pub mod cache;

pub use breaker::{Change, CircuitBreaker, CircuitState};
use cache::TtlCache;

#[derive(Debug, Clone, Copy)]
pub struct ScoresConfig {
    pub ttl: Duration,
    pub daily_quota: u32,
    pub per_minute_quota: u32,
    pub breaker_failures: u32,
    pub breaker_open_for: Duration,
}

struct Guarded {
    cache: TtlCache<League, ScoresBody>,
    quota: QuotaLimiter,
    breakers: HashMap<League, CircuitBreaker>,
    last_error: Option<String>,
}

/// How a call to API-SPORTS went, for its circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Games came back.
    Answered,
    /// It answered, but refused: quota spent, outside the plan, a bad key. Calling
    /// again will not fix it; it is not an outage either.
    Refused,
    /// It failed: unreachable, timed out, 5xx, malformed, rate limited.
    Failed,
}

/// The answer to give a client for a failed call, and how the call counts.
fn refusal(league: League, e: FeedError, now_s: u64) -> (Outcome, ApiError) {
    let name = league_name(league);
    match e {
        FeedError::QuotaSpent(why) => {
            let resets = QuotaLimiter::daily_reset_in(now_s);
            let answer = ApiError::Unavailable {
                code: "quota_exhausted",
                message: format!("API-SPORTS: {why} (it resets at 00:00 UTC, in {resets}s)"),
                retry_after_s: Some(resets),
            };
            (Outcome::Refused, answer)
        }
        FeedError::Plan(why) => {
            let answer = ApiError::Unavailable {
                code: "plan_unavailable",
                message: format!("API-SPORTS {name}: {why}"),
                retry_after_s: None,
            };
            (Outcome::Refused, answer)
        }
        FeedError::Refused(why) => {
            let answer = ApiError::Unavailable {
                code: "bad_api_key",
                message: why,
                retry_after_s: None,
            };
            (Outcome::Refused, answer)
        }
        FeedError::RateLimited => {
            let answer = ApiError::Unavailable {
                code: "upstream_rate_limited",
                message: "API-SPORTS refused the request: its per-minute rate limit".into(),
                retry_after_s: Some(60),
            };
            (Outcome::Failed, answer)
        }
        other => (
            Outcome::Failed,
            ApiError::BadGateway(format!("API-SPORTS {name}: {other}")),
        ),
    }
}

pub struct Scores {
    client: ApiSportsClient,
    guarded: Mutex<Guarded>,
    /// One upstream fetch per league at a time; waiters then find the cache filled.
    fetching: HashMap<League, tokio::sync::Mutex<()>>,
    metrics: Arc<Metrics>,
    store: Store,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    /// From the cache, fetched this long ago.
    Hit {
        age: Duration,
    },
    Miss,
}

impl Scores {
    pub fn new(
        client: ApiSportsClient,
        config: ScoresConfig,
        metrics: Arc<Metrics>,
        store: Store,
    ) -> Self {
        let leagues = [League::Nfl, League::Nhl];
        let breakers = leagues
            .iter()
            .map(|l| {
                (
                    *l,
                    CircuitBreaker::new(config.breaker_failures, config.breaker_open_for),
                )
            })
            .collect();
        Self {
            client,
            guarded: Mutex::new(Guarded {
                cache: TtlCache::new(config.ttl),
                quota: QuotaLimiter::new(config.daily_quota, config.per_minute_quota),
                breakers,
                last_error: None,
            }),
            fetching: leagues
                .iter()
                .map(|l| (*l, tokio::sync::Mutex::new(())))
                .collect(),
            metrics,
            store,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Guarded> {
        self.guarded.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Empties the cache (the admin API): the next request per league goes upstream.
    pub fn clear_cache(&self) -> usize {
        let cleared = self.lock().cache.clear();
        for league in &cleared {
            self.count_evictions(*league, "cleared", 1);
        }
        cleared.len()
    }

    fn cached(&self, league: League) -> Option<(ScoresBody, CacheStatus)> {
        let mut g = self.lock();
        let now = Instant::now();
        if g.cache.remove_expired(&league, now) {
            self.count_evictions(league, "expired", 1);
        }
        g.cache
            .get_aged(&league, now)
            .map(|(body, age)| (body, CacheStatus::Hit { age }))
    }

    fn count_evictions(&self, league: League, reason: &str, n: u64) {
        let label = CacheLabel {
            league: league_name(league).into(),
            result: reason.into(),
        };
        self.metrics
            .scores_cache_evictions
            .get_or_create(&label)
            .inc_by(n);
    }

    fn count_cache(&self, league: League, status: CacheStatus) {
        let result = match status {
            CacheStatus::Hit { .. } => "hit",
            CacheStatus::Miss => "miss",
        };
        self.metrics
            .scores_cache
            .get_or_create(&CacheLabel {
                league: league_name(league).into(),
                result: result.into(),
            })
            .inc();
    }

    fn record_quota(&self, quota: &QuotaLimiter) {
        let (per_day, per_minute) = quota.limits();
        self.metrics
            .set_quota("day", per_day, quota.remaining_today());
        self.metrics
            .set_quota("minute", per_minute, quota.remaining_this_minute());
    }

    fn record_circuit(&self, league: League, state: CircuitState) {
        let v = match state {
            CircuitState::Closed => 0,
            CircuitState::HalfOpen => 1,
            CircuitState::Open => 2,
        };
        self.metrics
            .circuit_state
            .get_or_create(&LeagueLabel {
                league: league_name(league).into(),
            })
            .set(v);
    }

    /// The league's scores, from the cache or API-SPORTS; a 503 answer is counted
    /// by its code.
    pub async fn get(&self, league: League) -> Result<(ScoresBody, CacheStatus), ApiError> {
        let answer = self.fetch(league).await;
        if let Err(ApiError::Unavailable { code, .. }) = &answer {
            let label = CodeLabel {
                code: (*code).into(),
            };
            self.metrics.scores_refused.get_or_create(&label).inc();
        }
        answer
    }

    async fn fetch(&self, league: League) -> Result<(ScoresBody, CacheStatus), ApiError> {
        if !self.client.has_key() {
            return Err(ApiError::Unavailable {
                code: "no_api_key",
                message: "no API-SPORTS key is configured; set APISPORTS_KEY (or --apisports-key)"
                    .into(),
                retry_after_s: None,
            });
        }
        let cached = self.cached(league);
        if let Some((body, hit)) = cached {
            self.count_cache(league, hit);
            return Ok((body, hit));
        }
        let _one_at_a_time = self.fetching[&league].lock().await;
        self.admit(league)?;
        // Another request may have filled the cache while this one waited its turn.
        let cached = self.cached(league);
        if let Some((body, hit)) = cached {
            self.release_probe(league);
            self.count_cache(league, hit);
            return Ok((body, hit));
        }
        self.count_cache(league, CacheStatus::Miss);
        let fetched = self.client.games(league).await;
        let now_s = crate::clock::unix_seconds();
        let mut g = self.lock();
        if let Some(remaining) = fetched.daily_remaining {
            g.quota.observe_daily_remaining(now_s, remaining);
        }
        if let Some(remaining) = fetched.minute_remaining {
            g.quota.observe_minute_remaining(now_s, remaining);
        }
        if matches!(fetched.games, Err(FeedError::QuotaSpent(_))) {
            g.quota.observe_daily_spent(now_s);
        }
        self.record_quota(&g.quota);
        match fetched.games {
            Ok(games) => {
                self.settle(&mut g, league, Outcome::Answered);
                g.last_error = None;
                let body = ScoresBody {
                    league,
                    source: Source::Apisports,
                    games,
                };
                g.cache.put(league, body.clone(), Instant::now());
                drop(g);
                self.store.scores(&body);
                Ok((body, CacheStatus::Miss))
            }
            Err(e) => {
                g.last_error = Some(e.to_string());
                let (outcome, answer) = refusal(league, e, now_s);
                self.settle(&mut g, league, outcome);
                if outcome == Outcome::Failed {
                    self.metrics
                        .upstream_failures
                        .get_or_create(&super::observe::SourceLabel {
                            source: "apisports".into(),
                        })
                        .inc();
                }
                Err(answer)
            }
        }
    }

    /// Tells the league's circuit breaker how the call went: only a failure of the
    /// upstream counts against it; an answer that refuses (quota, plan, key) does not.
    fn settle(&self, g: &mut Guarded, league: League, outcome: Outcome) {
        let now = Instant::now();
        let breaker = g.breakers.get_mut(&league).expect("a breaker per league");
        let change = match outcome {
            Outcome::Answered => breaker.success(now),
            Outcome::Refused => {
                breaker.success_if_probe();
                Change::None
            }
            Outcome::Failed => breaker.failure(now),
        };
        let label = LeagueLabel {
            league: league_name(league).into(),
        };
        match change {
            Change::Opened => {
                self.metrics.circuit_opens.get_or_create(&label).inc();
            }
            Change::Recovered(took) => {
                let recovery = self.metrics.circuit_recovery.get_or_create(&label);
                recovery.set(took.as_secs_f64());
            }
            Change::None => {}
        }
        let failures = breaker.failures().into();
        self.metrics
            .circuit_failures
            .get_or_create(&label)
            .set(failures);
        self.record_circuit(league, breaker.state(now));
    }

    /// Checks the circuit and takes one request from the quota.
    fn admit(&self, league: League) -> Result<(), ApiError> {
        let mut g = self.lock();
        let now = Instant::now();
        let breaker = g.breakers.get_mut(&league).expect("a breaker per league");
        if let Err(wait) = breaker.allow(now) {
            self.record_circuit(league, CircuitState::Open);
            return Err(ApiError::Unavailable {
                code: "circuit_open",
                message: format!(
                    "API-SPORTS failed repeatedly; not calling it for another {}s",
                    wait.as_secs().max(1)
                ),
                retry_after_s: Some(wait.as_secs().max(1)),
            });
        }
        let acquired = g.quota.try_acquire(crate::clock::unix_seconds());
        self.record_quota(&g.quota);
        if let Err(e) = acquired {
            g.breakers
                .get_mut(&league)
                .expect("a breaker per league")
                .success_if_probe();
            let (code, resets) = match e {
                QuotaError::DailySpent { resets_in_s } => ("quota_exhausted", resets_in_s),
                QuotaError::MinuteSpent { resets_in_s } => ("rate_limited", resets_in_s),
            };
            return Err(ApiError::Unavailable {
                code,
                message: format!("the API-SPORTS request quota is spent; it resets in {resets}s"),
                retry_after_s: Some(resets),
            });
        }
        Ok(())
    }

    /// A half-open probe that found the cache filled made no call: let another probe go.
    fn release_probe(&self, league: League) {
        self.lock()
            .breakers
            .get_mut(&league)
            .expect("a breaker per league")
            .success_if_probe();
    }

    /// The health of API-SPORTS for `/health`: the worse of the two leagues' circuits.
    pub fn health(&self) -> SourceEntry {
        if !self.client.has_key() {
            return SourceEntry {
                state: SourceHealth::Down,
                detail: Some("no API key configured".into()),
                last_ok: None,
            };
        }
        let g = self.lock();
        let now = Instant::now();
        let worst = g
            .breakers
            .values()
            .map(|b| b.state(now))
            .max_by_key(|s| match s {
                CircuitState::Closed => 0,
                CircuitState::HalfOpen => 1,
                CircuitState::Open => 2,
            });
        let state = match worst {
            Some(CircuitState::Open) => SourceHealth::Down,
            Some(CircuitState::HalfOpen) => SourceHealth::Stale,
            _ => SourceHealth::Ok,
        };
        let detail = match state {
            SourceHealth::Ok => None,
            _ => Some(format!(
                "circuit {}: {}",
                worst.map(CircuitState::as_str).unwrap_or(""),
                g.last_error.clone().unwrap_or_default()
            )),
        };
        SourceEntry {
            state,
            detail,
            last_ok: None,
        }
    }
}

fn league_name(league: League) -> &'static str {
    match league {
        League::Nba => "nba",
        League::Nfl => "nfl",
        League::Nhl => "nhl",
    }
}
