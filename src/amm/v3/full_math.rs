//! 512-bit intermediate products (`FullMath`): `a × b / d` without losing the high bits.

use alloy::primitives::{U256, U512};

/// `⌊a × b / d⌋`, `None` when `d` is zero or the result does not fit 256 bits (the pool reverts).
pub fn mul_div(a: U256, b: U256, d: U256) -> Option<U256> {
    if d.is_zero() {
        return None;
    }
    let q = U512::from(a) * U512::from(b) / U512::from(d);
    narrow(q)
}

/// `⌈a × b / d⌉`, as `FullMath.mulDivRoundingUp`.
pub fn mul_div_rounding_up(a: U256, b: U256, d: U256) -> Option<U256> {
    if d.is_zero() {
        return None;
    }
    let product = U512::from(a) * U512::from(b);
    let d = U512::from(d);
    let q = product / d;
    let q = if (product % d).is_zero() {
        q
    } else {
        q + U512::from(1u8)
    };
    narrow(q)
}

/// `⌈a / b⌉` (`UnsafeMath.divRoundingUp`); `None` for `b` zero.
pub fn div_rounding_up(a: U256, b: U256) -> Option<U256> {
    if b.is_zero() {
        return None;
    }
    let q = a / b;
    Some(if (a % b).is_zero() {
        q
    } else {
        q + U256::from(1u8)
    })
}

/// The low 256 bits of `q`, `None` when the high bits are not zero.
pub(crate) fn narrow(q: U512) -> Option<U256> {
    let limbs = q.as_limbs();
    if limbs[4..].iter().any(|l| *l != 0) {
        return None;
    }
    Some(U256::from_limbs([limbs[0], limbs[1], limbs[2], limbs[3]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_past_256_bits_divide_exactly() {
        let max = U256::MAX;
        assert_eq!(mul_div(max, max, max), Some(max));
        assert_eq!(
            mul_div(max, U256::from(2u8), U256::from(4u8)),
            Some(max / U256::from(2u8))
        );
        assert_eq!(mul_div(max, U256::from(2u8), U256::from(1u8)), None);
        assert_eq!(mul_div(U256::from(7u8), U256::from(3u8), U256::ZERO), None);
        assert_eq!(
            mul_div(U256::from(7u8), U256::from(3u8), U256::from(4u8)),
            Some(U256::from(5u8))
        );
        assert_eq!(
            mul_div_rounding_up(U256::from(7u8), U256::from(3u8), U256::from(4u8)),
            Some(U256::from(6u8))
        );
        assert_eq!(
            mul_div_rounding_up(U256::from(8u8), U256::from(3u8), U256::from(4u8)),
            Some(U256::from(6u8))
        );
        assert_eq!(
            div_rounding_up(U256::from(9u8), U256::from(4u8)),
            Some(U256::from(3u8))
        );
        assert_eq!(
            div_rounding_up(U256::from(8u8), U256::from(4u8)),
            Some(U256::from(2u8))
        );
    }
}
