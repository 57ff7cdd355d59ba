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

impl Retained {
    /// What keeping this frame costs in memory: its text, its slot in the history
    /// (the parsed point sits inline) and the point's own strings. The limit is on
    /// this, so `--history-mib` bounds what the history really holds.
    fn cost(&self) -> usize {
        let strings = self.data.as_ref().map_or(0, |p| {
            let text = |s: &Option<String>| s.as_ref().map_or(0, String::capacity);
            text(&p.clock)
                + text(&p.last_play)
                + p.market.as_ref().map_or(0, |m| m.ticker.capacity())
        });
        self.text.len() + std::mem::size_of::<Retained>() + strings
    }
}

pub(super) struct History {
    frames: VecDeque<Retained>,
    bytes: usize,
    limit: usize,
}

impl History {
    /// A history of at most `limit` bytes (frames as [`Retained::cost`] counts them),
    /// and at least the latest frame.
    pub fn new(limit: usize) -> Self {
        Self {
            frames: VecDeque::new(),
            bytes: 0,
            limit,
        }
    }

    /// Keeps `frame`, letting the oldest go until the history fits its limit again.
    pub fn push(&mut self, frame: Retained) {
        self.bytes += frame.cost();
        self.frames.push_back(frame);
        while self.bytes > self.limit && self.frames.len() > 1 {
            if let Some(old) = self.frames.pop_front() {
                self.bytes -= old.cost();
            }
        }
    }

    /// Frames held now, and their cost in bytes.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(seq: u64, text: &str) -> Retained {
        Retained {
            seq,
            text: text.into(),
            data: None,
        }
    }

    #[test]
    fn the_limit_is_on_what_frames_cost_and_the_latest_always_stays() {
        let one = frame(0, "0123456789").cost();
        assert!(one > 10, "its slot counts, not only its text: {one}");
        let mut history = History::new(3 * one);
        for seq in 1..=10 {
            history.push(frame(seq, "0123456789"));
            let (_, bytes) = history.held();
            assert!(bytes <= 3 * one);
        }
        assert_eq!(history.held(), (3, 3 * one));
        assert_eq!(history.first_seq(11), 8);
        let mut tiny = History::new(1);
        tiny.push(frame(1, "a frame larger than the whole limit"));
        assert_eq!(tiny.held().0, 1, "the latest stays however large");
    }
}
