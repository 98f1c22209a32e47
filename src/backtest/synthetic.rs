//! Deterministic synthetic trade files for benchmarks and load tests (never for strategy
//! research: real history comes from `bsc-bot data download`).

use std::io::Write;
use std::path::Path;

/// Write `n` trades in Binance's trades CSV layout: a seeded random walk around 100,000.00
/// in steps of 0.01–5.00, ten trades per millisecond. The same `(n, seed)` gives the same bytes.
pub fn write_trades(path: &Path, n: u64, seed: u64) -> std::io::Result<()> {
    write(path, n, seed, Layout::Trades)
}

/// The same walk in Binance's aggTrades layout (`agg_id,price,qty,first_id,last_id,time,
/// is_buyer_maker,is_best_match`, ~84 bytes a row), as `data download --kind aggTrades` fetches.
pub fn write_agg_trades(path: &Path, n: u64, seed: u64) -> std::io::Result<()> {
    write(path, n, seed, Layout::AggTrades)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Layout {
    Trades,
    AggTrades,
}

fn write(path: &Path, n: u64, seed: u64, layout: Layout) -> std::io::Result<()> {
    let file = std::fs::File::create(path)?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut cents: i64 = 10_000_000;
    let t0: u64 = 1_735_689_600_000;
    for i in 0..n {
        // xorshift64*
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let r = state.wrapping_mul(0x2545_F491_4F6C_DD1D);
        // Steps of 0.01..5.00, mean-reverting around 100,000: BTC-like ticks that cross
        // 1 % grid cells a few times an hour of data.
        let step = (r % 500 + 1) as i64;
        let bias = ((cents - 10_000_000) / 20_000).clamp(-40, 40) as u64;
        let up = (r >> 12) % 1000 < 500 - bias;
        cents += if up { step } else { -step };
        let qty = (r >> 20) % 100_000 + 1;
        if layout == Layout::AggTrades {
            let first = 4_800_000_000 + 3 * i;
            writeln!(
                w,
                "{},{}.{:02},0.{:08},{},{},{},{},true",
                3_312_960_000 + i,
                cents / 100,
                cents % 100,
                qty,
                first,
                first + (r >> 40) % 3,
                t0 + i / 10,
                if r & 1 == 0 { "true" } else { "false" }
            )?;
            continue;
        }
        writeln!(
            w,
            "{},{}.{:02},0.{:08},{}.{:02},{},{},true",
            1_000_000 + i,
            cents / 100,
            cents % 100,
            qty,
            cents * qty as i64 / 100_000_000,
            (cents * qty as i64 / 1_000_000) % 100,
            t0 + i / 10,
            if r & 1 == 0 { "true" } else { "false" }
        )?;
    }
    w.flush()
}
