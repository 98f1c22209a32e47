//! Prices from square-root prices and back, with each token's decimals.

use alloy::primitives::{U256, U512};
use rust_decimal::Decimal;

fn pow10(n: u32) -> U512 {
    U512::from(10u8).pow(U512::from(n))
}

/// `num / den` as a decimal with as many of 18 decimal places as fit its 96-bit mantissa.
fn ratio(num: U512, den: U512) -> Option<Decimal> {
    if den.is_zero() {
        return None;
    }
    for scale in (0..=18u32).rev() {
        let q = num * pow10(scale) / den;
        if q < (U512::from(1u8) << 96) {
            let mantissa = i128::try_from(q.to::<u128>()).ok()?;
            return Some(Decimal::from_i128_with_scale(mantissa, scale).normalize());
        }
    }
    None
}

/// The price of the base token in the quote token (quote per base, in whole tokens) of a pool at
/// `sqrt_x96`, whose token0 has `decimals0` and token1 `decimals1` decimals.
pub fn price_from_sqrt_x96(
    sqrt_x96: U256,
    decimals0: u8,
    decimals1: u8,
    base_is_token0: bool,
) -> Option<Decimal> {
    // token1 per token0 in base units = √P² / 2^192.
    let squared = U512::from(sqrt_x96) * U512::from(sqrt_x96);
    let q192 = U512::from(1u8) << 192;
    let (d0, d1) = (pow10(u32::from(decimals0)), pow10(u32::from(decimals1)));
    if base_is_token0 {
        ratio(squared * d0, q192 * d1)
    } else {
        ratio(q192 * d1, squared * d0)
    }
}

/// The square-root price (rounded down) at which the base token costs `price` quote: the inverse
/// of `price_from_sqrt_x96`, for pools created at a price and for moving a replayed pool.
pub fn sqrt_x96_from_price(
    price: Decimal,
    decimals0: u8,
    decimals1: u8,
    base_is_token0: bool,
) -> Option<U256> {
    if price <= Decimal::ZERO {
        return None;
    }
    let mantissa = U512::from(u128::try_from(price.mantissa()).ok()?);
    let scale = pow10(price.scale());
    let (d0, d1) = (pow10(u32::from(decimals0)), pow10(u32::from(decimals1)));
    let q192 = U512::from(1u8) << 192;
    // token1 per token0 in base units, times 2^192.
    let squared: U512 = if base_is_token0 {
        mantissa * d1 * q192 / (scale * d0)
    } else {
        scale * d1 * q192 / (mantissa * d0)
    };
    let root = squared.root(2);
    super::full_math::narrow(root)
}

/// A V3 pool's virtual reserves `(token0, token1)` in base units at `sqrt_x96` and in-range
/// `liquidity`: `L / √P` and `L × √P`. They are the constant-product pair the pool behaves as until
/// the price leaves the current range, so everything that reads a pool by its reserves (price,
/// depth, valuation) reads a V3 pool by these.
pub fn virtual_reserves(sqrt_x96: U256, liquidity: u128) -> (U256, U256) {
    if sqrt_x96.is_zero() {
        return (U256::ZERO, U256::ZERO);
    }
    let l = U512::from(liquidity);
    let s = U512::from(sqrt_x96);
    let r0 = l * (U512::from(1u8) << 96) / s;
    let r1 = (l * s) >> 96;
    (
        super::full_math::narrow(r0).unwrap_or(U256::MAX),
        super::full_math::narrow(r1).unwrap_or(U256::MAX),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn prices_round_trip_through_sqrt_prices_with_decimals() {
        let one = U256::from(1u8) << 96;
        assert_eq!(price_from_sqrt_x96(one, 18, 18, true), Some(Decimal::ONE));
        // 1 token0 (18 decimals) = 1 token1 base unit per base unit: with token1 at 6 decimals
        // a whole token0 is worth 1e12 whole token1.
        assert_eq!(
            price_from_sqrt_x96(one, 18, 6, true),
            Some(Decimal::from(1_000_000_000_000u64))
        );
        for (p, d0, d1, base0) in [
            ("65000.5", 18, 18, true),
            ("0.0031", 18, 18, false),
            ("612.25", 18, 6, false),
        ] {
            let price = Decimal::from_str(p).unwrap_or_default();
            let sqrt = sqrt_x96_from_price(price, d0, d1, base0).unwrap_or_default();
            let back = price_from_sqrt_x96(sqrt, d0, d1, base0).unwrap_or_default();
            assert!(
                ((back - price) / price).abs() < Decimal::new(1, 15),
                "{p}: {back}"
            );
        }
        assert_eq!(sqrt_x96_from_price(Decimal::ZERO, 18, 18, true), None);
    }

    #[test]
    fn virtual_reserves_price_as_the_sqrt_price_does() {
        // √P = 2 (price 4 token1 per token0), L = 1e18: 0.5e18 token0 and 2e18 token1.
        let sqrt = U256::from(2u8) << 96;
        let (r0, r1) = virtual_reserves(sqrt, 10u128.pow(18));
        assert_eq!(r0, U256::from(5u64 * 10u64.pow(17)));
        assert_eq!(r1, U256::from(2u64 * 10u64.pow(18)));
        assert_eq!(virtual_reserves(U256::ZERO, 5), (U256::ZERO, U256::ZERO));
    }
}
