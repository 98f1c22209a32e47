//! What each column of a Binance CSV row must hold, including the columns a backtest does not
//! use: a row damaged anywhere (a quantity `nan` or negative, a flag `TRUE`, bytes that are not
//! text) is a bad row, named by file and line, never read as if it were sound.

/// Longest row read: a Binance row is under 200 bytes. A longer one is refused before it is
/// buffered, so memory does not grow with a file's longest line (or a zip that inflates to one).
pub const MAX_ROW_BYTES: usize = 64 * 1024;

/// An unsigned decimal (`123`, `0.5`, `12.000`): digits with at most one point, at least one
/// digit, no sign, no exponent, no `nan`.
#[inline]
pub fn is_quantity(b: &[u8]) -> bool {
    if b.is_empty() || b.len() > 40 {
        return false;
    }
    let mut dots = 0;
    let mut digits = 0;
    for &c in b {
        match c {
            b'0'..=b'9' => digits += 1,
            b'.' => dots += 1,
            _ => return false,
        }
    }
    digits > 0 && dots <= 1
}

/// A whole number (ids, times, counts): 1 to 19 digits.
#[inline]
pub fn is_count(b: &[u8]) -> bool {
    !b.is_empty() && b.len() <= 19 && b.iter().all(u8::is_ascii_digit)
}

/// A flag as Binance writes it.
#[inline(always)]
pub fn is_flag(b: &[u8]) -> bool {
    matches!(b, b"true" | b"false" | b"True" | b"False")
}

/// Column names: what a header row holds (letters, digits, `_`, spaces; a letter first).
pub fn is_header(line: &[u8]) -> bool {
    line.first().is_some_and(u8::is_ascii_alphabetic)
        && line
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b' ' | b',' | b'"'))
}

fn shown(b: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(b))
}

fn want(ok: bool, name: &str, b: &[u8], what: &str) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(format!("{name} {} is not {what}", shown(b)))
    }
}

/// `id,price,qty,quote_qty,time,is_buyer_maker[,is_best_match]`: the columns beside id, price
/// and time.
pub fn trade_columns(f: &[&[u8]], count: usize) -> Result<(), String> {
    want(is_quantity(f[2]), "qty", f[2], "an unsigned decimal")?;
    want(is_quantity(f[3]), "quote_qty", f[3], "an unsigned decimal")?;
    flags(f, 5, count)
}

/// `agg_id,price,qty,first_id,last_id,time,is_buyer_maker[,is_best_match]`.
pub fn agg_trade_columns(f: &[&[u8]], count: usize) -> Result<(), String> {
    want(is_quantity(f[2]), "qty", f[2], "an unsigned decimal")?;
    want(is_count(f[3]), "first_id", f[3], "an integer")?;
    want(is_count(f[4]), "last_id", f[4], "an integer")?;
    flags(f, 6, count)
}

fn flags(f: &[&[u8]], first: usize, count: usize) -> Result<(), String> {
    for (i, name) in (first..count).zip(["is_buyer_maker", "is_best_match"]) {
        want(is_flag(f[i]), name, f[i], "true or false")?;
    }
    Ok(())
}

/// `open_time,open,high,low,close,volume[,close_time,quote_volume,trades,taker_base,taker_quote,ignore]`:
/// the columns beside open time and prices.
pub fn kline_columns(f: &[&[u8]], count: usize) -> Result<(), String> {
    want(is_quantity(f[5]), "volume", f[5], "an unsigned decimal")?;
    if count == 12 {
        want(is_count(f[6]), "close_time", f[6], "an integer")?;
        want(
            is_quantity(f[7]),
            "quote_volume",
            f[7],
            "an unsigned decimal",
        )?;
        want(is_count(f[8]), "trades", f[8], "an integer")?;
        want(is_quantity(f[9]), "taker_base", f[9], "an unsigned decimal")?;
        want(
            is_quantity(f[10]),
            "taker_quote",
            f[10],
            "an unsigned decimal",
        )?;
        want(is_quantity(f[11]), "ignore", f[11], "a number")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_counts_and_flags() {
        for ok in ["0", "12", "0.5", "12.000", "7."] {
            assert!(is_quantity(ok.as_bytes()), "{ok}");
        }
        for bad in ["", ".", "-1", "nan", "1e5", "1.2.3", " 1", "\u{ff}"] {
            assert!(!is_quantity(bad.as_bytes()), "{bad}");
        }
        assert!(is_count(b"1234567890123456789"));
        assert!(!is_count(b"12345678901234567890"));
        assert!(!is_count(b"-1"));
        assert!(is_flag(b"True") && is_flag(b"false"));
        assert!(!is_flag(b"TRUE") && !is_flag(b"1"));
        assert!(is_header(
            b"id,price,qty,quote_qty,time,is_buyer_maker,is_best_match"
        ));
        assert!(!is_header(b"\x00\xff garbage"));
        assert!(!is_header(b"123,abc"));
    }
}
