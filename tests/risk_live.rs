//! The risk guard on live strategies (anvil, the Uniswap V2 contracts, the real daemon): swaps that
//! keep failing pause the strategy on their error rate; a pool too far from its Binance reference
//! gets no swap until the two converge. Each with its risk event, alert, metric and (for the
//! pause) the state after a restart.

#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/live.rs"]
mod live;
#[path = "common/chain.rs"]
mod testchain;

use std::time::{Duration, Instant};

use bsc_bot::store::StrategyRef;
use common::daemon::RunningDaemon;
use common::exchange::{trade_frame, Cmd, FakeBinance, Receiver};
use common::TestDb;
use live::{Canary, PASSWORD};
use testchain::TestChain;

fn env() -> Vec<(&'static str, &'static str)> {
    vec![("BSC_BOT_KEYSTORE_PASSWORD", PASSWORD)]
}

fn metric_at_least(metrics: &str, series: &str, n: u64) -> bool {
    common::metric(metrics, series).is_some_and(|v| v >= rust_decimal::Decimal::from(n))
}

async fn setup(
    chain: &TestChain,
    db: &TestDb,
    ex: &FakeBinance,
    hook: &Receiver,
    risk: &str,
) -> Canary {
    let u = chain.deploy_uniswap(10, 1_000_000).await;
    let canary = live::canary_with(
        chain,
        &u,
        db,
        &ex.url,
        &[&chain.url],
        "pool_poll_ms = 100",
        false,
    )
    .await;
    let text = std::fs::read_to_string(&canary.config).unwrap();
    std::fs::write(
        &canary.config,
        format!(
            "{text}\n[alerts]\nwebhook_url = \"{}\"\n\n[risk]\n{risk}\n",
            hook.url
        ),
    )
    .unwrap();
    canary
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swaps_that_keep_failing_pause_the_strategy_on_its_error_rate() {
    let Some(chain) = TestChain::start().await else {
        return;
    };
    let db = TestDb::new("sqlite").await;
    let ex = FakeBinance::start().await;
    let hook = Receiver::start(0, Duration::ZERO).await;
    let canary = setup(&chain, &db, &ex, &hook, "error_rate_min_orders = 3").await;
    // Each buy is 20,000 quote; the wallet holds 10,000: every swap fails (and is retried).
    let id = live::create_live_grid(&db, &canary.config, "live", "20000");
    let store = db.store().await;
    let d = RunningDaemon::start_with_env(&db, &canary.config, &[], &env()).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let record = loop {
        let r = store.get_strategy(&StrategyRef::Id(id)).await.unwrap();
        if r.status.to_string() == "paused" {
            break r;
        }
        assert!(Instant::now() < deadline, "never paused");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let reason = record.status_reason.unwrap();
    assert!(reason.starts_with("risk: error rate 100.0 %"), "{reason}");
    let failed = store
        .list_orders(Some(id), None)
        .await
        .unwrap()
        .iter()
        .filter(|o| o.status.as_str() == "failed")
        .count();
    assert!(failed >= 3, "{failed} failed orders");
    assert_eq!(store.trade_count(id).await.unwrap(), 0);
    let events = store
        .risk_events(Some(id), Some("error_rate"), 10)
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    let alerted = || hook.bodies().iter().any(|b| b["kind"] == "error_rate");
    let start = Instant::now();
    while !alerted() && start.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(alerted(), "{:?}", hook.bodies());
    let (_, metrics) = d.text("/metrics").await;
    assert!(
        metric_at_least(
            &metrics,
            "bsc_bot_risk_events_total{kind=\"error_rate\"} ",
            1
        ),
        "{metrics}"
    );
    // Paused it stays, across a restart; nothing more is tried.
    drop(d);
    let d = RunningDaemon::start_with_env(&db, &canary.config, &[], &env()).await;
    assert!(d
        .until(Duration::from_secs(5), || async {
            d.engine_status(id).await.as_deref() == Some("paused")
        })
        .await
        .is_some());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after = store
        .list_orders(Some(id), None)
        .await
        .unwrap()
        .iter()
        .filter(|o| o.status.as_str() == "failed")
        .count();
    assert_eq!(after, failed, "nothing tried while paused");
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_far_from_its_reference_gets_no_swap_until_they_converge() {
    let Some(chain) = TestChain::start().await else {
        return;
    };
    let db = TestDb::new("sqlite").await;
    let ex = FakeBinance::start().await;
    let hook = Receiver::start(0, Duration::ZERO).await;
    let canary = setup(&chain, &db, &ex, &hook, "max_divergence_bps = \"100\"").await;
    // A paper grid far away keeps the daemon on BTC/USDT's Binance stream from the start.
    db.run(&[
        "--config",
        &canary.config,
        "strategy",
        "create",
        "-t",
        "grid",
        "-s",
        "BTC/USDT",
        "-n",
        "watch",
        "-p",
        r#"{"lower_price":"10000","upper_price":"20000","grid_count":3,"base_order_size":"10"}"#,
    ])
    .ok();
    let store = db.store().await;
    let d = RunningDaemon::start_with_env(&db, &canary.config, &[], &env()).await;
    assert!(ex.wait_connections(1, Duration::from_secs(10)).await);
    let mut trade_id = 0;
    let mut reference = |price: &str| {
        trade_id += 1;
        ex.send(Cmd::Text(trade_frame(
            trade_id,
            price,
            bsc_bot::clock::wall_clock_ms(),
        )));
    };
    reference("103000");
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The live grid joins: its two start buys meet a pool 2.9 % under Binance.
    let id = live::create_live_grid(&db, &canary.config, "live", "1000");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        reference("103000");
        let refused = store
            .list_orders(Some(id), None)
            .await
            .unwrap()
            .iter()
            .any(|o| {
                o.status.as_str() == "refused"
                    && o.status_reason
                        .as_deref()
                        .unwrap_or("")
                        .contains("bps from the reference")
            });
        if refused {
            break;
        }
        assert!(Instant::now() < deadline, "no swap refused for divergence");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(store.trade_count(id).await.unwrap(), 0, "no swap");
    assert!(!store
        .risk_events(Some(id), Some("divergence"), 10)
        .await
        .unwrap()
        .is_empty());
    let (_, metrics) = d.text("/metrics").await;
    assert!(metric_at_least(
        &metrics,
        "bsc_bot_risk_events_total{kind=\"divergence\"} ",
        1
    ));
    let start = Instant::now();
    let alerted = || {
        hook.bodies().iter().any(|b| {
            b["message"]
                .as_str()
                .unwrap_or("")
                .contains("bps from the reference")
        })
    };
    while !alerted() && start.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(alerted());
    // Binance comes back to the pool's price: the re-armed buys go through.
    let deadline = Instant::now() + Duration::from_secs(30);
    while store.trade_count(id).await.unwrap() < 2 {
        reference("100000");
        assert!(Instant::now() < deadline, "never traded after converging");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(d);
    let books = testchain::assert_records_equal_chain(
        &store,
        &canary.client,
        &canary.pool,
        canary.me,
        id,
        canary.before,
    )
    .await;
    assert_eq!(books.trades, 2);
    store.close().await;
}
