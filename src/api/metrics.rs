//! Prometheus metrics of the daemon, rendered as text for `GET /metrics`.
//!
//! Counters are atomics (the engine thread bumps them without locks); the tick-to-decision
//! histogram keeps 100 ns resolution up to 200 µs so p50/p99 are real percentiles, not bucket edges.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use dashmap::DashMap;
use rust_decimal::Decimal;

use crate::engine::ledger::Ledger;
use crate::market::feed::FeedState;

const FINE_BUCKET_NS: u64 = 100;
const FINE_BUCKETS: usize = 2_000;
/// Prometheus histogram edges (seconds).
const EDGES: [f64; 12] = [
    1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 5e-3, 1e-2,
];

pub struct LatencyHistogram {
    fine: Vec<AtomicU64>,
    /// Above the fine range, in whole microseconds, kept sorted in a map (rare by design).
    slow: Mutex<BTreeMap<u64, u64>>,
    count: AtomicU64,
    sum_ns: AtomicU64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            fine: (0..FINE_BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            slow: Mutex::new(BTreeMap::new()),
            count: AtomicU64::new(0),
            sum_ns: AtomicU64::new(0),
        }
    }
}

impl LatencyHistogram {
    pub fn record(&self, ns: u64) {
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
        let b = (ns / FINE_BUCKET_NS) as usize;
        if b < FINE_BUCKETS {
            self.fine[b].fetch_add(1, Ordering::Relaxed);
        } else if let Ok(mut slow) = self.slow.lock() {
            *slow.entry(ns / 1000).or_insert(0) += 1;
        }
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Upper edge (ns) of the bucket holding quantile `q` (0..=1).
    pub fn quantile_ns(&self, q: f64) -> Option<u64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (i, c) in self.fine.iter().enumerate() {
            seen += c.load(Ordering::Relaxed);
            if seen >= rank {
                return Some((i as u64 + 1) * FINE_BUCKET_NS);
            }
        }
        let slow = self.slow.lock().ok()?;
        for (us, c) in slow.iter() {
            seen += c;
            if seen >= rank {
                return Some((us + 1) * 1000);
            }
        }
        None
    }

    fn cumulative_below(&self, ns: u64) -> u64 {
        let full = ((ns / FINE_BUCKET_NS) as usize).min(FINE_BUCKETS);
        let mut n: u64 = self.fine[..full]
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum();
        if ns / FINE_BUCKET_NS > FINE_BUCKETS as u64 {
            if let Ok(slow) = self.slow.lock() {
                n += slow.range(..ns / 1000).map(|(_, c)| *c).sum::<u64>();
            }
        }
        n
    }
}

#[derive(Default)]
pub struct Metrics {
    pub tick_to_decision: LatencyHistogram,
    orders: DashMap<(i64, &'static str), u64>,
    fills: DashMap<(i64, &'static str), u64>,
    /// strategy → (realized, unrealized, inventory, equity)
    pnl: DashMap<i64, (Decimal, Decimal, Decimal, Decimal)>,
    risk_events: DashMap<String, u64>,
    pub alerts_sent: AtomicU64,
    pub alerts_failed: AtomicU64,
    pub alerts_deduplicated: AtomicU64,
    pub alerts_dropped: AtomicU64,
}

impl Metrics {
    pub fn order(&self, strategy: i64, status: &'static str) {
        *self.orders.entry((strategy, status)).or_insert(0) += 1;
    }

    pub fn fill(&self, strategy: i64, side: &'static str, ledger: &Ledger) {
        *self.fills.entry((strategy, side)).or_insert(0) += 1;
        self.pnl
            .entry(strategy)
            .and_modify(|e| {
                e.0 = ledger.realized_pnl;
                e.2 = ledger.base;
            })
            .or_insert((
                ledger.realized_pnl,
                Decimal::ZERO,
                ledger.base,
                ledger.quote,
            ));
    }

    pub fn mark(&self, strategy: i64, ledger: &Ledger, price: Decimal) {
        self.pnl.insert(
            strategy,
            (
                ledger.realized_pnl,
                ledger.unrealized_pnl(price),
                ledger.base,
                ledger.equity(price),
            ),
        );
    }

    pub fn risk_event(&self, kind: &str) {
        *self.risk_events.entry(kind.to_string()).or_insert(0) += 1;
    }

    /// The Prometheus text exposition (version 0.0.4).
    pub fn render(&self, feed: &FeedState, stale_after_ms: i64, now_ms: i64) -> String {
        let mut s = String::with_capacity(8 * 1024);
        let counter = |s: &mut String, name: &str, help: &str| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} counter");
        };
        let gauge = |s: &mut String, name: &str, help: &str| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} gauge");
        };
        let symbols = feed.symbol_status(now_ms, stale_after_ms);
        counter(
            &mut s,
            "bsc_bot_ticks_received_total",
            "Trades received from the market feed.",
        );
        for sym in &symbols {
            let _ = writeln!(
                s,
                "bsc_bot_ticks_received_total{{symbol=\"{}\"}} {}",
                sym.stream, sym.ticks
            );
        }
        gauge(
            &mut s,
            "bsc_bot_last_tick_age_seconds",
            "Seconds since the symbol's last trade (-1: none yet).",
        );
        for sym in &symbols {
            let age = sym
                .last_tick_age_ms
                .map(|a| a as f64 / 1000.0)
                .unwrap_or(-1.0);
            let _ = writeln!(
                s,
                "bsc_bot_last_tick_age_seconds{{symbol=\"{}\"}} {age}",
                sym.stream
            );
        }
        gauge(
            &mut s,
            "bsc_bot_feed_stale",
            "1 when the symbol's feed is stale.",
        );
        for sym in &symbols {
            let _ = writeln!(
                s,
                "bsc_bot_feed_stale{{symbol=\"{}\"}} {}",
                sym.stream,
                u8::from(sym.stale)
            );
        }
        gauge(
            &mut s,
            "bsc_bot_websocket_connections",
            "Open market-data WebSocket connections.",
        );
        let _ = writeln!(
            s,
            "bsc_bot_websocket_connections {}",
            u8::from(feed.connected.load(Ordering::Relaxed))
        );
        counter(
            &mut s,
            "bsc_bot_feed_reconnects_total",
            "Market feed reconnections.",
        );
        let _ = writeln!(
            s,
            "bsc_bot_feed_reconnects_total {}",
            feed.reconnects.load(Ordering::Relaxed)
        );
        counter(
            &mut s,
            "bsc_bot_feed_malformed_frames_total",
            "Frames that could not be parsed (skipped).",
        );
        let _ = writeln!(
            s,
            "bsc_bot_feed_malformed_frames_total {}",
            feed.malformed_frames.load(Ordering::Relaxed)
        );
        counter(
            &mut s,
            "bsc_bot_orders_total",
            "Orders by strategy and status.",
        );
        let mut orders: Vec<_> = self.orders.iter().map(|e| (*e.key(), *e.value())).collect();
        orders.sort();
        for ((sid, status), n) in orders {
            let _ = writeln!(
                s,
                "bsc_bot_orders_total{{strategy=\"{sid}\",status=\"{status}\"}} {n}"
            );
        }
        counter(&mut s, "bsc_bot_fills_total", "Fills by strategy and side.");
        let mut fills: Vec<_> = self.fills.iter().map(|e| (*e.key(), *e.value())).collect();
        fills.sort();
        for ((sid, side), n) in fills {
            let _ = writeln!(
                s,
                "bsc_bot_fills_total{{strategy=\"{sid}\",side=\"{side}\"}} {n}"
            );
        }
        let mut pnl: Vec<_> = self.pnl.iter().map(|e| (*e.key(), *e.value())).collect();
        pnl.sort_by_key(|p| p.0);
        for (name, help, pick) in [
            (
                "bsc_bot_strategy_realized_pnl",
                "Realized PnL in quote.",
                0usize,
            ),
            (
                "bsc_bot_strategy_unrealized_pnl",
                "Unrealized PnL at the last price, in quote.",
                1,
            ),
            ("bsc_bot_strategy_inventory", "Base held.", 2),
            ("bsc_bot_strategy_equity", "Quote + base x last price.", 3),
        ] {
            gauge(&mut s, name, help);
            for (sid, v) in &pnl {
                let value = [v.0, v.1, v.2, v.3][pick];
                let _ = writeln!(s, "{name}{{strategy=\"{sid}\"}} {value}");
            }
        }
        counter(&mut s, "bsc_bot_risk_events_total", "Risk events by kind.");
        let mut risk: Vec<_> = self
            .risk_events
            .iter()
            .map(|e| (e.key().clone(), *e.value()))
            .collect();
        risk.sort();
        for (kind, n) in risk {
            let _ = writeln!(s, "bsc_bot_risk_events_total{{kind=\"{kind}\"}} {n}");
        }
        counter(
            &mut s,
            "bsc_bot_alerts_total",
            "Alert deliveries by outcome.",
        );
        for (outcome, v) in [
            ("sent", &self.alerts_sent),
            ("failed", &self.alerts_failed),
            ("deduplicated", &self.alerts_deduplicated),
            ("dropped", &self.alerts_dropped),
        ] {
            let _ = writeln!(
                s,
                "bsc_bot_alerts_total{{outcome=\"{outcome}\"}} {}",
                v.load(Ordering::Relaxed)
            );
        }
        let h = &self.tick_to_decision;
        let _ = writeln!(
            s,
            "# HELP bsc_bot_tick_to_decision_seconds Frame received to engine decision, per tick.\n# TYPE bsc_bot_tick_to_decision_seconds histogram"
        );
        for edge in EDGES {
            let _ = writeln!(
                s,
                "bsc_bot_tick_to_decision_seconds_bucket{{le=\"{edge}\"}} {}",
                h.cumulative_below((edge * 1e9) as u64)
            );
        }
        let count = h.count();
        let _ = writeln!(
            s,
            "bsc_bot_tick_to_decision_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            s,
            "bsc_bot_tick_to_decision_seconds_sum {}",
            h.sum_ns.load(Ordering::Relaxed) as f64 / 1e9
        );
        let _ = writeln!(s, "bsc_bot_tick_to_decision_seconds_count {count}");
        gauge(
            &mut s,
            "bsc_bot_tick_to_decision_quantile_seconds",
            "Tick-to-decision latency quantiles since start.",
        );
        for q in [0.5, 0.9, 0.99] {
            let v = h.quantile_ns(q).map(|ns| ns as f64 / 1e9).unwrap_or(0.0);
            let _ = writeln!(
                s,
                "bsc_bot_tick_to_decision_quantile_seconds{{quantile=\"{q}\"}} {v}"
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles() {
        let h = LatencyHistogram::default();
        for ns in 1..=1000u64 {
            h.record(ns * 100);
        }
        assert_eq!(h.quantile_ns(0.5), Some(50_100));
        assert_eq!(h.quantile_ns(0.99), Some(99_100));
        h.record(5_000_000);
        assert_eq!(h.quantile_ns(1.0), Some(5_001_000));
    }
}
