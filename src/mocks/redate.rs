//! The recorded games moved to the day they are served: every date in a game's
//! recordings (ESPN's times and dates, Kalshi's tickers `KXNBAGAME-24NOV16MILBOS`,
//! close times, rules text) moved by the same whole number of days, so the mock's
//! scoreboard shows today's games and Kalshi lists today's markets for them, and
//! discovery matches them exactly as it matches real ones. Pure: strings in, strings
//! out.

use serde_json::Value;

use crate::clock::{civil_from_days, days_from_civil};

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];

/// Days from the Eastern date of `from_unix_s` to the Eastern date of `to_unix_s`.
pub fn days_between(from_unix_s: i64, to_unix_s: i64) -> i64 {
    let day = |unix_s: i64| {
        let (y, m, d) = crate::clock::eastern_day(unix_s.max(0) as u64);
        days_from_civil(y, m, d)
    };
    day(to_unix_s) - day(from_unix_s)
}

/// Every string in `value` with its dates moved by `days`, and every Unix
/// `timestamp` (API-SPORTS') with them, in place.
pub fn shift_value(value: &mut Value, days: i64) {
    match value {
        Value::String(s) => {
            if let Some(moved) = shift_text(s, days) {
                *s = moved;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| shift_value(v, days)),
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                match (key.as_str(), v.as_i64()) {
                    ("timestamp", Some(t)) => *v = Value::from(t + days * 86_400),
                    _ => shift_value(v, days),
                }
            }
        }
        _ => {}
    }
}

/// `text` with each ISO date (`2024-11-16`, in a time or alone) and each Kalshi ticker
/// date (`-24NOV16`) moved by `days`; None when it holds neither.
pub fn shift_text(text: &str, days: i64) -> Option<String> {
    if days == 0 {
        return None;
    }
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let (mut copied, mut i, mut changed) = (0, 0, false);
    while i < bytes.len() {
        let found = iso_date_at(bytes, i)
            .map(|day| (10, iso(day + days)))
            .or_else(|| ticker_date_at(bytes, i).map(|day| (7, ticker(day + days))));
        match found {
            Some((len, moved)) => {
                out.push_str(&text[copied..i]);
                out.push_str(&moved);
                i += len;
                copied = i;
                changed = true;
            }
            None => i += 1,
        }
    }
    out.push_str(&text[copied..]);
    changed.then_some(out)
}

/// The day number of a `YYYY-MM-DD` at `i` that no digit runs into.
fn iso_date_at(b: &[u8], i: usize) -> Option<i64> {
    let s = b.get(i..i + 10)?;
    let shape = s.iter().enumerate().all(|(k, c)| match k {
        4 | 7 => *c == b'-',
        _ => c.is_ascii_digit(),
    });
    let bounded = i == 0 || !b[i - 1].is_ascii_digit();
    let after = b.get(i + 10).is_none_or(|c| !c.is_ascii_digit());
    if !(shape && bounded && after) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| std::str::from_utf8(&s[r]).ok()?.parse::<i64>().ok();
    valid_day(n(0..4)?, n(5..7)?, n(8..10)?)
}

/// The day number of a Kalshi ticker date (`24NOV16`) right after a `-` at `i - 1`.
fn ticker_date_at(b: &[u8], i: usize) -> Option<i64> {
    if i == 0 || b[i - 1] != b'-' {
        return None;
    }
    let s = b.get(i..i + 7)?;
    let digits = |r: std::ops::Range<usize>| {
        let part = &s[r];
        part.iter()
            .all(u8::is_ascii_digit)
            .then(|| std::str::from_utf8(part).ok()?.parse::<i64>().ok())?
    };
    let month = MONTHS.iter().position(|m| m.as_bytes() == &s[2..5])? as i64 + 1;
    valid_day(2000 + digits(0..2)?, month, digits(5..7)?)
}

fn valid_day(y: i64, m: i64, d: i64) -> Option<i64> {
    let day = days_from_civil(y, m, d);
    (civil_from_days(day) == (y, m, d)).then_some(day)
}

fn iso(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

fn ticker(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{:02}{}{d:02}", y.rem_euclid(100), MONTHS[(m - 1) as usize])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_times_and_ticker_dates_move_together() {
        let shifted = |t: &str| shift_text(t, 385).unwrap();
        assert_eq!(
            shifted("KXNBAGAME-24NOV16MILBOS-BOS"),
            "KXNBAGAME-25DEC06MILBOS-BOS"
        );
        assert_eq!(shifted("2024-11-17T00:30:00Z"), "2025-12-07T00:30:00Z");
        assert_eq!(
            shifted("MIL at BOS (2024-11-16), scheduled for 2024-11-16."),
            "MIL at BOS (2025-12-06), scheduled for 2025-12-06."
        );
        // Across a month end and a leap day.
        assert_eq!(shift_text("2024-02-28", 2).unwrap(), "2024-03-01");
        assert_eq!(shift_text("-24FEB28", 1).unwrap(), "-24FEB29");
    }

    #[test]
    fn what_is_not_a_date_is_left_alone() {
        for text in [
            "401704823",
            "12024-11-167",
            "2024-13-01",
            "KXNBAGAME",
            "-24XYZ16",
            "1200.00",
            "Brunson makes 3-pt jump shot",
        ] {
            assert_eq!(shift_text(text, 30), None, "{text}");
        }
        assert_eq!(shift_text("2024-11-16", 0), None);
    }

    #[test]
    fn the_shift_is_between_eastern_dates() {
        // 00:30 UTC on 17 Nov is the evening of 16 Nov in New York.
        let game = crate::feeds::espn::parse_time("2024-11-17T00:30Z").unwrap();
        let noon = crate::feeds::espn::parse_time("2024-11-16T17:00Z").unwrap();
        assert_eq!(days_between(game, noon), 0);
        assert_eq!(days_between(game, noon + 86_400), 1);
    }

    #[test]
    fn json_strings_move_and_the_rest_stays() {
        let mut v = serde_json::json!({"ticker": "KXNBAGAME-24NOV16MILBOS", "n": 2024, "plays": [{"wallclock": "2024-11-17T00:41:23Z"}],
            "date": {"date": "2024-09-08", "timestamp": 1725814800}});
        shift_value(&mut v, 1);
        assert_eq!(
            v,
            serde_json::json!({"ticker": "KXNBAGAME-24NOV17MILBOS", "n": 2024, "plays": [{"wallclock": "2024-11-18T00:41:23Z"}],
                "date": {"date": "2024-09-09", "timestamp": 1725814800 + 86_400}})
        );
    }
}
