//! The running daemon's row: who it is, where its API listens, its heartbeat, and a stop request
//! (how `bot stop` reaches a daemon whose API it cannot reach).

use serde::Serialize;
use sqlx::Row;

use super::{Store, StoreError};

#[derive(Debug, Clone, Serialize)]
pub struct DaemonInfo {
    /// The daemon's node id (1 for the one daemon of a database outside a cluster).
    pub id: i64,
    pub pid: i64,
    pub host: String,
    pub api_addr: String,
    pub started_at: i64,
    pub heartbeat_at: i64,
    pub stopped_at: Option<i64>,
    pub stop_requested: bool,
    /// Live strategy id → `running` or why the daemon does not run it.
    pub live_status: std::collections::BTreeMap<i64, String>,
    /// Live markets: pool and reference price, divergence (refreshed with the heartbeat).
    pub markets: std::collections::BTreeMap<String, crate::model::divergence::MarketPrices>,
    /// What its funds manager is doing (`running (…)`, `off: …`).
    pub funds_status: Option<String>,
    /// Whether it trades its strategies (`running`, `off: --market-only`, …).
    pub strategies_status: Option<String>,
    /// The build it runs (`bsc-bot --version`).
    pub version: Option<String>,
    /// Units it takes at most (cluster members only).
    pub capacity: Option<i64>,
    /// `cluster drain` asked it to hand its units over.
    pub draining: bool,
    /// A member of a cluster (PostgreSQL with `cluster.enabled`).
    pub cluster: bool,
}

const DAEMON_COLUMNS: &str = "id, pid, host, api_addr, started_at, heartbeat_at, stopped_at, \
     stop_requested, live_status, markets, funds_status, strategies_status, version, capacity, \
     draining, cluster";

impl Store {
    /// The one daemon of a database outside a cluster: row 1, taken over by each start. What the
    /// last run's funds manager and trading were doing is not what this one does: both read
    /// `starting` until its core says.
    pub async fn register_daemon(
        &self,
        pid: i64,
        host: &str,
        api_addr: &str,
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        sqlx::query(
            "INSERT INTO daemon (id, pid, host, api_addr, started_at, heartbeat_at, stopped_at, stop_requested, \
             version, cluster, funds_status, strategies_status) \
             VALUES (1, $1, $2, $3, $4, $4, NULL, 0, $5, 0, 'starting', 'starting') \
             ON CONFLICT (id) DO UPDATE SET pid = $1, host = $2, api_addr = $3, started_at = $4, \
             heartbeat_at = $4, stopped_at = NULL, stop_requested = 0, version = $5, draining = 0, \
             cluster = 0, live_status = NULL, markets = NULL, funds_status = 'starting', \
             strategies_status = 'starting'",
        )
        .bind(pid)
        .bind(host.to_string())
        .bind(api_addr.to_string())
        .bind(now_ms)
        .bind(env!("CARGO_PKG_VERSION").to_string())
        .execute(&self.pool)
        .await?;
        Ok(1)
    }

    /// Record that the daemon is alive; returns whether a stop was requested.
    pub async fn daemon_heartbeat(&self, node: i64, now_ms: i64) -> Result<bool, StoreError> {
        let requested: Option<i64> = sqlx::query_scalar(
            "UPDATE daemon SET heartbeat_at = $1 WHERE id = $2 RETURNING stop_requested",
        )
        .bind(now_ms)
        .bind(node)
        .fetch_optional(&self.pool)
        .await?;
        Ok(requested.unwrap_or(0) != 0)
    }

    /// Record what this daemon does with each live strategy (read by `strategy list/status`).
    pub async fn set_daemon_live_status(
        &self,
        node: i64,
        status: &std::collections::BTreeMap<i64, String>,
    ) -> Result<(), StoreError> {
        let text = serde_json::to_string(status).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        sqlx::query("UPDATE daemon SET live_status = $1 WHERE id = $2")
            .bind(text)
            .bind(node)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Record whether the daemon trades its strategies (read by `bot status`).
    pub async fn set_daemon_strategies_status(
        &self,
        node: i64,
        status: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE daemon SET strategies_status = $1 WHERE id = $2")
            .bind(status.to_string())
            .bind(node)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Record what the funds manager is doing (read by `bot status`, `funds status`).
    pub async fn set_daemon_funds_status(&self, node: i64, status: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE daemon SET funds_status = $1 WHERE id = $2")
            .bind(status.to_string())
            .bind(node)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Record the live markets' prices (read by `strategy status`).
    pub async fn set_daemon_markets(
        &self,
        node: i64,
        markets: &std::collections::BTreeMap<String, crate::model::divergence::MarketPrices>,
    ) -> Result<(), StoreError> {
        let text =
            serde_json::to_string(markets).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        sqlx::query("UPDATE daemon SET markets = $1 WHERE id = $2")
            .bind(text)
            .bind(node)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn mark_daemon_stopped(&self, node: i64, now_ms: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE daemon SET stopped_at = $1 WHERE id = $2")
            .bind(now_ms)
            .bind(node)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn request_daemon_stop(&self) -> Result<(), StoreError> {
        sqlx::query("UPDATE daemon SET stop_requested = 1 WHERE stopped_at IS NULL")
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Every daemon on record, lowest node id first (a cluster's members and the stopped ones
    /// not yet forgotten).
    pub async fn daemons(&self) -> Result<Vec<DaemonInfo>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {DAEMON_COLUMNS} FROM daemon ORDER BY id"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(daemon_of).collect()
    }

    /// The daemon as one: the most recently alive one, with what every daemon alive with it does
    /// (its live strategies and markets) merged in, so `strategy status` and `bot status` read
    /// one answer whether one daemon runs or a cluster.
    pub async fn daemon_info(&self) -> Result<Option<DaemonInfo>, StoreError> {
        let all = self.daemons().await?;
        let Some(newest) = all
            .iter()
            .max_by_key(|d| (d.stopped_at.is_none(), d.heartbeat_at))
            .cloned()
        else {
            return Ok(None);
        };
        let mut merged = newest;
        for d in &all {
            if d.id == merged.id || d.stopped_at.is_some() {
                continue;
            }
            if (merged.heartbeat_at - d.heartbeat_at).abs() > 5_000 {
                continue;
            }
            for (k, v) in &d.live_status {
                // A strategy running anywhere is running.
                let keep = merged.live_status.get(k).is_some_and(|m| m == "running");
                if !keep {
                    merged.live_status.insert(*k, v.clone());
                }
            }
            for (k, v) in &d.markets {
                merged.markets.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        Ok(Some(merged))
    }
}

fn daemon_of(r: &sqlx::any::AnyRow) -> Result<DaemonInfo, StoreError> {
    let stop: i64 = r.try_get("stop_requested")?;
    let live: Option<String> = r.try_get("live_status")?;
    let live_status = live
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let markets: Option<String> = r.try_get("markets")?;
    let markets = markets
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let draining: i64 = r.try_get("draining")?;
    let cluster: i64 = r.try_get("cluster")?;
    Ok(DaemonInfo {
        id: r.try_get("id")?,
        funds_status: r.try_get("funds_status")?,
        strategies_status: r.try_get("strategies_status")?,
        markets,
        pid: r.try_get("pid")?,
        host: r.try_get("host")?,
        api_addr: r.try_get("api_addr")?,
        started_at: r.try_get("started_at")?,
        heartbeat_at: r.try_get("heartbeat_at")?,
        stopped_at: r.try_get("stopped_at")?,
        stop_requested: stop != 0,
        live_status,
        version: r.try_get("version")?,
        capacity: r.try_get("capacity")?,
        draining: draining != 0,
        cluster: cluster != 0,
    })
}

/// Liveness of a daemon row.
pub trait DaemonInfoExt {
    /// Running: not marked stopped and a heartbeat in the last 5 seconds.
    fn is_alive(&self, now_ms: i64) -> bool;
}

impl DaemonInfoExt for DaemonInfo {
    fn is_alive(&self, now_ms: i64) -> bool {
        self.stopped_at.is_none() && now_ms - self.heartbeat_at < 5_000
    }
}
