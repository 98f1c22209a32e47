//! The daemon trading PancakeSwap V3 pools on a real local chain (anvil, the npm PancakeSwap V3
//! contracts beside a Uniswap V2 pair): with `dex.pools = ["v2", "v3:500", "v3:2500"]` a live
//! grid's swaps go to the pool that pays most, a grid pinned to one pool never leaves it, and a
//! grid pinned to a pool the chain does not have is not run, with the reason; the market's price
//! comes from its deepest pool, followed over the WebSocket by the V3 pool's `Swap` events; every
//! wallet equals its records to the wei. Bad pool settings are refused at load.

#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/chain.rs"]
mod testchain;
#[path = "common/chain_v3.rs"]
mod testchain_v3;

use std::collections::BTreeSet;
use std::str::FromStr;
use std::time::Duration;

use alloy::primitives::{Address, U256};
use alloy::signers::local::PrivateKeySigner;
use bsc_bot::amm::PoolKind;
use bsc_bot::chain::ChainClient;
use bsc_bot::config::ChainConfig;
use common::daemon::{write_config, RunningDaemon};
use common::exchange::FakeBinance;
use common::TestDb;
use rust_decimal::Decimal;
use testchain::{assert_records_equal_chain, TestChain, TRADER_KEY};
use testchain_v3::Range;

const PASSWORD: &str = "correct horse battery";

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

const RANGES: [Range; 4] = [
    Range {
        lower: -4000,
        upper: 4000,
        tokens: 2_000,
    },
    Range {
        lower: -300,
        upper: 300,
        tokens: 20_000,
    },
    Range {
        lower: 120,
        upper: 700,
        tokens: 8_000,
    },
    Range {
        lower: -900,
        upper: -150,
        tokens: 8_000,
    },
];

fn grid(extra: &str) -> String {
    format!(
        r#"{{"lower_price":"97","upper_price":"103","grid_count":7,"base_order_size":"300"{extra}}}"#
    )
}

fn create(db: &TestDb, config: &str, name: &str, wallet: &str, params: &str) -> i64 {
    let created = db
        .run(&[
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
        .ok()
        .json();
    created["strategy"]["id"].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_trades_v3_pools_with_best_execution_and_pins() {
    let Some(chain) = TestChain::start().await else {
        return;
    };
    let u = chain.deploy_uniswap(1_000, 100_000).await;
    let v3 = chain.deploy_pancake_v3(&u).await;
    chain.v3_pool(&v3, 500, d("100"), &RANGES).await;
    chain
        .v3_pool(
            &v3,
            2500,
            d("100"),
            &[Range {
                lower: -3000,
                upper: 3000,
                tokens: 30_000,
            }],
        )
        .await;
    let trader = TRADER_KEY.parse::<PrivateKeySigner>().unwrap().address();
    chain.give_tokens(u.base, trader, 5_000).await;
    chain.give_tokens(u.quote, trader, 500_000).await;
    chain.approve_v3_router(&v3, TRADER_KEY, u.base).await;
    chain.approve_v3_router(&v3, TRADER_KEY, u.quote).await;

    let db = TestDb::new("sqlite").await;
    let ex = FakeBinance::start().await;
    let dex = |pools: &str| {
        format!(
            "[chain]\nchain_id = 56\nrpc_urls = [\"{url}\"]\nws_urls = [\"{ws}\"]\npool_poll_ms = 100\n\n\
             [dex]\nrouter = \"{router}\"\nfactory = \"{factory}\"\nfee_bps = 30\nslippage_bps = 50\n\
             v3_factory = \"{v3f}\"\nv3_pool_deployer = \"{v3d}\"\nv3_router = \"{v3r}\"\nv3_quoter = \"{v3q}\"\n\
             pools = {pools}\n\n\
             [dex.assets]\nBTC = \"{base}\"\nUSDT = \"{quote}\"\n",
            url = chain.url,
            ws = chain.url.replace("http://", "ws://"),
            router = u.router,
            factory = u.factory,
            v3f = v3.factory,
            v3d = v3.deployer,
            v3r = v3.router,
            v3q = v3.quoter,
            base = u.base,
            quote = u.quote,
        )
    };
    // Bad pool settings are refused at load, naming the key.
    let bad = write_config(&db, &ex.url, &dex(r#"["v2", "v3:300"]"#));
    db.run(&["--config", &bad, "config", "check"])
        .fails_with(1, "dex.pools");
    let config = write_config(&db, &ex.url, &dex(r#"["v2", "v3:500", "v3:2500"]"#));
    db.run(&["--config", &config, "config", "check"]).ok();
    // A pool kind that does not exist is refused at create, with what would be accepted.
    db.run(&[
        "--config",
        &config,
        "strategy",
        "create",
        "-t",
        "grid",
        "-s",
        "BTC/USDT",
        "-n",
        "bad",
        "-p",
        &grid(r#","pool":"v3:300""#),
    ])
    .fails_with(1, "v3:300");

    let mut wallets = Vec::new();
    for name in ["hot", "pin"] {
        let out = db
            .cmd(&["--config", &config, "wallet", "generate", "--name", name])
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
        wallets.push(me);
    }
    let best = create(&db, &config, "best", "hot", &grid(""));
    let pinned = create(&db, &config, "pinned", "pin", &grid(r#","pool":"v3:2500""#));
    // The chain has no 1 bps pool: this one cannot run.
    let missing = create(&db, &config, "missing", "pin", &grid(r#","pool":"v3:100""#));

    let client = ChainClient::connect(&ChainConfig {
        rpc_urls: vec![chain.url.clone()],
        ..ChainConfig::default()
    })
    .await
    .unwrap();
    let base = client.token(u.base).await.unwrap();
    let quote = client.token(u.quote).await.unwrap();
    let pool500 = client
        .v3_pool(v3.factory, base.clone(), quote.clone(), 500)
        .await
        .unwrap();
    let pool2500 = client
        .v3_pool(v3.factory, base.clone(), quote.clone(), 2500)
        .await
        .unwrap();
    let mut before = Vec::new();
    for me in &wallets {
        before.push((
            client.native_balance(*me).await.unwrap(),
            client.token_balance(&base, *me).await.unwrap(),
            client.token_balance(&quote, *me).await.unwrap(),
        ));
    }

    let log = db.dir.path().join("daemon.log");
    let daemon = RunningDaemon::start_logged_with_env(
        &db,
        &config,
        &[],
        &[("BSC_BOT_KEYSTORE_PASSWORD", PASSWORD)],
        &log,
    )
    .await;
    let store = db.store().await;
    // Both grids buy the cells above the price at once.
    let settle = |ids: [i64; 2]| {
        let store = store.clone();
        async move {
            let mut last = (-1, -1);
            let mut still = 0;
            for _ in 0..300 {
                let now = (
                    store.trade_count(ids[0]).await.unwrap(),
                    store.trade_count(ids[1]).await.unwrap(),
                );
                let in_flight = store
                    .list_orders(None, None)
                    .await
                    .unwrap()
                    .iter()
                    .any(|o| matches!(o.status.as_str(), "submitted" | "accepted"));
                still = if now == last && !in_flight {
                    still + 1
                } else {
                    0
                };
                if still >= 15 {
                    return now;
                }
                last = now;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            last
        }
    };
    let start = settle([best, pinned]).await;
    if !(start.0 >= 2 && start.1 >= 2) {
        let shown = db.run(&[
            "--config",
            &config,
            "strategy",
            "status",
            &pinned.to_string(),
        ]);
        let log_text = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = log_text.lines().rev().take(30).collect();
        let txs = store.chain_txs_of(56, wallets[1]).await.unwrap();
        let orders = store.list_orders(Some(pinned), None).await.unwrap();
        panic!(
            "both grids bought at start: {start:?}\n{shown:#?}\n{tail:#?}\n{txs:#?}\n{orders:#?}"
        );
    }
    for target in ["98.6", "97.4", "99.2", "101.3", "102.6"] {
        // Both V3 pools move (the pinned grid triggers on its own pool's price); the V2 pair
        // stays, so the pools' prices part and best execution's choice changes.
        chain.walk_v3_to(&v3, &client, &pool500, d(target)).await;
        chain.walk_v3_to(&v3, &client, &pool2500, d(target)).await;
        settle([best, pinned]).await;
    }
    // The grid pinned to a pool the chain lacks never ran, and says why.
    let shown = db.run(&[
        "--config",
        &config,
        "strategy",
        "status",
        &missing.to_string(),
    ]);
    assert!(shown.stdout.contains("pinned to pool v3:100"), "{shown:#?}");
    assert_eq!(store.trade_count(missing).await.unwrap(), 0);
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    drop(daemon);

    // Every wallet equals its records to the wei; one swap per order; nonces contiguous.
    assert_records_equal_chain(&store, &client, &pool500, wallets[0], best, before[0]).await;
    assert_records_equal_chain(&store, &client, &pool500, wallets[1], pinned, before[1]).await;
    let kinds = |me: Address| {
        let store = store.clone();
        async move {
            store
                .chain_txs_of(56, me)
                .await
                .unwrap()
                .into_iter()
                .filter(|t| t.purpose == "swap" && t.status == "mined")
                .map(|t| {
                    t.pool_kind
                        .unwrap_or_else(|| format!("none ({})", t.tx_hash))
                })
                .collect::<Vec<_>>()
        }
    };
    let best_kinds = kinds(wallets[0]).await;
    let pinned_kinds = kinds(wallets[1]).await;
    eprintln!("best execution chose {best_kinds:?}; the pinned grid {pinned_kinds:?}");
    assert!(
        pinned_kinds.len() >= 4 && pinned_kinds.iter().all(|k| k == "v3:2500"),
        "{pinned_kinds:?}"
    );
    let allowed: BTreeSet<String> = [
        PoolKind::V2,
        PoolKind::V3 { fee: 500 },
        PoolKind::V3 { fee: 2500 },
    ]
    .iter()
    .map(|k| k.to_string())
    .collect();
    assert!(
        best_kinds.len() >= 4 && best_kinds.iter().all(|k| allowed.contains(k)),
        "{best_kinds:?}"
    );
    assert!(
        best_kinds.iter().any(|k| k == "v3:500"),
        "the deep 5 bps pool wins small swaps: {best_kinds:?}"
    );
    assert!(
        best_kinds.iter().collect::<BTreeSet<_>>().len() >= 2,
        "as the pools' prices part, more than one pool pays most: {best_kinds:?}"
    );
    // The trade history names each trade's pool.
    let history = store.trading_history(Some(pinned), 100).await.unwrap();
    assert!(history
        .iter()
        .all(|t| t.pool_kind.as_deref() == Some("v3:2500")));
    // The daemon said what it routes over and where the price comes from.
    assert!(
        log_text.contains("best execution over the market's pools"),
        "{log_text}"
    );
}
