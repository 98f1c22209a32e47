//! `/api/v1/canary`: the rollouts as `canary status --json` shows them, and the operator's
//! requests on one (pause, resume, abort, forced promotion), on record as the CLI's are.

use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, ApiState};
use crate::canary::TransitionKind;
use crate::clock::wall_clock_ms;
use crate::store::{AuditContext, StoreError};
use crate::views::canary::rollout_document;

pub async fn list(State(st): State<ApiState>) -> Result<Json<serde_json::Value>, ApiError> {
    let mut docs = Vec::new();
    for r in st.store.list_rollouts().await? {
        docs.push(rollout_document(&st.store, &r).await?);
    }
    Ok(Json(json!({ "rollouts": docs })))
}

pub async fn one(
    State(st): State<ApiState>,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let r = st.store.get_rollout(&name).await?;
    Ok(Json(rollout_document(&st.store, &r).await?))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    reason: Option<String>,
    /// Who asks (audited); `api` when not named.
    actor: Option<String>,
    /// Required with `promote`: skips the gate.
    #[serde(default)]
    force: bool,
}

pub async fn act(
    State(st): State<ApiState>,
    Path((name, action)): Path<(String, String)>,
    body: Option<Json<Request>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let req = body.map(|Json(b)| b).unwrap_or_default();
    let actor = req
        .actor
        .clone()
        .filter(|a| !a.trim().is_empty())
        .unwrap_or_else(|| "api".into());
    let reason = req.reason.clone().filter(|r| !r.trim().is_empty());
    let needs_reason = |what: &str| {
        reason.clone().ok_or_else(|| {
            ApiError::BadRequest(format!("canary {what} needs a \"reason\" (it is audited)"))
        })
    };
    let mut rec = st.store.get_rollout(&name).await?;
    let refused =
        |e: crate::canary::rollout::RefusedTransition| ApiError::BadRequest(e.to_string());
    let t = match action.as_str() {
        "pause" => rec
            .rollout
            .pause(reason.unwrap_or_else(|| "paused by an operator".into()), &actor)
            .map_err(refused)?,
        "resume" => rec
            .rollout
            .resume(reason.unwrap_or_else(|| "resumed by an operator".into()), &actor)
            .map_err(refused)?,
        "abort" => rec.rollout.abort(needs_reason("abort")?, &actor).map_err(refused)?,
        "promote" if req.force => rec
            .rollout
            .force_promote(needs_reason("promote")?, &actor)
            .map_err(refused)?,
        "promote" => {
            return Err(ApiError::BadRequest(
                "the daemon promotes a rollout when its gate passes; {\"force\": true, \"reason\": …} skips the gate".into(),
            ))
        }
        other => {
            return Err(ApiError::NotFound(format!(
                "no canary action {other:?} (pause, resume, abort, promote)"
            )))
        }
    };
    let ctx = AuditContext {
        command: format!("api canary {action}"),
        arguments: vec![name.clone()],
        actor,
    };
    st.store
        .save_rollout(&rec, Some(&t), Some(&ctx), wall_clock_ms())
        .await
        .map_err(|e| match e {
            StoreError::Conflict(m) => ApiError::BadRequest(m),
            other => other.into(),
        })?;
    // An abort's strategies stop at the daemon's next pass (its driver stops them); poke it.
    if t.kind == TransitionKind::Abort {
        st.poke.notify_one();
    }
    Ok(Json(json!({
        "rollout": rollout_document(&st.store, &rec).await?,
        "transition": t,
    })))
}
