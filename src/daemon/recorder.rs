//! The daemon's engine recorder: turns what the engine reports into persistence operations for
//! the writer task and into metrics. It never blocks the engine (an unbounded channel; the writer
//! batches, so the channel stays short).

use std::sync::Arc;

use rust_decimal::Decimal;
use tokio::sync::mpsc;

use crate::engine::ledger::Ledger;
use crate::engine::Execution;
use crate::engine::Recorder;
use crate::engine::VenueReport;
use crate::metrics::{Metrics, StrategyMetrics};
use crate::model::order::{Fill, OrderId, RestingOrder, StrategyIx};
use crate::risk::Refusal;
use crate::strategy::grid::GridTag;
use crate::strategy::StrategyStatus;

/// A strategy's state as taken on the engine thread: plain clones, serialized by the writer so
/// the engine never spends a tick building JSON.
#[derive(Debug)]
pub struct StateDocument {
    pub strategy: Box<dyn crate::strategy::traits::StrategyState>,
    pub ledger: Ledger,
    pub last_price: Option<Decimal>,
    pub status: StrategyStatus,
    /// The risk guard's loss tracking (day, equity at 00:00 UTC, loss accepted at a resume).
    pub risk: Option<crate::risk::StrategyRiskState>,
}

impl StateDocument {
    /// The JSON stored in `strategies.state`.
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "strategy": self.strategy.to_value(),
            "ledger": self.ledger,
            "last_price": self.last_price.map(|p| p.normalize().to_string()),
            "status": self.status,
            "risk": self.risk,
        })
        .to_string()
    }
}

/// One thing to write to the database.
#[derive(Debug)]
pub enum PersistOp {
    /// The order as the engine holds it; the writer turns it into columns (off the engine thread).
    OrderPlaced {
        strategy_id: i64,
        order: RestingOrder,
        ts_ms: i64,
    },
    OrderCancelled {
        engine_id: OrderId,
        reason: String,
        ts_ms: i64,
    },
    /// An order went to the venue (a resting one fired, or a market order): in flight.
    OrderSubmitted {
        strategy_id: i64,
        order: Execution,
        ts_ms: i64,
    },
    OrderAccepted {
        engine_id: OrderId,
        reference: String,
        ts_ms: i64,
    },
    OrderFailed {
        engine_id: OrderId,
        reason: String,
        retryable: bool,
        ts_ms: i64,
    },
    /// The risk guard refused the order: on record as refused at once, with the reason.
    OrderRefused {
        strategy_id: i64,
        order: Execution,
        reason: String,
        ts_ms: i64,
    },
    Filled {
        strategy_id: i64,
        fill: Fill,
        ts_ms: i64,
    },
    Status {
        strategy_id: i64,
        status: StrategyStatus,
        reason: String,
        ts_ms: i64,
    },
    Snapshot {
        strategy_id: i64,
        state: StateDocument,
        ts_ms: i64,
    },
    Risk {
        strategy_id: Option<i64>,
        kind: String,
        severity: String,
        message: String,
        ts_ms: i64,
    },
    /// The risk guard paused a strategy: its status and the risk event, in one transaction.
    RiskPause {
        strategy_id: i64,
        kind: String,
        message: String,
        ts_ms: i64,
    },
    /// The risk guard stopped new buys on a market until `until_ms` (kept as the event's
    /// details, so a restart keeps the cool-down).
    BuysBlocked {
        symbol: String,
        until_ms: i64,
        message: String,
        ts_ms: i64,
    },
    /// Orders of these strategies re-issued from persisted state follow: match them with the
    /// pending orders on record instead of inserting duplicates.
    BeginRestore { strategy_ids: Vec<i64> },
    /// Restore done: pending orders on record that were not re-issued are cancelled.
    EndRestore,
    /// The database could not be written (seen by the control poller's heartbeat): the writer
    /// halts trading and keeps the outage to record it once a write succeeds.
    Outage { error: String },
    /// Flush and acknowledge (used at shutdown).
    Flush(tokio::sync::oneshot::Sender<()>),
    /// Everything one engine event changed, with the resulting strategy state: written in one
    /// transaction, so the record never holds a fill without the state that follows from it.
    Atomic(Vec<PersistOp>),
}

pub struct DaemonRecorder {
    tx: mpsc::UnboundedSender<PersistOp>,
    /// Operations of the event being processed, sent as one [`PersistOp::Atomic`].
    pending: Vec<PersistOp>,
    /// Engine strategy index → database id and metrics.
    strategies: Vec<(i64, Arc<StrategyMetrics>)>,
    /// Strategies whose state changed since the last snapshot.
    dirty: DirtySet,
    metrics: Arc<Metrics>,
    /// Risk breaches are alerted as well as recorded.
    pub alerter: Option<crate::alerts::Alerter>,
    /// Engine symbol index → market name (`BTC/USDT`), for what is recorded per market.
    symbol_names: Vec<String>,
}

/// Strategies touched by the current event, without a tree or a hash on the fill path: a flag
/// per strategy plus the list of flagged ones.
#[derive(Debug, Default)]
struct DirtySet {
    flags: Vec<bool>,
    list: Vec<StrategyIx>,
}

impl DirtySet {
    fn insert(&mut self, ix: StrategyIx) {
        if ix >= self.flags.len() {
            self.flags.resize(ix + 1, false);
        }
        if !self.flags[ix] {
            self.flags[ix] = true;
            self.list.push(ix);
        }
    }

    /// The flagged strategies in index order; the set is left empty.
    fn take(&mut self) -> Vec<StrategyIx> {
        for &ix in &self.list {
            self.flags[ix] = false;
        }
        let mut out = std::mem::take(&mut self.list);
        out.sort_unstable();
        out
    }
}

impl DaemonRecorder {
    pub fn new(tx: mpsc::UnboundedSender<PersistOp>, metrics: Arc<Metrics>) -> Self {
        DaemonRecorder {
            tx,
            pending: Vec::new(),
            strategies: Vec::new(),
            dirty: DirtySet::default(),
            metrics,
            alerter: None,
            symbol_names: Vec::new(),
        }
    }

    /// Name engine symbol `ix` (the registry does as it adds symbols).
    pub fn name_symbol(&mut self, ix: usize, name: &str) {
        if self.symbol_names.len() <= ix {
            self.symbol_names.resize(ix + 1, String::new());
        }
        self.symbol_names[ix] = name.to_string();
    }

    /// The engine index of a market named as [`Self::symbol_name`] gives it.
    pub fn symbol_ix(&self, name: &str) -> Option<usize> {
        self.symbol_names.iter().position(|n| n == name)
    }

    pub fn symbol_name(&self, ix: usize) -> String {
        self.symbol_names
            .get(ix)
            .cloned()
            .unwrap_or_else(|| format!("symbol #{ix}"))
    }

    /// The database id of the strategy the engine will add next (the recorder must know it
    /// before the engine reports a restored strategy's orders).
    pub fn register_strategy(&mut self, db_id: i64) {
        self.strategies.push((db_id, self.metrics.strategy(db_id)));
    }

    /// Database id of engine strategy `ix` (-1 for one never registered: a bug, kept visible).
    pub fn db_id(&self, ix: StrategyIx) -> i64 {
        self.strategies.get(ix).map_or(-1, |s| s.0)
    }

    /// Send directly (outside an engine event).
    pub fn send(&self, op: PersistOp) {
        self.metrics
            .persist_queued
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // The writer outlives the engine loop; a send can only fail during shutdown.
        let _ = self.tx.send(op);
    }

    fn push(&mut self, op: PersistOp) {
        self.pending.push(op);
    }

    /// True when the last event produced something to persist.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty() || !self.dirty.list.is_empty()
    }

    /// Strategies changed by the last event, in index order (the set is cleared).
    pub fn take_dirty(&mut self) -> Vec<StrategyIx> {
        self.dirty.take()
    }

    /// Send the event's operations plus `extra` (its state snapshots) as one transaction.
    pub fn commit_event(&mut self, extra: Vec<PersistOp>) {
        // The next event's list starts at this one's size: a burst of fills does not regrow it.
        let next = Vec::with_capacity(self.pending.len().max(64));
        let mut ops = std::mem::replace(&mut self.pending, next);
        ops.extend(extra);
        self.dirty.take();
        if !ops.is_empty() {
            self.send(PersistOp::Atomic(ops));
        }
    }

    fn metrics_of(&self, ix: StrategyIx) -> Option<&StrategyMetrics> {
        self.strategies.get(ix).map(|s| s.1.as_ref())
    }
}

pub(crate) fn cell_of(tag: u64) -> Option<i64> {
    GridTag::cell(tag).map(|c| c as i64)
}

impl Recorder for DaemonRecorder {
    fn order_placed(&mut self, order: &RestingOrder, ts_us: i64) {
        let strategy_id = self.db_id(order.strategy);
        self.dirty.insert(order.strategy);
        if let Some(m) = self.metrics_of(order.strategy) {
            m.order_placed();
        }
        self.push(PersistOp::OrderPlaced {
            strategy_id,
            order: order.clone(),
            ts_ms: crate::clock::ms_of_us(ts_us),
        });
    }

    fn order_cancelled(&mut self, strategy: StrategyIx, order: OrderId, reason: &str, ts_us: i64) {
        self.dirty.insert(strategy);
        if let Some(m) = self.metrics_of(strategy) {
            m.order_cancelled();
        }
        self.push(PersistOp::OrderCancelled {
            engine_id: order,
            reason: reason.to_string(),
            ts_ms: crate::clock::ms_of_us(ts_us),
        });
    }

    fn order_submitted(&mut self, order: &Execution, ts_us: i64) {
        let strategy_id = self.db_id(order.strategy);
        self.dirty.insert(order.strategy);
        self.push(PersistOp::OrderSubmitted {
            strategy_id,
            order: order.clone(),
            ts_ms: crate::clock::ms_of_us(ts_us),
        });
    }

    fn order_accepted(&mut self, strategy: StrategyIx, order: OrderId, reference: &str, ts: i64) {
        self.dirty.insert(strategy);
        self.push(PersistOp::OrderAccepted {
            engine_id: order,
            reference: reference.to_string(),
            ts_ms: crate::clock::ms_of_us(ts),
        });
    }

    fn order_failed(
        &mut self,
        strategy: StrategyIx,
        order: OrderId,
        reason: &str,
        retryable: bool,
        ts_us: i64,
    ) {
        self.dirty.insert(strategy);
        self.metrics.order_failed(retryable);
        if let Some(m) = self.metrics_of(strategy) {
            m.order_failed();
        }
        self.push(PersistOp::OrderFailed {
            engine_id: order,
            reason: reason.to_string(),
            retryable,
            ts_ms: crate::clock::ms_of_us(ts_us),
        });
    }

    fn report_ignored(&mut self, report: &VenueReport, why: &str, ts_us: i64) {
        self.metrics.risk_event("venue_report_ignored");
        tracing::warn!(
            order_id = report.order_id(),
            report = report.kind(),
            why,
            "venue report ignored"
        );
        self.push(PersistOp::Risk {
            strategy_id: None,
            kind: "venue_report_ignored".into(),
            severity: "warning".into(),
            message: format!(
                "{} report for engine order {}: {why}",
                report.kind(),
                report.order_id()
            ),
            ts_ms: crate::clock::ms_of_us(ts_us),
        });
    }

    fn fill(&mut self, fill: &Fill, _ledger: &Ledger) {
        let strategy_id = self.db_id(fill.strategy);
        self.dirty.insert(fill.strategy);
        if let Some(m) = self.metrics_of(fill.strategy) {
            m.fill(fill.side);
        }
        self.push(PersistOp::Filled {
            strategy_id,
            fill: fill.clone(),
            ts_ms: crate::clock::ms_of_us(fill.ts_us),
        });
    }

    fn status_changed(
        &mut self,
        strategy: StrategyIx,
        status: StrategyStatus,
        reason: &str,
        ts_us: i64,
    ) {
        self.dirty.insert(strategy);
        let strategy_id = self.db_id(strategy);
        self.push(PersistOp::Status {
            strategy_id,
            status,
            reason: reason.to_string(),
            ts_ms: crate::clock::ms_of_us(ts_us),
        });
    }

    fn refused(&mut self, order: &Execution, refusal: &Refusal, ts_us: i64) {
        let strategy = order.strategy;
        self.dirty.insert(strategy);
        self.metrics.risk_event(refusal.kind());
        let strategy_id = self.db_id(strategy);
        if let Some(a) = &self.alerter {
            a.raise(
                "risk_breach",
                "warning",
                format!("strategy {strategy_id}: order refused: {refusal}"),
            );
        }
        self.push(PersistOp::OrderRefused {
            strategy_id,
            order: order.clone(),
            reason: refusal.to_string(),
            ts_ms: crate::clock::ms_of_us(ts_us),
        });
        self.push(PersistOp::Risk {
            strategy_id: Some(strategy_id),
            kind: refusal.kind().into(),
            severity: "warning".into(),
            message: refusal.to_string(),
            ts_ms: crate::clock::ms_of_us(ts_us),
        });
    }

    fn risk_paused(&mut self, strategy: StrategyIx, kind: &str, message: &str, ts_us: i64) {
        self.dirty.insert(strategy);
        self.metrics.risk_event(kind);
        let strategy_id = self.db_id(strategy);
        tracing::warn!(strategy_id, kind, message, "risk guard paused a strategy");
        if let Some(a) = &self.alerter {
            a.raise(
                kind,
                "critical",
                format!("strategy {strategy_id} paused by the risk guard: {message}"),
            );
        }
        self.push(PersistOp::RiskPause {
            strategy_id,
            kind: kind.to_string(),
            message: message.to_string(),
            ts_ms: crate::clock::ms_of_us(ts_us),
        });
    }

    fn buys_blocked(&mut self, symbol: usize, until_us: i64, message: &str, ts_us: i64) {
        self.metrics.risk_event("price_jump");
        let name = self.symbol_name(symbol);
        tracing::warn!(symbol = %name, message, "risk guard stopped new buys");
        if let Some(a) = &self.alerter {
            a.raise("price_jump", "warning", format!("{name}: {message}"));
        }
        self.push(PersistOp::BuysBlocked {
            symbol: name,
            until_ms: crate::clock::ms_of_us(until_us),
            message: message.to_string(),
            ts_ms: crate::clock::ms_of_us(ts_us),
        });
    }

    fn shows_risk(&self) -> bool {
        true
    }

    fn outflow_marked(&mut self, hourly: Decimal) {
        if let Ok(mut o) = self.metrics.hourly_outflow.lock() {
            *o = hourly;
        }
    }

    fn risk_marked(&mut self, strategy: StrategyIx, view: &crate::risk::guard::StrategyRiskView) {
        if let Some(m) = self.metrics_of(strategy) {
            m.risk_marked(view);
        }
    }

    fn mark(
        &mut self,
        _ts_us: i64,
        strategy: StrategyIx,
        mark: &crate::engine::recorder::Mark<'_>,
    ) {
        if let Some(m) = self.metrics_of(strategy) {
            m.mark(mark.ledger, mark.price);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::DirtySet;

    #[test]
    fn dirty_set_lists_each_strategy_once_in_index_order_and_empties() {
        let mut d = DirtySet::default();
        for ix in [7, 2, 7, 0, 2] {
            d.insert(ix);
        }
        assert_eq!(d.take(), vec![0, 2, 7]);
        assert!(d.list.is_empty());
        d.insert(2);
        assert_eq!(d.take(), vec![2]);
    }
}
