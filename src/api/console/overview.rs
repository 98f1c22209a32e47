//! The Overview page's one call, `/api/v1/overview`, and what the push stream sends of it.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::Json;
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::super::{health_report, ApiError, ApiState};
use crate::clock::{utc_day_start_ms, wall_clock_ms};
use crate::store::{OrderStatus, StoreError};
use crate::views::strategy_document;

/// The stream name (`btcusdt`) of a `BASE/QUOTE` symbol: how the feed and the tape name it.
pub(super) fn stream_of(symbol: &str) -> String {
    symbol
        .parse::<crate::model::Symbol>()
        .map(|s| s.binance_stream_name())
        .unwrap_or_else(|_| symbol.replace('/', "").to_ascii_lowercase())
}

/// A live market's pool price as the tape and the push stream name it.
pub(super) fn pool_stream(symbol: &str) -> String {
    format!("pool:{symbol}")
}

/// The prices a strategy trades on: its pool's when live (or when paper follows the pool,
/// `market.paper_price_source = "pool"`), else Binance's.
pub(super) fn price_stream(st: &ApiState, s: &crate::store::StrategyRecord) -> String {
    let on_pool = s.mode == crate::strategy::StrategyMode::Live
        || st.config.market.paper_price_source == "pool";
    if on_pool {
        pool_stream(&s.symbol)
    } else {
        stream_of(&s.symbol)
    }
}

/// A grid's levels from its stored parameters (none for another kind, or parameters this
/// build cannot read).
pub(super) fn grid_levels(params: &Value) -> Vec<Decimal> {
    serde_json::from_value::<crate::strategy::grid::GridParams>(params.clone())
        .ok()
        .filter(|p| p.grid_count >= 2 && p.lower_price < p.upper_price)
        .map(|p| crate::strategy::grid::grid_levels(&p))
        .unwrap_or_default()
}

/// Health, feeds, kill switch, trading mode, every strategy with what it does now, and the
/// canary rollouts: the Overview page, and what the push stream sends each second it changes.
pub async fn overview_document(st: &ApiState) -> Result<Value, StoreError> {
    let now = wall_clock_ms();
    let (health, services, reasons) = health_report(st).await;
    let kill = st.store.kill_switch().await?;
    let mode = st.store.trading_mode().await?;
    let list = st.store.list_strategies(None).await?;
    let live = st.live_status();
    let applied: BTreeMap<i64, _> = st.engine.applied().into_iter().collect();
    let mut resting: BTreeMap<i64, usize> = BTreeMap::new();
    let mut in_flight: BTreeMap<i64, usize> = BTreeMap::new();
    for o in st.store.open_orders(None).await? {
        let counts = if o.status == OrderStatus::Pending {
            &mut resting
        } else {
            &mut in_flight
        };
        *counts.entry(o.strategy_id).or_default() += 1;
    }
    let midnight = utc_day_start_ms(now);
    let today = st.store.fill_counts_since(midnight).await?;
    // Binance's and the pools' prices as the hub last read them (it does, every 200 ms).
    let prices = st.hub.prices();
    let mut strategies = Vec::with_capacity(list.len());
    for s in &list {
        let mut doc = strategy_document(s, Some(&live));
        let levels = grid_levels(&s.params);
        // The price it trades on now (Binance's, or its pool's), else its last as saved.
        let stream = price_stream(st, s);
        let state_price = doc["performance"]["last_price"]
            .as_str()
            .and_then(|p| p.parse::<Decimal>().ok());
        let price = prices.get(&stream).copied().or(state_price);
        let (lower, upper) = (levels.first().copied(), levels.last().copied());
        let position = match (price, lower, upper) {
            (Some(p), Some(l), _) if p < l => Some("below"),
            (Some(p), _, Some(u)) if p > u => Some("above"),
            (Some(_), Some(_), Some(_)) => Some("inside"),
            _ => None,
        };
        if let Some(o) = doc.as_object_mut() {
            o.insert(
                "range".into(),
                json!({"lower": lower, "upper": upper, "levels": levels.len()}),
            );
            o.insert("price".into(), json!(price));
            o.insert("price_stream".into(), json!(stream));
            o.insert("price_vs_range".into(), json!(position));
            o.insert(
                "fills_today".into(),
                json!(today.get(&s.id).copied().unwrap_or(0)),
            );
            o.insert(
                "orders_resting".into(),
                json!(resting.get(&s.id).copied().unwrap_or(0)),
            );
            o.insert(
                "orders_in_flight".into(),
                json!(in_flight.get(&s.id).copied().unwrap_or(0)),
            );
            o.insert("engine".into(), json!(applied.get(&s.id)));
        }
        strategies.push(doc);
    }
    let mut rollouts = Vec::new();
    for r in st.store.list_rollouts().await? {
        rollouts.push(crate::views::canary::rollout_document(&st.store, &r).await?);
    }
    // Live markets' pools: their price, the reference's and the divergence, as this daemon
    // last read them.
    let pools = st.metrics.markets_now();
    Ok(json!({
        "daemon": {
            "pid": std::process::id(),
            "version": env!("CARGO_PKG_VERSION"),
            "started_at": st.started_at_ms,
            "uptime_secs": (now - st.started_at_ms) / 1000,
        },
        "health": health,
        "services": services,
        "reasons": reasons,
        "feed": super::super::feed_document(st, now),
        "pools": pools,
        "kill_switch": kill,
        "trading_mode": mode,
        "strategies": strategies,
        "rollouts": rollouts,
        "explorer_tx_url": st.config.api.explorer_tx_url,
    }))
}

pub async fn overview(State(st): State<ApiState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(overview_document(&st).await?))
}
