//! Human tables and stable JSON; the only place that decides how results look.

use rust_decimal::{Decimal, RoundingStrategy};
use serde::Serialize;

use super::CliError;

/// Print `value` as pretty JSON on stdout.
pub fn print_json<T: Serialize>(value: &T) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| CliError::runtime(format!("cannot encode JSON output: {e}")))?;
    println!("{text}");
    Ok(())
}

/// A plain left-aligned text table; columns size to their widest cell.
pub fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<width$}", width = widths.get(i).copied().unwrap_or(0)))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(headers.iter().map(|h| h.to_string()).collect());
    for row in rows {
        line(row.clone());
    }
}

/// `1, 2, 3` or `none`.
pub fn id_list(ids: &[i64]) -> String {
    if ids.is_empty() {
        "none".into()
    } else {
        ids.iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

use crate::model::operator_text::{
    acts_on_terminal, checked_text, OperatorTextError, MAX_REASON_CHARS,
};

/// An operator's `--reason`: trimmed, not empty, at most [`MAX_REASON_CHARS`] characters.
pub fn checked_reason(reason: &str) -> Result<&str, CliError> {
    checked_text(reason, MAX_REASON_CHARS).map_err(|e| match e {
        OperatorTextError::Empty => CliError::invalid("--reason must not be empty"),
        OperatorTextError::TooLong(n) => CliError::invalid(format!(
            "--reason has {n} characters; at most {MAX_REASON_CHARS}"
        )),
    })
}

/// Free text from outside the program (reasons, risk event messages, a node's revert reason,
/// echoed keys) as it may be shown in text output: every character a terminal would act on,
/// line breaks included, written as an escape (`\u{1b}`), so it can neither forge rows nor
/// move the cursor. JSON output keeps the text exact.
pub fn shown(text: &str) -> String {
    if !text.chars().any(acts_on_terminal) {
        return text.to_string();
    }
    text.chars()
        .map(|c| {
            if acts_on_terminal(c) {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// [`shown`] for a message of several lines: line breaks are kept, everything else escaped.
pub fn shown_lines(text: &str) -> String {
    text.split('\n').map(shown).collect::<Vec<_>>().join("\n")
}

/// Decimal places an amount of `asset` is shown with in text: cents for dollar stablecoins,
/// satoshis for bitcoin, six for the rest. `--json` keeps every digit.
pub fn money_dp(asset: &str) -> u32 {
    match asset.to_ascii_uppercase().as_str() {
        "USDT" | "USDC" | "BUSD" | "FDUSD" | "TUSD" | "DAI" | "USD" => 2,
        "BTC" | "BTCB" => 8,
        _ => 6,
    }
}

/// A JSON money string (full precision) as text at `asset`'s precision; `-` for null.
pub fn money(value: &serde_json::Value, asset: &str) -> String {
    match value {
        serde_json::Value::String(s) => match s.parse::<Decimal>() {
            Ok(d) => {
                let dp = money_dp(asset);
                let mut r = d.round_dp_with_strategy(dp, RoundingStrategy::MidpointNearestEven);
                r.rescale(dp);
                if r.is_zero() {
                    r.set_sign_positive(true);
                }
                r.to_string()
            }
            Err(_) => s.clone(),
        },
        serde_json::Value::Null => "-".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_controls_are_shown_escaped() {
        let forged = "drill\u{1b}[2J\u{1b}[H\nkill switch not engaged\u{202e}";
        let text = shown(forged);
        assert!(!text.chars().any(acts_on_terminal), "{text}");
        assert!(text.contains("\\u{1b}[2J"), "{text}");
        assert_eq!(shown("plain reason"), "plain reason");
        assert_eq!(shown_lines("a\nb\u{7}"), "a\nb\\u{7}");
        assert!(checked_reason(&"x".repeat(501)).is_err());
        assert!(checked_reason("  ").is_err());
        assert_eq!(checked_reason(" ok ").ok(), Some("ok"));
    }

    #[test]
    fn money_is_shown_at_the_asset_precision() {
        let long = serde_json::json!("-12.345678901234567890123456789");
        assert_eq!(money(&long, "USDT"), "-12.35");
        assert_eq!(money(&long, "BTC"), "-12.34567890");
        assert_eq!(money(&long, "BNB"), "-12.345679");
        assert_eq!(money(&serde_json::json!("5"), "USDT"), "5.00");
        assert_eq!(money(&serde_json::json!("-0.001"), "USDT"), "0.00");
        assert_eq!(money(&serde_json::Value::Null, "USDT"), "-");
    }
}
