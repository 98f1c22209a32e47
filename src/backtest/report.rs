//! The backtest recorder: fills to CSV as they happen, equity marks folded into the metrics
//! (drawdown, hourly returns for Sharpe) and a bounded equity curve for the chart.
//! Memory stays constant however long the data is.

use std::io::Write;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::Serialize;

use crate::clock::format_ms;
use crate::engine::recorder::Mark;
use crate::engine::Execution;
use crate::engine::{Ledger, Recorder};
use crate::model::order::{Fill, OrderId, Side, StrategyIx};
use crate::risk::Refusal;
use crate::strategy::grid::GridTag;

/// At most this many points are kept for the chart; beyond it the curve is thinned 2:1.
const MAX_CURVE_POINTS: usize = 4_000;
const HOUR_US: i64 = 3_600_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CurvePoint {
    pub ts_us: i64,
    pub equity: f64,
    pub price: f64,
}

pub struct BacktestRecorder {
    fills_csv: Option<std::io::BufWriter<std::fs::File>>,
    pub write_error: Option<String>,
    pub fills: u64,
    peak: Option<Decimal>,
    pub max_drawdown: Decimal,
    /// Equity at or above which a mark cannot set a new maximum drawdown (with a margin far
    /// above rounding); worked out once per drawdown, not at every mark. `None`: not yet.
    no_new_max_above: Option<Decimal>,
    hourly: Vec<f64>,
    current_hour: Option<i64>,
    /// The latest mark's equity (made an f64 only for the hourly series: once an hour).
    last_equity: Decimal,
    pub curve: Vec<CurvePoint>,
    stride: usize,
    marks: usize,
    pub fill_marks: Vec<(i64, Side, f64)>,
    /// Venue answers that were failures, and orders the risk guard refused.
    pub failed_retryable: u64,
    pub failed_permanent: u64,
    pub refused: u64,
    /// Swap costs beside the pool fee (AMM fill model): price impact and gas, in quote.
    pub impact: Decimal,
    pub gas: Decimal,
    /// Keep no chart points (curve, fill marks): a sweep's thousands of grids need figures only.
    pub light: bool,
}

impl BacktestRecorder {
    pub fn new(fills_csv: Option<std::fs::File>) -> Self {
        let mut fills_csv = fills_csv.map(|f| std::io::BufWriter::with_capacity(1 << 16, f));
        let mut write_error = None;
        if let Some(w) = fills_csv.as_mut() {
            if let Err(e) = writeln!(
                w,
                "time,ts_us,side,type,cell,price,base_amount,quote_amount,fee,realized_pnl,quote_balance,base_balance"
            ) {
                write_error = Some(e.to_string());
            }
        }
        BacktestRecorder {
            fills_csv,
            write_error,
            fills: 0,
            peak: None,
            max_drawdown: Decimal::ZERO,
            no_new_max_above: None,
            hourly: Vec::new(),
            current_hour: None,
            last_equity: Decimal::ZERO,
            curve: Vec::new(),
            stride: 1,
            marks: 0,
            fill_marks: Vec::new(),
            failed_retryable: 0,
            failed_permanent: 0,
            refused: 0,
            impact: Decimal::ZERO,
            gas: Decimal::ZERO,
            light: false,
        }
    }

    fn observe_equity(&mut self, equity: Decimal) {
        match self.peak {
            Some(p) if equity <= p => {
                if p <= Decimal::ZERO {
                    return;
                }
                // A new maximum needs `(p - e) / p > max`, i.e. `e < p - max × p`: one compare
                // against a threshold made once per drawdown (the margin keeps any true new
                // maximum from being skipped), the division only for a fall that may be one.
                let above = *self
                    .no_new_max_above
                    .get_or_insert_with(|| p - self.max_drawdown * p + p * Decimal::new(1, 20));
                if equity <= above {
                    let dd = (p - equity) / p;
                    if dd > self.max_drawdown {
                        self.max_drawdown = dd;
                        self.no_new_max_above = None;
                    }
                }
            }
            _ => {
                self.peak = Some(equity);
                self.no_new_max_above = None;
            }
        }
    }

    pub fn flush(&mut self) -> Result<(), String> {
        if let Some(e) = &self.write_error {
            return Err(e.clone());
        }
        if let Some(w) = self.fills_csv.as_mut() {
            w.flush().map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    pub fn max_drawdown_pct(&self) -> Decimal {
        (self.max_drawdown * Decimal::ONE_HUNDRED)
            .round_dp_with_strategy(8, RoundingStrategy::MidpointNearestEven)
    }

    /// Annualised Sharpe ratio of hourly equity returns (crypto trades 24 × 365), risk-free 0.
    pub fn sharpe(&self) -> f64 {
        use statrs::statistics::Statistics;
        let mut series = self.hourly.clone();
        series.push(to_f64(self.last_equity));
        let returns: Vec<f64> = series
            .windows(2)
            .filter(|w| w[0] > 0.0)
            .map(|w| w[1] / w[0] - 1.0)
            .collect();
        if returns.len() < 2 {
            return 0.0;
        }
        let mean = returns.iter().mean();
        let sd = returns.iter().std_dev();
        if !(sd.is_finite() && sd > 0.0) {
            return 0.0;
        }
        mean / sd * (24.0f64 * 365.0).sqrt()
    }
}

fn to_f64(d: Decimal) -> f64 {
    use rust_decimal::prelude::ToPrimitive;
    d.to_f64().unwrap_or(0.0)
}

impl Recorder for BacktestRecorder {
    fn order_failed(&mut self, _s: StrategyIx, _o: OrderId, _r: &str, retryable: bool, _t: i64) {
        if retryable {
            self.failed_retryable += 1;
        } else {
            self.failed_permanent += 1;
        }
    }

    fn refused(&mut self, _order: &Execution, _refusal: &Refusal, _ts_us: i64) {
        self.refused += 1;
    }

    fn fill(&mut self, fill: &Fill, ledger: &Ledger) {
        self.fills += 1;
        self.impact += fill.impact;
        self.gas += fill.gas;
        self.observe_equity(ledger.equity(fill.price));
        if !self.light && self.fill_marks.len() < 20_000 {
            self.fill_marks
                .push((fill.ts_us, fill.side, to_f64(fill.price)));
        }
        let Some(w) = self.fills_csv.as_mut() else {
            return;
        };
        let cell = GridTag::cell(fill.tag)
            .map(|c| c.to_string())
            .unwrap_or_default();
        let realized = fill
            .lot_cost
            .map(|c| (fill.quote - c).to_string())
            .unwrap_or_default();
        let res = writeln!(
            w,
            "{},{},{},{},{},{},{},{},{},{},{},{}",
            format_ms(crate::clock::ms_of_us(fill.ts_us)),
            fill.ts_us,
            fill.side.as_str(),
            if fill.market { "market" } else { "limit" },
            cell,
            fill.price.normalize(),
            fill.base.normalize(),
            fill.quote.normalize(),
            fill.fee.normalize(),
            realized,
            ledger.quote.normalize(),
            ledger.base.normalize(),
        );
        if let Err(e) = res {
            self.write_error.get_or_insert(e.to_string());
        }
    }

    fn mark(&mut self, ts_us: i64, _strategy: usize, mark: &Mark<'_>) {
        let (equity, price) = (mark.equity, mark.price);
        self.observe_equity(equity);
        let hour = ts_us.div_euclid(HOUR_US);
        if self.current_hour != Some(hour) {
            if self.current_hour.is_some() {
                self.hourly.push(to_f64(self.last_equity));
            }
            self.current_hour = Some(hour);
        }
        self.last_equity = equity;
        if !self.light && self.marks.is_multiple_of(self.stride) {
            self.curve.push(CurvePoint {
                ts_us,
                equity: to_f64(equity),
                price: to_f64(price),
            });
            if self.curve.len() > MAX_CURVE_POINTS {
                let thinned: Vec<CurvePoint> = self.curve.iter().step_by(2).copied().collect();
                self.curve = thinned;
                self.stride *= 2;
            }
        }
        self.marks += 1;
    }
}
