//! The frames a game keeps for `?since=` resumes and its timeline: every
//! data-bearing frame as it was sent, bounded by bytes. The oldest go first; the
//! latest always stays, however large.

use std::collections::VecDeque;

use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::contract::Point;

/// One retained data-bearing frame.
pub(super) struct Retained {
    pub seq: u64,
    pub text: Utf8Bytes,
    /// The point of an update/final frame, for the timeline.
    pub data: Option<Point>,
}

/// What one slot of the history costs however little it holds: a [`Retained`], with
/// the parsed point inline.
const SLOT: usize = std::mem::size_of::<Retained>();

impl Retained {
    /// What this frame holds beyond its slot: its text and the point's own strings.
    fn content(&self) -> usize {
        let strings = self.data.as_ref().map_or(0, |p| {
            let text = |s: &Option<String>| s.as_ref().map_or(0, String::capacity);
            text(&p.clock)
                + text(&p.last_play)
                + p.market.as_ref().map_or(0, |m| m.ticker.capacity())
        });
        self.text.len() + strings
    }
}

/// The retained frames, bounded by what they cost in memory: their content and every
/// slot the history has, used or spare. A deque doubles its slots when it grows, and
/// the slots are not small (the point sits inline), so spare slots count as well:
/// `--history-mib` bounds what the history really holds.
pub(super) struct History {
    frames: VecDeque<Retained>,
    /// The content of the frames held ([`Retained::content`]).
    content: usize,
    limit: usize,
}

impl History {
    /// A history of at most `limit` bytes, and at least the latest frame.
    pub fn new(limit: usize) -> Self {
        Self {
            frames: VecDeque::new(),
            content: 0,
            limit,
        }
    }

    /// Keeps `frame`, letting the oldest go until the history fits its limit again.
    pub fn push(&mut self, frame: Retained) {
        // Full: pushing doubles the slots. Where twice the slots would not fit, the
        // oldest frame gives up its slot instead, and the history stays this size.
        let full = self.frames.len() == self.frames.capacity();
        if full && self.content + 2 * self.frames.capacity().max(4) * SLOT > self.limit {
            self.pop_oldest();
        }
        self.content += frame.content();
        self.frames.push_back(frame);
        while self.memory() > self.limit && self.frames.len() > 1 {
            self.pop_oldest();
        }
    }

    fn pop_oldest(&mut self) {
        if let Some(old) = self.frames.pop_front() {
            self.content -= old.content();
        }
    }

    /// What the history holds in memory: the frames' content and all its slots.
    fn memory(&self) -> usize {
        self.content + self.frames.capacity() * SLOT
    }

    /// Frames held now, and the memory they take ([`History::memory`]).
    pub fn held(&self) -> (usize, usize) {
        (self.frames.len(), self.memory())
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
    fn the_limit_is_on_memory_and_the_latest_always_stays() {
        let text = "0123456789";
        let limit = 64 * SLOT;
        let mut history = History::new(limit);
        for seq in 1..=1_000 {
            history.push(frame(seq, text));
            let (frames, bytes) = history.held();
            assert!(bytes <= limit, "{bytes} held at seq {seq}, over {limit}");
            assert!(frames >= 1);
        }
        let (frames, bytes) = history.held();
        // Every slot counts, spare ones too: fewer frames than the limit / (slot + text).
        assert!(frames < limit / (SLOT + text.len()), "{frames} frames");
        assert!(
            frames >= 16,
            "the history still holds a useful run: {frames}"
        );
        assert_eq!(
            bytes,
            frames * text.len() + history.frames.capacity() * SLOT
        );
        assert_eq!(history.first_seq(1_001), 1_001 - frames as u64);
        let mut tiny = History::new(1);
        tiny.push(frame(1, "a frame larger than the whole limit"));
        assert_eq!(tiny.held().0, 1, "the latest stays however large");
    }

    /// A history at its limit keeps its size: it never doubles its slots past the
    /// limit and then throws most of its frames away to pay for them.
    #[test]
    fn a_full_history_stays_full() {
        let mut history = History::new(200 * SLOT);
        let mut least_after_filling = usize::MAX;
        for seq in 1..=5_000 {
            history.push(frame(seq, "0123456789"));
            if seq > 1_000 {
                least_after_filling = least_after_filling.min(history.held().0);
            }
        }
        let held = history.held().0;
        assert!(
            least_after_filling + 1 >= held,
            "{least_after_filling} vs {held}"
        );
        assert!(held >= 64, "{held}");
    }
}
