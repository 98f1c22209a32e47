//! One row at a time: the fast paths that read a trade, an aggTrade or a kline in place (the
//! price and time the engine needs, every other column checked), format detection, and what a
//! row that fits no format probably is.

use super::{DataFormat, MICROS_THRESHOLD};
use crate::backtest::row_check;
use crate::model::PriceKey;

pub(super) fn ts_to_us(raw: i64) -> i64 {
    if raw < MICROS_THRESHOLD {
        raw * 1000
    } else {
        raw
    }
}

#[inline]
pub(super) fn parse_int(b: &[u8]) -> Option<i64> {
    if b.is_empty() || b.len() > 19 {
        return None;
    }
    let mut v: i64 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(i64::from(c - b'0'))?;
    }
    Some(v)
}

/// `int[.frac]` with at most 16 digits on each side, word at a time; anything else goes
/// through the general parser.
#[inline]
pub(super) fn fast_price(line: &[u8], start: usize, end: usize) -> Option<PriceKey> {
    let field = &line[start..end];
    match crate::backtest::swar::find_byte(line, start, end, b'.').map(|p| p - start) {
        Some(dot)
            if dot > 0 && dot + 1 < field.len() && field.len() - dot - 1 <= 16 && dot <= 16 =>
        {
            let int = crate::backtest::swar::parse_digits_at(line, start, start + dot)?;
            let frac_len = (field.len() - dot - 1) as u32;
            let frac = crate::backtest::swar::parse_digits_at(line, start + dot + 1, end)?;
            PriceKey::from_parts(int, frac, frac_len)
        }
        _ => PriceKey::parse_ascii(field),
    }
}

/// `line[start..end]` is an unsigned decimal (as [`row_check::is_quantity`]), checked a word at
/// a time.
#[inline(always)]
pub(super) fn fast_quantity(line: &[u8], (start, end): (usize, usize)) -> bool {
    use crate::backtest::swar::all_digits;
    if end - start > 40 {
        return false;
    }
    match crate::backtest::swar::find_byte(line, start, end, b'.') {
        Some(dot) => {
            end - start > 1
                && (dot == start || all_digits(line, start, dot))
                && (dot + 1 == end || all_digits(line, dot + 1, end))
        }
        None => all_digits(line, start, end),
    }
}

/// `line[start..end]` is a whole number of 1 to 19 digits.
#[inline(always)]
pub(super) fn fast_count(line: &[u8], (start, end): (usize, usize)) -> bool {
    end - start <= 19 && crate::backtest::swar::all_digits(line, start, end)
}

/// A trade row whose time is column `time_col`, then `is_buyer_maker` and an optional
/// `is_best_match` → (id, price, time µs): commas found and digits parsed eight bytes at a time.
#[inline(always)]
pub(super) fn fast_tick(line: &[u8], time_col: usize) -> Option<(i64, PriceKey, i64)> {
    let mut c = [0usize; 8];
    let n = crate::backtest::swar::commas(line, &mut c);
    if n != time_col + 1 && n != time_col + 2 {
        return None;
    }
    let id = crate::backtest::swar::parse_digits_at(line, 0, c[0])?;
    let price = fast_price(line, c[0] + 1, c[1])?;
    let ts = crate::backtest::swar::parse_digits_at(line, c[time_col - 1] + 1, c[time_col])?;
    // The columns between price and time: a quantity, then (trades) the quote quantity or
    // (aggTrades) the first and last trade ids, checked in one pass: only digits, commas and
    // points, no empty column, a point only inside a quantity, at most one each. Anything else
    // goes to the general path.
    let (points, first, last) =
        crate::backtest::swar::numeric_span(line, c[1] + 1, c[time_col - 1])?;
    let len = |k: usize| c[k] - c[k - 1] - 1;
    let one_point_in = |k: usize, p: usize| c[k - 1] < p && p < c[k] && len(k) > 1;
    let sound = if time_col == 4 {
        len(2) > 0
            && len(3) > 0
            && len(2) <= 40
            && len(3) <= 40
            && match points {
                0 => true,
                1 => one_point_in(2, first) || one_point_in(3, first),
                2 => one_point_in(2, first) && one_point_in(3, last),
                _ => false,
            }
    } else {
        len(2) > 0
            && len(2) <= 40
            && (1..=19).contains(&len(3))
            && (1..=19).contains(&len(4))
            && match points {
                0 => true,
                1 => one_point_in(2, first),
                _ => false,
            }
    };
    if !sound {
        return None;
    }
    let best_match = n == time_col + 2;
    let maker_end = if best_match {
        c[time_col + 1]
    } else {
        line.len()
    };
    if !row_check::is_flag(&line[c[time_col] + 1..maker_end])
        || (best_match && !row_check::is_flag(&line[c[time_col + 1] + 1..]))
    {
        return None;
    }
    Some((id as i64, price, ts_to_us(ts as i64)))
}

/// `id,price,qty,quote_qty,time,is_buyer_maker[,is_best_match]` (trades).
#[inline]
pub(super) fn fast_trade(line: &[u8]) -> Option<(i64, PriceKey, i64)> {
    fast_tick(line, 4)
}

/// `agg_id,price,qty,first_id,last_id,time,is_buyer_maker[,is_best_match]` (Binance's aggTrades,
/// ~84 bytes a row).
#[inline]
pub(super) fn fast_agg(line: &[u8]) -> Option<(i64, PriceKey, i64)> {
    fast_tick(line, 5)
}

/// A kline row's open time (as written), `[open, high, low, close]` and close-time field.
pub(super) type Bar<'a> = (i64, [PriceKey; 4], Option<&'a [u8]>);

/// A kline of `cols` (6 or 12) columns → (open time as written, `[open, high, low, close]`,
/// the close-time field of a 12-column row): the same one pass as [`fast_trade`].
#[inline]
pub(super) fn fast_kline(line: &[u8], cols: usize) -> Option<Bar<'_>> {
    let mut c = [0usize; 12];
    let n = crate::backtest::swar::commas(line, &mut c);
    if n + 1 != cols {
        return None;
    }
    let open_time = crate::backtest::swar::parse_digits_at(line, 0, c[0])?;
    let ohlc = [
        fast_price(line, c[0] + 1, c[1])?,
        fast_price(line, c[1] + 1, c[2])?,
        fast_price(line, c[2] + 1, c[3])?,
        fast_price(line, c[3] + 1, c[4])?,
    ];
    // Volumes and counts are checked for what they are (a damaged one is a bad row).
    let field = |k: usize| (c[k - 1] + 1, if k < n { c[k] } else { line.len() });
    if !fast_quantity(line, field(5)) {
        return None;
    }
    if cols == 12
        && !(fast_count(line, field(6))
            && fast_quantity(line, field(7))
            && fast_count(line, field(8))
            && fast_quantity(line, field(9))
            && fast_quantity(line, field(10))
            && fast_quantity(line, field(11)))
    {
        return None;
    }
    let close_time = (cols == 12).then(|| &line[c[5] + 1..c[6]]);
    Some((open_time as i64, ohlc, close_time))
}

/// Split a line into at most `N` fields without allocating; returns the field count.
#[inline]
pub(super) fn split_fields<'a, const N: usize>(line: &'a [u8], out: &mut [&'a [u8]; N]) -> usize {
    let mut n = 0;
    let mut start = 0;
    for pos in memchr::memchr_iter(b',', line) {
        if n < N {
            out[n] = &line[start..pos];
        }
        n += 1;
        start = pos + 1;
    }
    if n < N {
        out[n] = &line[start..];
    }
    n + 1
}

pub(super) fn detect(fields: &[&[u8]], count: usize) -> Option<DataFormat> {
    // A 6-column bookTicker row (update id, bid, bid qty, ask, ask qty, time) ends in a
    // timestamp where a kline ends in its volume, and does not start with one.
    let time_like = |f: &[u8]| f.len() >= 12 && f.iter().all(u8::is_ascii_digit);
    let quotes = count == 6 && time_like(fields[5]) && !time_like(fields[0]);
    match count {
        12 => Some(DataFormat::Kline12),
        6 if row_check::is_flag(fields[5]) => Some(DataFormat::Trades),
        6 if !quotes => Some(DataFormat::Kline6),
        7 if row_check::is_flag(fields[5]) => Some(DataFormat::Trades),
        // aggTrades without the best-match column ends in the buyer-maker flag; a 7-column
        // bookTicker row ends in two times.
        7 if row_check::is_flag(fields[6]) => Some(DataFormat::AggTrades),
        8 => Some(DataFormat::AggTrades),
        _ => None,
    }
}

/// What a row that is none of the formats probably is, for the error.
pub(super) fn misfit_hint(fields: &[&[u8]], count: usize) -> &'static str {
    if (6..=7).contains(&count) && fields.get(5).is_some_and(|f| f.len() >= 12) {
        " (bid/ask quotes such as a bookTicker file? backtests read trades, aggTrades or klines)"
    } else {
        " (backtests read Binance trades, aggTrades or klines)"
    }
}
