//! Where the engine reports what happened: fills CSV and metrics in backtests, the database in
//! paper/live. Every method has an empty default so a recorder implements only what it needs.

use rust_decimal::Decimal;

use super::ledger::Ledger;
use super::venue::{Execution, VenueReport};
use crate::model::order::{Fill, OrderId, RestingOrder, StrategyIx};
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
    /// An approved order went to the venue; it is in flight until its answer.
    fn order_submitted(&mut self, _order: &Execution, _ts_us: i64) {}
    /// The venue took the order under `reference` (a tx hash on chain).
    fn order_accepted(
        &mut self,
        _strategy: StrategyIx,
        _order: OrderId,
        _reference: &str,
        _ts_us: i64,
    ) {
    }
    /// The venue answered that the order did not execute.
    fn order_failed(
        &mut self,
        _strategy: StrategyIx,
        _order: OrderId,
        _reason: &str,
        _retryable: bool,
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
    /// The risk guard refused `order`; it never reached a venue.
    fn refused(&mut self, _order: &Execution, _refusal: &Refusal, _ts_us: i64) {}
    /// A venue report that matched no order in flight (late, duplicated or unknown): not applied.
    fn report_ignored(&mut self, _report: &VenueReport, _why: &str, _ts_us: i64) {}
    /// The risk guard paused a strategy (`kind`: daily_loss, error_rate, …); the status change
    /// is reported too.
    fn risk_paused(&mut self, _strategy: StrategyIx, _kind: &str, _message: &str, _ts_us: i64) {}
    /// The risk guard stopped new buys on a market until `until_us` (a price jump).
    fn buys_blocked(&mut self, _symbol: usize, _until_us: i64, _message: &str, _ts_us: i64) {}
    /// A strategy's risk figures at a mark (loss since 00:00 UTC, error rate).
    fn risk_marked(&mut self, _strategy: StrategyIx, _view: &crate::risk::guard::StrategyRiskView) {
    }
    /// Quote value that left the trading wallets within the last hour, at a mark.
    fn outflow_marked(&mut self, _hourly: Decimal) {}
    /// Whether to call `risk_marked` and `outflow_marked` at all: working those figures out
    /// at every mark (a division, the shared ledger's lock) is wasted on a recorder that does
    /// not show them, such as a backtest's.
    fn shows_risk(&self) -> bool {
        false
    }
    /// Periodic equity mark (every `mark_interval_us` of event time, and at the end).
    fn mark(&mut self, _ts_us: i64, _strategy: StrategyIx, _mark: &Mark<'_>) {}
}

/// A strategy's books at a mark: its ledger, the mark price and the equity at it (worked out
/// once: a sweep marks thousands of grids a minute of data).
#[derive(Debug, Clone, Copy)]
pub struct Mark<'a> {
    pub ledger: &'a Ledger,
    pub price: Decimal,
    pub equity: Decimal,
}

/// Keeps what happened in memory; for tests and short runs.
#[derive(Debug, Default)]
pub struct MemoryRecorder {
    pub fills: Vec<Fill>,
    pub cancelled: Vec<OrderId>,
    pub statuses: Vec<(StrategyIx, StrategyStatus, String)>,
    pub refusals: Vec<(StrategyIx, Refusal)>,
    pub submitted: Vec<OrderId>,
    /// `(order, reason, retryable)`.
    pub failures: Vec<(OrderId, String, bool)>,
    /// `(order, why)` of reports that were not applied.
    pub ignored: Vec<(OrderId, String)>,
    /// `(strategy, kind)` of risk pauses, and `(symbol, until)` of markets closed to buys.
    pub risk_pauses: Vec<(StrategyIx, String)>,
    pub buys_blocked: Vec<(usize, i64)>,
}

impl Recorder for MemoryRecorder {
    fn fill(&mut self, fill: &Fill, _ledger: &Ledger) {
        self.fills.push(fill.clone());
    }
    fn order_cancelled(&mut self, _s: StrategyIx, order: OrderId, _r: &str, _t: i64) {
        self.cancelled.push(order);
    }
    fn order_submitted(&mut self, order: &Execution, _t: i64) {
        self.submitted.push(order.order_id);
    }
    fn order_failed(&mut self, _s: StrategyIx, order: OrderId, reason: &str, retry: bool, _t: i64) {
        self.failures.push((order, reason.to_string(), retry));
    }
    fn status_changed(&mut self, s: StrategyIx, status: StrategyStatus, reason: &str, _t: i64) {
        self.statuses.push((s, status, reason.to_string()));
    }
    fn refused(&mut self, order: &Execution, refusal: &Refusal, _t: i64) {
        self.refusals.push((order.strategy, refusal.clone()));
    }
    fn report_ignored(&mut self, report: &VenueReport, why: &str, _t: i64) {
        self.ignored.push((report.order_id(), why.to_string()));
    }
    fn risk_paused(&mut self, s: StrategyIx, kind: &str, _m: &str, _t: i64) {
        self.risk_pauses.push((s, kind.to_string()));
    }
    fn buys_blocked(&mut self, symbol: usize, until_us: i64, _m: &str, _t: i64) {
        self.buys_blocked.push((symbol, until_us));
    }
}
