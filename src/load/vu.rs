//! One virtual user: connect, read every frame (latency, seq, errors), send pings on
//! an open-model schedule, and reconnect with lossless resume when asked to.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use super::budget::Distribution;
use super::recorder::Recorder;
use crate::client::ws::{self, Socket};
use crate::contract::FrameType;
use crate::contract::rules::{SeqEvent, SeqTracker};
use crate::retry::Backoff;

/// Where a frame's send time is and in what unit (for servers other than ours).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsSpec {
    /// JSON pointer, e.g. `/ts` or `/data/time`.
    pub pointer: String,
    pub unit: TsUnit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TsUnit {
    Us,
    Ms,
    S,
    Rfc3339,
}

impl TsSpec {
    fn is_contract_default(&self) -> bool {
        self.pointer == "/ts" && self.unit == TsUnit::Us
    }
}

#[derive(Debug, Clone)]
pub struct VuConfig {
    pub connect_timeout: Duration,
    /// No frame at all for this long ends the connection as a `timeout` error.
    pub idle_timeout: Duration,
    /// Client messages per second per connection (open model), or none.
    pub send_rate: Option<f64>,
    /// JSON body with `{id}` where the message number goes; default a contract ping.
    pub send_template: String,
    pub ts: TsSpec,
    /// Reconnect (with `?since=`) after a disconnect, with this backoff.
    pub reconnect: Option<Backoff>,
    /// Each connection closes itself after this long and resumes with `?since=`
    /// (clients that come and go, as on mobile networks); implies reconnecting.
    pub churn: Option<Duration>,
    /// WebSocket protocol Ping interval per connection (RTT any server answers), or none.
    pub ws_ping: Option<Duration>,
    pub read_buffer: usize,
}

pub const DEFAULT_PING: &str = r#"{"type":"ping","id":{id}}"#;

impl Default for VuConfig {
    /// Our contract's defaults: `ts` in µs, pings as the client frame, a 4 KiB read
    /// buffer, no client traffic, no reconnects.
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(30),
            send_rate: None,
            send_template: DEFAULT_PING.to_owned(),
            ts: TsSpec {
                pointer: "/ts".into(),
                unit: TsUnit::Us,
            },
            reconnect: None,
            churn: None,
            ws_ping: None,
            read_buffer: 4 * 1024,
        }
    }
}

/// Numbers every virtual user shares.
#[derive(Debug, Default)]
pub struct Gauges {
    pub open: AtomicU64,
    pub peak_open: AtomicU64,
    /// How many connections the run wants open.
    pub target: u64,
    /// When all of them were first open at once.
    pub all_open_at: std::sync::OnceLock<Instant>,
}

impl Gauges {
    pub fn new(target: u64) -> Self {
        Self {
            target,
            ..Self::default()
        }
    }

    fn opened(&self) {
        let now = self.open.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak_open.fetch_max(now, Ordering::Relaxed);
        if now >= self.target {
            let _ = self.all_open_at.set(Instant::now());
        }
    }

    fn closed(&self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }
}

fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// How a connection ended.
enum End {
    /// The run is over.
    Stopped,
    /// The server or the network ended it; `kind` names why (`close_4008`, `reset`, ...).
    Lost { kind: String },
    /// This user closed it on purpose (`churn`), to come back with `?since=`.
    Churned,
}

/// The fields of a frame the load generator reads; the rest is skipped, not built.
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(default)]
    seq: Number,
    #[serde(default)]
    ts: Number,
    #[serde(default)]
    id: Number,
    #[serde(default)]
    data: Option<DataHead>,
}

#[derive(Deserialize)]
struct DataHead {
    #[serde(default)]
    observed_at: Number,
}

/// A field that counts only when it is a number: a foreign server's `"id":"abc"` or
/// `"ts":"2024-..."` must not make the whole frame unreadable.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Number(Option<i64>);

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Number;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_u64<E>(self, v: u64) -> Result<Number, E> {
                Ok(Number(i64::try_from(v).ok()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Number, E> {
                Ok(Number(Some(v)))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Number, E> {
                Ok(Number(v.is_finite().then_some(v as i64)))
            }
            fn visit_str<E>(self, _: &str) -> Result<Number, E> {
                Ok(Number(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Number, E> {
                Ok(Number(None))
            }
            fn visit_unit<E>(self) -> Result<Number, E> {
                Ok(Number(None))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Number, A::Error> {
                while a.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(Number(None))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Number, A::Error> {
                while a
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(Number(None))
            }
        }
        d.deserialize_any(V)
    }
}

pub struct VirtualUser {
    pub url: String,
    pub config: Arc<VuConfig>,
    pub shard: Arc<Mutex<Recorder>>,
    pub gauges: Arc<Gauges>,
    pub stop: CancellationToken,
}

/// A client message awaiting its answer.
#[derive(Debug, Clone, Copy)]
struct Pending {
    id: u64,
    /// Its slot in the open-model schedule: RTT is measured from here.
    due: Instant,
    /// When it was really sent (Unix µs), for the clock-offset estimate.
    sent_us: i64,
}

/// State that lives across reconnects.
struct Session {
    last_seq: Option<u64>,
    disconnected_at: Option<Instant>,
    ping_id: u64,
}

impl VirtualUser {
    fn record<R>(&self, f: impl FnOnce(&mut Recorder) -> R) -> R {
        let mut shard = self.shard.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut shard)
    }

    pub async fn run(self) {
        let mut session = Session {
            last_seq: None,
            disconnected_at: None,
            ping_id: 0,
        };
        let mut backoff_wait = None;
        let mut first_attempt = true;
        while !self.stop.is_cancelled() {
            let url = match session.last_seq {
                Some(seq) if !first_attempt => ws::with_since(&self.url, seq),
                _ => self.url.clone(),
            };
            let reconnecting = !first_attempt;
            first_attempt = false;
            self.record(|r| {
                r.counters.connect_attempts += 1;
                if reconnecting {
                    r.counters.reconnect_attempts += 1;
                }
            });
            let attempt = tokio::select! {
                _ = self.stop.cancelled() => return,
                a = ws::connect(&url, self.config.connect_timeout, self.config.read_buffer) => a,
            };
            match attempt {
                Err(e) => self.record(|r| r.error(&e.kind())),
                Ok(connected) => {
                    backoff_wait = None;
                    self.record(|r| {
                        r.counters.connected += 1;
                        r.latency(
                            Distribution::Connect,
                            connected.connect_time.as_micros() as i64,
                        );
                    });
                    self.gauges.opened();
                    let end = self
                        .stream(connected.socket, &mut session, reconnecting)
                        .await;
                    self.gauges.closed();
                    match end {
                        End::Stopped => return,
                        End::Churned => {
                            session.disconnected_at = Some(Instant::now());
                            self.record(|r| r.counters.disconnects += 1);
                            continue;
                        }
                        End::Lost { kind } => {
                            session.disconnected_at = Some(Instant::now());
                            self.record(|r| {
                                r.counters.disconnects += 1;
                                r.error(&kind);
                            });
                        }
                    }
                }
            }
            let Some(backoff) = self.config.reconnect else {
                return;
            };
            let wait = backoff.next(backoff_wait);
            backoff_wait = Some(wait);
            tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    async fn stream(&self, mut socket: Socket, session: &mut Session, resumed: bool) -> End {
        let opened = Instant::now();
        let mut seq = match (resumed, session.last_seq) {
            (true, Some(since)) => SeqTracker::starting_at(since),
            _ => SeqTracker::new(),
        };
        // On a resume, frames up to the snapshot are replays with their original ts.
        let mut replaying = resumed && session.last_seq.is_some();
        let mut first_frame = true;
        let period = self
            .config
            .send_rate
            .map(|r| Duration::from_secs_f64(1.0 / r));
        let mut next_send = period.map(|p| Instant::now() + p);
        // Intended send times of pings awaiting their pong (bounded: a server that
        // never answers must not grow this).
        let mut pending: VecDeque<Pending> = VecDeque::new();
        // Protocol pings awaiting their pong: (number, sent at).
        let mut ws_pings: VecDeque<(u64, Instant)> = VecDeque::new();
        let mut ws_ping_n: u64 = 0;
        let mut next_ws_ping = self.config.ws_ping.map(|p| opened + p);
        let cancelled = self.stop.cancelled();
        tokio::pin!(cancelled);
        let churn_at = self.config.churn.map(|c| opened + c);
        // Idleness is checked lazily: a frame only stores its arrival time, and the
        // one timer of this connection looks at it when the check comes due. (A
        // timeout around every read would touch the timer wheel once per frame.)
        let idle = self.config.idle_timeout;
        let mut last_frame = opened;
        let mut idle_check = opened + idle;
        let earliest = |send: Option<Instant>, ws: Option<Instant>, idle_check: Instant| {
            [send, ws, churn_at]
                .into_iter()
                .flatten()
                .fold(idle_check, Instant::min)
        };
        let timer = tokio::time::sleep_until(earliest(next_send, next_ws_ping, idle_check).into());
        tokio::pin!(timer);
        loop {
            tokio::select! {
                _ = &mut cancelled => {
                    let _ = tokio::time::timeout(Duration::from_secs(1), socket.close(None)).await;
                    return End::Stopped;
                }
                _ = &mut timer => {
                    let now = Instant::now();
                    if churn_at.is_some_and(|c| c <= now) {
                        let _ = tokio::time::timeout(Duration::from_secs(1), socket.close(None)).await;
                        return End::Churned;
                    }
                    if idle_check <= now {
                        if now.duration_since(last_frame) >= idle {
                            return End::Lost { kind: "idle_timeout".into() };
                        }
                        idle_check = last_frame + idle;
                    }
                    if next_ws_ping.is_some_and(|t| t <= now) {
                        ws_ping_n += 1;
                        if ws_pings.len() >= 64 {
                            ws_pings.pop_front();
                        }
                        ws_pings.push_back((ws_ping_n, now));
                        next_ws_ping = self.config.ws_ping.map(|p| now + p);
                        if let Err(e) = socket.send(Message::Ping(ws_ping_n.to_be_bytes().to_vec().into())).await {
                            return End::Lost { kind: format!("send_failed: {}", short(&e.to_string())) };
                        }
                    }
                    // Open model: every slot that came due is sent and timed from its
                    // slot, however late the sending is.
                    let period = period.unwrap_or_default();
                    while let Some(due) = next_send.filter(|d| *d <= now) {
                        session.ping_id += 1;
                        let body = self.config.send_template.replace("{id}", &session.ping_id.to_string());
                        if pending.len() >= 4096 {
                            pending.pop_front();
                            self.record(|r| r.error("pong_missing"));
                        }
                        pending.push_back(Pending { id: session.ping_id, due, sent_us: now_micros() });
                        next_send = Some(due + period);
                        if let Err(e) = socket.send(Message::Text(body.into())).await {
                            return End::Lost { kind: format!("send_failed: {}", short(&e.to_string())) };
                        }
                        self.record(|r| r.counters.pings_sent += 1);
                    }
                    timer.as_mut().reset(earliest(next_send, next_ws_ping, idle_check).into());
                }
                next = socket.next() => match next {
                    None => return End::Lost { kind: "closed_without_frame".into() },
                    Some(Err(e)) => return End::Lost { kind: io_kind(&e) },
                    Some(Ok(Message::Close(frame))) => {
                        let code = frame.map(|f| u16::from(f.code)).unwrap_or(1005);
                        return End::Lost { kind: format!("close_{code}") };
                    }
                    Some(Ok(Message::Text(text))) => {
                        let now = Instant::now();
                        last_frame = now;
                        if first_frame {
                            first_frame = false;
                            self.record(|r| r.latency(Distribution::FirstFrame, now.duration_since(opened).as_micros() as i64));
                            if let Some(at) = session.disconnected_at.take() {
                                self.record(|r| {
                                    r.counters.reconnect_successes += 1;
                                    r.latency(Distribution::Reconnect, now.duration_since(at).as_micros() as i64);
                                });
                            }
                        }
                        self.frame(text.as_str(), &mut seq, &mut replaying, &mut pending, session);
                    }
                    Some(Ok(Message::Pong(payload))) => {
                        let now = Instant::now();
                        last_frame = now;
                        if let Ok(bytes) = <[u8; 8]>::try_from(payload.as_ref()) {
                            let n = u64::from_be_bytes(bytes);
                            if let Some(pos) = ws_pings.iter().position(|(k, _)| *k == n) {
                                let (_, sent) = ws_pings[pos];
                                ws_pings.drain(..=pos);
                                self.record(|r| r.latency(Distribution::WsRtt, now.duration_since(sent).as_micros() as i64));
                            }
                        }
                    }
                    Some(Ok(_)) => last_frame = Instant::now(),
                },
            }
        }
    }

    /// Measures one text frame.
    fn frame(
        &self,
        text: &str,
        seq: &mut SeqTracker,
        replaying: &mut bool,
        pending: &mut VecDeque<Pending>,
        session: &mut Session,
    ) {
        let received = now_micros();
        let received_at = Instant::now();
        let head: Head = match serde_json::from_str(text) {
            Ok(h) => h,
            Err(_) => {
                self.record(|r| {
                    r.counters.frames += 1;
                    r.counters.bytes += text.len() as u64;
                    r.error("invalid_json");
                });
                return;
            }
        };
        let kind = head.kind.as_deref().and_then(FrameType::parse);
        let ts = if self.config.ts.is_contract_default() {
            head.ts.0
        } else {
            foreign_ts(text, &self.config.ts)
        };
        let was_replay = *replaying;
        if kind == Some(FrameType::Snapshot) {
            *replaying = false;
        }
        let mut shard = self.shard.lock().unwrap_or_else(|e| e.into_inner());
        shard.counters.frames += 1;
        shard.counters.bytes += text.len() as u64;
        if let (Some(k), Some(s)) = (kind, head.seq.0.and_then(|s| u64::try_from(s).ok())) {
            match seq.observe(k, s) {
                SeqEvent::InOrder => {}
                SeqEvent::Gap { missing, .. } => shard.counters.lost += missing,
                SeqEvent::Duplicate { .. } => shard.counters.duplicates += 1,
                SeqEvent::Backwards { .. } => shard.counters.reordered += 1,
            }
            // Where a resume starts: the latest data frame, or the snapshot (which is
            // authoritative, also after a server restart lowered the seqs).
            if k.is_data_bearing() || k == FrameType::Snapshot {
                session.last_seq = Some(s);
            }
        }
        if kind == Some(FrameType::Error) {
            shard.error("error_frame");
        }
        // Replayed frames carry the time they were first sent: not a delivery latency.
        if !was_replay {
            if let Some(ts) = ts {
                shard.latency(Distribution::Delivery, received - ts);
            }
            if matches!(kind, Some(FrameType::Update | FrameType::Final)) {
                if let Some(observed) = head.data.and_then(|d| d.observed_at.0) {
                    shard.latency(Distribution::EndToEnd, received - observed);
                }
            }
        }
        if kind == Some(FrameType::Pong) {
            if let Some(id) = head.id.0.and_then(|i| u64::try_from(i).ok()) {
                while let Some(p) = pending.front().copied() {
                    if p.id > id {
                        break;
                    }
                    pending.pop_front();
                    if p.id == id {
                        shard.counters.pongs += 1;
                        shard.latency(
                            Distribution::Rtt,
                            received_at.duration_since(p.due).as_micros() as i64,
                        );
                        // The pong's ts is the server's clock between our send and receive.
                        if let Some(server_ts) = ts {
                            let actual_rtt = (received - p.sent_us).max(0);
                            shard.counters.observe_offset(
                                actual_rtt as u64,
                                server_ts - (p.sent_us + received) / 2,
                            );
                        }
                    } else {
                        shard.error("pong_missing");
                    }
                }
            }
        }
    }
}

fn short(s: &str) -> String {
    crate::contract::schema::cut(s, 60)
}

fn io_kind(e: &tokio_tungstenite::tungstenite::Error) -> String {
    use tokio_tungstenite::tungstenite::Error;
    match e {
        Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionReset => "reset".into(),
        Error::Protocol(_) => "protocol_error".into(),
        Error::Capacity(_) => "frame_too_large".into(),
        Error::Io(_) => "io".into(),
        _ => "connection_error".into(),
    }
}

/// The send time of a frame from a server with its own layout, in Unix µs.
fn foreign_ts(text: &str, spec: &TsSpec) -> Option<i64> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    let field = value.pointer(&spec.pointer)?;
    match spec.unit {
        TsUnit::Us => field.as_i64(),
        TsUnit::Ms => field.as_f64().map(|v| (v * 1_000.0) as i64),
        TsUnit::S => field.as_f64().map(|v| (v * 1_000_000.0) as i64),
        TsUnit::Rfc3339 => {
            let t = humantime::parse_rfc3339_weak(field.as_str()?).ok()?;
            Some(t.duration_since(std::time::UNIX_EPOCH).ok()?.as_micros() as i64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_timestamps_in_every_unit() {
        let spec = |p: &str, unit| TsSpec {
            pointer: p.into(),
            unit,
        };
        assert_eq!(
            foreign_ts(r#"{"t":1700000000123}"#, &spec("/t", TsUnit::Ms)),
            Some(1_700_000_000_123_000)
        );
        assert_eq!(
            foreign_ts(r#"{"m":{"t":1700000000.5}}"#, &spec("/m/t", TsUnit::S)),
            Some(1_700_000_000_500_000)
        );
        assert_eq!(
            foreign_ts(
                r#"{"t":"1970-01-01T00:00:01Z"}"#,
                &spec("/t", TsUnit::Rfc3339)
            ),
            Some(1_000_000)
        );
        assert_eq!(foreign_ts(r#"{"x":1}"#, &spec("/t", TsUnit::Us)), None);
    }

    #[test]
    fn the_head_of_a_contract_frame_is_read_without_a_dom() {
        let h: Head = serde_json::from_str(r#"{"type":"update","game_id":"g","seq":4,"ts":10,"data":{"observed_at":7,"market":{"x":[1,2]}}}"#).unwrap();
        assert_eq!(
            (
                h.kind.as_deref(),
                h.seq.0,
                h.ts.0,
                h.data.and_then(|d| d.observed_at.0)
            ),
            (Some("update"), Some(4), Some(10), Some(7))
        );
        let foreign: Head =
            serde_json::from_str(r#"{"id":"abc","ts":"2024-01-01T00:00:00Z","seq":[1]}"#).unwrap();
        assert_eq!(
            (foreign.id.0, foreign.ts.0, foreign.seq.0),
            (None, None, None)
        );
    }
}
