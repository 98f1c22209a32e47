//! Pool maths (floor 1, may use floor 0): the constant-product and concentrated-liquidity (V3) swap
//! formulas, their bounds, the pool models.
//!
//! The exact integer swap formula and the bound every swap carries (`swap_math`), and the decimal
//! pool model of the backtest and paper fill models (`pool`), so config, strategies, the chain and
//! venues share one formula.

pub mod kind;
pub mod pool;
pub mod quote;
pub mod swap_math;
pub mod units;
pub mod v3;

pub use kind::PoolKind;
pub use pool::{reserves_price, AmmPool};
