//! What every connection of a stage reports as it opens and closes: how many are
//! open, the peak, when all were first open at once, the subprotocol the server
//! picked. Atomics, read by the collector once a second.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Numbers every virtual user shares.
#[derive(Debug, Default)]
pub struct Gauges {
    pub open: AtomicU64,
    pub peak_open: AtomicU64,
    /// How many connections the run wants open.
    pub target: u64,
    /// When all of them were first open at once.
    pub all_open_at: std::sync::OnceLock<Instant>,
    /// The subprotocol the server picked, as first seen.
    pub subprotocol: std::sync::OnceLock<String>,
}

impl Gauges {
    pub fn new(target: u64) -> Self {
        Self {
            target,
            ..Self::default()
        }
    }

    pub(crate) fn opened(&self) {
        let now = self.open.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak_open.fetch_max(now, Ordering::Relaxed);
        if now >= self.target {
            let _ = self.all_open_at.set(Instant::now());
        }
    }

    pub(crate) fn closed(&self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }
}
