//! The operator console: a browser page the daemon serves on its API listener (`/`,
//! `/console/…`), its assets compiled into the binary (no Node.js, no CDN at run time).
//!
//! The page itself holds no data: it asks for the daemon's bearer token, keeps it for the tab
//! (`sessionStorage`) and reads everything through the same API `curl` and the CLI's views use —
//! one call per page (`/api/v1/overview`, `/api/v1/strategies/{id}/page`, `/api/v1/funds`,
//! `/api/v1/backtests`) and one push stream (`/api/v1/events`, server-sent events read with
//! `fetch` so the token travels in the `Authorization` header, never in a URL). Controls go
//! through `controls` with a reason and the operator's name, audited as the CLI's commands are.

pub mod backtests;
pub mod controls;
pub mod events;
pub mod hub;
pub mod overview;
pub mod pages;
pub mod strategy_page;

use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::ApiState;

pub use hub::Hub;

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");
const CHART_JS: &str = include_str!("assets/chart.js");

/// Scripts and styles from this origin only (no inline script or style, no `eval`), data only
/// from the API, images from here or the blobs the page makes of the charts it fetched, and no
/// page may frame it.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self' blob:; connect-src 'self'; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

/// The console's files: path, content type, body.
const ASSETS: [(&str, &str, &str); 4] = [
    (
        "/console/index.html",
        "text/html; charset=utf-8",
        INDEX_HTML,
    ),
    ("/console/app.js", "text/javascript; charset=utf-8", APP_JS),
    (
        "/console/chart.js",
        "text/javascript; charset=utf-8",
        CHART_JS,
    ),
    ("/console/app.css", "text/css; charset=utf-8", APP_CSS),
];
/// Where the page itself answers besides its own path.
const PAGE_PATHS: [&str; 3] = ["/", "/console", "/console/"];

/// The console's file at `path`, with its content type.
fn asset(path: &str) -> Option<(&'static str, &'static str)> {
    let path = if PAGE_PATHS.contains(&path) {
        ASSETS[0].0
    } else {
        path
    };
    ASSETS
        .iter()
        .find(|(p, _, _)| *p == path)
        .map(|(_, kind, body)| (*kind, *body))
}

async fn serve_asset(uri: axum::http::Uri) -> Response {
    match asset(uri.path()) {
        Some((kind, body)) => ([(header::CONTENT_TYPE, kind)], body).into_response(),
        None => super::ApiError::NotFound(format!("no route {}", uri.path())).into_response(),
    }
}

/// The page and its files (no token needed: they hold no data). Rate limited as the API is.
pub fn asset_routes() -> Router<ApiState> {
    PAGE_PATHS
        .into_iter()
        .chain(ASSETS.iter().map(|(p, _, _)| *p))
        .fold(Router::new(), |r, path| r.route(path, get(serve_asset)))
}

/// The API routes the console reads and acts through (all behind the token).
pub fn api_routes() -> Router<ApiState> {
    use axum::routing::post;
    Router::new()
        .route("/api/v1/overview", get(overview::overview))
        .route(
            "/api/v1/strategies/{id}/page",
            get(strategy_page::strategy_page),
        )
        .route("/api/v1/funds", get(pages::funds))
        .route("/api/v1/backtests", get(backtests::backtests))
        .route("/api/v1/backtests/{id}", get(backtests::backtest))
        .route(
            "/api/v1/backtests/{id}/chart",
            get(backtests::backtest_chart),
        )
        .route(
            "/api/v1/sweeps/{name}/heatmap",
            get(backtests::sweep_heatmap),
        )
        .route("/api/v1/audit", get(pages::audit))
        .route("/api/v1/events", get(events::events))
        .route(
            "/api/v1/strategies/{id}/{action}",
            post(controls::strategy_action),
        )
        .route("/api/v1/emergency/{action}", post(controls::emergency))
        .route("/api/v1/risk/mode", post(controls::trading_mode))
}

/// Security headers on every answer, the API's included: a JSON error shown in a frame or
/// sniffed as HTML is as bad as the page itself.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    // A drawing served on its own keeps its stricter policy (sandboxed).
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
    }
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
    // Nothing is cached: a token-bearing answer must not outlive the tab, and a new binary's
    // assets must replace the old at once.
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

/// The console's URL for an API listener address (`bot start` and `bot status` print it).
pub fn console_url(api_addr: &str) -> String {
    format!("http://{api_addr}/")
}
