//! HTTP load (`livegames load --http`): N users each GET the REST paths in turn,
//! driven by goose, reported in the same format as the WebSocket load.
//!
//! goose is embedded with its controllers off and its configuration built here (not
//! from this process's arguments). It times requests in microsecond buckets 0.78%
//! wide; those are folded into our HdrHistogram, so the `http` figures carry that
//! precision, not HdrHistogram's.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use goose::GooseAttack;
use goose::config::GooseConfiguration;
use goose::goose::{Scenario, Transaction, TransactionFunction};
use serde::Serialize;

use crate::client::{ConnectOptions, http};
use crate::load::measure::recorder::{Distribution, Recorder};

#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// `http://host:port`.
    pub base_url: String,
    pub paths: Vec<String>,
    pub users: usize,
    pub duration: Duration,
    pub ramp: Duration,
    pub timeout: Duration,
    /// Headers and TLS trust of every request (each user's client is built from them).
    pub connect: ConnectOptions,
}

/// One path's figures.
#[derive(Debug, Clone, Serialize)]
pub struct PathStats {
    pub requests: u64,
    pub failures: u64,
    pub p50_us: f64,
    pub p95_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
    pub status_codes: BTreeMap<u16, u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HttpTotals {
    pub users: usize,
    pub requests: u64,
    pub failures: u64,
    pub requests_per_s: f64,
    pub by_path: BTreeMap<String, PathStats>,
}

/// Gives a user the client of our options (headers, TLS trust) before its first
/// request (a goose on-start transaction).
fn use_our_client(options: Arc<ConnectOptions>) -> TransactionFunction {
    Arc::new(move |user| {
        let options = options.clone();
        Box::pin(async move {
            user.set_client_builder(http::builder(&options)).await?;
            Ok(())
        })
    })
}

/// GET one path (a goose transaction).
fn get_path(path: Arc<str>) -> TransactionFunction {
    Arc::new(move |user| {
        let path = path.clone();
        Box::pin(async move {
            let _response = user.get(&path).await?;
            Ok(())
        })
    })
}

/// goose could not run the load (its configuration, or its run).
#[derive(Debug, thiserror::Error)]
#[error("goose: {0}")]
pub struct HttpLoadError(#[from] goose::GooseError);

/// Runs the HTTP load; the latencies land in `recorder` as the `http` distribution.
pub async fn run(
    config: &HttpConfig,
    recorder: &mut Recorder,
) -> Result<HttpTotals, HttpLoadError> {
    let options = Arc::new(ConnectOptions {
        connect_timeout: config.timeout,
        ..config.connect.clone()
    });
    let mut scenario = Scenario::new("livegames http")
        .register_transaction(Transaction::new(use_our_client(options)).set_on_start());
    for path in &config.paths {
        scenario = scenario.register_transaction(
            Transaction::new(get_path(Arc::from(path.as_str()))).set_name(path),
        );
    }
    let attack = GooseAttack::initialize_with_config(goose_configuration(config))?
        .register_scenario(scenario);
    let metrics = attack.execute().await?;
    let mut by_path = BTreeMap::new();
    let (mut requests, mut failures) = (0u64, 0u64);
    for aggregate in metrics.requests.values() {
        let (stats, latencies) = path_stats(aggregate);
        requests += stats.requests;
        failures += stats.failures;
        by_path.insert(format!("{} {}", aggregate.method, aggregate.path), stats);
        recorder.add(&latencies);
    }
    let seconds = (metrics.duration as f64)
        .max(config.duration.as_secs_f64())
        .max(1e-9);
    Ok(HttpTotals {
        users: config.users,
        requests,
        failures,
        requests_per_s: requests as f64 / seconds,
        by_path,
    })
}

/// goose's configuration for `config`, with its own output and controllers off.
fn goose_configuration(config: &HttpConfig) -> GooseConfiguration {
    let mut goose = GooseConfiguration::default();
    goose.host = Some(config.base_url.clone());
    goose.users = Some(config.users);
    let ramp_s = config.ramp.as_secs_f64();
    goose.increase_rate = Some(if ramp_s > 0.0 {
        format!("{}", (config.users as f64 / ramp_s).max(0.1))
    } else {
        config.users.to_string()
    });
    goose.run_time = Some(config.duration.as_secs().max(1).to_string());
    goose.timeout = Some(config.timeout.as_secs().max(1).to_string());
    goose.no_telnet = true;
    goose.no_print_metrics = true;
    goose.no_error_summary = true;
    goose.quiet = 1;
    goose
}

/// One path's figures, and its latencies (from goose's microsecond buckets).
fn path_stats(aggregate: &goose::metrics::GooseRequestMetricAggregate) -> (PathStats, Recorder) {
    let mut one = Recorder::new();
    for (bucket_us, count) in aggregate.raw_data.times_us.iter() {
        one.latency_n(Distribution::Http, *bucket_us as i64, *count as u64);
    }
    let h = one.latencies.get(Distribution::Http);
    let q = |f: f64| h.value_at_quantile(f) as f64;
    let stats = PathStats {
        requests: (aggregate.success_count + aggregate.fail_count) as u64,
        failures: aggregate.fail_count as u64,
        p50_us: q(0.5),
        p95_us: q(0.95),
        p99_us: q(0.99),
        max_us: h.max() as f64,
        status_codes: aggregate
            .status_code_counts
            .iter()
            .map(|(k, v)| (*k, *v as u64))
            .collect(),
    };
    (stats, one)
}
