//! Online backups with a manifest, their verification, restore, retention, and pruning old
//! history. A backup is a consistent snapshot taken while the daemon writes: SQLite's
//! `VACUUM INTO` (a copy made inside one read transaction, WAL included — what `cp` of the file
//! misses), PostgreSQL's `pg_dump` in custom format at a snapshot exported by the transaction
//! that counts the rows, so the manifest's counts are the dump's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::{Backend, Store, StoreError};

/// The tables a backup counts (everything the bot keeps).
pub const TABLES: &[&str] = &[
    "strategies",
    "orders",
    "trades",
    "chain_txs",
    "funds_operations",
    "risk_events",
    "backtests",
    "audit_log",
    "control_state",
    "daemon",
    "canary_rollouts",
    "canary_transitions",
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The backup's file name (beside the manifest).
    pub file: String,
    pub sha256: String,
    /// `sqlite` or `postgres`.
    pub backend: String,
    /// The newest migration applied.
    pub schema_version: i64,
    pub row_counts: BTreeMap<String, i64>,
    pub created_at_ms: i64,
    pub bsc_bot_version: String,
}

impl Manifest {
    /// `<backup>.manifest.json`.
    pub fn path_of(backup: &Path) -> PathBuf {
        let mut name = backup.as_os_str().to_owned();
        name.push(".manifest.json");
        PathBuf::from(name)
    }

    pub fn read(backup: &Path) -> Result<Manifest, StoreError> {
        let path = Self::path_of(backup);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| StoreError::Io(format!("{}: {e}", path.display())))?;
        serde_json::from_str(&text)
            .map_err(|e| StoreError::Corrupt(format!("{}: {e}", path.display())))
    }
}

pub fn sha256_of(path: &Path) -> Result<String, StoreError> {
    let mut file = std::fs::File::open(path)
        .map_err(|e| StoreError::Io(format!("{}: {e}", path.display())))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)
        .map_err(|e| StoreError::Io(format!("{}: {e}", path.display())))?;
    Ok(format!("{:x}", hasher.finalize()))
}

impl Store {
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success = TRUE")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    pub async fn row_counts(&self) -> Result<BTreeMap<String, i64>, StoreError> {
        let mut counts = BTreeMap::new();
        for t in TABLES {
            let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {t}"))
                .fetch_one(&self.pool)
                .await?;
            counts.insert((*t).to_string(), n);
        }
        Ok(counts)
    }

    /// SQLite: a consistent copy of the live database into `dest` (which must not exist).
    pub async fn vacuum_into(&self, dest: &Path) -> Result<(), StoreError> {
        let text = dest.display().to_string().replace('\'', "''");
        sqlx::query(&format!("VACUUM INTO '{text}'"))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// PostgreSQL: `pg_dump -Fc` of `url` into `dest` at the snapshot the row counts were taken
    /// at; returns the counts and the schema version of that snapshot.
    pub async fn pg_dump(
        &self,
        url: &str,
        dest: &Path,
    ) -> Result<(BTreeMap<String, i64>, i64), StoreError> {
        // The exported snapshot lives as long as this transaction, which waits for pg_dump: the
        // session's idle limit (`IDLE_IN_TRANSACTION_MS`) would end it mid-dump, so it is lifted
        // in the same message as BEGIN. It reads only, so it locks no row.
        let mut tx = self
            .pool
            .begin_with(
                "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; \
                 SET LOCAL idle_in_transaction_session_timeout = 0",
            )
            .await?;
        let snapshot: String = sqlx::query("SELECT pg_export_snapshot() AS s")
            .fetch_one(&mut *tx)
            .await?
            .try_get("s")?;
        let mut counts = BTreeMap::new();
        for t in TABLES {
            let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {t}"))
                .fetch_one(&mut *tx)
                .await?;
            counts.insert((*t).to_string(), n);
        }
        let version: i64 =
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success = TRUE")
                .fetch_one(&mut *tx)
                .await?;
        let mut cmd = std::process::Command::new("pg_dump");
        cmd.arg("--format=custom")
            .arg(format!("--snapshot={snapshot}"))
            .arg("--file")
            .arg(dest)
            .arg(format!("--dbname={url}"));
        let out = tokio::task::spawn_blocking(move || cmd.output())
            .await
            .map_err(|e| StoreError::Io(format!("pg_dump: {e}")))?
            .map_err(|e| StoreError::Io(format!("pg_dump: {e} (install postgresql-client)")))?;
        tx.commit().await?;
        if !out.status.success() {
            return Err(StoreError::Io(format!(
                "pg_dump failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok((counts, version))
    }

    /// Delete history older than `cutoff_ms`: trades, orders that are settled (never one still
    /// pending or in flight, never one a kept trade points to) and audit rows. Counts per table;
    /// nothing is deleted on a dry run.
    pub async fn prune_before(
        &self,
        cutoff_ms: i64,
        dry_run: bool,
    ) -> Result<BTreeMap<String, i64>, StoreError> {
        const SETTLED: &str = "status IN ('filled', 'cancelled', 'failed', 'refused')";
        let orders_where = format!(
            "{SETTLED} AND updated_at < $1 AND id NOT IN \
             (SELECT order_id FROM trades WHERE order_id IS NOT NULL AND executed_at >= $1)"
        );
        let statements = [
            ("trades", "executed_at < $1".to_string()),
            ("orders", orders_where),
            ("audit_log", "created_at < $1".to_string()),
        ];
        let mut tx = self.pool.begin().await?;
        let mut counts = BTreeMap::new();
        for (table, condition) in &statements {
            let n: i64 =
                sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table} WHERE {condition}"))
                    .bind(cutoff_ms)
                    .fetch_one(&mut *tx)
                    .await?;
            counts.insert((*table).to_string(), n);
            if !dry_run {
                sqlx::query(&format!("DELETE FROM {table} WHERE {condition}"))
                    .bind(cutoff_ms)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(counts)
    }

    /// Give freed space back (SQLite `VACUUM`; PostgreSQL `VACUUM ANALYZE`).
    pub async fn vacuum(&self) -> Result<(), StoreError> {
        let sql = match self.backend {
            Backend::Sqlite => "VACUUM",
            Backend::Postgres => "VACUUM ANALYZE",
        };
        sqlx::query(sql).execute(&self.pool).await?;
        Ok(())
    }

    /// SQLite's own check of every page and index: `ok`, or what is wrong.
    pub async fn integrity_check(&self) -> Result<String, StoreError> {
        let rows: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.join("; "))
    }
}

/// What a SQLite file holds, read without changing it: `PRAGMA integrity_check`, the schema
/// version and the row counts.
pub async fn inspect_sqlite(
    path: &Path,
) -> Result<(String, i64, BTreeMap<String, i64>), StoreError> {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let url = format!("sqlite://{}?mode=ro", path.display());
    let mut conn = sqlx::AnyConnection::connect(&url)
        .await
        .map_err(StoreError::Connect)?;
    let integrity: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_all(&mut conn)
        .await?;
    let version: i64 =
        sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success = TRUE")
            .fetch_one(&mut conn)
            .await?;
    // A backup taken before a table existed has none to count (its manifest has no count either).
    let present: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
            .fetch_all(&mut conn)
            .await?;
    let mut counts = BTreeMap::new();
    for t in TABLES.iter().filter(|t| present.iter().any(|p| p == *t)) {
        let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {t}"))
            .fetch_one(&mut conn)
            .await?;
        counts.insert((*t).to_string(), n);
    }
    conn.close().await?;
    Ok((integrity.join("; "), version, counts))
}

/// Which backups in a folder to keep: the newest of each of the last `daily` days, `weekly` ISO
/// weeks and `monthly` months that have one; `stamps` are the backups' times (epoch ms).
pub fn retained(stamps: &[i64], daily: usize, weekly: usize, monthly: usize) -> Vec<i64> {
    use chrono::{Datelike, TimeZone, Utc};
    let mut sorted: Vec<i64> = stamps.to_vec();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    let mut keep = std::collections::BTreeSet::new();
    let mut pick = |key: &dyn Fn(i64) -> (i32, u32), limit: usize| {
        let mut seen = Vec::new();
        for &t in &sorted {
            let k = key(t);
            if !seen.contains(&k) {
                if seen.len() == limit {
                    break;
                }
                seen.push(k);
                keep.insert(t);
            }
        }
    };
    let date = |t: i64| Utc.timestamp_millis_opt(t).single().unwrap_or_default();
    pick(&|t| (date(t).year(), date(t).ordinal()), daily);
    pick(
        &|t| (date(t).iso_week().year(), date(t).iso_week().week()),
        weekly,
    );
    pick(&|t| (date(t).year(), date(t).month()), monthly);
    keep.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_keeps_the_newest_per_day_week_and_month() {
        let day = 86_400_000;
        // Two backups a day for 60 days, ending on 2026-03-01 (a Sunday).
        let end = 1_772_323_200_000; // 2026-03-01T00:00:00Z
        let stamps: Vec<i64> = (0..120).map(|i| end - i * day / 2).collect();
        let kept = retained(&stamps, 7, 4, 12);
        // 7 days (newest of each), plus older week and month representatives.
        // Mar 1 has one backup (00:00); each earlier day's newest is at 12:00.
        let newest_per_day: Vec<i64> = std::iter::once(end)
            .chain((1..7).map(|d| end - d * day + day / 2))
            .collect();
        for t in &newest_per_day {
            assert!(kept.contains(t), "{t}");
        }
        assert!(!kept.contains(&(end - day)), "the older one of Feb 28 goes");
        // Four ISO weeks add Feb 22, 15 and 8 (the newest week's is Mar 1); the months add
        // Jan 31 and Dec 31 (the oldest backup, 2025-12-31 12:00).
        assert_eq!(kept.len(), 7 + 3 + 2, "{kept:?}");
        assert!(kept.contains(&1_767_182_400_000));
    }
}
