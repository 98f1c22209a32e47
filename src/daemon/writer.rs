//! The persistence writer: drains [`PersistOp`]s in batches, one transaction per batch.
//!
//! It owns the map from the engine's per-run order ids to database order ids, and the matching
//! of re-issued orders after a restart, so a restarted daemon neither duplicates nor loses an order.
//!
//! It never drops a batch. When the database cannot be written, the batch is retried with a
//! backoff capped at [`MAX_RETRY_DELAY`] for as long as it takes, and everything after it waits
//! in order in the channel; meanwhile the engine is told to halt (nothing new is placed, so the
//! queue grows only by answers to orders already in flight and by state snapshots). Once a
//! write succeeds again, the outage goes on record in the same transaction as the batch: the kill
//! switch engaged and a `store_unavailable` risk event. Trading resumes when an operator clears it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use dashmap::DashMap;
use tokio::sync::mpsc;

use super::recorder::PersistOp;
use crate::alerts::Alerter;
use crate::engine::Control;
use crate::metrics::Metrics;
use crate::model::order::{Amount, OrderId, RestingKind, RestingOrder};
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

/// An order's name on record, unique per daemon run (engine ids restart with every run); also what
/// a live order's transaction is recorded under (`chain_txs.reference`).
pub fn client_order_id(strategy_id: i64, run_id: i64, engine_id: OrderId) -> String {
    format!("s{strategy_id}-r{run_id}-o{engine_id}")
}

/// Longest wait between two attempts at a batch the database refused.
pub const MAX_RETRY_DELAY: std::time::Duration = std::time::Duration::from_secs(2);

/// Delay before attempt `attempt + 1` of a failing batch: 100 ms doubling up to the cap.
fn retry_delay(attempt: u32) -> std::time::Duration {
    let ms = 100u64 << attempt.min(10);
    std::time::Duration::from_millis(ms).min(MAX_RETRY_DELAY)
}

/// An ongoing database outage, as the writer saw it.
#[derive(Debug, Clone)]
struct Outage {
    since_ms: i64,
    attempts: u64,
    first_error: String,
}

/// How the writer tells the engine and the operator about an outage.
pub struct OutageSignals {
    /// The engine's control channel: a [`Control::Halt`] goes there at the first failure.
    pub control: tokio::sync::mpsc::Sender<Control>,
    pub alerter: Option<Alerter>,
    /// A cluster member: its writes are fenced by its leases, and an outage ends with the core
    /// started again on the leases still held (the lease, not the kill switch, kept it safe).
    pub cluster: Option<super::cluster::ClusterLink>,
}

pub struct Writer {
    store: Store,
    /// The writer reports how many of the engine's writes it has done (the backlog gauge).
    metrics: Arc<Metrics>,
    run_id: i64,
    engine_to_db: HashMap<OrderId, i64>,
    index: OrderIndex,
    /// (strategy, tag) → pending orders on record, while restoring.
    restoring: Option<BTreeMap<(i64, i64), Vec<PendingOrder>>>,
    signals: Option<OutageSignals>,
    outage: Option<Outage>,
    /// Orders a venue accepted under a reference (a tx hash), until they finish.
    /// (The last reference wins: it is the one the trade is linked to and logged with.)
    accepted: HashMap<OrderId, String>,
    /// The strategy of each order in flight (to fence the writes that name only the order).
    order_strategy: HashMap<OrderId, i64>,
    /// Units whose lease this writer found taken by another daemon: their writes are dropped.
    lost: std::collections::HashSet<String>,
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
            signals: None,
            outage: None,
            accepted: Default::default(),
            order_strategy: HashMap::new(),
            lost: Default::default(),
        }
    }

    /// Halt the engine and alert when the database cannot be written.
    pub fn with_outage_signals(mut self, signals: OutageSignals) -> Self {
        self.signals = Some(signals);
        self
    }

    /// The first failure of an outage: halt trading now, alert (recorded once the store is back).
    async fn outage_began(&mut self, error: &str) {
        self.metrics
            .store_down
            .store(1, std::sync::atomic::Ordering::Relaxed);
        if self.outage.is_some() {
            return;
        }
        tracing::error!(
            error,
            "the database cannot be written: trading halted, records kept in memory until it can"
        );
        self.outage = Some(Outage {
            since_ms: crate::clock::wall_clock_ms(),
            attempts: 0,
            first_error: error.to_string(),
        });
        if let Some(sig) = &self.signals {
            let _ = sig
                .control
                .send(Control::Halt {
                    reason: format!("database cannot be written: {error}"),
                })
                .await;
            if let Some(a) = &sig.alerter {
                a.raise(
                    "store_unavailable",
                    "critical",
                    format!(
                        "database cannot be written ({error}); trading halted, nothing is lost"
                    ),
                );
            }
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
            // The poller's outage notices are not engine writes (not in the backlog gauge).
            let received = batch
                .iter()
                .filter(|op| !matches!(op, PersistOp::Outage { .. }))
                .count() as u64;
            let mut acks = Vec::new();
            let mut work = Vec::with_capacity(batch.len());
            for op in batch.drain(..) {
                match op {
                    PersistOp::Flush(ack) => acks.push(ack),
                    PersistOp::Outage { error } => self.outage_began(&error).await,
                    // One batch is one transaction, so an atomic group stays together.
                    PersistOp::Atomic(ops) => work.extend(ops),
                    other => work.push(other),
                }
            }
            // An outage seen elsewhere is written even when nothing else is.
            if !work.is_empty() || self.outage.is_some() {
                // Never dropped: retried until the database takes it.
                let mut attempt = 0u32;
                self.note_strategies(&work);
                loop {
                    self.drop_fenced(&mut work);
                    match self.apply(&work).await {
                        Ok(()) => break,
                        // Units lost meanwhile: their writes go, the rest is written at once.
                        Err(StoreError::Fenced(why)) => {
                            tracing::error!(reason = %why, "writes of units this daemon no longer holds are dropped; their new owner has them");
                            continue;
                        }
                        Err(e) => {
                            self.metrics
                                .persist_failures
                                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let text = e.to_string();
                            self.outage_began(&text).await;
                            if let Some(o) = self.outage.as_mut() {
                                o.attempts += 1;
                            }
                            tracing::warn!(error = %text, attempt, ops = work.len(), "persisting a batch failed; retrying");
                            tokio::time::sleep(retry_delay(attempt)).await;
                            attempt = attempt.saturating_add(1);
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

    fn in_cluster(&self) -> bool {
        self.signals.as_ref().is_some_and(|s| s.cluster.is_some())
    }

    fn op_strategy(&self, op: &PersistOp) -> Option<i64> {
        match op {
            PersistOp::OrderPlaced { strategy_id, .. }
            | PersistOp::OrderSubmitted { strategy_id, .. }
            | PersistOp::OrderRefused { strategy_id, .. }
            | PersistOp::Filled { strategy_id, .. }
            | PersistOp::Status { strategy_id, .. }
            | PersistOp::Snapshot { strategy_id, .. }
            | PersistOp::RiskPause { strategy_id, .. } => Some(*strategy_id),
            PersistOp::Risk { strategy_id, .. } => *strategy_id,
            PersistOp::OrderCancelled { engine_id, .. }
            | PersistOp::OrderAccepted { engine_id, .. }
            | PersistOp::OrderFailed { engine_id, .. } => {
                self.order_strategy.get(engine_id).copied()
            }
            _ => None,
        }
    }

    /// Remember which strategy each new order belongs to (cluster members only).
    fn note_strategies(&mut self, ops: &[PersistOp]) {
        if self.store.fence().is_none() {
            return;
        }
        for op in ops {
            match op {
                PersistOp::OrderPlaced {
                    strategy_id, order, ..
                } => {
                    self.order_strategy.insert(order.id, *strategy_id);
                }
                PersistOp::OrderSubmitted {
                    strategy_id, order, ..
                }
                | PersistOp::OrderRefused {
                    strategy_id, order, ..
                } => {
                    self.order_strategy.insert(order.order_id, *strategy_id);
                }
                _ => {}
            }
        }
    }

    /// Drop the writes of units this daemon does not hold (lost, or handed over).
    fn drop_fenced(&self, ops: &mut Vec<PersistOp>) {
        let Some(fence) = self.store.fence() else {
            return;
        };
        let held = fence.held();
        let before = ops.len();
        ops.retain(|op| {
            let Some(unit) = self
                .op_strategy(op)
                .and_then(|id| fence.unit_of_strategy(id))
            else {
                return true;
            };
            held.contains_key(&unit) && !self.lost.contains(&unit)
        });
        if ops.len() < before {
            tracing::warn!(
                dropped = before - ops.len(),
                "writes for units this daemon no longer holds not recorded"
            );
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
        let mut tx = self.store.begin_write().await?;
        // The fence: the leases of the units written are read (and share-locked) in this
        // transaction; a unit another daemon took meanwhile is refused here.
        if let Some(fence) = self.store.fence().cloned() {
            let held = fence.held();
            let lost = self.store.lost_leases(&mut tx, fence.node, &held).await?;
            if !lost.is_empty() {
                let touched = ops.iter().any(|op| {
                    self.op_strategy(op)
                        .and_then(|id| fence.unit_of_strategy(id))
                        .is_some_and(|u| lost.contains(&u))
                });
                self.lost.extend(lost.iter().cloned());
                if touched {
                    return Err(StoreError::Fenced(format!(
                        "leases lost: {}",
                        lost.join(", ")
                    )));
                }
            }
        }
        let plan = self.plan(ops);
        // Orders first (fills and cancels refer to them), a few multi-row statements per table.
        let inserted = paper::insert_orders(&mut tx, &plan.new_orders).await?;
        for (id, name) in &plan.renamed {
            paper::rename_pending_order(&mut tx, *id, name).await?;
        }
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
        // Transaction hashes first, so the trades below can take theirs from their order.
        for op in ops {
            if let PersistOp::OrderAccepted {
                engine_id,
                reference,
                ..
            } = op
            {
                if let Some(id) = db_id(engine_id) {
                    paper::set_venue_ref(&mut tx, id, reference).await?;
                }
            }
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
        // On-chain fills: the trade carries its swap's hash and the gas it cost.
        let on_chain: Vec<i64> = plan
            .trades
            .iter()
            .filter(|(engine_id, _)| self.accepted.contains_key(engine_id))
            .filter_map(|(engine_id, _)| db_id(engine_id))
            .collect();
        paper::link_trades_to_chain(&mut tx, &on_chain).await?;
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
                PersistOp::RiskPause {
                    strategy_id,
                    kind,
                    message,
                    ts_ms,
                } => paper::risk_pause(&mut tx, *strategy_id, kind, message, *ts_ms).await?,
                PersistOp::BuysBlocked {
                    symbol,
                    until_ms,
                    message,
                    ts_ms,
                } => {
                    let details = serde_json::json!({"symbol": symbol, "until_ms": until_ms});
                    paper::insert_risk_event_with(
                        &mut tx,
                        None,
                        "price_jump",
                        "warning",
                        &format!("{symbol}: {message}"),
                        Some(details.to_string()),
                        *ts_ms,
                    )
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
        if let Some(o) = &self.outage {
            let now = crate::clock::wall_clock_ms();
            let after = if self.in_cluster() {
                "trading resumes on the units this daemon still holds"
            } else {
                "trading halted until an operator clears the kill switch"
            };
            let message = format!(
                "database could not be written for {} ms ({} failed attempts, first error: {}); \
                 no record was lost, {after}",
                now - o.since_ms,
                o.attempts,
                o.first_error
            );
            if !self.in_cluster() {
                paper::engage_kill_switch(&mut tx, "database was unavailable", now).await?;
            }
            paper::insert_risk_event(
                &mut tx,
                None,
                "store_unavailable",
                "critical",
                &message,
                now,
            )
            .await?;
        }
        tx.commit().await?;
        if let Some(o) = self.outage.take() {
            if let Some(link) = self.signals.as_ref().and_then(|s| s.cluster.as_ref()) {
                tracing::warn!(
                    attempts = o.attempts,
                    "database writable again; outage on record, trading resumes on the units still held"
                );
                link.request_restart("database writable again".into());
            } else {
                tracing::warn!(
                    attempts = o.attempts,
                    "database writable again; outage on record, kill switch engaged"
                );
            }
            self.metrics
                .store_down
                .store(0, std::sync::atomic::Ordering::Relaxed);
            self.metrics.risk_event("store_unavailable");
            if let Some(a) = self.signals.as_ref().and_then(|s| s.alerter.as_ref()) {
                a.raise(
                    "store_recovered",
                    "critical",
                    if self.in_cluster() {
                        "database writable again; trading resumes on the units this daemon still holds"
                    } else {
                        "database writable again; kill switch engaged until an operator clears it"
                    },
                );
            }
        }
        for (engine_id, db_id) in &placed {
            self.engine_to_db.insert(*engine_id, *db_id);
            self.index.insert(*db_id, *engine_id);
        }
        super::record_log::log_committed(ops, &trades, &self.engine_to_db, &self.accepted);
        // Orders at their end are never referred to again: forget them, so the maps hold the
        // live orders only instead of every order of a run that lasts months.
        let finished = plan
            .status_changes
            .iter()
            .filter(|g| is_final(g.status))
            .flat_map(|g| g.orders.iter())
            .chain(plan.finished_on_insert.iter())
            .chain(plan.trades.iter().map(|(engine_id, _)| engine_id));
        for engine_id in finished {
            self.accepted.remove(engine_id);
            self.order_strategy.remove(engine_id);
            if let Some(db_id) = self.engine_to_db.remove(engine_id) {
                self.index.remove(&db_id);
            }
        }
        Ok(())
    }

    /// Unique per run: the engine's order ids restart with every daemon start.
    fn client_order_id(&self, strategy_id: i64, engine_id: OrderId) -> String {
        client_order_id(strategy_id, self.run_id, engine_id)
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
        // An order may change several times in one batch (submitted and filled at once on the
        // instant venue): only its last status in the batch is written.
        let mut last_status: HashMap<OrderId, usize> = HashMap::new();
        for (i, op) in ops.iter().enumerate() {
            let id = match op {
                PersistOp::OrderSubmitted { order, .. } | PersistOp::OrderRefused { order, .. } => {
                    order.order_id
                }
                PersistOp::OrderAccepted { engine_id, .. }
                | PersistOp::OrderFailed { engine_id, .. }
                | PersistOp::OrderCancelled { engine_id, .. } => *engine_id,
                PersistOp::Filled { fill, .. } => fill.order_id,
                _ => continue,
            };
            last_status.insert(id, i);
        }
        let is_last = |id: OrderId, i: usize| last_status.get(&id) == Some(&i);
        let mut resting_here: std::collections::HashSet<OrderId> = Default::default();
        // Orders inserted by this batch already in their final status.
        let mut settled_here: std::collections::HashSet<OrderId> = Default::default();
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
                        // The venue names this run's swaps after this run's client id; the row
                        // takes that name so every chain transaction joins the order it serves.
                        // A pending row has sent nothing under its old name.
                        plan.renamed
                            .push((id, self.client_order_id(*strategy_id, order.id)));
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
                PersistOp::OrderSubmitted {
                    strategy_id,
                    order,
                    ts_ms,
                }
                | PersistOp::OrderRefused {
                    strategy_id,
                    order,
                    ts_ms,
                    ..
                } => {
                    let id = order.order_id;
                    let known = self.engine_to_db.contains_key(&id) || resting_here.contains(&id);
                    let refusal = match op {
                        PersistOp::OrderRefused { reason, .. } => Some(reason.as_str()),
                        _ => None,
                    };
                    if !known {
                        // A market order: on record from its submission (or refusal) on. When
                        // the batch also holds its fill, it goes in as filled, in one statement.
                        let filled_here = last_status
                            .get(&id)
                            .is_some_and(|&j| matches!(ops[j], PersistOp::Filled { .. }));
                        let status = if filled_here { "filled" } else { "submitted" };
                        if filled_here {
                            settled_here.insert(id);
                            plan.finished_on_insert.push(id);
                        }
                        resting_here.insert(id);
                        plan.new_engine_ids.push(id);
                        plan.new_orders.push((
                            PlacedOrder {
                                strategy_id: *strategy_id,
                                client_order_id: self.client_order_id(*strategy_id, id),
                                kind: "market".into(),
                                side: order.side.as_str().into(),
                                trigger_price: None,
                                quote_amount: match order.amount {
                                    Amount::Quote(q) => Some(q.normalize().to_string()),
                                    Amount::Base(_) => None,
                                },
                                base_amount: match order.amount {
                                    Amount::Base(b) => Some(b.normalize().to_string()),
                                    Amount::Quote(_) => None,
                                },
                                cell: super::recorder::cell_of(order.tag),
                                tag: Some(order.tag as i64),
                                status,
                            },
                            *ts_ms,
                        ));
                    }
                    if is_last(id, i) && !settled_here.contains(&id) {
                        match refusal {
                            Some(reason) => change(&mut plan, "refused", Some(reason), *ts_ms, id),
                            None if known => change(&mut plan, "submitted", None, *ts_ms, id),
                            None => {}
                        }
                    }
                }
                PersistOp::OrderAccepted {
                    engine_id,
                    reference,
                    ts_ms,
                } => {
                    self.accepted.insert(*engine_id, reference.clone());
                    if is_last(*engine_id, i) {
                        change(&mut plan, "accepted", None, *ts_ms, *engine_id)
                    }
                }
                PersistOp::OrderFailed {
                    engine_id,
                    reason,
                    retryable,
                    ts_ms,
                } if is_last(*engine_id, i) => {
                    let reason = if *retryable {
                        format!("{reason} (retryable)")
                    } else {
                        reason.clone()
                    };
                    change(&mut plan, "failed", Some(&reason), *ts_ms, *engine_id)
                }
                PersistOp::Filled {
                    strategy_id,
                    fill,
                    ts_ms,
                } => {
                    // Every fill follows its order's submission (in this batch or an earlier
                    // one): the order is on record, or goes in as filled above.
                    if is_last(fill.order_id, i) && !settled_here.contains(&fill.order_id) {
                        change(&mut plan, "filled", None, *ts_ms, fill.order_id);
                    }
                    plan.trades
                        .push((fill.order_id, TradeRow::of_fill(*strategy_id, fill, *ts_ms)));
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

/// An order in this status is never changed again.
fn is_final(status: &str) -> bool {
    matches!(status, "filled" | "cancelled" | "failed" | "refused")
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
    /// Id on record → this run's client id of each re-used order.
    renamed: Vec<(i64, String)>,
    /// New orders inserted in their final status (a market order and its fill in one batch).
    finished_on_insert: Vec<OrderId>,
    status_changes: Vec<StatusChange>,
    /// Each fill with the engine id of its order.
    trades: Vec<(OrderId, TradeRow)>,
    states: Vec<(i64, String, i64)>,
}
