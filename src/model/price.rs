//! Exact fixed-point price keys for the tick path.
//!
//! A tick's price is kept as `price × 10^18` in an `i128`: exact for every price with at most 18
//! decimal places (Binance uses 8, BEP-20 tokens 18), and compared with one integer compare. Trigger
//! levels, which may have more digits (an arithmetic step such as 10000/3), are converted with floor or
//! ceiling so that `key <= floor(L)` ⇔ `price <= L` and `key >= ceil(L)` ⇔ `price >= L` hold exactly.
//! Decimals are made from keys only when something fills.

use rust_decimal::Decimal;

pub const PRICE_KEY_DECIMALS: u32 = 18;
const SCALE: i128 = 1_000_000_000_000_000_000;
const POW10: [i128; 19] = {
    let mut t = [1i128; 19];
    let mut i = 1;
    while i < 19 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};
/// Keys above this do not fit a `Decimal` mantissa (prices above ~7.9e10).
pub const MAX_PRICE_KEY: i128 = (1i128 << 96) - 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PriceKey(pub i128);

impl PriceKey {
    pub const MIN: PriceKey = PriceKey(i128::MIN);
    pub const MAX: PriceKey = PriceKey(i128::MAX);

    /// Largest key whose price is `<= d`.
    pub fn floor_of(d: Decimal) -> PriceKey {
        Self::convert(d, false)
    }

    /// Smallest key whose price is `>= d`.
    pub fn ceil_of(d: Decimal) -> PriceKey {
        Self::convert(d, true)
    }

    fn convert(d: Decimal, ceil: bool) -> PriceKey {
        let mantissa = d.mantissa();
        let scale = d.scale();
        if scale <= PRICE_KEY_DECIMALS {
            let factor = 10i128.pow(PRICE_KEY_DECIMALS - scale);
            return PriceKey(mantissa.checked_mul(factor).unwrap_or(if mantissa < 0 {
                i128::MIN
            } else {
                i128::MAX
            }));
        }
        let divisor = 10i128.pow(scale - PRICE_KEY_DECIMALS);
        let q = mantissa.div_euclid(divisor);
        let exact = mantissa.rem_euclid(divisor) == 0;
        PriceKey(if ceil && !exact { q + 1 } else { q })
    }

    /// The exact price, normalised (no trailing zeros). `None` beyond `MAX_PRICE_KEY`.
    pub fn to_decimal(self) -> Option<Decimal> {
        if self.0 > MAX_PRICE_KEY || self.0 < -MAX_PRICE_KEY {
            return None;
        }
        // Trailing zeros come off the integer in big steps (what `Decimal::normalize` does one
        // digit at a time on 96 bits): every equity mark of every grid of a sweep calls this.
        let (mut m, mut scale) = (self.0, PRICE_KEY_DECIMALS);
        if m == 0 {
            return Some(Decimal::ZERO);
        }
        while scale >= 8 && m % 100_000_000 == 0 {
            m /= 100_000_000;
            scale -= 8;
        }
        while scale >= 2 && m % 100 == 0 {
            m /= 100;
            scale -= 2;
        }
        if scale >= 1 && m % 10 == 0 {
            m /= 10;
            scale -= 1;
        }
        Decimal::try_from_i128_with_scale(m, scale).ok()
    }

    /// `int + frac / 10^frac_digits` (`frac_digits <= 18`); `None` beyond [`MAX_PRICE_KEY`].
    #[inline]
    pub fn from_parts(int: u64, frac: u64, frac_digits: u32) -> Option<PriceKey> {
        if frac_digits > PRICE_KEY_DECIMALS {
            return None;
        }
        let key = i128::from(int) * SCALE
            + i128::from(frac) * POW10[(PRICE_KEY_DECIMALS - frac_digits) as usize];
        (key <= MAX_PRICE_KEY).then_some(PriceKey(key))
    }

    /// Parse an unsigned ASCII decimal (`28165.47000000`) straight into a key, without allocating.
    /// `None` for anything else: signs, exponents, more than 18 decimals, empty, too large.
    #[inline]
    pub fn parse_ascii(bytes: &[u8]) -> Option<PriceKey> {
        let n = bytes.len();
        let mut i = 0;
        let mut int: u64 = 0;
        while i < n && bytes[i].is_ascii_digit() {
            if i >= 19 {
                return None;
            }
            int = int * 10 + u64::from(bytes[i] - b'0');
            i += 1;
        }
        let int_digits = i;
        let mut frac: u64 = 0;
        let mut frac_digits = 0u32;
        if i < n && bytes[i] == b'.' {
            i += 1;
            while i < n {
                let b = bytes[i];
                if !b.is_ascii_digit() {
                    return None;
                }
                if frac_digits < PRICE_KEY_DECIMALS {
                    frac = frac * 10 + u64::from(b - b'0');
                    frac_digits += 1;
                } else if b != b'0' {
                    // More than 18 decimals are allowed only as trailing zeros.
                    return None;
                }
                i += 1;
            }
        }
        if i != n || (int_digits == 0 && frac_digits == 0) {
            return None;
        }
        let key = i128::from(int) * SCALE
            + i128::from(frac) * POW10[(PRICE_KEY_DECIMALS - frac_digits) as usize];
        (key <= MAX_PRICE_KEY).then_some(PriceKey(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_decimal_is_the_normalised_exact_price() {
        let slow = |k: PriceKey| {
            Decimal::try_from_i128_with_scale(k.0, PRICE_KEY_DECIMALS)
                .ok()
                .map(|d| d.normalize())
        };
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut keys = vec![
            0,
            1,
            -1,
            10,
            100,
            SCALE,
            -SCALE,
            MAX_PRICE_KEY,
            -MAX_PRICE_KEY,
        ];
        for digits in 0..=28u32 {
            keys.push(10i128.pow(digits));
            keys.push(7 * 10i128.pow(digits));
        }
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Prices with 0..18 decimals, some with long runs of trailing zeros.
            let zeros = (x % 19) as u32;
            let m = i128::from(x >> 20) * 10i128.pow(zeros);
            keys.push(m.min(MAX_PRICE_KEY));
        }
        for k in keys {
            let k = PriceKey(k);
            let (fast, slow) = (k.to_decimal(), slow(k));
            assert_eq!(fast, slow, "{k:?}");
            if let (Some(f), Some(s)) = (fast, slow) {
                assert_eq!(f.scale(), s.scale(), "{k:?}");
                assert_eq!(f.to_string(), s.to_string());
            }
        }
        assert_eq!(PriceKey(MAX_PRICE_KEY + 1).to_decimal(), None);
        assert_eq!(
            PriceKey(10i128.pow(30)).to_decimal(),
            None,
            "beyond the limit"
        );
    }
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn parses_binance_prices_exactly() {
        let k = PriceKey::parse_ascii(b"28165.47000000").unwrap();
        assert_eq!(k.to_decimal().unwrap(), d("28165.47"));
        assert_eq!(
            PriceKey::parse_ascii(b"115729.0")
                .unwrap()
                .to_decimal()
                .unwrap(),
            d("115729")
        );
        assert_eq!(PriceKey::parse_ascii(b"7").unwrap(), PriceKey(7 * SCALE));
        assert_eq!(
            PriceKey::parse_ascii(b"0.000000000000000001").unwrap(),
            PriceKey(1)
        );
        for bad in [
            &b""[..],
            b"-1",
            b"1e5",
            b"1.2.3",
            b"abc",
            b"1.0000000000000000001",
            b".",
            b"1 ",
        ] {
            assert!(
                PriceKey::parse_ascii(bad).is_none(),
                "{:?}",
                std::str::from_utf8(bad)
            );
        }
    }

    #[test]
    fn floor_and_ceil_keep_comparisons_exact() {
        let level = d("10000") / d("3"); // 3333.333… with 28 digits
        let floor = PriceKey::floor_of(level);
        let ceil = PriceKey::ceil_of(level);
        assert_eq!(ceil.0, floor.0 + 1);
        let below = PriceKey::parse_ascii(b"3333.333333333333333333").unwrap();
        assert!(
            below <= floor,
            "price below the level must trigger a buy at it"
        );
        assert!(below < ceil, "and must not trigger a sell at it");
        let exact = d("100.25");
        assert_eq!(PriceKey::floor_of(exact), PriceKey::ceil_of(exact));
    }
}
