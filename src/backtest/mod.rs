//! Backtests: Binance history through the same engine, strategy and simulated venue as paper.

pub mod chart;
pub mod data;
pub mod download;
pub mod report;
pub mod runner;
pub mod swar;
pub mod synthetic;

pub use runner::{
    run_backtest, BacktestError, BacktestOutcome, BacktestResult, BacktestSpec, ParamsSource,
};
