//! The operator's controls over HTTP: pause, resume or stop a strategy; emergency stop-all and
//! clear; the trading mode. Each needs a reason and the operator's name, and goes through the
//! store's own operation, the one the CLI's command calls, so the database, the audit log and
//! the daemon's next read are the same whichever way the operator pulled the lever.

use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::super::{ApiError, ApiState};
use crate::clock::wall_clock_ms;
use crate::model::operator_text::{
    acts_on_terminal, checked_text, OperatorTextError, MAX_REASON_CHARS,
};
use crate::risk::TradingMode;
use crate::store::{AuditContext, StoreError, StrategyRef};
use crate::strategy::LifecycleAction;

const MAX_ACTOR_CHARS: usize = 64;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    reason: Option<String>,
    /// Who asks: the console sends the name its operator logged in with.
    actor: Option<String>,
    /// `console` from the console; anything else is written as `api`, beside the name.
    via: Option<String>,
    /// The trading mode, for `/api/v1/risk/mode`.
    mode: Option<String>,
}

/// Text an operator typed: trimmed, present, bounded, and without characters a terminal or a
/// log reader would act on (the audit log is read in both).
fn checked(text: Option<&str>, what: &str, max: usize) -> Result<String, ApiError> {
    let t = checked_text(text.unwrap_or(""), max).map_err(|e| {
        ApiError::BadRequest(match e {
            OperatorTextError::Empty => format!("a {what:?} is required (it is audited)"),
            OperatorTextError::TooLong(n) => format!("{what} has {n} characters; at most {max}"),
        })
    })?;
    if t.chars().any(acts_on_terminal) {
        return Err(ApiError::BadRequest(format!(
            "{what} holds control characters"
        )));
    }
    Ok(t.to_string())
}

/// A request's audit context and its checked reason. The context names the command as the CLI
/// does, the arguments as it would have typed them (`args`, then `--reason REASON`), and
/// `NAME (console)` (or `NAME (api)`) as the actor. A request refused for its own text is on
/// record too: under the name it gave when that one is readable.
async fn audited(
    st: &ApiState,
    req: &Request,
    command: &str,
    mut args: Vec<String>,
) -> Result<(AuditContext, String), ApiError> {
    args.push("--reason".into());
    args.push(req.reason.clone().unwrap_or_default());
    let name = checked(req.actor.as_deref(), "actor", MAX_ACTOR_CHARS);
    // Only two sources exist; whatever else a client claims is not written as one.
    let via = if req.via.as_deref().map(str::trim) == Some("console") {
        "console"
    } else {
        "api"
    };
    let mut audit = AuditContext::new(command, args);
    audit.actor = format!("{} ({via})", name.as_deref().unwrap_or("unnamed"));
    let reason = name.and_then(|_| checked(req.reason.as_deref(), "reason", MAX_REASON_CHARS));
    if let Err(ApiError::BadRequest(why)) = &reason {
        record_refusal(st, &audit, why).await;
    }
    Ok((audit, reason?))
}

/// A refused command is on record, as the CLI's are.
async fn record_refusal(st: &ApiState, audit: &AuditContext, why: &str) {
    if let Err(e) = st
        .store
        .record_failed_command(audit, why, wall_clock_ms())
        .await
    {
        tracing::warn!(error = %e, "could not record the refused command in the audit log");
    }
}

/// A store's refusal: on record, and answered as what it is.
async fn refused(st: &ApiState, audit: &AuditContext, e: StoreError) -> ApiError {
    record_refusal(st, audit, &e.to_string()).await;
    if e.is_invalid_input() {
        match e {
            StoreError::NotFound(what) => ApiError::NotFound(format!("{what} not found")),
            other => ApiError::Conflict(other.to_string()),
        }
    } else {
        ApiError::Internal(e.to_string())
    }
}

/// The JSON body (a malformed one is a 400).
fn body(
    req: Result<Json<Request>, axum::extract::rejection::JsonRejection>,
) -> Result<Request, ApiError> {
    req.map(|Json(r)| r)
        .map_err(|e| ApiError::BadRequest(e.body_text()))
}

/// `POST /api/v1/strategies/{id}/{pause|resume|stop}` with `{"reason", "actor"}`.
pub async fn strategy_action(
    State(st): State<ApiState>,
    path: Result<Path<(String, String)>, axum::extract::rejection::PathRejection>,
    req: Result<Json<Request>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path((strategy, action)) = path?;
    let req = body(req)?;
    let action = match action.as_str() {
        "pause" => LifecycleAction::Pause,
        "resume" => LifecycleAction::Resume,
        "stop" => LifecycleAction::Stop,
        other => {
            return Err(ApiError::NotFound(format!(
                "no action {other:?} on a strategy (pause, resume, stop)"
            )))
        }
    };
    if let Some(done) = st
        .store
        .done_already(&StrategyRef::parse(&strategy), action)
        .await?
    {
        return Ok(Json(json!(done)));
    }
    let (audit, reason) = audited(
        &st,
        &req,
        &format!("strategy {}", action.as_str()),
        vec!["strategy".into(), action.as_str().into(), strategy.clone()],
    )
    .await?;
    let report = match st
        .store
        .transition_strategy(
            &StrategyRef::parse(&strategy),
            action,
            Some(&reason),
            &audit,
            wall_clock_ms(),
        )
        .await
    {
        Ok(r) => r,
        Err(e) => return Err(refused(&st, &audit, e).await),
    };
    st.poke.notify_one();
    Ok(Json(json!(report)))
}

/// `POST /api/v1/emergency/{stop-all|clear}` with `{"reason", "actor"}`.
pub async fn emergency(
    State(st): State<ApiState>,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
    req: Result<Json<Request>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(action) = path?;
    let req = body(req)?;
    if !matches!(action.as_str(), "stop-all" | "clear") {
        return Err(ApiError::NotFound(format!(
            "no emergency action {action:?} (stop-all, clear)"
        )));
    }
    let (audit, reason) = audited(
        &st,
        &req,
        &format!("emergency {action}"),
        vec!["emergency".into(), action.clone()],
    )
    .await?;
    let now = wall_clock_ms();
    let out = if action == "stop-all" {
        st.store
            .emergency_stop_all(&reason, &audit, now)
            .await
            .map(|r| json!(r))
    } else {
        st.store
            .clear_kill_switch(&reason, &audit, now)
            .await
            .map(|()| json!({"kill_switch": false, "reason": reason}))
    };
    match out {
        Ok(doc) => {
            st.poke.notify_one();
            Ok(Json(doc))
        }
        Err(e) => Err(refused(&st, &audit, e).await),
    }
}

/// `POST /api/v1/risk/mode` with `{"mode": "active|reducing|halted", "reason", "actor"}`.
pub async fn trading_mode(
    State(st): State<ApiState>,
    req: Result<Json<Request>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let req = body(req)?;
    let text = req.mode.clone().unwrap_or_default();
    let Some(mode) = TradingMode::parse(text.trim()) else {
        return Err(ApiError::BadRequest(format!(
            "mode {text:?}: expected active | reducing | halted"
        )));
    };
    let (audit, reason) = audited(
        &st,
        &req,
        "risk mode",
        vec!["risk".into(), "mode".into(), mode.as_str().into()],
    )
    .await?;
    match st
        .store
        .set_trading_mode(mode, &reason, &audit, wall_clock_ms())
        .await
    {
        Ok(()) => {
            st.poke.notify_one();
            Ok(Json(
                json!({"trading_mode": mode.as_str(), "reason": reason}),
            ))
        }
        Err(e) => Err(refused(&st, &audit, e).await),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_text_is_required_bounded_and_plain() {
        assert!(checked(None, "reason", 10).is_err());
        assert!(checked(Some("   "), "reason", 10).is_err());
        assert!(checked(Some("abcdefghijk"), "reason", 10).is_err());
        assert!(checked(Some("a\u{1b}[2J"), "reason", 10).is_err());
        assert!(checked(Some("a\u{202e}b"), "reason", 10).is_err());
        assert_eq!(
            checked(Some("  ok  "), "reason", 10).ok().as_deref(),
            Some("ok")
        );
    }
}
