//! The operator audit log: who ran which command, with what arguments, and how it ended.

use sqlx::{Any, Executor};

use super::{Store, StoreError};

/// One operator command as it will be written to `audit_log`.
#[derive(Debug, Clone)]
pub struct AuditContext {
    /// e.g. `strategy pause`.
    pub command: String,
    /// The command line after the binary name, as typed (no secrets are ever passed as args).
    pub arguments: Vec<String>,
    /// OS user that ran it (`$USER`), so a shared host still tells who pulled the brake.
    pub actor: String,
}

impl AuditContext {
    pub fn new(command: impl Into<String>, arguments: Vec<String>) -> Self {
        let actor = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(os_user);
        AuditContext {
            command: command.into(),
            arguments,
            actor,
        }
    }
}

/// The name of the process's real user (from `/etc/passwd`), or `uid:N` when it has none: cron
/// jobs and systemd units often run without `$USER`, and "unknown" tells an auditor nothing.
fn os_user() -> String {
    let uid = rustix::process::getuid().as_raw();
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|text| {
            text.lines().find_map(|line| {
                let mut f = line.split(':');
                let name = f.next()?;
                let id: u32 = f.nth(1)?.parse().ok()?;
                (id == uid).then(|| name.to_string())
            })
        })
        .unwrap_or_else(|| format!("uid:{uid}"))
}

pub(crate) async fn insert<'e, E>(
    executor: E,
    ctx: &AuditContext,
    outcome: &str,
    detail: &str,
    now_ms: i64,
) -> Result<(), StoreError>
where
    E: Executor<'e, Database = Any>,
{
    let args = serde_json::to_string(&ctx.arguments).unwrap_or_else(|_| "[]".into());
    sqlx::query(
        "INSERT INTO audit_log (command, arguments, actor, outcome, detail, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(ctx.command.clone())
    .bind(args)
    .bind(ctx.actor.clone())
    .bind(outcome.to_string())
    .bind(detail.to_string())
    .bind(now_ms)
    .execute(executor)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditRecord {
    pub id: i64,
    pub command: String,
    pub arguments: Vec<String>,
    pub actor: String,
    pub outcome: String,
    pub detail: Option<String>,
    pub created_at: i64,
}

impl Store {
    /// Record a command that succeeded outside a control-plane transaction (a funds operation,
    /// whose own record is its `funds_operations` row).
    pub async fn record_command(
        &self,
        ctx: &AuditContext,
        message: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        insert(&self.pool, ctx, "ok", message, now_ms).await
    }

    /// Record a command that failed (successful ones are recorded inside their transaction).
    pub async fn record_failed_command(
        &self,
        ctx: &AuditContext,
        error: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        insert(&self.pool, ctx, "error", error, now_ms).await
    }

    pub async fn audit_log(&self, limit: i64) -> Result<Vec<AuditRecord>, StoreError> {
        use sqlx::Row;
        let rows = sqlx::query(
            "SELECT id, command, arguments, actor, outcome, detail, created_at FROM audit_log \
             ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let args: String = r.try_get("arguments")?;
                Ok(AuditRecord {
                    id: r.try_get("id")?,
                    command: r.try_get("command")?,
                    arguments: serde_json::from_str(&args).unwrap_or_default(),
                    actor: r.try_get("actor")?,
                    outcome: r.try_get("outcome")?,
                    detail: r.try_get("detail")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }
}
