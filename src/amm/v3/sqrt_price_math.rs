//! Amounts between two square-root prices and the price after an input (`SqrtPriceMath`).
//!
//! Every rounding direction is the pool's: amounts the pool receives round up, amounts it pays
//! round down, and a price moved by an input rounds so the pool never gives away more.

use alloy::primitives::U256;

use super::full_math::{div_rounding_up, mul_div, mul_div_rounding_up};

const RESOLUTION: usize = 96;

fn q96() -> U256 {
    U256::from(1u8) << RESOLUTION
}

fn max_u160() -> U256 {
    (U256::from(1u8) << 160) - U256::from(1u8)
}

/// The price after adding `amount` of token0 (`getNextSqrtPriceFromAmount0RoundingUp`, add).
fn next_from_amount0_up(sqrt_x96: U256, liquidity: u128, amount: U256) -> Option<U256> {
    if amount.is_zero() {
        return Some(sqrt_x96);
    }
    let numerator1 = U256::from(liquidity) << RESOLUTION;
    // The pool multiplies in wrapping 256-bit arithmetic and checks whether it wrapped.
    let (product, wrapped) = amount.overflowing_mul(sqrt_x96);
    if !wrapped {
        let (denominator, wrapped) = numerator1.overflowing_add(product);
        if !wrapped {
            return mul_div_rounding_up(numerator1, sqrt_x96, denominator);
        }
    }
    div_rounding_up(numerator1, (numerator1 / sqrt_x96).checked_add(amount)?)
}

/// The price after adding `amount` of token1 (`getNextSqrtPriceFromAmount1RoundingDown`, add).
fn next_from_amount1_down(sqrt_x96: U256, liquidity: u128, amount: U256) -> Option<U256> {
    if liquidity == 0 {
        return None;
    }
    let quotient = if amount <= max_u160() {
        (amount << RESOLUTION) / U256::from(liquidity)
    } else {
        mul_div(amount, q96(), U256::from(liquidity))?
    };
    let next = sqrt_x96.checked_add(quotient)?;
    (next <= max_u160()).then_some(next)
}

/// `getNextSqrtPriceFromInput`: the price after `amount_in` goes in (token0 in when
/// `zero_for_one`). `None` where the pool would revert.
pub fn next_sqrt_price_from_input(
    sqrt_x96: U256,
    liquidity: u128,
    amount_in: U256,
    zero_for_one: bool,
) -> Option<U256> {
    if sqrt_x96.is_zero() || liquidity == 0 {
        return None;
    }
    if zero_for_one {
        next_from_amount0_up(sqrt_x96, liquidity, amount_in)
    } else {
        next_from_amount1_down(sqrt_x96, liquidity, amount_in)
    }
}

/// `getAmount0Delta`: token0 between two prices at `liquidity`.
pub fn amount0_delta(a: U256, b: U256, liquidity: u128, round_up: bool) -> Option<U256> {
    let (lo, hi) = if a > b { (b, a) } else { (a, b) };
    if lo.is_zero() {
        return None;
    }
    let numerator1 = U256::from(liquidity) << RESOLUTION;
    let numerator2 = hi - lo;
    if round_up {
        div_rounding_up(mul_div_rounding_up(numerator1, numerator2, hi)?, lo)
    } else {
        Some(mul_div(numerator1, numerator2, hi)? / lo)
    }
}

/// `getAmount1Delta`: token1 between two prices at `liquidity`.
pub fn amount1_delta(a: U256, b: U256, liquidity: u128, round_up: bool) -> Option<U256> {
    let (lo, hi) = if a > b { (b, a) } else { (a, b) };
    if round_up {
        mul_div_rounding_up(U256::from(liquidity), hi - lo, q96())
    } else {
        mul_div(U256::from(liquidity), hi - lo, q96())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e18() -> U256 {
        U256::from(10u64).pow(U256::from(18u8))
    }

    #[test]
    fn uniswap_vectors() {
        // getAmount0Delta(price 1, price 1.21, 1e18 liquidity): 0.0909… token0, rounded up and down.
        let one = q96();
        let p121 = U256::from_str_radix("87150978765690771352898345369", 10).unwrap_or_default();
        let liq = 10u128.pow(18);
        assert_eq!(
            amount0_delta(one, p121, liq, true).map(|v| v.to_string()),
            Some("90909090909090910".to_string())
        );
        assert_eq!(
            amount0_delta(one, p121, liq, false).map(|v| v.to_string()),
            Some("90909090909090909".to_string())
        );
        assert_eq!(
            amount1_delta(one, p121, liq, true).map(|v| v.to_string()),
            Some("100000000000000000".to_string())
        );
        assert_eq!(
            amount1_delta(one, p121, liq, false).map(|v| v.to_string()),
            Some("99999999999999999".to_string())
        );
        // 0.1 token1 into liquidity 1 at price 1 moves √P to 1.1 (getNextSqrtPriceFromInput).
        assert_eq!(
            next_sqrt_price_from_input(one, liq, e18() / U256::from(10u8), false)
                .map(|v| v.to_string()),
            Some("87150978765690771352898345369".to_string())
        );
        // 0.1 token0 in: √P to 1/1.1 rounded up.
        assert_eq!(
            next_sqrt_price_from_input(one, liq, e18() / U256::from(10u8), true)
                .map(|v| v.to_string()),
            Some("72025602285694852357767227579".to_string())
        );
        assert_eq!(
            next_sqrt_price_from_input(one, 0, U256::from(1u8), true),
            None
        );
    }
}
