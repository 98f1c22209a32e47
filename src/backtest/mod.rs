//! Backtests and sweeps (floor 7, may use floors 0–6): history through the same engine as paper.

pub mod chart;
pub mod data;
pub mod download;
pub mod heatmap;
pub mod multi;
pub mod record;
pub mod report;
pub mod row_check;
pub mod runner;
pub mod spec;
pub mod swar;
pub mod sweep;
pub mod sweep_run;
pub mod synthetic;

pub use runner::run_backtest;
pub use spec::{BacktestError, BacktestOutcome, BacktestResult, BacktestSpec, ParamsSource};
