//! Time as the rest of the crate sees it: epoch milliseconds, formatted in UTC.
//!
//! Only the control plane and the live/paper edges read the wall clock; the engine is handed
//! times so backtests stay reproducible.

use chrono::{DateTime, SecondsFormat, Utc};

/// Wall-clock now, epoch milliseconds.
pub fn wall_clock_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// `2025-06-01T17:23:00.000Z`; an out-of-range value prints as the raw number.
pub fn format_ms(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_else(|| ms.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_utc_millis() {
        assert_eq!(
            super::format_ms(1_748_798_580_000),
            "2025-06-01T17:23:00.000Z"
        );
    }
}
