//! Write a deterministic synthetic trades CSV for benchmarks:
//! `cargo run --release --example gen_trades -- 10000000 /tmp/trades-10m.csv`, or in Binance's
//! aggTrades layout: `cargo run --release --example gen_trades -- 10000000 /tmp/agg-10m.csv agg`

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let n: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let path = args.next().unwrap_or_else(|| format!("trades-{n}.csv"));
    let path = std::path::Path::new(&path);
    if args.next().as_deref() == Some("agg") {
        bsc_bot::backtest::synthetic::write_agg_trades(path, n, 42)?;
        eprintln!("wrote {n} aggTrades rows to {}", path.display());
    } else {
        bsc_bot::backtest::synthetic::write_trades(path, n, 42)?;
        eprintln!("wrote {n} trades to {}", path.display());
    }
    Ok(())
}
