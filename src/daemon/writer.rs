//! The persistence writer: drains [`PersistOp`]s in batches, one transaction per batch.
//!
//! It owns the map from the engine's per-run order ids to database order ids, and the matching
//! of re-issued orders after a restart, so a restarted daemon neither duplicates nor loses an order.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use dashmap::DashMap;
use tokio::sync::mpsc;

use super::recorder::PersistOp;
use crate::api::metrics::Metrics;
use crate::engine::order::{Amount, OrderId, RestingKind, RestingOrder, Side};
use crate::store::paper::{self, PendingOrder, PlacedOrder, TradeRow};
use crate::store::{Store, StoreError};
use crate::strategy::StrategyStatus;

/// `(kind, side, trigger price, quote amount, base amount)` of a resting order, as stored.
fn order_columns(order: &RestingOrder) -> (String, String, String, Option<String>, Option<String>) {
    match &order.kind {
        RestingKind::Limit(l) => {
            let (q, b) = match l.amount {
                Amount::Quote(q) => (Some(q.normalize().to_string()), None),
                Amount::Base(b) => (None, Some(b.normalize().to_string())),
            };
            (
                "limit".to_string(),
                l.side.as_str().to_string(),
                l.limit.normalize().to_string(),
                q,
                b,
            )
        }
        RestingKind::Guard(g) => (
            g.kind.as_str().to_string(),
            "sell".to_string(),
            g.price.normalize().to_string(),
            None,
            None,
        ),
    }
}

/// Database order id → engine order id, for applying operator cancels to the engine.
pub type OrderIndex = Arc<DashMap<i64, OrderId>>;

pub struct Writer {
    store: Store,
    /// The writer reports how many of the engine's writes it has done (the backlog gauge).
    metrics: Arc<Metrics>,
    run_id: i64,
    engine_to_db: HashMap<OrderId, i64>,
    index: OrderIndex,
    /// (strategy, tag) → pending orders on record, while restoring.
    restoring: Option<BTreeMap<(i64, i64), Vec<PendingOrder>>>,
}

impl Writer {
    pub fn new(store: Store, run_id: i64, index: OrderIndex, metrics: Arc<Metrics>) -> Self {
        Writer {
            store,
            metrics,
            run_id,
            engine_to_db: HashMap::new(),
            index,
            restoring: None,
        }
    }

    /// Run until the channel closes.
    pub async fn run(mut self, mut rx: mpsc::UnboundedReceiver<PersistOp>) {
        let mut batch = Vec::with_capacity(256);
        while let Some(op) = rx.recv().await {
            batch.push(op);
            while batch.len() < 512 {
                match rx.try_recv() {
                    Ok(op) => batch.push(op),
                    Err(_) => break,
                }
            }
            let received = batch.len() as u64;
            let mut acks = Vec::new();
            let mut work = Vec::with_capacity(batch.len());
            for op in batch.drain(..) {
                match op {
                    PersistOp::Flush(ack) => acks.push(ack),
                    // One batch is one transaction, so an atomic group stays together.
                    PersistOp::Atomic(ops) => work.extend(ops),
                    other => work.push(other),
                }
            }
            if !work.is_empty() {
                let mut attempt = 0;
                loop {
                    match self.apply(&work).await {
                        Ok(()) => break,
                        Err(e) if attempt < 5 => {
                            attempt += 1;
                            tracing::warn!(error = %e, attempt, "persisting a batch failed; retrying");
                            tokio::time::sleep(std::time::Duration::from_millis(100 << attempt))
                                .await;
                        }
                        Err(e) => {
                            tracing::error!(error = %e, ops = work.len(), "dropping a batch that cannot be persisted");
                            break;
                        }
                    }
                }
            }
            self.metrics
                .persist_done
                .fetch_add(received, std::sync::atomic::Ordering::Relaxed);
            for ack in acks {
                let _ = ack.send(());
            }
        }
    }

    /// One batch, one transaction. On failure nothing of it is kept, in the database or in the
    /// writer's own bookkeeping, so the retry starts from the same place.
    async fn apply(&mut self, ops: &[PersistOp]) -> Result<(), StoreError> {
        let restoring = self.restoring.clone();
        let result = self.apply_once(ops).await;
        if result.is_err() {
            self.restoring = restoring;
        }
        result
    }

    async fn apply_once(&mut self, ops: &[PersistOp]) -> Result<(), StoreError> {
        // Restore bookkeeping is read before the transaction (it only reads).
        for op in ops {
            if let PersistOp::BeginRestore { strategy_ids } = op {
                let mut map: BTreeMap<(i64, i64), Vec<PendingOrder>> = BTreeMap::new();
                for sid in strategy_ids {
                    for p in self.store.pending_orders_of(*sid).await? {
                        map.entry((*sid, p.tag.unwrap_or(-1))).or_default().push(p);
                    }
                }
                self.restoring = Some(map);
            }
        }
        let plan = self.plan(ops);
        let mut tx = self.store.begin_write().await?;
        // Orders first (fills and cancels refer to them), a few multi-row statements per table.
        let inserted = paper::insert_orders(&mut tx, &plan.new_orders).await?;
        if crate::failpoint::fail_once("writer.after_orders") {
            return Err(StoreError::Io("failpoint writer.after_orders".into()));
        }
        let mut placed: HashMap<OrderId, i64> = plan.reused.iter().copied().collect();
        for ((order, _), engine_id) in plan.new_orders.iter().zip(&plan.new_engine_ids) {
            let id = inserted
                .get(&order.client_order_id)
                .copied()
                .ok_or_else(|| {
                    StoreError::Corrupt(format!("order {} was not returned", order.client_order_id))
                })?;
            placed.insert(*engine_id, id);
        }
        let db_id = |engine_id: &OrderId| {
            placed
                .get(engine_id)
                .or_else(|| self.engine_to_db.get(engine_id))
                .copied()
        };
        for group in &plan.status_changes {
            let ids: Vec<i64> = group.orders.iter().filter_map(db_id).collect();
            paper::set_orders_status(
                &mut tx,
                &ids,
                group.status,
                group.reason.as_deref(),
                group.ts_ms,
            )
            .await?;
        }
        let mut trades = Vec::with_capacity(plan.trades.len());
        for (engine_id, row) in &plan.trades {
            let order_id = db_id(engine_id).ok_or_else(|| {
                StoreError::Corrupt(format!("no order on record for fill {row:?}"))
            })?;
            trades.push(TradeRow {
                order_id,
                ..row.clone()
            });
        }
        paper::insert_trades(&mut tx, &trades).await?;
        paper::save_states(&mut tx, &plan.states).await?;
        // The rare rest, in order.
        for op in ops {
            match op {
                PersistOp::Status {
                    strategy_id,
                    status: StrategyStatus::Stopped,
                    reason,
                    ts_ms,
                } => paper::engine_stopped(&mut tx, *strategy_id, reason, *ts_ms).await?,
                PersistOp::Risk {
                    strategy_id,
                    kind,
                    severity,
                    message,
                    ts_ms,
                } => {
                    paper::insert_risk_event(&mut tx, *strategy_id, kind, severity, message, *ts_ms)
                        .await?
                }
                PersistOp::EndRestore => {
                    if let Some(left) = self.restoring.take() {
                        let ids: Vec<i64> = left.into_values().flatten().map(|p| p.id).collect();
                        paper::set_orders_status(
                            &mut tx,
                            &ids,
                            "cancelled",
                            Some("not in the restored strategy state"),
                            crate::clock::wall_clock_ms(),
                        )
                        .await?;
                    }
                }
                _ => {}
            }
        }
        tx.commit().await?;
        for (engine_id, db_id) in &placed {
            self.engine_to_db.insert(*engine_id, *db_id);
            self.index.insert(*db_id, *engine_id);
        }
        super::record_log::log_committed(ops, &trades, &self.engine_to_db);
        // Filled and cancelled orders are never referred to again: forget them, so the maps hold
        // the pending orders only instead of every order of a run that lasts months.
        let finished = plan
            .status_changes
            .iter()
            .flat_map(|g| g.orders.iter())
            .chain(plan.trades.iter().map(|(engine_id, _)| engine_id));
        for engine_id in finished {
            if let Some(db_id) = self.engine_to_db.remove(engine_id) {
                self.index.remove(&db_id);
            }
        }
        Ok(())
    }

    /// Unique per run: the engine's order ids restart with every daemon start.
    fn client_order_id(&self, strategy_id: i64, engine_id: OrderId) -> String {
        format!("s{strategy_id}-r{}-o{engine_id}", self.run_id)
    }

    /// Sort a batch's operations into the statements that write them, without touching the
    /// database: new orders, pending ones re-used after a restart, status changes grouped by
    /// (status, reason, time), fills, and each strategy's last state.
    fn plan(&mut self, ops: &[PersistOp]) -> BatchPlan {
        let mut plan = BatchPlan::default();
        let mut groups: HashMap<(&'static str, Option<String>, i64), usize> = HashMap::new();
        let mut change = |plan: &mut BatchPlan, status, reason: Option<&str>, ts_ms, order| {
            let key = (status, reason.map(str::to_string), ts_ms);
            let ix = *groups.entry(key).or_insert_with(|| {
                plan.status_changes.push(StatusChange {
                    status,
                    reason: reason.map(str::to_string),
                    ts_ms,
                    orders: Vec::new(),
                });
                plan.status_changes.len() - 1
            });
            plan.status_changes[ix].orders.push(order);
        };
        // One transaction: only each strategy's last state in it needs building and writing.
        let mut last_snapshot: HashMap<i64, usize> = HashMap::new();
        for (i, op) in ops.iter().enumerate() {
            if let PersistOp::Snapshot { strategy_id, .. } = op {
                last_snapshot.insert(*strategy_id, i);
            }
        }
        let mut resting_here: std::collections::HashSet<OrderId> = Default::default();
        for (i, op) in ops.iter().enumerate() {
            match op {
                PersistOp::OrderPlaced {
                    strategy_id,
                    order,
                    ts_ms,
                } => {
                    let (kind, side, trigger_price, quote_amount, base_amount) =
                        order_columns(order);
                    let tag = order.tag() as i64;
                    let reuse = self.restoring.as_mut().and_then(|m| {
                        let list = m.get_mut(&(*strategy_id, tag))?;
                        let pos = list.iter().position(|p| {
                            p.side == side
                                && p.trigger_price.as_deref() == Some(trigger_price.as_str())
                                && p.quote_amount == quote_amount
                                && p.base_amount == base_amount
                        })?;
                        Some(list.remove(pos).id)
                    });
                    resting_here.insert(order.id);
                    if let Some(id) = reuse {
                        plan.reused.push((order.id, id));
                        continue;
                    }
                    plan.new_engine_ids.push(order.id);
                    plan.new_orders.push((
                        PlacedOrder {
                            strategy_id: *strategy_id,
                            client_order_id: self.client_order_id(*strategy_id, order.id),
                            kind,
                            side,
                            trigger_price: Some(trigger_price),
                            quote_amount,
                            base_amount,
                            cell: super::recorder::cell_of(order.tag()),
                            tag: Some(tag),
                            status: "pending",
                        },
                        *ts_ms,
                    ));
                }
                PersistOp::OrderCancelled {
                    engine_id,
                    reason,
                    ts_ms,
                } => change(&mut plan, "cancelled", Some(reason), *ts_ms, *engine_id),
                PersistOp::Filled {
                    strategy_id,
                    fill,
                    ts_ms,
                } => {
                    let resting = self.engine_to_db.contains_key(&fill.order_id)
                        || resting_here.contains(&fill.order_id);
                    if resting {
                        change(&mut plan, "filled", None, *ts_ms, fill.order_id);
                    } else {
                        // Market orders never rest: they go on record already filled.
                        plan.new_engine_ids.push(fill.order_id);
                        plan.new_orders.push((
                            PlacedOrder {
                                strategy_id: *strategy_id,
                                client_order_id: self.client_order_id(*strategy_id, fill.order_id),
                                kind: "market".into(),
                                side: fill.side.as_str().into(),
                                trigger_price: None,
                                quote_amount: (fill.side == Side::Buy)
                                    .then(|| fill.quote.normalize().to_string()),
                                base_amount: (fill.side == Side::Sell)
                                    .then(|| fill.base.normalize().to_string()),
                                cell: None,
                                tag: Some(fill.tag as i64),
                                status: "filled",
                            },
                            *ts_ms,
                        ));
                    }
                    plan.trades.push((
                        fill.order_id,
                        TradeRow {
                            strategy_id: *strategy_id,
                            order_id: 0,
                            side: fill.side.as_str().into(),
                            price: fill.price.normalize().to_string(),
                            base_amount: fill.base.normalize().to_string(),
                            quote_amount: fill.quote.normalize().to_string(),
                            fee_quote: fill.fee.normalize().to_string(),
                            realized_pnl: fill
                                .lot_cost
                                .map(|c| (fill.quote - c).normalize().to_string()),
                            executed_at: *ts_ms,
                        },
                    ));
                }
                PersistOp::Snapshot {
                    strategy_id,
                    state,
                    ts_ms,
                } if last_snapshot.get(strategy_id) == Some(&i) => {
                    plan.states.push((*strategy_id, state.to_json(), *ts_ms));
                }
                _ => {}
            }
        }
        plan
    }
}

struct StatusChange {
    status: &'static str,
    reason: Option<String>,
    ts_ms: i64,
    orders: Vec<OrderId>,
}

#[derive(Default)]
struct BatchPlan {
    new_orders: Vec<(PlacedOrder, i64)>,
    /// The engine's id of each of `new_orders`, in the same order.
    new_engine_ids: Vec<OrderId>,
    /// Engine id → id on record of re-issued orders matched after a restart.
    reused: Vec<(OrderId, i64)>,
    status_changes: Vec<StatusChange>,
    /// Each fill with the engine id of its order.
    trades: Vec<(OrderId, TradeRow)>,
    states: Vec<(i64, String, i64)>,
}
