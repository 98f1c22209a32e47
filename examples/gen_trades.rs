//! Write a deterministic synthetic trades CSV for benchmarks:
//! `cargo run --release --example gen_trades -- 10000000 /tmp/trades-10m.csv`, or in Binance's
//! aggTrades layout: `cargo run --release --example gen_trades -- 10000000 /tmp/agg-10m.csv agg`,
//! or klines (`kline12`: Binance's 12 columns; `kline6`: OHLCV) with that word instead of `agg`.

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let n: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let path = args.next().unwrap_or_else(|| format!("trades-{n}.csv"));
    let path = std::path::Path::new(&path);
    let layout = args.next();
    if layout.as_deref() == Some("agg") {
        bsc_bot::backtest::synthetic::write_agg_trades(path, n, 42)?;
        eprintln!("wrote {n} aggTrades rows to {}", path.display());
    } else if let Some(cols @ ("kline12" | "kline6")) = layout.as_deref() {
        let cols = if cols == "kline12" { 12 } else { 6 };
        bsc_bot::backtest::synthetic::write_klines(path, n, 42, cols)?;
        eprintln!("wrote {n} {cols}-column klines to {}", path.display());
    } else {
        bsc_bot::backtest::synthetic::write_trades(path, n, 42)?;
        eprintln!("wrote {n} trades to {}", path.display());
    }
    Ok(())
}
