//! Pool maths (floor 1, may use floor 0): the constant-product swap formula, its bounds, the pool model.
//!
//! The exact integer swap formula and the bound every swap carries (`swap_math`), and the decimal
//! pool model of the backtest and paper fill models (`pool`), so config, strategies, the chain and
//! venues share one formula.

pub mod pool;
pub mod swap_math;

pub use pool::{reserves_price, AmmPool};
