//! Orders in flight when the daemon stopped, settled before any strategy runs again.
//!
//! The simulated venue's orders die with the process: nothing they reserved was spent, so they
//! are failed on record and each strategy re-issues what its state calls for. A live swap may have
//! been mined while the daemon was down (or between its receipt and the record of its fill): once
//! the wallet's transactions are reconciled with the chain, every mined swap of a strategy that no
//! trade carries is applied to the strategy — its ledger and its cells, as the fill would have been
//! — and written as its trade with the state that follows, in one transaction. A swap that did not
//! make it (reverted, dropped, never broadcast) fails its order with the reason. So the records
//! equal the chain, and the restored grid does not buy a cell it already holds.

use std::collections::BTreeMap;
use std::str::FromStr;

use alloy::primitives::B256;
use rust_decimal::Decimal;

use super::live::LiveMarkets;
use super::recorder::{cell_of, StateDocument};
use crate::chain::SwapResult;
use crate::clock::wall_clock_ms;
use crate::engine::Ledger;
use crate::model::order::{Fill, Intent, Side};
use crate::store::chain_txs::ChainTxRecord;
use crate::store::paper::{PlacedOrder, TradeRow};
use crate::store::recovery::{RecoveredFill, RecoveryWrite};
use crate::store::{OrderRecord, Store, StoreError, StrategyRecord};
use crate::strategy::traits::StrategyCtx;
use crate::strategy::{StrategyMode, StrategyParams, StrategyStatus};

#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("strategy {strategy}: {message}")]
    State { strategy: i64, message: String },
}

/// What recovery did, per strategy (for the log).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovered {
    pub fills: usize,
    pub failed: usize,
}

/// Settle the orders `records` left in flight. `not_running` are live strategies that will not
/// run (their wallet was not reconciled): their orders stay as they are until it is. Updates
/// each record's state (and status, when a recovered liquidation stopped it) in place.
pub async fn recover_in_flight(
    store: &Store,
    markets: Option<&LiveMarkets>,
    fee_bps: u32,
    records: &mut [StrategyRecord],
    not_running: &BTreeMap<i64, String>,
) -> BTreeMap<i64, Result<Recovered, RecoveryError>> {
    let mut done = BTreeMap::new();
    for record in records.iter_mut() {
        if record.status == StrategyStatus::Stopped || not_running.contains_key(&record.id) {
            continue;
        }
        match recover_one(store, markets, fee_bps, record).await {
            Ok(None) => {}
            Ok(Some(r)) => {
                done.insert(record.id, Ok(r));
            }
            Err(e) => {
                done.insert(record.id, Err(e));
            }
        }
    }
    done
}

async fn recover_one(
    store: &Store,
    markets: Option<&LiveMarkets>,
    fee_bps: u32,
    record: &mut StrategyRecord,
) -> Result<Option<Recovered>, RecoveryError> {
    let (_, in_flight) = store.resting_and_in_flight(record.id).await?;
    let live = record.mode == StrategyMode::Live;
    let unapplied = if live {
        store.unapplied_swaps(record.id).await?
    } else {
        Vec::new()
    };
    if in_flight.is_empty() && unapplied.is_empty() {
        return Ok(None);
    }
    let now_ms = wall_clock_ms();
    let mut write = RecoveryWrite {
        strategy_id: record.id,
        now_ms,
        ..RecoveryWrite::default()
    };
    let mut fills = Vec::new();
    if let Some(m) = markets.filter(|_| live) {
        for tx in &unapplied {
            if let Some(f) = recovered_fill(m, record, tx, fee_bps, now_ms).await? {
                fills.push(f);
            }
        }
    }
    let mut filled_orders = Vec::new();
    for (fill, tx) in &fills {
        let order = order_of_swap(store, record.id, tx, &in_flight).await?;
        if let Some(id) = order {
            filled_orders.push(id);
        }
        write.fills.push(RecoveredFill {
            order_id: order,
            order: PlacedOrder {
                strategy_id: record.id,
                client_order_id: tx
                    .reference
                    .clone()
                    .unwrap_or_else(|| format!("recovered-{}", tx.tx_hash)),
                kind: if fill.market { "market" } else { "limit" }.into(),
                side: fill.side.as_str().into(),
                trigger_price: None,
                quote_amount: (fill.side == Side::Buy).then(|| fill.quote.normalize().to_string()),
                base_amount: (fill.side == Side::Sell).then(|| fill.base.normalize().to_string()),
                cell: cell_of(fill.tag),
                tag: Some(fill.tag as i64),
                status: "filled",
            },
            tx_hash: tx.tx_hash.clone(),
            trade: TradeRow::of_fill(record.id, fill, now_ms),
        });
    }
    for o in &in_flight {
        if filled_orders.contains(&o.id) {
            continue;
        }
        let reason = if live {
            failed_swap_reason(store, o).await?
        } else {
            "the daemon stopped before the simulated venue answered; nothing was spent, and \
             the strategy re-issues what its state calls for"
                .to_string()
        };
        write.failed.push((o.id, reason));
    }
    if !fills.is_empty() {
        let (state, stop) = apply_fills(record, fills.iter().map(|(f, _)| f))?;
        write.state = Some(state.clone());
        record.state = Some(state);
        if let Some(reason) = &stop {
            record.status = StrategyStatus::Stopped;
            record.status_reason = Some(reason.clone());
        }
        write.stop = stop;
    }
    write.summary = format!(
        "restart: {} swap(s) mined while the daemon was down applied to the strategy; {} \
         order(s) left in flight failed",
        write.fills.len(),
        write.failed.len()
    );
    store.apply_recovery(&write).await?;
    Ok(Some(Recovered {
        fills: write.fills.len(),
        failed: write.failed.len(),
    }))
}

/// The fill a mined swap made, read again from its receipt.
async fn recovered_fill(
    markets: &LiveMarkets,
    record: &StrategyRecord,
    tx: &ChainTxRecord,
    fee_bps: u32,
    now_ms: i64,
) -> Result<Option<(Fill, ChainTxRecord)>, RecoveryError> {
    let state_err = |message: String| RecoveryError::State {
        strategy: record.id,
        message,
    };
    let Some(origin) = &tx.origin else {
        return Ok(None);
    };
    let (Some(pool), Some(swapper)) = (
        markets.pools.get(&record.symbol),
        record.wallet.as_ref().and_then(|w| markets.wallets.get(w)),
    ) else {
        return Err(state_err("its pool or wallet is not ready".into()));
    };
    let side = match origin.side.as_str() {
        "buy" => Side::Buy,
        "sell" => Side::Sell,
        other => return Err(state_err(format!("swap side {other:?} on record"))),
    };
    let hash = B256::from_str(&tx.tx_hash)
        .map_err(|_| state_err(format!("tx hash {} on record", tx.tx_hash)))?;
    // The pool the swap went to (best execution's choice): on record since it was signed, else
    // the one its receipt names.
    let routes = markets
        .routes
        .get(&record.symbol)
        .cloned()
        .unwrap_or_else(|| vec![pool.clone()]);
    let on_record = tx
        .pool_address
        .as_deref()
        .and_then(|a| a.parse::<alloy::primitives::Address>().ok())
        .and_then(|a| routes.iter().find(|p| p.pair == a).cloned());
    let pool = &match on_record {
        Some(p) => p,
        None => swapper
            .pool_of_swap(hash, &routes)
            .await
            .map_err(|e| state_err(format!("reading swap {}: {e}", tx.tx_hash)))?
            .unwrap_or_else(|| pool.clone()),
    };
    let result = swapper
        .outcome_of(hash, pool, side)
        .await
        .map_err(|e| state_err(format!("reading swap {}: {e}", tx.tx_hash)))?;
    if let Some(r) = &result {
        swapper.record_impact(r).await;
        // Rows written before the pool went into the write-ahead record learn it here.
        if matches!(r, SwapResult::Filled { .. }) && tx.pool_address.is_none() {
            swapper.record_pool(hash, pool, None).await;
        }
    }
    let fee_bps = pool.kind.fee_bps(fee_bps);
    let Some(SwapResult::Filled { base, quote, .. }) = result else {
        tracing::warn!(tx_hash = %tx.tx_hash, "swap on record as mined has no successful receipt now; not applied");
        return Ok(None);
    };
    let lot_cost = match &origin.lot_cost {
        Some(c) => {
            Some(Decimal::from_str(c).map_err(|_| state_err(format!("lot cost {c:?} on record")))?)
        }
        None => None,
    };
    let fee = crate::venue::dex::swap_fee(side, quote, fee_bps);
    let price = crate::venue::dex::swap_price(base, quote);
    let gas_bnb: Decimal = tx
        .fee_bnb
        .as_deref()
        .and_then(|f| f.parse().ok())
        .unwrap_or_default();
    // Gas paid in BNB, in quote at BNB's price now, as the live venue prices a fill it settles:
    // PnL net of gas counts a swap mined while the daemon was down like any other.
    let bnb_price = swapper.bnb_price(pool, price).await;
    let mut fill = Fill {
        order_id: 0,
        strategy: 0,
        tag: origin.tag,
        side,
        market: origin.market,
        price,
        base,
        quote,
        fee,
        impact: Decimal::ZERO,
        gas: Decimal::ZERO,
        gas_bnb: Decimal::ZERO,
        bnb_price: None,
        lot_cost,
        ts_us: now_ms.saturating_mul(1000),
    };
    fill.pay_chain_gas(gas_bnb, bnb_price);
    Ok(Some((fill, tx.clone())))
}

/// The order on record a swap executed: by its transaction hash, its client id, or (a swap
/// recorded under a name its order row no longer has, as before re-used rows were renamed) the
/// strategy's open order of that tag.
async fn order_of_swap(
    store: &Store,
    strategy_id: i64,
    tx: &ChainTxRecord,
    in_flight: &[OrderRecord],
) -> Result<Option<i64>, StoreError> {
    if let Some(o) = in_flight
        .iter()
        .find(|o| o.venue_ref.as_deref() == Some(tx.tx_hash.as_str()))
    {
        return Ok(Some(o.id));
    }
    if let Some(reference) = &tx.reference {
        if let Some(o) = in_flight.iter().find(|o| &o.client_order_id == reference) {
            return Ok(Some(o.id));
        }
    }
    let tag = tx.origin.as_ref().map(|o| o.tag as i64);
    let open = store.open_orders(Some(strategy_id)).await?;
    Ok(open
        .iter()
        .rev()
        .find(|o| tag.is_some() && o.tag == tag)
        .map(|o| o.id))
}

/// Why a live order left in flight did not fill: what its transaction became.
async fn failed_swap_reason(store: &Store, o: &OrderRecord) -> Result<String, StoreError> {
    let tx = store.swap_tx_of_reference(&o.client_order_id).await?;
    let tx = match (tx, &o.venue_ref) {
        (Some(tx), _) => Some(tx),
        (None, Some(hash)) => store.chain_tx_by_hash(hash).await?,
        (None, None) => None,
    };
    Ok(match tx {
        None => "the daemon stopped before its swap was broadcast; nothing was sent".into(),
        Some(tx) => format!(
            "in flight when the daemon stopped: its swap {} was {}{}",
            tx.tx_hash,
            tx.status,
            tx.fee_bnb
                .as_deref()
                .map(|f| format!(" (gas {f} BNB)"))
                .unwrap_or_default()
        ),
    })
}

/// The strategy's state with `fills` applied as the engine would have applied them. The orders
/// those fills call for are not kept: the restored strategy re-issues everything its state calls
/// for. A stop is kept (a liquidation's last fill stops the grid).
fn apply_fills<'a>(
    record: &StrategyRecord,
    fills: impl Iterator<Item = &'a Fill>,
) -> Result<(String, Option<String>), RecoveryError> {
    let err = |message: String| RecoveryError::State {
        strategy: record.id,
        message,
    };
    let params =
        StrategyParams::parse(&record.kind, &record.params).map_err(|e| err(e.to_string()))?;
    let (mut strategy, mut ledger, last_price, risk) = match &record.state {
        Some(text) => {
            let doc: serde_json::Value =
                serde_json::from_str(text).map_err(|e| err(format!("state: {e}")))?;
            let ledger: Ledger = serde_json::from_value(doc["ledger"].clone())
                .map_err(|e| err(format!("ledger: {e}")))?;
            let last = doc["last_price"]
                .as_str()
                .and_then(|p| Decimal::from_str(p).ok());
            // The risk guard's loss tracking goes on as it was.
            let risk = serde_json::from_value(doc["risk"].clone()).unwrap_or(None);
            (
                params.restore_on_record(&doc["strategy"]).map_err(err)?,
                ledger,
                last,
                risk,
            )
        }
        None => {
            let s = params.build();
            let l = Ledger::new(s.initial_quote());
            (s, l, None, None)
        }
    };
    ledger.reserved_quote = Decimal::ZERO;
    ledger.reserved_base = Decimal::ZERO;
    let mut stop = None;
    let mut intents = Vec::new();
    for fill in fills {
        ledger.apply(fill);
        let mut ctx = StrategyCtx {
            ts_us: fill.ts_us,
            price: fill.price,
            intents: &mut intents,
        };
        strategy.on_fill(&mut ctx, fill);
        for intent in intents.drain(..) {
            if let Intent::Stop { reason } = intent {
                stop = Some(reason);
            }
        }
    }
    let status = if stop.is_some() {
        StrategyStatus::Stopped
    } else {
        record.status
    };
    let doc = StateDocument {
        strategy: strategy.state(),
        ledger,
        last_price,
        status,
        risk,
    };
    Ok((doc.to_json(), stop))
}
