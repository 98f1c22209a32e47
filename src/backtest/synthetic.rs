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

/// `n` one-minute klines of the same walk (ten steps a bar), in Binance's 12-column layout
/// (`cols = 12`, as `data download` fetches) or the 6-column OHLCV one (`cols = 6`).
pub fn write_klines(path: &Path, n: u64, seed: u64, cols: usize) -> std::io::Result<()> {
    let file = std::fs::File::create(path)?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut walk = Walk::new(seed);
    let t0: u64 = 1_735_689_600_000;
    let cents = |c: i64| format!("{}.{:02}", c / 100, c % 100);
    for i in 0..n {
        let open = walk.cents;
        let (mut high, mut low) = (open, open);
        let mut volume = 0u64;
        for _ in 0..10 {
            let r = walk.step();
            high = high.max(walk.cents);
            low = low.min(walk.cents);
            volume += (r >> 20) % 100_000 + 1;
        }
        let open_time = t0 + i * 60_000;
        if cols == 6 {
            writeln!(
                w,
                "{open_time},{},{},{},{},{}.{:08}",
                cents(open),
                cents(high),
                cents(low),
                cents(walk.cents),
                volume / 100_000_000,
                volume % 100_000_000
            )?;
        } else {
            writeln!(
                w,
                "{open_time},{},{},{},{},{}.{:08},{},{}.{:08},{},0.{:08},0.{:08},0",
                cents(open),
                cents(high),
                cents(low),
                cents(walk.cents),
                volume / 100_000_000,
                volume % 100_000_000,
                open_time + 59_999,
                volume * 1000 / 100_000_000,
                volume % 100_000_000,
                volume % 97 + 10,
                volume / 2 % 100_000_000,
                volume / 3 % 100_000_000,
            )?;
        }
    }
    w.flush()
}

/// The seeded, mean-reverting random walk every layout is drawn from.
struct Walk {
    state: u64,
    cents: i64,
}

impl Walk {
    fn new(seed: u64) -> Self {
        Walk {
            state: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            cents: 10_000_000,
        }
    }

    /// One step; returns the draw (its other bits feed quantities and flags).
    fn step(&mut self) -> u64 {
        // xorshift64*
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        let r = self.state.wrapping_mul(0x2545_F491_4F6C_DD1D);
        // Steps of 0.01..5.00, mean-reverting around 100,000: BTC-like ticks that cross
        // 1 % grid cells a few times an hour of data.
        let step = (r % 500 + 1) as i64;
        let bias = ((self.cents - 10_000_000) / 20_000).clamp(-40, 40) as u64;
        let up = (r >> 12) % 1000 < 500 - bias;
        self.cents += if up { step } else { -step };
        r
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Layout {
    Trades,
    AggTrades,
}

fn write(path: &Path, n: u64, seed: u64, layout: Layout) -> std::io::Result<()> {
    let file = std::fs::File::create(path)?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut walk = Walk::new(seed);
    let t0: u64 = 1_735_689_600_000;
    for i in 0..n {
        let r = walk.step();
        let cents = walk.cents;
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
