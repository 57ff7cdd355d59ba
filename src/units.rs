//! Quantities as people write and read them: durations (`500ms`, `5s`, `2m`), sizes
//! (`64KiB`, `1MiB`) and latencies in microseconds shown in the unit that fits. Flags,
//! scenario files, budgets, terminal tables and reports all go through here, so a
//! value is written the same way wherever it is shown.

use std::time::Duration;

/// A duration as people write it: `500ms`, `5s`, `2m`, `1h 30m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (examples: 500ms, 5s, 2m)"))
}

/// A duration as [`parse_duration`] reads it back: `5s`, `1m 30s`, `250ms`.
pub fn show_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// A size in bytes: `65536`, `64KiB`, `1MiB`, `2GiB` (`KB`/`MB`/`GB` mean the same).
pub fn parse_bytes(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: usize = digits
        .parse()
        .map_err(|_| format!("{s:?}: expected a size such as 65536, 64KiB or 1MiB"))?;
    let scale = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => {
            return Err(format!(
                "{s:?}: unknown unit {other:?}; use KiB, MiB or GiB"
            ));
        }
    };
    match n.checked_mul(scale) {
        Some(0) => Err("must be more than 0".into()),
        Some(bytes) => Ok(bytes),
        None => Err(format!("{s:?} is too large")),
    }
}

/// A size as [`parse_bytes`] reads it back: `1MiB`, `64KiB`, `1000`.
pub fn show_bytes(bytes: usize) -> String {
    for (unit, scale) in [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if bytes >= scale && bytes.is_multiple_of(scale) {
            return format!("{}{unit}", bytes / scale);
        }
    }
    bytes.to_string()
}

/// A number that must be finite and more than zero (a rate, a speed).
pub fn parse_positive(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        Ok(v) => Err(format!("must be a positive number, got {v}")),
        Err(e) => Err(format!("{e}")),
    }
}

/// `1234.0` µs as `1.23ms`; whole units where they fit.
pub fn format_micros(us: f64) -> String {
    if us >= 1_000_000.0 {
        format!("{:.3}s", us / 1_000_000.0)
    } else if us >= 1_000.0 {
        format!("{:.2}ms", us / 1_000.0)
    } else {
        format!("{us:.0}µs")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_as_people_write_them() {
        assert_eq!(parse_bytes("1MiB"), Ok(1 << 20));
        assert_eq!(parse_bytes("64 KiB"), Ok(64 << 10));
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert!(parse_bytes("0").is_err());
        assert!(parse_bytes("1 parsec").is_err());
    }

    #[test]
    fn shown_values_read_back_as_themselves() {
        for bytes in [1, 1000, 1024, 64 << 10, 1 << 20, 3 << 30, (1 << 20) + 1] {
            assert_eq!(parse_bytes(&show_bytes(bytes)), Ok(bytes), "{bytes}");
        }
        assert_eq!(show_bytes(1 << 20), "1MiB");
        for d in [
            Duration::from_millis(100),
            Duration::from_secs(5),
            Duration::from_secs(90),
        ] {
            assert_eq!(parse_duration(&show_duration(d)), Ok(d), "{d:?}");
        }
        assert_eq!(show_duration(Duration::from_secs(5)), "5s");
    }

    #[test]
    fn bad_numbers_say_why() {
        assert_eq!(parse_positive("2.5"), Ok(2.5));
        assert!(parse_positive("0").unwrap_err().contains("positive"));
        assert!(parse_positive("inf").is_err());
        assert!(
            parse_duration("5 parsecs")
                .unwrap_err()
                .contains("examples")
        );
    }
}
