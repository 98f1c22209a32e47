//! The Strategy page's one call, `/api/v1/strategies/{id}/page`.

use axum::extract::{Path, State};
use axum::Json;
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::super::parse_id;
use super::super::{ApiError, ApiState};
use super::overview::{grid_levels, price_stream};
use crate::clock::wall_clock_ms;
use crate::store::paper::TradeRecord;
use crate::store::StrategyRef;
use crate::views::strategy_document;

/// The newest trades a strategy page lists (the equity curve reads them all).
const PAGE_TRADES: i64 = 200;
/// Beyond this many fills the equity curve is drawn back from the current balances.
const CURVE_FILLS: i64 = 5_000;
/// How far back the strategy page's price chart reaches.
const CHART_WINDOW_MS: i64 = 2 * 3_600_000;
/// What a filled trade did to the books, as the ledger applies it: a buy spends its quote
/// amount for its base amount, a sell the reverse.
struct Filled {
    price: Decimal,
    quote_change: Decimal,
    base_change: Decimal,
    gas_quote: Decimal,
}

/// A filled trade's changes, or `None` for a swap in flight or failed.
fn filled(t: &TradeRecord) -> Option<Filled> {
    if t.status != "filled" {
        return None;
    }
    let d = |s: &str| s.parse::<Decimal>().ok();
    let (base, quote) = (d(&t.base_amount)?, d(&t.quote_amount)?);
    let buy = t.side == "buy";
    Some(Filled {
        price: d(&t.price)?,
        quote_change: if buy { -quote } else { quote },
        base_change: if buy { base } else { -base },
        gas_quote: t.gas_quote.as_deref().and_then(d).unwrap_or_default(),
    })
}

/// Equity after each fill (quote + inventory at the fill's price), gross and net of the gas
/// paid so far. `fills` oldest first; `start` the quote and inventory before the first of them.
fn equity_curve(
    fills: &[TradeRecord],
    start: (Decimal, Decimal),
    gas_before: Decimal,
) -> Vec<Value> {
    let (mut quote, mut base, mut gas) = (start.0, start.1, gas_before);
    let mut curve = Vec::with_capacity(fills.len() + 1);
    for t in fills {
        let Some(f) = filled(t) else {
            continue;
        };
        quote += f.quote_change;
        base += f.base_change;
        gas += f.gas_quote;
        let equity = quote + base * f.price;
        curve.push(json!({
            "at": t.executed_at,
            "equity": equity.round_dp(8).normalize(),
            "equity_net_of_gas": (equity - gas).round_dp(8).normalize(),
        }));
    }
    curve
}

/// The strategy page: the strategy, its grid's levels and cells, the market's recent prices,
/// its orders resting and in flight, recent trades (fee, gas, price impact), the equity curve
/// and its risk events.
pub async fn strategy_page(
    State(st): State<ApiState>,
    id: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(id) = id?;
    let id = parse_id(&id, "strategy id")?;
    let s = st.store.get_strategy(&StrategyRef::Id(id)).await?;
    let doc = strategy_document(&s, Some(&st.live_status()));
    let levels = grid_levels(&s.params);
    let state: Value = s
        .state
        .as_deref()
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(Value::Null);
    let cells: Vec<Value> = state["strategy"]["cells"]
        .as_array()
        .map(|cells| {
            cells
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    json!({
                        "index": i,
                        "lower": levels.get(i),
                        "upper": levels.get(i + 1),
                        "state": c["state"],
                        "base": c.get("base"),
                        "cost": c.get("cost"),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let (resting, in_flight) = st.store.resting_and_in_flight(id).await?;
    let trades = st.store.trading_log(Some(id), PAGE_TRADES).await?;
    let fill_count = st.store.trade_count(id).await?;
    let perf = &doc["performance"];
    let dec = |v: &Value| v.as_str().and_then(|s| s.parse::<Decimal>().ok());
    let equity = if fill_count <= CURVE_FILLS {
        let all = st.store.fills_after(Some(id), 0, CURVE_FILLS + 1).await?;
        let initial = dec(&perf["initial_quote"]).unwrap_or_default();
        equity_curve(&all, (initial, Decimal::ZERO), Decimal::ZERO)
    } else {
        // Too many to replay: walk back from the balances on record over the newest ones (the
        // filled among the newest rows: contiguous, so the walk is exact).
        let mut recent = st.store.trading_log(Some(id), CURVE_FILLS).await?;
        let (mut quote, mut base) = (
            dec(&perf["quote"]).unwrap_or_default(),
            dec(&perf["inventory"]).unwrap_or_default(),
        );
        let mut gas = dec(&perf["gas"]).unwrap_or_default();
        for f in recent.iter().filter_map(filled) {
            quote -= f.quote_change;
            base -= f.base_change;
            gas -= f.gas_quote;
        }
        recent.reverse();
        equity_curve(&recent, (quote, base), gas)
    };
    let now = wall_clock_ms();
    // The market's prices it trades on (its pool's when live), as far back as the tape goes.
    let stream = price_stream(&st, &s);
    let prices: Vec<Value> = st
        .hub
        .tape(&stream, now - CHART_WINDOW_MS)
        .into_iter()
        .map(|(at, p)| json!([at, p]))
        .collect();
    let risk_events = st.store.risk_events(Some(id), None, 50).await?;
    Ok(Json(json!({
        "strategy": doc,
        "levels": levels,
        "cells": cells,
        "prices": prices,
        "price_stream": stream,
        "orders_resting": resting,
        "orders_in_flight": in_flight,
        "fills": fill_count,
        "trades": trades,
        "equity": equity,
        "risk_events": risk_events,
        "explorer_tx_url": st.config.api.explorer_tx_url,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(side: &str, price: &str, base: &str, quote: &str, gas: Option<&str>) -> TradeRecord {
        TradeRecord {
            id: Some(1),
            strategy_id: 1,
            strategy_name: "g".into(),
            symbol: "BTC/USDT".into(),
            order_id: Some(1),
            side: side.into(),
            price: price.into(),
            base_amount: base.into(),
            quote_amount: quote.into(),
            fee_quote: "0".into(),
            realized_pnl: None,
            tx_hash: None,
            gas_fee: None,
            gas_quote: gas.map(str::to_string),
            gas_bnb_price: None,
            pool_price_before: None,
            price_impact_bps: None,
            pool_kind: None,
            pool_address: None,
            ticks_crossed: None,
            status: "filled".into(),
            executed_at: 5,
            reason: None,
        }
    }

    #[test]
    fn equity_curve_marks_each_fill_at_its_price_gross_and_net_of_gas() {
        let fills = [
            fill("buy", "100", "1", "100", Some("0.5")),
            fill("sell", "110", "1", "110", Some("0.5")),
        ];
        let c = equity_curve(&fills, (Decimal::from(1000), Decimal::ZERO), Decimal::ZERO);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0]["equity"], json!("1000"));
        assert_eq!(c[0]["equity_net_of_gas"], json!("999.5"));
        assert_eq!(c[1]["equity"], json!("1010"));
        assert_eq!(c[1]["equity_net_of_gas"], json!("1009"));
    }
}
