//! The same real ticks through the backtest path and through the paper path (wall-clock live
//! loop, ticks arriving over a channel from another task) give the same fills.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use bsc_bot::backtest::data::{ReadOptions, TickReader};
use bsc_bot::backtest::{run_backtest, BacktestSpec, ParamsSource};
use bsc_bot::engine::live::{run_live, LiveInputs, LoopExit};
use bsc_bot::engine::{Engine, MemoryRecorder};
use bsc_bot::model::MarketTick;
use bsc_bot::risk::{RiskGuard, RiskLimits};
use bsc_bot::strategy::{StrategyParams, StrategyStatus};
use bsc_bot::venue::{SimVenue, SimVenueConfig};
use tokio::sync::{mpsc, watch};

const PARAMS: &str = r#"{"lower_price":"28100","upper_price":"28200","grid_count":21,"base_order_size":"100","fee_bps":0,"stop_loss_price":"28000"}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paper_loop_and_backtest_fill_identically() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/BTCUSDT-trades-2023-04-05.from-ws.csv");
    assert!(
        data.exists(),
        "real market data missing: {}",
        data.display()
    );
    let params = StrategyParams::parse("grid", &serde_json::from_str(PARAMS).unwrap()).unwrap();

    // Backtest path: the real runner, fills written as CSV.
    let out = tempfile::tempdir().unwrap();
    let spec = BacktestSpec {
        symbol: "BTC/USDT".parse().unwrap(),
        params: ParamsSource::Fixed(params.clone()),
        data_label: data.display().to_string(),
        files: vec![data.clone()],
        read: ReadOptions::default(),
        slippage_bps: 0,
        delays: Default::default(),
        amm: None,
        v3: None,
    };
    let outcome = run_backtest(&spec, Some(out.path()), &mut |_, _, _| {}).unwrap();
    let csv = std::fs::read_to_string(outcome.fills_csv.unwrap()).unwrap();
    // side, type, cell, price, base, quote, fee
    let backtest_fills: Vec<String> = csv
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            [f[2], f[3], f[4], f[5], f[6], f[7], f[8]].join(",")
        })
        .collect();
    assert!(
        backtest_fills.len() >= 10,
        "scenario should trade: {}",
        backtest_fills.len()
    );

    // Paper path: the daemon's loop on the wall clock; a feed task sends the same prices.
    let mut ticks = Vec::new();
    let mut reader = TickReader::new(ReadOptions::default());
    reader
        .read_file(&data, &mut |ts, p| ticks.push((ts, p)), &mut |_| {})
        .unwrap();
    let mut engine = Engine::new(
        1,
        SimVenue::new(SimVenueConfig::default()),
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
    let (_fills_tx, fills) = mpsc::channel(16);
    let (market_tx, market) = mpsc::channel(1024);
    let probe = market_tx.clone();
    let feed = tokio::spawn(async move {
        for (i, (ts, price)) in ticks.into_iter().enumerate() {
            let received = bsc_bot::clock::wall_clock_ms() * 1000;
            market_tx
                .send(MarketTick {
                    symbol: 0,
                    exchange_ts_us: ts,
                    received_ts_us: received,
                    price,
                    received_at: None,
                })
                .await
                .unwrap();
            if i % 500 == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    });
    let inputs = LiveInputs {
        shutdown,
        control,
        reports: fills,
        market,
        mark_every: Duration::from_millis(50),
    };
    let runner = tokio::spawn(async move {
        let exit = run_live(&mut engine, inputs).await;
        (exit, engine)
    });
    feed.await.unwrap();
    // Stop once the loop has taken every tick the feed sent (it handles one before it looks at
    // shutdown again): a loaded machine's loop may lag the feed by more than a fixed wait.
    drained(&probe).await;
    shutdown_tx.send(true).unwrap();
    let (exit, engine) = runner.await.unwrap();
    assert_eq!(exit, LoopExit::Shutdown);
    assert_eq!(engine.ticks(), 3_144);
    let paper_fills: Vec<String> = engine
        .recorder()
        .fills
        .iter()
        .map(|f| {
            let cell = bsc_bot::strategy::grid::GridTag::cell(f.tag)
                .map(|c| c.to_string())
                .unwrap_or_default();
            [
                f.side.as_str().to_string(),
                if f.market {
                    "market".into()
                } else {
                    "limit".into()
                },
                cell,
                f.price.normalize().to_string(),
                f.base.normalize().to_string(),
                f.quote.normalize().to_string(),
                f.fee.normalize().to_string(),
            ]
            .join(",")
        })
        .collect();
    assert_eq!(paper_fills, backtest_fills);
    assert_eq!(
        engine.ledger(0).realized_pnl.normalize().to_string(),
        outcome.result.realized_pnl.to_string()
    );
}

/// Every tick sent on the channel was taken by the engine loop (up to 30 s).
async fn drained<T>(probe: &mpsc::Sender<T>) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while probe.capacity() < probe.max_capacity() {
        assert!(
            std::time::Instant::now() < deadline,
            "the engine loop did not take the ticks"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
