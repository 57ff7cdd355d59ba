//! One WebSocket connection of a check: frames read with a deadline and numbered,
//! every way a connection can end told apart, and the preamble every stream check
//! shares ([`open_stream`]).

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;
use url::Url;

use super::check::{CheckId, CheckResult};
use super::ctx::Ctx;
use crate::client::ConnectOptions;
use crate::client::target::with_since;
use crate::client::ws::{self, ConnectError, Socket};
use crate::contract::FrameType;
use crate::contract::check::Violation;
use crate::contract::schema::Schemas;
use crate::text::cut;

/// How long a goodbye (our close frame) may take before the socket is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// One received frame.
pub(crate) struct Frame {
    /// 1-based on its connection.
    pub n: u64,
    pub at: Instant,
    pub at_us: i64,
    /// The text; a binary frame's length otherwise.
    pub text: Result<String, usize>,
}

pub(crate) enum Next {
    Frame(Frame),
    Closed(Option<(u16, String)>),
    Failed(String),
    TimedOut,
}

impl Next {
    pub fn describe(&self) -> String {
        match self {
            Next::Frame(_) => "a frame".into(),
            Next::Closed(Some((code, reason))) if reason.is_empty() => {
                format!("the server closed the connection with code {code}")
            }
            Next::Closed(Some((code, reason))) => {
                format!("the server closed the connection with code {code} ({reason})")
            }
            Next::Closed(None) => "the connection closed without a close frame".into(),
            Next::Failed(why) => format!("the connection failed: {why}"),
            Next::TimedOut => "nothing more came in time".into(),
        }
    }
}

pub(crate) struct Conn {
    socket: Socket,
    pub received: u64,
}

impl Conn {
    pub async fn open(
        url: &Url,
        options: &ConnectOptions,
    ) -> Result<(Self, Duration), ConnectError> {
        let (conn, took, _) = Self::open_picking(url, options).await?;
        Ok((conn, took))
    }

    /// Like [`Conn::open`], also saying which subprotocol the server picked.
    async fn open_picking(
        url: &Url,
        options: &ConnectOptions,
    ) -> Result<(Self, Duration, Option<String>), ConnectError> {
        let connected = ws::connect(url, options).await?;
        let conn = Conn {
            socket: connected.socket,
            received: 0,
        };
        Ok((conn, connected.connect_time, connected.subprotocol))
    }

    /// The next text or binary frame, or how the connection ended, by `deadline`.
    pub async fn next(&mut self, deadline: tokio::time::Instant) -> Next {
        loop {
            // `timeout_at` polls the read first: under a flood of frames it would never
            // see the deadline pass.
            if tokio::time::Instant::now() >= deadline {
                return Next::TimedOut;
            }
            let message = match tokio::time::timeout_at(deadline, self.socket.next()).await {
                Err(_) => return Next::TimedOut,
                Ok(None) => return Next::Closed(None),
                Ok(Some(Err(e))) => return Next::Failed(e.to_string()),
                Ok(Some(Ok(m))) => m,
            };
            let text = match message {
                Message::Text(t) => Ok(t.as_str().to_owned()),
                Message::Binary(b) => Err(b.len()),
                Message::Close(frame) => {
                    return Next::Closed(frame.map(|f| (u16::from(f.code), f.reason.to_string())));
                }
                _ => continue,
            };
            self.received += 1;
            return Next::Frame(Frame {
                n: self.received,
                at: Instant::now(),
                at_us: crate::clock::unix_micros(),
                text,
            });
        }
    }

    pub async fn send(&mut self, text: String) -> Result<(), String> {
        self.socket
            .send(Message::text(text))
            .await
            .map_err(|e| e.to_string())
    }

    pub async fn close(mut self) {
        let _ = tokio::time::timeout(CLOSE_GRACE, self.socket.close(None)).await;
    }
}

/// A game's stream, opened for a check.
pub(crate) struct Opened {
    pub conn: Conn,
    pub game: String,
    pub url: Url,
    /// When the check started (before connecting).
    pub started: Instant,
    /// When the check must stop waiting (see `Ctx::deadline`).
    pub deadline: tokio::time::Instant,
    pub connect_time: Duration,
    /// The subprotocol the server picked, if any.
    pub subprotocol: Option<String>,
}

/// The preamble of every check that watches a game's stream: skipped when there is no
/// game (`no_game` says why), failed when the stream does not open. `since` resumes.
pub(crate) async fn open_stream(
    ctx: &Ctx<'_>,
    id: CheckId,
    game: Option<&str>,
    no_game: &str,
    since: Option<(u64, Option<&str>)>,
) -> Result<Opened, CheckResult> {
    let Some(game) = game else {
        return Err(CheckResult::skip(id, no_game));
    };
    let url = match since {
        Some((seq, epoch)) => with_since(&ctx.stream_url(game), seq, epoch),
        None => ctx.stream_url(game),
    };
    let started = Instant::now();
    match Conn::open_picking(&url, &ctx.options).await {
        Ok((conn, connect_time, subprotocol)) => Ok(Opened {
            subprotocol,
            conn,
            game: game.to_owned(),
            url,
            started,
            deadline: ctx.deadline(started),
            connect_time,
        }),
        Err(e) => Err(CheckResult::fail(
            id,
            started.elapsed(),
            format!("{url}: {e}"),
        )),
    }
}

/// The frame as JSON, when it is.
pub(crate) fn parse(frame: &Frame) -> Option<Value> {
    frame
        .text
        .as_ref()
        .ok()
        .and_then(|t| serde_json::from_str(t).ok())
}

/// The frame as a violation shows it.
pub(crate) fn raw(frame: &Frame) -> String {
    match &frame.text {
        Ok(t) => cut(t, 200),
        Err(len) => format!("<binary frame of {len} bytes>"),
    }
}

/// The frame's schema violations, located on its connection.
pub(crate) fn schema_violations(schemas: &Schemas, frame: &Frame, value: &Value) -> Vec<Violation> {
    schemas
        .validate_frame(value)
        .into_iter()
        .map(|v| {
            Violation::new(
                "schema",
                frame.n,
                v.pointer,
                v.expected,
                v.actual,
                &raw(frame),
            )
        })
        .collect()
}

/// The frame's type, when it is one the contract knows.
pub(crate) fn kind(value: &Value) -> Option<FrameType> {
    value
        .get("type")
        .and_then(Value::as_str)
        .and_then(FrameType::parse)
}

/// A duration as the checklist shows it.
pub(crate) fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}
