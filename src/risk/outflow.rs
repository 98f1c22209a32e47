//! What left the trading wallets within the last hour, in quote value: live swap inputs (booked
//! by the engine's guard) and drips and sweeps (booked by the funds manager), in one ledger both
//! read, so either one's limit check sees the other's spending.

use std::collections::VecDeque;
use std::sync::Mutex;

use rust_decimal::Decimal;

const HOUR_MS: i64 = 3_600_000;

#[derive(Debug, Default)]
pub struct OutflowLedger {
    /// `(epoch ms, quote value)`, oldest first.
    entries: Mutex<VecDeque<(i64, Decimal)>>,
}

impl OutflowLedger {
    pub fn record(&self, at_ms: i64, value: Decimal) {
        if let Ok(mut e) = self.entries.lock() {
            let since = at_ms.saturating_sub(HOUR_MS);
            while e.front().is_some_and(|(t, _)| *t < since) {
                e.pop_front();
            }
            e.push_back((at_ms, value));
        }
    }

    /// Quote value out within the hour before `now_ms`.
    pub fn last_hour(&self, now_ms: i64) -> Decimal {
        let since = now_ms.saturating_sub(HOUR_MS);
        self.entries
            .lock()
            .map(|e| e.iter().filter(|(t, _)| *t >= since).map(|(_, v)| *v).sum())
            .unwrap_or_default()
    }
}
