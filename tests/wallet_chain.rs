//! Wallets and the chain client against a real local chain (anvil with the Uniswap V2
//! contracts): keystores through the real binary, balances and pool reserves read from the chain
//! with each token's own decimals, a node on the wrong chain refused, and no key anywhere in what
//! the bot prints or stores.

#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/proxy.rs"]
mod proxy;
#[path = "common/chain.rs"]
mod testchain;

use alloy::primitives::{Address, U256};
use alloy::providers::Provider;
use alloy::signers::local::PrivateKeySigner;
use bsc_bot::chain::ChainClient;
use bsc_bot::config::ChainConfig;
use common::TestDb;
use rust_decimal::Decimal;
use testchain::{TestChain, DEPLOYER_KEY};

const PASSWORD: &str = "correct horse battery";

fn chain_config(db: &TestDb, chain: &TestChain, u: &testchain::Uniswap, chain_id: u64) -> String {
    let path = db.dir.path().join("bsc-bot.toml");
    std::fs::write(
        &path,
        format!(
            "[chain]\nchain_id = {chain_id}\nrpc_urls = [\"http://127.0.0.1:9\", \"{url}\"]\nrpc_timeout_ms = 2000\n\n\
             [dex]\nrouter = \"{router}\"\nfactory = \"{factory}\"\nfee_bps = 30\n\n[dex.assets]\nBTC = \"{base}\"\nUSDT = \"{quote}\"\n",
            url = chain.url,
            router = u.router,
            factory = u.factory,
            base = u.base,
            quote = u.quote,
        ),
    )
    .unwrap();
    path.to_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wallets_balances_and_pool_on_a_real_chain() {
    let Some(chain) = TestChain::start().await else {
        return;
    };
    let u = chain.deploy_uniswap(10, 1_000_000).await;
    let db = TestDb::new("sqlite").await;
    let config = chain_config(&db, &chain, &u, 56);

    // generate: the address only on stdout; the keystore decrypts to that address.
    let r = db
        .cmd(&["--config", &config, "wallet", "generate", "--name", "hot"])
        .env("BSC_BOT_KEYSTORE_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let printed = String::from_utf8(r.stdout).unwrap();
    let hot: Address = printed.trim().parse().unwrap();
    let keystore = bsc_bot::wallet::Keystore::new(db.dir.path().join("data/keystore"));
    assert_eq!(keystore.unlock("hot", PASSWORD).unwrap().address(), hot);
    // A wrong password is a clear error.
    assert!(matches!(
        keystore.unlock("hot", "not the password"),
        Err(bsc_bot::wallet::WalletError::WrongPassword(_))
    ));

    // A live strategy on that wallet: created when wallet, tokens and pool exist; refused when
    // the market has no token or no pool.
    let live = |symbol: &str, config: &str| {
        db.run(&[
            "--config", config, "--json", "strategy", "create", "-t", "grid", "-s", symbol, "-n",
            &format!("live-{}", symbol.replace('/', "-")), "-m", "live", "--confirm-live",
            "--wallet", "hot", "-p",
            r#"{"lower_price":"95000","upper_price":"105000","grid_count":5,"base_order_size":"100","fee_bps":30}"#,
        ])
    };
    let created = live("BTC/USDT", &config).ok().json();
    assert_eq!(created["strategy"]["wallet"], "hot");
    live("ETH/USDT", &config).fails_with(1, "no token for ETH in [dex.assets]");
    let no_pool = config.replace(".toml", "-nopool.toml");
    std::fs::write(
        &no_pool,
        std::fs::read_to_string(&config).unwrap() + &format!("ETH = \"{}\"\n", u.weth),
    )
    .unwrap();
    live("ETH/USDT", &no_pool).fails_with(1, "no pool for");

    // The cost warning prices gas at what a swap pays now (a 10 gwei floor here), not at the
    // 0.1 gwei default: a grid fine at 0.1 gwei is warned about at 10.
    let small = |name: &str, config: &str| {
        db.run(&[
            "--config", config, "strategy", "create", "-t", "grid", "-s", "BTC/USDT", "-n", name,
            "-m", "live", "--confirm-live", "--wallet", "hot", "-p",
            r#"{"lower_price":"95000","upper_price":"105000","grid_count":5,"base_order_size":"20","fee_bps":30}"#,
        ])
    };
    let with_gas = |file: &str, line: &str| {
        let path = config.replace(".toml", file);
        std::fs::write(
            &path,
            std::fs::read_to_string(&config)
                .unwrap()
                .replace("[chain]\n", &format!("[chain]\n{line}\n")),
        )
        .unwrap();
        path
    };
    let cheap_config = with_gas("-cheap.toml", "gas_price_cap_gwei = \"0.1\"");
    let cheap = small("cheap gas", &cheap_config);
    assert!(
        !cheap.ok().stderr.contains("below a round trip's cost"),
        "{cheap:#?}"
    );
    let pricey = with_gas("-gas.toml", "gas_price_floor_gwei = \"10\"");
    let warned = small("dear gas", &pricey);
    let text = &warned.ok().stderr;
    assert!(text.contains("below a round trip's cost"), "{warned:#?}");
    assert!(text.contains("gas: 150000 units at 10 gwei"), "{warned:#?}");
    for name in ["cheap gas", "dear gas"] {
        db.run(&["--config", &config, "strategy", "stop", name])
            .ok();
    }

    // A live strategy nothing runs is never called running: not without a daemon, and not when the
    // daemon cannot unlock its wallet (no password in its environment) — list, status, bot status,
    // health all say so, with the reason.
    let listed = db
        .run(&["--config", &config, "--json", "strategy", "list"])
        .ok()
        .json();
    let doc = &listed["strategies"][0];
    assert_eq!(
        (doc["mode"].as_str(), doc["running"].as_bool()),
        (Some("live"), Some(false))
    );
    let shown = db.run(&["--config", &config, "strategy", "status", "live-BTC-USDT"]);
    assert!(
        shown
            .ok()
            .stdout
            .contains("running   no — not running: no daemon is running"),
        "{shown:#?}"
    );
    let table = db.run(&["--config", &config, "strategy", "list"]);
    assert!(table.ok().stdout.contains("active (not running)"));
    let ex = common::exchange::FakeBinance::start().await;
    let chain_sections = std::fs::read_to_string(&config).unwrap();
    let daemon_config = common::daemon::write_config(&db, &ex.url, &chain_sections);
    let d = common::daemon::RunningDaemon::start(&db, &daemon_config, &[]).await;
    let (_, health) = d.get("/api/health").await;
    assert_eq!(health["status"], "degraded", "{health}");
    assert!(
        health
            .to_string()
            .contains("not running: BSC_BOT_KEYSTORE_PASSWORD is not set"),
        "{health}"
    );
    let shown = db.run(&[
        "--config",
        &daemon_config,
        "strategy",
        "status",
        "live-BTC-USDT",
    ]);
    assert!(
        shown
            .ok()
            .stdout
            .contains("BSC_BOT_KEYSTORE_PASSWORD is not set"),
        "{shown:#?}"
    );
    let st = db
        .run(&["--config", &daemon_config, "--json", "bot", "status"])
        .ok()
        .json();
    assert_eq!(st["strategies"]["not_running"], 1);
    // The gas price the bot would pay, from the node, with the cap (runbook 002).
    let (code, gas) = d.get("/api/v1/gas-price").await;
    assert_eq!(code, 200, "{gas}");
    let node = chain.reader().get_gas_price().await.unwrap();
    assert_eq!(gas["node_wei"], node.to_string(), "{gas}");
    let defaults = bsc_bot::config::ChainConfig::default();
    let pays = bsc_bot::chain::gas::gas_price_wei(node, &defaults).unwrap();
    assert_eq!(gas["bot_wei"], pays.to_string(), "{gas}");
    assert_eq!(
        gas["cap_wei"],
        bsc_bot::chain::gas::gas_price_cap_wei(&defaults)
            .unwrap()
            .to_string(),
        "{gas}"
    );
    drop(d);

    // The node is down: health says the RPC is down, not "not used", for the live strategy.
    let down_sections = chain_sections.replace(
        &format!("rpc_urls = [\"http://127.0.0.1:9\", \"{}\"]", chain.url),
        "rpc_urls = [\"http://127.0.0.1:9\"]",
    );
    assert_ne!(down_sections, chain_sections);
    let down_config = common::daemon::write_config(&db, &ex.url, &down_sections);
    let d = common::daemon::RunningDaemon::start_with_env(
        &db,
        &down_config,
        &[],
        &[("BSC_BOT_KEYSTORE_PASSWORD", PASSWORD)],
    )
    .await;
    let (_, health) = d.get("/api/health").await;
    assert!(
        health["services"]["rpc"]
            .as_str()
            .unwrap()
            .starts_with("down: chain: "),
        "{health}"
    );
    let (code, gas) = d.get("/api/v1/gas-price").await;
    assert_eq!(code, 503, "{gas}");
    assert_eq!(gas["error"]["status"], 503, "{gas}");
    drop(d);
    // (The daemon's config shares the CLI's file: give it its node back.)
    common::daemon::write_config(&db, &ex.url, &chain_sections);

    // import: the key from the environment only; a second wallet of the same name is refused.
    let key = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a";
    let imported: Address = key.parse::<PrivateKeySigner>().unwrap().address();
    let run_import = |name: &str| {
        db.cmd(&[
            "--config", &config, "--json", "wallet", "import", "--name", name,
        ])
        .env("BSC_BOT_KEYSTORE_PASSWORD", PASSWORD)
        .env("BSC_BOT_PRIVATE_KEY", key)
        .output()
        .unwrap()
    };
    let r = run_import("canary");
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(
        v["address"].as_str().unwrap().parse::<Address>().unwrap(),
        imported
    );
    let again = run_import("canary");
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));

    // Fund the canary: 2.5 BNB, 3 base tokens, 1,000 quote tokens.
    chain
        .set_bnb(
            imported,
            U256::from(25u8) * U256::from(10u8).pow(U256::from(17u8)),
        )
        .await;
    chain.give_tokens(u.base, imported, 3).await;
    chain.give_tokens(u.quote, imported, 1_000).await;

    // list: balances from the chain (the first RPC URL is dead; the second answers).
    let r = db.run(&["--config", &config, "--json", "wallet", "list"]);
    r.ok();
    let v = r.json();
    assert_eq!(v["chain_id"], 56);
    let wallets = v["wallets"].as_array().unwrap();
    assert_eq!(wallets.len(), 2);
    let canary = wallets.iter().find(|w| w["name"] == "canary").unwrap();
    assert_eq!(canary["balances"]["BNB"], "2.5");
    assert_eq!(canary["balances"]["BTC"], "3");
    assert_eq!(canary["balances"]["USDT"], "1000");
    let hot_doc = wallets.iter().find(|w| w["name"] == "hot").unwrap();
    assert_eq!(hot_doc["balances"]["BNB"], "0");

    // A node on another chain is refused, by host, without the URL's path.
    let wrong = chain_config(&db, &chain, &u, 97);
    let r = db.run(&["--config", &wrong, "wallet", "list"]);
    r.ok();
    assert!(
        r.stderr
            .contains("is on chain 56, not the configured chain 97"),
        "{r:#?}"
    );

    // The chain client: decimals from the contracts, reserves and price from the pair.
    let cfg = ChainConfig {
        rpc_urls: vec![chain.url.clone()],
        ..ChainConfig::default()
    };
    let client = ChainClient::connect(&cfg).await.unwrap();
    let base = client.token(u.base).await.unwrap();
    let quote = client.token(u.quote).await.unwrap();
    assert_eq!((base.decimals, quote.decimals), (18, 18));
    let pool = client.pool(u.factory, base, quote).await.unwrap();
    assert_eq!(pool.pair, u.pair);
    let (rb, rq) = client.reserves(&pool).await.unwrap();
    assert_eq!((rb, rq), (Decimal::from(10), Decimal::from(1_000_000)));
    // The reverse pair order gives the same reserves, swapped by the client.
    let flipped = client
        .pool(u.factory, pool.quote.clone(), pool.base.clone())
        .await
        .unwrap();
    assert_eq!(client.reserves(&flipped).await.unwrap(), (rq, rb));

    // No key anywhere: not in what the CLI printed, not in the keystore files in the clear,
    // not in the database.
    let mut seen = String::new();
    for args in [
        vec!["--config", config.as_str(), "--json", "wallet", "list"],
        vec!["--config", config.as_str(), "wallet", "list"],
        vec!["--config", config.as_str(), "--json", "config", "check"],
    ] {
        let r = db.run(&args);
        seen.push_str(&r.stdout);
        seen.push_str(&r.stderr);
    }
    for dir in ["data/keystore", "data"] {
        for entry in std::fs::read_dir(db.dir.path().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                seen.push_str(&String::from_utf8_lossy(&std::fs::read(&path).unwrap()));
            }
        }
    }
    let hot_key = alloy::hex::encode(keystore.unlock("hot", PASSWORD).unwrap().to_bytes());
    for secret in [&key[2..], hot_key.as_str(), PASSWORD, &DEPLOYER_KEY[2..]] {
        assert!(
            !seen.to_lowercase().contains(&secret.to_lowercase()),
            "a secret leaked"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_feed_ticks_when_the_reserves_move() {
    use bsc_bot::market::pool::{run_pool_feed, PoolFeedState};
    use std::sync::Arc;
    use std::time::Duration;
    let Some(chain) = TestChain::start().await else {
        return;
    };
    let u = chain.deploy_uniswap(10, 1_000_000).await;
    let cfg = ChainConfig {
        rpc_urls: vec![chain.url.clone()],
        ..ChainConfig::default()
    };
    let client = ChainClient::connect(&cfg).await.unwrap();
    let base = client.token(u.base).await.unwrap();
    let quote = client.token(u.quote).await.unwrap();
    let pool = client.pool(u.factory, base, quote).await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let state = Arc::new(PoolFeedState::default());
    let feed = tokio::spawn(run_pool_feed(
        client.clone(),
        pool.clone(),
        3,
        Duration::from_millis(20),
        tx,
        state.clone(),
        stop_rx,
    ));
    let first = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.symbol, 3);
    assert_eq!(first.price.to_decimal(), Some(Decimal::from(100_000)));
    // Quiet reserves send nothing more.
    assert!(tokio::time::timeout(Duration::from_millis(200), rx.recv())
        .await
        .is_err());
    // A trader's sell moves the reserves: the next tick is the new reserves' price.
    chain.give_tokens(u.base, testchain_trader(), 1).await;
    chain.sell_base(&u, 1).await;
    let next = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap()
        .unwrap();
    let (rb, rq) = client.reserves(&pool).await.unwrap();
    assert_eq!(next.price.to_decimal(), Some((rq / rb).round_dp(18)));
    assert!(next.price.to_decimal().unwrap() < Decimal::from(100_000));
    assert_eq!(state.ticks.load(std::sync::atomic::Ordering::Relaxed), 2);
    // The node goes away: the feed counts errors and keeps going, never crashing.
    drop(chain);
    // (Each read tries the endpoint again over `rpc_retries` rounds before it reports.)
    let errors = || state.errors.load(std::sync::atomic::Ordering::Relaxed);
    for _ in 0..60 {
        if errors() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(errors() > 0);
    assert!(!feed.is_finished());
    stop_tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(6), feed)
        .await
        .unwrap()
        .unwrap();
}

fn testchain_trader() -> Address {
    testchain::TRADER_KEY
        .parse::<PrivateKeySigner>()
        .unwrap()
        .address()
}

/// The `Sync` subscription: the pool's price arrives pushed, one tick per move, with no polling;
/// when the WebSocket drops (a proxy in front of anvil cuts it and refuses new connections) the
/// moves made meanwhile are missed, and after the reconnect the gap is refilled with `eth_getLogs`:
/// the next tick is the chain's current price.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_subscription_pushes_prices_and_refills_a_gap() {
    use bsc_bot::market::pool::PoolFeedState;
    use bsc_bot::market::pool_sync::{run_pool_sync_feed, SyncFeedState};
    use std::sync::atomic::Ordering;
    use std::sync::Arc;
    use std::time::Duration;
    let Some(chain) = TestChain::start().await else {
        return;
    };
    let u = chain.deploy_uniswap(10, 1_000_000).await;
    let mut ws = proxy::RpcProxy::start(&chain.url).await;
    let cfg = ChainConfig {
        rpc_urls: vec![chain.url.clone()],
        ..ChainConfig::default()
    };
    let client = ChainClient::connect(&cfg).await.unwrap();
    let base = client.token(u.base).await.unwrap();
    let quote = client.token(u.quote).await.unwrap();
    let pool = client.pool(u.factory, base, quote).await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let state = Arc::new(PoolFeedState::default());
    let sync = Arc::new(SyncFeedState::default());
    let feed = tokio::spawn(run_pool_sync_feed(
        vec![ws.url.replace("http://", "ws://")],
        client.clone(),
        pool.clone(),
        7,
        tx,
        state.clone(),
        sync.clone(),
        stop_rx,
    ));
    async fn next(
        rx: &mut tokio::sync::mpsc::Receiver<bsc_bot::model::MarketTick>,
    ) -> bsc_bot::model::MarketTick {
        tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("a tick")
            .unwrap()
    }
    let now_price = |client: ChainClient, pool: bsc_bot::chain::Pool| async move {
        let (b, q) = client.reserves(&pool).await.unwrap();
        (q / b).round_dp(18)
    };
    let first = next(&mut rx).await;
    assert_eq!(first.symbol, 7);
    assert_eq!(first.price.to_decimal(), Some(Decimal::from(100_000)));
    // A trader's sell: pushed as its `Sync` event.
    chain.give_tokens(u.base, testchain_trader(), 3).await;
    chain.sell_base(&u, 1).await;
    let pushed = next(&mut rx).await;
    assert_eq!(
        pushed.price.to_decimal(),
        Some(now_price(client.clone(), pool.clone()).await)
    );
    assert_eq!(sync.events.load(Ordering::Relaxed), 1);
    // The socket drops; two moves happen unseen; it comes back.
    ws.down();
    tokio::time::sleep(Duration::from_millis(300)).await;
    chain.sell_base(&u, 1).await;
    chain.sell_base(&u, 1).await;
    assert!(rx.try_recv().is_err(), "nothing while disconnected");
    ws.up().await;
    let refilled = next(&mut rx).await;
    assert_eq!(
        refilled.price.to_decimal(),
        Some(now_price(client.clone(), pool.clone()).await),
        "the price after the gap is the chain's"
    );
    assert_eq!(
        sync.refilled.load(Ordering::Relaxed),
        2,
        "both missed events"
    );
    assert!(sync.drops.load(Ordering::Relaxed) >= 1);
    assert!(sync.connections.load(Ordering::Relaxed) >= 2);
    stop_tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(6), feed)
        .await
        .unwrap()
        .unwrap();
}
