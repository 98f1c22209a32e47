//! The running daemon obeys the control plane within a second (also when the CLI's poke is lost),
//! survives kill -9 without duplicating or losing orders, and alerts without slowing trading.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::daemon::{write_config, RunningDaemon, TOKEN};
use common::exchange::{capture_frames, restamp, trade_frame, Cmd, FakeBinance, Receiver};
use common::{backends, TestDb};

const PARAMS: &str = r#"{"lower_price":"28100","upper_price":"28200","grid_count":21,"base_order_size":"100","fee_bps":0}"#;

fn now_ms() -> i64 {
    bsc_bot::clock::wall_clock_ms()
}

/// Run a CLI command; `poke` decides whether it can reach the daemon's API (the token).
fn cli(db: &TestDb, config: &str, poke: bool, args: &[&str]) -> common::Run {
    let mut argv = vec!["--config", config];
    argv.extend_from_slice(args);
    let mut c = db.cmd(&argv);
    if poke {
        c.env("BSC_BOT_API_TOKEN", TOKEN);
    }
    common::Run::from(c.output().unwrap())
}

/// A paper grid on BTC/USDT (the fake exchange's prices), created without poking a daemon.
fn create_btc_grid(db: &TestDb, config: &str, name: &str) {
    cli(
        db,
        config,
        false,
        &[
            "strategy", "create", "-t", "grid", "-s", "BTC/USDT", "-n", name, "-p", PARAMS,
        ],
    )
    .ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_and_stop_all_take_effect_within_a_second() {
    for kind in backends() {
        let db = TestDb::new(kind).await;
        let ex = FakeBinance::start().await;
        let config = write_config(&db, &ex.url, "");
        // The production default poll interval (250 ms), so the lost-poke case is realistic.
        let text = std::fs::read_to_string(&config)
            .unwrap()
            .replace("control_poll_ms = 100", "control_poll_ms = 250");
        std::fs::write(&config, text).unwrap();
        for name in ["a", "b", "c"] {
            create_btc_grid(&db, &config, name);
        }
        let d = RunningDaemon::start(&db, &config, &[]).await;
        for (poke, id) in [(true, "1"), (false, "2")] {
            // From the command's start (printed: the README's figures) and from its return
            // (asserted: what the daemon promises, whatever a loaded machine's process start costs).
            let t0 = Instant::now();
            cli(&db, &config, poke, &["strategy", "pause", id]).ok();
            let returned = Instant::now();
            let took = d
                .until(Duration::from_secs(3), || async {
                    d.engine_status(id.parse().unwrap()).await.as_deref() == Some("paused")
                })
                .await;
            let total = t0.elapsed();
            let after = returned.elapsed();
            assert!(
                took.is_some(),
                "{kind}: pause never reached the engine (poke {poke})"
            );
            assert!(
                after < Duration::from_secs(1),
                "{kind}: pause applied {after:?} after the command returned (poke {poke})"
            );
            eprintln!("{kind}: pause applied {total:?} after the command started (poke {poke})");
        }
        // A paused strategy does not trade: a crossing price fills nothing for it.
        let frames = capture_frames(400);
        for f in &frames {
            ex.send(Cmd::Text(restamp(f, now_ms())));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let store = db.store().await;
        let paused_fills: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM trades WHERE strategy_id IN (1, 2)")
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert_eq!(paused_fills, 0, "{kind}: paused strategies traded");

        let t0 = Instant::now();
        cli(
            &db,
            &config,
            false,
            &["emergency", "stop-all", "--reason", "latency drill"],
        )
        .ok();
        let returned = Instant::now();
        let took = d
            .until(Duration::from_secs(3), || async {
                let mut all = true;
                for id in 1..=3 {
                    all &= d.engine_status(id).await.as_deref() == Some("stopped");
                }
                all
            })
            .await;
        let total = t0.elapsed();
        let after = returned.elapsed();
        assert!(
            took.is_some() && after < Duration::from_secs(1),
            "{kind}: stop-all applied {after:?} after the command returned"
        );
        eprintln!("{kind}: stop-all applied {total:?} after the command started (poke lost)");
        // Nothing trades any more, and no order is left pending.
        let before: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM trades")
            .fetch_one(store.pool())
            .await
            .unwrap();
        ex.send(Cmd::Text(trade_frame(9, "28000.00", now_ms())));
        ex.send(Cmd::Text(trade_frame(10, "28300.00", now_ms())));
        tokio::time::sleep(Duration::from_millis(500)).await;
        let after: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM trades")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(before, after, "{kind}: traded after stop-all");
        let pending: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM orders WHERE status = 'pending'")
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert_eq!(pending, 0, "{kind}: orders left pending after stop-all");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_and_restart_resume_without_duplicate_or_lost_orders() {
    for kind in backends() {
        let db = TestDb::new(kind).await;
        let ex = FakeBinance::start().await;
        let config = write_config(&db, &ex.url, "");
        create_btc_grid(&db, &config, "k");
        let frames = capture_frames(6_000);
        let mut d = RunningDaemon::start(&db, &config, &[]).await;
        assert!(ex.wait_connections(0, Duration::from_secs(5)).await);
        for f in &frames[..3_000] {
            ex.send(Cmd::Text(restamp(f, now_ms())));
        }
        let store = db.store().await;
        let filled = d
            .until(Duration::from_secs(10), || async {
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM trades")
                    .fetch_one(store.pool())
                    .await
                    .unwrap();
                n >= 5
            })
            .await;
        assert!(filled.is_some(), "{kind}: no fills before the kill");
        // kill -9: no chance to flush anything.
        d.child.kill().unwrap();
        d.child.wait().unwrap();
        drop(d);
        // Its heartbeat is still recent, but its process is gone: not running.
        let status = cli(&db, &config, false, &["--json", "bot", "status"])
            .ok()
            .json();
        assert_eq!(status["running"], false, "{kind}: {status}");
        check_consistent(&db, kind, "after kill -9").await;
        let pending_before = pending_ids(&db).await;

        // The restart's first write (re-issued orders matched with those on record) fails once
        // and is retried: still no duplicate, and the same orders stay pending.
        let d = RunningDaemon::start_with_env(
            &db,
            &config,
            &[],
            &[("BSC_BOT_FAILPOINTS", "writer.after_orders=fail_once")],
        )
        .await;
        let conns = ex.connections();
        assert!(ex.wait_connections(conns, Duration::from_secs(5)).await);
        tokio::time::sleep(Duration::from_millis(600)).await;
        check_consistent(&db, kind, "after restart").await;
        assert_eq!(
            pending_ids(&db).await,
            pending_before,
            "{kind}: restored orders were not matched with those on record"
        );
        for f in &frames[3_000..] {
            ex.send(Cmd::Text(restamp(f, now_ms())));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        check_consistent(&db, kind, "after trading on").await;
        let run_names = pending_names(&db).await;
        let runs: std::collections::BTreeSet<&str> = run_names
            .iter()
            .map(|n| n.rsplit_once("-o").unwrap().0)
            .collect();
        assert_eq!(
            runs.len(),
            1,
            "{kind}: re-used orders keep this run's name (the one its swaps carry): {runs:?}"
        );

        // A cell whose order on record was settled meanwhile gets a new row at restore: it is
        // stamped with the time of the restart, not 0.
        drop(d);
        let store = db.store().await;
        sqlx::query("UPDATE orders SET status = 'cancelled' WHERE id = (SELECT MIN(id) FROM orders WHERE status = 'pending')")
            .execute(store.pool())
            .await
            .unwrap();
        let before_restart = now_ms();
        let d = RunningDaemon::start(&db, &config, &[]).await;
        // The re-issued row goes on record through the writer, soon after the core is up.
        let newest_pending = || async {
            sqlx::query_scalar::<_, i64>(
                "SELECT MAX(created_at) FROM orders WHERE status = 'pending'",
            )
            .fetch_one(store.pool())
            .await
            .unwrap()
        };
        d.until(Duration::from_secs(5), || async {
            newest_pending().await >= before_restart
        })
        .await;
        let newest = newest_pending().await;
        assert!(
            newest >= before_restart,
            "{kind}: the re-issued order's creation time {newest} is not the restart's"
        );
        check_consistent(&db, kind, "after a restart with a new row").await;
        store.close().await;
        drop(d);
    }
}

async fn pending_names(db: &TestDb) -> Vec<String> {
    let store = db.store().await;
    let names = sqlx::query_scalar(
        "SELECT client_order_id FROM orders WHERE status = 'pending' ORDER BY id",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    store.close().await;
    names
}

async fn pending_ids(db: &TestDb) -> Vec<i64> {
    let store = db.store().await;
    let ids = sqlx::query_scalar("SELECT id FROM orders WHERE status = 'pending' ORDER BY id")
        .fetch_all(store.pool())
        .await
        .unwrap();
    store.close().await;
    ids
}

/// The record agrees with itself and with the strategy's persisted state:
/// one pending order per cell, every fill in the state is a trade on record.
async fn check_consistent(db: &TestDb, kind: &str, when: &str) {
    let store = db.store().await;
    let dupes: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT strategy_id, tag FROM orders WHERE status = 'pending' GROUP BY strategy_id, tag HAVING COUNT(*) > 1) d",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(dupes, 0, "{kind} {when}: duplicated pending orders");
    let undated: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM orders WHERE created_at <= 0 OR updated_at <= 0")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(undated, 0, "{kind} {when}: orders stamped with time 0");
    let s = store
        .get_strategy(&bsc_bot::store::StrategyRef::Id(1))
        .await
        .unwrap();
    let state: serde_json::Value = serde_json::from_str(s.state.as_deref().unwrap()).unwrap();
    let ledger_fills = state["ledger"]["fills"].as_i64().unwrap();
    let trades = store.trade_count(1).await.unwrap();
    assert_eq!(
        ledger_fills, trades,
        "{kind} {when}: state and trades disagree"
    );
    // Every cell is either holding (sell pending) or empty (buy pending): 20 pending orders.
    let pending: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM orders WHERE status = 'pending' AND strategy_id = 1",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    let cells = state["strategy"]["cells"].as_array().unwrap();
    let live = cells
        .iter()
        .filter(|c| c["state"] == "empty" || c["state"] == "holding")
        .count() as i64;
    assert_eq!(
        pending, live,
        "{kind} {when}: pending orders do not match the cells"
    );
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_are_delivered_retried_deduplicated_and_never_block() {
    let db = TestDb::new("sqlite").await;
    let ex = FakeBinance::start().await;
    // This receiver fails the first two deliveries and answers every request only after 2 s.
    let slow = Receiver::start(2, Duration::from_secs(2)).await;
    let config = write_config(
        &db,
        &ex.url,
        &format!(
            "[alerts]\nwebhook_url = \"{}\"\nmax_attempts = 4\ndedupe_window_secs = 300\n",
            slow.url
        ),
    );
    create_btc_grid(&db, &config, "x");
    let d = RunningDaemon::start(&db, &config, &[]).await;
    assert!(ex.wait_connections(0, Duration::from_secs(5)).await);
    // Trading and control keep their pace while alert deliveries hang for seconds.
    cli(
        &db,
        &config,
        false,
        &["emergency", "stop-all", "--reason", "alert drill"],
    )
    .ok();
    let t0 = Instant::now();
    let stopped = d
        .until(Duration::from_secs(3), || async {
            d.engine_status(1).await.as_deref() == Some("stopped")
        })
        .await;
    assert!(
        stopped.is_some() && t0.elapsed() < Duration::from_secs(1),
        "control slowed by alerts: {:?}",
        t0.elapsed()
    );
    // The same emergency again within the window: deduplicated.
    cli(
        &db,
        &config,
        false,
        &["emergency", "clear", "--reason", "drill over"],
    )
    .ok();
    // Time for the daemon to see the clear (its poll is 100 ms here; a loaded machine's slower):
    // the second stop-all is then a new transition, whose alert the window deduplicates.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    cli(
        &db,
        &config,
        false,
        &["emergency", "stop-all", "--reason", "alert drill"],
    )
    .ok();
    // Deliveries: daemon_started (2 failures, then success) and one emergency_stop.
    let delivered = d
        .until(Duration::from_secs(20), || async {
            let kinds: Vec<String> = slow
                .bodies()
                .iter()
                .map(|b| b["kind"].as_str().unwrap_or("").to_string())
                .collect();
            kinds.contains(&"daemon_started".to_string())
                && kinds.contains(&"emergency_stop".to_string())
        })
        .await;
    assert!(
        delivered.is_some(),
        "alerts not delivered: {:?}",
        slow.bodies()
    );
    let bodies = slow.bodies();
    assert_eq!(
        bodies
            .iter()
            .filter(|b| b["kind"] == "emergency_stop")
            .count(),
        1,
        "{bodies:?}"
    );
    let e = bodies
        .iter()
        .find(|b| b["kind"] == "emergency_stop")
        .unwrap();
    assert_eq!(e["severity"], "critical");
    assert!(e["message"].as_str().unwrap().contains("alert drill"));
    assert!(
        slow.attempts.load(std::sync::atomic::Ordering::SeqCst) >= 4,
        "2 failed attempts were retried"
    );
    let (_, text) = d.text("/metrics").await;
    assert!(
        text.contains("bsc_bot_alerts_total{outcome=\"deduplicated\"} 1"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_cancel_reaches_the_running_grid() {
    for kind in backends() {
        let db = TestDb::new(kind).await;
        let ex = FakeBinance::start().await;
        let config = write_config(&db, &ex.url, "");
        create_btc_grid(&db, &config, "c");
        let d = RunningDaemon::start(&db, &config, &[]).await;
        assert!(ex.wait_connections(0, Duration::from_secs(5)).await);
        // The first price starts the grid: its resting orders go on record.
        ex.send(Cmd::Text(trade_frame(1, "28150.00", now_ms())));
        let listed = d
            .until(Duration::from_secs(5), || async {
                let v = cli(
                    &db,
                    &config,
                    false,
                    &[
                        "--json",
                        "strategy",
                        "conditional",
                        "list",
                        "--strategy-id",
                        "1",
                    ],
                )
                .json();
                v["orders"].as_array().map(|a| a.len()).unwrap_or(0) == 20
            })
            .await;
        assert!(
            listed.is_some(),
            "{kind}: the running grid's 20 resting orders are not listed"
        );
        let orders = cli(
            &db,
            &config,
            false,
            &[
                "--json",
                "strategy",
                "conditional",
                "list",
                "--strategy-id",
                "1",
            ],
        )
        .json();
        let buy = orders["orders"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["trigger_price"] == "28145" && o["side"] == "buy")
            .unwrap()
            .clone();
        cli(
            &db,
            &config,
            true,
            &["strategy", "conditional", "cancel", &buy["id"].to_string()],
        )
        .ok();
        let t0 = Instant::now();
        // The grid learns of it: that cell goes idle in its persisted state (read from the
        // store alone, so the polling costs no process start).
        let store = db.store().await;
        let cell = buy["cell"].as_u64().unwrap() as usize;
        let idle = d
            .until(Duration::from_secs(3), || async {
                let rec = store
                    .get_strategy(&bsc_bot::store::StrategyRef::Id(1))
                    .await
                    .unwrap();
                let state: serde_json::Value =
                    serde_json::from_str(rec.state.as_deref().unwrap_or("{}")).unwrap();
                state["strategy"]["cells"][cell]["state"] == "idle"
            })
            .await;
        assert!(
            idle.is_some() && t0.elapsed() < Duration::from_secs(1),
            "{kind}: cancel applied {:?} after the command returned",
            t0.elapsed()
        );
        // A price through the cancelled level fills the other buys, never the cancelled one.
        ex.send(Cmd::Text(trade_frame(2, "28100.00", now_ms())));
        let filled = d
            .until(Duration::from_secs(5), || async {
                let buys: i64 =
                    sqlx::query_scalar("SELECT COUNT(*) FROM trades WHERE side = 'buy'")
                        .fetch_one(store.pool())
                        .await
                        .unwrap();
                buys > 0
            })
            .await;
        // Every buy the price crossed, once the fills settle.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let filled_at: Vec<String> =
            sqlx::query_scalar("SELECT price FROM trades WHERE side = 'buy' ORDER BY id")
                .fetch_all(store.pool())
                .await
                .unwrap();
        assert!(
            filled.is_some() && !filled_at.contains(&"28145".to_string()),
            "{kind}: {filled_at:?}"
        );
        store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_and_telegram_receive_alerts() {
    let db = TestDb::new("sqlite").await;
    let ex = FakeBinance::start().await;
    let slack = Receiver::start(0, Duration::ZERO).await;
    let telegram = Receiver::start(0, Duration::ZERO).await;
    let api_base = telegram.url.trim_end_matches("/hook").to_string();
    let config = write_config(
        &db,
        &ex.url,
        &format!("[alerts]\ntelegram_chat_id = \"-1001\"\ntelegram_api_url = \"{api_base}\"\n"),
    );
    let d = RunningDaemon::start_with_env(
        &db,
        &config,
        &["--no-strategies"],
        &[
            ("BSC_BOT_SLACK_WEBHOOK_URL", slack.url.as_str()),
            ("BSC_BOT_TELEGRAM_BOT_TOKEN", "123:secret"),
        ],
    )
    .await;
    let got = d
        .until(Duration::from_secs(10), || async {
            !slack.bodies().is_empty() && !telegram.bodies().is_empty()
        })
        .await;
    assert!(
        got.is_some(),
        "slack {:?} telegram {:?}",
        slack.bodies(),
        telegram.bodies()
    );
    let s = &slack.bodies()[0];
    assert!(
        s["text"].as_str().unwrap().contains("daemon_started"),
        "{s}"
    );
    let t = &telegram.bodies()[0];
    assert_eq!(t["chat_id"], "-1001");
    assert!(
        t["text"].as_str().unwrap().contains("daemon started"),
        "{t}"
    );
}

/// `strategy create` on a symbol the daemon does not watch yet: the feed resubscribes with the new
/// stream (a new connection), and the new strategy trades on its own symbol's prices only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strategy_on_a_new_symbol_subscribes_and_trades() {
    for kind in backends() {
        let db = TestDb::new(kind).await;
        let ex = FakeBinance::start().await;
        let config = write_config(&db, &ex.url, "");
        create_btc_grid(&db, &config, "btc");
        let d = RunningDaemon::start(&db, &config, &[]).await;
        assert!(ex.wait_connections(0, Duration::from_secs(5)).await);
        let before = ex.connections();
        let eth = cli(
            &db,
            &config,
            true,
            &[
                "--json", "strategy", "create", "-t", "grid", "-s", "ETH/USDT", "-n", "eth", "-p",
                r#"{"lower_price":"1800","upper_price":"1900","grid_count":11,"base_order_size":"100","fee_bps":0}"#,
            ],
        )
        .ok()
        .json();
        let eth_id = eth["strategy"]["id"].as_i64().unwrap();
        let resubscribed = d
            .until(Duration::from_secs(3), || async {
                ex.connections() > before
                    && ex
                        .paths
                        .lock()
                        .unwrap()
                        .last()
                        .is_some_and(|p| p.contains("ethusdt@trade") && p.contains("btcusdt@trade"))
            })
            .await;
        assert!(
            resubscribed.is_some(),
            "{kind}: no resubscription: {:?}",
            ex.paths.lock().unwrap()
        );
        let eth_frame = |id: i64, price: &str| {
            trade_frame(id, price, now_ms())
                .replace("btcusdt@trade", "ethusdt@trade")
                .replace("BTCUSDT", "ETHUSDT")
        };
        // A BTC price far below the ETH range must not fill ETH orders; ETH prices must.
        ex.send(Cmd::Text(trade_frame(1, "1700.00", now_ms())));
        ex.send(Cmd::Text(eth_frame(2, "1855.00")));
        ex.send(Cmd::Text(eth_frame(3, "1821.00")));
        let store = db.store().await;
        let traded = d
            .until(Duration::from_secs(5), || async {
                store.trade_count(eth_id).await.unwrap() > 0
            })
            .await;
        assert!(
            traded.is_some(),
            "{kind}: the new symbol's strategy never traded"
        );
        let prices: Vec<String> =
            sqlx::query_scalar("SELECT price FROM trades WHERE strategy_id = $1")
                .bind(eth_id)
                .fetch_all(store.pool())
                .await
                .unwrap();
        assert!(
            prices.iter().all(|p| p.parse::<f64>().unwrap() > 1800.0),
            "{kind}: ETH traded on a BTC price: {prices:?}"
        );
        store.close().await;
        drop(d);
    }
}

/// Runbook parity: scale a canary up — pause, `strategy update` its `base_order_size`, resume:
/// buys placed after the update spend the new size, the lot held before sells as it was bought,
/// the levels cannot change, an active strategy is not updated, and a restart keeps it all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strategy_update_scales_a_paused_grid() {
    let db = TestDb::new("sqlite").await;
    let ex = FakeBinance::start().await;
    let config = write_config(&db, &ex.url, "");
    create_btc_grid(&db, &config, "canary");
    let store = db.store().await;
    let d = RunningDaemon::start(&db, &config, &[]).await;
    assert!(ex.wait_connections(1, Duration::from_secs(10)).await);
    let mut id = 0;
    let mut send = |price: &str| {
        id += 1;
        ex.send(Cmd::Text(trade_frame(id, price, now_ms())));
    };
    let fills = |store: &bsc_bot::store::Store| {
        let store = store.clone();
        async move { store.trading_history(Some(1), 1000).await.unwrap() }
    };
    // Start at the top, then one buy of 100 at 28,195.
    for _ in 0..50 {
        send("28200");
        send("28196");
        if !fills(&store).await.is_empty() || d.engine_status(1).await.as_deref() == Some("active")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut bought = Vec::new();
    for _ in 0..50 {
        send("28195");
        bought = fills(&store).await;
        if !bought.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(bought.len(), 1);
    assert_eq!(bought[0].quote_amount, "100");
    // Active: refused.
    cli(
        &db,
        &config,
        true,
        &[
            "strategy",
            "update",
            "1",
            "-p",
            r#"{"base_order_size":"250"}"#,
        ],
    )
    .fails_with(1, "pause it first");
    cli(&db, &config, true, &["strategy", "pause", "1"]).ok();
    cli(
        &db,
        &config,
        true,
        &["strategy", "update", "1", "-p", r#"{"grid_count":5}"#],
    )
    .fails_with(1, "levels cannot change");
    cli(
        &db,
        &config,
        true,
        &[
            "strategy",
            "update",
            "1",
            "-p",
            r#"{"base_order_size":"-1"}"#,
        ],
    )
    .fails_with(1, "base_order_size");
    let updated = cli(
        &db,
        &config,
        true,
        &[
            "--json",
            "strategy",
            "update",
            "1",
            "-p",
            r#"{"base_order_size":"250"}"#,
        ],
    )
    .ok()
    .json();
    assert_eq!(updated["changed"][0]["key"], "base_order_size", "{updated}");
    assert_eq!(updated["changed"][0]["before"], "100");
    assert_eq!(updated["changed"][0]["after"], "250");
    // Restart while paused: the strategy comes back under the new parameters.
    drop(d);
    let d = RunningDaemon::start(&db, &config, &[]).await;
    assert!(ex.wait_connections(2, Duration::from_secs(10)).await);
    cli(&db, &config, true, &["strategy", "resume", "1"]).ok();
    assert!(d
        .until(Duration::from_secs(5), || async {
            d.engine_status(1).await.as_deref() == Some("active")
        })
        .await
        .is_some());
    // Its budget followed its size: 20 cells × 250 (its PnL unchanged).
    let capital = |db: &TestDb| {
        cli(db, &config, true, &["--json", "strategy", "status", "1"])
            .ok()
            .json()["performance"]["initial_quote"]
            .clone()
    };
    assert_eq!(capital(&db), "5000");
    // Down through 28,190: a buy of 250. Up through 28,200: the old lot sells as bought.
    let mut after = Vec::new();
    for _ in 0..50 {
        send("28190");
        after = fills(&store).await;
        if after.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(after.len(), 2, "{after:?}");
    let newest = after.iter().max_by_key(|t| t.id).unwrap();
    assert_eq!(
        (newest.side.as_str(), newest.quote_amount.as_str()),
        ("buy", "250")
    );
    let mut sold = None;
    for _ in 0..50 {
        send("28200");
        let all = fills(&store).await;
        sold = all.into_iter().find(|t| t.side == "sell");
        if sold.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let sold = sold.expect("the lot bought at 28,195 sells at 28,200");
    assert_eq!(sold.base_amount, bought[0].base_amount, "sold as bought");
    // Without a restart: the running daemon swaps the paused grid for the updated one.
    cli(&db, &config, true, &["strategy", "pause", "1"]).ok();
    assert!(d
        .until(Duration::from_secs(5), || async {
            d.engine_status(1).await.as_deref() == Some("paused")
        })
        .await
        .is_some());
    cli(
        &db,
        &config,
        true,
        &[
            "strategy",
            "update",
            "1",
            "-p",
            r#"{"base_order_size":"300"}"#,
        ],
    )
    .ok();
    tokio::time::sleep(Duration::from_millis(500)).await;
    cli(&db, &config, true, &["strategy", "resume", "1"]).ok();
    let mut bigger = None;
    for _ in 0..50 {
        send("28185");
        bigger = fills(&store)
            .await
            .into_iter()
            .find(|t| t.side == "buy" && t.quote_amount == "300");
        if bigger.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut resized = serde_json::Value::Null;
    for _ in 0..50 {
        resized = capital(&db);
        if resized == "6000" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(resized, "6000", "the running engine resized its budget");
    assert!(
        bigger.is_some(),
        "a buy of 300 after an update without a restart"
    );
    let audit = store.audit_log(20).await.unwrap();
    assert!(audit
        .iter()
        .any(|a| a.command == "strategy update" && a.outcome == "ok"));
    store.close().await;
}
