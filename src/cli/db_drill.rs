//! `db drill` and what it shares with `db verify` and `db restore`: finding backups, checking
//! one against its manifest, and restoring one into a scratch database to prove it restores.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use super::CliError;
use crate::config::DatabaseConfig;
use crate::store::backup::{inspect_sqlite, sha256_of, Manifest};
use crate::store::Store;

fn io(e: impl std::fmt::Display) -> CliError {
    CliError::runtime(e.to_string())
}

/// The backups in `dir` (files named `bsc-bot-*.sqlite|.dump` with a readable manifest), with
/// their manifests' creation times, oldest first.
pub fn list_backups(dir: &Path) -> Result<Vec<(PathBuf, i64)>, CliError> {
    let mut backups: Vec<(PathBuf, i64)> = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| io(format!("{}: {e}", dir.display())))?;
    for entry in entries {
        let path = entry.map_err(io)?.path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        if name.starts_with("bsc-bot-") && (name.ends_with(".sqlite") || name.ends_with(".dump")) {
            if let Ok(m) = Manifest::read(&path) {
                backups.push((path, m.created_at_ms));
            }
        }
    }
    backups.sort_by_key(|(_, t)| *t);
    Ok(backups)
}

/// Everything `verify` checks; `Err` says what is wrong.
pub async fn verify(file: &Path) -> Result<Manifest, CliError> {
    if !file.is_file() {
        return Err(CliError::invalid(format!(
            "{}: no such backup file",
            file.display()
        )));
    }
    let manifest = Manifest::read(file)
        .map_err(|e| CliError::invalid(format!("no usable manifest beside the backup: {e}")))?;
    let sha = sha256_of(file).map_err(|e| CliError::invalid(e.to_string()))?;
    if sha != manifest.sha256 {
        return Err(CliError::invalid(format!(
            "{}: sha256 {sha} is not the manifest's {}: the file changed since the backup",
            file.display(),
            manifest.sha256
        )));
    }
    match manifest.backend.as_str() {
        "sqlite" => {
            let (integrity, version, counts) = inspect_sqlite(file)
                .await
                .map_err(|e| CliError::invalid(format!("{}: {e}", file.display())))?;
            if integrity != "ok" {
                return Err(CliError::invalid(format!("integrity check: {integrity}")));
            }
            if version != manifest.schema_version || counts != manifest.row_counts {
                return Err(CliError::invalid(
                    "schema version or row counts differ from the manifest",
                ));
            }
        }
        _ => {
            let out = std::process::Command::new("pg_restore")
                .arg("--list")
                .arg(file)
                .output()
                .map_err(|e| io(format!("pg_restore: {e}")))?;
            if !out.status.success() {
                return Err(CliError::invalid(format!(
                    "not a readable pg_dump archive: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
        }
    }
    Ok(manifest)
}

/// What a drill found.
#[derive(Debug, Serialize)]
pub struct DrillReport {
    pub backup: String,
    pub backend: String,
    pub created_at_ms: i64,
    /// The backup's schema, and the scratch database's once opened as the bot opens it (newer
    /// migrations applied).
    pub backup_schema_version: i64,
    pub schema_version: i64,
    /// Rows per table in the restored scratch database.
    pub row_counts: BTreeMap<String, i64>,
    pub matches_manifest: bool,
    pub elapsed_ms: u128,
    /// Nothing was written to the live database.
    pub live_database_untouched: bool,
}

/// Restore `file` (or the newest backup in `dir`) into a scratch database, open it as the bot
/// would, and count its rows against the manifest. SQLite: a copy in a private temporary folder.
/// PostgreSQL: a scratch database on the live server (`CREATE DATABASE`, dropped afterwards).
pub async fn drill(
    file: Option<PathBuf>,
    dir: &Path,
    live_url: &str,
    db: &DatabaseConfig,
) -> Result<DrillReport, CliError> {
    let started = Instant::now();
    let file = match file {
        Some(f) => f,
        None => list_backups(dir)?
            .pop()
            .map(|(f, _)| f)
            .ok_or_else(|| CliError::invalid(format!("{}: no backup to drill", dir.display())))?,
    };
    let manifest = verify(&file).await?;
    let (schema_version, row_counts) = match manifest.backend.as_str() {
        "sqlite" => {
            let scratch = tempfile::tempdir().map_err(io)?;
            let copy = scratch.path().join("drill.sqlite");
            std::fs::copy(&file, &copy).map_err(io)?;
            let store = Store::open(&format!("sqlite://{}", copy.display()), db).await?;
            let integrity = store.integrity_check().await?;
            if integrity != "ok" {
                return Err(CliError::runtime(format!(
                    "the restored copy failed its integrity check: {integrity}"
                )));
            }
            let found = (store.schema_version().await?, store.row_counts().await?);
            store.close().await;
            found
        }
        _ => drill_postgres(&file, live_url, db).await?,
    };
    let matches_manifest = manifest
        .row_counts
        .iter()
        .all(|(table, n)| row_counts.get(table) == Some(n));
    Ok(DrillReport {
        backup: file.display().to_string(),
        backend: manifest.backend.clone(),
        created_at_ms: manifest.created_at_ms,
        backup_schema_version: manifest.schema_version,
        schema_version,
        row_counts,
        matches_manifest,
        elapsed_ms: started.elapsed().as_millis(),
        live_database_untouched: true,
    })
}

/// `pg_restore` into `bsc_bot_drill_<ms>` on the live server, counted, then dropped.
async fn drill_postgres(
    file: &Path,
    live_url: &str,
    db: &DatabaseConfig,
) -> Result<(i64, BTreeMap<String, i64>), CliError> {
    if !(live_url.starts_with("postgres://") || live_url.starts_with("postgresql://")) {
        return Err(CliError::invalid(
            "a PostgreSQL backup is drilled on the configured PostgreSQL server (DATABASE_URL)",
        ));
    }
    let name = format!("bsc_bot_drill_{}", crate::clock::wall_clock_ms());
    let scratch_url = with_database(live_url, &name);
    let admin = Store::open(live_url, db).await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(admin.pool())
        .await
        .map_err(|e| io(format!("cannot create the scratch database: {e}")))?;
    let restored = async {
        let out = std::process::Command::new("pg_restore")
            .args(["--single-transaction", "--no-owner"])
            .arg(format!("--dbname={scratch_url}"))
            .arg(file)
            .output()
            .map_err(|e| io(format!("pg_restore: {e}")))?;
        if !out.status.success() {
            return Err(CliError::runtime(format!(
                "pg_restore into the scratch database failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let store = Store::open(&scratch_url, db).await?;
        let found = (store.schema_version().await?, store.row_counts().await?);
        store.close().await;
        Ok(found)
    }
    .await;
    if let Err(e) = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(admin.pool())
        .await
    {
        tracing::warn!(database = %name, error = %e, "cannot drop the drill's scratch database");
    }
    admin.close().await;
    restored
}

/// `postgres://user@host:port/db?opts` with another database name.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{name}", &base[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_scratch_database_keeps_the_server_and_options() {
        assert_eq!(
            super::with_database("postgres://u@h:5432/live?sslmode=disable", "d"),
            "postgres://u@h:5432/d?sslmode=disable"
        );
        assert_eq!(
            super::with_database("postgres://u@h", "d"),
            "postgres://u@h/d"
        );
    }
}
