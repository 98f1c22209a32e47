//! A live canary for the daemon tests: a config pointing at the test chain, a wallet made with
//! `wallet generate` and funded, and a live 5-level grid (95k..105k, 1,000 quote a cell) on it.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use alloy::primitives::{Address, U256};
use bsc_bot::chain::{ChainClient, Pool};
use bsc_bot::config::ChainConfig;
use rust_decimal::Decimal;

use crate::common::daemon::write_config;
use crate::common::TestDb;
use crate::testchain::{TestChain, Uniswap};

pub const PASSWORD: &str = "correct horse battery";

pub struct Canary {
    pub config: String,
    /// The wallet's address.
    pub me: Address,
    /// The strategy's id.
    pub id: i64,
    /// A client straight to the node (not through the daemon's endpoints).
    pub client: ChainClient,
    pub pool: Pool,
    /// The wallet's BNB, base and quote before the daemon ran.
    pub before: (Decimal, Decimal, Decimal),
}

/// Set it up: `rpc_urls` are the daemon's endpoints, `chain_extra` more `[chain]` lines.
pub async fn canary(
    chain: &TestChain,
    u: &Uniswap,
    db: &TestDb,
    ws_url: &str,
    rpc_urls: &[&str],
    chain_extra: &str,
) -> Canary {
    canary_with(chain, u, db, ws_url, rpc_urls, chain_extra, true).await
}

/// [`canary`], with the strategy created or not (`id` 0: create it later with [`create_canary`]).
pub async fn canary_with(
    chain: &TestChain,
    u: &Uniswap,
    db: &TestDb,
    ws_url: &str,
    rpc_urls: &[&str],
    chain_extra: &str,
    create_strategy: bool,
) -> Canary {
    let urls: Vec<String> = rpc_urls.iter().map(|u| format!("\"{u}\"")).collect();
    let sections = format!(
        "[chain]\nchain_id = 56\nrpc_urls = [{urls}]\n{chain_extra}\n\n\
         [dex]\nrouter = \"{router}\"\nfactory = \"{factory}\"\nfee_bps = 30\nslippage_bps = 50\n\n\
         [dex.assets]\nBTC = \"{base}\"\nUSDT = \"{quote}\"\n",
        urls = urls.join(", "),
        router = u.router,
        factory = u.factory,
        base = u.base,
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
    let id = if create_strategy {
        create_canary(db, &config)
    } else {
        0
    };
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
    Canary {
        config,
        me,
        id,
        client,
        pool,
        before,
    }
}

/// The live 5-level grid on wallet `hot`; returns its id.
pub fn create_canary(db: &TestDb, config: &str) -> i64 {
    create_live_grid(db, config, "canary", "1000")
}

/// A live 5-level grid (95k..105k) named `name` on wallet `hot`, buying `size` quote a cell.
pub fn create_live_grid(db: &TestDb, config: &str, name: &str, size: &str) -> i64 {
    let params = format!(
        r#"{{"lower_price":"95000","upper_price":"105000","grid_count":5,"base_order_size":"{size}","fee_bps":30}}"#
    );
    create_live(db, config, name, "hot", &params).ok().json()["strategy"]["id"]
        .as_i64()
        .unwrap()
}

/// `strategy create` of a live BTC/USDT grid named `name` on `wallet` with `params` (`--json`):
/// the run, to check it succeeded or why it did not.
pub fn create_live(
    db: &TestDb,
    config: &str,
    name: &str,
    wallet: &str,
    params: &str,
) -> crate::common::Run {
    db.run(&[
        "--config",
        config,
        "--json",
        "strategy",
        "create",
        "-t",
        "grid",
        "-s",
        "BTC/USDT",
        "-n",
        name,
        "-m",
        "live",
        "--confirm-live",
        "--wallet",
        wallet,
        "-p",
        params,
    ])
}

/// Wait up to `within` for strategy `id` to have `n` trades on record.
pub async fn trades_reach(
    store: &bsc_bot::store::Store,
    id: i64,
    n: i64,
    within: std::time::Duration,
) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < within {
        if store.trade_count(id).await.unwrap() >= n {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    false
}
