//! The live daemon through RPC faults, on a real chain: its two endpoints are proxies in front of
//! anvil that the test stops, restarts and slows while another account walks the pool price
//! across the grid.
//! - the first endpoint stops: the second takes over and the grid keeps trading;
//! - the second stops after the first came back: the first takes over again;
//! - both stop for 10 s while the price crosses two levels: no crash, no trade while blind, and
//!   trading resumes when they return;
//! - the endpoint in use answers slower than `rpc_timeout_ms`: the other one serves, trading goes on.
//!
//! Afterwards the records equal the chain exactly as after crashes (no duplicate swap, nonces
//! 0..n, one trade per mined swap, balances to the wei, ledger = trades).

#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/live.rs"]
mod live;
#[path = "common/proxy.rs"]
mod proxy;
#[path = "common/chain.rs"]
mod testchain;

use std::str::FromStr;
use std::time::{Duration, Instant};

use common::daemon::RunningDaemon;
use common::exchange::FakeBinance;
use common::TestDb;
use live::{Canary, PASSWORD};
use proxy::RpcProxy;
use rust_decimal::Decimal;
use testchain::TestChain;

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grid_trades_through_endpoint_failures_without_a_duplicate() {
    let Some(chain) = TestChain::start().await else {
        return;
    };
    let u = chain.deploy_uniswap(10, 1_000_000).await;
    chain.fund_trader(&u, 5, 500_000).await;
    let mut a = RpcProxy::start(&chain.url).await;
    let mut b = RpcProxy::start(&chain.url).await;
    let db = TestDb::new("sqlite").await;
    let ex = FakeBinance::start().await;
    let Canary {
        config,
        me,
        id,
        client,
        pool,
        before,
    } = live::canary(
        &chain,
        &u,
        &db,
        &ex.url,
        &[&a.url, &b.url],
        "pool_poll_ms = 100\nrpc_timeout_ms = 400\nrpc_retries = 1\nreceipt_timeout_secs = 5",
    )
    .await;
    let mut daemon = RunningDaemon::start_with_env(
        &db,
        &config,
        &[],
        &[("BSC_BOT_KEYSTORE_PASSWORD", PASSWORD)],
    )
    .await;
    let store = db.store().await;
    let trades = || {
        let store = store.clone();
        async move { store.trade_count(id).await.unwrap() }
    };
    let reach = |n: i64, within: Duration| live::trades_reach(&store, id, n, within);
    assert!(
        reach(2, Duration::from_secs(30)).await,
        "the two start buys"
    );

    // Levels 95k, 97.5k, 100k, 102.5k, 105k. The first endpoint stops: the second serves; the
    // buy at 97.5k.
    a.down();
    chain.walk_to(&client, &pool, u.router, d("96500")).await;
    let ok = reach(3, Duration::from_secs(30)).await;
    assert!(
        ok,
        "the buy through the second endpoint ({} trades)",
        trades().await
    );

    // It comes back and the second stops: sells at 100k and 102.5k through the first.
    a.up().await;
    b.down();
    chain.walk_to(&client, &pool, u.router, d("103600")).await;
    assert!(
        reach(5, Duration::from_secs(30)).await,
        "two sells through the first endpoint ({} trades)",
        trades().await
    );
    b.up().await;

    // Both stop for 10 s while the price crosses 100k and 97.5k: blind, no trade, no crash.
    a.down();
    b.down();
    let blind = trades().await;
    chain.walk_to(&client, &pool, u.router, d("96800")).await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(trades().await, blind, "no trade while no endpoint answers");
    assert!(
        daemon.child.try_wait().unwrap().is_none(),
        "the daemon is still running"
    );
    a.up().await;
    b.up().await;
    assert!(
        reach(blind + 2, Duration::from_secs(40)).await,
        "the two buys once the endpoints are back ({} trades)",
        trades().await
    );

    // The first endpoint answers slower than the timeout: the second serves the sells at 100k
    // and 102.5k.
    a.slow(1_500);
    let before_slow = trades().await;
    chain.walk_to(&client, &pool, u.router, d("104400")).await;
    assert!(
        reach(before_slow + 2, Duration::from_secs(40)).await,
        "two sells while the first endpoint is slow ({} trades)",
        trades().await
    );
    a.slow(0);

    // Settle, stop, and compare the records with the chain.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, flying) = store.resting_and_in_flight(id).await.unwrap();
        if flying.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "orders still in flight");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    drop(daemon);
    let books = testchain::assert_records_equal_chain(&store, &client, &pool, me, id, before).await;
    eprintln!(
        "{} trades, {} swaps mined, {} reverted",
        books.trades, books.mined, books.reverted
    );
    store.close().await;
}

/// The live daemon priced by the pool's `Sync` subscription alone (polling every 60 s): while the
/// WebSocket is down the price crosses a level and nothing trades; once it is back the missed
/// events are refilled and the grid makes the buy it missed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moves_missed_while_the_subscription_was_down_are_traded_after_it() {
    let Some(chain) = TestChain::start().await else {
        return;
    };
    let u = chain.deploy_uniswap(10, 1_000_000).await;
    chain.fund_trader(&u, 5, 500_000).await;
    let mut ws = RpcProxy::start(&chain.url).await;
    let db = TestDb::new("sqlite").await;
    let ex = FakeBinance::start().await;
    let ws_url = ws.url.replace("http://", "ws://");
    let Canary {
        config,
        me,
        id,
        client,
        pool,
        before,
    } = live::canary(
        &chain,
        &u,
        &db,
        &ex.url,
        &[&chain.url],
        &format!("pool_poll_ms = 60000\nws_urls = [\"{ws_url}\"]"),
    )
    .await;
    let daemon = RunningDaemon::start_with_env(
        &db,
        &config,
        &[],
        &[("BSC_BOT_KEYSTORE_PASSWORD", PASSWORD)],
    )
    .await;
    let store = db.store().await;
    let trades = || {
        let store = store.clone();
        async move { store.trade_count(id).await.unwrap() }
    };
    let reach = |n: i64, within: Duration| live::trades_reach(&store, id, n, within);
    assert!(
        reach(2, Duration::from_secs(30)).await,
        "the two start buys"
    );
    ws.down();
    chain.walk_to(&client, &pool, u.router, d("96500")).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(trades().await, 2, "blind while the subscription is down");
    ws.up().await;
    assert!(
        reach(3, Duration::from_secs(20)).await,
        "the missed buy at 97,500 once the gap is refilled ({} trades)",
        trades().await
    );
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    drop(daemon);
    let books = testchain::assert_records_equal_chain(&store, &client, &pool, me, id, before).await;
    assert_eq!(books.trades, 3);
    store.close().await;
}
