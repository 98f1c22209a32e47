//! The real daemon trading a live grid on a real local chain: a wallet made with
//! `wallet generate`, a live strategy created against it, `bot start` with the keystore password in
//! the environment, the pool price walked down through three levels and up through four by another
//! account. Every trade on record is a mined swap; the wallet's balances moved exactly as the
//! trades table says (to the wei) and its BNB by exactly the gas on record; filled orders carry
//! their transaction hash; the strategy shows as running.

#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/chain.rs"]
mod testchain;

use std::str::FromStr;
use std::time::Duration;

use alloy::primitives::{Address, U256};
use bsc_bot::chain::ChainClient;
use bsc_bot::config::ChainConfig;
use common::daemon::{write_config, RunningDaemon};
use common::exchange::{trade_frame, Cmd, FakeBinance};
use common::TestDb;
use rust_decimal::Decimal;
use testchain::TestChain;

const PASSWORD: &str = "correct horse battery";

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

/// The daemon's config for the pool's market (its base token named `base` in `[dex.assets]`, the
/// quote USDT; `chain_extra`: more `[chain]` lines) and wallet `hot`, made with `wallet generate`,
/// holding 1 BNB for gas and 10,000 of the quote.
async fn live_wallet(
    chain: &TestChain,
    u: &testchain::Uniswap,
    db: &TestDb,
    ws_url: &str,
    chain_extra: &str,
    base: &str,
) -> (String, Address) {
    let sections = format!(
        "[chain]\nchain_id = 56\nrpc_urls = [\"{url}\"]\n{chain_extra}\npool_poll_ms = 100\n\n\
         [dex]\nrouter = \"{router}\"\nfactory = \"{factory}\"\nfee_bps = 30\nslippage_bps = 50\n\n\
         [dex.assets]\n{base} = \"{base_token}\"\nUSDT = \"{quote}\"\n",
        url = chain.url,
        router = u.router,
        factory = u.factory,
        base_token = u.base,
        quote = u.quote,
    );
    let config = write_config(db, ws_url, &sections);
    let out = db
        .cmd(&["--config", &config, "wallet", "generate", "--name", "hot"])
        .env("BSC_BOT_KEYSTORE_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert!(out.status.success());
    let me: Address = String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    chain
        .set_bnb(me, U256::from(10u8).pow(U256::from(18u8)))
        .await;
    chain.give_tokens(u.quote, me, 10_000).await;
    (config, me)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_trades_a_live_grid_on_chain() {
    let Some(chain) = TestChain::start().await else {
        return;
    };
    let u = chain.deploy_uniswap(10, 1_000_000).await;
    chain.fund_trader(&u, 5, 500_000).await;
    let db = TestDb::new("sqlite").await;
    let ex = FakeBinance::start().await;
    let ws = format!("ws_urls = [\"{}\"]", chain.url.replace("http://", "ws://"));
    let (config, me) = live_wallet(&chain, &u, &db, &ex.url, &ws, "BTC").await;
    let created = db
        .run(&[
            "--config", &config, "--json", "strategy", "create", "-t", "grid", "-s", "BTC/USDT",
            "-n", "canary", "-m", "live", "--confirm-live", "--wallet", "hot", "-p",
            r#"{"lower_price":"95000","upper_price":"105000","grid_count":6,"base_order_size":"1000","fee_bps":30}"#,
        ])
        .ok()
        .json();
    let id = created["strategy"]["id"].as_i64().unwrap();
    // Its paper twin, on the same pool's prices (market.paper_price_source = pool).
    let twin = db
        .run(&[
            "--config", &config, "--json", "strategy", "create", "-t", "grid", "-s", "BTC/USDT",
            "-n", "paper-twin", "-p",
            r#"{"lower_price":"95000","upper_price":"105000","grid_count":6,"base_order_size":"1000","fee_bps":30}"#,
        ])
        .ok()
        .json();
    let twin_id = twin["strategy"]["id"].as_i64().unwrap();

    let client = ChainClient::connect(&ChainConfig {
        rpc_urls: vec![chain.url.clone()],
        ..ChainConfig::default()
    })
    .await
    .unwrap();
    let base = client.token(u.base).await.unwrap();
    let quote = client.token(u.quote).await.unwrap();
    let pool = client.pool(u.factory, base, quote).await.unwrap();
    let before = (
        client.native_balance(me).await.unwrap(),
        client.token_balance(&pool.base, me).await.unwrap(),
        client.token_balance(&pool.quote, me).await.unwrap(),
    );

    let log = db.dir.path().join("daemon.log");
    let d_ = RunningDaemon::start_logged_with_env(
        &db,
        &config,
        &[],
        &[
            ("BSC_BOT_KEYSTORE_PASSWORD", PASSWORD),
            ("BSC_BOT_MARKET_PAPER_PRICE_SOURCE", "pool"),
        ],
        &log,
    )
    .await;
    let store = db.store().await;
    let trades_reach = |n: i64| {
        let store = store.clone();
        async move {
            for _ in 0..300 {
                if store.trade_count(id).await.unwrap() >= n {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            false
        }
    };
    // Levels 95k, 97k, 99k, 101k, 103k, 105k; from 100k the cells above (101k-103k, 103k-105k)
    // start bought. Down through three levels, then up through four.
    assert!(trades_reach(2).await, "the two start buys");
    chain.walk_to(&client, &pool, u.router, d("98000")).await;
    assert!(trades_reach(3).await, "the buy at 99,000");
    chain.walk_to(&client, &pool, u.router, d("94000")).await;
    assert!(trades_reach(5).await, "the buys at 97,000 and 95,000");
    chain.walk_to(&client, &pool, u.router, d("104000")).await;
    assert!(
        trades_reach(9).await,
        "four sells, at 97k, 99k, 101k and 103k"
    );
    // Let the last answers and state reach the database.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let trades = store.trading_history(Some(id), 1000).await.unwrap();
    assert_eq!(trades.len(), 9);
    // The log says which fills were live, each with its transaction hash; the twin's are paper.
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let logged = |what: &str, strategy: i64| -> Vec<&serde_json::Value> {
        lines
            .iter()
            .filter(|l| l["fields"]["message"] == what && l["span"]["strategy_id"] == strategy)
            .collect()
    };
    let live_fills = logged("live fill", id);
    assert_eq!(live_fills.len(), 9, "every live fill logged as one");
    assert!(logged("paper fill", id).is_empty());
    for f in &live_fills {
        let hash = f["fields"]["tx_hash"]
            .as_str()
            .expect("a live fill names its hash");
        assert!(
            trades.iter().any(|t| t.tx_hash.as_deref() == Some(hash)),
            "logged hash {hash} is a trade's"
        );
    }
    let sum = |side: &str, f: fn(&bsc_bot::store::paper::TradeRecord) -> &str| -> Decimal {
        trades
            .iter()
            .filter(|t| t.side == side)
            .map(|t| d(f(t)))
            .sum()
    };
    let after = (
        client.native_balance(me).await.unwrap(),
        client.token_balance(&pool.base, me).await.unwrap(),
        client.token_balance(&pool.quote, me).await.unwrap(),
    );
    assert_eq!(
        after.1 - before.1,
        sum("buy", |t| &t.base_amount) - sum("sell", |t| &t.base_amount),
        "base moved exactly as the trades say"
    );
    assert_eq!(
        after.2 - before.2,
        sum("sell", |t| &t.quote_amount) - sum("buy", |t| &t.quote_amount),
        "quote moved exactly as the trades say"
    );
    let txs = store.chain_txs_of(56, me).await.unwrap();
    let swaps: Vec<_> = txs.iter().filter(|t| t.purpose == "swap").collect();
    assert_eq!(swaps.len(), 9);
    assert!(swaps.iter().all(|t| t.status == "mined"));
    let gas: Decimal = txs.iter().map(|t| d(t.fee_bnb.as_deref().unwrap())).sum();
    assert_eq!(before.0 - after.0, gas, "BNB spent = gas on record");
    // Filled orders carry the hash of the swap that filled them.
    let orders = store.list_orders(Some(id), None).await.unwrap();
    let filled: Vec<_> = orders
        .iter()
        .filter(|o| o.status.as_str() == "filled")
        .collect();
    assert_eq!(filled.len(), 9);
    for o in filled {
        let hash = o
            .venue_ref
            .as_deref()
            .expect("a filled live order has its tx hash");
        assert!(swaps.iter().any(|t| t.tx_hash == hash));
    }
    // Each swap is recorded under its order's name, and each trade carries its swap's hash and gas.
    for o in orders.iter().filter(|o| o.status.as_str() == "filled") {
        let tx = swaps
            .iter()
            .find(|t| t.tx_hash == o.venue_ref.clone().unwrap())
            .unwrap();
        assert_eq!(tx.reference.as_deref(), Some(o.client_order_id.as_str()));
    }
    for t in &trades {
        let hash = t.tx_hash.as_deref().expect("a live trade has its tx hash");
        let tx = swaps.iter().find(|s| s.tx_hash == hash).unwrap();
        assert!(tx.fee_bnb.is_some());
    }
    let gas_in_trades: Decimal = trades
        .iter()
        .map(|t| d(t.gas_fee.as_deref().expect("a live trade has its gas fee")))
        .sum();
    let swap_gas: Decimal = swaps.iter().map(|t| d(t.fee_bnb.as_deref().unwrap())).sum();
    assert_eq!(
        gas_in_trades, swap_gas,
        "trades carry exactly the swaps' gas"
    );
    // The paper twin on the pool's prices made the same grid moves, in the same order: the
    // prices differ only by the pool fee, the price impact and nothing else (no gas in paper).
    // Fill order is the order the trades went on record in.
    let moves = |trades: &[bsc_bot::store::paper::TradeRecord],
                 orders: &[bsc_bot::store::orders::OrderRecord]|
     -> Vec<(String, Option<i64>)> {
        let mut t: Vec<_> = trades.iter().collect();
        t.sort_by_key(|t| t.id);
        t.iter()
            .map(|t| {
                let cell = orders
                    .iter()
                    .find(|o| Some(o.id) == t.order_id)
                    .and_then(|o| o.cell);
                (t.side.clone(), cell)
            })
            .collect()
    };
    let twin_orders = store.list_orders(Some(twin_id), None).await.unwrap();
    let twin_trades = store.trading_history(Some(twin_id), 1000).await.unwrap();
    assert_eq!(
        moves(&twin_trades, &twin_orders),
        moves(&trades, &orders),
        "paper twin vs live"
    );
    assert_eq!(twin_trades.len(), 9);
    // What separates a live fill from its twin's, per trade: the pool fee (fee_quote), the gas
    // (gas_fee) and the price impact against the pool's mid price before the swap. The two start
    // buys of 1,000 quote into 10 / 1,000,000 move it by 997/1,000,000 and 997/1,001,000.
    let mut by_id: Vec<_> = trades.iter().collect();
    by_id.sort_by_key(|t| t.id);
    assert!(by_id
        .iter()
        .all(|t| t.pool_price_before.is_some() && t.price_impact_bps.is_some()));
    let impacts: Vec<&str> = by_id[..2]
        .iter()
        .map(|t| t.price_impact_bps.as_deref().unwrap())
        .collect();
    assert_eq!(impacts, ["9.97", "9.96"]);
    assert_eq!(by_id[0].pool_price_before.as_deref(), Some("100000"));
    assert!(twin_trades
        .iter()
        .all(|t| t.price_impact_bps.is_none() && t.gas_fee.is_none()));
    assert!(
        twin_trades.iter().all(|t| t.tx_hash.is_none()),
        "paper trades touch no chain"
    );
    // Running, and said so.
    let listed = db
        .run(&["--config", &config, "--json", "strategy", "list"])
        .ok()
        .json();
    assert!(listed["strategies"][0].get("running").is_none(), "{listed}");
    let (_, health) = d_.get("/api/health").await;
    assert!(!health.to_string().contains("not running"), "{health}");
    // The console's strategy page shows each live fill with its swap's hash, gas and price
    // impact as on record, and one equity point per fill.
    let (code, page) = d_.get(&format!("/api/v1/strategies/{id}/page")).await;
    assert_eq!(code, 200, "{page}");
    let shown = page["trades"].as_array().unwrap();
    assert_eq!(shown.len(), trades.len());
    for t in &trades {
        let row = shown
            .iter()
            .find(|r| r["id"] == serde_json::json!(t.id))
            .expect("every fill on the page");
        assert_eq!(row["tx_hash"].as_str(), t.tx_hash.as_deref());
        assert_eq!(row["gas_fee"].as_str(), t.gas_fee.as_deref());
        assert_eq!(
            row["price_impact_bps"].as_str(),
            t.price_impact_bps.as_deref()
        );
    }
    assert_eq!(page["equity"].as_array().unwrap().len(), trades.len());
    assert_eq!(
        page["explorer_tx_url"],
        serde_json::json!("https://bscscan.com/tx/{tx}")
    );
    // Its chart is of the pool's price, the one it trades on.
    assert_eq!(page["price_stream"], serde_json::json!("pool:BTC/USDT"));
    let mut charted = 0;
    for _ in 0..50 {
        let (_, page) = d_.get(&format!("/api/v1/strategies/{id}/page")).await;
        charted = page["prices"].as_array().map_or(0, Vec::len);
        if charted > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(charted > 0, "the pool's prices on the chart");

    // The pool price beside the reference (Binance) price and their divergence: in metrics and
    // in `strategy status`.
    assert!(ex.wait_connections(1, Duration::from_secs(10)).await);
    let now = bsc_bot::clock::wall_clock_ms();
    ex.send(Cmd::Text(trade_frame(1, "103000.00", now)));
    let mut market = serde_json::Value::Null;
    for _ in 0..50 {
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
        market = status["market"].clone();
        if market["reference_price"] == "103000" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(market["reference_price"], "103000", "{market}");
    let dex = d(market["dex_price"].as_str().unwrap());
    assert_eq!(
        d(market["divergence_bps"].as_str().unwrap()),
        ((dex - d("103000")) / d("103000") * d("10000")).round_dp(1),
        "{market}"
    );
    let (_, metrics) = d_.text("/metrics").await;
    assert!(
        metrics.contains("bsc_bot_reference_price{symbol=\"BTC/USDT\"} 103000"),
        "{metrics}"
    );
    assert!(metrics.contains("bsc_bot_dex_divergence_bps{symbol=\"BTC/USDT\"} "));
    assert!(metrics.contains("bsc_bot_dex_price{symbol=\"BTC/USDT\"} "));
    // Runbook 002's node series: request durations per endpoint (by host) and the head's lag.
    let host = chain.url.trim_start_matches("http://");
    let count = format!("bsc_bot_rpc_request_duration_seconds_count{{endpoint=\"{host}\"}} ");
    let requests: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix(count.as_str()))
        .unwrap_or_else(|| panic!("{count} in\n{metrics}"))
        .parse()
        .unwrap();
    assert!(requests > 10, "every swap and poll is timed: {requests}");
    assert!(
        metrics.contains(&format!(
            "bsc_bot_rpc_request_duration_seconds_bucket{{endpoint=\"{host}\",le=\"+Inf\"}} {requests}\n"
        )),
        "{metrics}"
    );
    let lag: i64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("bsc_bot_chain_head_lag_seconds "))
        .unwrap_or_else(|| panic!("head lag in\n{metrics}"))
        .parse()
        .unwrap();
    assert!(lag.abs() < 3_600, "anvil's head is current: {lag} s");
    store.close().await;
}

/// A swap mined while the daemon was down (it hung after the broadcast and was killed) is applied
/// at the restart with its gas in quote, at BNB's price then, as a fill the daemon settles itself:
/// PnL net of gas counts it. The market is BNB/USDT with BNB mapped to the pair's base token (the
/// pool's own price is BNB's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swap_mined_while_down_keeps_its_gas_in_quote() {
    let Some(chain) = TestChain::start().await else {
        return;
    };
    let u = chain.deploy_uniswap(10, 1_000_000).await;
    let db = TestDb::new("sqlite").await;
    let ex = FakeBinance::start().await;
    let (config, me) = live_wallet(&chain, &u, &db, &ex.url, "", "BNB").await;
    // From 100k the cells above the price start bought: the first of those buys hangs after its
    // broadcast and is mined while the daemon is killed.
    let created = db
        .run(&[
            "--config", &config, "--json", "strategy", "create", "-t", "grid", "-s", "BNB/USDT",
            "-n", "bnb", "-m", "live", "--confirm-live", "--wallet", "hot", "-p",
            r#"{"lower_price":"95000","upper_price":"105000","grid_count":6,"base_order_size":"1000","fee_bps":30}"#,
        ])
        .ok()
        .json();
    let id = created["strategy"]["id"].as_i64().unwrap();
    let store = db.store().await;
    let hung = RunningDaemon::start_with_env(
        &db,
        &config,
        &[],
        &[
            ("BSC_BOT_KEYSTORE_PASSWORD", PASSWORD),
            ("BSC_BOT_FAILPOINTS", "chain.after_broadcast.swap=hang"),
        ],
    )
    .await;
    let mut hash = None;
    for _ in 0..300 {
        let txs = store.chain_txs_of(56, me).await.unwrap();
        if let Some(t) = txs.iter().find(|t| t.purpose == "swap") {
            hash = Some(t.tx_hash.clone());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let hash = hash.expect("a swap on record before its broadcast");
    let client = ChainClient::connect(&ChainConfig {
        rpc_urls: vec![chain.url.clone()],
        ..ChainConfig::default()
    })
    .await
    .unwrap();
    let mut mined = false;
    for _ in 0..100 {
        use alloy::providers::Provider;
        if client
            .provider()
            .get_transaction_receipt(hash.parse().unwrap())
            .await
            .unwrap()
            .is_some()
        {
            mined = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(mined, "the hung daemon's swap is mined");
    assert_eq!(
        store.trade_count(id).await.unwrap(),
        0,
        "no fill on record yet"
    );
    let _ = std::process::Command::new("kill")
        .args(["-9", &hung.child.id().to_string()])
        .status();
    drop(hung);

    let _daemon = RunningDaemon::start_with_env(
        &db,
        &config,
        &[],
        &[("BSC_BOT_KEYSTORE_PASSWORD", PASSWORD)],
    )
    .await;
    let mut recovered = None;
    for _ in 0..300 {
        let trades = store.trading_history(Some(id), 100).await.unwrap();
        if let Some(t) = trades
            .into_iter()
            .find(|t| t.tx_hash.as_deref() == Some(hash.as_str()))
        {
            recovered = Some(t);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let t = recovered.expect("the mined swap applied at the restart");
    let gas_bnb = d(t.gas_fee.as_deref().expect("its gas in BNB"));
    assert!(gas_bnb > Decimal::ZERO);
    let bnb_price = d(t.gas_bnb_price.as_deref().expect("BNB's price on record"));
    assert_eq!(
        bnb_price,
        d(&t.price),
        "BNB's price is the BNB/USDT pool's own"
    );
    assert_eq!(
        d(t.gas_quote.as_deref().expect("its gas in quote")),
        gas_bnb * bnb_price,
        "gas in quote = gas in BNB at BNB's price"
    );
    // The strategy's performance counts it: net of gas = gross less the fills' gas in quote. The
    // restarted daemon goes on trading (the buy it re-issues), so read until the state written
    // and the trades on record agree.
    let mut last = String::new();
    let mut agreed = false;
    for _ in 0..100 {
        let record = store
            .get_strategy(&bsc_bot::store::StrategyRef::Id(id))
            .await
            .unwrap();
        let perf = bsc_bot::views::performance(&record);
        let gas_quote: Decimal = store
            .trading_history(Some(id), 100)
            .await
            .unwrap()
            .iter()
            .filter_map(|t| t.gas_quote.as_deref().map(d))
            .sum();
        let gas = perf["gas"].as_str().map(d);
        let total = perf["total_pnl"].as_str().map(d);
        let net = perf["total_pnl_net_of_gas"].as_str().map(d);
        last = format!("{perf} against {gas_quote} on record");
        if gas == Some(gas_quote)
            && gas_quote >= gas_bnb * bnb_price
            && total.zip(net).is_some_and(|(t, n)| n == t - gas_quote)
        {
            agreed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        agreed,
        "performance counts the recovered swap's gas: {last}"
    );
    store.close().await;
}
