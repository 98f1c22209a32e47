//! The database goes away mid-trading for 30 s (PostgreSQL stopped; SQLite locked by another
//! writer): no record is lost, nothing is placed while it is away, the outage goes on record as
//! the kill switch and a `store_unavailable` risk event, and trading resumes after
//! `emergency clear`.
//!
//! The PostgreSQL variant starts a cluster of its own (it is stopped mid-test), from the server
//! binaries `scripts/test.sh` installs; in CI their absence is a failure.

#![allow(clippy::unwrap_used, clippy::zombie_processes)]

mod common;
#[path = "common/pg.rs"]
mod pg;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::daemon::{write_config, RunningDaemon};
use common::exchange::{trade_frame, Cmd, FakeBinance};
use common::{create_grid, TestDb};
use pg::PgCluster;
use sqlx::Connection;

const OUTAGE: Duration = Duration::from_secs(30);
/// How long the daemon may take to notice: the heartbeat runs every second and a write waits
/// `busy_timeout_ms` (300 ms here) for a lock.
const DETECT_MS: i64 = 3_000;

fn now_ms() -> i64 {
    bsc_bot::clock::wall_clock_ms()
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Price swings across three grid levels every 100 ms, for `for_`.
async fn swing(ex: &FakeBinance, id: &mut i64, for_: Duration) {
    let until = Instant::now() + for_;
    let prices = ["100500", "103500"];
    while Instant::now() < until {
        *id += 1;
        ex.send(Cmd::Text(trade_frame(
            *id,
            prices[(*id % 2) as usize],
            now_ms(),
        )));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn metric(d: &RunningDaemon, name: &str) -> f64 {
    let (_, text) = d.text("/metrics").await;
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

enum Down {
    Pg(PgCluster),
    /// A connection holding the SQLite write lock.
    Sqlite(PathBuf, Option<sqlx::SqliteConnection>),
}

impl Down {
    async fn begin(&mut self) {
        match self {
            Down::Pg(c) => c.ctl("stop"),
            Down::Sqlite(path, conn) => {
                let url = format!("sqlite://{}", path.display());
                let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
                sqlx::query("BEGIN IMMEDIATE")
                    .execute(&mut c)
                    .await
                    .unwrap();
                *conn = Some(c);
            }
        }
    }

    async fn end(&mut self) {
        match self {
            Down::Pg(c) => c.ctl("start"),
            Down::Sqlite(_, conn) => {
                let mut c = conn.take().unwrap();
                sqlx::query("ROLLBACK").execute(&mut c).await.unwrap();
                c.close().await.unwrap();
            }
        }
    }
}

async fn outage_mid_trading(db: TestDb, mut down: Down) {
    let kind = db.kind;
    let ex = FakeBinance::start().await;
    // One daemon per database (a cluster's member resumes on its leases instead: see
    // tests/cluster.rs).
    let config = write_config(
        &db,
        &ex.url,
        "[database]\nbusy_timeout_ms = 300\n\n[cluster]\nenabled = false\n",
    );
    let id = create_grid(&db, "outage");
    let d = RunningDaemon::start(&db, &config, &[]).await;
    assert!(
        ex.wait_connections(0, Duration::from_secs(5)).await,
        "{kind}: no feed"
    );
    let store = db.store().await;
    let mut trade_id = 0;
    swing(&ex, &mut trade_id, Duration::from_secs(3)).await;
    let before = store.trade_count(id).await.unwrap();
    assert!(before > 0, "{kind}: trading before the outage");
    store.close().await;

    let t_down = now_ms();
    down.begin().await;
    swing(&ex, &mut trade_id, OUTAGE / 2).await;
    assert_eq!(
        metric(&d, "bsc_bot_store_down").await,
        1.0,
        "{kind}: the daemon knows"
    );
    let fills_while_down = metric(&d, "bsc_bot_fills_total").await;
    swing(&ex, &mut trade_id, OUTAGE / 2).await;
    assert_eq!(
        metric(&d, "bsc_bot_fills_total").await,
        fills_while_down,
        "{kind}: nothing traded while the store was down"
    );
    down.end().await;
    let t_up = now_ms();

    // Everything queued reaches the database; the outage is on record.
    let drained = d
        .until(Duration::from_secs(20), || async {
            metric(&d, "bsc_bot_persist_backlog").await == 0.0
                && metric(&d, "bsc_bot_store_down").await == 0.0
        })
        .await;
    assert!(drained.is_some(), "{kind}: backlog never drained");
    let store = db.store().await;
    let ks = store.kill_switch().await.unwrap();
    assert!(ks.engaged, "{kind}: kill switch engaged by the outage");
    assert_eq!(ks.reason.as_deref(), Some("database was unavailable"));
    let events = store.risk_events_since(t_down).await.unwrap();
    let outage = events.iter().find(|e| e.kind == "store_unavailable");
    assert!(outage.is_some(), "{kind}: {events:?}");
    eprintln!("{kind}: {}", outage.unwrap().message);

    // No record lost: every fill the engine made is a trade on record.
    let fills = metric(&d, "bsc_bot_fills_total").await;
    let trades = store.trade_count(id).await.unwrap();
    assert_eq!(
        trades as f64, fills,
        "{kind}: fills counted vs trades on record"
    );
    // Nothing placed while the store was down (after the daemon could notice).
    let orders = store.list_orders(Some(id), None).await.unwrap();
    let placed_down: Vec<_> = orders
        .iter()
        .filter(|o| o.created_at > t_down + DETECT_MS && o.created_at < t_up)
        .collect();
    assert!(
        placed_down.is_empty(),
        "{kind}: placed while down: {placed_down:?}"
    );
    let history = store.trading_history(Some(id), 100_000).await.unwrap();
    assert!(
        history
            .iter()
            .all(|t| !(t.executed_at > t_down + DETECT_MS && t.executed_at < t_up)),
        "{kind}: a trade while the store was down"
    );
    // The ledger on record equals its trades.
    let record = store
        .get_strategy(&bsc_bot::store::StrategyRef::Id(id))
        .await
        .unwrap();
    let state: serde_json::Value = serde_json::from_str(record.state.as_deref().unwrap()).unwrap();
    let dec = |v: &serde_json::Value| {
        v.as_str()
            .unwrap()
            .parse::<rust_decimal::Decimal>()
            .unwrap()
    };
    let mut quote = dec(&state["ledger"]["initial_quote"]);
    for t in &history {
        let q: rust_decimal::Decimal = t.quote_amount.parse().unwrap();
        if t.side == "buy" {
            quote -= q
        } else {
            quote += q
        }
    }
    assert_eq!(
        dec(&state["ledger"]["quote"]),
        quote,
        "{kind}: ledger = trades"
    );

    // Still halted until an operator clears the kill switch; then trading resumes.
    let mut id2 = trade_id;
    swing(&ex, &mut id2, Duration::from_secs(2)).await;
    assert_eq!(
        store.trade_count(id).await.unwrap(),
        trades,
        "{kind}: halted until cleared"
    );
    db.run(&[
        "--config",
        &config,
        "emergency",
        "clear",
        "--reason",
        "database back",
    ])
    .ok();
    swing(&ex, &mut id2, Duration::from_secs(3)).await;
    let resumed = d
        .until(Duration::from_secs(5), || async {
            store.trade_count(id).await.unwrap() > trades
        })
        .await;
    assert!(
        resumed.is_some(),
        "{kind}: trading resumed after emergency clear"
    );
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_locked_for_30s_mid_trading() {
    let db = TestDb::new("sqlite").await;
    let path = db.sqlite_path();
    outage_mid_trading(db, Down::Sqlite(path, None)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_for_30s_mid_trading() {
    let Some(cluster) = PgCluster::start() else {
        assert!(
            !in_ci(),
            "CI=true but no PostgreSQL server binaries under /usr/lib/postgresql"
        );
        eprintln!("NOTE: no PostgreSQL server binaries; the PostgreSQL outage variant did not run");
        return;
    };
    let db = TestDb::with_url(cluster.url());
    outage_mid_trading(db, Down::Pg(cluster)).await;
}
