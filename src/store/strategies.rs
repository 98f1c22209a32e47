//! Strategy rows: create, look up, lifecycle transitions, and the emergency stop of all of them.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{audit, AuditContext, Store, StoreError};
use crate::failpoint;
use crate::strategy::{LifecycleAction, StrategyMode, StrategySpec, StrategyStatus};

/// A strategy as stored; `params` is the validated parameter object (decimals as strings).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StrategyRecord {
    pub id: i64,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub symbol: String,
    pub mode: StrategyMode,
    /// The wallet a live strategy trades from (its keystore name); none for paper.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wallet: Option<String>,
    pub status: StrategyStatus,
    pub status_reason: Option<String>,
    pub params: serde_json::Value,
    #[serde(skip)]
    pub state: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub stopped_at: Option<i64>,
}

/// How an operator names a strategy: its id, or its name (the live one, else the newest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StrategyRef {
    Id(i64),
    Name(String),
}

impl StrategyRef {
    pub fn parse(text: &str) -> StrategyRef {
        match text.parse::<i64>() {
            Ok(id) => StrategyRef::Id(id),
            Err(_) => StrategyRef::Name(text.to_string()),
        }
    }
}

impl std::fmt::Display for StrategyRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StrategyRef::Id(id) => write!(f, "strategy {id}"),
            StrategyRef::Name(n) => write!(f, "strategy {n:?}"),
        }
    }
}

/// Result of a lifecycle command.
#[derive(Debug, Clone, Serialize)]
pub struct TransitionReport {
    pub id: i64,
    pub name: String,
    pub from: StrategyStatus,
    pub to: StrategyStatus,
    pub cancelled_orders: Vec<i64>,
    /// A stop of a strategy stopped before: nothing was done (and nothing audited).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub already_stopped: bool,
}

/// What `emergency stop-all` did, all of it in one transaction.
#[derive(Debug, Clone, Serialize)]
pub struct StopAllReport {
    pub reason: String,
    pub stopped: Vec<StoppedStrategy>,
    pub cancelled_orders: Vec<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StoppedStrategy {
    pub id: i64,
    pub name: String,
    pub previous_status: StrategyStatus,
}

impl StrategyRecord {
    /// Why a live strategy the operator expects to trade is not being run, if it is not, from
    /// what the running daemon recorded (`daemon_live`: `None` when no daemon runs). One rule for
    /// `strategy list/status`, `bot status` and health, so none of them calls such a strategy
    /// running when nothing runs it.
    pub fn not_running_reason(
        &self,
        daemon_live: Option<&std::collections::BTreeMap<i64, String>>,
    ) -> Option<String> {
        if self.mode != StrategyMode::Live || self.status == StrategyStatus::Stopped {
            return None;
        }
        match daemon_live.map(|m| m.get(&self.id)) {
            None => Some("not running: no daemon is running".into()),
            Some(Some(s)) if s == "running" => None,
            Some(Some(reason)) => Some(format!("not running: {reason}")),
            Some(None) => Some(
                "not running yet: the running daemon has not taken it up (it does at its next \
                 control poll; a daemon started with --no-strategies or --monitoring-only never does)"
                    .into(),
            ),
        }
    }
}

const STRATEGY_COLUMNS: &str = "id, name, kind, symbol, mode, wallet, status, status_reason, \
                                params, state, created_at, updated_at, stopped_at";

fn strategy_from_row(row: &AnyRow) -> Result<StrategyRecord, StoreError> {
    let status: String = row.try_get("status")?;
    let mode: String = row.try_get("mode")?;
    let params: String = row.try_get("params")?;
    let id: i64 = row.try_get("id")?;
    Ok(StrategyRecord {
        id,
        name: row.try_get("name")?,
        kind: row.try_get("kind")?,
        symbol: row.try_get("symbol")?,
        mode: mode
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("strategy {id}: {e}")))?,
        status: status
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("strategy {id}: {e}")))?,
        wallet: row.try_get("wallet")?,
        status_reason: row.try_get("status_reason")?,
        params: serde_json::from_str(&params)
            .map_err(|e| StoreError::Corrupt(format!("strategy {id} params: {e}")))?,
        state: row.try_get("state")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        stopped_at: row.try_get("stopped_at")?,
    })
}

/// A snapshot's ledger with `delta` quote added to what it holds and started with (never below
/// no quote), so its PnL is unchanged.
fn resize_budget(ledger: &mut serde_json::Value, delta: rust_decimal::Decimal) {
    let get = |v: &serde_json::Value| {
        v.as_str()
            .and_then(|s| s.parse::<rust_decimal::Decimal>().ok())
    };
    let (Some(quote), Some(initial)) = (
        ledger.get("quote").and_then(get),
        ledger.get("initial_quote").and_then(get),
    ) else {
        return;
    };
    let delta = delta.max(-quote);
    if let Some(l) = ledger.as_object_mut() {
        l.insert("quote".into(), (quote + delta).to_string().into());
        l.insert("initial_quote".into(), (initial + delta).to_string().into());
    }
}

impl Store {
    /// Insert a validated spec. `initial` is `active` unless the operator asked for `paused`;
    /// an active create is refused while the kill switch is engaged.
    pub async fn create_strategy(
        &self,
        spec: &StrategySpec,
        initial: StrategyStatus,
        ctx: &AuditContext,
        now_ms: i64,
    ) -> Result<StrategyRecord, StoreError> {
        let (mut tx, engaged) = self.begin_control_write(now_ms).await?;
        if engaged && initial == StrategyStatus::Active {
            let reason = kill_switch_reason(&mut tx).await?;
            return Err(StoreError::KillSwitchEngaged {
                reason,
                action: "creating an active strategy".into(),
            });
        }
        let clash: Option<i64> =
            sqlx::query_scalar("SELECT id FROM strategies WHERE name = $1 AND status <> 'stopped'")
                .bind(spec.name.clone())
                .fetch_optional(&mut *tx)
                .await?;
        if clash.is_some() {
            return Err(StoreError::DuplicateName(spec.name.clone()));
        }
        let params = serde_json::to_string(&spec.params.params_json())
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO strategies (name, kind, symbol, mode, status, params, created_at, updated_at, wallet) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8) RETURNING id",
        )
        .bind(spec.name.clone())
        .bind(spec.params.type_name().to_string())
        .bind(spec.symbol.to_string())
        .bind(spec.mode.as_str().to_string())
        .bind(initial.as_str().to_string())
        .bind(params)
        .bind(now_ms)
        .bind(spec.wallet.clone())
        .fetch_one(&mut *tx)
        .await?;
        audit::insert(
            &mut *tx,
            ctx,
            "ok",
            &format!("created strategy {id}"),
            now_ms,
        )
        .await?;
        let row = sqlx::query(&format!(
            "SELECT {STRATEGY_COLUMNS} FROM strategies WHERE id = $1"
        ))
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        let record = strategy_from_row(&row)?;
        tx.commit().await?;
        Ok(record)
    }

    pub async fn list_strategies(
        &self,
        status: Option<StrategyStatus>,
    ) -> Result<Vec<StrategyRecord>, StoreError> {
        let rows = match status {
            Some(s) => {
                sqlx::query(&format!(
                    "SELECT {STRATEGY_COLUMNS} FROM strategies WHERE status = $1 ORDER BY id"
                ))
                .bind(s.as_str().to_string())
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {STRATEGY_COLUMNS} FROM strategies ORDER BY id"
                ))
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(strategy_from_row).collect()
    }

    pub async fn get_strategy(&self, r: &StrategyRef) -> Result<StrategyRecord, StoreError> {
        let mut conn = self.pool.acquire().await?;
        find_strategy(&mut conn, r).await
    }

    /// Apply pause / resume / stop. Stop also cancels the strategy's pending conditional orders.
    /// Replace a paused strategy's parameters (already validated against its type), and the
    /// copy of them inside its saved state, so a restart restores it under the new ones.
    /// Returns the record as it was before.
    pub async fn update_strategy_params(
        &self,
        r: &StrategyRef,
        params: &serde_json::Value,
        ctx: &AuditContext,
        now_ms: i64,
    ) -> Result<StrategyRecord, StoreError> {
        let (mut tx, _) = self.begin_control_write(now_ms).await?;
        let current = find_strategy(&mut tx, r).await?;
        if current.status != StrategyStatus::Paused {
            return Err(StoreError::Conflict(format!(
                "strategy {} is {}: pause it first (`strategy pause {}`), update, then resume",
                current.id, current.status, current.id
            )));
        }
        let state = match &current.state {
            Some(text) => {
                let mut doc: serde_json::Value = serde_json::from_str(text).map_err(|e| {
                    StoreError::Corrupt(format!("strategy {} state: {e}", current.id))
                })?;
                if let Some(strategy) = doc.get_mut("strategy").and_then(|s| s.as_object_mut()) {
                    strategy.insert("params".into(), params.clone());
                }
                // Its budget follows its size, as the running engine resizes it.
                if let (Ok(old), Ok(new)) = (
                    crate::strategy::StrategyParams::parse(&current.kind, &current.params),
                    crate::strategy::StrategyParams::parse(&current.kind, params),
                ) {
                    if let Some(ledger) = doc.get_mut("ledger") {
                        resize_budget(ledger, new.required_quote() - old.required_quote());
                    }
                }
                Some(doc.to_string())
            }
            None => None,
        };
        sqlx::query(
            "UPDATE strategies SET params = $1, state = $2, updated_at = $3 WHERE id = $4 \
             AND status = 'paused'",
        )
        .bind(params.to_string())
        .bind(state)
        .bind(now_ms)
        .bind(current.id)
        .execute(&mut *tx)
        .await?;
        audit::insert(
            &mut *tx,
            ctx,
            "ok",
            &format!(
                "strategy {}: params {} -> {}",
                current.id, current.params, params
            ),
            now_ms,
        )
        .await?;
        tx.commit().await?;
        Ok(current)
    }

    pub async fn transition_strategy(
        &self,
        r: &StrategyRef,
        action: LifecycleAction,
        reason: Option<&str>,
        ctx: &AuditContext,
        now_ms: i64,
    ) -> Result<TransitionReport, StoreError> {
        let (mut tx, engaged) = self.begin_control_write(now_ms).await?;
        let current = find_strategy(&mut tx, r).await?;
        let to = current
            .status
            .apply(action)
            .map_err(|source| StoreError::InvalidTransition {
                id: current.id,
                name: current.name.clone(),
                source,
            })?;
        if engaged && to == StrategyStatus::Active {
            let reason = kill_switch_reason(&mut tx).await?;
            return Err(StoreError::KillSwitchEngaged {
                reason,
                action: format!("resuming strategy {}", current.id),
            });
        }
        let status_reason = reason
            .map(str::to_string)
            .unwrap_or_else(|| format!("operator {}", action.as_str()));
        let stopped_at = (to == StrategyStatus::Stopped).then_some(now_ms);
        let updated = sqlx::query(
            "UPDATE strategies SET status = $1, status_reason = $2, updated_at = $3, \
             stopped_at = COALESCE($4, stopped_at) WHERE id = $5 AND status = $6",
        )
        .bind(to.as_str().to_string())
        .bind(status_reason.clone())
        .bind(now_ms)
        .bind(stopped_at)
        .bind(current.id)
        .bind(current.status.as_str().to_string())
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() != 1 {
            return Err(StoreError::Conflict(format!(
                "strategy {} changed while being updated; run the command again",
                current.id
            )));
        }
        let cancelled_orders = if to == StrategyStatus::Stopped {
            super::orders::cancel_pending(&mut tx, Some(current.id), &status_reason, now_ms).await?
        } else {
            Vec::new()
        };
        audit::insert(
            &mut *tx,
            ctx,
            "ok",
            &format!("strategy {}: {} -> {}", current.id, current.status, to),
            now_ms,
        )
        .await?;
        tx.commit().await?;
        Ok(TransitionReport {
            id: current.id,
            name: current.name,
            from: current.status,
            to,
            cancelled_orders,
            already_stopped: false,
        })
    }

    /// Stopping what is stopped is done already: a script that stops every id in an emergency
    /// must not fail on the ones that were. `Some` (nothing changed) when `action` is a stop of
    /// a stopped strategy; the CLI and the API ask before they check the operator's text.
    /// (Pause and resume of a stopped strategy stay errors.)
    pub async fn done_already(
        &self,
        r: &StrategyRef,
        action: LifecycleAction,
    ) -> Result<Option<TransitionReport>, StoreError> {
        if action != LifecycleAction::Stop {
            return Ok(None);
        }
        let record = self.get_strategy(r).await?;
        Ok(
            (record.status == StrategyStatus::Stopped).then(|| TransitionReport {
                id: record.id,
                name: record.name,
                from: StrategyStatus::Stopped,
                to: StrategyStatus::Stopped,
                cancelled_orders: Vec::new(),
                already_stopped: true,
            }),
        )
    }

    /// Engage the kill switch, stop every strategy that is not stopped and cancel every pending
    /// conditional order — in one transaction, so a crash leaves all of it or none of it.
    pub async fn emergency_stop_all(
        &self,
        reason: &str,
        ctx: &AuditContext,
        now_ms: i64,
    ) -> Result<StopAllReport, StoreError> {
        let (mut tx, _) = self.begin_control_write(now_ms).await?;
        sqlx::query(
            "UPDATE control_state SET kill_switch = 1, kill_switch_reason = $1, \
             kill_switch_actor = $2, kill_switch_at = $3 WHERE id = 1",
        )
        .bind(reason.to_string())
        .bind(ctx.actor.clone())
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        let rows = sqlx::query(
            "SELECT id, name, status FROM strategies WHERE status <> 'stopped' ORDER BY id",
        )
        .fetch_all(&mut *tx)
        .await?;
        let mut stopped = Vec::with_capacity(rows.len());
        for row in &rows {
            let status: String = row.try_get("status")?;
            let id: i64 = row.try_get("id")?;
            stopped.push(StoppedStrategy {
                id,
                name: row.try_get("name")?,
                previous_status: status
                    .parse()
                    .map_err(|e| StoreError::Corrupt(format!("strategy {id}: {e}")))?,
            });
        }
        let status_reason = format!("emergency stop-all: {reason}");
        sqlx::query(
            "UPDATE strategies SET status = 'stopped', status_reason = $1, updated_at = $2, \
             stopped_at = $2 WHERE status <> 'stopped'",
        )
        .bind(status_reason.clone())
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        failpoint::hit("emergency.after_strategies");
        let cancelled_orders =
            super::orders::cancel_pending(&mut tx, None, &status_reason, now_ms).await?;
        sqlx::query(
            "INSERT INTO risk_events (strategy_id, kind, severity, message, details, created_at) \
             VALUES (NULL, 'kill_switch', 'critical', $1, $2, $3)",
        )
        .bind(status_reason.clone())
        .bind(
            serde_json::json!({"actor": ctx.actor, "stopped": stopped.len(), "cancelled_orders": cancelled_orders.len()})
                .to_string(),
        )
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        audit::insert(
            &mut *tx,
            ctx,
            "ok",
            &format!(
                "stopped {} strategies, cancelled {} conditional orders",
                stopped.len(),
                cancelled_orders.len()
            ),
            now_ms,
        )
        .await?;
        failpoint::hit("emergency.before_commit");
        tx.commit().await?;
        Ok(StopAllReport {
            reason: reason.to_string(),
            stopped,
            cancelled_orders,
        })
    }
}

async fn find_strategy(
    conn: &mut sqlx::AnyConnection,
    r: &StrategyRef,
) -> Result<StrategyRecord, StoreError> {
    let row = match r {
        StrategyRef::Id(id) => {
            sqlx::query(&format!(
                "SELECT {STRATEGY_COLUMNS} FROM strategies WHERE id = $1"
            ))
            .bind(*id)
            .fetch_optional(&mut *conn)
            .await?
        }
        StrategyRef::Name(name) => {
            // The live strategy of that name if there is one, else the newest stopped one.
            sqlx::query(&format!(
                "SELECT {STRATEGY_COLUMNS} FROM strategies WHERE name = $1 \
                 ORDER BY CASE WHEN status = 'stopped' THEN 1 ELSE 0 END, id DESC LIMIT 1"
            ))
            .bind(name.clone())
            .fetch_optional(&mut *conn)
            .await?
        }
    };
    match row {
        Some(row) => strategy_from_row(&row),
        None => Err(StoreError::NotFound(r.to_string())),
    }
}

async fn kill_switch_reason(conn: &mut sqlx::AnyConnection) -> Result<String, StoreError> {
    let reason: Option<String> =
        sqlx::query_scalar("SELECT kill_switch_reason FROM control_state WHERE id = 1")
            .fetch_one(&mut *conn)
            .await?;
    Ok(reason.unwrap_or_else(|| "no reason recorded".into()))
}
