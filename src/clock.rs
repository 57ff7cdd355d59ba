//! The wall clock, as Unix time in the units the wire and the stores use: frames carry
//! microseconds, InfluxDB lines nanoseconds, quotas and caches whole seconds. Every
//! reading of "now" as Unix time goes through here; durations between two instants
//! use `Instant`, which no wall-clock step can move.

use std::time::{SystemTime, UNIX_EPOCH};

/// Unix time of `t` in microseconds; negative before 1970.
pub fn micros_of(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(after) => after.as_micros() as i64,
        Err(before) => -(before.duration().as_micros() as i64),
    }
}

/// Unix time of `t` in seconds, with the fraction; 0 before 1970.
pub fn seconds_of(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Now, in Unix microseconds.
pub fn unix_micros() -> i64 {
    micros_of(SystemTime::now())
}

/// Now, in Unix nanoseconds (InfluxDB's default precision); 0 before 1970.
pub fn unix_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// Now, in whole Unix seconds; 0 before 1970.
pub fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn times_before_1970_are_negative_microseconds() {
        let after = UNIX_EPOCH + Duration::from_micros(1_500);
        let before = UNIX_EPOCH - Duration::from_micros(1_500);
        assert_eq!(micros_of(after), 1_500);
        assert_eq!(micros_of(before), -1_500);
        assert_eq!(seconds_of(after), 0.0015);
        assert_eq!(seconds_of(before), 0.0);
    }

    #[test]
    fn the_units_agree_with_each_other() {
        let (s, us, ns) = (unix_seconds(), unix_micros(), unix_nanos());
        assert!(us / 1_000_000 >= s as i64 && us / 1_000_000 <= s as i64 + 1);
        assert!(ns / 1_000 >= us && ns / 1_000 - us < 1_000_000);
    }
}
