//! Backtest throughput: engine only (ticks already in memory) and end to end (CSV file → result),
//! for 1M and 10M deterministic synthetic trade ticks; per Binance layout (trades, aggTrades,
//! 12- and 6-column klines, 1 M rows each); and a 100-grid sweep in one pass.
//! Run: `cargo bench --bench backtest`.

use std::path::PathBuf;

use bsc_bot::backtest::data::{ReadOptions, TickReader};
use bsc_bot::backtest::{run_backtest, BacktestSpec, ParamsSource};
use bsc_bot::engine::{Engine, MemoryRecorder};
use bsc_bot::model::PriceKey;
use bsc_bot::risk::{RiskGuard, RiskLimits};
use bsc_bot::strategy::{StrategyParams, StrategyStatus};
use bsc_bot::venue::{SimVenue, SimVenueConfig};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

/// A 100-level grid over ±2 % of the synthetic walk's centre: it trades all the time.
const PARAMS: &str =
    r#"{"lower_price":"98000","upper_price":"102000","grid_count":101,"base_order_size":"100"}"#;

fn data_file(n: u64) -> PathBuf {
    let dir = std::env::var_os("BSC_BOT_BENCH_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("bsc-bot-bench"));
    std::fs::create_dir_all(&dir).expect("bench data dir");
    let path = dir.join(format!("trades-{n}.csv"));
    if !path.exists() {
        bsc_bot::backtest::synthetic::write_trades(&path, n, 42).expect("write synthetic trades");
    }
    path
}

fn params() -> StrategyParams {
    StrategyParams::parse("grid", &serde_json::from_str(PARAMS).expect("json")).expect("params")
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("backtest");
    group.sample_size(10);
    for n in [1_000_000u64, 10_000_000] {
        let path = data_file(n);
        let mut ticks: Vec<(i64, PriceKey)> = Vec::with_capacity(n as usize);
        TickReader::new(ReadOptions::default())
            .read_file(&path, &mut |t, p| ticks.push((t, p)), &mut |_| {})
            .expect("read");
        group.throughput(Throughput::Elements(n));
        group.bench_with_input(BenchmarkId::new("engine_only", n), &ticks, |b, ticks| {
            b.iter(|| {
                let p = params();
                let mut e = Engine::new(
                    1,
                    SimVenue::new(SimVenueConfig::default()),
                    RiskGuard::new(RiskLimits::default()),
                    MemoryRecorder::default(),
                );
                e.add_strategy(p.build(), 0, p.fee_bps(), StrategyStatus::Active, None);
                for &(ts, price) in ticks {
                    e.on_tick(0, ts, price);
                }
                e.finish();
                e.ledger(0).fills
            })
        });
        drop(ticks);
        let spec = BacktestSpec {
            symbol: "BTC/USDT".parse().expect("symbol"),
            params: ParamsSource::Fixed(params()),
            data_label: path.display().to_string(),
            files: vec![path.clone()],
            read: ReadOptions::default(),
            slippage_bps: 0,
            delays: Default::default(),
            amm: None,
            v3: None,
        };
        let out = tempfile::tempdir().expect("tempdir");
        group.bench_with_input(BenchmarkId::new("end_to_end_csv", n), &spec, |b, spec| {
            b.iter(|| {
                run_backtest(spec, Some(out.path()), &mut |_, _, _| {})
                    .expect("backtest")
                    .result
                    .ticks
            })
        });
    }
    group.finish();
}

/// One synthetic file per Binance layout, 1 M rows each (klines: 4 M prices).
fn format_file(layout: &str) -> PathBuf {
    let dir = std::env::var_os("BSC_BOT_BENCH_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("bsc-bot-bench"));
    std::fs::create_dir_all(&dir).expect("bench data dir");
    let path = dir.join(format!("{layout}-1000000.csv"));
    if !path.exists() {
        use bsc_bot::backtest::synthetic as syn;
        match layout {
            "trades" => syn::write_trades(&path, 1_000_000, 42),
            "aggTrades" => syn::write_agg_trades(&path, 1_000_000, 42),
            "kline12" => syn::write_klines(&path, 1_000_000, 42, 12),
            _ => syn::write_klines(&path, 1_000_000, 42, 6),
        }
        .expect("write synthetic data");
    }
    path
}

fn spec_for(path: &std::path::Path) -> BacktestSpec {
    BacktestSpec {
        symbol: "BTC/USDT".parse().expect("symbol"),
        params: ParamsSource::Fixed(params()),
        data_label: path.display().to_string(),
        files: vec![path.to_path_buf()],
        read: ReadOptions::default(),
        slippage_bps: 0,
        delays: Default::default(),
        amm: None,
        v3: None,
    }
}

/// CSV file → result (no output files) per layout, 1 M rows: the parser's fast path for each.
fn per_format(c: &mut Criterion) {
    let mut group = c.benchmark_group("format");
    group.sample_size(10);
    for layout in ["trades", "aggTrades", "kline12", "kline6"] {
        let path = format_file(layout);
        let spec = spec_for(&path);
        let ticks = run_backtest(&spec, None, &mut |_, _, _| {})
            .expect("backtest")
            .result
            .ticks;
        group.throughput(Throughput::Elements(ticks));
        group.bench_with_input(BenchmarkId::new(layout, ticks), &spec, |b, spec| {
            b.iter(|| {
                run_backtest(spec, None, &mut |_, _, _| {})
                    .expect("backtest")
                    .result
                    .ticks
            })
        });
    }
    group.finish();
}

/// A sweep of 100 grids over 1 M aggTrades rows in one pass, on every core; throughput counts
/// grid-ticks (grids × ticks).
fn sweep(c: &mut Criterion) {
    use bsc_bot::backtest::sweep::{expand, Metric, Vary};
    use bsc_bot::backtest::sweep_run::run_sweep;
    let mut group = c.benchmark_group("sweep");
    group.sample_size(10);
    let path = format_file("aggTrades");
    let spec = spec_for(&path);
    let varies = [
        Vary::parse_flag("lower_price=95000:99500:500").expect("vary"),
        Vary::parse_flag("grid_count=5:50:5").expect("vary"),
    ];
    let base = serde_json::json!({"upper_price": "105000", "base_order_size": "100"});
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    group.throughput(Throughput::Elements(100 * 1_000_000));
    group.bench_function(BenchmarkId::new("grids_100_aggTrades", 1_000_000), |b| {
        b.iter(|| {
            let points = expand("grid", &base, &varies, 1000).expect("expand");
            run_sweep(
                &spec,
                &varies,
                points,
                Metric::Return,
                threads,
                None,
                &mut |_, _, _| {},
            )
            .expect("sweep")
            .rows
            .len()
        })
    });
    group.finish();
}

criterion_group!(benches, bench, per_format, sweep);
criterion_main!(benches);
