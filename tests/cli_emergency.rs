//! `emergency stop-all|status|clear`: 50 strategies in mixed states, atomicity under crashes.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use bsc_bot::store::{OrderStatus, PlacedOrder, Store};
use bsc_bot::strategy::StrategyStatus;
use common::{backends, create_grid, TestDb};

/// 50 strategies: ids ≡ 0 mod 3 paused, ≡ 1 mod 3 active, every 10th stopped; 3 orders each.
async fn fleet(db: &TestDb) -> Store {
    for i in 1..=50 {
        let name = format!("g{i:02}");
        let id = create_grid(db, &name);
        assert_eq!(id, i);
    }
    let store = db.store().await;
    for id in 1..=50i64 {
        for cell in 0..3 {
            store
                .insert_order(
                    &PlacedOrder {
                        strategy_id: id,
                        client_order_id: format!("s{id}-c{cell}"),
                        kind: if cell == 2 {
                            "stop_loss".into()
                        } else {
                            "limit".into()
                        },
                        side: if cell == 1 {
                            "sell".into()
                        } else {
                            "buy".into()
                        },
                        trigger_price: Some(format!("{}", 100_000 + cell * 1_000)),
                        quote_amount: Some("50".into()),
                        base_amount: None,
                        cell: Some(cell),
                        tag: None,
                        status: "pending",
                    },
                    1,
                )
                .await
                .unwrap();
        }
        if id % 10 == 0 {
            db.run(&["strategy", "stop", &id.to_string()]).ok();
        } else if id % 3 == 0 {
            db.run(&["strategy", "pause", &id.to_string()]).ok();
        }
    }
    store
}

#[tokio::test]
async fn stop_all_stops_fifty_mixed_strategies_and_cancels_their_orders() {
    for kind in backends() {
        let db = TestDb::new(kind).await;
        let store = fleet(&db).await;
        let pending_before: Vec<i64> = store
            .list_orders(None, Some(OrderStatus::Pending))
            .await
            .unwrap()
            .iter()
            .map(|o| o.id)
            .collect();
        assert_eq!(
            pending_before.len(),
            45 * 3,
            "{kind}: stopped strategies cancelled their own"
        );

        let r = db.run(&[
            "--json",
            "emergency",
            "stop-all",
            "--reason",
            "wallet drained?",
        ]);
        let v = r.ok().json();
        assert_eq!(v["kill_switch"], true, "{kind}");
        assert_eq!(v["reason"], "wallet drained?", "{kind}");
        let stopped: Vec<i64> = v["stopped_strategies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_i64().unwrap())
            .collect();
        let expected: Vec<i64> = (1..=50).filter(|i| i % 10 != 0).collect();
        assert_eq!(stopped, expected, "{kind}");
        let paused_before = v["stopped_strategies"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["previous_status"] == "paused")
            .count();
        assert_eq!(
            paused_before,
            (1..=50).filter(|i| i % 10 != 0 && i % 3 == 0).count(),
            "{kind}"
        );
        let cancelled: Vec<i64> = v["cancelled_orders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o.as_i64().unwrap())
            .collect();
        assert_eq!(cancelled, pending_before, "{kind}");

        let all = store.list_strategies(None).await.unwrap();
        assert!(
            all.iter().all(|s| s.status == StrategyStatus::Stopped),
            "{kind}"
        );
        assert!(
            store
                .list_orders(None, Some(OrderStatus::Pending))
                .await
                .unwrap()
                .is_empty(),
            "{kind}"
        );
        let ks = store.kill_switch().await.unwrap();
        assert!(
            ks.engaged && ks.reason.as_deref() == Some("wallet drained?"),
            "{kind}: {ks:?}"
        );
        let risk: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM risk_events WHERE kind = 'kill_switch'")
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert_eq!(risk, 1, "{kind}");

        // Human output names counts and ids.
        let again = db.run(&["emergency", "stop-all", "--reason", "again"]);
        assert!(
            again.ok().stdout.contains("stopped 0 strategies: none"),
            "{kind}: {again:#?}"
        );
    }
}

#[tokio::test]
async fn kill_switch_blocks_resume_and_active_create_until_cleared() {
    for kind in backends() {
        let db = TestDb::new(kind).await;
        let a = create_grid(&db, "a");
        db.run(&["strategy", "pause", &a.to_string()]).ok();
        db.run(&["emergency", "stop-all", "--reason", "drill"]).ok();
        let b = db.run(&[
            "--json",
            "strategy",
            "create",
            "-t",
            "grid",
            "-s",
            "BTC/USDT",
            "-n",
            "b",
            "-p",
            common::GRID_PARAMS,
            "--paused",
        ]);
        let b = b.ok().json()["strategy"]["id"].as_i64().unwrap();

        let before = db.snapshot().await;
        db.run(&[
            "strategy",
            "create",
            "-t",
            "grid",
            "-s",
            "BTC/USDT",
            "-n",
            "c",
            "-p",
            common::GRID_PARAMS,
        ])
        .fails_with(
            1,
            "kill switch is engaged (drill); creating an active strategy is refused",
        );
        db.run(&["strategy", "resume", &b.to_string()])
            .fails_with(1, "kill switch is engaged (drill)");
        db.run(&["emergency", "stop-all", "--reason", "  "])
            .fails_with(1, "--reason must not be empty");
        assert_eq!(db.snapshot().await, before, "{kind}");

        let st = db.run(&["emergency", "status", "--json"]).ok().json();
        assert_eq!(st["kill_switch"], true, "{kind}");
        assert_eq!(st["reason"], "drill", "{kind}");
        assert!(
            db.run(&["emergency", "status"])
                .ok()
                .stdout
                .contains("kill switch ENGAGED"),
            "{kind}"
        );

        db.run(&["emergency", "clear", "--reason", "drill over"])
            .ok();
        db.run(&["emergency", "clear", "--reason", "twice"])
            .fails_with(1, "not engaged");
        assert_eq!(
            db.run(&["emergency", "status", "--json"]).ok().json()["kill_switch"],
            false,
            "{kind}"
        );
        // Strategies stay stopped; paused ones created during the switch can now resume.
        let s = db
            .run(&["strategy", "status", &a.to_string(), "--json"])
            .ok()
            .json();
        assert_eq!(s["strategy"]["status"], "stopped", "{kind}");
        db.run(&["strategy", "resume", &b.to_string()]).ok();
        create_grid(&db, "c");
    }
}

/// A crash anywhere inside stop-all leaves the database exactly as before; a completed run
/// leaves all of it. Crashes are injected at two points inside the transaction, and also by
/// SIGKILL from outside while the transaction is open.
#[tokio::test]
async fn stop_all_is_all_or_nothing_when_interrupted() {
    for kind in backends() {
        let db = TestDb::new(kind).await;
        let _store = fleet(&db).await;
        let before = db.snapshot().await;

        for point in ["emergency.after_strategies", "emergency.before_commit"] {
            let out = db
                .cmd(&["emergency", "stop-all", "--reason", "crash test"])
                .env("BSC_BOT_FAILPOINTS", format!("{point}=abort"))
                .output()
                .unwrap();
            assert_eq!(
                out.status.code(),
                None,
                "{kind}: {point} should kill the process"
            );
            assert_eq!(
                db.snapshot().await,
                before,
                "{kind}: crash at {point} left a partial stop-all"
            );
        }

        // kill -9 from outside while the transaction is held open.
        let mut child = db
            .cmd(&["emergency", "stop-all", "--reason", "sigkill test"])
            .env(
                "BSC_BOT_FAILPOINTS",
                "emergency.after_strategies=sleep:3000",
            )
            .spawn()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        child.kill().unwrap();
        child.wait().unwrap();
        // PostgreSQL aborts the dead client's transaction as soon as it notices the socket close.
        let mut same = false;
        for _ in 0..50 {
            if db.snapshot().await == before {
                same = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            same,
            "{kind}: SIGKILL mid-transaction left a partial stop-all"
        );

        db.run(&["emergency", "stop-all", "--reason", "for real"])
            .ok();
        let store = db.store().await;
        assert!(store
            .list_strategies(None)
            .await
            .unwrap()
            .iter()
            .all(|s| s.status == StrategyStatus::Stopped));
        assert!(store
            .list_orders(None, Some(OrderStatus::Pending))
            .await
            .unwrap()
            .is_empty());
        assert!(store.kill_switch().await.unwrap().engaged);
    }
}

/// A daemon gone in the middle of a write (cut off from the network, or frozen) leaves its
/// PostgreSQL session inside a transaction holding the strategy rows it was updating; the
/// database cannot tell that from a slow client. `emergency stop-all` must update those rows:
/// it goes through once the server has ended the silent session (the daemon's idle limit),
/// not when TCP gives up on it hours later; the gone daemon's write then fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_all_is_not_held_up_by_a_daemon_gone_mid_write() {
    const IDLE_MS: u64 = 1_000;
    let db = TestDb::new("postgres").await;
    let id = create_grid(&db, "held");
    let gone = db.store_with_idle_limit(IDLE_MS).await;
    let mut write = gone.begin_write().await.unwrap();
    sqlx::query("UPDATE strategies SET updated_at = updated_at + 1 WHERE id = $1")
        .bind(id)
        .execute(&mut *write)
        .await
        .unwrap();
    let began = std::time::Instant::now();
    let mut cli = db
        .cmd(&["--json", "emergency", "stop-all", "--reason", "drill"])
        .spawn()
        .unwrap();
    let status = loop {
        if let Some(status) = cli.try_wait().unwrap() {
            break status;
        }
        if began.elapsed() > Duration::from_secs(20) {
            let _ = cli.kill();
            let _ = cli.wait();
            panic!("emergency stop-all still waiting after 20 s behind a daemon gone mid-write");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!(
        "stop-all done {} ms after it began (idle limit {IDLE_MS} ms)",
        began.elapsed().as_millis()
    );
    assert!(status.success(), "stop-all: {status}");
    let store = db.store().await;
    let strategy = store
        .get_strategy(&bsc_bot::store::StrategyRef::Id(id))
        .await
        .unwrap();
    assert_eq!(strategy.status, StrategyStatus::Stopped);
    assert!(store.kill_switch().await.unwrap().engaged);
    assert!(
        write.commit().await.is_err(),
        "the gone daemon's write committed after its session was ended"
    );
}
