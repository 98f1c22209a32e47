//! One API call per console page: the JSON each page draws, the same for `curl` with the token.

use std::collections::BTreeMap;
use std::path::{Path as FsPath, PathBuf};

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{json, Value};

use super::super::{health_report, ApiError, ApiState};
use crate::clock::wall_clock_ms;
use crate::store::paper::TradeRecord;
use crate::store::{OrderStatus, StoreError, StrategyRef};
use crate::views::strategy_document;

/// The newest trades a strategy page lists (the equity curve reads them all).
const PAGE_TRADES: i64 = 200;
/// Beyond this many fills the equity curve is drawn back from the current balances.
const CURVE_FILLS: i64 = 5_000;
/// How far back the strategy page's price chart reaches.
const CHART_WINDOW_MS: i64 = 2 * 3_600_000;
/// A stored chart or heat map larger than this is not served (they are tens of KB).
const MAX_SVG_BYTES: u64 = 8 * 1024 * 1024;
/// A sweep's rows.json read for its best rows (larger ones are listed without them).
const MAX_ROWS_BYTES: u64 = 1024 * 1024;

fn parse_id(text: &str, what: &str) -> Result<i64, ApiError> {
    text.parse()
        .map_err(|_| ApiError::BadRequest(format!("{what} {text:?}: expected an integer")))
}

/// The stream name (`btcusdt`) of a `BASE/QUOTE` symbol: how the feed and the tape name it.
fn stream_of(symbol: &str) -> String {
    symbol
        .parse::<crate::model::Symbol>()
        .map(|s| s.binance_stream_name())
        .unwrap_or_else(|_| symbol.replace('/', "").to_ascii_lowercase())
}

/// A grid's levels from its stored parameters (none for another kind, or parameters this
/// build cannot read).
fn grid_levels(params: &Value) -> Vec<Decimal> {
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
    let midnight = now - now.rem_euclid(86_400_000);
    let today = st.store.fill_counts_since(midnight).await?;
    let prices: BTreeMap<String, Decimal> = st
        .feed
        .last_prices()
        .into_iter()
        .map(|(s, p, _)| (s, p))
        .collect();
    let mut strategies = Vec::with_capacity(list.len());
    for s in &list {
        let mut doc = strategy_document(s, Some(&live));
        let levels = grid_levels(&s.params);
        // A paper grid trades on the feed's price; a live one on its pool's (its last, as the
        // engine saved it).
        let feed_price = prices.get(&stream_of(&s.symbol)).copied();
        let state_price = doc["performance"]["last_price"]
            .as_str()
            .and_then(|p| p.parse::<Decimal>().ok());
        let price = match s.mode {
            crate::strategy::StrategyMode::Paper => feed_price.or(state_price),
            crate::strategy::StrategyMode::Live => state_price.or(feed_price),
        };
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
    // Live markets' pools: their price, the reference's and the divergence, as this daemon's
    // heartbeat last wrote them.
    let pools = st
        .store
        .daemon_info()
        .await?
        .map(|d| d.markets)
        .unwrap_or_default();
    let stale_ms = (st.config.market.stale_after_secs * 1000) as i64;
    let url = st.feed.url();
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
        "feed": {
            "connected": st.feed.connected.load(std::sync::atomic::Ordering::Relaxed),
            "url": url,
            "symbols": st.feed.symbol_status(now, stale_ms),
        },
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

/// A filled trade's amounts, or `None` for a swap in flight or failed.
fn filled(t: &TradeRecord) -> Option<(bool, Decimal, Decimal, Decimal, Decimal)> {
    if t.status != "filled" {
        return None;
    }
    let d = |s: &str| s.parse::<Decimal>().ok();
    let gas = t.gas_quote.as_deref().and_then(d).unwrap_or_default();
    Some((
        t.side == "buy",
        d(&t.price)?,
        d(&t.base_amount)?,
        d(&t.quote_amount)?,
        gas,
    ))
}

/// Equity after each fill (quote + inventory at the fill's price), gross and net of the gas
/// paid so far: the ledger's own arithmetic (a buy spends its quote amount, a sell receives
/// it). `fills` oldest first; `start` the quote and inventory before the first of them.
fn equity_curve(
    fills: &[TradeRecord],
    start: (Decimal, Decimal),
    gas_before: Decimal,
) -> Vec<Value> {
    let (mut quote, mut base, mut gas) = (start.0, start.1, gas_before);
    let mut curve = Vec::with_capacity(fills.len() + 1);
    for t in fills {
        let Some((buy, price, b, q, g)) = filled(t) else {
            continue;
        };
        if buy {
            quote -= q;
            base += b;
        } else {
            quote += q;
            base -= b;
        }
        gas += g;
        let equity = quote + base * price;
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
        for t in &recent {
            if let Some((buy, _, b, q, g)) = filled(t) {
                if buy {
                    quote += q;
                    base -= b;
                } else {
                    quote -= q;
                    base += b;
                }
                gas -= g;
            }
        }
        recent.reverse();
        equity_curve(&recent, (quote, base), gas)
    };
    let now = wall_clock_ms();
    let prices: Vec<Value> = st
        .hub
        .tape(&stream_of(&s.symbol), now - CHART_WINDOW_MS)
        .into_iter()
        .map(|(at, p)| json!([at, p]))
        .collect();
    let risk_events = st.store.risk_events(Some(id), None, 50).await?;
    Ok(Json(json!({
        "strategy": doc,
        "levels": levels,
        "cells": cells,
        "prices": prices,
        "orders_resting": resting,
        "orders_in_flight": in_flight,
        "fills": fill_count,
        "trades": trades,
        "equity": equity,
        "risk_events": risk_events,
        "explorer_tx_url": st.config.api.explorer_tx_url,
    })))
}

#[derive(Deserialize)]
pub struct HistoryLimit {
    limit: Option<String>,
}

fn limit_of(q: &HistoryLimit, default: i64, max: i64) -> Result<i64, ApiError> {
    match q.limit.as_deref() {
        None => Ok(default),
        Some(t) => t
            .parse::<i64>()
            .ok()
            .filter(|l| (1..=max).contains(l))
            .ok_or_else(|| {
                ApiError::BadRequest(format!("limit {t:?}: expected an integer in 1..={max}"))
            }),
    }
}

/// Treasury and wallets (native BNB and tokens), gas runway, drips and sweeps, and the hour's
/// outflow against the limits: `funds status --json`, with the recent drips and sweeps.
pub async fn funds(
    State(st): State<ApiState>,
    q: Result<Query<HistoryLimit>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = q?;
    let history = limit_of(&q, 20, 500)?;
    let manager = st
        .store
        .daemon_info()
        .await?
        .and_then(|d| d.funds_status)
        .unwrap_or_else(|| "unknown".into());
    let client = st.chain_client().await.map_err(|e| match e {
        ApiError::Unavailable(m) => m,
        _ => "rpc: not connected".to_string(),
    });
    let mut doc = crate::views::funds::funds_status(
        &st.config,
        &st.store,
        client.as_ref().map_err(Clone::clone),
        manager,
        history,
        wall_clock_ms(),
    )
    .await?;
    if let Some(o) = doc.as_object_mut() {
        o.insert(
            "explorer_tx_url".into(),
            json!(st.config.api.explorer_tx_url),
        );
    }
    Ok(Json(doc))
}

/// Sweep folders (`<base>/data/sweeps/<name>/`), newest first, with their best rows.
fn sweeps_root(st: &ApiState) -> PathBuf {
    std::path::absolute(&st.config.base_dir)
        .unwrap_or_else(|_| st.config.base_dir.clone())
        .join("data")
        .join("sweeps")
}

/// A sweep's folder name as the API takes it: the digits and letters `backtest sweep` names
/// them with, never a path.
fn sweep_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn list_sweeps(root: &FsPath) -> Vec<Value> {
    let Ok(dir) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut names: Vec<String> = dir
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| sweep_name_ok(n))
        .collect();
    names.sort_by(|a, b| b.cmp(a));
    names.truncate(20);
    names
        .into_iter()
        .map(|name| {
            let dir = root.join(&name);
            let rows: Value =
                crate::private_files::read_own(&dir.join("rows.json"), MAX_ROWS_BYTES)
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok())
                    .unwrap_or(Value::Null);
            let top: Vec<Value> = rows
                .get("rows")
                .or(Some(&rows))
                .and_then(Value::as_array)
                .map(|r| r.iter().take(10).cloned().collect())
                .unwrap_or_default();
            json!({
                "name": name,
                "heatmap": dir.join("heatmap.svg").is_file(),
                "top_rows": top,
            })
        })
        .collect()
}

/// The stored backtests with their figures, and the sweeps with their heat maps.
pub async fn backtests(
    State(st): State<ApiState>,
    q: Result<Query<HistoryLimit>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = q?;
    let limit = limit_of(&q, 50, 1000)?;
    let runs = st.store.list_backtests(limit).await?;
    let root = sweeps_root(&st);
    // File reads off the runtime's workers (the engine's neighbours).
    let sweeps = tokio::task::spawn_blocking(move || list_sweeps(&root))
        .await
        .unwrap_or_default();
    Ok(Json(json!({"backtests": runs, "sweeps": sweeps})))
}

pub async fn backtest(
    State(st): State<ApiState>,
    id: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(id) = id?;
    let run = st.store.get_backtest(parse_id(&id, "backtest id")?).await?;
    Ok(Json(json!(run)))
}

/// A file the bot wrote under `root`, read only when it resolves there and no link is on the
/// way (a folder made a link to elsewhere included).
fn read_beneath(root: &FsPath, path: &FsPath) -> Result<Vec<u8>, String> {
    let outside = || {
        format!(
            "{} is not a file of the bot's under {}",
            path.display(),
            root.display()
        )
    };
    // Links above `root` (a home folder on another disk) are the operator's; beneath it none.
    let rel = path.strip_prefix(root).map_err(|_| outside())?;
    if rel
        .components()
        .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return Err(outside());
    }
    let croot = std::fs::canonicalize(root).map_err(|e| e.to_string())?;
    let real = std::fs::canonicalize(path).map_err(|e| e.to_string())?;
    if real != croot.join(rel) {
        return Err(outside());
    }
    crate::private_files::read_own(&real, MAX_SVG_BYTES).map_err(|e| e.to_string())
}

fn svg(bytes: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            // Opened on its own, the drawing may run nothing and load nothing.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; sandbox",
            ),
        ],
        bytes,
    )
        .into_response()
}

/// A stored backtest's chart (SVG), read from the backtests' own folder only.
pub async fn backtest_chart(
    State(st): State<ApiState>,
    id: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = id?;
    let run = st.store.get_backtest(parse_id(&id, "backtest id")?).await?;
    let Some(path) = run.chart.as_deref().map(PathBuf::from) else {
        return Err(ApiError::NotFound(format!(
            "backtest {} has no chart",
            run.id
        )));
    };
    let root = crate::backtest::record::outputs_root(&st.config.base_dir);
    let id = run.id;
    let bytes = tokio::task::spawn_blocking(move || read_beneath(&root, &path))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::NotFound(format!("backtest {id}'s chart: {e}")))?;
    Ok(svg(bytes))
}

/// A sweep's heat map (SVG).
pub async fn sweep_heatmap(
    State(st): State<ApiState>,
    name: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<Response, ApiError> {
    let Path(name) = name?;
    if !sweep_name_ok(&name) {
        return Err(ApiError::BadRequest(format!(
            "sweep {name:?}: not a sweep's name"
        )));
    }
    let root = sweeps_root(&st);
    let path = root.join(&name).join("heatmap.svg");
    let bytes = tokio::task::spawn_blocking(move || read_beneath(&root, &path))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|_| ApiError::NotFound(format!("sweep {name} has no heat map")))?;
    Ok(svg(bytes))
}

/// The audit log, newest first: who did what, from the CLI or the console.
pub async fn audit(
    State(st): State<ApiState>,
    q: Result<Query<HistoryLimit>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = q?;
    let limit = limit_of(&q, 50, 1000)?;
    Ok(Json(json!({"audit": st.store.audit_log(limit).await?})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_beneath_the_root_is_never_followed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("backtests");
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir_all(root.join("1")).expect("dir");
        std::fs::create_dir_all(&elsewhere).expect("dir");
        std::fs::write(root.join("1/chart.svg"), "<svg/>").expect("write");
        std::fs::write(elsewhere.join("chart.svg"), "secret").expect("write");
        assert_eq!(
            read_beneath(&root, &root.join("1/chart.svg"))
                .ok()
                .as_deref(),
            Some(&b"<svg/>"[..])
        );
        std::os::unix::fs::symlink(&elsewhere, root.join("2")).expect("link");
        assert!(
            read_beneath(&root, &root.join("2/chart.svg")).is_err(),
            "a linked folder"
        );
        std::os::unix::fs::symlink(elsewhere.join("chart.svg"), root.join("1/link.svg"))
            .expect("link");
        assert!(
            read_beneath(&root, &root.join("1/link.svg")).is_err(),
            "a linked file"
        );
        assert!(read_beneath(&root, &root.join("1/../../elsewhere/chart.svg")).is_err());
        assert!(read_beneath(&root, &elsewhere.join("chart.svg")).is_err());
    }

    #[test]
    fn sweep_names_are_never_paths() {
        assert!(sweep_name_ok("1765000000000"));
        for bad in ["", "..", ".hidden", "a/b", "a\\b", "x y", &"9".repeat(65)] {
            assert!(!sweep_name_ok(bad), "{bad:?}");
        }
    }

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
