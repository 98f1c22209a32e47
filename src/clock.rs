//! Time (floor 0, uses nothing of the crate): epoch milliseconds, formatted in UTC.
//!
//! Time as the rest of the crate sees it: epoch milliseconds, formatted in UTC.
//!
//! Only the control plane and the live/paper edges read the wall clock; the engine is handed
//! times so backtests stay reproducible.

use chrono::{DateTime, SecondsFormat, Utc};

/// Wall-clock now, epoch milliseconds. Read straight from `SystemTime` (no calendar work): the
/// feed stamps every trade with it.
pub fn wall_clock_ms() -> i64 {
    ms_of_us(wall_clock_us())
}

/// Epoch milliseconds of epoch microseconds (floored, also before 1970): what the database and
/// the API store for an engine time.
pub fn ms_of_us(us: i64) -> i64 {
    us.div_euclid(1000)
}

/// Wall-clock now, epoch microseconds (the engine's time unit in paper and live mode).
pub fn wall_clock_us() -> i64 {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
        // A clock set before 1970 is a broken host; negative time keeps ordering, not a panic.
        Err(e) => -i64::try_from(e.duration().as_micros()).unwrap_or(i64::MAX),
    }
}

/// The start of the UTC day `ms` falls in: where "today" begins for the daily figures.
pub fn utc_day_start_ms(ms: i64) -> i64 {
    ms - ms.rem_euclid(86_400_000)
}

/// `2025-06-01T17:23:00.000Z`; an out-of-range value prints as the raw number.
pub fn format_ms(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_else(|| ms.to_string())
}

/// Milliseconds on the monotonic clock since the first call in this process. It goes on while
/// the process is stopped (SIGSTOP) or the wall clock is set back, so a deadline kept on it (a
/// lease's) is never extended by a pause.
pub fn monotonic_ms() -> i64 {
    static BASE: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let base = BASE.get_or_init(std::time::Instant::now);
    i64::try_from(base.elapsed().as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    #[test]
    fn wall_clock_agrees_with_chrono() {
        let ours = super::wall_clock_ms();
        let chrono_ms = chrono::Utc::now().timestamp_millis();
        assert!((chrono_ms - ours).abs() < 1_000, "{ours} vs {chrono_ms}");
        assert!(ours > 1_700_000_000_000);
    }

    #[test]
    fn formats_utc_millis() {
        assert_eq!(
            super::format_ms(1_748_798_580_000),
            "2025-06-01T17:23:00.000Z"
        );
    }
}
