//! Live benchmark: tick → signed swap broadcast, on a local anvil chain with the real Uniswap V2
//! contracts. Each round a fresh grid starts on the pool's price with one cell above it, so the
//! tick makes exactly one market buy; the time runs from handing the tick to the engine until the
//! engine hears the swap's transaction hash (risk check, DEX venue, executor, allowance and nonce,
//! gas price, simulation, signing, the write-ahead commit to SQLite, `eth_sendRawTransaction`).
//! Blocks are mined by the bench after each broadcast, outside the timing.
//!
//! Run: `scripts/test.sh` once (it installs anvil and the artifacts), then
//! `ANVIL_BIN=… UNISWAP_ARTIFACTS=… cargo bench --bench swap_latency` (paths as `scripts/test.sh`
//! prints them; `BENCH_ROUNDS=N` changes the 200 rounds, `BENCH_SIMULATE=1` turns on the opt-in
//! `eth_call` simulation before each swap, `chain.simulate_swaps = true`). Without anvil it says so and exits.

#![allow(clippy::unwrap_used)]

#[path = "../tests/common/chain.rs"]
mod testchain;

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy::providers::Provider;
use bsc_bot::amm::reserves_price;
use bsc_bot::chain::Swapper;
use bsc_bot::config::DatabaseConfig;
use bsc_bot::engine::VenueReport;
use bsc_bot::engine::{Engine, Event, MemoryRecorder};
use bsc_bot::model::PriceKey;
use bsc_bot::risk::{RiskGuard, RiskLimits};
use bsc_bot::store::Store;
use bsc_bot::strategy::{StrategyParams, StrategyStatus};
use bsc_bot::venue::dex::dex_venue;
use rust_decimal::Decimal;
use testchain::{Market, TestChain};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let ix = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[ix.min(sorted.len() - 1)]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(200);
    let Some(chain) = TestChain::start().await else {
        eprintln!("swap_latency: anvil or the Uniswap artifacts are missing (run scripts/test.sh)");
        return;
    };
    let u = chain.deploy_uniswap(1_000, 100_000_000).await;
    let Market {
        mut chain_cfg,
        dex,
        client,
        pool,
    } = chain.market(&u, 30).await;
    chain_cfg.swap_deadline_secs = 600;
    // BENCH_SIMULATE=1: an `eth_call` before each swap (`chain.simulate_swaps = true`).
    let simulate = std::env::var("BENCH_SIMULATE").is_ok_and(|v| v == "1");
    chain_cfg.simulate_swaps = simulate;
    let bot = chain.bot_wallet(&u, 100 * (rounds as u64 + 10)).await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.sqlite").display());
    let store = Store::open(&url, &DatabaseConfig::default()).await.unwrap();
    let swapper = Arc::new(Swapper::new(client.clone(), bot, store, chain_cfg, dex).unwrap());
    let (reports_tx, mut reports) = tokio::sync::mpsc::channel(1024);
    let (venue, executor) = dex_venue(
        swapper,
        HashMap::from([(0, pool.clone())]),
        30,
        reports_tx,
        Box::new(|o| (format!("bench-{}", o.order_id), 1)),
    );
    tokio::spawn(executor.run());
    let mut engine = Engine::new(
        1,
        venue,
        RiskGuard::new(RiskLimits::default()),
        MemoryRecorder::default(),
    );
    let reader = chain.reader();
    let mut samples = Vec::with_capacity(rounds);
    let mut ts = 0i64;
    // Two warm-up rounds (the first approves the router) are not counted.
    for round in 0..rounds + 2 {
        let (b, q) = client.reserves(&pool).await.unwrap();
        let p = reserves_price(b, q).unwrap().round_dp(2);
        let lower = (p * Decimal::from_str("0.99").unwrap()).round_dp(2);
        let upper = (p * Decimal::from_str("1.03").unwrap()).round_dp(2);
        let grid = format!(
            r#"{{"lower_price":"{lower}","upper_price":"{upper}","grid_count":3,"base_order_size":"100","fee_bps":30}}"#
        );
        let params = StrategyParams::parse("grid", &serde_json::from_str(&grid).unwrap()).unwrap();
        let ix = engine.add_strategy(
            params.build(),
            0,
            params.fee_bps(),
            StrategyStatus::Active,
            None,
        );
        if round == 1 {
            // Mine by hand from now on, outside the timing.
            let _: serde_json::Value = reader
                .raw_request("evm_setAutomine".into(), (false,))
                .await
                .unwrap();
        }
        ts += 1_000_000;
        let start = Instant::now();
        engine.process(Event::Tick {
            symbol: 0,
            ts_us: ts,
            price: PriceKey::floor_of(p),
        });
        let accepted = loop {
            let r = tokio::time::timeout(Duration::from_secs(30), reports.recv())
                .await
                .expect("no answer from the venue")
                .unwrap();
            let is_accepted = matches!(r, VenueReport::Accepted { .. });
            let failed = matches!(r, VenueReport::Failed { .. });
            engine.process(Event::Venue(r));
            if is_accepted {
                break start.elapsed();
            }
            assert!(!failed, "round {round}: the swap failed");
        };
        if round >= 2 {
            samples.push(accepted);
        }
        if round >= 1 {
            let _: serde_json::Value = reader.raw_request("evm_mine".into(), ()).await.unwrap();
        }
        while engine.in_flight_count() > 0 {
            let r = tokio::time::timeout(Duration::from_secs(30), reports.recv())
                .await
                .expect("no fill")
                .unwrap();
            engine.process(Event::Venue(r));
        }
        assert_eq!(engine.ledger(ix).fills, 1, "round {round}: one start buy");
    }
    samples.sort();
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    println!(
        "tick -> signed swap broadcast (engine hears the tx hash), {} rounds on local anvil, \
         simulate_swaps = {}:",
        samples.len(),
        simulate
    );
    println!(
        "  p50 {:.3} ms  p90 {:.3} ms  p99 {:.3} ms  max {:.3} ms  mean {:.3} ms",
        percentile(&samples, 0.50).as_secs_f64() * 1e3,
        percentile(&samples, 0.90).as_secs_f64() * 1e3,
        percentile(&samples, 0.99).as_secs_f64() * 1e3,
        samples[samples.len() - 1].as_secs_f64() * 1e3,
        mean.as_secs_f64() * 1e3,
    );
}
