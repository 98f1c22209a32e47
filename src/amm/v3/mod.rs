//! PancakeSwap V3 (Uniswap V3) concentrated-liquidity maths in the pool's own integer arithmetic.
//!
//! Ported step for step from the pool's Solidity libraries (`FullMath`, `TickMath`,
//! `SqrtPriceMath`, `SwapMath`) and its `swap` loop, including the extra steps the pool takes at
//! tick-bitmap word boundaries: a simulation that jumps straight between initialized ticks rounds
//! differently and is off by up to 1e5 wei. What a live swap receives, what the paper and backtest
//! fill models give and the quote best execution compares are therefore the same number, to the wei.

pub mod fill;
pub mod full_math;
pub mod pool;
pub mod price;
pub mod sqrt_price_math;
pub mod swap_step;
pub mod tick_math;

pub use fill::{V3Fill, V3FillError, V3FillModel, V3Profile};
pub use pool::{SwapOutcome, V3Pool, V3PoolError};
pub use price::{price_from_sqrt_x96, sqrt_x96_from_price, virtual_reserves};

/// The fee tiers PancakeSwap V3's factory enables, in hundredths of a basis point, with their tick
/// spacing: 1, 5, 25 and 100 bps.
pub const FEE_TIERS: [(u32, i32); 4] = [(100, 1), (500, 10), (2500, 50), (10_000, 200)];

/// The tick spacing of a fee tier the factory enables (`None` for any other fee).
pub fn tick_spacing_of(fee: u32) -> Option<i32> {
    FEE_TIERS
        .iter()
        .find(|(f, _)| *f == fee)
        .map(|(_, spacing)| *spacing)
}
