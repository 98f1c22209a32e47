//! The row reader against hostile input: random bytes, damaged rows, huge lines. It never
//! panics, never buffers more than a row's worth, and names the file and line of what it
//! refuses.

use std::io::Cursor;

use proptest::prelude::*;

use super::*;

/// Read `bytes` as the file `fuzz.csv`; the prices delivered, or the error.
fn read_bytes(bytes: &[u8], skip_bad_rows: bool) -> (Result<(), DataError>, usize, DataSummary) {
    let mut r = TickReader::new(ReadOptions {
        skip_bad_rows,
        ..ReadOptions::default()
    });
    let mut ticks = 0usize;
    let res = r.read_stream(
        &mut Cursor::new(bytes),
        "fuzz.csv",
        &mut |_, _| ticks += 1,
        &mut |_| {},
    );
    (res, ticks, r.summary)
}

const TRADES: &str = "1,100.5,0.25,25.125,1700000000000,true,true\n\
                      2,100.6,0.10,10.06,1700000000100,false,true\n\
                      3,100.7,1.00,100.7,1700000000200,true,true\n";

/// One column of the second row replaced by damage the old reader let pass.
fn damaged(column: usize, with: &str) -> String {
    let mut lines: Vec<String> = TRADES.lines().map(str::to_string).collect();
    let mut cols: Vec<&str> = lines[1].split(',').collect();
    cols[column] = with;
    lines[1] = cols.join(",");
    lines.join("\n") + "\n"
}

#[test]
fn damage_in_any_column_is_a_bad_row_named_by_line() {
    let (ok, ticks, _) = read_bytes(TRADES.as_bytes(), false);
    ok.unwrap();
    assert_eq!(ticks, 3);
    for (column, with) in [
        (2, "nan"),
        (2, "-1"),
        (3, "1e5"),
        (5, "TRUE"),
        (6, "yes"),
        (2, "\u{fffd}"),
    ] {
        let text = damaged(column, with);
        let (res, _, _) = read_bytes(text.as_bytes(), false);
        let e = res.unwrap_err();
        assert_eq!(
            (e.file.as_str(), e.line),
            ("fuzz.csv", 2),
            "{column} {with}: {e}"
        );
        let (res, ticks, summary) = read_bytes(text.as_bytes(), true);
        res.unwrap();
        assert_eq!((ticks, summary.bad_rows_skipped), (2, 1), "{column} {with}");
    }
    // Non-UTF-8 bytes in an unused column.
    let mut bytes = TRADES.as_bytes().to_vec();
    let at = TRADES.find("0.10").unwrap();
    bytes[at] = 0xff;
    assert_eq!(read_bytes(&bytes, false).0.unwrap_err().line, 2);
}

#[test]
fn only_a_first_line_of_column_names_is_a_header() {
    let header = format!("id,price,qty,quote_qty,time,is_buyer_maker,is_best_match\n{TRADES}");
    read_bytes(header.as_bytes(), false).0.unwrap();
    let garbage = format!("\u{1}\u{7f}#$%&\n{TRADES}");
    let e = read_bytes(garbage.as_bytes(), false).0.unwrap_err();
    assert_eq!(e.line, 1, "{e}");
    let late = format!("{TRADES}id,price\n");
    assert_eq!(read_bytes(late.as_bytes(), false).0.unwrap_err().line, 4);
    let text = read_bytes(b"hello\nworld\n", false).0.unwrap_err();
    assert_eq!(text.line, 2, "{text}");
    assert!(text.message.contains("neither a header"), "{text}");
    let header_only = read_bytes(b"id,price\n", false).0.unwrap_err();
    assert!(
        header_only.message.contains("no data rows"),
        "{header_only}"
    );
    let empty = read_bytes(b"", false).0.unwrap_err();
    assert!(empty.message.contains("empty file"), "{empty}");
}

#[test]
fn a_huge_line_is_refused_with_its_line_and_a_bounded_buffer() {
    // 8 MiB without a newline after two good rows.
    let mut bytes = TRADES.as_bytes()[..TRADES.find("3,").unwrap()].to_vec();
    bytes.extend(std::iter::repeat_n(b'1', 8 << 20));
    let e = read_bytes(&bytes, true).0.unwrap_err();
    assert_eq!(e.line, 3, "{e}");
    assert!(e.message.contains("longer than 65536 bytes"), "{e}");
    // A long line that does end, among good rows, is refused too.
    let mut bytes = TRADES.as_bytes().to_vec();
    bytes.extend(std::iter::repeat_n(b'9', MAX_ROW_BYTES + 1));
    bytes.push(b'\n');
    assert_eq!(read_bytes(&bytes, true).0.unwrap_err().line, 4);
}

#[test]
fn overflowing_numbers_are_bad_rows_not_panics() {
    for row in [
        "9999999999999999999,1,1,1,1,true,true\n",
        "9223372036854775807,1,1,1,1,true,true\n9223372036854775807,1,1,1,2,true,true\n",
        "0,1,1,1,1,1,9223372036854775807,1,1,1,1,0\n0,1,1,1,1,1,9223372036854775807,1,1,1,1,0\n",
    ] {
        let _ = read_bytes(row.as_bytes(), false);
        let _ = read_bytes(row.as_bytes(), true);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    /// Random bytes: an answer (rows or an error naming the file), never a panic.
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        for skip in [false, true] {
            if let (Err(e), _, _) = read_bytes(&bytes, skip) {
                prop_assert_eq!(e.file.as_str(), "fuzz.csv");
            }
        }
    }

    /// Sound rows with one byte changed anywhere: read or refused with a line, never a panic;
    /// a row that is read has every column sound.
    #[test]
    fn one_changed_byte_never_panics(at in 0..TRADES.len(), byte in any::<u8>()) {
        let mut bytes = TRADES.as_bytes().to_vec();
        bytes[at] = byte;
        match read_bytes(&bytes, false).0 {
            Ok(()) => {}
            Err(e) => prop_assert!(e.line >= 1 && e.line <= 4, "{}", e),
        }
    }
}

#[test]
fn generated_rows_take_the_fast_paths() {
    let agg = b"3312960000,99995.84,0.00026031,4800000000,4800000000,1735689600000,false,true";
    assert!(fast_agg(agg).is_some());
    let trade = b"1,100.5,0.25,25.125,1700000000000,true,true";
    assert!(fast_trade(trade).is_some());
    let k12 = b"1735689600000,100000.00,100003.82,99992.67,100003.82,0.00342650,1735689659999,3.00342650,56,0.00171325,0.00114216,0";
    assert!(fast_kline(k12, 12).is_some());
    let k6 = b"1735689600000,100000.00,100003.82,99992.67,100003.82,0.00342650";
    assert!(fast_kline(k6, 6).is_some());
}
