//! One API call per console page: the JSON each page draws, the same for `curl` with the token.
//! The Overview (`overview`), the Strategy page (`strategy_page`) and the Backtests page
//! (`backtests`) have files of their own; the Funds page and the audit log are here.

use axum::extract::{Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::super::{ApiError, ApiState};
use crate::clock::wall_clock_ms;

#[derive(Deserialize)]
pub struct HistoryLimit {
    limit: Option<String>,
}

/// Its `limit`: `default` when absent, else in `1..=max`.
pub(super) fn limit_of(q: &HistoryLimit, default: i64, max: i64) -> Result<i64, ApiError> {
    super::super::query_limit(q.limit.as_deref(), default, max)
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

/// The audit log, newest first: who did what, from the CLI or the console.
pub async fn audit(
    State(st): State<ApiState>,
    q: Result<Query<HistoryLimit>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = q?;
    let limit = limit_of(&q, 50, 1000)?;
    Ok(Json(json!({"audit": st.store.audit_log(limit).await?})))
}
