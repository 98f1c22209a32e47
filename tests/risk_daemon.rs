//! The risk guard in the running daemon, tripped by real prices over a local WebSocket: each
//! breach acts (pause / no new buys), writes its `risk_events` row with the action, reaches the
//! alert receiver, moves `/metrics`, and the action survives a restart.

#![allow(clippy::unwrap_used)]

mod common;

use std::str::FromStr;
use std::time::Duration;

use bsc_bot::store::StrategyRef;
use common::daemon::{write_config, RunningDaemon, TOKEN};
use common::exchange::{trade_frame, Cmd, FakeBinance, Receiver};
use common::{backends, TestDb};
use rust_decimal::Decimal;

/// 20 cells of 5 between 28,100 and 28,200, 100 quote each (2,000 in all), no fee.
const PARAMS: &str = r#"{"lower_price":"28100","upper_price":"28200","grid_count":21,"base_order_size":"100","fee_bps":0}"#;

fn cli(db: &TestDb, config: &str, args: &[&str]) -> common::Run {
    let mut argv = vec!["--config", config];
    argv.extend_from_slice(args);
    let mut c = db.cmd(&argv);
    c.env("BSC_BOT_API_TOKEN", TOKEN);
    common::Run::from(c.output().unwrap())
}

struct Prices {
    ex: FakeBinance,
    next_id: i64,
}

impl Prices {
    fn send(&mut self, prices: &[&str]) {
        for p in prices {
            self.next_id += 1;
            let now = bsc_bot::clock::wall_clock_ms();
            self.ex.send(Cmd::Text(trade_frame(self.next_id, p, now)));
        }
    }
}

async fn wait_for<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = std::time::Instant::now();
    while start.elapsed() < within {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

struct Grid {
    db: TestDb,
    hook: Receiver,
    config: String,
    store: bsc_bot::store::Store,
    daemon: RunningDaemon,
    px: Prices,
}

/// A daemon with `[risk]` lines `risk` and an alert receiver, trading the paper grid on prices
/// sent over a local WebSocket (connected when this returns).
async fn grid_daemon(kind: &'static str, risk: &str) -> Grid {
    let db = TestDb::new(kind).await;
    let hook = Receiver::start(0, Duration::ZERO).await;
    let ex = FakeBinance::start().await;
    let config = write_config(
        &db,
        &ex.url,
        &format!("[alerts]\nwebhook_url = \"{}\"\n\n[risk]\n{risk}", hook.url),
    );
    cli(
        &db,
        &config,
        &[
            "strategy", "create", "-t", "grid", "-s", "BTC/USDT", "-n", "g", "-p", PARAMS,
        ],
    )
    .ok();
    let store = db.store().await;
    let daemon = RunningDaemon::start(&db, &config, &[]).await;
    assert!(ex.wait_connections(1, Duration::from_secs(10)).await);
    Grid {
        db,
        hook,
        config,
        store,
        daemon,
        px: Prices { ex, next_id: 0 },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daily_loss_pauses_the_strategy_on_record_alerted_and_after_a_restart() {
    for kind in backends() {
        daily_loss(kind).await;
    }
}

async fn daily_loss(kind: &'static str) {
    let Grid {
        db,
        hook,
        config,
        store,
        daemon: d,
        mut px,
    } = grid_daemon(kind, "daily_loss_limit = \"5\"\n").await;
    // The day's starting equity is taken at the first mark after the start price (waited for:
    // a loaded machine marks late, and a mark at a lower price would hide the loss).
    px.send(&["28200"]);
    assert!(
        wait_for(Duration::from_secs(10), || async {
            common::metric(
                &d.text("/metrics").await.1,
                "bsc_bot_strategy_equity{strategy=\"1\"} ",
            )
            .is_some_and(|e| e > Decimal::ZERO)
        })
        .await,
        "{kind}: no mark at the start price"
    );
    // Down through every buy and below the range: 20 lots bought at 28,195 .. 28,100 are worth
    // ~10.7 less at 28,000 than they cost.
    px.send(&["28190", "28150", "28100", "28000"]);
    let paused = || async {
        store
            .get_strategy(&StrategyRef::Id(1))
            .await
            .unwrap()
            .status
            .to_string()
            == "paused"
    };
    assert!(
        wait_for(Duration::from_secs(10), paused).await,
        "{kind}: never paused"
    );
    let record = store.get_strategy(&StrategyRef::Id(1)).await.unwrap();
    let reason = record.status_reason.clone().unwrap();
    assert!(reason.starts_with("risk: daily loss"), "{kind}: {reason}");
    let events = store
        .risk_events(Some(1), Some("daily_loss"), 10)
        .await
        .unwrap();
    assert_eq!(events.len(), 1, "{kind}");
    assert_eq!(events[0].severity, "critical");
    // The alert reached the receiver.
    assert!(
        wait_for(Duration::from_secs(5), || async {
            hook.bodies().iter().any(|b| b["kind"] == "daily_loss")
        })
        .await,
        "{kind}: no daily_loss alert in {:?}",
        hook.bodies()
    );
    // The metrics: the event, and the loss above the limit.
    let (_, metrics) = d.text("/metrics").await;
    assert_eq!(
        common::metric(&metrics, "bsc_bot_risk_events_total{kind=\"daily_loss\"} "),
        Some(Decimal::ONE),
        "{metrics}"
    );
    let loss = common::metric(&metrics, "bsc_bot_strategy_daily_loss{strategy=\"1\"} ").unwrap();
    assert!(
        loss > Decimal::from(5) && loss < Decimal::from(12),
        "{kind}: {loss}"
    );
    // `risk status` shows it.
    let status = cli(&db, &config, &["--json", "risk", "status"]).ok().json();
    assert_eq!(status["strategies"][0]["status"], "paused", "{status}");
    let shown = Decimal::from_str(status["strategies"][0]["daily_loss"].as_str().unwrap()).unwrap();
    assert!(shown > Decimal::from(5), "{status}");

    // A restart keeps the pause and the day's starting equity.
    drop(d);
    let d = RunningDaemon::start(&db, &config, &[]).await;
    assert!(
        d.until(Duration::from_secs(5), || async {
            d.engine_status(1).await.as_deref() == Some("paused")
        })
        .await
        .is_some(),
        "{kind}: paused after the restart"
    );
    assert!(px.ex.wait_connections(2, Duration::from_secs(10)).await);
    // The operator resumes: the loss so far is accepted; only another 5 pauses it again.
    cli(&db, &config, &["strategy", "resume", "1"]).ok();
    assert!(
        d.until(Duration::from_secs(5), || async {
            d.engine_status(1).await.as_deref() == Some("active")
        })
        .await
        .is_some(),
        "{kind}: resumed"
    );
    px.send(&["28000"]);
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert!(
        !paused().await,
        "{kind}: the accepted loss does not pause again"
    );
    // (Sent until it lands: a quiet feed is replaced after market.silent_after_secs = 2.)
    let mut again = false;
    for _ in 0..50 {
        px.send(&["27800"]);
        if paused().await {
            again = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(again, "{kind}: another 5 lost pauses it again");
    let events = store
        .risk_events(Some(1), Some("daily_loss"), 10)
        .await
        .unwrap();
    assert_eq!(events.len(), 2, "{kind}");
    assert!(
        events[0].message.contains("accepted at the last resume"),
        "{}",
        events[0].message
    );
    drop(d);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_price_jump_stops_new_buys_for_the_cool_down_also_after_a_restart() {
    let Grid {
        db,
        hook,
        config,
        store,
        daemon: d,
        mut px,
    } = grid_daemon(
        "sqlite",
        "price_jump_pct = \"1\"\n\
             price_jump_window_secs = 60\nprice_jump_cooldown_secs = 300\n",
    )
    .await;
    px.send(&["28200"]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // +1.06 % within the window.
    px.send(&["28500"]);
    assert!(
        wait_for(Duration::from_secs(5), || async {
            !store
                .risk_events(None, Some("price_jump"), 10)
                .await
                .unwrap()
                .is_empty()
        })
        .await,
        "no price_jump event"
    );
    // Back into the grid: its buys are refused (no trade), not lost. (Sent until it lands: a
    // quiet feed is replaced after market.silent_after_secs = 2.)
    let mut refused_any = false;
    for _ in 0..50 {
        px.send(&["28180"]);
        let orders = store.list_orders(Some(1), None).await.unwrap();
        if orders.iter().any(|o| o.status.as_str() == "refused") {
            refused_any = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(refused_any, "a buy refused during the cool-down");
    assert_eq!(store.trade_count(1).await.unwrap(), 0);
    let refused = store
        .list_orders(Some(1), None)
        .await
        .unwrap()
        .into_iter()
        .find(|o| o.status.as_str() == "refused")
        .unwrap();
    assert!(
        refused
            .status_reason
            .as_deref()
            .unwrap()
            .contains("price jump"),
        "{refused:?}"
    );
    assert!(
        wait_for(Duration::from_secs(5), || async {
            hook.bodies().iter().any(|b| b["kind"] == "price_jump")
        })
        .await
    );
    let (_, metrics) = d.text("/metrics").await;
    assert!(
        common::metric(&metrics, "bsc_bot_risk_events_total{kind=\"price_jump\"} ").unwrap()
            >= Decimal::ONE,
        "{metrics}"
    );
    let status = cli(&db, &config, &["--json", "risk", "status"]).ok().json();
    assert_eq!(status["buys_blocked"][0]["market"], "BTC/USDT", "{status}");

    // After a restart the cool-down still holds: a price through the buys trades nothing.
    drop(d);
    let _d = RunningDaemon::start(&db, &config, &[]).await;
    assert!(px.ex.wait_connections(2, Duration::from_secs(10)).await);
    let refused_before = store
        .list_orders(Some(1), None)
        .await
        .unwrap()
        .iter()
        .filter(|o| o.status.as_str() == "refused")
        .count();
    let mut refused_again = false;
    for _ in 0..50 {
        px.send(&["28170", "28150"]);
        let orders = store.list_orders(Some(1), None).await.unwrap();
        if orders
            .iter()
            .filter(|o| o.status.as_str() == "refused")
            .count()
            > refused_before
        {
            refused_again = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(refused_again, "refused again after the restart");
    assert_eq!(
        store.trade_count(1).await.unwrap(),
        0,
        "no buy in the cool-down"
    );
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_position_limit_and_the_trading_mode_refuse_on_record_and_after_a_restart() {
    // Two lots of 100 fit under 250; the third buy is refused.
    let Grid {
        db,
        hook,
        config,
        store,
        daemon: d,
        mut px,
    } = grid_daemon("sqlite", "max_position = \"250\"\n").await;
    let refused_with = |needle: &'static str| {
        let store = store.clone();
        async move {
            store
                .list_orders(Some(1), None)
                .await
                .unwrap()
                .iter()
                .filter(|o| o.status.as_str() == "refused")
                .filter(|o| o.status_reason.as_deref().unwrap_or("").contains(needle))
                .count()
        }
    };
    px.send(&["28200"]);
    let mut refused = 0;
    for _ in 0..50 {
        px.send(&["28180"]);
        refused = refused_with("max_position").await;
        if refused > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(refused > 0, "the third buy is refused");
    assert_eq!(store.trade_count(1).await.unwrap(), 2, "two lots bought");
    let events = store
        .risk_events(Some(1), Some("max_position"), 10)
        .await
        .unwrap();
    assert!(!events.is_empty());
    assert!(
        wait_for(Duration::from_secs(5), || async {
            hook.bodies()
                .iter()
                .any(|b| b["message"].as_str().unwrap_or("").contains("max_position"))
        })
        .await
    );
    let (_, metrics) = d.text("/metrics").await;
    assert!(
        common::metric(
            &metrics,
            "bsc_bot_risk_events_total{kind=\"max_position\"} "
        )
        .unwrap()
            >= Decimal::ONE
    );

    // A strategy's own limit over [risk]'s: orders above 50 quote are refused for this one.
    let own = PARAMS.replace(
        r#""fee_bps":0}"#,
        r#""fee_bps":0,"max_order_notional":"50"}"#,
    );
    let small = cli(
        &db,
        &config,
        &[
            "--json", "strategy", "create", "-t", "grid", "-s", "BTC/USDT", "-n", "small", "-p",
            &own,
        ],
    )
    .ok()
    .json()["strategy"]["id"]
        .as_i64()
        .unwrap();
    let mut own_refused = false;
    for _ in 0..50 {
        px.send(&["28200", "28180"]);
        own_refused = !store
            .risk_events(Some(small), Some("max_order_notional"), 10)
            .await
            .unwrap()
            .is_empty();
        if own_refused {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(own_refused, "the strategy's own max_order_notional");
    assert_eq!(store.trade_count(small).await.unwrap(), 0);

    // Reducing: the operator's mode reaches the daemon; buys are refused, sells still go.
    cli(
        &db,
        &config,
        &["risk", "mode", "reducing", "--reason", "drill"],
    )
    .ok();
    let sells_before = store
        .trading_history(Some(1), 100)
        .await
        .unwrap()
        .iter()
        .filter(|t| t.side == "sell")
        .count();
    let mut sold = false;
    for _ in 0..50 {
        // Up through the sells at 28,185 and 28,190.
        px.send(&["28195"]);
        let sells = store
            .trading_history(Some(1), 100)
            .await
            .unwrap()
            .iter()
            .filter(|t| t.side == "sell")
            .count();
        if sells > sells_before {
            sold = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(sold, "a sell goes in reducing mode");
    let mode_events = store
        .risk_events(None, Some("trading_mode"), 10)
        .await
        .unwrap();
    assert!(mode_events[0].message.contains("reducing"));
    assert!(
        wait_for(Duration::from_secs(5), || async {
            hook.bodies().iter().any(|b| {
                b["kind"] == "trading_mode"
                    && b["message"].as_str().unwrap_or("").contains("reducing")
            })
        })
        .await,
        "the mode change is alerted"
    );
    // After a restart the mode holds: a walk down buys nothing.
    drop(d);
    let _d = RunningDaemon::start(&db, &config, &[]).await;
    assert!(px.ex.wait_connections(2, Duration::from_secs(10)).await);
    let trades = store.trade_count(1).await.unwrap();
    let mut refused_reducing = 0;
    for _ in 0..50 {
        px.send(&["28150"]);
        refused_reducing = refused_with("reducing").await;
        if refused_reducing > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        refused_reducing > 0,
        "buys refused in reducing mode after the restart"
    );
    assert_eq!(store.trade_count(1).await.unwrap(), trades, "no buy");
    let status = cli(&db, &config, &["--json", "bot", "status"]).ok().json();
    assert_eq!(status["trading_mode"]["mode"], "reducing", "{status}");
    store.close().await;
}
