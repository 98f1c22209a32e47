//! Engine-thread cost of the daemon's ticks, without the socket and the scheduler: 100 paper
//! grids (the daemon benchmark's set-up), the daemon's recorder, the real capture's prices, four
//! passes. Prints the per-tick decision time (what the daemon's tick-to-decision histogram adds
//! on top of frame parsing) and the persistence hand-off measured apart.
//! Run: `cargo run --release --example tick_profile` (reads `../shared/data`).

use std::io::{BufRead, BufReader};
use std::sync::Arc;
use std::time::Instant;

use bsc_bot::daemon::recorder::{DaemonRecorder, PersistOp};
use bsc_bot::daemon::snapshot_ops;
use bsc_bot::engine::Engine;
use bsc_bot::metrics::Metrics;
use bsc_bot::model::PriceKey;
use bsc_bot::risk::{RiskGuard, RiskLimits};
use bsc_bot::strategy::{StrategyParams, StrategyStatus};
use bsc_bot::venue::routed::RoutedVenue;

fn quantile(sorted: &[u64], q: f64) -> u64 {
    sorted[((q * sorted.len() as f64) as usize).min(sorted.len() - 1)]
}

fn main() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data/BTCUSDT-trades-2023-04-05.from-ws.csv");
    let file = std::fs::File::open(&path).expect("real trades in ../shared/data");
    let prices: Vec<PriceKey> = BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| {
            l.split(',')
                .nth(1)
                .and_then(|p| PriceKey::parse_ascii(p.as_bytes()))
        })
        .collect();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let recorder = DaemonRecorder::new(tx, Arc::new(Metrics::default()));
    let risk = RiskGuard::new(RiskLimits::default());
    let mut engine = Engine::new(1, RoutedVenue::default(), risk, recorder);
    for i in 0..100usize {
        let lower = 28_100 + (i % 10) * 2;
        let json = format!(
            r#"{{"lower_price":"{lower}","upper_price":"{}","grid_count":21,"base_order_size":"10","fee_bps":0}}"#,
            lower + 60
        );
        let params = StrategyParams::parse("grid", &serde_json::from_str(&json).expect("json"))
            .expect("grid params");
        engine.recorder_mut().register_strategy(i as i64 + 1);
        engine.add_strategy(params.build(), 0, 0, StrategyStatus::Active, None);
    }
    let mut decide = Vec::new();
    let mut persist = Vec::new();
    let mut fills_per_tick = Vec::new();
    for pass in 0..4 {
        for (n, price) in prices.iter().enumerate() {
            let ts_us = (pass * prices.len() + n) as i64 * 100;
            let t = Instant::now();
            engine.on_tick(0, ts_us, *price);
            let decided = t.elapsed().as_nanos() as u64;
            if engine.recorder().has_pending() {
                let dirty = engine.recorder_mut().take_dirty();
                let snaps = snapshot_ops(&engine, dirty, ts_us / 1000);
                engine.recorder_mut().commit_event(snaps);
                persist.push(t.elapsed().as_nanos() as u64 - decided);
            }
            decide.push(decided);
            while let Ok(op) = rx.try_recv() {
                if let PersistOp::Atomic(ops) = op {
                    let fills = ops
                        .iter()
                        .filter(|o| matches!(o, PersistOp::Filled { .. }))
                        .count();
                    fills_per_tick.push(fills as u64);
                }
            }
        }
    }
    decide.sort_unstable();
    persist.sort_unstable();
    fills_per_tick.sort_unstable();
    let q = |v: &[u64], x| quantile(v, x);
    println!(
        "{} ticks: decision p50 {} ns, p99 {} ns, p99.9 {} ns, max {} ns (the first tick starts 100 grids)",
        decide.len(),
        q(&decide, 0.5),
        q(&decide, 0.99),
        q(&decide, 0.999),
        q(&decide, 1.0)
    );
    println!(
        "{} ticks that filled: fills per tick p50 {}, p99 {}; persistence hand-off p50 {} ns, p99 {} ns",
        fills_per_tick.len(),
        q(&fills_per_tick, 0.5),
        q(&fills_per_tick, 0.99),
        q(&persist, 0.5),
        q(&persist, 0.99)
    );
}
