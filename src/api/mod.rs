//! The HTTP API (floor 8, may use floors 0–7) the daemon serves.
//!
//! The daemon's HTTP API (axum): health for load balancers, Prometheus metrics, trading history,
//! strategies, status, canary rollouts, and the control endpoints the CLI uses (poke, stop).
//!
//! Every route but `/api/health` needs `Authorization: Bearer TOKEN`; every client address has a
//! token-bucket rate limit; bad input is a 400 with a JSON error, internals are logged, not returned.

pub mod canary;
pub mod console;
pub mod serve;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use dashmap::DashMap;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::{watch, Notify};

use crate::clock::wall_clock_ms;
use crate::config::Config;
use crate::market::feed::FeedState;
use crate::metrics::Metrics;
use crate::store::{Store, StoreError, StrategyRef};
use crate::strategy::{StrategyMode, StrategyStatus};

#[derive(Clone)]
pub struct ApiState {
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub feed: Arc<FeedState>,
    pub config: Arc<Config>,
    pub token: Arc<String>,
    pub started_at_ms: i64,
    pub poke: Arc<Notify>,
    pub shutdown: watch::Sender<bool>,
    pub limiter: Arc<RateLimiter>,
    /// The daemon only watches markets (--monitoring-only, --market-only): the feed is its job.
    /// Otherwise the feed is needed only while a paper strategy trades on its prices.
    pub feed_expected: Arc<std::sync::atomic::AtomicBool>,
    pub engine: Arc<dyn EngineView>,
    /// The node connection `/api/v1/gas-price` asks, made at its first call and kept.
    pub chain: Arc<tokio::sync::Mutex<Option<crate::chain::ChainClient>>>,
    /// What the console's push streams carry (one reader for all of them).
    pub hub: Arc<console::Hub>,
}

impl ApiState {
    /// The node connection, made at the first call that needs one and kept.
    pub async fn chain_client(&self) -> Result<crate::chain::ChainClient, ApiError> {
        let mut cached = self.chain.lock().await;
        if let Some(c) = cached.as_ref() {
            return Ok(c.clone());
        }
        let c = crate::chain::ChainClient::connect(&self.config.chain)
            .await
            .map_err(|e| ApiError::Unavailable(format!("rpc: {e}")))?;
        *cached = Some(c.clone());
        Ok(c)
    }

    /// What this daemon does with each live strategy (`running` or why not).
    pub fn live_status(&self) -> crate::views::LiveStatus {
        self.engine.live_status()
    }
}

/// What the daemon's engine loop applies, as the API reads it. The daemon implements it over its
/// registry; the trait lives here so the API needs nothing of the daemon that serves it.
pub trait EngineView: Send + Sync {
    /// Each live strategy: `running`, or why this daemon does not run it.
    fn live_status(&self) -> crate::views::LiveStatus;
    /// Each strategy the engine runs, with the status it applies.
    fn applied(&self) -> Vec<(i64, StrategyStatus)>;
    /// Whether the core behind the engine is up yet.
    fn core(&self) -> crate::views::CoreState;
}

/// One JSON error type for every route.
pub enum ApiError {
    BadRequest(String),
    Unauthorized,
    NotFound(String),
    /// The request is understood but the state refuses it (resume under the kill switch).
    Conflict(String),
    MethodNotAllowed,
    TooManyRequests,
    /// A dependency (the node) cannot answer now.
    Unavailable(String),
    Internal(String),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ApiError::NotFound(format!("{what} not found")),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

/// A query string or path parameter the route cannot read: a 400 in the JSON envelope, as
/// every other error (axum's own rejections are plain text).
impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(e: axum::extract::rejection::QueryRejection) -> Self {
        ApiError::BadRequest(e.body_text())
    }
}

impl From<axum::extract::rejection::PathRejection> for ApiError {
    fn from(e: axum::extract::rejection::PathRejection) -> Self {
        ApiError::BadRequest(e.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "missing or wrong bearer token".into(),
            ),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, m),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, m),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed on this route".into(),
            ),
            ApiError::TooManyRequests => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate limit exceeded; slow down".into(),
            ),
            ApiError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, m),
            ApiError::Internal(m) => {
                tracing::error!(error = %m, "api internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error (see the daemon log)".into(),
                )
            }
        };
        let mut resp = (
            status,
            Json(json!({"error": {"status": status.as_u16(), "message": message}})),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        resp
    }
}

/// Token bucket per client address.
pub struct RateLimiter {
    per_sec: f64,
    burst: f64,
    buckets: DashMap<IpAddr, (f64, Instant)>,
}

impl RateLimiter {
    pub fn new(per_sec: u32, burst: u32) -> Self {
        RateLimiter {
            per_sec: f64::from(per_sec.max(1)),
            burst: f64::from(burst.max(1)),
            buckets: DashMap::new(),
        }
    }

    pub fn allow(&self, ip: IpAddr) -> bool {
        let now = Instant::now();
        let mut entry = self.buckets.entry(ip).or_insert((self.burst, now));
        let (tokens, last) = *entry;
        let refilled =
            (tokens + now.duration_since(last).as_secs_f64() * self.per_sec).min(self.burst);
        if refilled >= 1.0 {
            *entry = (refilled - 1.0, now);
            true
        } else {
            *entry = (refilled, now);
            false
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn rate_limit(
    State(st): State<ApiState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    if !st.limiter.allow(addr.ip()) {
        return ApiError::TooManyRequests.into_response();
    }
    next.run(req).await
}

async fn require_token(State(st): State<ApiState>, req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        Some(t) if constant_time_eq(t.as_bytes(), st.token.as_bytes()) => next.run(req).await,
        _ => ApiError::Unauthorized.into_response(),
    }
}

pub fn router(state: ApiState) -> Router {
    let protected = Router::new()
        .route("/metrics", get(metrics_text))
        .route("/api/metrics", get(metrics_text))
        .route("/api/v1/status", get(status))
        .route("/api/v1/trading/history", get(history))
        .route("/api/v1/strategies", get(strategies))
        .route("/api/v1/strategies/{id}", get(strategy))
        .route("/api/v1/control/poke", post(poke))
        .route("/api/v1/control/stop", post(stop))
        .route("/api/v1/gas-price", get(gas_price))
        .route("/api/v1/canary", get(canary::list))
        .route("/api/v1/canary/{name}", get(canary::one))
        .route("/api/v1/canary/{name}/{action}", post(canary::act))
        .merge(console::api_routes())
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    // Health is outside the rate limit: monitors and load balancers poll it and must never read a
    // 429 as "down".
    let public = if state.config.api.console {
        console::asset_routes()
    } else {
        Router::new()
    };
    let limited = protected
        .merge(public)
        .layer(middleware::from_fn_with_state(state.clone(), rate_limit));
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        rt.spawn(state.hub.clone().run(state.clone()));
    }
    Router::new()
        .route("/api/health", get(health))
        .merge(limited)
        // JSON errors everywhere: an unknown route or method is answered as any other error.
        .fallback(|uri: axum::http::Uri| async move {
            ApiError::NotFound(format!("no route {}", uri.path()))
        })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(middleware::from_fn(console::security_headers))
        .with_state(state)
}

/// The node's gas price, the price the bot would pay for a transaction now (the node's ×
/// `chain.gas_price_multiplier`, between the floor and the cap) and the cap, in wei and gwei.
async fn gas_price(State(st): State<ApiState>) -> Result<Json<serde_json::Value>, ApiError> {
    use alloy::providers::Provider;
    let chain = &st.config.chain;
    let client = st.chain_client().await?;
    let node = client
        .provider()
        .get_gas_price()
        .await
        .map_err(|e| ApiError::Unavailable(format!("rpc: eth_gasPrice: {e}")))?;
    let pays = crate::chain::gas::gas_price_wei(node, chain)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let cap = crate::chain::gas::gas_price_cap_wei(chain)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let gwei = |wei: u128| {
        rust_decimal::Decimal::from_i128_with_scale(i128::try_from(wei).unwrap_or(i128::MAX), 9)
            .normalize()
            .to_string()
    };
    Ok(Json(json!({
        "node_wei": node.to_string(), "node_gwei": gwei(node),
        "bot_wei": pays.to_string(), "bot_gwei": gwei(pays),
        "cap_wei": cap.to_string(), "cap_gwei": gwei(cap),
        "multiplier": chain.gas_price_multiplier,
        "floor_gwei": chain.gas_price_floor_gwei,
        "rpc": client.current_host(),
    })))
}

/// `ok`, `degraded` or `down`, with the reasons.
pub async fn health_report(st: &ApiState) -> (String, serde_json::Value, Vec<String>) {
    let mut reasons = Vec::new();
    let db_ok = st.store.kill_switch().await.is_ok();
    if !db_ok {
        reasons.push("database unreachable".to_string());
    }
    let now = wall_clock_ms();
    let stale_ms = (st.config.market.stale_after_secs * 1000) as i64;
    let symbols = st.feed.symbol_status(now, stale_ms);
    let connected = st.feed.connected.load(Ordering::Relaxed);
    // A cluster member answers for the strategies of the units it holds; the cluster's own
    // question (does every unit have an owner?) is asked below.
    let fence = st.store.fence().cloned();
    let strategies = st.store.list_strategies(None).await.ok().map(|all| {
        all.into_iter()
            .filter(|s| {
                fence
                    .as_ref()
                    .is_none_or(|f| f.unit_of_strategy(s.id).is_some_and(|unit| f.holds(&unit)))
            })
            .collect::<Vec<_>>()
    });
    // Paper strategies on Binance's prices need the feed; live ones trade on their pool (the
    // feed is only their optional reference), and nobody needs it once every strategy stopped.
    let paper_on_binance = st.config.market.paper_price_source != "pool";
    let feed_needed = st.feed_expected.load(Ordering::Relaxed)
        || strategies.iter().flatten().any(|s| {
            s.status != StrategyStatus::Stopped && s.mode == StrategyMode::Paper && paper_on_binance
        });
    let why = st
        .feed
        .last_error
        .lock()
        .map(|e| e.clone())
        .unwrap_or_default();
    let why = if why.is_empty() {
        "no connection yet".to_string()
    } else {
        why
    };
    let feed = if symbols.is_empty() {
        "idle".to_string()
    } else if !feed_needed {
        if connected {
            "not needed (reference only)".to_string()
        } else {
            format!("not needed (reference only), disconnected: {why}")
        }
    } else if !connected {
        reasons.push(format!("market feed disconnected: {why}"));
        format!("disconnected: {why}")
    } else if symbols.iter().any(|s| s.stale) {
        for s in symbols.iter().filter(|s| s.stale) {
            reasons.push(match (s.lagging, s.last_tick_age_ms) {
                (true, _) => format!(
                    "{} lagging: trades arrive {:.1} s behind their exchange time (host clock \
                     off, or a slow link; limit market.stale_after_secs = {} s): {} dropped, \
                     none traded on",
                    s.stream,
                    s.clock_offset_ms.unwrap_or(0) as f64 / 1000.0,
                    stale_ms / 1000,
                    s.stale_dropped
                ),
                (false, Some(a)) => format!(
                    "{} stale: last trade {:.1} s ago",
                    s.stream,
                    a as f64 / 1000.0
                ),
                (false, None) => format!("{} stale: no trade yet", s.stream),
            });
        }
        if symbols.iter().any(|s| s.lagging) {
            "lagging".to_string()
        } else {
            "stale".to_string()
        }
    } else {
        "ok".to_string()
    };
    // A trading wallet under its gas minimum is a risk whether or not a funds manager runs.
    if let Ok(wallets) = st.metrics.wallet_bnb.lock() {
        let min = st.config.funds.gas_min_bnb;
        for ((name, address), bnb) in wallets.iter().filter(|(_, b)| **b < min) {
            reasons.push(format!(
                "wallet {name} ({address}) low on gas: {} BNB, below funds.gas_min_bnb {min}",
                bnb.normalize()
            ));
        }
    }
    // Live strategies that nothing runs are not "ok", whatever the feed says.
    if let Some(strategies) = &strategies {
        let live = st.live_status();
        for s in strategies {
            if let Some(why) = s.not_running_reason(Some(&live)) {
                reasons.push(format!("live strategy {} ({}) {why}", s.id, s.name));
            }
        }
    }
    if fence.is_some() {
        match crate::views::cluster::cluster_view(&st.store).await {
            Ok(view) if !view.unowned.is_empty() => {
                let units: Vec<&str> = view.unowned.iter().map(|u| u.unit.as_str()).collect();
                reasons.push(format!(
                    "{} units have no owner (nothing trades them until a daemon takes them): {}",
                    units.len(),
                    units.join(", ")
                ));
            }
            Ok(_) => {}
            Err(e) => reasons.push(format!("cluster state unreadable: {e}")),
        }
    }
    // Until the core is up nothing trades, whatever the feed and the strategies say.
    let core = st.engine.core();
    if let Some(secs) = core.starting_secs(now) {
        reasons.push(format!(
            "engine starting ({secs:.1} s so far): strategies are restored and the orders the \
             last run left in flight settled before anything trades"
        ));
    }
    let status = if !db_ok {
        "down"
    } else if reasons.is_empty() {
        "ok"
    } else {
        "degraded"
    };
    // The node: in use by a running live strategy, down when a live strategy cannot run for it.
    let live = st.live_status();
    let rpc = if live.values().any(|v| v == "running") {
        "in use".to_string()
    } else if let Some(why) = live.values().find(|v| v.starts_with("chain: ")) {
        format!("down: {why}")
    } else if !live.is_empty() {
        "not used: no live strategy running".to_string()
    } else {
        "not used".to_string()
    };
    let funds = st
        .store
        .daemon_info()
        .await
        .ok()
        .flatten()
        .and_then(|d| d.funds_status)
        .unwrap_or_else(|| "unknown".into());
    let services = json!({
        "database": if db_ok { "ok" } else { "down" },
        "market_feed": feed,
        "rpc": rpc,
        "funds": funds,
        "engine": core.shown(now),
    });
    (status.to_string(), services, reasons)
}

async fn health(State(st): State<ApiState>) -> Response {
    let (status, services, reasons) = health_report(&st).await;
    let code = if status == "down" {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (
        code,
        Json(json!({
            "status": status,
            "timestamp": wall_clock_ms(),
            "services": services,
            "websocket_connections": u8::from(st.feed.connected.load(Ordering::Relaxed)),
            "reasons": reasons,
        })),
    )
        .into_response()
}

async fn metrics_text(State(st): State<ApiState>) -> Response {
    let mut body = st.metrics.render(
        &st.feed,
        (st.config.market.stale_after_secs * 1000) as i64,
        wall_clock_ms(),
    );
    let pool = st.store.pool();
    st.metrics.render_infrastructure(
        &mut body,
        (
            pool.size(),
            u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
            st.config.database.max_connections,
        ),
    );
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// The Binance feed as status and the console's overview show it: connection, counters and
/// each symbol's ticks, age and last price.
pub fn feed_document(st: &ApiState, now_ms: i64) -> serde_json::Value {
    let stale_ms = (st.config.market.stale_after_secs * 1000) as i64;
    json!({
        "connected": st.feed.connected.load(Ordering::Relaxed),
        "url": st.feed.url(),
        "connections": st.feed.connections.load(Ordering::Relaxed),
        "reconnects": st.feed.reconnects.load(Ordering::Relaxed),
        "malformed_frames": st.feed.malformed_frames.load(Ordering::Relaxed),
        "symbols": st.feed.symbol_status(now_ms, stale_ms),
    })
}

/// A `limit` query parameter: `default` when absent, else an integer in `1..=max`.
pub fn query_limit(text: Option<&str>, default: i64, max: i64) -> Result<i64, ApiError> {
    match text {
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

/// An id in a path or query (`what` names it in the 400).
pub fn parse_id(text: &str, what: &str) -> Result<i64, ApiError> {
    text.parse()
        .map_err(|_| ApiError::BadRequest(format!("{what} {text:?}: expected an integer")))
}

async fn status(State(st): State<ApiState>) -> Result<Json<serde_json::Value>, ApiError> {
    let now = wall_clock_ms();
    let (health, services, reasons) = health_report(&st).await;
    Ok(Json(json!({
        "uptime_secs": (now - st.started_at_ms) / 1000,
        "started_at": st.started_at_ms,
        "health": health,
        "services": services,
        "reasons": reasons,
        "feed": feed_document(&st, now),
        "engine_strategies": st.engine.applied().iter().map(|(id, s)| json!({"id": id, "status": s})).collect::<Vec<_>>(),
        "persist_backlog": st.metrics.persist_backlog(),
        "persist_queued": st.metrics.persist_queued.load(Ordering::Relaxed),
        "tick_to_decision_us": {
            "p50": st.metrics.tick_to_decision.quantile_ns(0.5).map(|n| n as f64 / 1000.0),
            "p99": st.metrics.tick_to_decision.quantile_ns(0.99).map(|n| n as f64 / 1000.0),
            "count": st.metrics.tick_to_decision.count(),
        },
    })))
}

#[derive(Deserialize)]
struct HistoryQuery {
    limit: Option<String>,
    strategy_id: Option<String>,
}

async fn history(
    State(st): State<ApiState>,
    q: Result<Query<HistoryQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(q) = q?;
    let limit = query_limit(q.limit.as_deref(), 100, 1000)?;
    let strategy = q
        .strategy_id
        .as_deref()
        .map(|t| parse_id(t, "strategy_id"))
        .transpose()?;
    let trades = st.store.trading_log(strategy, limit).await?;
    Ok(Json(json!({"trades": trades})))
}

async fn strategies(State(st): State<ApiState>) -> Result<Json<serde_json::Value>, ApiError> {
    let list = st.store.list_strategies(None).await?;
    let live = st.live_status();
    let items: Vec<serde_json::Value> = list
        .iter()
        .map(|s| crate::views::strategy_document(s, Some(&live)))
        .collect();
    Ok(Json(json!({"strategies": items})))
}

async fn strategy(
    State(st): State<ApiState>,
    id: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Path(id) = id?;
    let id = parse_id(&id, "strategy id")?;
    let s = st.store.get_strategy(&StrategyRef::Id(id)).await?;
    let (pending, in_flight) = st.store.resting_and_in_flight(id).await?;
    let fills = st.store.trade_count(id).await?;
    let mut doc = crate::views::strategy_document(&s, Some(&st.live_status()));
    if let Some(o) = doc.as_object_mut() {
        o.insert("pending_orders".into(), json!(pending));
        o.insert("in_flight_orders".into(), json!(in_flight));
        o.insert("fills".into(), json!(fills));
    }
    Ok(Json(doc))
}

async fn poke(State(st): State<ApiState>) -> Json<serde_json::Value> {
    st.poke.notify_one();
    Json(json!({"ok": true}))
}

async fn stop(State(st): State<ApiState>) -> Json<serde_json::Value> {
    let _ = st.shutdown.send(true);
    Json(json!({"stopping": true}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_refills() {
        let l = RateLimiter::new(1, 3);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(l.allow(ip) && l.allow(ip) && l.allow(ip));
        assert!(!l.allow(ip), "burst of 3 used up");
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        assert!(l.allow(other), "per client");
    }

    #[test]
    fn token_compare() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
