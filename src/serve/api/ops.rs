//! `GET /api/ops`: the ops view ([`crate::serve::observe::ops`]) as JSON, and the
//! task that samples serve's own metrics for it every `--ops-every`.

use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::probes::record_scrape_time_figures;
use crate::serve::observe::exposition::Snapshot;
use crate::serve::state::AppState;

/// Every `--ops-every` until `stop`: one snapshot of the metrics into the ring.
pub async fn sample_every(state: AppState, every: Duration, stop: CancellationToken) {
    // The CLI refuses less than 100 ms; a library caller's zero must not spin.
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => state.0.ops.record(snapshot(&state)),
        }
    }
}

/// The metrics now, as Prometheus would scrape them.
fn snapshot(state: &AppState) -> Snapshot {
    record_scrape_time_figures(state);
    let text = state.0.metrics.render();
    Snapshot::parse(&text, crate::clock::unix_micros() / 1_000, Instant::now())
}

/// `GET /api/ops`.
pub async fn view(State(state): State<AppState>) -> Json<Value> {
    let now = snapshot(&state);
    Json(state.0.ops.view(now))
}
