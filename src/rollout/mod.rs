//! Canary rollouts driven (floor 9, may use floors 0–8): each stage run as the product runs it.
//!
//! The stages' work on the real parts: the backtest stage (the grid over the last days of Binance
//! history, downloaded when missing, through the live pool's depth and gas, stored as an ordinary
//! backtest and judged by the backtest gate), the paper stage's evidence (the ticks a paper
//! strategy traded on, replayed through the one engine for the fidelity check; the daemon keeps
//! that log for a rollout at its paper stage), the live gate's measures read from the record, and
//! the driver the daemon runs, which walks every rollout through its stages by writing ordinary
//! strategy rows (see `driver`).

pub mod backtest_stage;
pub mod driver;
pub mod live_stage;
pub mod paper_stage;

pub use backtest_stage::{run_backtest_stage, BacktestStage, StageError};
