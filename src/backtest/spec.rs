//! What a backtest is asked (the spec: strategy, data, venue) and what it answers (the result
//! and its figures), shared by single runs, multi-grid passes and sweeps.

use std::path::PathBuf;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::Serialize;

use super::data::{DataError, DataSummary, ReadOptions};
use crate::model::PriceKey;
use crate::model::Symbol;
use crate::strategy::grid::{GridParams, OnExit, Spacing};
use crate::strategy::{StrategyParams, StrategyStatus};
use crate::venue::SimDelays;

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
    pub amm: Option<crate::amm::AmmPool>,
    /// `--fill-model amm` on a V3 pool: fills as the pool of this liquidity profile gives them.
    pub v3: Option<crate::amm::v3::V3FillModel>,
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
    /// Realized + unrealized, gross of gas (pool or exchange fees included).
    pub total_pnl: Decimal,
    /// Gas the fills paid, in quote (the AMM fill model's charge; zero with limit fills).
    pub gas: Decimal,
    /// `total_pnl` less `gas`: what live reports under the same name.
    pub total_pnl_net_of_gas: Decimal,
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
pub(super) fn data_warnings(
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

pub(super) fn pct(x: Decimal) -> Decimal {
    (x * Decimal::ONE_HUNDRED).round_dp_with_strategy(8, RoundingStrategy::MidpointNearestEven)
}

pub(super) fn quick_grid_params(p0: Decimal, src: &ParamsSource) -> Result<StrategyParams, String> {
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
        pool: None,
        risk: Default::default(),
    };
    // Same validation as a hand-written spec.
    let json = serde_json::to_value(&params).map_err(|e| e.to_string())?;
    StrategyParams::parse("grid", &json).map_err(|e| format!("quick-grid parameters: {e}"))
}
