//! What the daemon's engine produces, on record: orders, fills (the `trades` table), strategy
//! state and status changes, risk events. One batch is one transaction, so a crash leaves the
//! record consistent with itself.

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
}

#[derive(Debug, Clone, Serialize)]
pub struct TradeRecord {
    pub id: i64,
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
    pub status: String,
    pub executed_at: i64,
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

pub async fn insert_order(
    conn: &mut AnyConnection,
    o: &PlacedOrder,
    now_ms: i64,
) -> Result<i64, StoreError> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO orders (strategy_id, client_order_id, kind, side, trigger_price, quote_amount, \
         base_amount, cell, tag, status, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) RETURNING id",
    )
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
    .bind(now_ms)
    .fetch_one(&mut *conn)
    .await?;
    Ok(id)
}

pub async fn set_order_status(
    conn: &mut AnyConnection,
    id: i64,
    status: &str,
    reason: Option<&str>,
    now_ms: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE orders SET status = $1, status_reason = COALESCE($2, status_reason), updated_at = $3 \
         WHERE id = $4 AND status = 'pending'",
    )
    .bind(status.to_string())
    .bind(reason.map(str::to_string))
    .bind(now_ms)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn insert_trade(conn: &mut AnyConnection, t: &TradeRow) -> Result<i64, StoreError> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO trades (strategy_id, order_id, side, price, base_amount, quote_amount, fee_quote, \
         realized_pnl, tx_hash, gas_fee, status, executed_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL, 'filled', $9) RETURNING id",
    )
    .bind(t.strategy_id)
    .bind(t.order_id)
    .bind(t.side.clone())
    .bind(t.price.clone())
    .bind(t.base_amount.clone())
    .bind(t.quote_amount.clone())
    .bind(t.fee_quote.clone())
    .bind(t.realized_pnl.clone())
    .bind(t.executed_at)
    .fetch_one(&mut *conn)
    .await?;
    Ok(id)
}

pub async fn save_state(
    conn: &mut AnyConnection,
    strategy_id: i64,
    state: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE strategies SET state = $1, state_version = state_version + 1, updated_at = $2 WHERE id = $3")
        .bind(state.to_string())
        .bind(now_ms)
        .bind(strategy_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
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

pub async fn insert_risk_event(
    conn: &mut AnyConnection,
    strategy_id: Option<i64>,
    kind: &str,
    severity: &str,
    message: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO risk_events (strategy_id, kind, severity, message, details, created_at) \
         VALUES ($1, $2, $3, $4, NULL, $5)",
    )
    .bind(strategy_id)
    .bind(kind.to_string())
    .bind(severity.to_string())
    .bind(message.to_string())
    .bind(now_ms)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

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
        status: r.try_get("status")?,
        executed_at: r.try_get("executed_at")?,
    })
}

impl Store {
    /// Newest fills first, optionally of one strategy.
    pub async fn trading_history(
        &self,
        strategy_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<TradeRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT t.id, t.strategy_id, s.name, s.symbol, t.order_id, t.side, t.price, t.base_amount, \
             t.quote_amount, t.fee_quote, t.realized_pnl, t.tx_hash, t.status, t.executed_at \
             FROM trades t JOIN strategies s ON s.id = t.strategy_id \
             WHERE ($1 IS NULL OR t.strategy_id = $1) ORDER BY t.id DESC LIMIT $2",
        )
        .bind(strategy_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(trade_from_row).collect()
    }

    pub async fn trade_count(&self, strategy_id: i64) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM trades WHERE strategy_id = $1")
                .bind(strategy_id)
                .fetch_one(&self.pool)
                .await?,
        )
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
        rows.iter()
            .map(|r| {
                Ok(RiskEventRecord {
                    id: r.try_get("id")?,
                    strategy_id: r.try_get("strategy_id")?,
                    kind: r.try_get("kind")?,
                    severity: r.try_get("severity")?,
                    message: r.try_get("message")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
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
