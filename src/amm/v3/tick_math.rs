//! Ticks and square-root prices (`TickMath`): `√(1.0001^tick) × 2^96`, exactly as the pool rounds it.

use alloy::primitives::U256;

pub const MIN_TICK: i32 = -887_272;
pub const MAX_TICK: i32 = 887_272;

/// `getSqrtRatioAtTick(MIN_TICK)`.
pub fn min_sqrt_ratio() -> U256 {
    U256::from(4_295_128_739u64)
}

/// `getSqrtRatioAtTick(MAX_TICK)`.
pub fn max_sqrt_ratio() -> U256 {
    U256::from_str_radix("fffd8963efd1fc6a506488495d951d5263988d26", 16).unwrap_or(U256::MAX)
}

/// The 128.128 fixed-point factors `1/√1.0001^(2^i)` of `getSqrtRatioAtTick`, for bits 1..19.
const FACTORS: [(u32, &str); 19] = [
    (0x2, "fff97272373d413259a46990580e213a"),
    (0x4, "fff2e50f5f656932ef12357cf3c7fdcc"),
    (0x8, "ffe5caca7e10e4e61c3624eaa0941cd0"),
    (0x10, "ffcb9843d60f6159c9db58835c926644"),
    (0x20, "ff973b41fa98c081472e6896dfb254c0"),
    (0x40, "ff2ea16466c96a3843ec78b326b52861"),
    (0x80, "fe5dee046a99a2a811c461f1969c3053"),
    (0x100, "fcbe86c7900a88aedcffc83b479aa3a4"),
    (0x200, "f987a7253ac413176f2b074cf7815e54"),
    (0x400, "f3392b0822b70005940c7a398e4b70f3"),
    (0x800, "e7159475a2c29b7443b29c7fa6e889d9"),
    (0x1000, "d097f3bdfd2022b8845ad8f792aa5825"),
    (0x2000, "a9f746462d870fdf8a65dc1f90e061e5"),
    (0x4000, "70d869a156d2a1b890bb3df62baf32f7"),
    (0x8000, "31be135f97d08fd981231505542fcfa6"),
    (0x10000, "9aa508b5b7a84e1c677de54f3e99bc9"),
    (0x20000, "5d6af8dedb81196699c329225ee604"),
    (0x40000, "2216e584f5fa1ea926041bedfe98"),
    (0x80000, "48a170391f7dc42444e8fa2"),
];

fn hex(s: &str) -> U256 {
    U256::from_str_radix(s, 16).unwrap_or_default()
}

/// `getSqrtRatioAtTick`: `None` outside `[MIN_TICK, MAX_TICK]` (the pool reverts with `T`).
pub fn sqrt_ratio_at_tick(tick: i32) -> Option<U256> {
    if !(MIN_TICK..=MAX_TICK).contains(&tick) {
        return None;
    }
    let abs = tick.unsigned_abs();
    let mut ratio = if abs & 0x1 != 0 {
        hex("fffcb933bd6fad37aa2d162d1a594001")
    } else {
        U256::from(1u8) << 128
    };
    for (bit, factor) in FACTORS {
        if abs & bit != 0 {
            ratio = (ratio * hex(factor)) >> 128;
        }
    }
    if tick > 0 {
        ratio = U256::MAX / ratio;
    }
    // From 128.128 to 128.96, rounded up so that the tick of the result is the input tick.
    let shifted = ratio >> 32;
    let rem = ratio & U256::from(u32::MAX);
    Some(if rem.is_zero() {
        shifted
    } else {
        shifted + U256::from(1u8)
    })
}

/// `getTickAtSqrtRatio`: the greatest tick whose square-root ratio is at most `sqrt_x96`. The pool
/// computes it with a logarithm that is exact by construction; the greatest such tick is one
/// number, so a search over `sqrt_ratio_at_tick` gives the same one. `None` outside
/// `[min_sqrt_ratio, max_sqrt_ratio)`.
pub fn tick_at_sqrt_ratio(sqrt_x96: U256) -> Option<i32> {
    if sqrt_x96 < min_sqrt_ratio() || sqrt_x96 >= max_sqrt_ratio() {
        return None;
    }
    let (mut lo, mut hi) = (MIN_TICK, MAX_TICK);
    while lo < hi {
        let mid = lo + (hi - lo + 1) / 2;
        if sqrt_ratio_at_tick(mid)? <= sqrt_x96 {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    Some(lo)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ends_and_middle_equal_the_solidity_constants() {
        assert_eq!(sqrt_ratio_at_tick(MIN_TICK), Some(min_sqrt_ratio()));
        assert_eq!(
            sqrt_ratio_at_tick(MAX_TICK).map(|r| r.to_string()),
            Some("1461446703485210103287273052203988822378723970342".to_string())
        );
        assert_eq!(sqrt_ratio_at_tick(0), Some(U256::from(1u8) << 96));
        assert_eq!(sqrt_ratio_at_tick(MIN_TICK - 1), None);
        assert_eq!(sqrt_ratio_at_tick(MAX_TICK + 1), None);
        // Uniswap's test vectors: getSqrtRatioAtTick(50) and (-50).
        assert_eq!(
            sqrt_ratio_at_tick(50).map(|r| r.to_string()),
            Some("79426470787362580746886972461".to_string())
        );
        assert_eq!(
            sqrt_ratio_at_tick(-50).map(|r| r.to_string()),
            Some("79030349367926598376800521322".to_string())
        );
    }

    #[test]
    fn tick_of_a_ratio_is_the_greatest_not_above_it() {
        assert_eq!(tick_at_sqrt_ratio(min_sqrt_ratio()), Some(MIN_TICK));
        assert_eq!(
            tick_at_sqrt_ratio(max_sqrt_ratio() - U256::from(1u8)),
            Some(MAX_TICK - 1)
        );
        assert_eq!(tick_at_sqrt_ratio(max_sqrt_ratio()), None);
        for tick in [-200_000, -60, -1, 0, 1, 59, 123_456] {
            let r = sqrt_ratio_at_tick(tick).unwrap_or_default();
            assert_eq!(tick_at_sqrt_ratio(r), Some(tick));
            assert_eq!(tick_at_sqrt_ratio(r - U256::from(1u8)), Some(tick - 1));
            assert_eq!(tick_at_sqrt_ratio(r + U256::from(1u8)), Some(tick));
        }
    }
}
