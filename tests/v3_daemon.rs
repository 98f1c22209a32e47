//! The daemon trading PancakeSwap V3 pools on a real local chain (anvil, the npm PancakeSwap V3
//! contracts beside a Uniswap V2 pair): with `dex.pools = ["v2", "v3:500", "v3:2500"]` a live
//! grid's swaps go to the pool that pays most, a grid pinned to one pool never leaves it, and a
//! grid pinned to a pool the chain does not have is not run, with the reason; the market's price
//! comes from its deepest pool (the V3 pools' `Swap` events followed over the WebSocket); every
//! wallet equals its records to the wei, also through `kill -9` mid-swap. Bad pool settings are
//! refused at load and at create.

#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/live.rs"]
mod live;
#[path = "common/chain.rs"]
mod testchain;
#[path = "common/chain_v3.rs"]
mod testchain_v3;

use std::collections::BTreeSet;
use std::str::FromStr;
use std::time::Duration;

use alloy::primitives::{Address, U256};
use bsc_bot::amm::PoolKind;
use bsc_bot::chain::{ChainClient, Pool};
use bsc_bot::config::ChainConfig;
use bsc_bot::store::Store;
use common::daemon::{write_config, RunningDaemon};
use common::exchange::FakeBinance;
use common::TestDb;
use rust_decimal::Decimal;
use testchain::{assert_records_equal_chain, TestChain, Uniswap};
use testchain_v3::{PancakeV3, Range};

use live::PASSWORD;

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
    live::create_live(db, config, name, wallet, params)
        .ok()
        .json()["strategy"]["id"]
        .as_i64()
        .unwrap()
}

/// The chain: a V2 pair (1,000 / 100,000: price 100), PancakeSwap V3 with a deep 5 bps pool and a
/// thinner 25 bps pool at 100, and the trader funded to walk the V3 prices.
struct V3Chain {
    chain: TestChain,
    u: Uniswap,
    v3: PancakeV3,
    client: ChainClient,
    pool500: Pool,
    pool2500: Pool,
}

async fn v3_chain() -> Option<V3Chain> {
    let chain = TestChain::start().await?;
    let u = chain.deploy_uniswap(1_000, 100_000).await;
    let v3 = chain.deploy_pancake_v3(&u).await;
    chain.v3_pool(&v3, 500, d("100"), &RANGES).await;
    let thin = Range {
        lower: -3000,
        upper: 3000,
        tokens: 30_000,
    };
    chain.v3_pool(&v3, 2500, d("100"), &[thin]).await;
    chain.fund_v3_trader(&v3, 5_000, 500_000).await;
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
    let pool2500 = client.v3_pool(v3.factory, base, quote, 2500).await.unwrap();
    Some(V3Chain {
        chain,
        u,
        v3,
        client,
        pool500,
        pool2500,
    })
}

impl V3Chain {
    /// `[chain]`, `[dex]` (with `dex.pools = pools`) and `[dex.assets]` for this chain.
    fn sections(&self, pools: &str) -> String {
        format!(
            "[chain]\nchain_id = 56\nrpc_urls = [\"{url}\"]\nws_urls = [\"{ws}\"]\npool_poll_ms = 100\n\n\
             [dex]\nrouter = \"{router}\"\nfactory = \"{factory}\"\nfee_bps = 30\nslippage_bps = 50\n\
             v3_factory = \"{v3f}\"\nv3_pool_deployer = \"{v3d}\"\nv3_router = \"{v3r}\"\nv3_quoter = \"{v3q}\"\n\
             pools = {pools}\n\n\
             [dex.assets]\nBTC = \"{base}\"\nUSDT = \"{quote}\"\n",
            url = self.chain.url,
            ws = self.chain.url.replace("http://", "ws://"),
            router = self.u.router,
            factory = self.u.factory,
            v3f = self.v3.factory,
            v3d = self.v3.deployer,
            v3r = self.v3.router,
            v3q = self.v3.quoter,
            base = self.u.base,
            quote = self.u.quote,
        )
    }

    /// Wallet `name` made with `wallet generate`, holding 1 BNB and 10,000 quote: its address and
    /// its BNB, base and quote now.
    async fn wallet(
        &self,
        db: &TestDb,
        config: &str,
        name: &str,
    ) -> (Address, (Decimal, Decimal, Decimal)) {
        let out = db
            .cmd(&["--config", config, "wallet", "generate", "--name", name])
            .env("BSC_BOT_KEYSTORE_PASSWORD", PASSWORD)
            .output()
            .unwrap();
        assert!(out.status.success());
        let me: Address = String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        self.chain
            .set_bnb(me, U256::from(10u8).pow(U256::from(18u8)))
            .await;
        self.chain.give_tokens(self.u.quote, me, 10_000).await;
        let before = (
            self.client.native_balance(me).await.unwrap(),
            self.client
                .token_balance(&self.pool500.base, me)
                .await
                .unwrap(),
            self.client
                .token_balance(&self.pool500.quote, me)
                .await
                .unwrap(),
        );
        (me, before)
    }

    /// Both V3 pools walked to `target` (a pinned grid triggers on its own pool's price); the V2
    /// pair stays, so the pools' prices part and best execution's choice changes.
    async fn walk(&self, target: &str) {
        for pool in [&self.pool500, &self.pool2500] {
            self.chain
                .walk_v3_to(&self.v3, &self.client, pool, d(target))
                .await;
        }
    }
}

/// Wait until the strategies' trade counts stay still for 1.5 s with no order in flight.
async fn settle(store: &Store, ids: &[i64]) -> Vec<i64> {
    let mut last = Vec::new();
    let mut still = 0;
    for _ in 0..300 {
        let mut now = Vec::new();
        for id in ids {
            now.push(store.trade_count(*id).await.unwrap());
        }
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

/// The pools a wallet's mined swaps are on record with.
async fn swap_pools(store: &Store, me: Address) -> Vec<String> {
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
        .collect()
}

const ALL_POOLS: &str = r#"["v2", "v3:500", "v3:2500"]"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_trades_v3_pools_with_best_execution_and_pins() {
    let Some(m) = v3_chain().await else {
        return;
    };
    let db = TestDb::new("sqlite").await;
    let ex = FakeBinance::start().await;
    // Bad pool settings are refused at load, naming the key.
    let bad = write_config(&db, &ex.url, &m.sections(r#"["v2", "v3:300"]"#));
    db.run(&["--config", &bad, "config", "check"])
        .fails_with(1, "dex.pools");
    let config = write_config(&db, &ex.url, &m.sections(ALL_POOLS));
    db.run(&["--config", &config, "config", "check"]).ok();
    // A pool kind that does not exist is refused at create, naming it.
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
    let (hot, hot_before) = m.wallet(&db, &config, "hot").await;
    let (pin, pin_before) = m.wallet(&db, &config, "pin").await;
    let best = create(&db, &config, "best", "hot", &grid(""));
    let pinned = create(&db, &config, "pinned", "pin", &grid(r#","pool":"v3:2500""#));
    // The chain has no 1 bps pool: a live grid pinned to it is refused at create.
    live::create_live(&db, &config, "missing", "pin", &grid(r#","pool":"v3:100""#))
        .fails_with(1, "is not among dex.pools");
    // With every pool allowed (`auto`), the chain is asked: it has no 1 bps pool.
    let auto = db.dir.path().join("auto.toml");
    std::fs::write(
        &auto,
        std::fs::read_to_string(&config)
            .unwrap()
            .replace(ALL_POOLS, r#"["auto"]"#),
    )
    .unwrap();
    live::create_live(
        &db,
        auto.to_str().unwrap(),
        "missing",
        "pin",
        &grid(r#","pool":"v3:100""#),
    )
    .fails_with(1, "fee tier 100");

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
    let start = settle(&store, &[best, pinned]).await;
    if !(start[0] >= 2 && start[1] >= 2) {
        let log_text = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = log_text.lines().rev().take(30).collect();
        let orders = store.list_orders(Some(pinned), None).await.unwrap();
        panic!("both grids bought at start: {start:?}\n{tail:#?}\n{orders:#?}");
    }
    for target in ["98.6", "97.4", "99.2", "101.3", "102.6"] {
        m.walk(target).await;
        settle(&store, &[best, pinned]).await;
    }
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    drop(daemon);

    // Every wallet equals its records to the wei; one swap per order; nonces contiguous.
    assert_records_equal_chain(&store, &m.client, &m.pool500, hot, best, hot_before).await;
    assert_records_equal_chain(&store, &m.client, &m.pool500, pin, pinned, pin_before).await;
    let best_kinds = swap_pools(&store, hot).await;
    let pinned_kinds = swap_pools(&store, pin).await;
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
    // The other pools' states follow their events over the WebSocket (the price pool feeds the
    // engine itself).
    let followed = log_text
        .lines()
        .filter(|l| l.contains("best execution follows the pool's events"))
        .count();
    assert_eq!(followed, 2, "the V2 pair and the 25 bps pool: {log_text}");

    // The operator drops the 25 bps pool from dex.pools: the grid pinned to it is not run at
    // the next start, and says why; the other trades on.
    let fewer = write_config(&db, &ex.url, &m.sections(r#"["v2", "v3:500"]"#));
    let trades_before = store.trade_count(pinned).await.unwrap();
    let daemon =
        RunningDaemon::start_with_env(&db, &fewer, &[], &[("BSC_BOT_KEYSTORE_PASSWORD", PASSWORD)])
            .await;
    let mut shown = None;
    for _ in 0..100 {
        let run = db.run(&[
            "--config",
            &fewer,
            "strategy",
            "status",
            &pinned.to_string(),
        ]);
        if run.stdout.contains("pinned to pool v3:2500") {
            shown = Some(run);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        shown.is_some(),
        "strategy status says why the pinned grid does not run"
    );
    m.walk("98.6").await;
    settle(&store, &[best, pinned]).await;
    drop(daemon);
    assert_eq!(
        store.trade_count(pinned).await.unwrap(),
        trades_before,
        "nothing traded"
    );
}

/// `kill -9` while a swap is in flight (broadcast, its receipt not yet read), three times: the
/// restart reads the swap's pool and amounts from its receipt, no order has two swaps, and the
/// wallet equals the records to the wei.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_v3_swap_leaves_no_order_with_two_swaps() {
    let Some(m) = v3_chain().await else {
        return;
    };
    let db = TestDb::new("sqlite").await;
    let ex = FakeBinance::start().await;
    let config = write_config(&db, &ex.url, &m.sections(ALL_POOLS));
    let (hot, before) = m.wallet(&db, &config, "hot").await;
    let id = create(&db, &config, "best", "hot", &grid(""));
    let store = db.store().await;
    let swaps_on_record = |store: Store| async move {
        store
            .chain_txs_of(56, hot)
            .await
            .unwrap()
            .iter()
            .filter(|t| t.purpose == "swap")
            .count()
    };
    for target in ["98.6", "101.3", "97.4"] {
        let seen = swaps_on_record(store.clone()).await;
        // Its next swap hangs after its broadcast: anvil mines it, the daemon never reads it.
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
        if seen > 0 {
            m.walk(target).await;
        }
        let mut sent = false;
        for _ in 0..300 {
            if swaps_on_record(store.clone()).await > seen {
                sent = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            sent,
            "a swap on record before its broadcast (moving to {target})"
        );
        // Its pool is on record with it before it is sent (the write-ahead row).
        let txs = store.chain_txs_of(56, hot).await.unwrap();
        let last = txs.iter().rev().find(|t| t.purpose == "swap").unwrap();
        assert!(
            last.pool_kind.is_some() && last.pool_address.is_some(),
            "{last:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _ = std::process::Command::new("kill")
            .args(["-9", &hung.child.id().to_string()])
            .status();
        drop(hung);
        // The restart reconciles the swap from its receipt and trades on.
        let daemon = RunningDaemon::start_with_env(
            &db,
            &config,
            &[],
            &[("BSC_BOT_KEYSTORE_PASSWORD", PASSWORD)],
        )
        .await;
        settle(&store, &[id]).await;
        drop(daemon);
    }
    assert_records_equal_chain(&store, &m.client, &m.pool500, hot, id, before).await;
    let pools = swap_pools(&store, hot).await;
    eprintln!("swaps' pools through three kills: {pools:?}");
    assert!(
        pools.len() >= 3 && pools.iter().all(|k| !k.starts_with("none")),
        "{pools:?}"
    );
}
