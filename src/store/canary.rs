//! `canary_rollouts` and `canary_transitions`: each rollout with the stage it is in and the time
//! it has spent there, and every decision taken on it. A rollout's row carries a version: every
//! write names the version it read, so the daemon advancing a stage and an operator pausing it
//! cannot both win (the second is told to read again).

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{audit, AuditContext, Store, StoreError};
use crate::canary::{Rollout, RolloutPlan, RolloutState, Transition};
use crate::config::canary::CanaryConfig;

/// What a new rollout is of, besides its plan.
#[derive(Debug, Clone)]
pub struct NewRollout {
    pub name: String,
    pub symbol: String,
    /// Strategy type (`grid`).
    pub kind: String,
    /// The strategy's parameters at the target size.
    pub params: serde_json::Value,
    /// The wallet live stages trade from.
    pub wallet: Option<String>,
    /// `[canary]` with the rollout's own overrides.
    pub settings: CanaryConfig,
}

#[derive(Debug, Clone, Serialize)]
pub struct RolloutRecord {
    pub id: i64,
    pub name: String,
    pub symbol: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub params: serde_json::Value,
    pub wallet: Option<String>,
    pub settings: CanaryConfig,
    pub rollout: Rollout,
    /// Stage index → the strategy that ran it.
    pub strategies: BTreeMap<usize, i64>,
    pub version: i64,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TransitionRecord {
    pub id: i64,
    pub kind: String,
    pub from_stage: String,
    pub to_stage: String,
    pub from_state: String,
    pub to_state: String,
    pub reason: String,
    pub actor: String,
    pub gate: Option<serde_json::Value>,
    pub created_at: i64,
}

const COLUMNS: &str = "id, name, symbol, kind, params, wallet, settings, plan, stage, state, \
                       state_reason, stage_elapsed_ms, strategies, version, created_by, \
                       created_at, updated_at";

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("canary_rollouts.{what}: {e}"))
}

fn json<T: serde::de::DeserializeOwned>(r: &AnyRow, column: &str) -> Result<T, StoreError> {
    let text: String = r.try_get(column)?;
    serde_json::from_str(&text).map_err(|e| corrupt(column, e))
}

fn state_of(name: &str, reason: Option<String>) -> Result<RolloutState, StoreError> {
    let reason = reason.unwrap_or_default();
    Ok(match name {
        "running" => RolloutState::Running,
        "held" => RolloutState::Held { reason },
        "paused" => RolloutState::Paused { reason },
        "aborted" => RolloutState::Aborted { reason },
        "done" => RolloutState::Done,
        other => return Err(corrupt("state", other)),
    })
}

fn reason_of(state: &RolloutState) -> Option<String> {
    match state {
        RolloutState::Held { reason }
        | RolloutState::Paused { reason }
        | RolloutState::Aborted { reason } => Some(reason.clone()),
        RolloutState::Running | RolloutState::Done => None,
    }
}

fn from_row(r: &AnyRow) -> Result<RolloutRecord, StoreError> {
    let plan: RolloutPlan = json(r, "plan")?;
    let stage: i64 = r.try_get("stage")?;
    let stage = usize::try_from(stage)
        .ok()
        .filter(|s| *s < plan.stages.len())
        .ok_or_else(|| corrupt("stage", stage))?;
    let strategies: BTreeMap<String, i64> = json(r, "strategies")?;
    let strategies = strategies
        .into_iter()
        .map(|(k, v)| k.parse::<usize>().map(|k| (k, v)))
        .collect::<Result<_, _>>()
        .map_err(|e| corrupt("strategies", e))?;
    Ok(RolloutRecord {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        symbol: r.try_get("symbol")?,
        kind: r.try_get("kind")?,
        params: json(r, "params")?,
        wallet: r.try_get("wallet")?,
        settings: json(r, "settings")?,
        rollout: Rollout {
            plan,
            stage,
            state: state_of(
                &r.try_get::<String, _>("state")?,
                r.try_get("state_reason")?,
            )?,
            stage_elapsed_ms: r.try_get("stage_elapsed_ms")?,
        },
        strategies,
        version: r.try_get("version")?,
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn text(v: &impl Serialize) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl Store {
    /// Put a new rollout on record (with its audit entry): refused when one of that name exists.
    pub async fn insert_rollout(
        &self,
        new: &NewRollout,
        rollout: &Rollout,
        ctx: &AuditContext,
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        if new.name.trim().is_empty() || new.name.parse::<i64>().is_ok() {
            return Err(StoreError::Conflict(format!(
                "a rollout's name must be a name, not empty or a number (numbers are ids): {:?}",
                new.name
            )));
        }
        let (mut tx, _) = self.begin_control_write(now_ms).await?;
        let existing: Option<String> =
            sqlx::query_scalar("SELECT state FROM canary_rollouts WHERE name = $1")
                .bind(new.name.clone())
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(state) = existing {
            return Err(StoreError::Conflict(format!(
                "a canary rollout named {:?} exists already ({state}); pick another name",
                new.name
            )));
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO canary_rollouts (name, symbol, kind, params, wallet, settings, plan, stage, \
             state, state_reason, stage_elapsed_ms, strategies, version, created_by, created_at, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, '{}', 1, $12, $13, \
             $13) RETURNING id",
        )
        .bind(new.name.clone())
        .bind(new.symbol.clone())
        .bind(new.kind.clone())
        .bind(text(&new.params)?)
        .bind(new.wallet.clone())
        .bind(text(&new.settings)?)
        .bind(text(&rollout.plan)?)
        .bind(rollout.stage as i64)
        .bind(rollout.state.name().to_string())
        .bind(reason_of(&rollout.state))
        .bind(rollout.stage_elapsed_ms)
        .bind(ctx.actor.clone())
        .bind(now_ms)
        .fetch_one(&mut *tx)
        .await?;
        audit::insert(&mut *tx, ctx, "ok", &format!("rollout {id}"), now_ms).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// A rollout by name or id.
    pub async fn get_rollout(&self, name_or_id: &str) -> Result<RolloutRecord, StoreError> {
        let row = match name_or_id.parse::<i64>() {
            Ok(id) => {
                sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM canary_rollouts WHERE id = $1"
                ))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?
            }
            Err(_) => {
                sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM canary_rollouts WHERE name = $1"
                ))
                .bind(name_or_id.to_string())
                .fetch_optional(&self.pool)
                .await?
            }
        };
        let row =
            row.ok_or_else(|| StoreError::NotFound(format!("canary rollout {name_or_id:?}")))?;
        from_row(&row)
    }

    /// Every rollout, the newest first.
    pub async fn list_rollouts(&self) -> Result<Vec<RolloutRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM canary_rollouts ORDER BY id DESC"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// Write what `record.rollout` became (and which strategies its stages run), with the
    /// transition that changed it when one did and its audit entry (the operator's when one
    /// asked, else the daemon's). Only
    /// if nobody wrote the rollout since `record.version` was read: otherwise nothing is written
    /// and the caller reads it again. Returns the new version.
    pub async fn save_rollout(
        &self,
        record: &RolloutRecord,
        transition: Option<&Transition>,
        ctx: Option<&AuditContext>,
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        // A decision changes what the daemon follows (which ticks it logs): it moves the control
        // revision. The driver's every-pass save of the elapsed time does not, or the control
        // poller would re-read everything on every pass.
        let mut tx = if transition.is_some() {
            self.begin_control_write(now_ms).await?.0
        } else {
            self.begin_write().await?
        };
        let strategies: BTreeMap<String, i64> = record
            .strategies
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect();
        let r = &record.rollout;
        let done = sqlx::query(
            "UPDATE canary_rollouts SET stage = $1, state = $2, state_reason = $3, \
             stage_elapsed_ms = $4, strategies = $5, version = version + 1, updated_at = $6 \
             WHERE id = $7 AND version = $8",
        )
        .bind(r.stage as i64)
        .bind(r.state.name().to_string())
        .bind(reason_of(&r.state))
        .bind(r.stage_elapsed_ms)
        .bind(text(&strategies)?)
        .bind(now_ms)
        .bind(record.id)
        .bind(record.version)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::Conflict(format!(
                "canary rollout {:?} changed while this was decided; read it again",
                record.name
            )));
        }
        if let Some(t) = transition {
            let gate = t.gate.as_ref().map(text).transpose()?;
            sqlx::query(
                "INSERT INTO canary_transitions (rollout_id, kind, from_stage, to_stage, \
                 from_state, to_state, reason, actor, gate, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(record.id)
            .bind(t.kind.name().to_string())
            .bind(t.from_stage.clone())
            .bind(t.to_stage.clone())
            .bind(t.from_state.to_string())
            .bind(t.to_state.to_string())
            .bind(t.reason.clone())
            .bind(t.actor.clone())
            .bind(gate)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        }
        // Every transition is audited: an operator's under their name, the daemon's own under it.
        let daemon = AuditContext {
            command: "canary (daemon)".into(),
            arguments: vec![record.name.clone()],
            actor: "daemon".into(),
        };
        let ctx = ctx.or(transition.map(|_| &daemon));
        if let Some(ctx) = ctx {
            let detail = format!(
                "rollout {} ({}): {}",
                record.id,
                record.name,
                transition.map_or("saved".into(), |t| format!(
                    "{} → {} {}",
                    t.from_stage, t.to_stage, t.to_state
                ))
            );
            audit::insert(&mut *tx, ctx, "ok", &detail, now_ms).await?;
        }
        tx.commit().await?;
        Ok(record.version + 1)
    }

    /// A rollout's decisions, oldest first.
    pub async fn rollout_transitions(
        &self,
        rollout_id: i64,
    ) -> Result<Vec<TransitionRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, kind, from_stage, to_stage, from_state, to_state, reason, actor, gate, \
             created_at FROM canary_transitions WHERE rollout_id = $1 ORDER BY id",
        )
        .bind(rollout_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let gate: Option<String> = r.try_get("gate")?;
                Ok(TransitionRecord {
                    id: r.try_get("id")?,
                    kind: r.try_get("kind")?,
                    from_stage: r.try_get("from_stage")?,
                    to_stage: r.try_get("to_stage")?,
                    from_state: r.try_get("from_state")?,
                    to_state: r.try_get("to_state")?,
                    reason: r.try_get("reason")?,
                    actor: r.try_get("actor")?,
                    gate: gate
                        .map(|g| serde_json::from_str(&g))
                        .transpose()
                        .map_err(|e| {
                            StoreError::Corrupt(format!("canary_transitions.gate: {e}"))
                        })?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }
}
