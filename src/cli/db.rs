//! `bsc-bot db …`: online backups with a manifest, verification, restore with a way back,
//! retention, pruning old history, vacuum.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde_json::json;

use super::db_drill::{list_backups, verify};
use super::output::print_json;
use super::{CliError, Context};
use crate::clock::{format_ms, wall_clock_ms};
use crate::store::backup::{inspect_sqlite, retained, sha256_of, Manifest};
use crate::store::{Backend, Store};

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// A consistent backup taken while the daemon writes, with a manifest (sha256, schema
    /// version, row counts); with --keep-*, older backups in the folder are pruned.
    Backup(BackupArgs),
    /// Check a backup: its sha256, SQLite's integrity check, schema and row counts against its
    /// manifest (PostgreSQL: the archive's table of contents).
    Verify { file: PathBuf },
    /// Replace the database with a verified backup (refused while a daemon runs); the current
    /// database is kept beside it first and put back if the restore fails.
    Restore { file: PathBuf },
    /// Disaster-recovery drill: restore the newest backup of `--dir` (or FILE) into a scratch
    /// database, verify it, count its rows against the manifest and report; the live database
    /// is not touched (a daemon may run meanwhile).
    Drill(DrillArgs),
    /// Delete trades, settled orders and audit rows older than the horizon (`90d`, `12h`).
    Prune {
        #[arg(long)]
        older_than: String,
        #[arg(long)]
        dry_run: bool,
    },
    /// Give freed space back to the file system.
    Vacuum,
}

#[derive(Debug, Args)]
pub struct DrillArgs {
    /// The backup to drill (default: the newest in `--dir`).
    file: Option<PathBuf>,
    /// Folder of backups (default: `backups` beside the config file).
    #[arg(long)]
    dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Folder for backups (default: `backups` beside the config file).
    #[arg(long)]
    out: Option<PathBuf>,
    #[arg(long)]
    keep_daily: Option<usize>,
    #[arg(long)]
    keep_weekly: Option<usize>,
    #[arg(long)]
    keep_monthly: Option<usize>,
}

pub async fn run(cmd: DbCommand, ctx: &Context) -> Result<(), CliError> {
    match cmd {
        DbCommand::Backup(args) => backup(args, ctx).await,
        DbCommand::Verify { file } => verify_cmd(&file, ctx).await,
        DbCommand::Restore { file } => restore(&file, ctx).await,
        DbCommand::Drill(args) => drill(args, ctx).await,
        DbCommand::Prune {
            older_than,
            dry_run,
        } => prune(&older_than, dry_run, ctx).await,
        DbCommand::Vacuum => {
            let store = ctx.open_store().await?;
            store.vacuum().await?;
            if ctx.json {
                return print_json(&json!({"vacuumed": true}));
            }
            println!("vacuumed");
            Ok(())
        }
    }
}

fn io(e: impl std::fmt::Display) -> CliError {
    CliError::runtime(e.to_string())
}

fn url(ctx: &Context) -> String {
    ctx.config.database.resolved_url(&ctx.config.base_dir)
}

/// The SQLite file the config names (`None` on PostgreSQL).
fn sqlite_file(ctx: &Context) -> Option<PathBuf> {
    crate::config::sqlite_path(&url(ctx)).map(PathBuf::from)
}

async fn backup(args: BackupArgs, ctx: &Context) -> Result<(), CliError> {
    let store = ctx.open_store().await?;
    let dir = args
        .out
        .clone()
        .unwrap_or_else(|| ctx.config.base_dir.join("backups"));
    // Backups hold the whole trading history: a folder of the operator's own, 0700.
    crate::private_files::private_dir(&dir).map_err(io)?;
    let now = wall_clock_ms();
    let stamp = chrono::DateTime::from_timestamp_millis(now)
        .unwrap_or_default()
        .format("%Y%m%d-%H%M%S%.3f")
        .to_string();
    // Made in a fresh private folder inside, then moved to its name without replacing anything:
    // a link planted at the predictable name is refused, never written through.
    let scratch = tempfile::Builder::new()
        .prefix(".backup-")
        .tempdir_in(&dir)
        .map_err(|e| io(format!("{}: {e}", dir.display())))?;
    let (file, counts, version) = match store.backend() {
        Backend::Sqlite => {
            let file = dir.join(format!("bsc-bot-{stamp}.sqlite"));
            let made = scratch.path().join("backup.sqlite");
            store.vacuum_into(&made).await?;
            let (integrity, version, counts) = inspect_sqlite(&made).await?;
            if integrity != "ok" {
                return Err(io(format!(
                    "the backup failed its integrity check: {integrity}"
                )));
            }
            crate::private_files::rename_new(&made, &file).map_err(io)?;
            (file, counts, version)
        }
        Backend::Postgres => {
            let file = dir.join(format!("bsc-bot-{stamp}.dump"));
            let made = scratch.path().join("backup.dump");
            let (counts, version) = store.pg_dump(&url(ctx), &made).await?;
            crate::private_files::rename_new(&made, &file).map_err(io)?;
            (file, counts, version)
        }
    };
    let manifest = Manifest {
        file: file
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default(),
        sha256: sha256_of(&file)?,
        backend: match store.backend() {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
        .into(),
        schema_version: version,
        row_counts: counts,
        created_at_ms: now,
        bsc_bot_version: env!("CARGO_PKG_VERSION").into(),
    };
    let text = serde_json::to_string_pretty(&manifest).map_err(io)?;
    crate::private_files::write_new(&Manifest::path_of(&file), text.as_bytes()).map_err(io)?;
    let pruned =
        if args.keep_daily.is_some() || args.keep_weekly.is_some() || args.keep_monthly.is_some() {
            apply_retention(
                &dir,
                args.keep_daily.unwrap_or(0),
                args.keep_weekly.unwrap_or(0),
                args.keep_monthly.unwrap_or(0),
            )?
        } else {
            Vec::new()
        };
    if ctx.json {
        return print_json(&json!({
            "backup": file.display().to_string(),
            "manifest": manifest,
            "pruned": pruned,
        }));
    }
    println!("backup   {}", file.display());
    println!("sha256   {}", manifest.sha256);
    println!(
        "rows     {}",
        manifest
            .row_counts
            .iter()
            .map(|(t, n)| format!("{t} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for p in &pruned {
        println!("pruned   {p}");
    }
    Ok(())
}

/// Delete the backups in `dir` retention does not keep; returns their names.
fn apply_retention(
    dir: &Path,
    daily: usize,
    weekly: usize,
    monthly: usize,
) -> Result<Vec<String>, CliError> {
    let backups = list_backups(dir)?;
    let stamps: Vec<i64> = backups.iter().map(|(_, t)| *t).collect();
    let keep = retained(&stamps, daily, weekly, monthly);
    let mut pruned = Vec::new();
    for (path, t) in backups {
        if !keep.contains(&t) {
            std::fs::remove_file(&path).map_err(io)?;
            let _ = std::fs::remove_file(Manifest::path_of(&path));
            pruned.push(path.display().to_string());
        }
    }
    Ok(pruned)
}

async fn drill(args: DrillArgs, ctx: &Context) -> Result<(), CliError> {
    let dir = args
        .dir
        .unwrap_or_else(|| ctx.config.base_dir.join("backups"));
    let report = super::db_drill::drill(args.file, &dir, &url(ctx), &ctx.config.database).await?;
    let matches = report.matches_manifest;
    if ctx.json {
        print_json(&report)?;
    } else {
        println!(
            "drill    {} ({} backup of {})",
            report.backup,
            report.backend,
            format_ms(report.created_at_ms)
        );
        println!(
            "restored into a scratch database in {} ms; the live database untouched",
            report.elapsed_ms
        );
        println!(
            "schema   {} (backup {})",
            report.schema_version, report.backup_schema_version
        );
        println!(
            "rows     {}",
            report
                .row_counts
                .iter()
                .map(|(t, n)| format!("{t} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        println!(
            "verdict  {}",
            if matches {
                "ok: every table as the manifest counted"
            } else {
                "MISMATCH: see the counts above"
            }
        );
    }
    if matches {
        Ok(())
    } else {
        Err(CliError::runtime(
            "the drill's row counts differ from the backup's manifest",
        ))
    }
}

async fn verify_cmd(file: &Path, ctx: &Context) -> Result<(), CliError> {
    let m = verify(file).await?;
    if ctx.json {
        return print_json(&json!({"verified": true, "manifest": m}));
    }
    println!(
        "ok: {} ({} backup of {}, schema {}, {} trades)",
        file.display(),
        m.backend,
        format_ms(m.created_at_ms),
        m.schema_version,
        m.row_counts.get("trades").copied().unwrap_or(0)
    );
    Ok(())
}

/// A restore replaces the database under a running daemon's feet: refused.
async fn refuse_if_running(store: &Store) -> Result<(), CliError> {
    match crate::views::running_daemon(store).await {
        Some(d) => Err(CliError::invalid(format!(
            "a daemon runs on this database (pid {} on {}): stop it first (`bsc-bot bot stop`)",
            d.pid, d.host
        ))),
        None => Ok(()),
    }
}

/// The restored database's trades, and the restore in its audit log.
async fn restored(
    store: &Store,
    audit: &crate::store::AuditContext,
    file: &Path,
) -> Result<i64, crate::store::StoreError> {
    let trades = store
        .row_counts()
        .await?
        .get("trades")
        .copied()
        .unwrap_or(0);
    store
        .record_command(
            audit,
            &format!("restored {}", file.display()),
            wall_clock_ms(),
        )
        .await?;
    Ok(trades)
}

async fn restore(file: &Path, ctx: &Context) -> Result<(), CliError> {
    let manifest = verify(file).await?;
    let audit = ctx.audit("db restore");
    let now = wall_clock_ms();
    match (sqlite_file(ctx), manifest.backend.as_str()) {
        (Some(target), "sqlite") => {
            let mut kept = None;
            if target.exists() {
                let store = ctx.open_store().await?;
                refuse_if_running(&store).await?;
                let copy = target.with_extension(format!("pre-restore-{now}.sqlite"));
                let beside = target.parent().unwrap_or(Path::new("."));
                let scratch = tempfile::Builder::new()
                    .prefix(".pre-restore-")
                    .tempdir_in(beside)
                    .map_err(io)?;
                let made = scratch.path().join("pre-restore.sqlite");
                store.vacuum_into(&made).await?;
                store.close().await;
                crate::private_files::rename_new(&made, &copy).map_err(io)?;
                kept = Some(copy);
            }
            if let Some(parent) = target.parent() {
                crate::private_files::create_private_dirs(parent).map_err(io)?;
            }
            let staging = target.with_extension("restoring");
            // A leftover (or a link planted there) goes; the copy is a new private file.
            let _ = std::fs::remove_file(&staging);
            {
                let mut from = std::fs::File::open(file).map_err(io)?;
                let mut to = crate::private_files::create_new(&staging).map_err(io)?;
                std::io::copy(&mut from, &mut to).map_err(io)?;
                to.sync_all().map_err(io)?;
            }
            for suffix in ["-wal", "-shm"] {
                let mut side = target.as_os_str().to_owned();
                side.push(suffix);
                let _ = std::fs::remove_file(PathBuf::from(side));
            }
            std::fs::rename(&staging, &target).map_err(io)?;
            // Open it as the bot will (newer migrations apply) and check it; put the old one back
            // if that fails.
            let check = async {
                let store = Store::open(&url(ctx), &ctx.config.database).await?;
                let integrity = store.integrity_check().await?;
                let trades = restored(&store, &audit, file).await?;
                store.close().await;
                Ok::<_, crate::store::StoreError>((integrity, trades))
            };
            match check.await {
                Ok((integrity, trades)) if integrity == "ok" => {
                    finish(ctx, file, &target, kept.as_deref(), trades)
                }
                outcome => {
                    if let Some(copy) = &kept {
                        std::fs::copy(copy, &target).map_err(io)?;
                    }
                    Err(CliError::runtime(format!(
                        "the restored database failed its check ({outcome:?}); the previous one is back"
                    )))
                }
            }
        }
        (None, "postgres") => {
            let store = ctx.open_store().await?;
            refuse_if_running(&store).await?;
            let dir = file.parent().unwrap_or(Path::new("."));
            let copy = dir.join(format!("pre-restore-{now}.dump"));
            let scratch = tempfile::Builder::new()
                .prefix(".pre-restore-")
                .tempdir_in(dir)
                .map_err(io)?;
            let made = scratch.path().join("pre-restore.dump");
            store.pg_dump(&url(ctx), &made).await?;
            store.close().await;
            crate::private_files::rename_new(&made, &copy).map_err(io)?;
            let out = std::process::Command::new("pg_restore")
                .args([
                    "--clean",
                    "--if-exists",
                    "--single-transaction",
                    "--no-owner",
                ])
                .arg(format!("--dbname={}", url(ctx)))
                .arg(file)
                .output()
                .map_err(|e| io(format!("pg_restore: {e}")))?;
            if !out.status.success() {
                return Err(CliError::runtime(format!(
                    "pg_restore failed (one transaction: nothing changed): {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
            let store = ctx.open_store().await?;
            let trades = restored(&store, &audit, file).await?;
            finish(ctx, file, Path::new("(DATABASE_URL)"), Some(&copy), trades)
        }
        (_, backend) => Err(CliError::invalid(format!(
            "a {backend} backup cannot be restored into this database ({})",
            ctx.config.database.redacted_url()
        ))),
    }
}

fn finish(
    ctx: &Context,
    file: &Path,
    target: &Path,
    kept: Option<&Path>,
    trades: i64,
) -> Result<(), CliError> {
    if ctx.json {
        return print_json(&json!({
            "restored": file.display().to_string(),
            "into": target.display().to_string(),
            "previous_kept_at": kept.map(|k| k.display().to_string()),
            "trades": trades,
        }));
    }
    println!("restored {} into {}", file.display(), target.display());
    if let Some(k) = kept {
        println!("previous database kept at {}", k.display());
    }
    println!("trades   {trades}");
    Ok(())
}

/// `90d`, `12h`, `30m` → milliseconds.
fn horizon_ms(text: &str) -> Result<i64, CliError> {
    let t = text.trim();
    let (n, unit) = t.split_at(t.len().saturating_sub(1));
    let n: i64 = n.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
        CliError::invalid(format!("--older-than {text:?}: expected e.g. 90d, 12h"))
    })?;
    let unit_ms = match unit {
        "d" => 86_400_000,
        "h" => 3_600_000,
        "m" => 60_000,
        _ => {
            return Err(CliError::invalid(format!(
                "--older-than {text:?}: the unit is d, h or m"
            )))
        }
    };
    Ok(n.saturating_mul(unit_ms))
}

async fn prune(older_than: &str, dry_run: bool, ctx: &Context) -> Result<(), CliError> {
    let horizon = horizon_ms(older_than)?;
    let store = ctx.open_store().await?;
    let audit = ctx.audit("db prune");
    let cutoff = wall_clock_ms() - horizon;
    let counts = ctx
        .audited(&store, &audit, async {
            let counts = store.prune_before(cutoff, dry_run).await?;
            if !dry_run {
                store
                    .record_command(
                        &audit,
                        &format!("pruned before {}: {counts:?}", format_ms(cutoff)),
                        wall_clock_ms(),
                    )
                    .await?;
            }
            Ok(counts)
        })
        .await?;
    if ctx.json {
        return print_json(&json!({"dry_run": dry_run, "before": cutoff, "deleted": counts}));
    }
    println!(
        "{} before {}: {}",
        if dry_run { "would delete" } else { "deleted" },
        format_ms(cutoff),
        counts
            .iter()
            .map(|(t, n)| format!("{n} {t}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}
