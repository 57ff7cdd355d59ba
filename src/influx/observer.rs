//! What the writer tells: every outcome as it happens, to a [`WriteObserver`]
//! (serve's Prometheus counters, load's closing line), and its state on request
//! ([`StoreStatus`], for `/health`).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Told about every outcome, for metrics (serve's Prometheus counters, load's report).
pub trait WriteObserver: Send + Sync {
    /// `lines` reached InfluxDB.
    fn written(&self, lines: u64);
    /// A request failed; its lines are retried (or dropped, and reported so).
    fn failed(&self, error: &str);
    /// `lines` will never be written: pushed out of a full queue, refused by the
    /// server, or still queued at shutdown.
    fn dropped(&self, lines: u64);
    /// Lines waiting, after every change.
    fn queue_depth(&self, lines: usize);
    /// How long one write request took, answered or failed.
    fn request_took(&self, _took: std::time::Duration) {}
}

/// A [`WriteObserver`] that only counts: for `load --out`'s closing line, the
/// benchmark and the tests.
#[derive(Debug, Default)]
pub struct Tally {
    written: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl Tally {
    /// Lines written, failed requests, lines dropped.
    pub fn counts(&self) -> (u64, u64, u64) {
        (
            self.written.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
            self.dropped.load(Ordering::Relaxed),
        )
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl WriteObserver for Tally {
    fn written(&self, lines: u64) {
        self.written.fetch_add(lines, Ordering::Relaxed);
    }
    fn failed(&self, error: &str) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(error.to_owned());
    }
    fn dropped(&self, lines: u64) {
        self.dropped.fetch_add(lines, Ordering::Relaxed);
    }
    fn queue_depth(&self, _: usize) {}
}

/// The writer's state as `/health` reports it.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreState {
    /// Nothing sent yet.
    Idle,
    /// The last request succeeded.
    Ok,
    /// The last request failed, with why.
    Failing(String),
}

#[derive(Debug, Clone)]
pub struct StoreStatus {
    pub state: StoreState,
    pub last_success: Option<Instant>,
    pub queued: usize,
    /// The retention wish and what became of it (None: left as it is).
    pub retention: Option<super::retention::RetentionStatus>,
}
