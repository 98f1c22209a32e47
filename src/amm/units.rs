//! The one place on-chain amounts become decimals and back.
//!
//! A token amount on chain is a `U256` count of base units; what it means depends on the token's
//! own `decimals` (18 for BTCB and BSC-USD, 6 for some stablecoins elsewhere), read from the chain,
//! never assumed. It lives with the pool maths (floor 1) because the V3 fill model swaps in base
//! units too; the chain boundary re-exports it as `chain::units`.

use alloy::primitives::U256;
use rust_decimal::Decimal;

/// Largest `decimals` a `Decimal` can represent exactly (its scale limit).
pub const MAX_DECIMALS: u8 = 28;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitsError {
    #[error("negative amount {0} cannot go on chain")]
    Negative(Decimal),
    #[error("token decimals {0} exceed the supported {MAX_DECIMALS}")]
    Decimals(u8),
    #[error("{0} base units do not fit a decimal amount")]
    TooLarge(U256),
}

/// Decimal amount → base units, rounded toward zero: what is sent is never more than asked for.
pub fn to_units(amount: Decimal, decimals: u8) -> Result<U256, UnitsError> {
    if decimals > MAX_DECIMALS {
        return Err(UnitsError::Decimals(decimals));
    }
    if amount.is_sign_negative() && !amount.is_zero() {
        return Err(UnitsError::Negative(amount));
    }
    let t = amount.trunc_with_scale(u32::from(decimals));
    // mantissa × 10^(decimals − scale), in U256 so no amount overflows on the way.
    let shift = u32::from(decimals) - t.scale();
    Ok(U256::from(t.mantissa().unsigned_abs()) * U256::from(10u8).pow(U256::from(shift)))
}

/// Base units → decimal amount, exact. A value too large for a `Decimal` at full precision loses
/// its smallest fractional digits (toward zero) rather than failing: balances of 10^11 whole
/// 18-decimal tokens still read.
pub fn from_units(units: U256, decimals: u8) -> Result<Decimal, UnitsError> {
    if decimals > MAX_DECIMALS {
        return Err(UnitsError::Decimals(decimals));
    }
    let mut value = units;
    let mut scale = u32::from(decimals);
    let limit = U256::from(u128::MAX >> 32); // Decimal's 96-bit mantissa
    while value > limit {
        if scale == 0 {
            return Err(UnitsError::TooLarge(units));
        }
        value /= U256::from(10u8);
        scale -= 1;
    }
    let mantissa = i128::try_from(value).map_err(|_| UnitsError::TooLarge(units))?;
    Decimal::try_from_i128_with_scale(mantissa, scale).map_err(|_| UnitsError::TooLarge(units))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap_or_default()
    }

    #[test]
    fn round_trips_with_the_tokens_own_decimals() {
        for (amount, decimals, units) in [
            ("1", 18, "1000000000000000000"),
            ("0.000000000000000001", 18, "1"),
            ("123.456789", 6, "123456789"),
            ("123.4567891", 6, "123456789"), // toward zero
            ("50", 6, "50000000"),
            ("0", 18, "0"),
            (
                "79228162514.264337593543950335",
                18,
                "79228162514264337593543950335",
            ),
        ] {
            let u = to_units(d(amount), decimals).unwrap_or_default();
            assert_eq!(u.to_string(), units, "{amount} @ {decimals}");
            let back = from_units(u, decimals).unwrap_or_default();
            assert_eq!(
                back,
                d(amount).trunc_with_scale(u32::from(decimals)),
                "{units}"
            );
        }
    }

    #[test]
    fn large_whole_amounts_scale_up_in_u256() {
        // 10^10 whole tokens at 18 decimals is 10^28 base units: past Decimal's mantissa.
        let u = to_units(d("10000000000"), 18).unwrap_or_default();
        assert_eq!(u, U256::from(10u8).pow(U256::from(28u8)));
    }

    #[test]
    fn huge_balances_read_with_fewer_fractional_digits() {
        let u = U256::from(10u8).pow(U256::from(35u8)) + U256::from(7u8);
        let v = from_units(u, 18).unwrap_or_default();
        assert_eq!(v, d("100000000000000000")); // 10^17 tokens; the 7 wei are below the precision
        assert!(from_units(U256::MAX, 0).is_err());
    }

    #[test]
    fn refuses_negative_amounts_and_absurd_decimals() {
        assert_eq!(to_units(d("-1"), 18), Err(UnitsError::Negative(d("-1"))));
        assert!(to_units(d("1"), 30).is_err());
        assert!(from_units(U256::from(1u8), 77).is_err());
    }
}
