//! Conditional orders: resting grid orders, stop-loss and take-profit held in the trigger book.
//! On an AMM nothing rests on the venue, so this table *is* the order book of record.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::paper::PlacedOrder;
use super::{audit, AuditContext, Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderStatus {
    /// Resting in the trigger book, waiting for the price to cross.
    Pending,
    /// Fired and handed to the venue: in flight, its funds reserved.
    Submitted,
    /// In flight and known to the venue (`venue_ref`: a transaction hash on chain).
    Accepted,
    Filled,
    Cancelled,
    /// The venue did not execute it (`status_reason` says why).
    Failed,
    /// The risk guard stopped it before any venue saw it.
    Refused,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::Submitted => "submitted",
            OrderStatus::Accepted => "accepted",
            OrderStatus::Filled => "filled",
            OrderStatus::Cancelled => "cancelled",
            OrderStatus::Failed => "failed",
            OrderStatus::Refused => "refused",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => OrderStatus::Pending,
            "submitted" => OrderStatus::Submitted,
            "accepted" => OrderStatus::Accepted,
            "filled" => OrderStatus::Filled,
            "cancelled" => OrderStatus::Cancelled,
            "failed" => OrderStatus::Failed,
            "refused" => OrderStatus::Refused,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct OrderRecord {
    pub id: i64,
    pub strategy_id: i64,
    pub client_order_id: String,
    pub kind: String,
    pub side: String,
    pub trigger_price: Option<String>,
    pub quote_amount: Option<String>,
    pub base_amount: Option<String>,
    pub cell: Option<i64>,
    /// The strategy's tag for the order (which cell, which side of it).
    #[serde(skip)]
    pub tag: Option<i64>,
    pub status: OrderStatus,
    pub status_reason: Option<String>,
    /// The venue's name for the order once accepted (a transaction hash on chain).
    pub venue_ref: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

const ORDER_COLUMNS: &str = "id, strategy_id, client_order_id, kind, side, trigger_price, \
     quote_amount, base_amount, cell, tag, status, status_reason, venue_ref, created_at, updated_at";

fn order_from_row(row: &AnyRow) -> Result<OrderRecord, StoreError> {
    let id: i64 = row.try_get("id")?;
    let status: String = row.try_get("status")?;
    Ok(OrderRecord {
        id,
        strategy_id: row.try_get("strategy_id")?,
        client_order_id: row.try_get("client_order_id")?,
        kind: row.try_get("kind")?,
        side: row.try_get("side")?,
        trigger_price: row.try_get("trigger_price")?,
        quote_amount: row.try_get("quote_amount")?,
        base_amount: row.try_get("base_amount")?,
        cell: row.try_get("cell")?,
        tag: row.try_get("tag")?,
        status: OrderStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("order {id} status {status:?}")))?,
        status_reason: row.try_get("status_reason")?,
        venue_ref: row.try_get("venue_ref")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// Cancel pending orders (of one strategy, or all) inside the caller's transaction.
pub(crate) async fn cancel_pending(
    conn: &mut sqlx::AnyConnection,
    strategy_id: Option<i64>,
    reason: &str,
    now_ms: i64,
) -> Result<Vec<i64>, StoreError> {
    let ids: Vec<i64> = match strategy_id {
        Some(sid) => {
            sqlx::query_scalar(
                "UPDATE orders SET status = 'cancelled', status_reason = $1, updated_at = $2 \
                 WHERE status = 'pending' AND strategy_id = $3 RETURNING id",
            )
            .bind(reason.to_string())
            .bind(now_ms)
            .bind(sid)
            .fetch_all(&mut *conn)
            .await?
        }
        None => {
            sqlx::query_scalar(
                "UPDATE orders SET status = 'cancelled', status_reason = $1, updated_at = $2 \
                 WHERE status = 'pending' RETURNING id",
            )
            .bind(reason.to_string())
            .bind(now_ms)
            .fetch_all(&mut *conn)
            .await?
        }
    };
    let mut ids = ids;
    ids.sort_unstable();
    Ok(ids)
}

impl Store {
    /// Insert one order on its own (operator tools and tests; the daemon's writer batches).
    pub async fn insert_order(&self, order: &PlacedOrder, now_ms: i64) -> Result<i64, StoreError> {
        let mut conn = self.pool.acquire().await?;
        super::paper::insert_order(&mut conn, order, now_ms).await
    }

    pub async fn list_orders(
        &self,
        strategy_id: Option<i64>,
        status: Option<OrderStatus>,
    ) -> Result<Vec<OrderRecord>, StoreError> {
        let sql = format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE ($1 IS NULL OR strategy_id = $1) \
             AND ($2 IS NULL OR status = $2) ORDER BY id"
        );
        let rows = sqlx::query(&sql)
            .bind(strategy_id)
            .bind(status.map(|s| s.as_str().to_string()))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(order_from_row).collect()
    }

    /// Orders still open: resting (`pending`) or in flight (`submitted`, `accepted`), by id.
    pub async fn open_orders(
        &self,
        strategy_id: Option<i64>,
    ) -> Result<Vec<OrderRecord>, StoreError> {
        let sql = format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE ($1 IS NULL OR strategy_id = $1) \
             AND status IN ('pending', 'submitted', 'accepted') ORDER BY id"
        );
        let rows = sqlx::query(&sql)
            .bind(strategy_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(order_from_row).collect()
    }

    /// A strategy's open orders split into resting (`pending`) and in flight, as status shows them.
    pub async fn resting_and_in_flight(
        &self,
        strategy_id: i64,
    ) -> Result<(Vec<OrderRecord>, Vec<OrderRecord>), StoreError> {
        Ok(self
            .open_orders(Some(strategy_id))
            .await?
            .into_iter()
            .partition(|o| o.status == OrderStatus::Pending))
    }

    /// Cancel one pending conditional order; the daemon sees it through the revision bump.
    pub async fn cancel_order(
        &self,
        order_id: i64,
        ctx: &AuditContext,
        now_ms: i64,
    ) -> Result<OrderRecord, StoreError> {
        let (mut tx, _) = self.begin_control_write(now_ms).await?;
        let row = sqlx::query(&format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1"))
            .bind(order_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("order {order_id}")))?;
        let order = order_from_row(&row)?;
        if order.status != OrderStatus::Pending {
            return Err(StoreError::Conflict(format!(
                "order {order_id} is {}, only pending orders can be cancelled",
                order.status.as_str()
            )));
        }
        sqlx::query(
            "UPDATE orders SET status = 'cancelled', status_reason = 'operator cancel', \
             updated_at = $1 WHERE id = $2",
        )
        .bind(now_ms)
        .bind(order_id)
        .execute(&mut *tx)
        .await?;
        audit::insert(
            &mut *tx,
            ctx,
            "ok",
            &format!("cancelled order {order_id}"),
            now_ms,
        )
        .await?;
        tx.commit().await?;
        Ok(OrderRecord {
            status: OrderStatus::Cancelled,
            status_reason: Some("operator cancel".into()),
            updated_at: now_ms,
            ..order
        })
    }
}
