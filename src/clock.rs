//! The wall clock, as Unix time in the units the wire and the stores use: frames carry
//! microseconds, InfluxDB lines nanoseconds, quotas and caches whole seconds; and the
//! calendar day US leagues date their games by (US Eastern). Every reading of "now"
//! as Unix time goes through here; durations between two instants use `Instant`,
//! which no wall-clock step can move.

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

/// The US Eastern calendar day of `unix_s`, `YYYY-MM-DD`: UTC-4 from the second
/// Sunday of March (07:00 UTC) to the first Sunday of November (06:00 UTC), else UTC-5.
pub fn eastern_date(unix_s: u64) -> String {
    let (y, m, d) = eastern_day(unix_s);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The US Eastern calendar day of `unix_s` as (year, month, day): the day US leagues
/// date their games by.
pub fn eastern_day(unix_s: u64) -> (i64, i64, i64) {
    let utc_days = (unix_s / 86_400) as i64;
    let (year, _, _) = civil_from_days(utc_days);
    let dst_start = days_from_civil(year, 3, 8 + (7 - weekday(days_from_civil(year, 3, 8))) % 7)
        * 86_400
        + 7 * 3_600;
    let dst_end = days_from_civil(
        year,
        11,
        1 + (7 - weekday(days_from_civil(year, 11, 1))) % 7,
    ) * 86_400
        + 6 * 3_600;
    let t = unix_s as i64;
    let offset = if (dst_start..dst_end).contains(&t) {
        4
    } else {
        5
    };
    civil_from_days((t - offset * 3_600).div_euclid(86_400))
}

/// 0 = Sunday, for a day count since 1970-01-01 (a Thursday).
fn weekday(days: i64) -> i64 {
    (days + 4).rem_euclid(7)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Evening games in the US are the next UTC day: the league's day is Eastern.
    #[test]
    fn the_league_day_is_the_us_eastern_day() {
        let at = |iso: &str| {
            humantime::parse_rfc3339(iso)
                .unwrap()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
        };
        // 8 pm EST on 2 Dec is 01:00 UTC on 3 Dec.
        assert_eq!(eastern_date(at("2026-12-03T01:00:00Z")), "2026-12-02");
        assert_eq!(eastern_date(at("2026-12-03T05:00:00Z")), "2026-12-03");
        // EDT (UTC-4) in summer: 23:30 EDT on 4 July is 03:30 UTC on 5 July.
        assert_eq!(eastern_date(at("2026-07-05T03:30:00Z")), "2026-07-04");
        assert_eq!(eastern_date(at("2026-07-05T04:00:00Z")), "2026-07-05");
        // The switches: 8 March 2026 07:00 UTC (2 am EST) and 1 November 06:00 UTC.
        assert_eq!(eastern_date(at("2026-03-08T06:59:00Z")), "2026-03-08");
        assert_eq!(eastern_date(at("2026-03-09T03:59:00Z")), "2026-03-08");
        assert_eq!(eastern_date(at("2026-03-09T04:00:00Z")), "2026-03-09");
        assert_eq!(eastern_date(at("2026-11-02T04:30:00Z")), "2026-11-01");
        assert_eq!(eastern_date(at("2026-11-02T05:00:00Z")), "2026-11-02");
        assert_eq!(eastern_date(at("2024-02-29T12:00:00Z")), "2024-02-29");
    }

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
