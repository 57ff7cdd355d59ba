//! The timer grid every connection's pings and idle checks share.

use std::time::{Duration, Instant};

/// Protocol pings and idle checks fall on a grid shared by every connection of the
/// process, of this step (or a tenth of their interval, when that is shorter, so a
/// short `--ws-ping` keeps its rate). At one frame per connection per second every
/// wake-up of the runtime costs about as much as a frame: spread at their own
/// instants, the pings of 10,000 connections would wake it twice for each (ping out,
/// pong in); on a shared grid the due ones go out together. A ping's RTT is timed from
/// its own send, so sharing the instant costs it at most the other due pings' turn in
/// the runtime; an idle check comes under one step late.
const TIMER_SLOT: Duration = Duration::from_secs(1);

/// The grid step for something done every `interval`.
pub(super) fn timer_slot(interval: Duration) -> Duration {
    TIMER_SLOT.min(interval / 10).max(Duration::from_millis(1))
}

/// The first instant of the `slot` grid at or after `at` (see [`TIMER_SLOT`]).
pub(super) fn on_timer_grid(at: Instant, slot: Duration) -> Instant {
    static ORIGIN: std::sync::LazyLock<Instant> = std::sync::LazyLock::new(Instant::now);
    let origin = *ORIGIN;
    let Some(since) = at.checked_duration_since(origin) else {
        return origin;
    };
    let step = slot.as_nanos().max(1);
    let slots = since.as_nanos().div_ceil(step);
    origin + Duration::from_nanos(u64::try_from(slots * step).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_fall_on_a_shared_grid_never_early() {
        let now = Instant::now();
        let on_grid = on_timer_grid(now, TIMER_SLOT);
        for offset_ms in [0, 1, 37, 99, 100, 101, 250, 5_003] {
            let at = now + Duration::from_millis(offset_ms);
            let slot = on_timer_grid(at, TIMER_SLOT);
            assert!(slot >= at, "{offset_ms} ms: the grid moved it earlier");
            assert!(
                slot - at < TIMER_SLOT,
                "{offset_ms} ms: later than one slot"
            );
            let steps = (slot - on_grid).as_nanos() % TIMER_SLOT.as_nanos();
            assert_eq!(steps, 0, "{offset_ms} ms: not on the grid");
        }
        // Instants within one slot share it: their timers fire together.
        let first = on_timer_grid(on_grid + Duration::from_millis(1), TIMER_SLOT);
        let last = on_timer_grid(on_grid + Duration::from_millis(999), TIMER_SLOT);
        assert_eq!(first, last);
    }

    #[test]
    fn a_short_interval_keeps_its_rate_on_a_finer_grid() {
        assert_eq!(timer_slot(Duration::from_secs(100)), TIMER_SLOT);
        assert_eq!(
            timer_slot(Duration::from_secs(5)),
            Duration::from_millis(500)
        );
        assert_eq!(
            timer_slot(Duration::from_millis(200)),
            Duration::from_millis(20)
        );
        assert_eq!(timer_slot(Duration::ZERO), Duration::from_millis(1));
    }
}
