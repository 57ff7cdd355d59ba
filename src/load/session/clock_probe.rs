//! A worker's clock against the server's, measured before the run (while it waits
//! for `--start-at`): a few of our contract's pings on one connection, NTP's rule on
//! the tightest exchange (offset = server ts - midpoint, known to within half the
//! round trip). Workers of a sharded run each record theirs, so a merged run's
//! delivery latencies can be read against every worker's clock.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use url::Url;

use crate::client::{ConnectOptions, ws};

/// Pings in one probe; the tightest round trip wins.
const PROBE_PINGS: u64 = 5;
/// The whole probe gives up after this long: a server that does not speak our
/// contract never answers, and the run must not wait on it.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Read from a pong: its id and the server's clock.
#[derive(serde::Deserialize)]
struct Pong {
    #[serde(rename = "type")]
    kind: Option<String>,
    id: Option<u64>,
    ts: Option<i64>,
}

/// (round trip µs, server clock minus ours µs) of the tightest exchange, or None
/// when the server did not answer (or not with a `ts`) within [`PROBE_TIMEOUT`].
pub async fn probe(url: &Url, options: &ConnectOptions) -> Option<(u64, i64)> {
    tokio::time::timeout(PROBE_TIMEOUT, exchanges(url, options))
        .await
        .ok()
        .flatten()
}

async fn exchanges(url: &Url, options: &ConnectOptions) -> Option<(u64, i64)> {
    let mut socket = ws::connect(url, options).await.ok()?.socket;
    let mut best: Option<(u64, i64)> = None;
    for id in 1..=PROBE_PINGS {
        let sent_us = crate::clock::unix_micros();
        let sent = Instant::now();
        let ping = format!(r#"{{"type":"ping","id":{id}}}"#);
        socket.send(Message::Text(ping.into())).await.ok()?;
        let server_ts = pong_ts(&mut socket, id).await?;
        let rtt = sent.elapsed().as_micros() as u64;
        let offset = server_ts - (sent_us + rtt as i64 / 2);
        if best.is_none_or(|(b, _)| rtt < b) {
            best = Some((rtt, offset));
        }
    }
    let _ = socket.close(None).await;
    best
}

/// Reads frames (snapshots, updates) until the pong numbered `id`; its `ts`.
async fn pong_ts(socket: &mut ws::Socket, id: u64) -> Option<i64> {
    while let Some(message) = socket.next().await {
        let Ok(Message::Text(text)) = message else {
            continue;
        };
        let Ok(pong) = serde_json::from_str::<Pong>(text.as_str()) else {
            continue;
        };
        if pong.kind.as_deref() == Some("pong") && pong.id == Some(id) {
            return pong.ts;
        }
    }
    None
}
