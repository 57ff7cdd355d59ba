//! `livegames contract record`: a live stream written to a JSON Lines file, one frame
//! per line, for `contract validate` (or a bug report).

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;
use url::Url;

use crate::client::discover;
use crate::client::template::{Fill, Template};
use crate::client::ws;
use crate::client::{ConnectOptions, Target};
use crate::outcome::{Classify, Failure};

/// What to record, from where, and when to stop.
#[derive(Debug, Clone)]
pub struct RecordPlan {
    /// A server (its first live game is recorded), a `{game_id}` template (filled the
    /// same way) or one stream URL.
    pub target: Target,
    pub options: ConnectOptions,
    pub out: PathBuf,
    /// Stop after this many frames...
    pub frames: u64,
    /// ...or after this long, whichever comes first.
    pub duration: Duration,
    /// Sent once right after the handshake (`{game_id}` filled in, `{since}` null).
    pub subscribe: Option<Template>,
}

/// How a recording ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordEnd {
    /// The wanted number of frames was recorded.
    Frames,
    /// The time was up.
    Time,
    /// The server closed the stream (code, if it sent one).
    Closed(Option<u16>),
}

impl std::fmt::Display for RecordEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordEnd::Frames => f.write_str("the frame count was reached"),
            RecordEnd::Time => f.write_str("the time was up"),
            RecordEnd::Closed(Some(code)) => write!(f, "the server closed with code {code}"),
            RecordEnd::Closed(None) => f.write_str("the connection ended without a close frame"),
        }
    }
}

/// What was recorded.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub url: Url,
    pub frames: u64,
    pub end: RecordEnd,
}

/// Records the stream the plan names.
pub async fn record(plan: &RecordPlan) -> Result<Recorded, Failure> {
    let (url, game) = stream_to_record(&plan.target, &plan.options).await?;
    let mut connected = ws::connect(&url, &plan.options)
        .await
        .with_context(|| url.to_string())
        .unreachable()?;
    if let Some(template) = &plan.subscribe {
        let body = template.render(&Fill {
            id: 1,
            game_id: game.as_deref().unwrap_or(""),
            now_ms: crate::clock::unix_micros() / 1_000,
            ..Fill::default()
        });
        connected
            .socket
            .send(Message::text(body))
            .await
            .with_context(|| format!("{url}: sending the subscribe message"))
            .unreachable()?;
    }
    let shown = plan.out.display().to_string();
    let file = std::fs::File::create(&plan.out)
        .with_context(|| format!("cannot write {shown}"))
        .usage()?;
    let mut out = std::io::BufWriter::new(file);
    let deadline = tokio::time::Instant::now() + plan.duration;
    let mut frames = 0u64;
    let end = loop {
        if frames >= plan.frames {
            break RecordEnd::Frames;
        }
        let next = tokio::select! {
            _ = tokio::time::sleep_until(deadline) => break RecordEnd::Time,
            next = connected.socket.next() => next,
        };
        match next {
            Some(Ok(Message::Text(text))) => {
                writeln!(out, "{}", jsonl_line(text.as_str()))
                    .with_context(|| format!("cannot write {shown}"))
                    .failed()?;
                frames += 1;
            }
            Some(Ok(Message::Close(frame))) => {
                break RecordEnd::Closed(frame.map(|f| u16::from(f.code)));
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => break RecordEnd::Closed(None),
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), connected.socket.close(None)).await;
    out.flush()
        .with_context(|| format!("cannot write {shown}"))
        .failed()?;
    Ok(Recorded { url, frames, end })
}

/// The stream URL (and its game, when known): as given, or the first game the server
/// lists (live ones first).
async fn stream_to_record(
    target: &Target,
    options: &ConnectOptions,
) -> Result<(Url, Option<String>), Failure> {
    if let Some(url) = target.fixed_stream() {
        return Ok((url, None));
    }
    let games = discover::games(target, options).await.unreachable()?;
    let first = games.first().ok_or_else(|| {
        Failure::unreachable(format!("{} lists no games", target.api("/api/live/games")))
    })?;
    Ok((target.stream(&first.id), Some(first.id.clone())))
}

/// One frame as one JSON Lines line: compact JSON as it came, or (for a frame that
/// is not JSON) its text with line breaks flattened, so `validate` reports it.
pub fn jsonl_line(text: &str) -> String {
    if !text.contains('\n') {
        return text.to_owned();
    }
    match serde_json::from_str::<Value>(text) {
        Ok(v) => v.to_string(),
        Err(_) => text.replace(['\n', '\r'], " "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_lines_stay_one_per_frame() {
        assert_eq!(jsonl_line("{\"a\":1}"), "{\"a\":1}");
        assert_eq!(jsonl_line("{\n  \"a\": 1\n}"), "{\"a\":1}");
        assert_eq!(jsonl_line("not\njson"), "not json");
    }
}
