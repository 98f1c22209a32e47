//! `kill -9` of the live daemon at 20 random moments while its grid trades on a real chain with
//! 1-second blocks (a swap is in flight until the next block), the pool price walked across the
//! grid by another account meanwhile; then one last run to settle. Afterwards:
//! - every transaction the bot's address has on chain is on record, and nothing else: nonces
//!   0..n, each once;
//! - every mined swap is exactly one trade (with its hash and gas), every trade a mined swap;
//! - no order got two swaps, and every cell alternates buy, sell, buy… (no cell bought twice);
//! - no order is left in flight;
//! - the wallet's balances moved exactly as the trades say (to the wei), its BNB by the gas on
//!   record, and the strategy's ledger equals its trades.
//!
//! The moments come from a seed (`CRASH_SEED`, printed); chain timing makes runs differ anyway,
//! so the test reports how many kills caught a swap in flight and how many swaps a restart found
//! mined while the daemon was down.

#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/chain.rs"]
mod testchain;

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;
use std::time::{Duration, Instant};

use alloy::primitives::{Address, U256};
use alloy::providers::Provider;
use bsc_bot::chain::ChainClient;
use bsc_bot::config::ChainConfig;
use common::daemon::{write_config, RunningDaemon};
use common::exchange::FakeBinance;
use common::TestDb;
use rust_decimal::Decimal;
use testchain::TestChain;

const PASSWORD: &str = "correct horse battery";
const KILLS: usize = 20;

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

/// xorshift64*: the kill moments, reproducible from the seed.
struct Moments(u64);

impl Moments {
    fn next_ms(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % below
    }
}

async fn in_flight_on_record(store: &bsc_bot::store::Store, id: i64, wallet: Address) -> usize {
    let (_, flying) = store.resting_and_in_flight(id).await.unwrap();
    let unresolved = store.unresolved_txs(56, &wallet.to_string()).await.unwrap();
    flying.len().max(unresolved.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_nine_at_twenty_moments_loses_and_repeats_nothing() {
    let Some(chain) = TestChain::start_with_block_time(1).await else {
        return;
    };
    let seed: u64 = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_261_202);
    eprintln!("CRASH_SEED={seed}");
    let mut moments = Moments(seed.max(1));
    let u = chain.deploy_uniswap(10, 1_000_000).await;
    chain.fund_trader(&u, 5, 500_000).await;
    let db = TestDb::new("sqlite").await;
    let ex = FakeBinance::start().await;
    let sections = format!(
        "[chain]\nchain_id = 56\nrpc_urls = [\"{url}\"]\npool_poll_ms = 50\n\n\
         [dex]\nrouter = \"{router}\"\nfactory = \"{factory}\"\nfee_bps = 30\nslippage_bps = 50\n\n\
         [dex.assets]\nBTC = \"{base}\"\nUSDT = \"{quote}\"\n",
        url = chain.url,
        router = u.router,
        factory = u.factory,
        base = u.base,
        quote = u.quote,
    );
    let config = write_config(&db, &ex.url, &sections);
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
    let created = db
        .run(&[
            "--config", &config, "--json", "strategy", "create", "-t", "grid", "-s", "BTC/USDT",
            "-n", "canary", "-m", "live", "--confirm-live", "--wallet", "hot", "-p",
            r#"{"lower_price":"95000","upper_price":"105000","grid_count":5,"base_order_size":"1000","fee_bps":30}"#,
        ])
        .ok()
        .json();
    let id = created["strategy"]["id"].as_i64().unwrap();
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
    let env = [("BSC_BOT_KEYSTORE_PASSWORD", PASSWORD)];
    let store = db.store().await;
    // Levels 95k, 97k, 99k, 101k, 103k, 105k: every walk crosses two to four of them.
    let targets = ["95600", "104400", "96500", "103600", "98000", "102200"];
    let mut caught_in_flight = 0;
    for round in 0..KILLS {
        let daemon = RunningDaemon::start_with_env(&db, &config, &[], &env).await;
        let pid = daemon.child.id();
        let after_ms = 300 + moments.next_ms(4_700);
        let killer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(after_ms)).await;
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status();
        });
        chain
            .walk_to(&client, &pool, u.router, d(targets[round % targets.len()]))
            .await;
        killer.await.unwrap();
        drop(daemon);
        let flying = in_flight_on_record(&store, id, me).await;
        if flying > 0 {
            caught_in_flight += 1;
        }
        eprintln!("kill {round}: after {after_ms} ms, {flying} swap(s) in flight on record");
    }
    // One last run settles everything: it ends when nothing is in flight for 3 s.
    let daemon = RunningDaemon::start_with_env(&db, &config, &[], &env).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut quiet_since = Instant::now();
    loop {
        assert!(
            Instant::now() < deadline,
            "orders still in flight after 60 s"
        );
        if in_flight_on_record(&store, id, me).await > 0 {
            quiet_since = Instant::now();
        } else if quiet_since.elapsed() > Duration::from_secs(3) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(daemon);

    // Everything the address did on chain is on record, once, with contiguous nonces.
    let txs = store.chain_txs_of(56, &me.to_string()).await.unwrap();
    let on_chain: Vec<_> = txs
        .iter()
        .filter(|t| t.status == "mined" || t.status == "reverted")
        .collect();
    assert!(
        txs.iter()
            .all(|t| matches!(t.status.as_str(), "mined" | "reverted" | "rejected")),
        "every transaction settled: {:?}",
        txs.iter().map(|t| &t.status).collect::<Vec<_>>()
    );
    let nonce = client.provider().get_transaction_count(me).await.unwrap();
    let nonces: Vec<i64> = on_chain.iter().map(|t| t.nonce).collect();
    let mut sorted = nonces.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        (0..nonce as i64).collect::<Vec<_>>(),
        "nonces 0..{nonce}, each once"
    );
    for t in &on_chain {
        let r = client
            .provider()
            .get_transaction_receipt(t.tx_hash.parse().unwrap())
            .await
            .unwrap()
            .expect("a transaction on record as mined has its receipt");
        assert_eq!(r.from, me);
        assert_eq!(r.status(), t.status == "mined");
    }
    // No order got two swaps.
    let swaps: Vec<_> = on_chain.iter().filter(|t| t.purpose == "swap").collect();
    let mut per_reference: BTreeMap<&str, usize> = BTreeMap::new();
    for s in &swaps {
        *per_reference
            .entry(s.reference.as_deref().unwrap())
            .or_default() += 1;
    }
    assert!(
        per_reference.values().all(|n| *n == 1),
        "one swap per order: {per_reference:?}"
    );
    // Mined swaps = trades, one each.
    let mined: BTreeSet<&str> = swaps
        .iter()
        .filter(|t| t.status == "mined")
        .map(|t| t.tx_hash.as_str())
        .collect();
    let trades = store.trading_history(Some(id), 10_000).await.unwrap();
    let traded: Vec<&str> = trades
        .iter()
        .map(|t| t.tx_hash.as_deref().expect("a live trade has its tx hash"))
        .collect();
    assert_eq!(traded.len(), mined.len(), "one trade per mined swap");
    assert_eq!(traded.iter().copied().collect::<BTreeSet<_>>(), mined);
    assert!(trades.iter().all(|t| t.gas_fee.is_some()));
    // Every cell alternates buy, sell, buy… in chain order.
    let orders = store.list_orders(Some(id), None).await.unwrap();
    let mut by_nonce: Vec<_> = trades.iter().collect();
    let nonce_of = |hash: &str| swaps.iter().find(|s| s.tx_hash == hash).unwrap().nonce;
    by_nonce.sort_by_key(|t| nonce_of(t.tx_hash.as_deref().unwrap()));
    let mut cells: BTreeMap<i64, Vec<&str>> = BTreeMap::new();
    for t in &by_nonce {
        let cell = orders
            .iter()
            .find(|o| Some(o.id) == t.order_id)
            .and_then(|o| o.cell)
            .expect("a trade's order and cell on record");
        cells.entry(cell).or_default().push(t.side.as_str());
    }
    for (cell, sides) in &cells {
        for (i, side) in sides.iter().enumerate() {
            let want = if i % 2 == 0 { "buy" } else { "sell" };
            assert_eq!(*side, want, "cell {cell}: {sides:?}");
        }
    }
    assert!(
        orders
            .iter()
            .all(|o| !matches!(o.status.as_str(), "submitted" | "accepted")),
        "no order left in flight"
    );
    // Balances to the wei; ledger = trades.
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
    let base_moved = sum("buy", |t| &t.base_amount) - sum("sell", |t| &t.base_amount);
    let quote_moved = sum("sell", |t| &t.quote_amount) - sum("buy", |t| &t.quote_amount);
    assert_eq!(after.1 - before.1, base_moved, "base = trades");
    assert_eq!(after.2 - before.2, quote_moved, "quote = trades");
    let gas: Decimal = on_chain
        .iter()
        .map(|t| d(t.fee_bnb.as_deref().unwrap()))
        .sum();
    assert_eq!(before.0 - after.0, gas, "BNB spent = gas on record");
    let record = store
        .get_strategy(&bsc_bot::store::StrategyRef::Id(id))
        .await
        .unwrap();
    let doc: serde_json::Value = serde_json::from_str(record.state.as_deref().unwrap()).unwrap();
    let ledger = &doc["ledger"];
    assert_eq!(
        d(ledger["base"].as_str().unwrap()),
        base_moved,
        "ledger base"
    );
    assert_eq!(
        d(ledger["quote"].as_str().unwrap()),
        d(ledger["initial_quote"].as_str().unwrap()) + quote_moved,
        "ledger quote"
    );
    assert_eq!(ledger["fills"].as_u64().unwrap(), trades.len() as u64);
    let recovered: Vec<String> = store
        .risk_events_since(0)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "restart_recovery")
        .map(|e| e.message)
        .collect();
    for line in &recovered {
        eprintln!("  {line}");
    }
    let recovered = recovered.len();
    eprintln!(
        "{KILLS} kills: {caught_in_flight} caught a swap in flight; {} swaps mined, {} reverted; \
         {recovered} restarts settled orders left in flight",
        mined.len(),
        swaps.len() - mined.len()
    );
    assert!(
        caught_in_flight >= 2,
        "the kills should catch swaps in flight ({caught_in_flight} of {KILLS} did)"
    );
    store.close().await;
}
