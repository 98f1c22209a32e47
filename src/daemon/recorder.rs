//! The daemon's engine recorder: turns what the engine reports into persistence operations for
//! the writer task and into metrics. It never blocks the engine (an unbounded channel; the writer
//! batches, so the channel stays short).

use std::collections::BTreeSet;
use std::sync::Arc;

use rust_decimal::Decimal;
use tokio::sync::mpsc;

use crate::api::metrics::Metrics;
use crate::clock::wall_clock_ms;
use crate::engine::ledger::Ledger;
use crate::engine::order::{Fill, OrderId, RestingOrder, StrategyIx};
use crate::engine::Recorder;
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
}

impl StateDocument {
    /// The JSON stored in `strategies.state`.
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "strategy": self.strategy.to_value(),
            "ledger": self.ledger,
            "last_price": self.last_price.map(|p| p.normalize().to_string()),
            "status": self.status,
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
    /// Orders of these strategies re-issued from persisted state follow: match them with the
    /// pending orders on record instead of inserting duplicates.
    BeginRestore { strategy_ids: Vec<i64> },
    /// Restore done: pending orders on record that were not re-issued are cancelled.
    EndRestore,
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
    /// Engine strategy index → database id.
    pub db_ids: Vec<i64>,
    /// Strategies whose state changed since the last snapshot.
    pub dirty: BTreeSet<StrategyIx>,
    metrics: Arc<Metrics>,
    /// Risk breaches are alerted as well as recorded.
    pub alerter: Option<crate::alerts::Alerter>,
}

impl DaemonRecorder {
    pub fn new(tx: mpsc::UnboundedSender<PersistOp>, metrics: Arc<Metrics>) -> Self {
        DaemonRecorder {
            tx,
            pending: Vec::new(),
            db_ids: Vec::new(),
            dirty: BTreeSet::new(),
            metrics,
            alerter: None,
        }
    }

    /// Send directly (outside an engine event).
    pub fn send(&self, op: PersistOp) {
        // The writer outlives the engine loop; a send can only fail during shutdown.
        let _ = self.tx.send(op);
    }

    fn push(&mut self, op: PersistOp) {
        self.pending.push(op);
    }

    /// True when the last event produced something to persist.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty() || !self.dirty.is_empty()
    }

    /// Send the event's operations plus `extra` (its state snapshots) as one transaction.
    pub fn commit_event(&mut self, extra: Vec<PersistOp>) {
        let mut ops = std::mem::take(&mut self.pending);
        ops.extend(extra);
        self.dirty.clear();
        if !ops.is_empty() {
            self.send(PersistOp::Atomic(ops));
        }
    }

    fn db_id(&self, ix: StrategyIx) -> i64 {
        self.db_ids.get(ix).copied().unwrap_or(-1)
    }
}

pub(crate) fn cell_of(tag: u64) -> Option<i64> {
    GridTag::cell(tag).map(|c| c as i64)
}

impl Recorder for DaemonRecorder {
    fn order_placed(&mut self, order: &RestingOrder, _ts_us: i64) {
        let strategy_id = self.db_id(order.strategy);
        self.dirty.insert(order.strategy);
        self.metrics.order(strategy_id, "placed");
        self.push(PersistOp::OrderPlaced {
            strategy_id,
            order: order.clone(),
            ts_ms: wall_clock_ms(),
        });
    }

    fn order_cancelled(&mut self, strategy: StrategyIx, order: OrderId, reason: &str, _ts_us: i64) {
        self.dirty.insert(strategy);
        self.metrics.order(self.db_id(strategy), "cancelled");
        self.push(PersistOp::OrderCancelled {
            engine_id: order,
            reason: reason.to_string(),
            ts_ms: wall_clock_ms(),
        });
    }

    fn fill(&mut self, fill: &Fill, ledger: &Ledger) {
        let strategy_id = self.db_id(fill.strategy);
        self.dirty.insert(fill.strategy);
        self.metrics.fill(strategy_id, fill.side.as_str(), ledger);
        self.push(PersistOp::Filled {
            strategy_id,
            fill: fill.clone(),
            ts_ms: wall_clock_ms(),
        });
    }

    fn status_changed(
        &mut self,
        strategy: StrategyIx,
        status: StrategyStatus,
        reason: &str,
        _ts_us: i64,
    ) {
        self.dirty.insert(strategy);
        let strategy_id = self.db_id(strategy);
        self.push(PersistOp::Status {
            strategy_id,
            status,
            reason: reason.to_string(),
            ts_ms: wall_clock_ms(),
        });
    }

    fn refused(&mut self, strategy: StrategyIx, refusal: &Refusal, _ts_us: i64) {
        self.dirty.insert(strategy);
        self.metrics.risk_event("order_refused");
        let strategy_id = Some(self.db_id(strategy));
        if let Some(a) = &self.alerter {
            a.raise(
                "risk_breach",
                "warning",
                format!(
                    "strategy {}: order refused: {refusal}",
                    self.db_id(strategy)
                ),
            );
        }
        self.push(PersistOp::Risk {
            strategy_id,
            kind: "order_refused".into(),
            severity: "warning".into(),
            message: refusal.to_string(),
            ts_ms: wall_clock_ms(),
        });
    }

    fn mark(&mut self, _ts_us: i64, strategy: StrategyIx, ledger: &Ledger, price: Decimal) {
        self.metrics.mark(self.db_id(strategy), ledger, price);
    }
}
