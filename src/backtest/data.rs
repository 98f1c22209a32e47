//! Streaming readers for Binance's historical CSV files.
//!
//! Formats (detected from the first data row; a header row is skipped):
//! * kline, 12 columns: `open_time,open,high,low,close,volume,close_time,quote_volume,trades,taker_base,taker_quote,ignore`
//! * kline, 6 columns (OHLCV): `open_time,open,high,low,close,volume`
//! * trades: `id,price,qty,quote_qty,time,is_buyer_maker[,is_best_match]`
//! * aggTrades: `agg_id,price,qty,first_id,last_id,time,is_buyer_maker[,is_best_match]`
//!
//! Timestamps may be milliseconds or microseconds (Binance's spot files switched in 2025); both
//! become microseconds. Rows are parsed in place from a reused buffer, so memory does not grow with
//! the file. Gaps (missing bars, missing trade ids) are counted and reported, never filled in.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::row_check::{self, MAX_ROW_BYTES};
use crate::model::PriceKey;

mod rows;

use rows::{
    detect, fast_agg, fast_kline, fast_trade, misfit_hint, parse_int, split_fields, ts_to_us,
};

/// A timestamp below this is milliseconds, above it microseconds (1e14 ms is the year 5138).
const MICROS_THRESHOLD: i64 = 100_000_000_000_000;
const CHUNK: usize = 1 << 20;
const MAX_LISTED_GAPS: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DataFormat {
    Kline12,
    Kline6,
    Trades,
    AggTrades,
}

impl DataFormat {
    /// Prices a row contributes (GRID.md: a bar gives four, a trade one).
    pub fn prices_per_row(self) -> u64 {
        match self {
            DataFormat::Kline12 | DataFormat::Kline6 => 4,
            DataFormat::Trades | DataFormat::AggTrades => 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct DataError {
    pub file: String,
    pub line: u64,
    pub message: String,
}

/// A missing stretch of data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gap {
    pub file: String,
    pub line: u64,
    /// Last timestamp (µs) before the gap and first after it.
    pub from_us: i64,
    pub to_us: i64,
    /// Missing bars (klines) or missing trade ids (trades).
    pub missing: u64,
}

/// What reading produced, besides the ticks themselves.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DataSummary {
    pub files: Vec<String>,
    pub format: Option<DataFormat>,
    pub rows: u64,
    pub bad_rows_skipped: u64,
    pub first_bad_rows: Vec<String>,
    pub gaps: u64,
    pub missing: u64,
    pub gap_list: Vec<Gap>,
    pub first_ts_us: Option<i64>,
    pub last_ts_us: Option<i64>,
    /// Kline interval inferred from the data (µs).
    pub interval_us: Option<i64>,
}

/// Which rows to deliver.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadOptions {
    pub from_us: Option<i64>,
    pub to_us: Option<i64>,
    pub skip_bad_rows: bool,
}

/// Every CSV file at `path` (a file, or a folder's `*.csv` in name order, recursively).
pub fn list_data_files(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let p = entry?.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "csv" || e == "zip") {
                out.push(p);
            }
        }
    }
    out.sort_by(|a, b| a.file_name().cmp(&b.file_name()).then(a.cmp(b)));
    if out.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("no .csv or .zip files under {}", path.display()),
        ));
    }
    Ok(out)
}

/// Timestamp (µs) of the last row of a file, read from its tail; `None` if it has no data row.
pub fn last_timestamp_us(path: &Path) -> Option<i64> {
    last_row(path).map(|(ts, _)| ts)
}

fn is_zip(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("zip"))
}

/// The time (µs) and price of a data file's last row (a kline's close), read from its end (a zip
/// archive is read through to it).
pub fn last_row(path: &Path) -> Option<(i64, rust_decimal::Decimal)> {
    use std::io::{Seek, SeekFrom};
    if is_zip(path) {
        let mut archive = zip::ZipArchive::new(File::open(path).ok()?).ok()?;
        let mut entry = archive.by_index(0).ok()?;
        // Streamed through a fixed buffer: a row longer than MAX_ROW_BYTES means no answer.
        let mut buf = vec![0u8; CHUNK];
        let (mut filled, mut last) = (0usize, Vec::new());
        loop {
            let n = entry.read(&mut buf[filled..]).ok()?;
            filled += n;
            let mut start = 0;
            while let Some(i) = memchr::memchr(b'\n', &buf[start..filled]) {
                let line = &buf[start..start + i];
                if line.first().is_some_and(u8::is_ascii_digit) {
                    last = line.to_vec();
                }
                start += i + 1;
            }
            if n == 0 {
                let rest = &buf[start..filled];
                if rest.first().is_some_and(u8::is_ascii_digit) {
                    last = rest.to_vec();
                }
                break;
            }
            if filled - start > MAX_ROW_BYTES {
                return None;
            }
            buf.copy_within(start..filled, 0);
            filled -= start;
        }
        return row_values(&last);
    }
    let mut file = File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    let start = len.saturating_sub(2 * MAX_ROW_BYTES as u64);
    file.seek(SeekFrom::Start(start)).ok()?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail).ok()?;
    let mut lines = tail.split(|b| *b == b'\n');
    if start > 0 {
        // The tail begins mid-row: that fragment is no row.
        lines.next();
    }
    let line = lines
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| l.len() <= MAX_ROW_BYTES)
        .rfind(|l| l.first().is_some_and(u8::is_ascii_digit))?;
    row_values(line)
}

/// The time (µs) and price (a kline's close) of one data row.
fn row_values(line: &[u8]) -> Option<(i64, rust_decimal::Decimal)> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut f: [&[u8]; 12] = [&[]; 12];
    let count = split_fields(line, &mut f);
    let (ts, price) = match detect(&f[..count.min(12)], count)? {
        DataFormat::Kline12 | DataFormat::Kline6 => (0, 4),
        DataFormat::Trades => (4, 1),
        DataFormat::AggTrades => (5, 1),
    };
    let price = std::str::from_utf8(f[price]).ok()?.parse().ok()?;
    Some((parse_int(f[ts]).map(ts_to_us)?, price))
}

/// Streams ticks `(ts_us, price)` from files in order, calling `on_tick` for each price seen and
/// `on_progress(bytes_done)` once per chunk.
pub struct TickReader {
    opts: ReadOptions,
    /// Format of the file being read (files may differ: 12- and 6-column klines mix fine).
    file_format: Option<DataFormat>,
    /// No non-empty line of the file read yet (only the first may be a header).
    at_first_line: bool,
    pub summary: DataSummary,
    prev_ts: Option<i64>,
    prev_id: Option<i64>,
}
impl TickReader {
    pub fn new(opts: ReadOptions) -> Self {
        TickReader {
            opts,
            file_format: None,
            at_first_line: true,
            summary: DataSummary::default(),
            prev_ts: None,
            prev_id: None,
        }
    }

    /// Read one file; the format must match earlier files.
    pub fn read_file<F, P>(
        &mut self,
        path: &Path,
        on_tick: &mut F,
        on_progress: &mut P,
    ) -> Result<(), DataError>
    where
        F: FnMut(i64, PriceKey),
        P: FnMut(u64),
    {
        let shown = path.display().to_string();
        let err = |line: u64, message: String| DataError {
            file: shown.clone(),
            line,
            message,
        };
        let file = File::open(path).map_err(|e| err(0, format!("cannot open: {e}")))?;
        if is_zip(path) {
            // Binance's archives as downloaded: the CSV inside is read as it is inflated, never
            // unpacked to disk.
            let mut archive = zip::ZipArchive::new(file)
                .map_err(|e| err(0, format!("not a readable zip archive: {e}")))?;
            let mut entry = archive
                .by_index(0)
                .map_err(|e| err(0, format!("zip archive without a CSV inside: {e}")))?;
            return self.read_stream(&mut entry, &shown, on_tick, on_progress);
        }
        let mut file = file;
        self.read_stream(&mut file, &shown, on_tick, on_progress)
    }

    /// The rows of one CSV stream (a file, or the CSV inside a zip archive).
    fn read_stream<F, P>(
        &mut self,
        file: &mut dyn Read,
        shown: &str,
        on_tick: &mut F,
        on_progress: &mut P,
    ) -> Result<(), DataError>
    where
        F: FnMut(i64, PriceKey),
        P: FnMut(u64),
    {
        let shown = shown.to_string();
        let err = |line: u64, message: String| DataError {
            file: shown.clone(),
            line,
            message,
        };
        self.summary.files.push(shown.clone());
        self.file_format = None;
        self.at_first_line = true;
        let mut buf: Vec<u8> = vec![0; CHUNK];
        let mut filled = 0usize;
        let mut line_no: u64 = 0;
        let mut done = 0u64;
        let too_long = |line: u64| {
            err(
                line,
                format!(
                    "row longer than {MAX_ROW_BYTES} bytes (a Binance row is under 200): not a \
                     market data CSV"
                ),
            )
        };
        loop {
            let n = file
                .read(&mut buf[filled..])
                .map_err(|e| err(line_no, format!("read error: {e}")))?;
            let eof = n == 0;
            filled += n;
            let mut start = 0;
            loop {
                let end = match memchr::memchr(b'\n', &buf[start..filled]) {
                    Some(i) => start + i,
                    None if eof && start < filled => filled,
                    None => break,
                };
                line_no += 1;
                if end - start > MAX_ROW_BYTES {
                    return Err(too_long(line_no));
                }
                let mut line = &buf[start..end];
                if let [rest @ .., b'\r'] = line {
                    line = rest;
                }
                start = (end + 1).min(filled);
                if !line.is_empty() {
                    if let Err(message) = self.row(line, line_no, &shown, on_tick) {
                        if self.opts.skip_bad_rows {
                            self.summary.bad_rows_skipped += 1;
                            if self.summary.first_bad_rows.len() < MAX_LISTED_GAPS {
                                self.summary
                                    .first_bad_rows
                                    .push(format!("{shown}:{line_no}: {message}"));
                            }
                        } else {
                            return Err(err(line_no, message));
                        }
                    }
                }
                if end == filled {
                    break;
                }
            }
            // What is left is a row still without its end: never more than one row's worth
            // (the buffer never grows).
            if filled - start > MAX_ROW_BYTES {
                return Err(too_long(line_no + 1));
            }
            done += start as u64;
            on_progress(done);
            buf.copy_within(start..filled, 0);
            filled -= start;
            if eof {
                break;
            }
        }
        if self.file_format.is_none() {
            return Err(err(
                line_no,
                if line_no == 0 {
                    "empty file: no data rows".to_string()
                } else {
                    "no data rows (text only): not a Binance trades, aggTrades or klines file"
                        .to_string()
                },
            ));
        }
        Ok(())
    }

    #[inline]
    fn row<F: FnMut(i64, PriceKey)>(
        &mut self,
        line: &[u8],
        line_no: u64,
        file: &str,
        on_tick: &mut F,
    ) -> Result<(), String> {
        // Trades are the bulk of any long backtest: one pass over the row, no field table.
        // Anything it does not accept goes through the general path for a precise message.
        let fast = match self.file_format {
            Some(DataFormat::Trades) => fast_trade(line),
            Some(DataFormat::AggTrades) => fast_agg(line),
            _ => None,
        };
        if let Some((id, price, ts)) = fast {
            if self.check_time(ts, line_no, file, Some(id))? {
                self.summary.rows += 1;
                on_tick(ts, price);
            }
            return Ok(());
        }
        if let Some(fmt @ (DataFormat::Kline12 | DataFormat::Kline6)) = self.file_format {
            let cols = if fmt == DataFormat::Kline12 { 12 } else { 6 };
            if let Some((open_time, ohlc, close_time)) = fast_kline(line, cols) {
                return self.bar(fmt, open_time, ohlc, close_time, line_no, file, on_tick);
            }
        }
        let mut f: [&[u8]; 12] = [&[]; 12];
        let count = split_fields(line, &mut f);
        let first_line = std::mem::replace(&mut self.at_first_line, false);
        let format = match self.file_format {
            Some(fmt) => fmt,
            None => {
                if !f[0].first().is_some_and(u8::is_ascii_digit) {
                    // A header row (first field is a name, not a number); a quote file's says so.
                    if line
                        .windows(b"best_bid".len())
                        .any(|w| w.eq_ignore_ascii_case(b"best_bid"))
                    {
                        return Err("a bookTicker file (best bid/ask quotes), not trades or \
                                    klines: backtests read Binance trades, aggTrades or klines"
                            .to_string());
                    }
                    // Only a file's first line may be a header, and only column names.
                    if first_line && row_check::is_header(line) {
                        return Ok(());
                    }
                    return Err(format!(
                        "{} is neither a header (column names, first line only) nor a data row",
                        String::from_utf8_lossy(&line[..line.len().min(80)]).escape_debug()
                    ));
                }
                let fmt = detect(&f[..count.min(12)], count).ok_or_else(|| {
                    format!(
                        "cannot tell the format of a row with {count} columns{}",
                        misfit_hint(&f[..count.min(12)], count)
                    )
                })?;
                self.file_format = Some(fmt);
                self.summary.format.get_or_insert(fmt);
                fmt
            }
        };
        let price = |b: &[u8], name: &str| {
            PriceKey::parse_ascii(b).ok_or_else(|| {
                format!(
                    "{name} {:?} is not a positive decimal",
                    String::from_utf8_lossy(b)
                )
            })
        };
        match format {
            DataFormat::Kline12 | DataFormat::Kline6 => {
                let want = if format == DataFormat::Kline12 { 12 } else { 6 };
                if count != want {
                    if line_no == 1 && !f[0].first().is_some_and(u8::is_ascii_digit) {
                        return Ok(());
                    }
                    return Err(format!("expected {want} columns, got {count}"));
                }
                let Some(open_time) = parse_int(f[0]) else {
                    if line_no == 1 {
                        return Ok(());
                    }
                    return Err(format!(
                        "open_time {:?} is not an integer",
                        String::from_utf8_lossy(f[0])
                    ));
                };
                let ohlc = [
                    price(f[1], "open")?,
                    price(f[2], "high")?,
                    price(f[3], "low")?,
                    price(f[4], "close")?,
                ];
                row_check::kline_columns(&f, count)?;
                let close_time = (format == DataFormat::Kline12).then(|| f[6]);
                self.bar(format, open_time, ohlc, close_time, line_no, file, on_tick)?;
            }
            DataFormat::Trades | DataFormat::AggTrades => {
                let (time_ix, min, max) = if format == DataFormat::Trades {
                    (4, 6, 7)
                } else {
                    (5, 7, 8)
                };
                if count < min || count > max {
                    if line_no == 1 && !f[0].first().is_some_and(u8::is_ascii_digit) {
                        return Ok(());
                    }
                    return Err(format!("expected {min} to {max} columns, got {count}"));
                }
                let Some(id) = parse_int(f[0]) else {
                    if line_no == 1 {
                        return Ok(());
                    }
                    return Err(format!(
                        "id {:?} is not an integer",
                        String::from_utf8_lossy(f[0])
                    ));
                };
                let ts = parse_int(f[time_ix]).map(ts_to_us).ok_or_else(|| {
                    format!(
                        "time {:?} is not an integer",
                        String::from_utf8_lossy(f[time_ix])
                    )
                })?;
                let p = price(f[1], "price")?;
                if format == DataFormat::Trades {
                    row_check::trade_columns(&f, count)?;
                } else {
                    row_check::agg_trade_columns(&f, count)?;
                }
                if !self.check_time(ts, line_no, file, Some(id))? {
                    return Ok(());
                }
                self.summary.rows += 1;
                on_tick(ts, p);
            }
        }
        Ok(())
    }

    /// One kline: checked, timed, and walked as four prices (GRID.md: open, then the extreme
    /// nearer the open's side, the other extreme, close).
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn bar<F: FnMut(i64, PriceKey)>(
        &mut self,
        format: DataFormat,
        open_time: i64,
        [o, h, l, c]: [PriceKey; 4],
        close_time: Option<&[u8]>,
        line_no: u64,
        file: &str,
        on_tick: &mut F,
    ) -> Result<(), String> {
        let ts = ts_to_us(open_time);
        if l > o || l > c || h < o || h < c || l > h {
            return Err("bar violates low <= open, close <= high".into());
        }
        if format == DataFormat::Kline12 && self.summary.interval_us.is_none() {
            if let Some(close) = close_time.and_then(parse_int) {
                // close_time is the bar's last millisecond (or microsecond).
                let unit = if close < MICROS_THRESHOLD { 1000 } else { 1 };
                self.summary.interval_us =
                    Some(ts_to_us(close).saturating_sub(ts).saturating_add(unit));
            }
        }
        if !self.check_time(ts, line_no, file, None)? {
            return Ok(());
        }
        self.summary.rows += 1;
        on_tick(ts, o);
        if c >= o {
            on_tick(ts, l);
            on_tick(ts, h);
        } else {
            on_tick(ts, h);
            on_tick(ts, l);
        }
        on_tick(ts, c);
        Ok(())
    }

    #[inline]
    fn in_window(&self, ts: i64) -> bool {
        self.opts.from_us.is_none_or(|f| ts >= f) && self.opts.to_us.is_none_or(|t| ts < t)
    }

    /// Time never goes back; gaps are recorded. Returns whether `ts` is inside the window.
    #[inline]
    fn check_time(
        &mut self,
        ts: i64,
        line: u64,
        file: &str,
        id: Option<i64>,
    ) -> Result<bool, String> {
        if let Some(prev) = self.prev_ts {
            if ts < prev {
                return Err(format!("time goes backwards ({ts} µs after {prev} µs)"));
            }
            let missing = match id {
                Some(id) => match self.prev_id {
                    Some(p) if id > p.saturating_add(1) => (id - p - 1) as u64,
                    Some(p) if id <= p => {
                        return Err(format!("id {id} does not increase (previous {p})"))
                    }
                    _ => 0,
                },
                None => {
                    let interval = match self.summary.interval_us {
                        Some(i) if i > 0 => i,
                        _ => {
                            // 6-column files: the first step between bars is the interval.
                            let step = ts - prev;
                            self.summary.interval_us = Some(step);
                            step
                        }
                    };
                    if interval > 0 && ts - prev > interval {
                        ((ts - prev) / interval - 1) as u64
                    } else {
                        0
                    }
                }
            };
            if missing > 0 {
                self.summary.gaps += 1;
                self.summary.missing += missing;
                if self.summary.gap_list.len() < MAX_LISTED_GAPS {
                    self.summary.gap_list.push(Gap {
                        file: file.to_string(),
                        line,
                        from_us: prev,
                        to_us: ts,
                        missing,
                    });
                }
            }
        }
        let inside = self.in_window(ts);
        if inside {
            self.summary.first_ts_us.get_or_insert(ts);
            self.summary.last_ts_us = Some(ts);
        }
        self.prev_ts = Some(ts);
        if id.is_some() {
            self.prev_id = id;
        }
        Ok(inside)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn read(
        text: &str,
        opts: ReadOptions,
    ) -> (Result<(), DataError>, Vec<(i64, PriceKey)>, DataSummary) {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        let mut ticks = Vec::new();
        let mut r = TickReader::new(opts);
        let res = r.read_file(f.path(), &mut |t, p| ticks.push((t, p)), &mut |_| {});
        (res, ticks, r.summary)
    }

    fn k(s: &str) -> PriceKey {
        PriceKey::parse_ascii(s.as_bytes()).unwrap()
    }

    #[test]
    fn kline_path_order_follows_bar_direction() {
        let text = "open_time,open,high,low,close,volume\n\
                    1000,10,12,9,11,1\n\
                    61000,11,12,8,9,1\n";
        let (res, ticks, s) = read(text, ReadOptions::default());
        res.unwrap();
        let prices: Vec<PriceKey> = ticks.iter().map(|t| t.1).collect();
        assert_eq!(
            prices,
            [
                k("10"),
                k("9"),
                k("12"),
                k("11"),
                k("11"),
                k("12"),
                k("8"),
                k("9")
            ]
        );
        assert_eq!(s.format, Some(DataFormat::Kline6));
        assert_eq!(ticks[0].0, 1_000_000, "ms become µs");
    }

    #[test]
    fn micro_timestamps_and_trade_gaps() {
        let text = "1,100.5,1,100.5,1735689600000000,true,true\n\
                    2,101,1,101,1735689600000100,false,true\n\
                    5,99,1,99,1735689600000200,false,true\n";
        let (res, ticks, s) = read(text, ReadOptions::default());
        res.unwrap();
        assert_eq!(s.format, Some(DataFormat::Trades));
        assert_eq!(ticks[0].0, 1_735_689_600_000_000);
        assert_eq!((s.gaps, s.missing), (1, 2));
    }

    #[test]
    fn agg_trades_take_the_fast_path_with_the_same_ticks() {
        // Binance's aggTrades layout, 8 and 7 columns, ms and µs.
        let row8 = b"3312960001,118000.12,0.00100000,4800000001,4800000003,1754006400123,true,true";
        let row7 = b"3312960002,117999.5,0.5,4800000004,4800000004,1754006400123456,false";
        assert_eq!(
            fast_agg(row8),
            Some((3_312_960_001, k("118000.12"), 1_754_006_400_123_000))
        );
        assert_eq!(
            fast_agg(row7),
            Some((3_312_960_002, k("117999.5"), 1_754_006_400_123_456))
        );
        // Anything else goes to the general path (which names the problem).
        assert_eq!(fast_agg(b"1,2,3,4,5,6,maybe"), None);
        assert_eq!(fast_agg(b"1,2,3"), None);
        let text = "3312960001,118000.12,0.001,4800000001,4800000003,1754006400123,true,true\n\
                    3312960002,117999.5,0.5,4800000004,4800000004,1754006400124,false,true\n";
        let (res, ticks, s) = read(text, ReadOptions::default());
        res.unwrap();
        assert_eq!(s.format, Some(DataFormat::AggTrades));
        assert_eq!(
            ticks,
            vec![
                (1_754_006_400_123_000, k("118000.12")),
                (1_754_006_400_124_000, k("117999.5"))
            ]
        );
    }

    #[test]
    fn klines_take_the_fast_path_with_the_same_ticks_and_errors() {
        let row12 = b"1754006400000,118000.12,118010,117990.5,118005.01,12.5,1754006459999,1475000.1,120,6.1,720000.2,0";
        let row6 = b"1754006400000000,118000.12,118010,117990.5,118005.01,12.5";
        let ohlc = [k("118000.12"), k("118010"), k("117990.5"), k("118005.01")];
        assert_eq!(
            fast_kline(row12, 12),
            Some((1_754_006_400_000, ohlc, Some(&b"1754006459999"[..])))
        );
        assert_eq!(
            fast_kline(row6, 6),
            Some((1_754_006_400_000_000, ohlc, None))
        );
        assert_eq!(
            fast_kline(row6, 12),
            None,
            "a 6-column row is not a 12-column one"
        );
        assert_eq!(fast_kline(b"1,2,x,4,5,6", 6), None);
        // Header, then rows on the fast path: ticks, interval, gaps and errors as the general
        // path gives them (the first data row goes the general way, the rest the fast way).
        let text = "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore\n\
                    1754006400000,10,12,9,11,1,1754006459999,1,1,1,1,0\n\
                    1754006460000,11,12,8,9,1,1754006519999,1,1,1,1,0\n\
                    1754006580000,9,9.5,8.5,9.25,1,1754006639999,1,1,1,1,0\n\
                    1754006640000,9,abc,8,9,1,1754006699999,1,1,1,1,0\n\
                    1754006700000,9,8,10,9,1,1754006759999,1,1,1,1,0\n";
        let (res, _, _) = read(text, ReadOptions::default());
        let e = res.unwrap_err();
        assert_eq!(e.line, 5);
        assert!(
            e.message.contains("high \"abc\" is not a positive decimal"),
            "{e}"
        );
        let (res, ticks, s) = read(
            text,
            ReadOptions {
                skip_bad_rows: true,
                ..Default::default()
            },
        );
        res.unwrap();
        assert_eq!(s.format, Some(DataFormat::Kline12));
        assert_eq!(s.interval_us, Some(60_000_000));
        assert_eq!((s.rows, s.bad_rows_skipped), (3, 2));
        assert!(
            s.first_bad_rows[1].contains(":6: bar violates"),
            "{:?}",
            s.first_bad_rows
        );
        assert_eq!((s.gaps, s.missing), (1, 1));
        let prices: Vec<PriceKey> = ticks.iter().map(|t| t.1).collect();
        assert_eq!(
            prices,
            ["10", "9", "12", "11", "11", "12", "8", "9", "9", "8.5", "9.5", "9.25"].map(k)
        );
        assert_eq!(ticks[4].0, 1_754_006_460_000_000);
    }

    #[test]
    fn kline_gaps_reported() {
        let text = "0,1,1,1,1,1\n60000,1,1,1,1,1\n240000,1,1,1,1,1\n";
        let (_, _, s) = read(text, ReadOptions::default());
        assert_eq!((s.gaps, s.missing), (1, 2));
    }

    #[test]
    fn bad_row_names_line_unless_skipped() {
        let text =
            "1,100,1,100,1000,true,true\n2,abc,1,100,2000,true,true\n3,101,1,101,3000,true,true\n";
        let (res, _, _) = read(text, ReadOptions::default());
        let e = res.unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("price \"abc\""), "{e}");
        let (res, ticks, s) = read(
            text,
            ReadOptions {
                skip_bad_rows: true,
                ..Default::default()
            },
        );
        res.unwrap();
        assert_eq!(ticks.len(), 2);
        assert_eq!(s.bad_rows_skipped, 1);
    }

    #[test]
    fn agg_trades_and_window() {
        let text = "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker,is_best_match\n\
                    10,50,1,1,1,1000,true,true\n11,51,1,2,2,2000,true,true\n12,52,1,3,3,3000,true,true\n";
        let (res, ticks, s) = read(
            text,
            ReadOptions {
                from_us: Some(2_000_000),
                to_us: Some(3_000_000),
                ..Default::default()
            },
        );
        res.unwrap();
        assert_eq!(s.format, Some(DataFormat::AggTrades));
        assert_eq!(ticks, [(2_000_000, k("51"))]);
    }

    #[test]
    fn backwards_time_is_an_error() {
        let (res, _, _) = read(
            "1,1,1,1,2000,true,true\n2,1,1,1,1000,true,true\n",
            ReadOptions::default(),
        );
        assert!(res.unwrap_err().message.contains("backwards"));
    }
}

/// Random bytes and damaged rows through the reader (a bounded proptest, run with the tests).
#[cfg(test)]
#[path = "data_fuzz.rs"]
mod fuzz;
