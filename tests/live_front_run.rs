//! A live swap front-run past its slippage bound, through the whole daemon: the swap reverts and
//! costs only its gas; the order is recorded failed with its reason and gas, and the operator sees
//! it as failed (in `/api/v1/trading/history`, `strategy status` and `/metrics`), never as missing;
//! the cell re-arms and trades at the next attempt; records equal the chain to the wei.

#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/live.rs"]
mod live;
#[path = "common/promtool.rs"]
mod promtool;
#[path = "common/chain.rs"]
mod testchain;

use std::str::FromStr;
use std::time::{Duration, Instant};

use alloy::providers::Provider;
use common::daemon::RunningDaemon;
use common::exchange::FakeBinance;
use common::TestDb;
use live::{create_canary, Canary, PASSWORD};
use rust_decimal::Decimal;
use testchain::{TestChain, TRADER_KEY};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_front_run_swap_is_a_failed_trade_on_record_and_its_cell_rearms() {
    for kind in common::backends() {
        front_run(kind).await;
    }
}

async fn front_run(kind: &'static str) {
    let Some(chain) = TestChain::start().await else {
        return;
    };
    let u = chain.deploy_uniswap(10, 1_000_000).await;
    chain.fund_trader(&u, 5, 500_000).await;
    let db = TestDb::new(kind).await;
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
        "pool_poll_ms = 100\nreceipt_timeout_secs = 30\nbalance_poll_secs = 1",
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
    let store = db.store().await;
    let reader = chain.reader();
    // Blocks stop: the strategy's two start buys wait in the mempool (after its approval, mined
    // here on purpose), where the trader's big buy at a higher gas price gets ahead of them.
    let _: serde_json::Value = reader
        .raw_request("evm_setAutomine".into(), (false,))
        .await
        .unwrap();
    let id = create_canary(&db, &config);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "the bot never sent a swap");
        let txs = store.chain_txs_of(56, me).await.unwrap();
        let waiting = |purpose: &str| {
            txs.iter()
                .any(|t| t.purpose == purpose && t.status == "broadcast")
        };
        if waiting("swap") {
            break;
        }
        if waiting("approve") {
            let _: serde_json::Value = reader.raw_request("evm_mine".into(), ()).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Give a second start buy a moment to join the first.
    tokio::time::sleep(Duration::from_millis(300)).await;
    chain.front_run_buy(&u, TRADER_KEY, 50_000).await;
    let _: serde_json::Value = reader.raw_request("evm_mine".into(), ()).await.unwrap();
    let _: serde_json::Value = reader
        .raw_request("evm_setAutomine".into(), (true,))
        .await
        .unwrap();

    // The start buys re-arm (a second after their failure) and fill at the new price.
    assert!(
        live::trades_reach(&store, id, 2, Duration::from_secs(30)).await,
        "both start buys trade after their re-arm"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let txs = store.chain_txs_of(56, me).await.unwrap();
    let reverted: Vec<_> = txs.iter().filter(|t| t.status == "reverted").collect();
    assert!(!reverted.is_empty(), "a swap was front-run: {txs:?}");
    // The API's history: every reverted swap is there as failed, with its hash, gas and reason.
    let (code, history) = d
        .get(&format!("/api/v1/trading/history?strategy_id={id}"))
        .await;
    assert_eq!(code, 200);
    let rows = history["trades"].as_array().unwrap();
    let failed: Vec<_> = rows.iter().filter(|r| r["status"] == "failed").collect();
    assert_eq!(failed.len(), reverted.len(), "{history}");
    for t in &reverted {
        let row = failed
            .iter()
            .find(|r| r["tx_hash"] == t.tx_hash.as_str())
            .unwrap_or_else(|| panic!("reverted {} not in the history: {history}", t.tx_hash));
        assert_eq!(row["gas_fee"], t.fee_bnb.as_deref().unwrap(), "{row}");
        assert!(
            Decimal::from_str(row["gas_fee"].as_str().unwrap()).unwrap() > Decimal::ZERO,
            "{row}"
        );
        assert_eq!(row["side"], "buy");
        assert_eq!(row["quote_amount"], "1000", "what it tried to spend: {row}");
        assert!(
            row["reason"].as_str().is_some_and(|r| !r.is_empty()),
            "{row}"
        );
        assert!(
            row["id"].is_null(),
            "no trade id for a swap that filled nothing"
        );
    }
    // The start buys bought above the grid (the front-run took the price to ~110k), so their
    // cells' sells at 103k and 105k filled at once too.
    let fills = store.trade_count(id).await.unwrap();
    assert_eq!(
        rows.iter().filter(|r| r["status"] == "filled").count() as i64,
        fills,
        "{history}"
    );
    // `strategy status` counts and lists them.
    let status = db
        .run(&[
            "--config",
            &config,
            "--json",
            "strategy",
            "status",
            &id.to_string(),
        ])
        .ok()
        .json();
    assert_eq!(status["failed_swaps"], reverted.len() as i64, "{status}");
    assert_eq!(
        status["recent_failed_swaps"].as_array().unwrap().len(),
        reverted.len()
    );
    let text = db
        .run(&["--config", &config, "strategy", "status", &id.to_string()])
        .ok()
        .stdout
        .clone();
    assert!(
        text.contains(&format!("failed swaps: {}", reverted.len())),
        "{text}"
    );
    // And /metrics counts every failed order: the reverted swaps, and any the simulation
    // stopped before it was signed (a start buy simulated after the front-run was pending).
    let orders = store.list_orders(Some(id), None).await.unwrap();
    let failed_orders = orders
        .iter()
        .filter(|o| o.status.as_str() == "failed")
        .count();
    assert!(failed_orders >= reverted.len());
    let (_, metrics) = d.text("/metrics").await;
    let line =
        format!("bsc_bot_orders_total{{strategy=\"{id}\",status=\"failed\"}} {failed_orders}");
    assert!(metrics.contains(&line), "{line} in\n{metrics}");
    // The shipped alert rules on these metrics: failed swaps make a high error rate; the wallet
    // has gas and the hour's outflow (the swaps' inputs) is far below 10,000.
    let outflow = common::metric(&metrics, "bsc_bot_funds_hourly_outflow ").unwrap();
    assert!(
        outflow >= Decimal::from(1000) * Decimal::from(fills / 2),
        "{outflow}"
    );
    if let Some(promtool) = promtool::promtool() {
        let sid = id.to_string();
        promtool::assert_alerts(
            &promtool,
            &metrics,
            true,
            &[("HighErrorRate", vec![vec![("strategy", sid.as_str())]])],
        );
        // Gas runs low: the balance watch reads it within a second or two.
        let wei_now = client.provider().get_balance(me).await.unwrap();
        chain
            .set_bnb(
                me,
                alloy::primitives::U256::from(10u64).pow(alloy::primitives::U256::from(16u64)),
            )
            .await;
        let series = format!("bsc_bot_wallet_bnb_balance{{wallet=\"hot\",address=\"{me}\"}} 0.01");
        let mut low = String::new();
        for _ in 0..50 {
            low = d.text("/metrics").await.1;
            if low.contains(&series) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(low.contains(&series), "{series} in\n{low}");
        let me_text = me.to_string();
        promtool::assert_alerts(
            &promtool,
            &low,
            true,
            &[
                ("HighErrorRate", vec![vec![("strategy", sid.as_str())]]),
                (
                    "LowGasBalance",
                    vec![vec![("wallet", "hot"), ("address", me_text.as_str())]],
                ),
            ],
        );
        // Back to what it had, so the wallet still reconciles with the records below.
        chain.set_bnb(me, wei_now).await;
    }
    drop(d);
    // Only gas lost for the reverted ones: the wallet equals the records.
    let books = testchain::assert_records_equal_chain(&store, &client, &pool, me, id, before).await;
    assert_eq!(books.trades as i64, fills);
    assert_eq!(books.reverted, reverted.len());
    // Net of gas counts every swap's gas, the reverted ones' too.
    let paid: rust_decimal::Decimal = store
        .chain_txs_of(56, me)
        .await
        .unwrap()
        .iter()
        .filter(|t| t.purpose == "swap")
        .filter_map(|t| t.fee_bnb.as_deref())
        .map(|f| f.parse::<rust_decimal::Decimal>().unwrap())
        .sum();
    let state: serde_json::Value = serde_json::from_str(
        store
            .get_strategy(&bsc_bot::store::StrategyRef::Id(id))
            .await
            .unwrap()
            .state
            .as_deref()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        state["ledger"]["gas_bnb"]
            .as_str()
            .unwrap()
            .parse::<rust_decimal::Decimal>()
            .unwrap(),
        paid,
        "the ledger's gas is every swap's, reverted ones included"
    );
    store.close().await;
}
