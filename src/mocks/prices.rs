//! The mock market's arithmetic: prices between recorded points, a deterministic
//! jitter per tick, cents and dollars as Kalshi writes them, tick spacing.

use std::time::Duration;

/// Linear interpolation of the home price history at `elapsed_s` after tip-off.
pub(super) fn price_at(history: &[[f64; 4]], elapsed_s: f64) -> [f64; 3] {
    let i = history.partition_point(|row| row[0] <= elapsed_s);
    match (
        i.checked_sub(1).and_then(|j| history.get(j)),
        history.get(i),
    ) {
        (Some(a), Some(b)) if b[0] > a[0] => {
            let f = (elapsed_s - a[0]) / (b[0] - a[0]);
            [0, 1, 2].map(|k| a[k + 1] + f * (b[k + 1] - a[k + 1]))
        }
        (Some(a), _) => [a[1], a[2], a[3]],
        (None, Some(b)) => [b[1], b[2], b[3]],
        (None, None) => [0.49, 0.51, 0.5],
    }
}

/// A deterministic small jitter in cents (-1, 0 or +1) for tick `n` of `key`.
pub(super) fn jitter_cents(key: &str, n: u64) -> f64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in key.bytes().chain(n.to_le_bytes()) {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    ((h >> 33) % 3) as f64 - 1.0
}

/// Rounds to whole cents and keeps a price tradable (0.01..0.99).
pub(super) fn cents(p: f64) -> f64 {
    ((p * 100.0).round() / 100.0).clamp(0.01, 0.99)
}

pub(super) fn dollars(p: f64) -> String {
    format!("{p:.4}")
}

/// The delay between two messages on a stream at `rate` per second.
pub(super) fn tick_interval(rate: f64) -> Duration {
    Duration::from_secs_f64(1.0 / rate.clamp(0.01, 10_000.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn price_interpolates_between_recorded_points() {
        let h = [[0.0, 0.4, 0.42, 0.41], [10.0, 0.6, 0.62, 0.61]];
        let p = price_at(&h, 5.0);
        assert!((p[0] - 0.5).abs() < 1e-9 && (p[2] - 0.51).abs() < 1e-9);
        assert_eq!(price_at(&h, 99.0), [0.6, 0.62, 0.61]);
        assert_eq!(price_at(&h, -1.0), [0.4, 0.42, 0.41]);
    }

    #[test]
    fn jitter_is_deterministic_and_small() {
        assert_eq!(jitter_cents("T", 7), jitter_cents("T", 7));
        assert!((0..100).all(|n| (-1.0..=1.0).contains(&jitter_cents("T", n))));
    }
}
