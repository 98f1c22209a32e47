//! Canary rollouts on record, on both databases: a rollout restored from its row is the rollout
//! that was saved (stage, state, the time it had); names are unique; a write on a stale read
//! changes nothing; every decision is a row, an operator's also an audit entry.

#![allow(clippy::unwrap_used)]

#[path = "common/archive.rs"]
mod archive;
mod common;
#[path = "common/chain.rs"]
mod testchain;

use bsc_bot::canary::gates::{live_gate, LiveMeasures};
use bsc_bot::canary::{Rollout, RolloutPlan, RolloutState, TransitionKind};
use bsc_bot::config::canary::CanaryConfig;
use bsc_bot::store::canary::NewRollout;
use bsc_bot::store::{AuditContext, StoreError};
use common::{backends, TestDb};
use rust_decimal::Decimal;
use serde_json::json;

fn new_rollout(name: &str) -> (NewRollout, Rollout) {
    let settings = CanaryConfig::default()
        .with_overrides(&json!({"paper_hours": "0.01", "live_hours": "0.01", "step_hours": "0.01"}))
        .unwrap();
    let plan = RolloutPlan::new(Decimal::from(50), &settings).unwrap();
    (
        NewRollout {
            name: name.into(),
            symbol: "WBNB/USDT".into(),
            kind: "grid".into(),
            params: json!({"lower_price": "500", "upper_price": "700", "grid_count": 10, "base_order_size": "50"}),
            wallet: Some("hot".into()),
            settings,
        },
        Rollout::new(plan),
    )
}

fn ctx(command: &str) -> AuditContext {
    AuditContext {
        command: command.into(),
        arguments: vec!["canary-a".into()],
        actor: "alice".into(),
    }
}

#[tokio::test]
async fn a_rollout_on_record_is_the_rollout_that_was_saved() {
    for kind in backends() {
        let db = TestDb::new(kind).await;
        let store = db.store().await;
        let (new, rollout) = new_rollout("canary-a");
        let id = store
            .insert_rollout(&new, &rollout, &ctx("canary start"), 1_000)
            .await
            .unwrap();

        let again = store
            .insert_rollout(&new, &rollout, &ctx("canary start"), 1_001)
            .await
            .unwrap_err();
        assert!(
            matches!(&again, StoreError::Conflict(m) if m.contains("\"canary-a\" exists already (running)")),
            "{kind}: {again}"
        );
        assert_eq!(store.list_rollouts().await.unwrap().len(), 1, "{kind}");
        let (numbered, r) = new_rollout("42");
        let e = store
            .insert_rollout(&numbered, &r, &ctx("canary start"), 1_002)
            .await
            .unwrap_err();
        assert!(
            e.to_string().contains("not empty or a number"),
            "{kind}: {e}"
        );

        // The daemon runs the backtest stage and promotes it, then spends time in paper.
        let mut rec = store.get_rollout("canary-a").await.unwrap();
        assert_eq!(rec.id, id);
        assert_eq!(rec.rollout, rollout, "{kind}");
        assert_eq!(rec.created_by, "alice");
        let report = bsc_bot::canary::gates::backtest_gate(
            &bsc_bot::canary::gates::BacktestMeasures {
                return_net_of_gas_pct: Decimal::ONE,
                max_drawdown_pct: Decimal::ONE,
                round_trips: 3,
                cost_warnings: vec![],
            },
            &rec.settings,
        );
        let t = rec.rollout.decide(report).unwrap();
        assert_eq!(t.kind, TransitionKind::Promote, "{kind}: {t:?}");
        rec.strategies.insert(1, 77);
        rec.version = store
            .save_rollout(&rec, Some(&t), None, 2_000)
            .await
            .unwrap();
        rec.rollout.run_for(12_345);
        rec.version = store.save_rollout(&rec, None, None, 3_000).await.unwrap();

        // What a restarted daemon reads: the same stage, state, time in stage and strategies.
        let restored = store.get_rollout(&id.to_string()).await.unwrap();
        assert_eq!(restored.rollout, rec.rollout, "{kind}");
        assert_eq!(restored.rollout.stage_name(), "paper");
        assert_eq!(restored.rollout.stage_elapsed_ms, 12_345);
        assert_eq!(restored.strategies.get(&1), Some(&77));
        assert_eq!(restored.version, rec.version);
        assert_eq!(
            restored.rollout.remaining_ms(),
            36_000 - 12_345,
            "{kind}: 0.01 h of paper, 12.345 s of it spent"
        );

        // An operator pauses on a stale read while the daemon wrote: refused, nothing changed.
        let mut stale = store.get_rollout("canary-a").await.unwrap();
        rec.rollout.run_for(1_000);
        store.save_rollout(&rec, None, None, 3_500).await.unwrap();
        let t = stale.rollout.pause("maintenance".into(), "alice").unwrap();
        let e = store
            .save_rollout(&stale, Some(&t), Some(&ctx("canary pause")), 4_000)
            .await
            .unwrap_err();
        assert!(matches!(e, StoreError::Conflict(_)), "{kind}: {e}");
        let now = store.get_rollout("canary-a").await.unwrap();
        assert_eq!(now.rollout.state, RolloutState::Running, "{kind}");
        assert_eq!(now.rollout.stage_elapsed_ms, 13_345, "{kind}");
        assert_eq!(
            store.rollout_transitions(id).await.unwrap().len(),
            1,
            "{kind}"
        );

        // Read again, the pause lands with its transition and the operator's audit entry.
        let mut fresh = now;
        let t = fresh.rollout.pause("maintenance".into(), "alice").unwrap();
        store
            .save_rollout(&fresh, Some(&t), Some(&ctx("canary pause")), 5_000)
            .await
            .unwrap();
        let paused = store.get_rollout("canary-a").await.unwrap();
        assert_eq!(
            paused.rollout.state,
            RolloutState::Paused {
                reason: "maintenance".into()
            },
            "{kind}"
        );
        let log = store.audit_log(10).await.unwrap();
        assert!(
            log.iter().any(|a| a.command == "canary (daemon)"
                && a.actor == "daemon"
                && a.detail
                    .as_deref()
                    .is_some_and(|d| d.contains("backtest → paper running"))),
            "{kind}: the daemon's own transition is audited too: {log:?}"
        );
        assert!(
            log.iter().any(|a| a.command == "canary pause"
                && a.detail
                    .as_deref()
                    .is_some_and(|d| d.contains("paper → paper paused"))),
            "{kind}: {log:?}"
        );

        // A live gate that failed: the transition keeps the gate's figures.
        let mut live = paused;
        live.rollout.resume("back".into(), "alice").unwrap();
        live.rollout
            .force_promote("skip paper".into(), "alice")
            .unwrap();
        live.rollout.run_for(live.rollout.remaining_ms());
        let report = live_gate(
            &LiveMeasures {
                swaps: 4,
                failed_swaps: 2,
                ..LiveMeasures::default()
            },
            &live.settings,
        );
        let t = live.rollout.decide(report).unwrap();
        assert_eq!(t.kind, TransitionKind::Rollback);
        store
            .save_rollout(&live, Some(&t), None, 6_000)
            .await
            .unwrap();
        let transitions = store.rollout_transitions(id).await.unwrap();
        let last = transitions.last().unwrap();
        assert_eq!(
            (
                last.kind.as_str(),
                last.from_stage.as_str(),
                last.to_state.as_str()
            ),
            ("rollback", "live 10%", "held"),
            "{kind}"
        );
        assert!(
            last.reason
                .starts_with("live gate: failed swaps % 50 (needs ≤ 10)"),
            "{}",
            last.reason
        );
        let gate = last.gate.as_ref().unwrap();
        assert_eq!(gate["values"][0]["value"], json!("50"), "{kind}: {gate}");
        assert_eq!(gate["values"][0]["passed"], json!(false), "{kind}");
        store.close().await;
    }
}

#[tokio::test]
async fn an_unknown_rollout_is_named() {
    let db = TestDb::new("sqlite").await;
    let store = db.store().await;
    let e = store.get_rollout("nope").await.unwrap_err();
    assert_eq!(e.to_string(), "canary rollout \"nope\" not found");
    assert!(e.is_invalid_input());
}

/// One-minute klines (12 columns) from `from` (inclusive) to `to` (exclusive): the price walks
/// 97,000 → 103,000 → 97,000 every four hours, so a grid between them completes round trips.
fn klines(from: chrono::NaiveDate, to: chrono::NaiveDate) -> String {
    let start = from
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp_millis();
    let end = to
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp_millis();
    let mut out = String::new();
    let mut minute = 0i64;
    let mut t = start;
    while t < end {
        let phase = minute % 240;
        let up = if phase < 120 { phase } else { 240 - phase };
        let p = 97_000 + 50 * up;
        out.push_str(&format!(
            "{t},{p}.00,{p}.00,{p}.00,{p}.00,1.5,{},{p}.00,12,0.7,{}.00,0\n",
            t + 59_999,
            p / 2
        ));
        t += 60_000;
        minute += 1;
    }
    out
}

/// The backtest stage on the real parts: Binance history from a local archive (daily files), the
/// live pool's depth read from anvil, the run stored as an
/// ordinary backtest; a sound grid passes its gate, one narrower than a round trip in the pool
/// is stopped with that reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backtest_stage_runs_the_grid_through_the_live_pool() {
    use chrono::NaiveDate;
    let Some(chain) = testchain::TestChain::start().await else {
        return;
    };
    let u = chain.deploy_uniswap(10, 1_000_000).await;
    let files: archive::Files = Default::default();
    let day = |d: u32, m: u32| NaiveDate::from_ymd_opt(2025, m, d).unwrap();
    // A part of a month comes as daily files (a whole past month would be one monthly file); the
    // days either side of the window are published too, and must not be read.
    let mut d = day(28, 5);
    while d <= day(5, 6) {
        let next = d.succ_opt().unwrap();
        let name = format!("BTCUSDT-1m-{}", d.format("%Y-%m-%d"));
        archive::publish(
            &files,
            &format!("/data/spot/daily/klines/BTCUSDT/1m/{name}.zip"),
            &format!("{name}.csv"),
            klines(d, next).as_bytes(),
        );
        d = next;
    }
    let (archive_url, _) = archive::serve(files).await;
    let db = TestDb::new("sqlite").await;
    let path = db.dir.path().join("bsc-bot.toml");
    std::fs::write(
        &path,
        format!(
            "[data]\narchive_url = \"{archive_url}\"\n\n\
             [chain]\nchain_id = 56\nrpc_urls = [\"{url}\"]\n\n\
             [dex]\nrouter = \"{router}\"\nfactory = \"{factory}\"\nfee_bps = 30\n\n\
             [dex.assets]\nBTC = \"{base}\"\nUSDT = \"{quote}\"\n\n\
             [database]\nurl = \"{db_url}\"\n",
            url = chain.url,
            router = u.router,
            factory = u.factory,
            base = u.base,
            quote = u.quote,
            db_url = db.store_url(),
        ),
    )
    .unwrap();
    let (config, _) = bsc_bot::config::load(&path, true, &[]).unwrap();
    let store = db.store().await;
    let today = day(5, 6);
    let rollout = |name: &str, params: serde_json::Value| {
        let settings = CanaryConfig::default();
        let plan = RolloutPlan::new(Decimal::from(1000), &settings).unwrap();
        bsc_bot::store::canary::RolloutRecord {
            id: 0,
            name: name.into(),
            symbol: "BTC/USDT".into(),
            kind: "grid".into(),
            params,
            wallet: None,
            settings,
            rollout: Rollout::new(plan),
            strategies: Default::default(),
            version: 1,
            created_by: "test".into(),
            created_at: 0,
            updated_at: 0,
        }
    };

    let sound = rollout(
        "sound",
        json!({"lower_price": "96000", "upper_price": "104000", "grid_count": 4, "base_order_size": "1000", "fee_bps": 30}),
    );
    let stage = bsc_bot::rollout::run_backtest_stage(&config, &store, &sound, today)
        .await
        .unwrap();
    assert!(stage.report.passed(), "{:#?}", stage.report);
    assert_eq!(
        stage.result.data.rows,
        7 * 1440,
        "seven days of minutes, no more"
    );
    assert!(stage.measures.round_trips >= 20, "{:?}", stage.measures);
    assert!(stage.measures.cost_warnings.is_empty());
    let costs = stage
        .result
        .swap_costs
        .as_ref()
        .expect("filled through the pool");
    assert!(costs.price_impact > Decimal::ZERO && costs.pool_fees > Decimal::ZERO);
    let stored = store.get_backtest(stage.backtest.id).await.unwrap();
    assert_eq!(stored.symbol, "BTC/USDT");
    assert_eq!(
        stored.result["round_trips"],
        json!(stage.result.round_trips),
        "the stage's backtest is on record as any other"
    );
    assert!(std::path::Path::new(stage.backtest.fills_csv.as_deref().unwrap()).exists());

    // Ten cells of 200 between 99,000 and 101,000 (about 20 bps each): a round trip in this pool
    // costs two 30 bps fees and the lots' impact.
    let narrow = rollout(
        "narrow",
        json!({"lower_price": "99000", "upper_price": "101000", "grid_count": 10, "base_order_size": "1000", "fee_bps": 30}),
    );
    let stage = bsc_bot::rollout::run_backtest_stage(&config, &store, &narrow, today)
        .await
        .unwrap();
    assert!(!stage.report.passed());
    let why = stage.report.failures().unwrap();
    assert!(
        why.contains("round-trip cost against cell")
            && why.contains("below a round trip's cost in this pool"),
        "{why}"
    );

    // A day of the window not yet published: held with the files that are missing.
    let gappy: archive::Files = Default::default();
    let mut d = day(29, 5);
    while d < today {
        let next = d.succ_opt().unwrap();
        if d != day(2, 6) {
            let name = format!("BTCUSDT-1m-{}", d.format("%Y-%m-%d"));
            archive::publish(
                &gappy,
                &format!("/data/spot/daily/klines/BTCUSDT/1m/{name}.zip"),
                &format!("{name}.csv"),
                klines(d, next).as_bytes(),
            );
        }
        d = next;
    }
    let (gappy_url, _) = archive::serve(gappy).await;
    let mut gappy_config = config.clone();
    gappy_config.data.archive_url = gappy_url;
    gappy_config.data.dir = "other-data".into();
    let e = bsc_bot::rollout::run_backtest_stage(&gappy_config, &store, &sound, today)
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "history: BTC/USDT 1m klines from 2025-05-29 up to 2025-06-05 (excluded) are not all \
         published: BTCUSDT-1m-2025-06-02.csv missing; the stage runs again when they are"
    );

    // A market without a token for the chain: held with why, nothing judged.
    let unknown = bsc_bot::store::canary::RolloutRecord {
        symbol: "ETH/USDT".into(),
        ..rollout(
            "eth",
            json!({"lower_price": "2000", "upper_price": "3000", "grid_count": 4, "base_order_size": "100"}),
        )
    };
    let e = bsc_bot::rollout::run_backtest_stage(&config, &store, &unknown, today)
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "the live pool: no token for ETH in [dex.assets]"
    );
    store.close().await;
}

/// The paper stage's fidelity check on real ticks: a paper loop (the daemon's wall-clock loop,
/// ticks arriving over a channel) keeps a tick log as it trades; the grid replayed over exactly
/// those ticks fills as paper did, fill for fill. A paper venue that answered late and failed
/// some orders parts from its replay, and the gate names the first differing fill.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paper_fills_equal_the_replay_of_the_ticks_it_traded_on() {
    use bsc_bot::backtest::data::{ReadOptions, TickReader};
    use bsc_bot::canary::gates::paper_gate;
    use bsc_bot::engine::live::{run_live, LiveInputs};
    use bsc_bot::engine::{Engine, MemoryRecorder};
    use bsc_bot::model::order::Fill;
    use bsc_bot::model::MarketTick;
    use bsc_bot::risk::{RiskGuard, RiskLimits};
    use bsc_bot::rollout::paper_stage::{paper_measures, replay_fills, PaperRun, TickLog};
    use bsc_bot::strategy::{StrategyParams, StrategyStatus};
    use bsc_bot::venue::sim::SimDelays;
    use bsc_bot::venue::{SimVenue, SimVenueConfig};
    use std::time::Duration;
    use tokio::sync::{mpsc, watch};

    let data = common::repo_path("tests/data/BTCUSDT-trades-2023-04-05.from-ws.csv");
    let params = StrategyParams::parse(
        "grid",
        &json!({"lower_price": "28100", "upper_price": "28200", "grid_count": 21, "base_order_size": "100", "fee_bps": 10}),
    )
    .unwrap();
    let mut ticks = Vec::new();
    TickReader::new(ReadOptions::default())
        .read_file(&data, &mut |ts, p| ticks.push((ts, p)), &mut |_| {})
        .unwrap();

    // A paper run of the daemon's loop whose feed keeps the tick log as it sends.
    async fn paper(
        params: &StrategyParams,
        ticks: &[(i64, bsc_bot::model::PriceKey)],
        log: &std::path::Path,
        delays: SimDelays,
    ) -> Vec<Fill> {
        let mut engine = Engine::new(
            1,
            SimVenue::new(SimVenueConfig::default()).with_delays(delays),
            RiskGuard::new(RiskLimits::default()),
            MemoryRecorder::default(),
        );
        engine.add_strategy(
            params.build(),
            0,
            params.fee_bps(),
            StrategyStatus::Active,
            None,
        );
        let (shutdown_tx, shutdown) = watch::channel(false);
        let (_control_tx, control) = mpsc::channel(16);
        let (_reports_tx, reports) = mpsc::channel(16);
        let (market_tx, market) = mpsc::channel(1024);
        let probe = market_tx.clone();
        let ticks = ticks.to_vec();
        let log = log.to_path_buf();
        let feed = tokio::spawn(async move {
            let mut tick_log = TickLog::open(&log).unwrap();
            for (i, (ts, price)) in ticks.into_iter().enumerate() {
                // The engine trades a tick at its receive time; the exchange's is earlier.
                tick_log.record(ts, price).unwrap();
                market_tx
                    .send(MarketTick {
                        symbol: 0,
                        exchange_ts_us: ts - 1_500,
                        received_ts_us: ts,
                        price,
                        received_at: None,
                    })
                    .await
                    .unwrap();
                if i % 500 == 0 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
            tick_log.flush().unwrap();
        });
        let inputs = LiveInputs {
            shutdown,
            control,
            reports,
            market,
            mark_every: Duration::from_millis(50),
        };
        let runner = tokio::spawn(async move {
            run_live(&mut engine, inputs).await;
            engine
        });
        feed.await.unwrap();
        // Stop once the loop has taken every tick the feed sent (it handles one before it looks at
        // shutdown again): a loaded machine's loop may lag the feed by more than a fixed wait.
        drained(&probe).await;
        shutdown_tx.send(true).unwrap();
        runner.await.unwrap().recorder().fills.clone()
    }

    let dir = tempfile::tempdir().unwrap();
    let run = PaperRun {
        params: &params,
        risk: RiskLimits::default(),
        amm: None,
        v3: None,
        slippage_bps: 0,
    };
    let log = dir.path().join("ticks.csv");
    let paper_fills = paper(&params, &ticks, &log, SimDelays::default()).await;
    assert!(
        paper_fills.len() >= 10,
        "the scenario trades: {}",
        paper_fills.len()
    );
    let replayed = replay_fills(&run, &log).unwrap();
    let m = paper_measures(&paper_fills, &replayed, 0, Decimal::ZERO);
    assert_eq!(m.difference, None, "paper and its replay, fill for fill");
    assert!(paper_gate(&m, &CanaryConfig::default()).passed());

    // The log is private and goes on across a restart (ids continue, nothing is rewritten).
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&log).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let rows = std::fs::read_to_string(&log).unwrap().lines().count();
    assert_eq!(rows, ticks.len());
    let mut again = TickLog::open(&log).unwrap();
    again.record(ticks[0].0, ticks[0].1).unwrap();
    again.flush().unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text.lines().count(), rows + 1);
    assert!(text
        .lines()
        .last()
        .unwrap()
        .starts_with(&format!("{rows},")));

    // A crash in the middle of a row: the open cuts it off, its id stays unused, and the replay
    // refuses to judge on a log that misses a tick.
    let cut = dir.path().join("cut.csv");
    {
        let mut l = TickLog::open(&cut).unwrap();
        for (ts, p) in &ticks[..3] {
            l.record(*ts, *p).unwrap();
        }
        l.flush().unwrap();
    }
    let mut text = std::fs::read_to_string(&cut).unwrap();
    text.push_str("3,28150.1");
    std::fs::write(&cut, &text).unwrap();
    let mut l = TickLog::open(&cut).unwrap();
    l.record(ticks[3].0, ticks[3].1).unwrap();
    l.flush().unwrap();
    let rows: Vec<String> = std::fs::read_to_string(&cut)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(rows.len(), 4);
    assert!(rows[3].starts_with("4,"), "{rows:?}");
    let e = replay_fills(&run, &cut).unwrap_err();
    assert!(
        e.to_string().contains("1 tick(s) missing from the log"),
        "{e}"
    );

    // A paper venue that answers 2 s late and fails a fifth of its orders: not what the replay
    // (the instant venue) does; the gate holds, naming the first fill that differs.
    let late_log = dir.path().join("late.csv");
    let late = SimDelays {
        latency_us: 2_000_000,
        fail_ppm: 200_000,
        reject_ppm: 0,
        seed: 7,
    };
    let late_fills = paper(&params, &ticks, &late_log, late).await;
    let replayed = replay_fills(&run, &late_log).unwrap();
    let m = paper_measures(&late_fills, &replayed, 0, Decimal::ZERO);
    let diff = m
        .difference
        .clone()
        .expect("a late, failing venue parts from its replay");
    let report = paper_gate(&m, &CanaryConfig::default());
    assert!(!report.passed());
    assert!(
        report
            .failures()
            .unwrap()
            .contains(&format!("fill #{}: paper ", diff.index + 1)),
        "{report:?}"
    );

    // A link where the log goes is refused.
    let link = dir.path().join("link.csv");
    std::os::unix::fs::symlink(dir.path().join("elsewhere"), &link).unwrap();
    let e = TickLog::open(&link).err().expect("a link refused");
    assert!(e.to_string().contains("symbolic link"), "{e}");
}

/// The real daemon keeps a canary paper strategy's ticks as it trades them (the rollout at its
/// paper stage names the strategy), and the same grid replayed over that log fills exactly as
/// the paper strategy's trades on record: the paper gate's premise, end to end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_logs_a_canary_paper_strategys_ticks_and_its_replay_matches() {
    use bsc_bot::config::RiskConfig;
    use bsc_bot::risk::RiskLimits;
    use bsc_bot::rollout::paper_stage::{
        at_ms_precision, paper_fills_of, paper_measures, replay_fills, PaperRun,
    };
    use common::daemon::{write_config, RunningDaemon};
    use common::exchange::{capture_frames, restamp, Cmd, FakeBinance};
    use std::time::Duration;

    let db = TestDb::new("sqlite").await;
    let ex = FakeBinance::start().await;
    let config = write_config(&db, &ex.url, "");
    let params = json!({"lower_price": "28100", "upper_price": "28200", "grid_count": 21, "base_order_size": "100", "fee_bps": 0});
    let created = db
        .run(&[
            "--config",
            &config,
            "--json",
            "strategy",
            "create",
            "-t",
            "grid",
            "-s",
            "BTC/USDT",
            "-n",
            // The name the daemon's driver gives the rollout's paper strategy: it finds this one
            // and runs it, rather than making its own.
            "canary-canary-b-paper",
            "-p",
            &params.to_string(),
        ])
        .ok()
        .json();
    let sid = created["strategy"]["id"].as_i64().unwrap();
    let store = db.store().await;
    let (new, rollout) = new_rollout("canary-b");
    let rid = store
        .insert_rollout(&new, &rollout, &ctx("canary start"), 1_000)
        .await
        .unwrap();
    let mut rec = store.get_rollout("canary-b").await.unwrap();
    let t = rec
        .rollout
        .force_promote("test: to paper".into(), "alice")
        .unwrap();
    rec.strategies.insert(rec.rollout.stage, sid);
    store
        .save_rollout(&rec, Some(&t), None, 2_000)
        .await
        .unwrap();
    assert_eq!(rec.rollout.stage_name(), "paper");

    let daemon = RunningDaemon::start(&db, &config, &[]).await;
    assert!(ex.wait_connections(0, Duration::from_secs(5)).await);
    let frames = capture_frames(3_000);
    for (i, f) in frames.iter().enumerate() {
        ex.send(Cmd::Text(restamp(f, bsc_bot::clock::wall_clock_ms())));
        if i % 200 == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    // Until the trades on record stop changing.
    let mut last = -1;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let n = store.trade_count(sid).await.unwrap();
        if n == last && n > 0 {
            break;
        }
        last = n;
    }
    drop(daemon);
    let trades = store.trading_history(Some(sid), 100_000).await.unwrap();
    assert!(trades.len() >= 4, "the grid trades: {}", trades.len());

    let log = db
        .dir
        .path()
        .join(format!("data/canary/{rid}/paper-ticks-{sid}.csv"));
    let rows = std::fs::read_to_string(&log)
        .unwrap_or_else(|e| panic!("{}: {e}", log.display()))
        .lines()
        .count();
    assert!(rows > 100, "the ticks it traded on: {rows}");
    let grid = bsc_bot::strategy::StrategyParams::parse("grid", &params).unwrap();
    let run = PaperRun {
        params: &grid,
        risk: RiskLimits::from_config(&RiskConfig::default()),
        amm: None,
        v3: None,
        slippage_bps: 0,
    };
    let replayed = at_ms_precision(replay_fills(&run, &log).unwrap());
    let paper = paper_fills_of(&trades).unwrap();
    let m = paper_measures(&paper, &replayed, 0, Decimal::ZERO);
    assert_eq!(
        m.difference,
        None,
        "{} paper fills against {} replayed",
        paper.len(),
        replayed.len()
    );
    store.close().await;
}

/// The live gate's measures read from the record, on both databases: only the stage's stretch
/// counts; each live fill is held against its paper twin's fill of the same cell and side.
#[tokio::test]
async fn live_measures_come_from_the_stages_record() {
    use bsc_bot::rollout::live_stage::{live_measures, LiveWindow};
    use bsc_bot::store::paper::{self, PlacedOrder, TradeRow};

    fn order(sid: i64, name: &str, side: &str, cell: i64, status: &'static str) -> PlacedOrder {
        PlacedOrder {
            strategy_id: sid,
            client_order_id: name.into(),
            kind: "limit".into(),
            side: side.into(),
            trigger_price: Some("100".into()),
            quote_amount: Some("10".into()),
            base_amount: None,
            cell: Some(cell),
            tag: Some(cell),
            status,
        }
    }
    fn trade(
        sid: i64,
        order_id: i64,
        side: &str,
        price: &str,
        pnl: Option<&str>,
        gas: Option<&str>,
        at: i64,
    ) -> TradeRow {
        TradeRow {
            strategy_id: sid,
            order_id,
            side: side.into(),
            price: price.into(),
            base_amount: "0.1".into(),
            quote_amount: "10".into(),
            fee_quote: "0".into(),
            realized_pnl: pnl.map(String::from),
            executed_at: at,
            gas_quote: gas.map(String::from),
            gas_bnb_price: None,
        }
    }
    let d = |s: &str| s.parse::<Decimal>().unwrap();
    for kind in backends() {
        let db = TestDb::new(kind).await;
        let live = common::create_grid(&db, "live-canary");
        let twin = common::create_grid(&db, "paper-twin");
        let store = db.store().await;
        let since = 10_000;
        let mut tx = store.begin_write().await.unwrap();
        let ids = paper::insert_orders(
            &mut tx,
            &[
                (order(live, "l-old", "buy", 3, "filled"), 5_000),
                (order(live, "l-b1", "buy", 1, "filled"), 11_000),
                (order(live, "l-s1", "sell", 1, "filled"), 12_000),
                (order(live, "l-b2", "buy", 2, "failed"), 13_000),
                (order(twin, "t-b1", "buy", 1, "filled"), 11_000),
                (order(twin, "t-s1", "sell", 1, "filled"), 12_000),
            ],
        )
        .await
        .unwrap();
        paper::insert_trades(
            &mut tx,
            &[
                trade(live, ids["l-old"], "buy", "90", None, Some("0.1"), 5_000),
                trade(live, ids["l-b1"], "buy", "100.5", None, Some("0.1"), 11_000),
                trade(
                    live,
                    ids["l-s1"],
                    "sell",
                    "101",
                    Some("0.4"),
                    Some("0.1"),
                    12_000,
                ),
                trade(twin, ids["t-b1"], "buy", "100", None, None, 11_000),
                trade(
                    twin,
                    ids["t-s1"],
                    "sell",
                    "101.5",
                    Some("0.5"),
                    None,
                    12_000,
                ),
            ],
        )
        .await
        .unwrap();
        paper::insert_risk_event(
            &mut tx,
            Some(live),
            "price_jump",
            "warning",
            "before",
            5_000,
        )
        .await
        .unwrap();
        paper::insert_risk_event(
            &mut tx,
            Some(live),
            "error_rate",
            "warning",
            "in it",
            12_500,
        )
        .await
        .unwrap();
        paper::insert_risk_event(&mut tx, Some(twin), "price_jump", "warning", "twin", 12_500)
            .await
            .unwrap();
        tx.commit().await.unwrap();

        let window = LiveWindow {
            live,
            twin: Some(twin),
            since_ms: since,
            capital: d("100"),
            model_gas_per_round_trip: Some(d("0.1")),
        };
        let m = live_measures(&store, &window).await.unwrap();
        assert_eq!(
            (m.swaps, m.failed_swaps),
            (3, 1),
            "{kind}: two fills and a failure since the start"
        );
        assert_eq!(m.risk_events, 1, "{kind}");
        // Buy 100.5 against 100: 50 bps worse; sell 101 against 101.5: 49.26 bps worse.
        assert_eq!(m.worst_slippage_bps, Some(d("50")), "{kind}");
        assert_eq!(m.gas_per_round_trip, Some(d("0.2")), "{kind}");
        assert_eq!(m.gas_ratio(), Some(d("2")), "{kind}");
        assert_eq!(
            m.return_net_of_gas_pct,
            d("0.2"),
            "{kind}: (0.4 realized - 0.2 gas) / 100"
        );
        let report = bsc_bot::canary::gates::live_gate(&m, &CanaryConfig::default());
        assert_eq!(
            report.failures().unwrap(),
            "live gate: failed swaps % 33.3333 (needs ≤ 10); risk events 1 (needs ≤ 0)",
            "{kind}"
        );

        // Without a twin nothing can be compared: the slippage is not measured.
        let alone = live_measures(
            &store,
            &LiveWindow {
                twin: None,
                ..window
            },
        )
        .await
        .unwrap();
        assert_eq!(alone.worst_slippage_bps, None);
        store.close().await;
    }
}

/// Every tick sent on the channel was taken by the engine loop (up to 30 s).
async fn drained<T>(probe: &tokio::sync::mpsc::Sender<T>) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while probe.capacity() < probe.max_capacity() {
        assert!(
            std::time::Instant::now() < deadline,
            "the engine loop did not take the ticks"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}
