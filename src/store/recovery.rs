//! What a restart learns about orders that were in flight when the daemon stopped, written in one
//! transaction with the strategy state that follows from it: a swap mined while the daemon was
//! down becomes its trade (and its order filled) together with the ledger that counts it, so a
//! second crash can neither apply it twice nor lose it.

use super::paper::{self, PlacedOrder, TradeRow};
use super::{Store, StoreError};

/// A swap mined while the daemon was down.
#[derive(Debug, Clone)]
pub struct RecoveredFill {
    /// Its order on record, if the record has it; otherwise `order` goes in (as filled).
    pub order_id: Option<i64>,
    pub order: PlacedOrder,
    pub tx_hash: String,
    /// The trade (its `order_id` is filled in here).
    pub trade: TradeRow,
}

/// Everything recovery changes for one strategy.
#[derive(Debug, Clone, Default)]
pub struct RecoveryWrite {
    pub strategy_id: i64,
    pub fills: Vec<RecoveredFill>,
    /// Orders left in flight that did not fill, with why.
    pub failed: Vec<(i64, String)>,
    /// The strategy state after the fills (`None`: unchanged).
    pub state: Option<String>,
    /// The strategy stopped as a result (its last liquidation filled).
    pub stop: Option<String>,
    /// A line for `risk events` saying what was recovered.
    pub summary: String,
    pub now_ms: i64,
}

impl Store {
    /// Write one strategy's recovery atomically.
    pub async fn apply_recovery(&self, w: &RecoveryWrite) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        for f in &w.fills {
            let order_id = match f.order_id {
                Some(id) => id,
                None => paper::insert_order(&mut tx, &f.order, w.now_ms).await?,
            };
            paper::set_orders_status(&mut tx, &[order_id], "filled", None, w.now_ms).await?;
            paper::set_venue_ref(&mut tx, order_id, &f.tx_hash).await?;
            let trade = TradeRow {
                order_id,
                ..f.trade.clone()
            };
            paper::insert_trades(&mut tx, &[trade]).await?;
            paper::link_trades_to_chain(&mut tx, &[order_id]).await?;
        }
        for (order_id, reason) in &w.failed {
            paper::set_orders_status(&mut tx, &[*order_id], "failed", Some(reason), w.now_ms)
                .await?;
        }
        if let Some(state) = &w.state {
            paper::save_states(&mut tx, &[(w.strategy_id, state.clone(), w.now_ms)]).await?;
        }
        if let Some(reason) = &w.stop {
            paper::engine_stopped(&mut tx, w.strategy_id, reason, w.now_ms).await?;
        }
        if !w.fills.is_empty() || !w.failed.is_empty() {
            paper::insert_risk_event(
                &mut tx,
                Some(w.strategy_id),
                "restart_recovery",
                "warning",
                &w.summary,
                w.now_ms,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
