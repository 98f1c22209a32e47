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

    async fn apply(&mut self, ops: &[PersistOp]) -> Result<(), StoreError> {
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
        let mut new_ids: Vec<(OrderId, i64)> = Vec::new();
        // Database order id of each fill, in op order, for the log written after the commit.
        let mut fill_orders: Vec<i64> = Vec::new();
        // The batch is one transaction: only each strategy's last snapshot in it needs writing.
        let mut last_snapshot: HashMap<i64, usize> = HashMap::new();
        for (i, op) in ops.iter().enumerate() {
            if let PersistOp::Snapshot { strategy_id, .. } = op {
                last_snapshot.insert(*strategy_id, i);
            }
        }
        let mut tx = self.store.begin_write().await?;
        for (i, op) in ops.iter().enumerate() {
            match op {
                PersistOp::OrderPlaced {
                    strategy_id,
                    order,
                    ts_ms,
                } => {
                    let engine_id = &order.id;
                    let (kind, side, trigger_price, quote_amount, base_amount) =
                        order_columns(order);
                    let (kind, side, trigger_price, quote_amount, base_amount) =
                        (&kind, &side, &trigger_price, &quote_amount, &base_amount);
                    let cell = &super::recorder::cell_of(order.tag());
                    let tag = order.tag() as i64;
                    let reuse = self.restoring.as_mut().and_then(|m| {
                        let list = m.get_mut(&(*strategy_id, tag))?;
                        let pos = list.iter().position(|p| {
                            p.side == *side
                                && p.trigger_price.as_deref() == Some(trigger_price.as_str())
                                && p.quote_amount == *quote_amount
                                && p.base_amount == *base_amount
                        })?;
                        Some(list.remove(pos).id)
                    });
                    let db_id = match reuse {
                        Some(id) => id,
                        None => {
                            paper::insert_order(
                                &mut tx,
                                &PlacedOrder {
                                    strategy_id: *strategy_id,
                                    client_order_id: format!(
                                        "s{strategy_id}-r{}-o{engine_id}",
                                        self.run_id
                                    ),
                                    kind: kind.clone(),
                                    side: side.clone(),
                                    trigger_price: Some(trigger_price.clone()),
                                    quote_amount: quote_amount.clone(),
                                    base_amount: base_amount.clone(),
                                    cell: *cell,
                                    tag: Some(tag),
                                    status: "pending",
                                },
                                *ts_ms,
                            )
                            .await?
                        }
                    };
                    new_ids.push((*engine_id, db_id));
                    self.engine_to_db.insert(*engine_id, db_id);
                }
                PersistOp::OrderCancelled {
                    engine_id,
                    reason,
                    ts_ms,
                } => {
                    if let Some(id) = self.engine_to_db.get(engine_id) {
                        paper::set_order_status(&mut tx, *id, "cancelled", Some(reason), *ts_ms)
                            .await?;
                    }
                }
                PersistOp::Filled {
                    strategy_id,
                    fill,
                    ts_ms,
                } => {
                    let order_id = match self.engine_to_db.get(&fill.order_id) {
                        Some(id) => {
                            paper::set_order_status(&mut tx, *id, "filled", None, *ts_ms).await?;
                            *id
                        }
                        None => {
                            // Market orders never rest: they go on record already filled.
                            paper::insert_order(
                                &mut tx,
                                &PlacedOrder {
                                    strategy_id: *strategy_id,
                                    client_order_id: format!(
                                        "s{strategy_id}-r{}-o{}",
                                        self.run_id, fill.order_id
                                    ),
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
                            )
                            .await?
                        }
                    };
                    fill_orders.push(order_id);
                    paper::insert_trade(
                        &mut tx,
                        &TradeRow {
                            strategy_id: *strategy_id,
                            order_id,
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
                    )
                    .await?;
                }
                PersistOp::Status {
                    strategy_id,
                    status,
                    reason,
                    ts_ms,
                } => {
                    if *status == StrategyStatus::Stopped {
                        paper::engine_stopped(&mut tx, *strategy_id, reason, *ts_ms).await?;
                    }
                }
                PersistOp::Snapshot {
                    strategy_id,
                    state,
                    ts_ms,
                } => {
                    if last_snapshot.get(strategy_id) == Some(&i) {
                        paper::save_state(&mut tx, *strategy_id, &state.to_json(), *ts_ms).await?;
                    }
                }
                PersistOp::Risk {
                    strategy_id,
                    kind,
                    severity,
                    message,
                    ts_ms,
                } => {
                    paper::insert_risk_event(
                        &mut tx,
                        *strategy_id,
                        kind,
                        severity,
                        message,
                        *ts_ms,
                    )
                    .await?;
                }
                PersistOp::EndRestore => {
                    if let Some(left) = self.restoring.take() {
                        let now = crate::clock::wall_clock_ms();
                        for p in left.into_values().flatten() {
                            paper::set_order_status(
                                &mut tx,
                                p.id,
                                "cancelled",
                                Some("not in the restored strategy state"),
                                now,
                            )
                            .await?;
                        }
                    }
                }
                PersistOp::BeginRestore { .. } | PersistOp::Flush(_) | PersistOp::Atomic(_) => {}
            }
        }
        tx.commit().await?;
        for (engine_id, db_id) in new_ids {
            self.index.insert(db_id, engine_id);
        }
        log_committed(ops, &fill_orders, &self.engine_to_db);
        Ok(())
    }
}

/// Log what a batch put on record, once it is committed (a retried batch logs once, and the
/// engine thread never formats a log line). Spans carry `strategy_id` and the database
/// `order_id`, the ids an operator greps for.
fn log_committed(ops: &[PersistOp], fill_orders: &[i64], engine_to_db: &HashMap<OrderId, i64>) {
    let mut fills = fill_orders.iter();
    for op in ops {
        match op {
            PersistOp::Filled {
                strategy_id, fill, ..
            } => {
                let order_id = fills.next().copied().unwrap_or(-1);
                let span = tracing::info_span!("order", strategy_id, order_id);
                let _in = span.enter();
                tracing::info!(
                    side = fill.side.as_str(),
                    price = %fill.price.normalize(),
                    base = %fill.base.normalize(),
                    quote = %fill.quote.normalize(),
                    fee = %fill.fee.normalize(),
                    "paper fill"
                );
            }
            PersistOp::OrderPlaced {
                strategy_id, order, ..
            } => {
                let order_id = engine_to_db.get(&order.id).copied().unwrap_or(-1);
                let span = tracing::debug_span!("order", strategy_id, order_id);
                let _in = span.enter();
                tracing::debug!(trigger = %order.trigger.to_decimal().unwrap_or_default(), "order placed");
            }
            PersistOp::OrderCancelled {
                engine_id, reason, ..
            } => {
                let order_id = engine_to_db.get(engine_id).copied().unwrap_or(-1);
                let span = tracing::debug_span!("order", order_id);
                let _in = span.enter();
                tracing::debug!(%reason, "order cancelled");
            }
            PersistOp::Status {
                strategy_id,
                status,
                reason,
                ..
            } => {
                let span = tracing::info_span!("strategy", strategy_id);
                let _in = span.enter();
                tracing::info!(status = status.as_str(), %reason, "strategy status");
            }
            PersistOp::Risk {
                strategy_id,
                kind,
                severity,
                message,
                ..
            } => {
                let span = tracing::info_span!("strategy", strategy_id = strategy_id.unwrap_or(-1));
                let _in = span.enter();
                tracing::warn!(%kind, %severity, %message, "risk event");
            }
            _ => {}
        }
    }
}
