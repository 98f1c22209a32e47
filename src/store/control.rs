//! The global kill switch: persistent, so a restarted daemon stays stopped.

use serde::Serialize;
use sqlx::Row;

use super::{audit, AuditContext, Store, StoreError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KillSwitch {
    pub engaged: bool,
    pub reason: Option<String>,
    pub actor: Option<String>,
    pub engaged_at: Option<i64>,
    /// Desired-state revision; changes on every operator write.
    pub revision: i64,
}

/// The trading mode on record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TradingModeRecord {
    pub mode: crate::risk::TradingMode,
    pub reason: Option<String>,
    pub actor: Option<String>,
    pub set_at: Option<i64>,
}

impl Store {
    pub async fn trading_mode(&self) -> Result<TradingModeRecord, StoreError> {
        let row = sqlx::query(
            "SELECT trading_mode, trading_mode_reason, trading_mode_actor, trading_mode_at \
             FROM control_state WHERE id = 1",
        )
        .fetch_one(&self.pool)
        .await?;
        let text: String = row.try_get("trading_mode")?;
        Ok(TradingModeRecord {
            mode: crate::risk::TradingMode::parse(&text)
                .ok_or_else(|| StoreError::Corrupt(format!("trading mode {text:?}")))?,
            reason: row.try_get("trading_mode_reason")?,
            actor: row.try_get("trading_mode_actor")?,
            set_at: row.try_get("trading_mode_at")?,
        })
    }

    /// Set the trading mode (audited, with a risk event); the daemon applies it at its next poll.
    pub async fn set_trading_mode(
        &self,
        mode: crate::risk::TradingMode,
        reason: &str,
        ctx: &AuditContext,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let (mut tx, _) = self.begin_control_write(now_ms).await?;
        sqlx::query(
            "UPDATE control_state SET trading_mode = $1, trading_mode_reason = $2, \
             trading_mode_actor = $3, trading_mode_at = $4 WHERE id = 1",
        )
        .bind(mode.as_str().to_string())
        .bind(reason.to_string())
        .bind(ctx.actor.clone())
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO risk_events (strategy_id, kind, severity, message, details, created_at) \
             VALUES (NULL, 'trading_mode', $1, $2, $3, $4)",
        )
        .bind(if mode == crate::risk::TradingMode::Active {
            "info"
        } else {
            "warning"
        })
        .bind(format!("trading mode {}: {reason}", mode.as_str()))
        .bind(serde_json::json!({"actor": ctx.actor, "mode": mode.as_str()}).to_string())
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        audit::insert(
            &mut *tx,
            ctx,
            "ok",
            &format!("trading mode {}", mode.as_str()),
            now_ms,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn kill_switch(&self) -> Result<KillSwitch, StoreError> {
        let row = sqlx::query(
            "SELECT kill_switch, kill_switch_reason, kill_switch_actor, kill_switch_at, revision \
             FROM control_state WHERE id = 1",
        )
        .fetch_one(&self.pool)
        .await?;
        let engaged: i64 = row.try_get("kill_switch")?;
        Ok(KillSwitch {
            engaged: engaged != 0,
            reason: row.try_get("kill_switch_reason")?,
            actor: row.try_get("kill_switch_actor")?,
            engaged_at: row.try_get("kill_switch_at")?,
            revision: row.try_get("revision")?,
        })
    }

    /// Lift the kill switch. Strategies stay stopped; operators create or resume deliberately.
    pub async fn clear_kill_switch(
        &self,
        reason: &str,
        ctx: &AuditContext,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let (mut tx, engaged) = self.begin_control_write(now_ms).await?;
        if !engaged {
            return Err(StoreError::Conflict(
                "the kill switch is not engaged; nothing to clear".into(),
            ));
        }
        sqlx::query(
            "UPDATE control_state SET kill_switch = 0, kill_switch_reason = NULL, \
             kill_switch_actor = NULL, kill_switch_at = NULL WHERE id = 1",
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO risk_events (strategy_id, kind, severity, message, details, created_at) \
             VALUES (NULL, 'kill_switch_cleared', 'info', $1, $2, $3)",
        )
        .bind(format!("kill switch cleared: {reason}"))
        .bind(serde_json::json!({"actor": ctx.actor}).to_string())
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        audit::insert(&mut *tx, ctx, "ok", "kill switch cleared", now_ms).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Engage the kill switch on record (kept as it is when an operator engaged it already) and bump
/// the control revision, inside the caller's transaction. The daemon's own way to stop trading
/// until an operator looks, e.g. after its database was unwritable.
pub(crate) async fn engage_kill_switch_in(
    conn: &mut sqlx::AnyConnection,
    reason: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE control_state SET revision = revision + 1, updated_at = $1, \
         kill_switch_reason = CASE WHEN kill_switch = 0 THEN $2 ELSE kill_switch_reason END, \
         kill_switch_actor = CASE WHEN kill_switch = 0 THEN 'daemon' ELSE kill_switch_actor END, \
         kill_switch_at = CASE WHEN kill_switch = 0 THEN $1 ELSE kill_switch_at END, \
         kill_switch = 1 WHERE id = 1",
    )
    .bind(now_ms)
    .bind(reason.to_string())
    .execute(&mut *conn)
    .await?;
    Ok(())
}
