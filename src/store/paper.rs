//! What the daemon's engine produces, on record: orders, fills (the `trades` table), strategy
//! state and status changes, risk events. One batch is one transaction, so a crash leaves the
//! record consistent with itself.

use std::collections::HashMap;

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::{Store, StoreError};

/// An order as the engine placed it.
#[derive(Debug, Clone)]
pub struct PlacedOrder {
    pub strategy_id: i64,
    pub client_order_id: String,
    pub kind: String,
    pub side: String,
    pub trigger_price: Option<String>,
    pub quote_amount: Option<String>,
    pub base_amount: Option<String>,
    pub cell: Option<i64>,
    /// The strategy's tag for the order (None for orders not placed by the engine).
    pub tag: Option<i64>,
    pub status: &'static str,
}

/// A fill on record.
#[derive(Debug, Clone)]
pub struct TradeRow {
    pub strategy_id: i64,
    pub order_id: i64,
    pub side: String,
    pub price: String,
    pub base_amount: String,
    pub quote_amount: String,
    pub fee_quote: String,
    pub realized_pnl: Option<String>,
    pub executed_at: i64,
    /// Gas in quote and the BNB price that converted it (`None` when the fill paid none or its
    /// BNB price was not known).
    pub gas_quote: Option<String>,
    pub gas_bnb_price: Option<String>,
}

impl TradeRow {
    /// The row of `fill` (its order's id set when the order's row is known): one rendering of a
    /// fill's amounts, gas and conversion price for the writer and the restart's recovery alike.
    pub fn of_fill(
        strategy_id: i64,
        fill: &crate::model::order::Fill,
        executed_at: i64,
    ) -> TradeRow {
        TradeRow {
            strategy_id,
            order_id: 0,
            side: fill.side.as_str().into(),
            price: fill.price.normalize().to_string(),
            base_amount: fill.base.normalize().to_string(),
            quote_amount: fill.quote.normalize().to_string(),
            fee_quote: fill.fee.normalize().to_string(),
            realized_pnl: fill
                .lot_cost
                .map(|c| (fill.quote - c).normalize().to_string()),
            executed_at,
            gas_quote: (!fill.gas.is_zero()).then(|| fill.gas.normalize().to_string()),
            gas_bnb_price: fill.bnb_price.map(|p| p.normalize().to_string()),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct TradeRecord {
    /// The trade's id; `None` for a swap that filled nothing (pending or failed), whose row is
    /// its order's.
    pub id: Option<i64>,
    pub strategy_id: i64,
    pub strategy_name: String,
    pub symbol: String,
    pub order_id: Option<i64>,
    pub side: String,
    pub price: String,
    pub base_amount: String,
    pub quote_amount: String,
    pub fee_quote: String,
    pub realized_pnl: Option<String>,
    pub tx_hash: Option<String>,
    /// Gas the swap cost, in BNB (live trades).
    pub gas_fee: Option<String>,
    /// Gas in quote (live: `gas_fee` at `gas_bnb_price`; paper and backtests with the AMM fill
    /// model: the model's charge).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gas_quote: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gas_bnb_price: Option<String>,
    /// The pool's mid price just before the swap, and how much worse than it the swap filled
    /// before the pool fee, in bps (live trades): with `fee_quote` and `gas_fee`, what separates
    /// a live fill from its paper twin's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pool_price_before: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price_impact_bps: Option<String>,
    /// The pool that filled a live swap (`v2`, `v3:500`) and its address; initialized ticks a
    /// V3 swap crossed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pool_kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pool_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticks_crossed: Option<i64>,
    /// `filled`; in [`Store::trading_log`] also `pending` (a swap in flight) or `failed` (a swap
    /// that reverted or was dropped: its amounts are what it tried to trade, `gas_fee` what it
    /// cost, `reason` why).
    pub status: String,
    pub executed_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RiskEventRecord {
    pub id: i64,
    pub strategy_id: Option<i64>,
    pub kind: String,
    pub severity: String,
    pub message: String,
    pub created_at: i64,
}

/// A pending order of a strategy, for matching after a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingOrder {
    pub id: i64,
    pub tag: Option<i64>,
    pub side: String,
    pub trigger_price: Option<String>,
    pub quote_amount: Option<String>,
    pub base_amount: Option<String>,
}

/// Rows per multi-row statement: 64 and then powers of two, so a batch of any size uses at most
/// seven distinct statement texts per table (each prepared once and cached by the connection).
fn chunk_sizes(mut n: usize) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        if n == 0 {
            return None;
        }
        let size = if n >= 64 { 64 } else { 1 << n.ilog2() };
        n -= size;
        Some(size)
    })
}

/// `rows` cut into the [`chunk_sizes`] pieces, in order.
fn chunks<T>(rows: &[T]) -> impl Iterator<Item = &[T]> {
    let mut rest = rows;
    chunk_sizes(rows.len()).map(move |size| {
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        chunk
    })
}

/// Bind placeholders for multi-row statements: `?` on SQLite, `$N` on PostgreSQL. sqlx looks a
/// numbered SQLite parameter's name up by a linear scan per parameter, which made a 700-parameter
/// statement cost quadratic time (a tenth of the writer's CPU); anonymous ones cost nothing.
struct Placeholders {
    sqlite: bool,
    next: usize,
}

impl Placeholders {
    fn of(conn: &AnyConnection) -> Self {
        Placeholders {
            sqlite: conn.backend_name().eq_ignore_ascii_case("sqlite"),
            next: 0,
        }
    }

    fn one(&mut self) -> String {
        self.next += 1;
        if self.sqlite {
            "?".to_string()
        } else {
            format!("${}", self.next)
        }
    }

    /// `(p, p, …)` with `n` placeholders.
    fn row(&mut self, n: usize) -> String {
        let parts: Vec<String> = (0..n).map(|_| self.one()).collect();
        format!("({})", parts.join(", "))
    }

    /// `rows` rows of `n` placeholders each.
    fn rows(&mut self, rows: usize, n: usize) -> String {
        (0..rows)
            .map(|_| self.row(n))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Insert orders, each with its own time; returns `client_order_id → id`. Many rows go in a few
/// statements: the daemon's writer stores a burst of fills' counter-orders this way.
/// Gives a pending order re-used across a restart this run's client id (the name its swaps carry).
pub async fn rename_pending_order(
    conn: &mut AnyConnection,
    id: i64,
    client_order_id: &str,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE orders SET client_order_id = $1 WHERE id = $2 AND status = 'pending'")
        .bind(client_order_id.to_string())
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn insert_orders(
    conn: &mut AnyConnection,
    orders: &[(PlacedOrder, i64)],
) -> Result<HashMap<String, i64>, StoreError> {
    let mut ids = HashMap::with_capacity(orders.len());
    for chunk in chunks(orders) {
        let size = chunk.len();
        let sql = format!(
            "INSERT INTO orders (strategy_id, client_order_id, kind, side, trigger_price, quote_amount, \
             base_amount, cell, tag, status, created_at, updated_at) VALUES {} \
             RETURNING id, client_order_id",
            Placeholders::of(conn).rows(size, 12)
        );
        let mut q = sqlx::query(&sql);
        for (o, now_ms) in chunk {
            q = q
                .bind(o.strategy_id)
                .bind(o.client_order_id.clone())
                .bind(o.kind.clone())
                .bind(o.side.clone())
                .bind(o.trigger_price.clone())
                .bind(o.quote_amount.clone())
                .bind(o.base_amount.clone())
                .bind(o.cell)
                .bind(o.tag)
                .bind(o.status.to_string())
                .bind(*now_ms)
                .bind(*now_ms);
        }
        for row in q.fetch_all(&mut *conn).await? {
            ids.insert(row.try_get("client_order_id")?, row.try_get("id")?);
        }
    }
    Ok(ids)
}

pub async fn insert_order(
    conn: &mut AnyConnection,
    o: &PlacedOrder,
    now_ms: i64,
) -> Result<i64, StoreError> {
    let ids = insert_orders(conn, &[(o.clone(), now_ms)]).await?;
    ids.get(&o.client_order_id)
        .copied()
        .ok_or_else(|| StoreError::Corrupt("the inserted order was not returned".into()))
}

/// Move live orders (resting or in flight) to `status`; an order that reached its end (filled,
/// cancelled, failed, refused) keeps it.
pub async fn set_orders_status(
    conn: &mut AnyConnection,
    ids: &[i64],
    status: &str,
    reason: Option<&str>,
    now_ms: i64,
) -> Result<(), StoreError> {
    for chunk in chunks(ids) {
        let size = chunk.len();
        let mut p = Placeholders::of(conn);
        let sql = format!(
            "UPDATE orders SET status = {}, status_reason = COALESCE({}, status_reason), updated_at = {} \
             WHERE status IN ('pending', 'submitted', 'accepted') AND id IN {}",
            p.one(),
            p.one(),
            p.one(),
            p.row(size)
        );
        let mut q = sqlx::query(&sql)
            .bind(status.to_string())
            .bind(reason.map(str::to_string))
            .bind(now_ms);
        for id in chunk {
            q = q.bind(*id);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

pub async fn insert_trades(
    conn: &mut AnyConnection,
    trades: &[TradeRow],
) -> Result<(), StoreError> {
    for chunk in chunks(trades) {
        let size = chunk.len();
        let mut p = Placeholders::of(conn);
        let values: Vec<String> = (0..size)
            .map(|_| {
                let head: Vec<String> = (0..8).map(|_| p.one()).collect();
                let tail: Vec<String> = (0..3).map(|_| p.one()).collect();
                format!(
                    "({}, NULL, NULL, 'filled', {})",
                    head.join(", "),
                    tail.join(", ")
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO trades (strategy_id, order_id, side, price, base_amount, quote_amount, fee_quote, \
             realized_pnl, tx_hash, gas_fee, status, executed_at, gas_quote, gas_bnb_price) VALUES {}",
            values.join(", ")
        );
        let mut q = sqlx::query(&sql);
        for t in chunk {
            q = q
                .bind(t.strategy_id)
                .bind(t.order_id)
                .bind(t.side.clone())
                .bind(t.price.clone())
                .bind(t.base_amount.clone())
                .bind(t.quote_amount.clone())
                .bind(t.fee_quote.clone())
                .bind(t.realized_pnl.clone())
                .bind(t.executed_at)
                .bind(t.gas_quote.clone())
                .bind(t.gas_bnb_price.clone());
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Store strategies' state documents: `(strategy id, JSON, time)`, one row per strategy.
pub async fn save_states(
    conn: &mut AnyConnection,
    states: &[(i64, String, i64)],
) -> Result<(), StoreError> {
    for chunk in chunks(states) {
        let size = chunk.len();
        // VALUES columns are column1.. in both SQLite and PostgreSQL.
        let sql = format!(
            "UPDATE strategies SET state = v.column2, state_version = state_version + 1, \
             updated_at = v.column3 FROM (VALUES {}) AS v WHERE strategies.id = v.column1",
            Placeholders::of(conn).rows(size, 3)
        );
        let mut q = sqlx::query(&sql);
        for (id, state, now_ms) in chunk {
            q = q.bind(*id).bind(state.clone()).bind(*now_ms);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Give the trades of these orders their swap's transaction hash and gas fee (BNB), from the order's
/// venue reference and the transaction on record.
pub async fn link_trades_to_chain(
    conn: &mut AnyConnection,
    order_ids: &[i64],
) -> Result<(), StoreError> {
    for id in order_ids {
        sqlx::query(
            "UPDATE trades SET tx_hash = (SELECT venue_ref FROM orders WHERE orders.id = $1), \
             gas_fee = (SELECT c.fee_bnb FROM chain_txs c JOIN orders o ON c.tx_hash = o.venue_ref \
             WHERE o.id = $1) WHERE order_id = $1",
        )
        .bind(*id)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// The venue's name for an order it accepted (a transaction hash on chain).
pub async fn set_venue_ref(
    conn: &mut AnyConnection,
    order_id: i64,
    reference: &str,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE orders SET venue_ref = $1 WHERE id = $2")
        .bind(reference.to_string())
        .bind(order_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Engage the kill switch from inside the daemon (the writer after a database outage), in the
/// caller's transaction, bumping the control revision so every reader sees it.
pub async fn engage_kill_switch(
    conn: &mut AnyConnection,
    reason: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    super::control::engage_kill_switch_in(conn, reason, now_ms).await
}

/// The engine stopped a strategy by itself (stop-loss, take-profit, range exit).
pub async fn engine_stopped(
    conn: &mut AnyConnection,
    strategy_id: i64,
    reason: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE strategies SET status = 'stopped', status_reason = $1, stopped_at = $2, updated_at = $2 \
         WHERE id = $3 AND status <> 'stopped'",
    )
    .bind(reason.to_string())
    .bind(now_ms)
    .bind(strategy_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The risk guard paused strategy `strategy_id`: its status (only if still active — an operator
/// may have acted first) and the risk event, in the caller's transaction. The control revision
/// moves so the control poller sees the new status (and an operator's later resume is news).
pub async fn risk_pause(
    conn: &mut AnyConnection,
    strategy_id: i64,
    kind: &str,
    message: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE strategies SET status = 'paused', status_reason = $1, updated_at = $2 \
         WHERE id = $3 AND status = 'active'",
    )
    .bind(format!("risk: {message}"))
    .bind(now_ms)
    .bind(strategy_id)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE control_state SET revision = revision + 1, updated_at = $1 WHERE id = 1")
        .bind(now_ms)
        .execute(&mut *conn)
        .await?;
    insert_risk_event_with(
        conn,
        Some(strategy_id),
        kind,
        "critical",
        message,
        None,
        now_ms,
    )
    .await
}

pub async fn insert_risk_event(
    conn: &mut AnyConnection,
    strategy_id: Option<i64>,
    kind: &str,
    severity: &str,
    message: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    insert_risk_event_with(conn, strategy_id, kind, severity, message, None, now_ms).await
}

/// A risk event with machine-readable details (JSON), e.g. a cool-down's market and end.
pub async fn insert_risk_event_with(
    conn: &mut AnyConnection,
    strategy_id: Option<i64>,
    kind: &str,
    severity: &str,
    message: &str,
    details: Option<String>,
    now_ms: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO risk_events (strategy_id, kind, severity, message, details, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(strategy_id)
    .bind(kind.to_string())
    .bind(severity.to_string())
    .bind(message.to_string())
    .bind(details)
    .bind(now_ms)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

fn risk_event_from_row(r: &AnyRow) -> Result<RiskEventRecord, StoreError> {
    Ok(RiskEventRecord {
        id: r.try_get("id")?,
        strategy_id: r.try_get("strategy_id")?,
        kind: r.try_get("kind")?,
        severity: r.try_get("severity")?,
        message: r.try_get("message")?,
        created_at: r.try_get("created_at")?,
    })
}

/// Fills with their strategy and, for swaps, what the chain said of them.
const FILLS: &str = "SELECT t.id AS id, t.strategy_id AS strategy_id, s.name AS name, \
     s.symbol AS symbol, t.order_id AS order_id, t.side AS side, t.price AS price, \
     t.base_amount AS base_amount, t.quote_amount AS quote_amount, t.fee_quote AS fee_quote, \
     t.realized_pnl AS realized_pnl, t.tx_hash AS tx_hash, t.gas_fee AS gas_fee, \
     t.gas_quote AS gas_quote, t.gas_bnb_price AS gas_bnb_price, \
     t.status AS status, t.executed_at AS executed_at, \
     c.pool_price_before AS pool_price_before, c.price_impact_bps AS price_impact_bps, \
     c.pool_kind AS pool_kind, c.pool_address AS pool_address, c.ticks_crossed AS ticks_crossed, \
     NULL AS reason \
     FROM trades t JOIN strategies s ON s.id = t.strategy_id \
     LEFT JOIN chain_txs c ON c.tx_hash = t.tx_hash \
     WHERE ($1 IS NULL OR t.strategy_id = $1)";

/// Swaps (orders a venue took under a transaction hash) that have no fill: in flight, or failed
/// with the gas their transaction cost. Amounts are what the order meant to trade.
const UNFILLED_SWAPS: &str = "SELECT NULL AS id, o.strategy_id AS strategy_id, s.name AS name, \
     s.symbol AS symbol, o.id AS order_id, o.side AS side, \
     COALESCE(o.trigger_price, 'market') AS price, \
     CASE WHEN o.side = 'sell' THEN COALESCE(o.base_amount, '0') ELSE '0' END AS base_amount, \
     CASE WHEN o.side = 'buy' THEN COALESCE(o.quote_amount, '0') ELSE '0' END AS quote_amount, \
     '0' AS fee_quote, NULL AS realized_pnl, o.venue_ref AS tx_hash, c.fee_bnb AS gas_fee, \
     NULL AS gas_quote, NULL AS gas_bnb_price, \
     CASE WHEN o.status = 'failed' THEN 'failed' ELSE 'pending' END AS status, \
     o.updated_at AS executed_at, NULL AS pool_price_before, NULL AS price_impact_bps, \
     c.pool_kind AS pool_kind, c.pool_address AS pool_address, CAST(NULL AS BIGINT) AS ticks_crossed, \
     o.status_reason AS reason \
     FROM orders o JOIN strategies s ON s.id = o.strategy_id \
     LEFT JOIN chain_txs c ON c.tx_hash = o.venue_ref \
     WHERE o.venue_ref IS NOT NULL AND o.status IN ('failed', 'submitted', 'accepted') \
     AND ($1 IS NULL OR o.strategy_id = $1)";

fn trade_from_row(r: &AnyRow) -> Result<TradeRecord, StoreError> {
    Ok(TradeRecord {
        id: r.try_get("id")?,
        strategy_id: r.try_get("strategy_id")?,
        strategy_name: r.try_get("name")?,
        symbol: r.try_get("symbol")?,
        order_id: r.try_get("order_id")?,
        side: r.try_get("side")?,
        price: r.try_get("price")?,
        base_amount: r.try_get("base_amount")?,
        quote_amount: r.try_get("quote_amount")?,
        fee_quote: r.try_get("fee_quote")?,
        realized_pnl: r.try_get("realized_pnl")?,
        tx_hash: r.try_get("tx_hash")?,
        gas_fee: r.try_get("gas_fee")?,
        gas_quote: r.try_get("gas_quote")?,
        gas_bnb_price: r.try_get("gas_bnb_price")?,
        pool_price_before: r.try_get("pool_price_before")?,
        price_impact_bps: r.try_get("price_impact_bps")?,
        pool_kind: r.try_get("pool_kind")?,
        pool_address: r.try_get("pool_address")?,
        ticks_crossed: r.try_get("ticks_crossed")?,
        status: r.try_get("status")?,
        executed_at: r.try_get("executed_at")?,
        reason: r.try_get("reason")?,
    })
}

impl Store {
    /// Newest fills first, optionally of one strategy.
    pub async fn trading_history(
        &self,
        strategy_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<TradeRecord>, StoreError> {
        let rows = sqlx::query(&format!("{FILLS} ORDER BY t.id DESC LIMIT $2"))
            .bind(strategy_id)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(trade_from_row).collect()
    }

    /// What an operator reads as the trading history: the fills, and beside them every swap that
    /// filled nothing yet (`pending`, in flight) or ever (`failed`: reverted, dropped, cancelled
    /// on chain, with the gas it cost and why), newest first. A failed swap is an order that
    /// failed, not a trade (the ledger sums trades), so this reads both.
    pub async fn trading_log(
        &self,
        strategy_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<TradeRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT * FROM ({FILLS} UNION ALL {UNFILLED_SWAPS}) h \
             ORDER BY executed_at DESC, COALESCE(order_id, 0) DESC, COALESCE(id, 0) DESC LIMIT $2"
        ))
        .bind(strategy_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(trade_from_row).collect()
    }

    /// Fills (of one strategy, or all) with an id above `after_id`, oldest first, at most
    /// `limit`: what the console pushes as they land, and a strategy's equity curve. Only fills:
    /// swaps that filled nothing are not among them.
    pub async fn fills_after(
        &self,
        strategy_id: Option<i64>,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<TradeRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT * FROM ({FILLS} AND t.id > $2) h ORDER BY id LIMIT $3"
        ))
        .bind(strategy_id)
        .bind(after_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(trade_from_row).collect()
    }

    /// The newest fill's id (0 with none).
    pub async fn last_fill_id(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar::<_, Option<i64>>("SELECT MAX(id) FROM trades")
                .fetch_one(&self.pool)
                .await?
                .unwrap_or(0),
        )
    }

    /// Fills per strategy since `since_ms` (`fills today` from midnight UTC).
    pub async fn fill_counts_since(
        &self,
        since_ms: i64,
    ) -> Result<std::collections::BTreeMap<i64, i64>, StoreError> {
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT strategy_id, COUNT(*) FROM trades WHERE executed_at >= $1 AND status = 'filled' \
             GROUP BY strategy_id",
        )
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().collect())
    }

    /// Markets whose new buys the risk guard stopped until a time still ahead of `now_ms`
    /// (price-jump cool-downs), as `(market, until_ms)`: a restart keeps them.
    pub async fn active_buy_blocks(&self, now_ms: i64) -> Result<Vec<(String, i64)>, StoreError> {
        let rows: Vec<Option<String>> = sqlx::query_scalar(
            "SELECT details FROM risk_events WHERE kind = 'price_jump' AND details IS NOT NULL \
             AND created_at >= $1 ORDER BY id",
        )
        // A cool-down is at most a day long (risk.price_jump_cooldown_secs is validated so).
        .bind(now_ms - 86_400_000)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .flatten()
            .filter_map(|d| serde_json::from_str::<serde_json::Value>(&d).ok())
            .filter_map(|v| Some((v["symbol"].as_str()?.to_string(), v["until_ms"].as_i64()?)))
            .filter(|(_, until)| *until > now_ms)
            .collect())
    }

    /// A strategy's failed swaps, newest first, and how many there are in all.
    pub async fn failed_swaps(
        &self,
        strategy_id: i64,
        limit: i64,
    ) -> Result<(i64, Vec<TradeRecord>), StoreError> {
        let rows = sqlx::query(&format!(
            "{UNFILLED_SWAPS} AND o.status = 'failed' ORDER BY o.updated_at DESC, o.id DESC LIMIT $2"
        ))
        .bind(strategy_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM orders WHERE strategy_id = $1 AND status = 'failed' \
             AND venue_ref IS NOT NULL",
        )
        .bind(strategy_id)
        .fetch_one(&self.pool)
        .await?;
        Ok((
            count,
            rows.iter().map(trade_from_row).collect::<Result<_, _>>()?,
        ))
    }

    pub async fn trade_count(&self, strategy_id: i64) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM trades WHERE strategy_id = $1")
                .bind(strategy_id)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Newest risk events first, optionally of one strategy or one kind.
    pub async fn risk_events(
        &self,
        strategy_id: Option<i64>,
        kind: Option<&str>,
        limit: i64,
    ) -> Result<Vec<RiskEventRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, strategy_id, kind, severity, message, created_at FROM risk_events \
             WHERE ($1 IS NULL OR strategy_id = $1) AND ($2 IS NULL OR kind = $2) \
             ORDER BY id DESC LIMIT $3",
        )
        .bind(strategy_id)
        .bind(kind.map(str::to_string))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(risk_event_from_row).collect()
    }

    /// Orders of a strategy a venue answered since `since_ms`: `(failed, all)`.
    pub async fn answered_orders_since(
        &self,
        strategy_id: i64,
        since_ms: i64,
    ) -> Result<(i64, i64), StoreError> {
        let row = sqlx::query(
            "SELECT COALESCE(SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), 0) AS failed, \
             COUNT(*) AS answered FROM orders WHERE strategy_id = $1 AND updated_at >= $2 \
             AND status IN ('failed', 'filled')",
        )
        .bind(strategy_id)
        .bind(since_ms)
        .fetch_one(&self.pool)
        .await?;
        Ok((row.try_get("failed")?, row.try_get("answered")?))
    }

    pub async fn risk_events_since(
        &self,
        since_ms: i64,
    ) -> Result<Vec<RiskEventRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, strategy_id, kind, severity, message, created_at FROM risk_events \
             WHERE created_at >= $1 ORDER BY id",
        )
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(risk_event_from_row).collect()
    }

    /// Pending orders of one strategy, for matching the orders a restored strategy re-issues.
    pub async fn pending_orders_of(
        &self,
        strategy_id: i64,
    ) -> Result<Vec<PendingOrder>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, tag, side, trigger_price, quote_amount, base_amount FROM orders \
             WHERE strategy_id = $1 AND status = 'pending' ORDER BY id",
        )
        .bind(strategy_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(PendingOrder {
                    id: r.try_get("id")?,
                    tag: r.try_get("tag")?,
                    side: r.try_get("side")?,
                    trigger_price: r.try_get("trigger_price")?,
                    quote_amount: r.try_get("quote_amount")?,
                    base_amount: r.try_get("base_amount")?,
                })
            })
            .collect()
    }

    /// Orders cancelled by an operator since `since_ms` (the daemon applies them to its book).
    pub async fn operator_cancels_since(&self, since_ms: i64) -> Result<Vec<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM orders WHERE status = 'cancelled' AND status_reason = 'operator cancel' \
             AND updated_at >= $1 ORDER BY id",
        )
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn control_revision(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT revision FROM control_state WHERE id = 1")
                .fetch_one(&self.pool)
                .await?,
        )
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn chunk_sizes_cover_the_rows_with_few_distinct_sizes() {
        for n in [0usize, 1, 2, 3, 7, 63, 64, 65, 100, 200, 513] {
            let sizes: Vec<usize> = super::chunk_sizes(n).collect();
            assert_eq!(sizes.iter().sum::<usize>(), n, "{n}: {sizes:?}");
            assert!(
                sizes.iter().all(|s| s.is_power_of_two() && *s <= 64),
                "{n}: {sizes:?}"
            );
            assert!(sizes.windows(2).all(|w| w[0] >= w[1]), "{n}: {sizes:?}");
        }
        assert_eq!(super::chunk_sizes(100).collect::<Vec<_>>(), vec![64, 32, 4]);
    }
}
