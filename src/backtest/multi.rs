//! One pass over the data for any number of grids: the CSV is parsed once into chunks of ticks,
//! and every grid's engine runs over each chunk on the worker threads. A single backtest goes
//! through here too, its one grid fed each price as it is parsed (no chunks, no threads); the
//! engine's batch path (`on_tick_slab`) is held equal to that by a proptest, and the sweep tests
//! compare rows with separate runs.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;

use rust_decimal::{Decimal, RoundingStrategy};

use super::chart::{render_svg, ChartText};
use super::data::{DataSummary, TickReader};
use super::report::BacktestRecorder;
use super::spec::{
    data_warnings, pct, quick_grid_params, BacktestError, BacktestOutcome, BacktestResult,
    BacktestSpec, ParamsSource, SwapCosts, VenueSummary,
};
use crate::engine::{block_bounds, Engine, TickSlab};
use crate::model::PriceKey;
use crate::risk::{RiskGuard, RiskLimits};
use crate::strategy::{StrategyParams, StrategyStatus};
use crate::venue::{SimDelays, SimVenue, SimVenueConfig};

/// Ticks handed to the workers at a time: small enough to stay in cache while each of a
/// worker's grids runs over it.
const CHUNK_TICKS: usize = 8192;

/// One grid of a pass, and where its `fills.csv` and `equity.svg` go (none: figures only).
#[derive(Debug, Clone)]
pub struct GridJob {
    pub params: ParamsSource,
    pub out_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy)]
pub struct PassSpec {
    /// Worker threads (1: run in the reading thread).
    pub threads: usize,
    /// Walk-forward: ticks before this time (µs) go to each grid's first run, the rest to a
    /// second, fresh run of the same grid.
    pub split_us: Option<i64>,
    /// Keep no chart points (a sweep's grids: thousands of curves would not fit in memory).
    pub light: bool,
}

/// Per grid, in job order: the run over the whole window (or the part before the split) and,
/// with a split, the run over the rest.
pub struct PassOutcome {
    pub first: Vec<Result<BacktestOutcome, BacktestError>>,
    pub second: Option<Vec<Result<BacktestOutcome, BacktestError>>>,
    pub summary: DataSummary,
}

struct Chunk {
    ts: Vec<i64>,
    keys: Vec<PriceKey>,
    /// Each block's lowest and highest price: a grid skips a block that stays in its band.
    lows: Vec<PriceKey>,
    highs: Vec<PriceKey>,
    /// Index of the first tick at or after the split (the length without a split).
    split: usize,
}

/// A grid's engine while the data streams past it.
struct GridRun {
    engine: Engine<BacktestRecorder, SimVenue>,
    source: ParamsSource,
    params: Option<StrategyParams>,
    params_error: Option<String>,
    out_dir: Option<PathBuf>,
}

impl GridRun {
    fn new(
        spec: &BacktestSpec,
        source: ParamsSource,
        out_dir: Option<PathBuf>,
        light: bool,
    ) -> Result<Self, BacktestError> {
        let fills_file = match &out_dir {
            Some(d) => {
                let p = d.join("fills.csv");
                Some(
                    crate::private_files::create_new(&p)
                        .map_err(|e| BacktestError::Io(e.to_string()))?,
                )
            }
            None => None,
        };
        let venue = SimVenue::new(SimVenueConfig {
            slippage_bps: spec.slippage_bps,
            amm: spec.amm,
        })
        .with_delays(spec.delays)
        .with_v3(spec.v3.clone());
        let mut recorder = BacktestRecorder::new(fills_file);
        recorder.light = light;
        let mut engine = Engine::new(1, venue, RiskGuard::new(RiskLimits::default()), recorder);
        let mut params = None;
        if let ParamsSource::Fixed(p) = &source {
            engine.add_strategy(p.build(), 0, p.fee_bps(), StrategyStatus::Active, None);
            params = Some(p.clone());
        }
        Ok(GridRun {
            engine,
            source,
            params,
            params_error: None,
            out_dir,
        })
    }

    #[inline]
    fn on_tick(&mut self, ts: i64, key: PriceKey) {
        if self.params.is_none() {
            self.start_quick_grid(key);
        }
        self.engine.on_tick(0, ts, key);
    }

    fn on_ticks(&mut self, slab: &TickSlab<'_>, range: Range<usize>) {
        if self.params.is_none() {
            if let Some(first) = slab.keys.get(range.start) {
                self.start_quick_grid(*first);
            }
        }
        self.engine.on_tick_slab(0, slab, range);
    }

    /// `quick-grid`: the grid is centred on the window's first price.
    #[cold]
    fn start_quick_grid(&mut self, first: PriceKey) {
        if self.params_error.is_some() {
            return;
        }
        match first
            .to_decimal()
            .ok_or_else(|| "price out of range".to_string())
            .and_then(|p0| quick_grid_params(p0, &self.source))
        {
            Ok(p) => {
                self.engine
                    .add_strategy(p.build(), 0, p.fee_bps(), StrategyStatus::Active, None);
                self.params = Some(p);
            }
            Err(e) => self.params_error = Some(e),
        }
    }

    fn finish(
        mut self,
        spec: &BacktestSpec,
        summary: &DataSummary,
        range: (PriceKey, PriceKey),
        window: &str,
    ) -> Result<BacktestOutcome, BacktestError> {
        if let Some(e) = self.params_error {
            return Err(BacktestError::Params(e));
        }
        let Some(params) = self.params else {
            return Err(BacktestError::Empty(window.to_string()));
        };
        if self.engine.ticks() == 0 {
            return Err(BacktestError::Empty(window.to_string()));
        }
        self.engine.finish();
        let engine = self.engine;
        let ticks = engine.ticks();
        let ledger = engine.ledger(0).clone();
        let in_flight_at_end = engine.in_flight_count();
        let final_status = engine.status(0);
        let final_price = engine.last_price(0).unwrap_or_default();
        let mut recorder = engine.into_recorder();
        recorder.flush().map_err(BacktestError::Io)?;
        let final_equity = ledger.equity(final_price);
        let initial = ledger.initial_quote;
        let result = BacktestResult {
            kind: params.type_name().to_string(),
            symbol: spec.symbol.to_string(),
            params: params.params_json(),
            ticks,
            fills: ledger.fills,
            round_trips: ledger.round_trips,
            realized_pnl: ledger.realized_pnl.normalize(),
            unrealized_pnl: ledger.unrealized_pnl(final_price).normalize(),
            total_pnl: ledger.total_pnl(final_price).normalize(),
            gas: ledger.gas.normalize(),
            total_pnl_net_of_gas: ledger.total_pnl_net_of_gas(final_price).normalize(),
            fees: ledger.fees.normalize(),
            initial_quote: initial.normalize(),
            final_base: ledger.base.normalize(),
            final_quote: ledger.quote.normalize(),
            final_price: final_price.normalize(),
            final_equity: final_equity.normalize(),
            total_return_pct: if initial > Decimal::ZERO {
                pct((final_equity - initial) / initial).normalize()
            } else {
                Decimal::ZERO
            },
            max_drawdown_pct: recorder.max_drawdown_pct().normalize(),
            sharpe: format!("{:.6}", recorder.sharpe()),
            win_rate: if ledger.round_trips > 0 {
                (Decimal::from(ledger.winning_round_trips) / Decimal::from(ledger.round_trips))
                    .round_dp_with_strategy(8, RoundingStrategy::MidpointNearestEven)
                    .normalize()
            } else {
                Decimal::ZERO
            },
            final_status,
            data: summary.clone(),
            warnings: {
                let mut w = params.warnings();
                w.extend(data_warnings(spec, &params, range.0, range.1));
                if let Some(pool) = &spec.amm {
                    w.extend(params.amm_warnings(pool));
                }
                w
            },
            venue: (spec.delays != SimDelays::default()).then_some(VenueSummary {
                latency_ms: spec.delays.latency_us / 1000,
                fail_ppm: spec.delays.fail_ppm,
                reject_ppm: spec.delays.reject_ppm,
                seed: spec.delays.seed,
                failed_retryable: recorder.failed_retryable,
                failed_permanent: recorder.failed_permanent,
                refused: recorder.refused,
                in_flight_at_end,
            }),
            swap_costs: spec
                .amm
                .map(|pool| pool.gas_quote)
                .or(spec.v3.as_ref().map(|m| m.gas_quote))
                .map(|gas_per_swap| SwapCosts {
                    pool_fees: ledger.fees.normalize(),
                    price_impact: recorder.impact.round_dp(8).normalize(),
                    gas: recorder.gas.normalize(),
                    gas_per_swap: gas_per_swap.normalize(),
                }),
        };
        let chart = match &self.out_dir {
            Some(dir) => Some(write_chart(dir, &result, &recorder)?),
            None => None,
        };
        Ok(BacktestOutcome {
            fills_csv: self.out_dir.map(|d| d.join("fills.csv")),
            result,
            chart,
        })
    }
}

fn write_chart(
    dir: &Path,
    result: &BacktestResult,
    recorder: &BacktestRecorder,
) -> Result<PathBuf, BacktestError> {
    let path = dir.join("equity.svg");
    let title = format!("{} {} backtest", result.symbol, result.kind);
    let r2 = |d: Decimal| d.round_dp(2);
    let subtitle = format!(
        "return {}%  ·  max drawdown {}%  ·  {} round trips  ·  realized {}  ·  fees {}  ·  {} ticks",
        r2(result.total_return_pct),
        r2(result.max_drawdown_pct),
        result.round_trips,
        r2(result.realized_pnl),
        r2(result.fees),
        result.ticks
    );
    let svg = render_svg(
        &recorder.curve,
        &recorder.fill_marks,
        &ChartText {
            title: &title,
            subtitle: &subtitle,
        },
    );
    crate::private_files::replace(&path, svg.as_bytes())
        .map_err(|e| BacktestError::Io(e.to_string()))?;
    Ok(path)
}

/// A grid's run before the split and, with a split, its run after it.
type Pair = (usize, GridRun, Option<GridRun>);

fn run_chunk(runs: &mut [Pair], chunk: &Chunk) {
    let slab = TickSlab {
        ts: &chunk.ts,
        keys: &chunk.keys,
        lows: &chunk.lows,
        highs: &chunk.highs,
    };
    let (s, n) = (chunk.split, chunk.ts.len());
    for (_, first, second) in runs.iter_mut() {
        if s > 0 {
            first.on_ticks(&slab, 0..s);
        }
        if let Some(second) = second {
            if s < n {
                second.on_ticks(&slab, s..n);
            }
        }
    }
}

fn worker(mut runs: Vec<Pair>, rx: Receiver<Arc<Chunk>>) -> Vec<Pair> {
    while let Ok(chunk) = rx.recv() {
        run_chunk(&mut runs, &chunk);
    }
    runs
}

/// Read the data once and run every job over it. `progress(bytes_done, bytes_total, ticks)`
/// is called about once per MiB read.
pub fn run_pass(
    spec: &BacktestSpec,
    jobs: Vec<GridJob>,
    pass: &PassSpec,
    progress: &mut dyn FnMut(u64, u64, u64),
) -> Result<PassOutcome, BacktestError> {
    let mut runs: Vec<Pair> = Vec::with_capacity(jobs.len());
    for (ix, job) in jobs.into_iter().enumerate() {
        let second = match pass.split_us {
            Some(_) => Some(GridRun::new(spec, job.params.clone(), None, pass.light)?),
            None => None,
        };
        let first = GridRun::new(spec, job.params, job.out_dir, pass.light)?;
        runs.push((ix, first, second));
    }
    let threads = pass.threads.clamp(1, runs.len().max(1));
    let (summary, range, runs) = if let ([(_, one, None)], 1) = (&mut runs[..], threads) {
        let (summary, range) = read_direct(spec, one, progress)?;
        (summary, range, runs)
    } else if threads == 1 {
        let mut runs = runs;
        let (summary, range) = read_chunks(spec, pass.split_us, progress, &mut |c| {
            run_chunk(&mut runs, &c)
        })?;
        (summary, range, runs)
    } else {
        // Round-robin, so grids of every size are spread over the workers.
        let mut shares: Vec<Vec<Pair>> = (0..threads).map(|_| Vec::new()).collect();
        for (n, pair) in runs.into_iter().enumerate() {
            shares[n % threads].push(pair);
        }
        std::thread::scope(|scope| {
            let mut senders: Vec<SyncSender<Arc<Chunk>>> = Vec::new();
            let mut handles = Vec::new();
            for share in shares {
                let (tx, rx) = sync_channel::<Arc<Chunk>>(4);
                senders.push(tx);
                handles.push(scope.spawn(move || worker(share, rx)));
            }
            let read = read_chunks(spec, pass.split_us, progress, &mut |c| {
                let c = Arc::new(c);
                for tx in &senders {
                    // A worker that stopped has panicked; its join below reports it.
                    let _ = tx.send(Arc::clone(&c));
                }
            });
            drop(senders);
            let mut all = Vec::new();
            for h in handles {
                match h.join() {
                    Ok(share) => all.extend(share),
                    Err(_) => return Err(BacktestError::Io("a backtest worker failed".into())),
                }
            }
            all.sort_by_key(|p| p.0);
            let (summary, range) = read?;
            Ok((summary, range, all))
        })?
    };
    let window = match (spec.read.from_us, spec.read.to_us, pass.split_us) {
        (None, None, None) => String::new(),
        (_, _, None) => " within --from/--to".to_string(),
        (_, _, Some(_)) => " on one side of the walk-forward split".to_string(),
    };
    let mut first = Vec::with_capacity(runs.len());
    let mut second = pass.split_us.map(|_| Vec::with_capacity(runs.len()));
    for (_, a, b) in runs {
        first.push(a.finish(spec, &summary, range, &window));
        if let (Some(out), Some(b)) = (second.as_mut(), b) {
            out.push(b.finish(spec, &summary, range, &window));
        }
    }
    let ticks = first
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|o| o.result.ticks)
        .max()
        .unwrap_or(0);
    let total = total_bytes(spec);
    progress(total, total, ticks);
    Ok(PassOutcome {
        first,
        second,
        summary,
    })
}

fn total_bytes(spec: &BacktestSpec) -> u64 {
    spec.files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum()
}

/// Read every file of the window in order, each price to `on_tick` (generic, so the hot loop
/// inlines it); returns the data summary.
fn read_all<F: FnMut(i64, PriceKey)>(
    spec: &BacktestSpec,
    progress: &mut dyn FnMut(u64, u64, u64),
    on_tick: &mut F,
) -> Result<DataSummary, BacktestError> {
    let total = total_bytes(spec);
    let mut reader = TickReader::new(spec.read);
    let mut done_before = 0u64;
    for file in &spec.files {
        let file_len = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
        // A file that ends before the window starts has nothing to give: skip it unread.
        if let Some(from) = spec.read.from_us {
            if super::data::last_timestamp_us(file).is_some_and(|last| last < from) {
                done_before += file_len;
                continue;
            }
        }
        let mut on_progress = |done: u64| progress(done_before + done, total, 0);
        reader.read_file(file, on_tick, &mut on_progress)?;
        done_before += file_len;
    }
    Ok(reader.summary)
}

/// One grid, no split, no workers: every price straight to its engine's `on_tick`, with no
/// chunk in between (the fastest single backtest; a proptest holds `on_tick_slab`, which
/// sweeps use, equal to it).
fn read_direct(
    spec: &BacktestSpec,
    run: &mut GridRun,
    progress: &mut dyn FnMut(u64, u64, u64),
) -> Result<(DataSummary, (PriceKey, PriceKey)), BacktestError> {
    let (mut lowest, mut highest) = (PriceKey(i128::MAX), PriceKey(i128::MIN));
    let summary = read_all(spec, progress, &mut |ts: i64, key: PriceKey| {
        lowest = lowest.min(key);
        highest = highest.max(key);
        run.on_tick(ts, key);
    })?;
    Ok((summary, (lowest, highest)))
}

/// Parse the files into chunks of ticks; returns the data summary and the lowest and highest
/// price seen.
fn read_chunks(
    spec: &BacktestSpec,
    split_us: Option<i64>,
    progress: &mut dyn FnMut(u64, u64, u64),
    emit: &mut dyn FnMut(Chunk),
) -> Result<(DataSummary, (PriceKey, PriceKey)), BacktestError> {
    let (mut lowest, mut highest) = (PriceKey(i128::MAX), PriceKey(i128::MIN));
    let split_at = split_us.unwrap_or(i64::MAX);
    // Filled by index, not pushed: the per-tick work is two stores and a count. Bounds, the
    // lowest and highest price and the split are worked out once a chunk is full.
    let new_chunk = || Chunk {
        ts: vec![0; CHUNK_TICKS],
        keys: vec![PriceKey(0); CHUNK_TICKS],
        lows: Vec::new(),
        highs: Vec::new(),
        split: 0,
    };
    let mut seal = |mut c: Chunk, n: usize| {
        c.ts.truncate(n);
        c.keys.truncate(n);
        // Time never goes back (the reader refuses it), so the split is one index.
        c.split = c.ts.partition_point(|&t| t < split_at);
        block_bounds(&c.keys, &mut c.lows, &mut c.highs);
        lowest = c.lows.iter().copied().fold(lowest, PriceKey::min);
        highest = c.highs.iter().copied().fold(highest, PriceKey::max);
        emit(c);
    };
    let mut chunk = new_chunk();
    let mut n = 0usize;
    let summary = read_all(spec, progress, &mut |ts: i64, key: PriceKey| {
        chunk.ts[n] = ts;
        chunk.keys[n] = key;
        n += 1;
        if n == CHUNK_TICKS {
            seal(std::mem::replace(&mut chunk, new_chunk()), n);
            n = 0;
        }
    })?;
    if n > 0 {
        seal(chunk, n);
    }
    Ok((summary, (lowest, highest)))
}
