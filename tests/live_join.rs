//! A live strategy created while the daemon runs joins it, no restart: the daemon readies its
//! wallet (unlocked, reconciled) and pool, routes it to the wallet's DEX venue and starts the
//! pool's feed; `strategy list` shows it running, and it trades on chain as the price walks.

#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/live.rs"]
mod live;
#[path = "common/chain.rs"]
mod testchain;

use std::str::FromStr;
use std::time::Duration;

use common::daemon::RunningDaemon;
use common::exchange::{trade_frame, Cmd, FakeBinance};
use common::TestDb;
use live::{create_canary, Canary, PASSWORD};
use rust_decimal::Decimal;
use testchain::TestChain;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_strategy_created_while_running_trades_without_a_restart() {
    let Some(chain) = TestChain::start().await else {
        return;
    };
    let u = chain.deploy_uniswap(10, 1_000_000).await;
    chain.fund_trader(&u, 5, 500_000).await;
    let db = TestDb::new("sqlite").await;
    let ex = FakeBinance::start().await;
    let Canary {
        config,
        me,
        client,
        pool,
        before,
        ..
    } = live::canary_with(
        &chain,
        &u,
        &db,
        &ex.url,
        &[&chain.url],
        "pool_poll_ms = 100",
        false,
    )
    .await;
    let d = RunningDaemon::start_with_env(
        &db,
        &config,
        &[],
        &[("BSC_BOT_KEYSTORE_PASSWORD", PASSWORD)],
    )
    .await;
    let id = create_canary(&db, &config);
    let store = db.store().await;
    let reach = |n: i64| live::trades_reach(&store, id, n, Duration::from_secs(30));
    assert!(reach(2).await, "the two start buys, without a restart");
    let listed = db
        .run(&["--config", &config, "--json", "strategy", "list"])
        .ok()
        .json();
    assert!(listed["strategies"][0].get("running").is_none(), "{listed}");
    chain
        .walk_to(
            &client,
            &pool,
            u.router,
            Decimal::from_str("96500").unwrap(),
        )
        .await;
    assert!(reach(3).await, "the buy at 97,500");
    // The joined market follows its reference (Binance) price too: the feed subscribes to it,
    // and its pool price, reference price and divergence reach the metrics.
    assert!(
        ex.wait_connections(1, Duration::from_secs(10)).await,
        "the feed subscribed to the joined market's reference"
    );
    let mut metrics = String::new();
    for _ in 0..50 {
        let now = bsc_bot::clock::wall_clock_ms();
        ex.send(Cmd::Text(trade_frame(1, "103000.00", now)));
        metrics = d.text("/metrics").await.1;
        if metrics.contains("bsc_bot_reference_price{symbol=\"BTC/USDT\"} 103000") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        metrics.contains("bsc_bot_reference_price{symbol=\"BTC/USDT\"} 103000"),
        "{metrics}"
    );
    assert!(metrics.contains("bsc_bot_dex_price{symbol=\"BTC/USDT\"} "));
    assert!(metrics.contains("bsc_bot_dex_divergence_bps{symbol=\"BTC/USDT\"} "));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    drop(d);
    let books = testchain::assert_records_equal_chain(&store, &client, &pool, me, id, before).await;
    assert_eq!(books.trades, 3);
    store.close().await;
}
