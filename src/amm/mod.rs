//! Pool maths of a constant-product (PancakeSwap V2) pool: the exact integer swap formula and the
//! bound every swap carries, and the decimal pool model of the backtest and paper fill models.
//! Uses only the ground floor (`model`), so config, strategies, the chain and venues can share it.

pub mod pool;
pub mod swap_math;

pub use pool::{reserves_price, AmmPool};
