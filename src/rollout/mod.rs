//! Canary rollouts driven (floor 9, may use floors 0–8): each stage run as the product runs it.
//!
//! The stages' work on the real parts: today the backtest stage (the grid over the last days of
//! Binance history, downloaded when missing, through the live pool's depth and gas, stored as an
//! ordinary backtest and judged by the backtest gate) and the paper stage's evidence (the ticks a
//! paper strategy traded on, replayed through the one engine for the fidelity check; the daemon
//! keeps that log for a rollout at its paper stage), and the live gate's measures read from the
//! record. Running the live stages, and the daemon task that walks a rollout through all of them,
//! are still to come (issue 18); nothing in the daemon or the
//! CLI starts or advances a rollout yet.

pub mod backtest_stage;
pub mod driver;
pub mod live_stage;
pub mod paper_stage;

pub use backtest_stage::{run_backtest_stage, BacktestStage, StageError};
