//! The backup drill (SQLite and PostgreSQL): a daemon trading continuously, `db backup` taken
//! mid-stream, then restored into a fresh database: every trade committed before the backup is
//! there, row for row; `db verify` passes; a daemon on the restored database starts and trades on.
//! A corrupted backup is refused by `verify` and `restore` (nothing changed); a restore while a
//! daemon runs is refused; retention keeps the newest; `db prune` deletes old history only.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::daemon::{write_config, RunningDaemon};
use common::exchange::{trade_frame, Cmd, FakeBinance};
use common::{backends, TestDb};

/// 20 cells of 5 between 28,100 and 28,200: a price swinging across it trades every swing.
const PARAMS: &str = r#"{"lower_price":"28100","upper_price":"28200","grid_count":21,"base_order_size":"10","fee_bps":0}"#;

/// Every trade as `(id, strategy, side, price, base, quote, executed_at)`, in id order.
async fn trades(store: &bsc_bot::store::Store) -> Vec<(i64, String, String, String, i64)> {
    let mut rows: Vec<_> = store
        .trading_history(None, 100_000)
        .await
        .unwrap()
        .into_iter()
        .map(|t| {
            (
                t.id.unwrap(),
                t.side,
                t.price,
                t.quote_amount,
                t.executed_at,
            )
        })
        .collect();
    rows.sort();
    rows
}

fn backup_file(out: &serde_json::Value) -> String {
    out["backup"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_mid_stream_restore_verify_and_resume() {
    for kind in backends() {
        drill(kind).await;
    }
}

async fn drill(kind: &'static str) {
    let db = TestDb::new(kind).await;
    let ex = Arc::new(FakeBinance::start().await);
    let config = write_config(&db, &ex.url, "");
    db.run(&[
        "--config", &config, "strategy", "create", "-t", "grid", "-s", "BTC/USDT", "-n", "g", "-p",
        PARAMS,
    ])
    .ok();
    let store = db.store().await;
    let daemon = RunningDaemon::start(&db, &config, &[]).await;
    assert!(ex.wait_connections(1, Duration::from_secs(10)).await);
    // Prices swing across the grid every few milliseconds until told to stop.
    let running = Arc::new(AtomicBool::new(true));
    let feeder = {
        let (ex, running) = (ex.clone(), running.clone());
        tokio::spawn(async move {
            let mut id = 0;
            while running.load(Ordering::Relaxed) {
                for price in ["28195", "28105"] {
                    id += 1;
                    ex.send(Cmd::Text(trade_frame(
                        id,
                        price,
                        bsc_bot::clock::wall_clock_ms(),
                    )));
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        })
    };
    while store.trade_count(1).await.unwrap() < 100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = trades(&store).await;
    let out_dir = db.dir.path().join("backups");
    let backup = db
        .run(&[
            "--config",
            &config,
            "--json",
            "db",
            "backup",
            "--out",
            out_dir.to_str().unwrap(),
        ])
        .ok()
        .json();
    let file = backup_file(&backup);
    // The disaster-recovery drill, while the daemon trades: the newest backup restored into a
    // scratch database, counted against its manifest; the live database untouched.
    let before_drill = trades(&store).await.len();
    let drilled = db
        .run(&[
            "--config",
            &config,
            "--json",
            "db",
            "drill",
            "--dir",
            out_dir.to_str().unwrap(),
        ])
        .ok()
        .json();
    assert_eq!(
        drilled["backup"],
        file.as_str(),
        "{kind}: the newest backup"
    );
    assert_eq!(drilled["matches_manifest"], true, "{kind}: {drilled}");
    assert_eq!(
        drilled["row_counts"]["trades"], backup["manifest"]["row_counts"]["trades"],
        "{kind}"
    );
    assert!(
        trades(&store).await.len() >= before_drill,
        "{kind}: trading went on"
    );
    if kind == "postgres" {
        let left: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_database WHERE datname LIKE 'bsc_bot_drill_%'",
        )
        .fetch_one(store.pool())
        .await
        .unwrap();
        assert_eq!(left, 0, "the scratch database is dropped");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A restore while the daemon runs is refused.
    db.run(&["--config", &config, "db", "restore", &file])
        .fails_with(1, "a daemon runs on this database");
    running.store(false, Ordering::Relaxed);
    feeder.await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(daemon);
    // With nothing else writing: the drill leaves the live database exactly as it was.
    let untouched = db.snapshot().await;
    db.run(&[
        "--config",
        &config,
        "db",
        "drill",
        "--dir",
        out_dir.to_str().unwrap(),
    ])
    .ok();
    assert_eq!(
        db.snapshot().await,
        untouched,
        "{kind}: the drill wrote nothing live"
    );
    let after = trades(&store).await;
    assert!(
        after.len() > before.len(),
        "{kind}: trading went on during the backup"
    );
    let in_backup = backup["manifest"]["row_counts"]["trades"].as_i64().unwrap() as usize;
    assert!(
        in_backup >= before.len(),
        "{kind}: {in_backup} < {}",
        before.len()
    );

    // Verify, then restore into a fresh database.
    db.run(&["--config", &config, "db", "verify", &file]).ok();
    let fresh = TestDb::new(kind).await;
    let fresh_config = write_config(&fresh, &ex.url, "");
    let restored = fresh
        .run(&["--config", &fresh_config, "--json", "db", "restore", &file])
        .ok()
        .json();
    assert_eq!(restored["trades"].as_i64().unwrap() as usize, in_backup);
    let fresh_store = fresh.store().await;
    let got = trades(&fresh_store).await;
    assert_eq!(got.len(), in_backup);
    assert_eq!(
        &got[..before.len()],
        &before[..],
        "{kind}: every trade committed before the backup"
    );
    assert_eq!(
        &got[..],
        &after[..in_backup],
        "{kind}: the backup is a prefix of the record"
    );
    // The restored daemon starts and trades on.
    let d2 = RunningDaemon::start(&fresh, &fresh_config, &[]).await;
    assert!(ex.wait_connections(2, Duration::from_secs(10)).await);
    let mut id = 1_000_000;
    while fresh_store.trade_count(1).await.unwrap() <= in_backup as i64 {
        for price in ["28195", "28105"] {
            id += 1;
            ex.send(Cmd::Text(trade_frame(
                id,
                price,
                bsc_bot::clock::wall_clock_ms(),
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(id < 1_002_000, "{kind}: the restored daemon never traded");
    }
    drop(d2);

    // A corrupted backup: refused by verify and by restore, nothing changed.
    let bad = out_dir.join(format!(
        "corrupt-{}",
        std::path::Path::new(&file)
            .file_name()
            .unwrap()
            .to_string_lossy()
    ));
    let mut bytes = std::fs::read(&file).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&bad, &bytes).unwrap();
    let mut manifest = std::ffi::OsString::from(file.clone());
    manifest.push(".manifest.json");
    let mut bad_manifest = bad.as_os_str().to_owned();
    bad_manifest.push(".manifest.json");
    std::fs::copy(&manifest, &bad_manifest).unwrap();
    let bad = bad.to_str().unwrap();
    db.run(&["--config", &config, "db", "verify", bad])
        .fails_with(1, "sha256");
    let snapshot = fresh.snapshot().await;
    fresh
        .run(&["--config", &fresh_config, "db", "restore", bad])
        .fails_with(1, "sha256");
    assert_eq!(fresh.snapshot().await, snapshot, "{kind}: nothing changed");
    // A backup file that is not there is called so (not a manifest problem).
    let missing = out_dir.join("bsc-bot-nothing-here.sqlite");
    fresh
        .run(&[
            "--config",
            &fresh_config,
            "db",
            "verify",
            missing.to_str().unwrap(),
        ])
        .fails_with(1, "no such backup file");
    fresh_store.close().await;
    store.close().await;
}

#[tokio::test]
async fn retention_and_prune() {
    let db = TestDb::new("sqlite").await;
    db.run(&[
        "strategy", "create", "-t", "grid", "-s", "BTC/USDT", "-n", "g", "-p", PARAMS,
    ])
    .ok();
    let out = db.dir.path().join("b");
    let out = out.to_str().unwrap();
    for _ in 0..3 {
        db.run(&["db", "backup", "--out", out]).ok();
    }
    // Three backups of today: keeping one a day keeps the newest.
    let r = db
        .run(&["--json", "db", "backup", "--out", out, "--keep-daily", "1"])
        .ok()
        .json();
    assert_eq!(r["pruned"].as_array().unwrap().len(), 3, "{r}");
    let left: Vec<_> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(
        left.len(),
        2,
        "the newest backup and its manifest: {left:?}"
    );
    assert!(left
        .iter()
        .any(|n| n == r["manifest"]["file"].as_str().unwrap()));

    // Prune: history older than the horizon goes; a resting order stays.
    let store = db.store().await;
    let now = bsc_bot::clock::wall_clock_ms();
    let old = now - 100 * 86_400_000;
    let raw = sqlx::AnyPool::connect(&db.store_url()).await.unwrap();
    sqlx::query(
        "INSERT INTO audit_log (command, arguments, actor, outcome, detail, created_at) \
         VALUES ('x', '[]', 't', 'ok', NULL, $1)",
    )
    .bind(old)
    .execute(&raw)
    .await
    .unwrap();
    raw.close().await;
    let dry = db
        .run(&["--json", "db", "prune", "--older-than", "90d", "--dry-run"])
        .ok()
        .json();
    assert_eq!(dry["deleted"]["audit_log"], 1, "{dry}");
    let audits = store.audit_log(100).await.unwrap().len();
    let done = db
        .run(&["--json", "db", "prune", "--older-than", "90d"])
        .ok()
        .json();
    assert_eq!(done["deleted"]["audit_log"], 1);
    assert_eq!(done["deleted"]["orders"], 0, "no resting order is history");
    // The old row went; the prune itself is on record.
    assert_eq!(store.audit_log(100).await.unwrap().len(), audits);
    db.run(&["db", "prune", "--older-than", "90x"])
        .fails_with(1, "the unit is d, h or m");
    db.run(&["db", "vacuum"]).ok();
    store.close().await;
}

/// Every PostgreSQL session of the bot's is ended by the server when it idles inside a
/// transaction (a process gone mid-write must not hold its locks); the backup's snapshot
/// transaction idles while pg_dump runs, and is exempt: a dump that outlasts the limit still
/// completes, with the counts of its snapshot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dump_outlasts_the_sessions_idle_limit() {
    let db = TestDb::new("postgres").await;
    // The schema first, under the usual limit: a migration's statements must not race 20 ms.
    db.store().await.pool().close().await;
    let store = db.store_with_idle_limit(20).await;
    let dest = db.dir.path().join("snapshot.dump");
    let started = std::time::Instant::now();
    let (counts, version) = store.pg_dump(&db.store_url(), &dest).await.unwrap();
    assert!(
        started.elapsed() > Duration::from_millis(20),
        "pg_dump took {:?}",
        started.elapsed()
    );
    assert!(
        version > 0 && counts.contains_key("strategies"),
        "{counts:?}"
    );
    assert!(std::fs::metadata(&dest).unwrap().len() > 0);
}
