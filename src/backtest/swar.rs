//! Eight-bytes-at-a-time helpers for the CSV hot path ("SIMD within a register"): finding
//! commas and parsing runs of ASCII digits without a branch per byte.

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The 8 bytes at `at` (the caller guarantees `at + 8 <= bytes.len()`).
#[inline(always)]
fn load(bytes: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(w)
}

/// Positions of up to `N` commas in `line`; returns how many there are in total.
#[inline]
pub fn commas<const N: usize>(line: &[u8], out: &mut [usize; N]) -> usize {
    let mut count = 0;
    let mut at = 0;
    let mut push = |pos: usize, count: &mut usize| {
        if *count < N {
            out[*count] = pos;
        }
        *count += 1;
    };
    while at + 8 <= line.len() {
        let x = load(line, at) ^ (ONES * u64::from(b','));
        // A zero byte of x is a comma. The has-zero-byte trick can flag a 0x01 byte just above a
        // real zero, so each candidate is confirmed against the line.
        let mut m = x.wrapping_sub(ONES) & !x & HIGHS;
        while m != 0 {
            let pos = at + (m.trailing_zeros() / 8) as usize;
            if line[pos] == b',' {
                push(pos, &mut count);
            }
            m &= m - 1;
        }
        at += 8;
    }
    for (pos, b) in line.iter().enumerate().skip(at) {
        if *b == b',' {
            push(pos, &mut count);
        }
    }
    count
}

/// Every byte of the word is an ASCII digit.
#[inline(always)]
fn eight_are_digits(w: u64) -> bool {
    let v = w.wrapping_sub(ONES * u64::from(b'0'));
    (w & HIGHS) == 0 && ((v.wrapping_add(ONES * 0x76)) & HIGHS) == 0 && (v & HIGHS) == 0
}

/// `line[start..end]` is one or more ASCII digits, checked a word at a time (no value made:
/// for columns that are only validated).
#[inline(always)]
pub fn all_digits(line: &[u8], start: usize, end: usize) -> bool {
    if start >= end {
        return false;
    }
    let mut at = start;
    while at + 8 <= end {
        if !eight_are_digits(load(line, at)) {
            return false;
        }
        at += 8;
    }
    let left = end - at;
    if left == 0 {
        return true;
    }
    if end >= 8 {
        // The word ending at `end`, its bytes before `at` made '0'.
        let (mask, zeros) = zero_digits_low(8 - left);
        return eight_are_digits((load(line, end - 8) & !mask) | zeros);
    }
    line[at..end].iter().all(u8::is_ascii_digit)
}

/// The bytes of a word that are not a digit, `,` or `.`: none (`0`) for a sound stretch of
/// numeric columns. Every byte must sit in `0x2C..=0x39` and be neither `-` nor `/`.
#[inline(always)]
fn not_numeric(w: u64) -> u64 {
    let high = w & HIGHS;
    let below = !(w.wrapping_add(ONES * (0x80 - 0x2C))) & HIGHS;
    let above = w.wrapping_add(ONES * (0x80 - 0x3A)) & HIGHS;
    let is = |b: u8| {
        let x = w ^ (ONES * u64::from(b));
        x.wrapping_sub(ONES) & !x & HIGHS
    };
    high | below | above | is(b'-') | is(b'/')
}

/// The `.` bytes of a word already known numeric (exact: no byte there is 0x2F).
#[inline(always)]
fn dots(w: u64) -> u64 {
    let x = w ^ (ONES * u64::from(b'.'));
    x.wrapping_sub(ONES) & !x & HIGHS
}

/// `line[start..end]` holds only digits, commas and points, a word at a time: `Some` with how
/// many points there are and where the first and last one sit; `None` for any other byte.
#[inline(always)]
pub fn numeric_span(line: &[u8], start: usize, end: usize) -> Option<(u32, usize, usize)> {
    let (mut count, mut first, mut last) = (0u32, usize::MAX, 0usize);
    let mut note = |m: u64, base: usize| {
        if m != 0 {
            count += m.count_ones();
            first = first.min(base + (m.trailing_zeros() / 8) as usize);
            last = base + (7 - m.leading_zeros() / 8) as usize;
        }
    };
    let mut at = start;
    while at + 8 <= end {
        let w = load(line, at);
        if not_numeric(w) != 0 {
            return None;
        }
        note(dots(w), at);
        at += 8;
    }
    let left = end - at;
    if left > 0 {
        if end >= 8 {
            // The word ending at `end`, its bytes before `at` made '0'.
            let (mask, zeros) = zero_digits_low(8 - left);
            let w = (load(line, end - 8) & !mask) | zeros;
            if not_numeric(w) != 0 {
                return None;
            }
            note(dots(w), end - 8);
        } else {
            for (i, b) in line[at..end].iter().enumerate() {
                match b {
                    b'0'..=b'9' | b',' => {}
                    b'.' => note(0x80, at + i),
                    _ => return None,
                }
            }
        }
    }
    Some((count, first, last))
}

/// Value of 8 ASCII digits in a little-endian word, or `None` if any byte is not a digit.
#[inline(always)]
fn eight_digits(w: u64) -> Option<u64> {
    let v = w.wrapping_sub(ONES * u64::from(b'0'));
    // Every byte must be 0..=9: no borrow out of the subtraction and no byte above 9.
    if (w & HIGHS) != 0
        || ((v.wrapping_add(ONES * 0x76)) & HIGHS) != 0
        || (w.wrapping_sub(ONES * u64::from(b'0')) & HIGHS) != 0
    {
        return None;
    }
    let v = v.wrapping_mul(10).wrapping_add(v >> 8);
    let v = ((v & 0x0000_00FF_0000_00FF).wrapping_mul(100 + (1_000_000 << 32))
        + ((v >> 16) & 0x0000_00FF_0000_00FF).wrapping_mul(1 + (10_000 << 32)))
        >> 32;
    Some(v)
}

/// Parse 1..=18 ASCII digits.
#[inline]
pub fn parse_u64(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 18 {
        return None;
    }
    let mut v: u64 = 0;
    let mut i = 0;
    while b.len() - i >= 8 {
        v = v * 100_000_000 + eight_digits(load(b, i))?;
        i += 8;
    }
    while i < b.len() {
        let d = b[i].wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + u64::from(d);
        i += 1;
    }
    Some(v)
}

/// `'0'` in the low `n` bytes of a word, zero above.
#[inline(always)]
fn zero_digits_low(n: usize) -> (u64, u64) {
    let mask = if n >= 8 {
        u64::MAX
    } else {
        (1u64 << (8 * n)) - 1
    };
    (mask, (ONES * u64::from(b'0')) & mask)
}

/// Digits `line[start..end]` (1..=16 of them) as a number, reading whole words and padding with
/// `'0'` instead of looping over bytes: the words ending at `end` when there is room before the
/// field, else the words starting at `start`. Falls back to [`parse_u64`] on very short lines.
#[inline(always)]
pub fn parse_digits_at(line: &[u8], start: usize, end: usize) -> Option<u64> {
    let len = end.checked_sub(start)?;
    if len == 0 || len > 16 {
        return parse_u64(line.get(start..end)?);
    }
    let words = if len > 8 { 16 } else { 8 };
    if end >= words {
        // Backward: the word(s) ending at `end`; bytes before `start` become '0'.
        let low = if len >= 8 {
            eight_digits(load(line, end - 8))?
        } else {
            let (mask, zeros) = zero_digits_low(8 - len);
            return eight_digits((load(line, end - 8) & !mask) | zeros);
        };
        if len == 8 {
            return Some(low);
        }
        let (mask, zeros) = zero_digits_low(16 - len);
        let high = eight_digits((load(line, end - 16) & !mask) | zeros)?;
        return Some(high * 100_000_000 + low);
    }
    if start + 8 <= line.len() {
        // Forward: shift the field's first bytes up and pad below with '0'.
        let k = len.min(8);
        let head = if len > 8 { len - 8 } else { k };
        let (_, zeros) = zero_digits_low(8 - head);
        let first = (load(line, start) << (8 * (8 - head))) | zeros;
        let first = eight_digits(first)?;
        if len <= 8 {
            return Some(first);
        }
        if start + head + 8 > line.len() {
            return parse_u64(&line[start..end]);
        }
        let rest = eight_digits(load(line, start + head))?;
        return Some(first * 100_000_000 + rest);
    }
    parse_u64(&line[start..end])
}

/// Position of the first `needle` byte in `line[start..end]`, a word at a time.
#[inline(always)]
pub fn find_byte(line: &[u8], start: usize, end: usize, needle: u8) -> Option<usize> {
    let mut at = start;
    while at + 8 <= end {
        let x = load(line, at) ^ (ONES * u64::from(needle));
        let m = x.wrapping_sub(ONES) & !x & HIGHS;
        if m != 0 {
            let pos = at + (m.trailing_zeros() / 8) as usize;
            if line[pos] == needle {
                return Some(pos);
            }
            // A false positive sits above a real match, which would have been found first.
        }
        at += 8;
    }
    (at..end).find(|&i| line[i] == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_digits_matches_the_byte_check_everywhere() {
        let line = b"1234567890123456789012,12.5,x9,99999999,0";
        for start in 0..line.len() {
            for end in start..=line.len() {
                let want = end > start && line[start..end].iter().all(u8::is_ascii_digit);
                assert_eq!(all_digits(line, start, end), want, "{start}..{end}");
            }
        }
    }

    #[test]
    fn numeric_span_matches_the_byte_check_everywhere() {
        let line = b"0.00026031,4800000000,12.5.6,a/b-c,1.2,,99,3312960001.5";
        for start in 0..line.len() {
            for end in start..=line.len() {
                let part = &line[start..end];
                let sound = part
                    .iter()
                    .all(|b| b.is_ascii_digit() || *b == b',' || *b == b'.');
                let dots: Vec<usize> = (start..end).filter(|&i| line[i] == b'.').collect();
                let want = sound.then(|| {
                    (
                        dots.len() as u32,
                        dots.first().copied().unwrap_or(usize::MAX),
                        dots.last().copied().unwrap_or(0),
                    )
                });
                assert_eq!(numeric_span(line, start, end), want, "{start}..{end}");
            }
        }
    }

    #[test]
    fn finds_a_byte() {
        let line = b"100000.01,28165.4700,7.";
        assert_eq!(find_byte(line, 0, 9, b'.'), Some(6));
        assert_eq!(find_byte(line, 10, 20, b'.'), Some(15));
        assert_eq!(find_byte(line, 21, 23, b'.'), Some(22));
        assert_eq!(find_byte(line, 0, 6, b'.'), None);
    }

    #[test]
    fn finds_commas() {
        let line = b"3071245454,28165.47000000,0.00056000,15.77266320,1680652799999,True,True";
        let mut out = [0usize; 8];
        let n = commas(line, &mut out);
        let expect: Vec<usize> = line
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b',')
            .map(|(i, _)| i)
            .collect();
        assert_eq!(n, expect.len());
        assert_eq!(&out[..n], &expect[..]);
        assert_eq!(commas(b",,,", &mut out), 3);
        assert_eq!(commas(b"", &mut out), 0);
        assert_eq!(commas(b"abc", &mut out), 0);
    }

    #[test]
    fn digits_at_any_position_and_length() {
        let line = b"xx,1234567890123456,7,abc,12345678,99,";
        let fields: Vec<(usize, usize)> = {
            let mut v = Vec::new();
            let mut start = 0;
            for (i, b) in line.iter().enumerate() {
                if *b == b',' {
                    v.push((start, i));
                    start = i + 1;
                }
            }
            v
        };
        let got: Vec<Option<u64>> = fields
            .iter()
            .map(|&(a, b)| parse_digits_at(line, a, b))
            .collect();
        // Fields at the very start of a line (no word before them to load).
        assert_eq!(parse_digits_at(b"3071245454,1", 0, 10), Some(3071245454));
        assert_eq!(
            parse_digits_at(b"3071245454,28165.47000000,0.00056000", 0, 10),
            Some(3071245454)
        );
        assert_eq!(
            parse_digits_at(b"1000000,100000.01,0.00026031", 0, 7),
            Some(1000000)
        );
        assert_eq!(parse_digits_at(b"10x0000,100000.01,0.00026031", 0, 7), None);
        assert_eq!(
            parse_digits_at(b"307124545x,28165.47000000,0.00056000", 0, 10),
            None
        );
        for n in 1..=16usize {
            let digits: String = (0..n).map(|i| char::from(b'1' + (i % 9) as u8)).collect();
            let text = format!("{digits},00000000000000000000");
            assert_eq!(
                parse_digits_at(text.as_bytes(), 0, n),
                digits.parse().ok(),
                "forward {digits}"
            );
        }
        assert_eq!(
            got,
            [
                None,
                Some(1234567890123456),
                Some(7),
                None,
                Some(12345678),
                Some(99)
            ]
        );
        for n in 1..=16usize {
            let digits: String = (0..n).map(|i| char::from(b'1' + (i % 9) as u8)).collect();
            let text = format!("0000000000000000,{digits},");
            let start = 17;
            assert_eq!(
                parse_digits_at(text.as_bytes(), start, start + n),
                digits.parse().ok(),
                "{digits}"
            );
            let bad = format!("0000000000000000,{}x,", &digits[..n - 1]);
            assert_eq!(
                parse_digits_at(bad.as_bytes(), start, start + n),
                None,
                "{bad}"
            );
        }
    }

    #[test]
    fn digits_match_the_scalar_parse() {
        for s in [
            "0",
            "7",
            "12345678",
            "123456789",
            "1680652799999",
            "999999999999999999",
            "00000001",
            "1735689600000000",
        ] {
            assert_eq!(parse_u64(s.as_bytes()), s.parse::<u64>().ok(), "{s}");
        }
        for bad in [
            "",
            "12a45678",
            "1234567/",
            "12345678:",
            " 1234567",
            "1234567890123456789",
            "-1",
            "１",
        ] {
            assert_eq!(parse_u64(bad.as_bytes()), None, "{bad}");
        }
        // Every single-byte corruption of an 8-digit run is caught.
        for pos in 0..8 {
            for b in 0u8..=255 {
                if b.is_ascii_digit() {
                    continue;
                }
                let mut s = *b"12345678";
                s[pos] = b;
                assert_eq!(parse_u64(&s), None, "byte {b} at {pos}");
            }
        }
    }
}
