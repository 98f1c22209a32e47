//! The funds manager on a real chain (anvil, the Uniswap V2 contracts), through the daemon and
//! the CLI: a drip tops the trading wallet up exactly to its gas target; a sweep moves exactly
//! the excess above what it keeps; a sweep to an address outside the allow-list is refused
//! (exit 1, nothing sent, an audit row); the hourly outflow limit refuses the sweep that would
//! pass it; `--no-funds` sends nothing and says so; `kill -9` while a drip is signed but not
//! sent, then a restart: one drip on chain, one row; the treasury key is nowhere in logs, JSON
//! output or the database.

#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/live.rs"]
mod live;
#[path = "common/chain.rs"]
mod testchain;

use std::str::FromStr;
use std::time::{Duration, Instant};

use alloy::primitives::{Address, U256};
use alloy::providers::Provider;
use alloy::signers::local::PrivateKeySigner;
use bsc_bot::chain::ChainClient;
use common::daemon::RunningDaemon;
use common::exchange::FakeBinance;
use common::TestDb;
use live::{Canary, PASSWORD};
use rust_decimal::Decimal;
use testchain::TestChain;

/// A throwaway treasury key (hex, as an operator would export it).
const TREASURY_KEY: &str = "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba";

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

/// A live grid far below the price (it rests, never trades), so balances move only by funds.
fn create_resting_live_grid(db: &TestDb, config: &str) -> i64 {
    db.run(&[
        "--config", config, "--json", "strategy", "create", "-t", "grid", "-s", "BTC/USDT", "-n",
        "resting", "-m", "live", "--confirm-live", "--wallet", "hot", "-p",
        r#"{"lower_price":"50000","upper_price":"60000","grid_count":3,"base_order_size":"100","fee_bps":30}"#,
    ])
    .ok()
    .json()["strategy"]["id"]
        .as_i64()
        .unwrap()
}

struct Setup {
    chain: TestChain,
    db: TestDb,
    _ex: FakeBinance,
    config: String,
    me: Address,
    treasury: Address,
    client: ChainClient,
    pool: bsc_bot::chain::Pool,
}

async fn setup(funds: &str) -> Option<Setup> {
    setup_with(funds, true).await
}

/// `create`: the resting live grid exists before the daemon starts.
async fn setup_with(funds: &str, create: bool) -> Option<Setup> {
    let chain = TestChain::start().await?;
    let u = chain.deploy_uniswap(10, 1_000_000).await;
    let db = TestDb::new("sqlite").await;
    let ex = FakeBinance::start().await;
    let Canary {
        config,
        me,
        client,
        pool,
        ..
    } = live::canary_with(
        &chain,
        &u,
        &db,
        &ex.url,
        &[&chain.url],
        "pool_poll_ms = 200",
        false,
    )
    .await;
    let treasury = TREASURY_KEY.parse::<PrivateKeySigner>().unwrap().address();
    chain
        .set_bnb(
            treasury,
            U256::from(100u64) * U256::from(10u64).pow(U256::from(18u64)),
        )
        .await;
    // As shipped, BNB's token is WBNB (here the router's WETH9): balances show it as WBNB,
    // never under the native coin's name.
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "[dex.assets]\n",
        &format!("[dex.assets]\nBNB = \"{}\"\n", u.weth),
    );
    std::fs::write(
        &config,
        format!("{text}\n[funds]\ntreasury = \"{treasury}\"\ncheck_interval_secs = 1\n{funds}\n"),
    )
    .unwrap();
    if create {
        create_resting_live_grid(&db, &config);
    }
    Some(Setup {
        chain,
        db,
        _ex: ex,
        config,
        me,
        treasury,
        client,
        pool,
    })
}

fn env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("BSC_BOT_KEYSTORE_PASSWORD", PASSWORD),
        ("BSC_BOT_TREASURY_PRIVATE_KEY", TREASURY_KEY),
    ]
}

async fn wait_for_ops(
    store: &bsc_bot::store::Store,
    kind: &str,
    status: &str,
    n: usize,
) -> Vec<bsc_bot::store::funds::FundsOperation> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ops: Vec<_> = store
            .funds_operations(Some(kind), 100)
            .await
            .unwrap()
            .into_iter()
            .filter(|o| o.status == status)
            .collect();
        if ops.len() >= n {
            return ops;
        }
        assert!(Instant::now() < deadline, "no {status} {kind}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drips_and_sweeps_are_exact_allowed_and_limited() {
    // The wallet has 1 BNB and 10,000 USDT: dripped up to 3 BNB, swept down to 4,000 USDT.
    let Some(s) = setup(
        "gas_min_bnb = \"2\"\ngas_target_bnb = \"3\"\n\
         [funds.keep]\nUSDT = \"4000\"\n[funds.sweep_min]\nUSDT = \"100\"\n\
         [funds.max_hourly_outflow]\nUSDT = \"6420\"\n\n[risk]\nmax_hourly_outflow = \"6450\"\n",
    )
    .await
    else {
        return;
    };
    let store = s.db.store().await;
    let treasury_before = s.client.native_balance(s.treasury).await.unwrap();
    let log = s.db.dir.path().join("daemon.log");
    let daemon = RunningDaemon::start_logged_with_env(&s.db, &s.config, &[], &env(), &log).await;
    let drips = wait_for_ops(&store, "drip", "completed", 1).await;
    let sweeps = wait_for_ops(&store, "sweep", "completed", 1).await;
    assert_eq!(drips[0].amount, "2", "exactly up to the target");
    assert_eq!(sweeps[0].amount, "6000", "exactly the excess above 4,000");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // Nothing more: the wallet is at its marks.
    assert_eq!(store.funds_operations(None, 100).await.unwrap().len(), 2);
    let txs = store.chain_txs_of(56, s.me).await.unwrap();
    let sweep_tx = txs.iter().find(|t| t.purpose == "sweep").unwrap();
    let sweep_fee = d(sweep_tx.fee_bnb.as_deref().unwrap());
    assert_eq!(
        s.client.native_balance(s.me).await.unwrap(),
        d("3") - sweep_fee,
        "3 BNB after the drip, less the sweep's gas"
    );
    assert_eq!(
        s.client.token_balance(&s.pool.quote, s.me).await.unwrap(),
        d("4000")
    );
    assert_eq!(
        s.client
            .token_balance(&s.pool.quote, s.treasury)
            .await
            .unwrap(),
        d("6000")
    );
    let treasury_txs = store.chain_txs_of(56, s.treasury).await.unwrap();
    assert_eq!(treasury_txs.len(), 1);
    let drip_fee = d(treasury_txs[0].fee_bnb.as_deref().unwrap());
    assert_eq!(
        s.client.native_balance(s.treasury).await.unwrap(),
        treasury_before - d("2") - drip_fee
    );
    // The sweep's value (USDT is the pool's quote) is the hour's outflow in /metrics.
    let (_, metrics) = daemon.text("/metrics").await;
    assert!(
        metrics.contains("bsc_bot_funds_hourly_outflow 6000\n"),
        "{metrics}"
    );
    // History and status.
    let gas =
        s.db.run(&["--config", &s.config, "--json", "funds", "gas", "history"])
            .ok()
            .json();
    assert_eq!(gas["operations"][0]["status"], "completed");
    assert_eq!(
        gas["operations"][0]["tx_hash"],
        treasury_txs[0].tx_hash.as_str()
    );
    let status =
        s.db.run(&["--config", &s.config, "--json", "funds", "status"])
            .ok()
            .json();
    assert!(
        status["manager"]
            .as_str()
            .unwrap()
            .starts_with("running (1 wallets: hot)"),
        "{status}"
    );
    assert_eq!(status["hourly_outflow"][0]["used"], "6000", "{status}");
    // Native BNB and WBNB each under its own name; gas spent per wallet, whatever the case
    // its address is written in.
    let wallet = |holder: &str| {
        status["wallets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["holder"] == holder)
            .unwrap_or_else(|| panic!("{holder} in {status}"))
            .clone()
    };
    let hot = wallet("hot");
    assert_eq!(
        d(hot["balances"]["BNB"].as_str().unwrap()),
        d("3") - sweep_fee,
        "{hot}"
    );
    assert_eq!(
        d(hot["balances"]["WBNB"].as_str().unwrap()),
        Decimal::ZERO,
        "{hot}"
    );
    assert_eq!(
        d(hot["gas_spent_24h_bnb"].as_str().unwrap()),
        sweep_fee,
        "{hot}"
    );
    assert!(
        hot["gas_runway_days"].is_string() || hot["gas_runway_days"].is_number(),
        "{hot}"
    );
    let treasury = wallet("treasury");
    assert_eq!(
        d(treasury["gas_spent_24h_bnb"].as_str().unwrap()),
        drip_fee,
        "{treasury}"
    );
    assert!(
        d(treasury["balances"]["BNB"].as_str().unwrap()) > d("90"),
        "{treasury}"
    );
    assert_eq!(status["hourly_outflow_quote"]["used"], "6000", "{status}");
    let bot =
        s.db.run(&["--config", &s.config, "--json", "bot", "status"])
            .ok()
            .json();
    assert!(
        bot["funds"].as_str().unwrap().starts_with("running"),
        "{bot}"
    );
    let exported =
        s.db.cmd(&[
            "--config", &s.config, "funds", "balances", "--export", "csv",
        ])
        .output()
        .unwrap();
    let csv = String::from_utf8(exported.stdout).unwrap();
    assert!(csv.contains(&format!("hot,{},USDT,4000", s.me)), "{csv}");
    assert!(csv.contains(&format!("hot,{},WBNB,0", s.me)), "{csv}");
    let wallets =
        s.db.run(&["--config", &s.config, "--json", "wallet", "list"])
            .ok()
            .json();
    let listed = &wallets["wallets"][0];
    assert_eq!(listed["balances"]["WBNB"], "0", "{wallets}");
    assert_eq!(
        d(listed["balances"]["BNB"].as_str().unwrap()),
        d("3") - sweep_fee,
        "{wallets}"
    );

    // A destination outside the allow-list: refused, nothing sent, an audit row.
    let nonce = s
        .client
        .provider()
        .get_transaction_count(s.me)
        .await
        .unwrap();
    let outsider = "0x000000000000000000000000000000000000dEaD";
    let sweep = |to: &str, amount: &str| {
        s.db.cmd(&[
            "--config", &s.config, "--json", "funds", "sweep", "execute", "-w", "hot", "-t", to,
            "-a", "USDT", "--amount", amount,
        ])
        .env("BSC_BOT_KEYSTORE_PASSWORD", PASSWORD)
        .output()
        .unwrap()
    };
    let out = sweep(outsider, "1");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("allowed_destinations"));
    assert_eq!(
        s.client
            .provider()
            .get_transaction_count(s.me)
            .await
            .unwrap(),
        nonce,
        "nothing sent"
    );
    let audit = store.audit_log(10).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|a| a.command == "funds sweep execute" && a.outcome == "error"),
        "{audit:?}"
    );
    // The hour's limits: 6,000 swept; 600 more would pass risk.max_hourly_outflow (6,450, all
    // outflow in quote); 400 fits both; 30 more passes funds.max_hourly_outflow.USDT (6,420).
    let to = s.treasury.to_string();
    let out = sweep(&to, "600");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("risk.max_hourly_outflow 6450"));
    let out = sweep(&to, "400");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        s.client
            .token_balance(&s.pool.quote, s.treasury)
            .await
            .unwrap(),
        d("6400")
    );
    let out = sweep(&to, "30");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("funds.max_hourly_outflow.USDT = 6420"),
        "{out:?}"
    );
    let refused: Vec<_> = store
        .funds_operations(Some("sweep"), 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|o| o.status == "refused")
        .collect();
    assert_eq!(refused.len(), 3, "{refused:?}");
    let audit = store.audit_log(10).await.unwrap();
    assert!(
        audit.iter().any(|a| a.command == "funds sweep execute"
            && a.outcome == "ok"
            && a.detail
                .as_deref()
                .unwrap_or("")
                .contains("sweep completed of 400 USDT")),
        "the operator's sweep is audited: {audit:?}"
    );
    // The emergency snapshot lists every wallet the bot has keys for, stopped strategies or not.
    s.db.run(&[
        "--config",
        &s.config,
        "emergency",
        "stop-all",
        "--reason",
        "snapshot drill",
    ])
    .ok();
    let snapshot =
        s.db.run(&[
            "--config", &s.config, "funds", "balances", "--export", "json",
        ])
        .ok()
        .json();
    let holders: Vec<&str> = snapshot["balances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["holder"].as_str().unwrap())
        .collect();
    assert_eq!(holders, ["treasury", "hot"], "{snapshot}");
    drop(daemon);

    // Restarted, the daemon's hourly outflow goes on from the record (the daemon's sweep and
    // the operator's), as the CLI's figure does: from the API's first answer, while the core
    // (held 3 s here, as a slow node or recovery would) is not up yet.
    let mut held = env();
    held.push(("BSC_BOT_FAILPOINTS", "daemon.core_start=sleep:3000"));
    let daemon = RunningDaemon::start_serving_with_env(&s.db, &s.config, &[], &held).await;
    let (_, metrics) = daemon.text("/metrics").await;
    assert!(
        metrics.contains("bsc_bot_funds_hourly_outflow 6400\n"),
        "{metrics}"
    );
    let status =
        s.db.run(&["--config", &s.config, "--json", "funds", "status"])
            .ok()
            .json();
    assert_eq!(status["hourly_outflow_quote"]["used"], "6400", "{status}");
    drop(daemon);

    // The treasury key is nowhere: logs, the JSON above, the database.
    let key = TREASURY_KEY.trim_start_matches("0x");
    let logs = std::fs::read_to_string(&log).unwrap();
    assert!(!logs.is_empty());
    let dump = s.db.snapshot().await;
    for (what, text) in [
        ("logs", logs.as_str()),
        ("status JSON", &status.to_string()),
        ("database", dump.as_str()),
    ] {
        assert!(
            !text
                .to_ascii_lowercase()
                .contains(&key.to_ascii_lowercase()),
            "the treasury key is in the {what}"
        );
    }
    store.close().await;
    drop(s.chain);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_funds_sends_nothing_and_a_drip_killed_mid_way_is_sent_once() {
    let Some(s) = setup("gas_min_bnb = \"2\"\ngas_target_bnb = \"3\"\n").await else {
        return;
    };
    let store = s.db.store().await;
    // --no-funds: the wallet is below its minimum, and nothing is sent.
    let daemon = RunningDaemon::start_with_env(&s.db, &s.config, &["--no-funds"], &env()).await;
    // The gas watcher reads the wallet and the risk guard pauses its strategy (polled: a loaded
    // machine takes its time); nothing is sent meanwhile or after.
    let paused = daemon
        .until(Duration::from_secs(20), || async {
            store
                .get_strategy(&bsc_bot::store::StrategyRef::Id(1))
                .await
                .is_ok_and(|st| st.status.to_string() == "paused")
        })
        .await;
    assert!(paused.is_some(), "the low-gas pause never came");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(store.funds_operations(None, 10).await.unwrap().is_empty());
    let bot =
        s.db.run(&["--config", &s.config, "--json", "bot", "status"])
            .ok()
            .json();
    assert_eq!(bot["funds"], "off: --no-funds", "{bot}");
    let (_, health) = daemon.get("/api/health").await;
    assert_eq!(health["services"]["funds"], "off: --no-funds", "{health}");
    // No funds manager, and the wallet is under its minimum: the risk guard pauses its
    // strategies all the same, and health says why.
    let strategy = store
        .get_strategy(&bsc_bot::store::StrategyRef::Id(1))
        .await
        .unwrap();
    assert_eq!(strategy.status.to_string(), "paused", "{strategy:?}");
    assert!(
        strategy
            .status_reason
            .as_deref()
            .unwrap_or("")
            .starts_with("risk: low gas: wallet hot"),
        "{strategy:?}"
    );
    assert_eq!(health["status"], "degraded", "{health}");
    assert!(
        health["reasons"].to_string().contains("wallet hot")
            && health["reasons"].to_string().contains("low on gas"),
        "{health}"
    );
    let events = store.risk_events(None, None, 10).await.unwrap();
    assert!(events.iter().any(|e| e.kind == "low_gas"), "{events:?}");
    drop(daemon);

    // The drip is signed and on record, then the daemon dies before sending it.
    let mut hang = env();
    hang.push(("BSC_BOT_FAILPOINTS", "chain.before_broadcast.drip=hang"));
    let daemon = RunningDaemon::start_with_env(&s.db, &s.config, &[], &hang).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let txs = store.chain_txs_of(56, s.treasury).await.unwrap();
        if txs
            .iter()
            .any(|t| t.purpose == "drip" && t.status == "signed")
        {
            break;
        }
        assert!(Instant::now() < deadline, "the drip was never signed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(daemon); // kill -9
    assert_eq!(
        s.client
            .provider()
            .get_transaction_count(s.treasury)
            .await
            .unwrap(),
        0,
        "nothing sent before the kill"
    );
    // Restart: the signed drip is sent as it was (same bytes), settled, and not repeated.
    let _d = RunningDaemon::start_with_env(&s.db, &s.config, &[], &env()).await;
    let drips = wait_for_ops(&store, "drip", "completed", 1).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let all = store.funds_operations(Some("drip"), 10).await.unwrap();
    assert_eq!(all.len(), 1, "one drip row: {all:?}");
    assert_eq!(
        s.client
            .provider()
            .get_transaction_count(s.treasury)
            .await
            .unwrap(),
        1,
        "one drip on chain"
    );
    let txs = store.chain_txs_of(56, s.treasury).await.unwrap();
    assert_eq!(txs.len(), 1);
    assert_eq!(drips[0].tx_hash.as_deref(), Some(txs[0].tx_hash.as_str()));
    assert_eq!(s.client.native_balance(s.me).await.unwrap(), d("3"));
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn low_gas_with_no_drip_possible_pauses_the_wallets_strategies() {
    let Some(s) = setup("gas_min_bnb = \"2\"\ngas_target_bnb = \"3\"\n").await else {
        return;
    };
    // The treasury cannot cover the 2 BNB drip.
    s.chain
        .set_bnb(
            s.treasury,
            U256::from(5u64) * U256::from(10u64).pow(U256::from(17u64)),
        )
        .await;
    let hook = common::exchange::Receiver::start(0, Duration::ZERO).await;
    let text = std::fs::read_to_string(&s.config).unwrap();
    std::fs::write(
        &s.config,
        format!("{text}\n[alerts]\nwebhook_url = \"{}\"\n", hook.url),
    )
    .unwrap();
    let store = s.db.store().await;
    let daemon = RunningDaemon::start_with_env(&s.db, &s.config, &[], &env()).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let strategy = loop {
        let st = store
            .get_strategy(&bsc_bot::store::StrategyRef::Id(1))
            .await
            .unwrap();
        if st.status.to_string() == "paused" {
            break st;
        }
        assert!(Instant::now() < deadline, "never paused");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let reason = strategy.status_reason.unwrap();
    assert!(reason.starts_with("risk: low gas: wallet hot"), "{reason}");
    assert!(reason.contains("holds less than"), "{reason}");
    let events = store
        .risk_events(Some(1), Some("low_gas"), 10)
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    let start = Instant::now();
    while !hook.bodies().iter().any(|b| b["kind"] == "low_gas") {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "no low_gas alert: {:?}",
            hook.bodies()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The engine follows the record.
    assert!(daemon
        .until(Duration::from_secs(5), || async {
            daemon.engine_status(1).await.as_deref() == Some("paused")
        })
        .await
        .is_some());
    let (_, metrics) = daemon.text("/metrics").await;
    assert!(
        metrics.contains("bsc_bot_risk_events_total{kind=\"low_gas\"} 1\n"),
        "{metrics}"
    );
    assert!(metrics.contains("bsc_bot_risk_events_total{kind=\"funds_refused\"} 1\n"));
    // One refused drip on record (not one per check), nothing sent.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let drips = store.funds_operations(Some("drip"), 10).await.unwrap();
    assert_eq!(drips.len(), 1, "{drips:?}");
    assert_eq!(drips[0].status, "refused");
    assert_eq!(
        s.client
            .provider()
            .get_transaction_count(s.treasury)
            .await
            .unwrap(),
        0
    );
    store.close().await;
}

/// A live strategy created while the daemon runs: the funds manager (running with no wallet
/// yet) takes on its wallet at once, drips it, and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_funds_manager_takes_on_a_wallet_that_joins_a_running_daemon() {
    let Some(s) = setup_with("gas_min_bnb = \"2\"\ngas_target_bnb = \"3\"\n", false).await else {
        return;
    };
    let store = s.db.store().await;
    let daemon = RunningDaemon::start_with_env(&s.db, &s.config, &[], &env()).await;
    let status =
        s.db.run(&["--config", &s.config, "--json", "funds", "status"])
            .ok()
            .json();
    assert_eq!(status["manager"], "running (0 wallets: )", "{status}");
    create_resting_live_grid(&s.db, &s.config);
    let drips = wait_for_ops(&store, "drip", "completed", 1).await;
    assert_eq!(drips[0].amount, "2", "up to the target");
    assert_eq!(s.client.native_balance(s.me).await.unwrap(), d("3"));
    let status =
        s.db.run(&["--config", &s.config, "--json", "funds", "status"])
            .ok()
            .json();
    assert_eq!(status["manager"], "running (1 wallets: hot)", "{status}");
    drop(daemon);
    store.close().await;
}
