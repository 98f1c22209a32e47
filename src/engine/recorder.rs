//! Where the engine reports what happened: fills CSV and metrics in backtests, the database in
//! paper/live. Every method has an empty default so a recorder implements only what it needs.

use rust_decimal::Decimal;

use super::ledger::Ledger;
use super::order::{Fill, OrderId, RestingOrder, StrategyIx};
use crate::risk::Refusal;
use crate::strategy::StrategyStatus;

pub trait Recorder {
    fn order_placed(&mut self, _order: &RestingOrder, _ts_us: i64) {}
    fn order_cancelled(
        &mut self,
        _strategy: StrategyIx,
        _order: OrderId,
        _reason: &str,
        _ts_us: i64,
    ) {
    }
    fn fill(&mut self, _fill: &Fill, _ledger: &Ledger) {}
    fn status_changed(
        &mut self,
        _strategy: StrategyIx,
        _status: StrategyStatus,
        _reason: &str,
        _ts_us: i64,
    ) {
    }
    fn refused(&mut self, _strategy: StrategyIx, _refusal: &Refusal, _ts_us: i64) {}
    /// Periodic equity mark (every `mark_interval_us` of event time, and at the end).
    fn mark(&mut self, _ts_us: i64, _strategy: StrategyIx, _ledger: &Ledger, _price: Decimal) {}
}

/// Keeps fills in memory; for tests and short runs.
#[derive(Debug, Default)]
pub struct MemoryRecorder {
    pub fills: Vec<Fill>,
    pub cancelled: Vec<OrderId>,
    pub statuses: Vec<(StrategyIx, StrategyStatus, String)>,
    pub refusals: Vec<(StrategyIx, Refusal)>,
}

impl Recorder for MemoryRecorder {
    fn fill(&mut self, fill: &Fill, _ledger: &Ledger) {
        self.fills.push(fill.clone());
    }
    fn order_cancelled(&mut self, _s: StrategyIx, order: OrderId, _r: &str, _t: i64) {
        self.cancelled.push(order);
    }
    fn status_changed(&mut self, s: StrategyIx, status: StrategyStatus, reason: &str, _t: i64) {
        self.statuses.push((s, status, reason.to_string()));
    }
    fn refused(&mut self, s: StrategyIx, refusal: &Refusal, _t: i64) {
        self.refusals.push((s, refusal.clone()));
    }
}
