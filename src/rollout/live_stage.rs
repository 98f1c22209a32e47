//! The live gate's measures, read from the record over one stage (from its start): the live
//! strategy's swaps and how many failed, its risk events, each of its fills against its paper
//! twin's fill of the same cell and side (the twin trades the same grid on the same pool prices),
//! the gas it paid per round trip, and its realized return net of gas.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use crate::canary::gates::LiveMeasures;
use crate::store::orders::OrderStatus;
use crate::store::paper::TradeRecord;
use crate::store::{Store, StoreError};

/// Which strategies and which stretch of time a live gate judges.
#[derive(Debug, Clone)]
pub struct LiveWindow {
    pub live: i64,
    /// The paper twin (`None`: no slippage can be measured, and the gate holds on it).
    pub twin: Option<i64>,
    /// The stage's start (epoch ms): what came before belongs to earlier stages.
    pub since_ms: i64,
    /// The capital the stage trades with, in quote: the return is over it.
    pub capital: Decimal,
    /// The backtest model's gas per round trip, in quote.
    pub model_gas_per_round_trip: Option<Decimal>,
}

/// A strategy's fills in the window, oldest first, each with the cell its order was for.
async fn fills_with_cells(
    store: &Store,
    strategy: i64,
    since_ms: i64,
) -> Result<Vec<(Option<i64>, TradeRecord)>, StoreError> {
    let cells: BTreeMap<i64, Option<i64>> = store
        .list_orders(Some(strategy), None)
        .await?
        .into_iter()
        .map(|o| (o.id, o.cell))
        .collect();
    let mut fills: Vec<TradeRecord> = store
        .trading_history(Some(strategy), i64::MAX)
        .await?
        .into_iter()
        .filter(|t| t.status == "filled" && t.executed_at >= since_ms)
        .collect();
    fills.sort_by_key(|t| (t.executed_at, t.id));
    Ok(fills
        .into_iter()
        .map(|t| (t.order_id.and_then(|o| cells.get(&o).copied().flatten()), t))
        .collect())
}

fn decimal(text: &str) -> Result<Decimal, StoreError> {
    text.parse()
        .map_err(|_| StoreError::Corrupt(format!("a trade's amount {text:?}")))
}

/// How much worse the live fill was than its twin's, in bps (a buy that paid more, a sell that
/// got less: positive).
fn slippage_bps(side: &str, live: Decimal, twin: Decimal) -> Option<Decimal> {
    if twin <= Decimal::ZERO {
        return None;
    }
    let worse = if side == "buy" {
        live - twin
    } else {
        twin - live
    };
    Some(worse / twin * Decimal::from(10_000))
}

pub async fn live_measures(store: &Store, w: &LiveWindow) -> Result<LiveMeasures, StoreError> {
    let orders: Vec<_> = store
        .list_orders(Some(w.live), None)
        .await?
        .into_iter()
        .filter(|o| o.updated_at >= w.since_ms)
        .collect();
    let swaps = orders
        .iter()
        .filter(|o| matches!(o.status, OrderStatus::Filled | OrderStatus::Failed))
        .count() as u64;
    let failed_swaps = orders
        .iter()
        .filter(|o| o.status == OrderStatus::Failed)
        .count() as u64;
    let risk_events = store
        .risk_events_since(w.since_ms)
        .await?
        .iter()
        .filter(|e| e.strategy_id == Some(w.live))
        .count() as u64;

    let live = fills_with_cells(store, w.live, w.since_ms).await?;
    // The k-th fill of a cell and side, live, against the twin's k-th of the same.
    let mut worst: Option<Decimal> = None;
    if let Some(twin) = w.twin {
        let twin = fills_with_cells(store, twin, w.since_ms).await?;
        let mut twins: BTreeMap<(Option<i64>, String), Vec<Decimal>> = BTreeMap::new();
        for (cell, t) in &twin {
            twins
                .entry((*cell, t.side.clone()))
                .or_default()
                .push(decimal(&t.price)?);
        }
        let mut seen: BTreeMap<(Option<i64>, String), usize> = BTreeMap::new();
        for (cell, t) in &live {
            let key = (*cell, t.side.clone());
            let k = seen.entry(key.clone()).or_default();
            let twin_price = twins.get(&key).and_then(|p| p.get(*k)).copied();
            *k += 1;
            if let Some(s) = twin_price.and_then(|p| {
                decimal(&t.price)
                    .ok()
                    .and_then(|l| slippage_bps(&t.side, l, p))
            }) {
                worst = Some(worst.map_or(s, |w| w.max(s)));
            }
        }
    }

    let mut gas = Some(Decimal::ZERO);
    let mut realized = Decimal::ZERO;
    let mut round_trips = 0u64;
    for (_, t) in &live {
        // A fill whose gas is not priced in quote leaves the gas unmeasured (never free).
        gas = match (gas, t.gas_quote.as_deref()) {
            (Some(g), Some(q)) => Some(g + decimal(q)?),
            (Some(g), None) if t.gas_fee.is_none() => Some(g),
            _ => None,
        };
        if let Some(r) = t.realized_pnl.as_deref() {
            realized += decimal(r)?;
        }
        if t.side == "sell" {
            round_trips += 1;
        }
    }
    let gas_per_round_trip = gas
        .filter(|_| round_trips > 0)
        .map(|g| g / Decimal::from(round_trips));
    let return_net_of_gas_pct = if w.capital > Decimal::ZERO {
        (realized - gas.unwrap_or_default()) / w.capital * Decimal::ONE_HUNDRED
    } else {
        Decimal::ZERO
    };
    Ok(LiveMeasures {
        swaps,
        failed_swaps,
        risk_events,
        worst_slippage_bps: worst,
        gas_per_round_trip,
        model_gas_per_round_trip: w.model_gas_per_round_trip,
        return_net_of_gas_pct,
    })
}
