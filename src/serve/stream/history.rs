//! The frames a game keeps for `?since=` resumes and its timeline: every
//! data-bearing frame as it was sent, bounded by bytes. The oldest go first; the
//! latest always stays, however large.

use std::collections::VecDeque;

use axum::extract::ws::Utf8Bytes;

use crate::contract::Point;

/// One retained data-bearing frame.
pub(super) struct Retained {
    pub seq: u64,
    pub text: Utf8Bytes,
    /// The point of an update/final frame, for the timeline.
    pub data: Option<Point>,
}

pub(super) struct History {
    frames: VecDeque<Retained>,
    bytes: usize,
    limit: usize,
}

impl History {
    /// A history of at most `limit` bytes of frames (and at least the latest frame).
    pub fn new(limit: usize) -> Self {
        Self {
            frames: VecDeque::new(),
            bytes: 0,
            limit,
        }
    }

    /// Keeps `frame`, letting the oldest go until the history fits its limit again.
    pub fn push(&mut self, frame: Retained) {
        self.bytes += frame.text.len();
        self.frames.push_back(frame);
        while self.bytes > self.limit && self.frames.len() > 1 {
            if let Some(old) = self.frames.pop_front() {
                self.bytes -= old.text.len();
            }
        }
    }

    /// Frames and bytes held now.
    pub fn held(&self) -> (usize, usize) {
        (self.frames.len(), self.bytes)
    }

    /// The seq of the oldest frame kept; `next` (the seq the next frame will get)
    /// when none is.
    pub fn first_seq(&self, next: u64) -> u64 {
        self.frames.front().map_or(next, |r| r.seq)
    }

    /// The frames kept after `since`, oldest first.
    pub fn after(&self, since: u64) -> impl Iterator<Item = &Retained> {
        self.frames.iter().filter(move |r| r.seq > since)
    }
}
