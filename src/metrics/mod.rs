//! Prometheus metrics (floor 7, may use floors 0–6) of the daemon.
//!
//! Counters and histograms the daemon bumps as the engine loop, the writer, the funds manager and
//! the alerter work (the engine, a floor below, reports to a recorder and knows nothing of them); [`render`] turns them into the text `GET /metrics` serves.
//!
//! Counters are atomics (the engine thread bumps them without locks); the tick-to-decision
//! histogram keeps 100 ns resolution up to 200 µs so p50/p99 are real percentiles, not bucket edges.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use dashmap::DashMap;
use rust_decimal::Decimal;

pub mod render;

use crate::engine::ledger::Ledger;
use crate::model::order::Side;

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

/// One strategy's counters and gauges. The engine thread holds an `Arc` per strategy, so a fill
/// updates them without a map lookup or hashing on the hot path.
#[derive(Debug, Default)]
pub struct StrategyMetrics {
    pub orders_placed: AtomicU64,
    pub orders_cancelled: AtomicU64,
    /// Orders a venue answered with a failure (a reverted or dropped swap among them).
    pub orders_failed: AtomicU64,
    pub fills_buy: AtomicU64,
    pub fills_sell: AtomicU64,
    gauges: Mutex<PnlGauges>,
}

/// Realized and unrealized PnL, inventory and equity, in the strategy's quote asset.
#[derive(Debug, Default, Clone, Copy)]
struct PnlGauges {
    realized: Decimal,
    unrealized: Decimal,
    inventory: Decimal,
    equity: Decimal,
    /// Loss since 00:00 UTC (negative: a gain) and failed / answered orders in the risk window,
    /// as the risk guard last saw them.
    daily_loss: Decimal,
    error_rate: Decimal,
}

impl StrategyMetrics {
    pub fn order_placed(&self) {
        self.orders_placed.fetch_add(1, Ordering::Relaxed);
    }

    pub fn order_cancelled(&self) {
        self.orders_cancelled.fetch_add(1, Ordering::Relaxed);
    }

    pub fn order_failed(&self) {
        self.orders_failed.fetch_add(1, Ordering::Relaxed);
    }

    /// Counted at once; PnL, inventory and equity follow at the next mark (at least every
    /// second in the daemon), which keeps the fill path free of locks.
    pub fn fill(&self, side: Side) {
        let counter = match side {
            Side::Buy => &self.fills_buy,
            Side::Sell => &self.fills_sell,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn mark(&self, ledger: &Ledger, price: Decimal) {
        if let Ok(mut g) = self.gauges.lock() {
            *g = PnlGauges {
                realized: ledger.realized_pnl,
                unrealized: ledger.unrealized_pnl(price),
                inventory: ledger.base,
                equity: ledger.equity(price),
                ..*g
            };
        }
    }

    pub fn risk_marked(&self, view: &crate::risk::guard::StrategyRiskView) {
        if let Ok(mut g) = self.gauges.lock() {
            g.daily_loss = view.daily_loss;
            g.error_rate = view.error_rate.unwrap_or_default();
        }
    }

    fn gauges(&self) -> PnlGauges {
        self.gauges.lock().map(|g| *g).unwrap_or_default()
    }
}

/// One rollout as `/metrics` shows it.
#[derive(Debug, Clone, Default)]
pub struct CanaryGauges {
    pub stage: i64,
    pub state: String,
    /// (gate, measure, value when a number, passed).
    pub gates: Vec<(String, String, Option<f64>, bool)>,
}

#[derive(Default)]
pub struct Metrics {
    pub tick_to_decision: LatencyHistogram,
    /// database strategy id → its metrics (registered when the daemon adds the strategy).
    strategies: Mutex<BTreeMap<i64, Arc<StrategyMetrics>>>,
    risk_events: DashMap<String, u64>,
    /// Writes handed to the persistence writer, and those it has committed (or given up on):
    /// the difference is how far the database trails the engine.
    pub persist_queued: AtomicU64,
    pub persist_done: AtomicU64,
    pub alerts_sent: AtomicU64,
    pub alerts_failed: AtomicU64,
    pub alerts_deduplicated: AtomicU64,
    pub alerts_dropped: AtomicU64,
    /// Orders the venue answered with a failure, retryable or not.
    pub orders_failed_retryable: AtomicU64,
    pub orders_failed_permanent: AtomicU64,
    /// 1 while the writer cannot write to the database (trading is halted meanwhile).
    pub store_down: AtomicU64,
    /// Failed write attempts of the persistence writer (each batch retried until it commits).
    pub persist_failures: AtomicU64,
    /// Live markets: pool price, reference price, divergence (by `BASE/QUOTE`), refreshed by the
    /// engine about once a second.
    pub markets: Mutex<BTreeMap<String, crate::model::divergence::MarketPrices>>,
    /// Quote value of live swap inputs within the last hour (the engine's risk guard's figure).
    pub hourly_outflow: Mutex<Decimal>,
    /// Trading wallets' BNB: (name, address) → balance, read by the daemon's balance watch.
    pub wallet_bnb: Mutex<BTreeMap<(String, String), Decimal>>,
    /// The live side's node connection, whose endpoints' request durations are shown.
    pub rpc: Mutex<Option<crate::chain::ChainClient>>,
    /// Canary rollouts by name: the stage index and state they are in, and the values of the
    /// gate last measured (measure → value, 1/0 passed).
    pub canary: Mutex<BTreeMap<String, CanaryGauges>>,
    /// Seconds the chain's head lags behind the host's clock (`None` until read).
    pub chain_head_lag_secs: Mutex<Option<i64>>,
    /// A cluster member's leases (`None` outside a cluster).
    pub cluster: Mutex<Option<ClusterGauges>>,
}

/// What a cluster member shows of its leases.
#[derive(Debug, Clone, Default)]
pub struct ClusterGauges {
    pub node: i64,
    /// Held units → their epoch and the seconds left on them (database clock).
    pub units: BTreeMap<String, (i64, f64)>,
    /// Seconds the last renewal took (the round trip, all leases in one statement).
    pub last_renew_seconds: f64,
    pub renewals: u64,
    pub renew_failures: u64,
    /// Units this daemon took from a member that stopped renewing (or died on its host).
    pub failovers: u64,
    /// Units it lost to another member (it had been paused or cut off).
    pub lost: u64,
    /// Units on record with no live owner (free, or their owner's lease ran out).
    pub unowned: u64,
    /// 1 while it does not trust its leases (it could not renew them in time).
    pub lapsed: bool,
}

impl Metrics {
    /// The live markets as last published (empty when none are, or the lock was poisoned).
    pub fn markets_now(&self) -> BTreeMap<String, crate::model::divergence::MarketPrices> {
        self.markets.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// The metrics of strategy `id`, created on first use (a restarted strategy keeps its series).
    pub fn strategy(&self, id: i64) -> Arc<StrategyMetrics> {
        match self.strategies.lock() {
            Ok(mut map) => map.entry(id).or_default().clone(),
            // A poisoned map only loses the series, never trading.
            Err(_) => Arc::new(StrategyMetrics::default()),
        }
    }

    /// Engine writes not yet in the database.
    pub fn persist_backlog(&self) -> u64 {
        let done = self.persist_done.load(Ordering::Relaxed);
        self.persist_queued
            .load(Ordering::Relaxed)
            .saturating_sub(done)
    }

    pub fn order_failed(&self, retryable: bool) {
        let counter = if retryable {
            &self.orders_failed_retryable
        } else {
            &self.orders_failed_permanent
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn canary_stage(&self, rollout: &str, stage: i64, state: &str) {
        if let Ok(mut m) = self.canary.lock() {
            let g = m.entry(rollout.to_string()).or_default();
            g.stage = stage;
            g.state = state.to_string();
        }
    }

    pub fn canary_gate(&self, rollout: &str, report: &crate::canary::GateReport) {
        if let Ok(mut m) = self.canary.lock() {
            let g = m.entry(rollout.to_string()).or_default();
            g.gates.retain(|(gate, ..)| *gate != report.gate);
            for v in &report.values {
                let value = v.value.as_deref().and_then(|t| t.parse::<f64>().ok());
                g.gates
                    .push((report.gate.clone(), v.measure.to_string(), value, v.passed));
            }
        }
    }

    pub fn risk_event(&self, kind: &str) {
        *self.risk_events.entry(kind.to_string()).or_insert(0) += 1;
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
