//! Write a deterministic synthetic trades CSV for benchmarks:
//! `cargo run --release --example gen_trades -- 10000000 /tmp/trades-10m.csv`

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let n: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let path = args.next().unwrap_or_else(|| format!("trades-{n}.csv"));
    bsc_bot::backtest::synthetic::write_trades(std::path::Path::new(&path), n, 42)?;
    eprintln!("wrote {n} trades to {path}");
    Ok(())
}
