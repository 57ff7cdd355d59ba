//! A frame on its way to a game's subscribers, as the hub publishes it and every
//! writer (a game's writers, a client's own task, an SSE stream) takes it.

use std::time::Instant;

use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::contract::FrameType;
use crate::wire::SharedText;

/// A frame on its way to subscribers: serialized and WebSocket-framed once, shared
/// by every client (and its compressed twin, once some client needs it).
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub seq: u64,
    pub kind: FrameType,
    pub frame: SharedText,
    /// When it was serialized, for the broadcast latency histogram.
    pub published: Instant,
}

impl Outgoing {
    pub fn new(seq: u64, kind: FrameType, text: Utf8Bytes, published: Instant) -> Self {
        Self {
            seq,
            kind,
            frame: SharedText::new(text),
            published,
        }
    }

    /// The frame's JSON text.
    pub fn text(&self) -> &Utf8Bytes {
        self.frame.text()
    }
}
