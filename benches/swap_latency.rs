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
//! `eth_call` simulation before each swap, `chain.simulate_swaps = true`; `BENCH_POOL=v3:500` swaps
//! on a PancakeSwap V3 5 bps pool through `exactInputSingle` instead of the V2 pair, and
//! `BENCH_POOL=best` quotes the V2 pair and the V3 pool from their followed states and sends each
//! swap to the better). Without anvil it says so and exits.

#![allow(clippy::unwrap_used)]

#[path = "../tests/common/chain.rs"]
mod testchain;
#[path = "../tests/common/chain_v3.rs"]
mod testchain_v3;

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
        mut dex,
        client,
        pool: v2_pool,
    } = chain.market(&u, 30).await;
    // BENCH_POOL: `v2` (default), `v3:500`, or `best` (V2 and V3 500, best execution).
    let mode = std::env::var("BENCH_POOL").unwrap_or_else(|_| "v2".into());
    let (pool, routing) = if mode == "v2" {
        (v2_pool, None)
    } else {
        let v3 = chain.deploy_pancake_v3(&u).await;
        let (b, q) = client.reserves(&v2_pool).await.unwrap();
        let deep = testchain_v3::Range {
            lower: -3000,
            upper: 3000,
            tokens: 100_000_000,
        };
        chain
            .v3_pool(&v3, 500, reserves_price(b, q).unwrap(), &[deep])
            .await;
        dex.v3_factory = v3.factory.to_string();
        dex.v3_router = v3.router.to_string();
        let v3_pool = client
            .v3_pool(v3.factory, v2_pool.base.clone(), v2_pool.quote.clone(), 500)
            .await
            .unwrap();
        let routing = (mode == "best").then(|| {
            let routes: bsc_bot::chain::pool_state::SharedRoutes =
                Arc::new(std::sync::RwLock::new(HashMap::from([(
                    0,
                    vec![v2_pool.clone(), v3_pool.clone()],
                )])));
            bsc_bot::venue::dex::Routing {
                routes,
                ..Default::default()
            }
        });
        (v3_pool, routing)
    };
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
    match &routing {
        Some(r) => {
            // The pools' states followed at every block, off the swap path.
            let (_stop, shutdown) = tokio::sync::watch::channel(false);
            std::mem::forget(_stop);
            tokio::spawn(bsc_bot::chain::pool_state::follow_pool_states(
                client.clone(),
                r.routes.clone(),
                r.states.clone(),
                30,
                Duration::from_millis(20),
                shutdown,
            ));
            tokio::spawn(executor.with_routing(r.clone()).run());
        }
        None => {
            tokio::spawn(executor.run());
        }
    }
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
        if let Some(r) = &routing {
            // The follower reads at each new block; this round's states are read before the tick.
            let pools = r
                .routes
                .read()
                .unwrap()
                .get(&0)
                .cloned()
                .unwrap_or_default();
            r.states.refresh(&client, &pools, 30).await;
        }
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
         pool {mode}, simulate_swaps = {}:",
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
