//! One step of a swap within one liquidity range (`SwapMath.computeSwapStep`, exact input only:
//! the grid's buys spend exactly their quote and its sells send exactly their lot).

use alloy::primitives::U256;

use super::full_math::{mul_div, mul_div_rounding_up};
use super::sqrt_price_math::{amount0_delta, amount1_delta, next_sqrt_price_from_input};

/// What one step takes and gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub sqrt_next: U256,
    pub amount_in: U256,
    pub amount_out: U256,
    pub fee: U256,
}

/// Swaps up to `remaining` in from `sqrt_current` toward `sqrt_target` at `liquidity`, paying
/// `fee_pips` (hundredths of a basis point) on what goes in.
pub fn compute_swap_step(
    sqrt_current: U256,
    sqrt_target: U256,
    liquidity: u128,
    remaining: U256,
    fee_pips: u32,
) -> Option<Step> {
    let million = U256::from(1_000_000u32);
    let fee = U256::from(fee_pips);
    let zero_for_one = sqrt_current >= sqrt_target;
    let remaining_less_fee = mul_div(remaining, million - fee, million)?;
    let to_target = if zero_for_one {
        amount0_delta(sqrt_target, sqrt_current, liquidity, true)?
    } else {
        amount1_delta(sqrt_current, sqrt_target, liquidity, true)?
    };
    let sqrt_next = if remaining_less_fee >= to_target {
        sqrt_target
    } else {
        next_sqrt_price_from_input(sqrt_current, liquidity, remaining_less_fee, zero_for_one)?
    };
    let reached = sqrt_next == sqrt_target;
    let (amount_in, amount_out) = if zero_for_one {
        (
            if reached {
                to_target
            } else {
                amount0_delta(sqrt_next, sqrt_current, liquidity, true)?
            },
            amount1_delta(sqrt_next, sqrt_current, liquidity, false)?,
        )
    } else {
        (
            if reached {
                to_target
            } else {
                amount1_delta(sqrt_current, sqrt_next, liquidity, true)?
            },
            amount0_delta(sqrt_current, sqrt_next, liquidity, false)?,
        )
    };
    let fee_amount = if !reached {
        // The step ends inside the range: everything left of the input that is not swapped is fee.
        remaining - amount_in
    } else {
        mul_div_rounding_up(amount_in, fee, million - fee)?
    };
    Some(Step {
        sqrt_next,
        amount_in,
        amount_out,
        fee: fee_amount,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_that_stops_inside_the_range_keeps_the_rest_as_fee() {
        // Uniswap's vector: price 1 → target 1.01 (√ = 79623317895830914510639640423), liquidity
        // 2e18, 1e18 in at 600 pips: capped by the target.
        let price = U256::from(1u8) << 96;
        let target = U256::from_str_radix("79623317895830914510639640423", 10).unwrap_or_default();
        let one = U256::from(10u64).pow(U256::from(18u8));
        let step = compute_swap_step(price, target, 2 * 10u128.pow(18), one, 600).unwrap_or(Step {
            sqrt_next: U256::ZERO,
            amount_in: U256::ZERO,
            amount_out: U256::ZERO,
            fee: U256::ZERO,
        });
        assert_eq!(step.sqrt_next, target);
        assert_eq!(step.amount_in.to_string(), "9975124224178055");
        assert_eq!(step.fee.to_string(), "5988667735148");
        assert_eq!(step.amount_out.to_string(), "9925619580021728");
        // Whatever the step, in + fee never exceeds what was offered.
        assert!(step.amount_in + step.fee <= one);
        // A small input ends inside the range and is used whole.
        let small = U256::from(1_000_000u64);
        let step = compute_swap_step(price, target, 2 * 10u128.pow(18), small, 600);
        assert!(step.is_some_and(|s| s.amount_in + s.fee == small && s.sqrt_next < target));
    }
}
