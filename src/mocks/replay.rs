//! The replay clock: where each recorded game is "now".
//!
//! Games loop forever on a common cycle: a scheduled window, the game itself (its
//! recorded wall duration), then a final window. Starts are staggered evenly over the
//! cycle, so at any moment some games are scheduled, some live and some final. The
//! first game of the map starts a little into its first quarter.

use std::time::Instant;

/// Where a game is within its cycle.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Phase {
    /// Starts in `starts_in_s` replay seconds.
    Scheduled { starts_in_s: f64 },
    /// `elapsed_s` replay seconds after tip-off.
    Live { elapsed_s: f64 },
    /// Ended `ended_s_ago` replay seconds ago.
    Final { ended_s_ago: f64 },
}

#[derive(Debug, Clone)]
pub struct ReplayClock {
    started: Instant,
    /// Replay seconds per wall second.
    speed: f64,
}

impl ReplayClock {
    pub fn new(started: Instant, speed: f64) -> Self {
        Self { started, speed }
    }

    pub fn speed(&self) -> f64 {
        self.speed
    }

    /// Replay seconds since the server started.
    pub fn replay_s(&self, now: Instant) -> f64 {
        now.saturating_duration_since(self.started).as_secs_f64() * self.speed
    }
}

/// The loop a set of games replays on.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// Length of the scheduled window before each game.
    pre_s: f64,
    /// Length of one loop for every game.
    cycle_s: f64,
    /// Each game's duration and where it is in its cycle at replay time 0.
    games: Vec<(f64, f64)>,
}

impl Schedule {
    /// `durations`: each game's wall duration in seconds, in map order.
    pub fn new(durations: &[f64]) -> Self {
        let longest = durations.iter().copied().fold(1.0, f64::max);
        let pre_s = 0.3 * longest;
        let cycle_s = 1.6 * longest;
        let n = durations.len().max(1) as f64;
        let first_start = pre_s + 0.1 * durations.first().copied().unwrap_or(0.0);
        let games = durations
            .iter()
            .enumerate()
            .map(|(i, d)| {
                (
                    *d,
                    (first_start - i as f64 * cycle_s / n).rem_euclid(cycle_s),
                )
            })
            .collect();
        Self {
            pre_s,
            cycle_s,
            games,
        }
    }

    pub fn cycle_s(&self) -> f64 {
        self.cycle_s
    }

    /// Where game `index` is at `replay_s`, and which loop it is in.
    pub fn phase(&self, index: usize, replay_s: f64) -> (Phase, u64) {
        let (duration, offset) = self.games[index];
        let t = replay_s + offset;
        let cycle = (t / self.cycle_s).floor().max(0.0) as u64;
        let pos = t.rem_euclid(self.cycle_s);
        let phase = if pos < self.pre_s {
            Phase::Scheduled {
                starts_in_s: self.pre_s - pos,
            }
        } else if pos < self.pre_s + duration {
            Phase::Live {
                elapsed_s: pos - self.pre_s,
            }
        } else {
            Phase::Final {
                ended_s_ago: pos - self.pre_s - duration,
            }
        };
        (phase, cycle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_every_moment_some_games_are_scheduled_live_and_final() {
        let s = Schedule::new(&[7000.0, 7400.0, 6900.0, 7100.0, 7300.0, 7050.0]);
        let mut t = 0.0;
        while t < 2.0 * s.cycle_s() {
            let phases: Vec<_> = (0..6).map(|i| s.phase(i, t).0).collect();
            let count = |f: fn(&Phase) -> bool| phases.iter().filter(|p| f(p)).count();
            assert!(
                count(|p| matches!(p, Phase::Scheduled { .. })) >= 1,
                "t={t} {phases:?}"
            );
            assert!(
                count(|p| matches!(p, Phase::Live { .. })) >= 2,
                "t={t} {phases:?}"
            );
            assert!(
                count(|p| matches!(p, Phase::Final { .. })) >= 1,
                "t={t} {phases:?}"
            );
            t += 37.0;
        }
    }

    #[test]
    fn the_first_game_is_live_at_start_and_loops() {
        let s = Schedule::new(&[7000.0, 7000.0]);
        assert!(
            matches!(s.phase(0, 0.0), (Phase::Live { elapsed_s }, 0) if (elapsed_s - 700.0).abs() < 1e-6)
        );
        let (_, cycle) = s.phase(0, s.cycle_s() + 1.0);
        assert_eq!(cycle, 1);
    }
}
