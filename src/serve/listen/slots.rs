//! The slots every client connection holds, and each connection's clock: what it is
//! doing and since when, and which waiting connection gives its slot up to a newcomer.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// A connection younger than this is not evicted: a newcomer that is merely slow to
/// send its first request keeps its slot.
const MIN_AGE_TO_EVICT: Duration = Duration::from_millis(500);

/// What a connection is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum Phase {
    /// Waiting for (the rest of) a request head.
    Head = 0,
    /// A request is being answered.
    Busy = 1,
    /// Between requests.
    Idle = 2,
    /// Handed over as a WebSocket: no longer ours to time.
    Upgraded = 3,
}

/// One connection's phase and since when, shared by its socket, its service and its
/// watchdog.
#[derive(Debug)]
pub(super) struct Clock {
    pub(super) id: u64,
    pub(super) phase: AtomicU8,
    /// µs after [`Open::base`] when the phase began (idle: the last activity).
    pub(super) since: AtomicU64,
    /// When it last began waiting without a request (its key in [`Open::waiting`]).
    pub(super) waiting_since: AtomicU64,
    pub(super) evict: CancellationToken,
}

impl Clock {
    pub(super) fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Relaxed) {
            0 => Phase::Head,
            1 => Phase::Busy,
            2 => Phase::Idle,
            _ => Phase::Upgraded,
        }
    }

    pub(super) fn set(&self, phase: Phase, at_us: u64) {
        self.phase.store(phase as u8, Ordering::Relaxed);
        self.since.store(at_us, Ordering::Relaxed);
    }
}

/// The slots, and the connections that could give theirs up.
pub(super) struct Open {
    pub(super) base: Instant,
    pub(super) slots: Arc<Semaphore>,
    /// Connections with no request in progress (Head or Idle), oldest first.
    pub(super) waiting: Mutex<BTreeMap<(u64, u64), Arc<Clock>>>,
    pub(super) next_id: AtomicU64,
}

impl Open {
    pub(super) fn new(max_open: usize) -> Self {
        Self {
            base: Instant::now(),
            slots: Arc::new(Semaphore::new(max_open.max(1))),
            waiting: Mutex::default(),
            next_id: AtomicU64::new(0),
        }
    }

    pub(super) fn micros(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.base).as_micros() as u64
    }

    pub(super) fn instant(&self, micros: u64) -> Instant {
        self.base + Duration::from_micros(micros)
    }

    pub(super) fn waiting(&self) -> std::sync::MutexGuard<'_, BTreeMap<(u64, u64), Arc<Clock>>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn new_clock(&self) -> Arc<Clock> {
        let now = self.micros(Instant::now());
        let clock = Arc::new(Clock {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            phase: AtomicU8::new(Phase::Head as u8),
            since: AtomicU64::new(now),
            waiting_since: AtomicU64::new(now),
            evict: CancellationToken::new(),
        });
        self.waiting().insert((now, clock.id), clock.clone());
        clock
    }

    pub(super) fn key(clock: &Clock) -> (u64, u64) {
        (clock.waiting_since.load(Ordering::Relaxed), clock.id)
    }

    /// A request head is complete: the connection is busy, not evictable.
    pub(super) fn busy(&self, clock: &Clock) {
        clock.set(Phase::Busy, self.micros(Instant::now()));
        self.waiting().remove(&Self::key(clock));
    }

    /// The response is on its way: idle (evictable) again, or upgraded for good.
    pub(super) fn answered(&self, clock: &Arc<Clock>, upgraded: bool) {
        let now = self.micros(Instant::now());
        if upgraded {
            clock.set(Phase::Upgraded, now);
        } else {
            clock.set(Phase::Idle, now);
            clock.waiting_since.store(now, Ordering::Relaxed);
            self.waiting().insert((now, clock.id), clock.clone());
        }
    }

    pub(super) fn gone(&self, clock: &Clock) {
        self.waiting().remove(&Self::key(clock));
    }

    /// Tells the connection that has waited longest without a request to go (one
    /// that began waiting at least [`MIN_AGE_TO_EVICT`] before `now`).
    pub(super) fn evict_oldest(&self, now: Instant) -> bool {
        // Nobody can have waited MIN_AGE_TO_EVICT before the table existed (a cutoff
        // at its base would read as 0 µs and evict one opened in its first µs).
        let Some(oldest_evictable) = now
            .checked_sub(MIN_AGE_TO_EVICT)
            .filter(|t| *t >= self.base)
        else {
            return false;
        };
        let cutoff = self.micros(oldest_evictable);
        let mut waiting = self.waiting();
        match waiting.first_key_value() {
            Some((&(since, _), _)) if since <= cutoff => {
                if let Some((_, clock)) = waiting.pop_first() {
                    clock.evict.cancel();
                }
                true
            }
            _ => false,
        }
    }
}
