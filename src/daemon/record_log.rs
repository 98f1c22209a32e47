//! The operator's trade log: what the writer put on record, logged once it is committed.

use std::collections::HashMap;

use super::recorder::PersistOp;
use crate::model::order::OrderId;
use crate::store::paper::TradeRow;

/// Log what a batch put on record, once it is committed (a retried batch logs once, and the
/// engine thread never formats a log line). Spans carry `strategy_id` and the database
/// `order_id`, the ids an operator greps for.
/// `trades` are the batch's fills as written, in op order; `accepted` holds the transaction
/// hash of each order a chain venue accepted, so a live fill is logged as one, with its hash.
pub(crate) fn log_committed(
    ops: &[PersistOp],
    trades: &[TradeRow],
    engine_to_db: &HashMap<OrderId, i64>,
    accepted: &HashMap<OrderId, String>,
) {
    let mut trades = trades.iter();
    for op in ops {
        match op {
            PersistOp::Filled { fill, .. } => {
                let Some(t) = trades.next() else {
                    continue;
                };
                let span = tracing::info_span!(
                    "order",
                    strategy_id = t.strategy_id,
                    order_id = t.order_id
                );
                let _in = span.enter();
                match accepted.get(&fill.order_id) {
                    Some(tx_hash) => tracing::info!(
                        side = %t.side,
                        price = %t.price,
                        base = %t.base_amount,
                        quote = %t.quote_amount,
                        fee = %t.fee_quote,
                        %tx_hash,
                        "live fill"
                    ),
                    None => tracing::info!(
                        side = %t.side,
                        price = %t.price,
                        base = %t.base_amount,
                        quote = %t.quote_amount,
                        fee = %t.fee_quote,
                        "paper fill"
                    ),
                }
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
