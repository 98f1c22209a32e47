//! A canary rollout walked by the real daemon on a real chain: `canary start` on the CLI, the
//! daemon's driver running each stage as an ordinary strategy (the backtest over a local Binance
//! archive through the live pool, paper on the pool's price with its tick log, the live canary and
//! each scale step from a `wallet generate` wallet), the pool's price walked back and forth by
//! another account during every stage. Every transition and gate value is on record and in
//! `canary status --json`; the live strategy's records equal the chain to the wei; a `kill -9` in
//! a live stage resumes it in the same stage with the time it had. A grid narrower than a round
//! trip's cost is held at the backtest gate with that reason, and bad requests are refused.
//!
//! The pool's base token is named BNB (1,000 of it against 600,000 USDT): a live fill's gas is
//! priced in quote at this pool's price, and the live gate needs gas per round trip measured.

#![allow(clippy::unwrap_used)]

#[path = "common/archive.rs"]
mod archive;
mod common;
#[path = "common/chain.rs"]
mod testchain;

use std::str::FromStr;
use std::time::{Duration, Instant};

use alloy::primitives::{Address, U256};
use bsc_bot::chain::ChainClient;
use bsc_bot::config::ChainConfig;
use common::daemon::{write_config, RunningDaemon};
use common::exchange::FakeBinance;
use common::TestDb;
use rust_decimal::Decimal;
use testchain::TestChain;

const PASSWORD: &str = "correct horse battery";

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

/// One-minute klines from `from` up to `to`, the price walking 582 → 618 → 582 every four hours.
fn klines(from: chrono::NaiveDate, to: chrono::NaiveDate) -> String {
    let ms = |d: chrono::NaiveDate| d.and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp_millis();
    let (mut t, end) = (ms(from), ms(to));
    let mut out = String::new();
    let mut minute = 0i64;
    while t < end {
        let phase = minute % 240;
        let up = if phase < 120 { phase } else { 240 - phase };
        let p = Decimal::from(582) + Decimal::new(3, 1) * Decimal::from(up);
        out.push_str(&format!(
            "{t},{p},{p},{p},{p},1.5,{},{p},12,0.7,{},0\n",
            t + 59_999,
            p / Decimal::TWO
        ));
        t += 60_000;
        minute += 1;
    }
    out
}

/// The last `days` days before today, published as daily files.
async fn archive_of_last_days(days: i64) -> String {
    let files: archive::Files = Default::default();
    let today = chrono::Utc::now().date_naive();
    let mut day = today - chrono::Duration::days(days);
    while day < today {
        let next = day.succ_opt().unwrap();
        let name = format!("BNBUSDT-1m-{}", day.format("%Y-%m-%d"));
        archive::publish(
            &files,
            &format!("/data/spot/daily/klines/BNBUSDT/1m/{name}.zip"),
            &format!("{name}.csv"),
            klines(day, next).as_bytes(),
        );
        day = next;
    }
    archive::serve(files).await.0
}

fn status(db: &TestDb, config: &str, name: &str) -> serde_json::Value {
    let v = db
        .run(&["--config", config, "--json", "canary", "status", name])
        .ok()
        .json();
    v["rollouts"][0].clone()
}

/// What went wrong, for a failing test's message: the daemon's warnings and errors since its
/// last start (feed reconnects left out) and the risk events on record.
fn daemon_trouble(db: &TestDb, config: &str) -> String {
    let log = db.dir.path().join("daemon.log");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let errors: Vec<&str> = text
        .lines()
        .filter(|l| !l.contains("feed connection failed"))
        .filter(|l| l.contains("WARN") || l.contains("ERROR") || l.contains("risk"))
        .collect();
    let events = db
        .run(&["--config", config, "--json", "risk", "events"])
        .json();
    format!(
        "the daemon's warnings:\n{}\nrisk events: {events}",
        errors.join("\n")
    )
}

async fn wait_status(
    db: &TestDb,
    config: &str,
    name: &str,
    within: Duration,
    mut check: impl FnMut(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let start = Instant::now();
    loop {
        let s = status(db, config, name);
        if check(&s) {
            return s;
        }
        if start.elapsed() > within {
            panic!(
                "rollout {name} did not get there: {}\n{}",
                serde_json::to_string_pretty(&s).unwrap(),
                daemon_trouble(db, config)
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The test chain with its pool (1,000 BNB against 600,000 USDT), a trader to walk its price, the
/// daemon's config (`[canary]` lines in `canary`) and wallet `hot` holding 1 BNB and 10,000 USDT.
struct Setup {
    chain: TestChain,
    u: testchain::Uniswap,
    db: TestDb,
    _ex: FakeBinance,
    config: String,
    me: Address,
    client: ChainClient,
    pool: bsc_bot::chain::Pool,
    before: (Decimal, Decimal, Decimal),
}

async fn setup(archive_url: &str, slippage_bps: u32, canary: &str) -> Option<Setup> {
    let chain = TestChain::start().await?;
    let u = chain.deploy_uniswap(1_000, 600_000).await;
    chain.fund_trader(&u, 500, 300_000).await;
    let db = TestDb::new("sqlite").await;
    let ex = FakeBinance::start().await;
    let sections = format!(
        "[data]\narchive_url = \"{archive_url}\"\n\n\
         [chain]\nchain_id = 56\nrpc_urls = [\"{url}\"]\npool_poll_ms = 100\n\n\
         [dex]\nrouter = \"{router}\"\nfactory = \"{factory}\"\nfee_bps = 30\nslippage_bps = {slippage_bps}\n\n\
         [dex.assets]\nBNB = \"{base}\"\nUSDT = \"{quote}\"\n\n\
         [canary]\n{canary}\n",
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
    Some(Setup {
        chain,
        u,
        db,
        _ex: ex,
        config,
        me,
        client,
        pool,
        before,
    })
}

const ENV: [(&str, &str); 2] = [
    ("BSC_BOT_KEYSTORE_PASSWORD", PASSWORD),
    ("BSC_BOT_MARKET_PAPER_PRICE_SOURCE", "pool"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sound_grid_walks_every_stage_to_its_target_size() {
    let archive_url = archive_of_last_days(7).await;
    // Stages shortened by config: 25 s of paper, 25 s a live stage. The live stages' own limits
    // are loosened (a swap that times out on these two shared cores must not end the walk); the
    // breach test below shows a rollback.
    let Some(Setup {
        chain,
        u,
        db,
        config,
        me,
        client,
        pool,
        before,
        ..
    }) = setup(
        &archive_url,
        500,
        "paper_hours = 0.007\nlive_hours = 0.007\nstep_hours = 0.007\nmax_gas_ratio = 10\n\
         max_slippage_bps = 500\nlive_max_error_rate = 0.5\nlive_daily_loss_pct = 50",
    )
    .await
    else {
        return;
    };

    // Levels 570, 585, 600, 615, 630: 2.5 % cells.
    let grid = r#"{"lower_price":"570","upper_price":"630","grid_count":5,"base_order_size":"1000","fee_bps":30}"#;
    let start = |name: &str, params: &str, extra: &[&str]| {
        let mut args = vec![
            "--config", &config, "--json", "canary", "start", name, "-t", "grid", "-s", "BNB/USDT",
            "-p", params,
        ];
        args.extend_from_slice(extra);
        db.run(&args)
    };

    // Bad requests: each a clear error, nothing on record.
    start("walk", grid, &[]).fails_with(1, "--wallet NAME");
    start("walk", grid, &["--wallet", "cold"]).fails_with(1, "no wallet named \"cold\"");
    start("walk", grid, &["--wallet", "hot", "--target-size", "5000"]).fails_with(
        1,
        "holds 10000 USDT in all, the grid at the target size needs 20000",
    );
    start(
        "walk",
        grid,
        &[
            "--wallet",
            "hot",
            "--overrides",
            r#"{"paper_hours":"soon"}"#,
        ],
    )
    .fails_with(1, "canary.paper_hours");
    start(
        "walk",
        grid,
        &[
            "--wallet",
            "hot",
            "--overrides",
            r#"{"max_failed_swap_pct":"150"}"#,
        ],
    )
    .fails_with(1, "canary.max_failed_swap_pct = 150: expected 0 to 100");
    db.run(&["--config", &config, "canary", "status", "nothing"])
        .fails_with(1, "canary rollout \"nothing\"");
    let listed = db
        .run(&["--config", &config, "--json", "canary", "list"])
        .ok()
        .json();
    assert_eq!(listed["rollouts"], serde_json::json!([]), "nothing changed");

    let started = start("walk", grid, &["--wallet", "hot"]).ok().json();
    let plan: Vec<&str> = started["plan"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(plan.len(), 6, "{plan:?}");
    assert!(
        plan[2].starts_with("3. live 10%: 0.007 h, base_order_size 100; gate: failed swaps ≤ 10%"),
        "{plan:?}"
    );
    start("walk", grid, &["--wallet", "hot"]).fails_with(1, "named \"walk\" exists already");
    db.run(&["--config", &config, "canary", "promote", "walk"])
        .fails_with(1, "--force --reason");
    db.run(&["--config", &config, "canary", "promote", "walk", "--force"])
        .fails_with(1, "needs --reason");
    // Ten cells of 1.2 around 600 (20 bps each): below a round trip's cost in this pool.
    let narrow = r#"{"lower_price":"594","upper_price":"606","grid_count":11,"base_order_size":"100","fee_bps":30}"#;
    start("narrow", narrow, &["--wallet", "hot"]).ok();

    let log = db.dir.path().join("daemon.log");
    let env = ENV;
    // The first run stops for 3 s before each backtest goes on record, and is killed there.
    let slow = [
        ENV[0],
        ENV[1],
        ("BSC_BOT_FAILPOINTS", "canary_backtest_store=sleep:3000"),
    ];
    let mut daemon =
        Some(RunningDaemon::start_logged_with_env(&db, &config, &[], &slow, &log).await);

    let held = wait_status(&db, &config, "narrow", Duration::from_secs(120), |s| {
        s["state"] == "held"
    })
    .await;
    assert_eq!(held["stage"], "backtest");
    let why = held["reason"].as_str().unwrap();
    assert!(why.contains("below a round trip's cost"), "{why}");
    assert_eq!(held["gates"]["backtest"]["decision"], "hold");

    // kill -9 while the sound grid's backtest runs: after the restart it is still at the backtest
    // stage, runs it again, and only one backtest of it goes on record.
    drop(daemon.take());
    let killed = status(&db, &config, "walk");
    assert_eq!(
        (killed["stage"].as_str(), killed["state"].as_str()),
        (Some("backtest"), Some("running")),
        "{killed}"
    );
    daemon = Some(RunningDaemon::start_logged_with_env(&db, &config, &[], &env, &log).await);

    // The walk: every stage sees the price go down through 585 and back up through 600.
    // kill -9 in these stages, each once.
    let mut to_kill = vec!["paper", "live 10%", "live 25%", "live 50%", "live 100%"];
    let mut seen_stages = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        assert!(Instant::now() < deadline, "the rollout did not finish");
        let s = status(&db, &config, "walk");
        if s["state"] == "done" {
            break;
        }
        if s["state"] != "running" {
            panic!(
                "the rollout stopped at {}: {}\n{}",
                s["stage"],
                s["reason"],
                daemon_trouble(&db, &config)
            );
        }
        let stage = s["stage"].as_str().unwrap().to_string();
        if !seen_stages.contains(&stage) {
            seen_stages.push(stage.clone());
        }
        if stage == "backtest" {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        chain.walk_to(&client, &pool, u.router, d("579")).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        chain.walk_to(&client, &pool, u.router, d("605")).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        if let Some(at) = to_kill.iter().position(|k| *k == stage) {
            to_kill.remove(at);
            // kill -9 mid-stage: the restart resumes the stage with the time it had.
            let had = status(&db, &config, "walk");
            drop(daemon.take());
            let after_kill = status(&db, &config, "walk");
            assert_eq!(after_kill["stage"], stage.as_str());
            assert!(
                after_kill["stage_elapsed_ms"].as_i64() >= had["stage_elapsed_ms"].as_i64(),
                "the time it had is on record"
            );
            tokio::time::sleep(Duration::from_secs(3)).await;
            let frozen = status(&db, &config, "walk");
            assert_eq!(
                frozen["stage_elapsed_ms"], after_kill["stage_elapsed_ms"],
                "no time passes in a stage while the daemon is down"
            );
            daemon =
                Some(RunningDaemon::start_logged_with_env(&db, &config, &[], &env, &log).await);
            let resumed = wait_status(&db, &config, "walk", Duration::from_secs(30), |s| {
                s["stage_elapsed_ms"].as_i64() > frozen["stage_elapsed_ms"].as_i64()
            })
            .await;
            assert_eq!(
                resumed["stage"],
                stage.as_str(),
                "the same stage after the restart"
            );
        }
    }
    assert!(
        to_kill.is_empty(),
        "killed in every stage asked: {to_kill:?}"
    );
    // The last decision went out as an alert (the log holds what the daemon did since its last
    // restart).
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("canary walk: done live 100% → live 100% (done): live gate passed"),
        "the last promotion alerted"
    );
    assert_eq!(
        seen_stages.iter().filter(|s| s.starts_with("live")).count(),
        4,
        "{seen_stages:?}"
    );
    let done = status(&db, &config, "walk");
    let kinds: Vec<(&str, &str, &str)> = done["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["kind"].as_str().unwrap(),
                t["from_stage"].as_str().unwrap(),
                t["to_stage"].as_str().unwrap(),
            )
        })
        .filter(|t| t.0 != "pause" && t.0 != "resume")
        .collect();
    assert_eq!(
        kinds,
        [
            ("promote", "backtest", "paper"),
            ("promote", "paper", "live 10%"),
            ("promote", "live 10%", "live 25%"),
            ("promote", "live 25%", "live 50%"),
            ("promote", "live 50%", "live 100%"),
            ("done", "live 100%", "live 100%"),
        ]
    );
    for gate in ["backtest", "paper", "live"] {
        let values = done["gates"][gate]["values"].as_array().unwrap();
        assert!(
            values.iter().all(|v| v["passed"] == true),
            "{gate}: {values:?}"
        );
    }
    assert!(done["gates"]["paper"]["values"][1]["value"]
        .as_str()
        .unwrap()
        .ends_with("all equal"));
    let backtest_id: i64 = done["gates"]["backtest"]["values"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["measure"] == "backtest on record")
        .and_then(|v| v["value"].as_str()?.split_whitespace().nth(1)?.parse().ok())
        .unwrap();
    db.run(&[
        "--config",
        &config,
        "backtest",
        "show",
        &backtest_id.to_string(),
    ])
    .ok();
    let stored = db
        .run(&["--config", &config, "--json", "backtest", "list"])
        .ok()
        .json();
    assert_eq!(
        stored["backtests"].as_array().unwrap().len(),
        2,
        "the narrow grid's and the sound grid's, none from the killed run: {stored}"
    );

    // The live strategy trades at the target size; its records equal the chain to the wei.
    let live_id = done["stages"][5]["strategy_id"].as_i64().unwrap();
    let live = db
        .run(&[
            "--config",
            &config,
            "--json",
            "strategy",
            "status",
            &live_id.to_string(),
        ])
        .ok()
        .json();
    assert_eq!(live["strategy"]["params"]["base_order_size"], "1000");
    // Its own limits, scaled with it: 50 % and 110 % of 4 cells × 1,000.
    assert_eq!(live["strategy"]["params"]["daily_loss_limit"], "2000");
    assert_eq!(live["strategy"]["params"]["max_position"], "4400");
    assert_eq!(live["strategy"]["params"]["max_error_rate"], "0.5");
    assert_eq!(live["strategy"]["mode"], "live");
    let d_ = daemon.take().unwrap();
    let (_, metrics) = d_.text("/metrics").await;
    assert!(
        metrics.contains("bsc_bot_canary_stage{rollout=\"walk\"} 5"),
        "{metrics}"
    );
    let bot = db
        .run(&["--config", &config, "--json", "bot", "status"])
        .ok()
        .json();
    let shown: Vec<(&str, &str)> = bot["canary"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["name"].as_str().unwrap(), r["state"].as_str().unwrap()))
        .collect();
    assert_eq!(shown, [("narrow", "held"), ("walk", "done")], "{bot}");
    let (code, api) = d_.get("/api/v1/canary").await;
    assert_eq!(code, 200);
    assert_eq!(api["rollouts"].as_array().unwrap().len(), 2);
    let store = db.store().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    drop(d_);
    testchain::assert_records_equal_chain(&store, &client, &pool, me, live_id, before).await;
    store.close().await;
}

/// A live canary front-run past its slippage bound: its swaps revert, the failed share passes its
/// threshold, the daemon pauses the live strategy at once and rolls the rollout back with the
/// figures; nothing trades after the pause while the price walks through the grid's levels. The
/// operator then aborts it, and its strategies stop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_front_run_canary_is_rolled_back_and_trades_nothing_after() {
    use alloy::providers::Provider;
    // No archive: the backtest stage waits for history; the operator forces the first two gates.
    let Some(Setup {
        chain,
        u,
        db,
        config,
        me,
        ..
    }) = setup("http://127.0.0.1:9", 50, "live_hours = 1").await
    else {
        return;
    };
    // The rollout promotes an existing paper strategy (`--from`): its grid is the rollout's.
    let grid = r#"{"lower_price":"570","upper_price":"630","grid_count":5,"base_order_size":"1000","fee_bps":30}"#;
    db.run(&[
        "--config", &config, "strategy", "create", "-t", "grid", "-s", "BNB/USDT", "-n", "seed",
        "-p", grid, "--paused",
    ])
    .ok();
    let started = db
        .run(&[
            "--config", &config, "--json", "canary", "start", "breach", "--from", "seed",
            "--wallet", "hot",
        ])
        .ok()
        .json();
    assert_eq!(started["rollout"]["params"]["grid_count"], 5, "{started}");
    assert_eq!(started["rollout"]["target_base_order_size"], "1000");
    let log = db.dir.path().join("daemon.log");
    let daemon = RunningDaemon::start_logged_with_env(&db, &config, &[], &ENV, &log).await;
    let store = db.store().await;
    for _ in 0..2 {
        db.run(&[
            "--config",
            &config,
            "canary",
            "promote",
            "breach",
            "--force",
            "--reason",
            "drill: straight to live",
        ])
        .ok();
    }
    let forced = status(&db, &config, "breach");
    assert_eq!(forced["stage"], "live 10%");
    let actors: Vec<&str> = forced["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["kind"] == "forced_promote")
        .map(|t| t["actor"].as_str().unwrap())
        .collect();
    assert_eq!(
        actors.len(),
        2,
        "each forced promotion on record under its operator"
    );

    // Blocks stop: the canary's start buys wait in the mempool, where the trader's big buy at a
    // higher gas price gets ahead of them.
    let reader = chain.reader();
    let _: serde_json::Value = reader
        .raw_request("evm_setAutomine".into(), (false,))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if Instant::now() > deadline {
            panic!(
                "the canary never sent a swap: {}\n{}",
                status(&db, &config, "breach"),
                daemon_trouble(&db, &config)
            );
        }
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
    tokio::time::sleep(Duration::from_millis(300)).await;
    chain.front_run_buy(&u, testchain::TRADER_KEY, 30_000).await;
    let _: serde_json::Value = reader.raw_request("evm_mine".into(), ()).await.unwrap();
    let _: serde_json::Value = reader
        .raw_request("evm_setAutomine".into(), (true,))
        .await
        .unwrap();

    let held = wait_status(&db, &config, "breach", Duration::from_secs(30), |s| {
        s["state"] == "held"
    })
    .await;
    let why = held["reason"].as_str().unwrap();
    assert!(why.starts_with("failed swaps "), "{why}");
    assert!(why.contains("needs ≤ 10%"), "{why}");
    let rollback = held["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|t| t["kind"] == "rollback")
        .cloned()
        .unwrap();
    assert_eq!(rollback["from_stage"], "live 10%");
    let live_id = held["stages"][2]["strategy_id"].as_i64().unwrap();
    let live = db
        .run(&[
            "--config",
            &config,
            "--json",
            "strategy",
            "status",
            &live_id.to_string(),
        ])
        .ok()
        .json();
    assert_eq!(live["strategy"]["status"], "paused", "{live}");

    // The price walks down through two levels and back: nothing of the canary trades.
    let (client, pool) = {
        let client = ChainClient::connect(&ChainConfig {
            rpc_urls: vec![chain.url.clone()],
            ..ChainConfig::default()
        })
        .await
        .unwrap();
        let base = client.token(u.base).await.unwrap();
        let quote = client.token(u.quote).await.unwrap();
        let pool = client.pool(u.factory, base, quote).await.unwrap();
        (client, pool)
    };
    let paused_at = rollback["created_at"].as_i64().unwrap();
    let swaps_then = store.chain_txs_of(56, me).await.unwrap().len();
    chain.walk_to(&client, &pool, u.router, d("580")).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    chain.walk_to(&client, &pool, u.router, d("620")).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after: Vec<_> = store
        .trading_history(Some(live_id), 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|t| t.executed_at > paused_at)
        .collect();
    assert!(after.is_empty(), "traded after the rollback: {after:?}");
    assert_eq!(
        store.chain_txs_of(56, me).await.unwrap().len(),
        swaps_then,
        "no transaction sent after the rollback"
    );
    let (_, metrics) = daemon.text("/metrics").await;
    assert!(
        metrics.contains("bsc_bot_canary_running{rollout=\"breach\",state=\"held\"} 0"),
        "{metrics}"
    );

    // Abort, from the API with the bearer token: without a reason refused, then done under the
    // operator's name; its strategies stop.
    db.run(&["--config", &config, "canary", "abort", "breach"])
        .fails_with(1, "needs --reason");
    let post = |body: serde_json::Value| {
        let url = format!("http://{}/api/v1/canary/breach/abort", daemon.api);
        async move {
            let r = reqwest::Client::new()
                .post(url)
                .bearer_auth(common::daemon::TOKEN)
                .json(&body)
                .send()
                .await
                .unwrap();
            (
                r.status().as_u16(),
                r.json::<serde_json::Value>().await.unwrap(),
            )
        }
    };
    let (code, refused) = post(serde_json::json!({})).await;
    assert_eq!(code, 400, "{refused}");
    assert_eq!(
        status(&db, &config, "breach")["state"],
        "held",
        "nothing changed"
    );
    let (code, done) =
        post(serde_json::json!({"reason": "pool is being front-run", "actor": "ops-alice"})).await;
    assert_eq!(code, 200, "{done}");
    assert_eq!(done["transition"]["actor"], "ops-alice");
    let aborted = status(&db, &config, "breach");
    assert_eq!(aborted["state"], "aborted");
    let deadline = Instant::now() + Duration::from_secs(10);
    let strategies = loop {
        let list = db
            .run(&["--config", &config, "--json", "strategy", "list"])
            .ok()
            .json();
        let stopped = list["strategies"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["name"].as_str().unwrap().starts_with("canary-breach-"))
            .all(|s| s["status"] == "stopped");
        if stopped || Instant::now() > deadline {
            break list;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let canary: Vec<&serde_json::Value> = strategies["strategies"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["name"].as_str().unwrap().starts_with("canary-breach-"))
        .collect();
    assert_eq!(
        canary.len(),
        2,
        "the live strategy and its paper twin: {strategies}"
    );
    assert!(
        canary.iter().all(|s| s["status"] == "stopped"),
        "{strategies}"
    );
    drop(daemon);
    store.close().await;
}

/// A paper stage that does not match its backtest over the same ticks — its venue answers 300 ms
/// late and fails a third of the orders (a failpoint) — is held at the paper gate, the first
/// differing fill named; nothing goes live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paper_run_that_parts_from_its_backtest_is_held_at_the_paper_gate() {
    let Some(Setup {
        chain,
        u,
        db,
        config,
        client,
        pool,
        ..
    }) = setup("http://127.0.0.1:9", 500, "paper_hours = 0.005").await
    else {
        return;
    };
    // From a spec file, as `strategy create --file` reads it.
    let spec = db.dir.path().join("late.toml");
    std::fs::write(
        &spec,
        "name = \"ignored: the rollout names its strategies\"\ntype = \"grid\"\nsymbol = \"BNB/USDT\"\n\n\
         [params]\nlower_price = \"570\"\nupper_price = \"630\"\ngrid_count = 5\n\
         base_order_size = \"1000\"\nfee_bps = 30\n",
    )
    .unwrap();
    db.run(&[
        "--config",
        &config,
        "canary",
        "start",
        "late",
        "--file",
        spec.to_str().unwrap(),
        "--wallet",
        "hot",
    ])
    .ok();
    let log = db.dir.path().join("daemon.log");
    let env = [
        ENV[0],
        ENV[1],
        (
            "BSC_BOT_FAILPOINTS",
            "paper_venue=latency_ms:300/fail_ppm:300000",
        ),
    ];
    let daemon = RunningDaemon::start_logged_with_env(&db, &config, &[], &env, &log).await;
    db.run(&[
        "--config",
        &config,
        "canary",
        "promote",
        "late",
        "--force",
        "--reason",
        "drill: no history here",
    ])
    .ok();
    wait_status(&db, &config, "late", Duration::from_secs(10), |s| {
        s["stage"] == "paper" && s["stages"][1]["strategy_id"].is_i64()
    })
    .await;
    // An operator's pause stops the clock until their resume; resuming a running one is refused.
    db.run(&[
        "--config", &config, "canary", "pause", "late", "--reason", "lunch",
    ])
    .ok();
    let paused = status(&db, &config, "late");
    assert_eq!(
        (paused["state"].as_str(), paused["reason"].as_str()),
        (Some("paused"), Some("lunch"))
    );
    db.run(&["--config", &config, "canary", "resume", "late"])
        .ok();
    db.run(&["--config", &config, "canary", "resume", "late"])
        .fails_with(1, "rollout is running at stage paper: cannot resume");
    // `emergency stop-all` holds the rollout (its clock stops); clearing it lets it go on.
    db.run(&[
        "--config",
        &config,
        "emergency",
        "stop-all",
        "--reason",
        "drill",
    ])
    .ok();
    let paused = wait_status(&db, &config, "late", Duration::from_secs(10), |s| {
        s["state"] == "paused"
    })
    .await;
    assert_eq!(paused["reason"], "daemon hold: emergency stop: drill");
    let elapsed = paused["stage_elapsed_ms"].as_i64().unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        status(&db, &config, "late")["stage_elapsed_ms"]
            .as_i64()
            .unwrap(),
        elapsed,
        "a held rollout's clock stands still"
    );
    db.run(&[
        "--config",
        &config,
        "emergency",
        "clear",
        "--reason",
        "drill over",
    ])
    .ok();
    wait_status(&db, &config, "late", Duration::from_secs(10), |s| {
        s["state"] == "running"
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(120);
    let held = loop {
        let s = status(&db, &config, "late");
        if s["state"] != "running" {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the paper gate never decided: {s}"
        );
        chain.walk_to(&client, &pool, u.router, d("579")).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        chain.walk_to(&client, &pool, u.router, d("605")).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
    };
    assert_eq!(held["state"], "held", "{held}");
    assert_eq!(held["stage"], "paper");
    let why = held["reason"].as_str().unwrap();
    assert!(
        why.starts_with("paper gate: fills against the backtest of the same ticks fill #"),
        "{why}"
    );
    assert_eq!(held["gates"]["paper"]["decision"], "hold");
    assert!(
        held["stages"][2]["strategy_id"].is_null(),
        "nothing went live: {held}"
    );
    drop(daemon);
}

/// A scale step the wallet can no longer fund (its quote moved out after the canary started) is
/// refused with the figures: the live strategy is paused and the rollout rolled back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scale_step_the_wallet_cannot_fund_is_rolled_back_with_the_figures() {
    use alloy::providers::Provider;
    let Some(Setup {
        chain,
        u,
        db,
        config,
        me,
        ..
    }) = setup("http://127.0.0.1:9", 500, "").await
    else {
        return;
    };
    let grid = r#"{"lower_price":"570","upper_price":"630","grid_count":5,"base_order_size":"1000","fee_bps":30}"#;
    db.run(&[
        "--config", &config, "canary", "start", "thin", "-t", "grid", "-s", "BNB/USDT", "-p", grid,
        "--wallet", "hot",
    ])
    .ok();
    let log = db.dir.path().join("daemon.log");
    let daemon = RunningDaemon::start_logged_with_env(&db, &config, &[], &ENV, &log).await;
    let promote = || {
        db.run(&[
            "--config", &config, "canary", "promote", "thin", "--force", "--reason", "drill",
        ])
        .ok();
    };
    promote();
    promote();
    let live = wait_status(&db, &config, "thin", Duration::from_secs(30), |s| {
        s["stages"][2]["strategy_id"].is_i64()
    })
    .await;
    assert_eq!(live["stage"], "live 10%");
    // 9,300 of the wallet's 10,000 USDT leave it (the node lets the test send as the wallet).
    let reader = chain.reader();
    let _: serde_json::Value = reader
        .raw_request("anvil_impersonateAccount".into(), (me,))
        .await
        .unwrap();
    let whole = U256::from(10u8).pow(U256::from(18u8));
    let sent = bsc_bot::chain::contracts::IERC20::new(u.quote, &reader)
        .transfer(Address::repeat_byte(0x77), U256::from(9_300u64) * whole)
        .from(me)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(sent.status());
    promote();
    let held = wait_status(&db, &config, "thin", Duration::from_secs(30), |s| {
        s["state"] == "held"
    })
    .await;
    assert_eq!(held["stage"], "live 25%");
    let why = held["reason"].as_str().unwrap();
    assert!(
        why.starts_with("wallet hot holds ")
            && why.ends_with("the grid at base_order_size 250 needs 1000"),
        "{why}"
    );
    let id = held["stages"][2]["strategy_id"].as_i64().unwrap();
    let s = db
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
    assert_eq!(s["strategy"]["status"], "paused", "{s}");
    assert_eq!(
        s["strategy"]["params"]["base_order_size"], "100",
        "never resized: {s}"
    );
    drop(daemon);
}
