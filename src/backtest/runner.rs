//! Run one strategy over historical data through the real engine and simulated venue.

use std::path::{Path, PathBuf};

use rust_decimal::{Decimal, RoundingStrategy};
use serde::Serialize;

use super::chart::{render_svg, ChartText};
use super::data::{DataError, DataSummary, ReadOptions, TickReader};
use super::report::BacktestRecorder;
use crate::engine::{Engine, PriceKey};
use crate::market::Symbol;
use crate::risk::{RiskGuard, RiskLimits};
use crate::strategy::grid::{GridParams, OnExit, Spacing};
use crate::strategy::{StrategyParams, StrategyStatus};
use crate::venue::{SimDelays, SimVenue, SimVenueConfig};

/// Where the strategy's parameters come from.
#[derive(Debug, Clone)]
pub enum ParamsSource {
    Fixed(StrategyParams),
    /// `quick-grid`: a grid centred on the first price of the window, `± range_pct` percent.
    QuickGrid {
        grid_count: u32,
        range_pct: Decimal,
        base_order_size: Decimal,
        spacing: Spacing,
        fee_bps: u32,
    },
}

#[derive(Debug, Clone)]
pub struct BacktestSpec {
    pub symbol: Symbol,
    pub params: ParamsSource,
    /// How the operator named the data (a file or folder), for the record.
    pub data_label: String,
    /// The CSV files to read, in order.
    pub files: Vec<PathBuf>,
    pub read: ReadOptions,
    pub slippage_bps: u32,
    /// Venue latency and failures (default: every order answered at once).
    pub delays: SimDelays,
    /// `--fill-model amm`: fills as a constant-product pool gives them (default: at the limit).
    pub amm: Option<crate::venue::sim::AmmPool>,
}

#[derive(Debug, thiserror::Error)]
pub enum BacktestError {
    #[error("{0}")]
    Data(#[from] DataError),
    #[error("data: {0}")]
    Io(String),
    #[error("no prices in the data{0}")]
    Empty(String),
    #[error("{0}")]
    Params(String),
}

/// The figures of a run. Decimals serialise as strings; nothing here depends on the wall clock,
/// so the same data and parameters give byte-identical JSON.
#[derive(Debug, Clone, Serialize)]
pub struct BacktestResult {
    #[serde(rename = "type")]
    pub kind: String,
    pub symbol: String,
    pub params: serde_json::Value,
    pub ticks: u64,
    pub fills: u64,
    pub round_trips: u64,
    pub realized_pnl: Decimal,
    pub unrealized_pnl: Decimal,
    pub fees: Decimal,
    pub initial_quote: Decimal,
    pub final_base: Decimal,
    pub final_quote: Decimal,
    pub final_price: Decimal,
    pub final_equity: Decimal,
    pub total_return_pct: Decimal,
    pub max_drawdown_pct: Decimal,
    pub sharpe: String,
    pub win_rate: Decimal,
    pub final_status: StrategyStatus,
    pub data: DataSummary,
    pub warnings: Vec<String>,
    /// Present only when the venue answered late or failed orders (`--latency-ms`,
    /// `--fail-rate`, `--reject-rate`), so instant-venue results read exactly as before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub venue: Option<VenueSummary>,
    /// Present only with `--fill-model amm`: what the swaps cost beside the price, in quote —
    /// pool fees, price impact (against the pool's mid price) and gas.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swap_costs: Option<SwapCosts>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SwapCosts {
    pub pool_fees: Decimal,
    pub price_impact: Decimal,
    pub gas: Decimal,
    /// Gas of one swap, in quote.
    pub gas_per_swap: Decimal,
}

/// The delayed venue's settings and what it did.
#[derive(Debug, Clone, Serialize)]
pub struct VenueSummary {
    pub latency_ms: i64,
    pub fail_ppm: u32,
    pub reject_ppm: u32,
    pub seed: u64,
    pub failed_retryable: u64,
    pub failed_permanent: u64,
    pub refused: u64,
    /// Orders still unanswered when the data ended (their funds stay reserved, not spent).
    pub in_flight_at_end: usize,
}

pub struct BacktestOutcome {
    pub result: BacktestResult,
    pub fills_csv: Option<PathBuf>,
    pub chart: Option<PathBuf>,
}

/// What in the data does not fit the backtest: files named for another market, or prices that
/// never reach the grid's range (it would show a flat result that means nothing).
fn data_warnings(
    spec: &BacktestSpec,
    params: &StrategyParams,
    lowest: PriceKey,
    highest: PriceKey,
) -> Vec<String> {
    let mut out = Vec::new();
    let wanted = format!("{}{}", spec.symbol.base(), spec.symbol.quote());
    let markets: std::collections::BTreeSet<String> = crate::market::known::shipped()
        .map(|m| format!("{}{}", m.base(), m.quote()))
        .collect();
    for f in &spec.files {
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().to_ascii_uppercase())
            .unwrap_or_default();
        let prefix = name.split(['-', '_', '.']).next().unwrap_or("");
        if prefix != wanted && markets.contains(prefix) {
            out.push(format!(
                "data file {} is named for {prefix}, not {}: is it the right market?",
                f.display(),
                spec.symbol
            ));
        }
    }
    if let (Some((lower, upper)), Some(lo), Some(hi)) = (
        params.price_range(),
        lowest.to_decimal(),
        highest.to_decimal(),
    ) {
        if hi < lower || lo > upper {
            out.push(format!(
                "the prices ({} .. {}) never reach the grid's range ({lower} .. {upper}): nothing \
                 could trade; is the data the grid's market?",
                lo.normalize(),
                hi.normalize()
            ));
        }
    }
    out
}

fn pct(x: Decimal) -> Decimal {
    (x * Decimal::ONE_HUNDRED).round_dp_with_strategy(8, RoundingStrategy::MidpointNearestEven)
}

fn quick_grid_params(p0: Decimal, src: &ParamsSource) -> Result<StrategyParams, String> {
    let ParamsSource::QuickGrid {
        grid_count,
        range_pct,
        base_order_size,
        spacing,
        fee_bps,
    } = src
    else {
        return Err("not a quick grid".into());
    };
    let f = *range_pct / Decimal::ONE_HUNDRED;
    let round = |d: Decimal| d.round_dp_with_strategy(8, RoundingStrategy::MidpointNearestEven);
    let params = GridParams {
        lower_price: round(p0 * (Decimal::ONE - f)),
        upper_price: round(p0 * (Decimal::ONE + f)),
        grid_count: *grid_count,
        spacing: *spacing,
        base_order_size: *base_order_size,
        fee_bps: *fee_bps,
        on_exit: OnExit::Hold,
        stop_loss_price: None,
        take_profit_price: None,
        risk: Default::default(),
    };
    // Same validation as a hand-written spec.
    let json = serde_json::to_value(&params).map_err(|e| e.to_string())?;
    StrategyParams::parse("grid", &json).map_err(|e| format!("quick-grid parameters: {e}"))
}

/// Run a backtest. Outputs (`fills.csv`, `equity.svg`) go to `out_dir` when given.
/// `progress(bytes_done, bytes_total, ticks)` is called about once per MiB read.
pub fn run_backtest(
    spec: &BacktestSpec,
    out_dir: Option<&Path>,
    progress: &mut dyn FnMut(u64, u64, u64),
) -> Result<BacktestOutcome, BacktestError> {
    let files = &spec.files;
    let total: u64 = files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let fills_path = out_dir.map(|d| d.join("fills.csv"));
    let fills_file = match &fills_path {
        Some(p) => Some(
            std::fs::File::create(p)
                .map_err(|e| BacktestError::Io(format!("{}: {e}", p.display())))?,
        ),
        None => None,
    };
    let venue = SimVenue::new(SimVenueConfig {
        slippage_bps: spec.slippage_bps,
        amm: spec.amm,
    })
    .with_delays(spec.delays);
    let mut engine = Engine::new(
        1,
        venue,
        RiskGuard::new(RiskLimits::default()),
        BacktestRecorder::new(fills_file),
    );
    let mut params: Option<StrategyParams> = None;
    let mut params_error: Option<String> = None;
    if let ParamsSource::Fixed(p) = &spec.params {
        engine.add_strategy(p.build(), 0, p.fee_bps(), StrategyStatus::Active, None);
        params = Some(p.clone());
    }
    let mut reader = TickReader::new(spec.read);
    let mut done_before = 0u64;
    // The prices the data went through, for a grid they never reach.
    let (mut lowest, mut highest) = (PriceKey(i128::MAX), PriceKey(i128::MIN));
    for file in files {
        let file_len = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
        // A file that ends before the window starts has nothing to give: skip it unread.
        if let Some(from) = spec.read.from_us {
            if super::data::last_timestamp_us(file).is_some_and(|last| last < from) {
                done_before += file_len;
                continue;
            }
        }
        let mut on_tick = |ts: i64, key: PriceKey| {
            if params.is_none() && params_error.is_none() {
                match key
                    .to_decimal()
                    .ok_or_else(|| "price out of range".to_string())
                    .and_then(|p0| quick_grid_params(p0, &spec.params))
                {
                    Ok(p) => {
                        engine.add_strategy(
                            p.build(),
                            0,
                            p.fee_bps(),
                            StrategyStatus::Active,
                            None,
                        );
                        params = Some(p);
                    }
                    Err(e) => params_error = Some(e),
                }
            }
            lowest = lowest.min(key);
            highest = highest.max(key);
            engine.on_tick(0, ts, key);
        };
        let mut on_progress = |done: u64| progress(done_before + done, total, 0);
        reader.read_file(file, &mut on_tick, &mut on_progress)?;
        done_before += file_len;
    }
    if let Some(e) = params_error {
        return Err(BacktestError::Params(e));
    }
    let window = match (spec.read.from_us, spec.read.to_us) {
        (None, None) => String::new(),
        _ => " within --from/--to".to_string(),
    };
    let Some(params) = params else {
        return Err(BacktestError::Empty(window));
    };
    if engine.ticks() == 0 {
        return Err(BacktestError::Empty(window));
    }
    engine.finish();
    let ticks = engine.ticks();
    progress(total, total, ticks);
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
        data: reader.summary,
        warnings: {
            let mut w = params.warnings();
            w.extend(data_warnings(spec, &params, lowest, highest));
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
        swap_costs: spec.amm.map(|pool| SwapCosts {
            pool_fees: (ledger.fees - recorder.gas).normalize(),
            price_impact: recorder.impact.round_dp(8).normalize(),
            gas: recorder.gas.normalize(),
            gas_per_swap: pool.gas_quote.normalize(),
        }),
    };
    let chart = match out_dir {
        Some(dir) => {
            let path = dir.join("equity.svg");
            let title = format!("{} {} backtest", result.symbol, result.kind);
            let r2 = |d: Decimal| d.round_dp(2);
            let subtitle = format!(
                "return {}%  ·  max drawdown {}%  ·  {} round trips  ·  realized {}  ·  fees {}  ·  {} ticks",
                r2(result.total_return_pct), r2(result.max_drawdown_pct), result.round_trips, r2(result.realized_pnl), r2(result.fees), result.ticks
            );
            let svg = render_svg(
                &recorder.curve,
                &recorder.fill_marks,
                &ChartText {
                    title: &title,
                    subtitle: &subtitle,
                },
            );
            std::fs::write(&path, svg)
                .map_err(|e| BacktestError::Io(format!("{}: {e}", path.display())))?;
            Some(path)
        }
        None => None,
    };
    Ok(BacktestOutcome {
        result,
        fills_csv: fills_path,
        chart,
    })
}
