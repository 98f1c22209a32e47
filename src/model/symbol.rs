//! `BASE/QUOTE` trading pairs, the one spelling operators type and the database stores.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A trading pair such as `BTC/USDT`. Kept upper-case so `btc/usdt` and `BTC/USDT` are one pair.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Symbol {
    base: String,
    quote: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("symbol {input:?} is not BASE/QUOTE (for example BTC/USDT): {why}")]
pub struct SymbolError {
    pub input: String,
    pub why: &'static str,
}

impl Symbol {
    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn quote(&self) -> &str {
        &self.quote
    }

    /// Binance stream spelling (`btcusdt`), used to subscribe and to map frames back.
    pub fn binance_stream_name(&self) -> String {
        format!("{}{}", self.base, self.quote).to_ascii_lowercase()
    }
}

impl FromStr for Symbol {
    type Err = SymbolError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |why| SymbolError {
            input: input.to_string(),
            why,
        };
        let (base, quote) = input.split_once('/').ok_or_else(|| err("missing '/'"))?;
        let valid = |part: &str| {
            !part.is_empty() && part.len() <= 16 && part.chars().all(|c| c.is_ascii_alphanumeric())
        };
        if !valid(base) || !valid(quote) {
            return Err(err(
                "both sides must be 1 to 16 letters or digits, with exactly one '/'",
            ));
        }
        if base.eq_ignore_ascii_case(quote) {
            return Err(err("base and quote must differ"));
        }
        Ok(Symbol {
            base: base.to_ascii_uppercase(),
            quote: quote.to_ascii_uppercase(),
        })
    }
}

impl TryFrom<String> for Symbol {
    type Error = SymbolError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<Symbol> for String {
    fn from(value: Symbol) -> Self {
        value.to_string()
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.base, self.quote)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises_case() {
        let s: Symbol = "btc/usdt".parse().unwrap();
        assert_eq!(s.to_string(), "BTC/USDT");
        assert_eq!(s.binance_stream_name(), "btcusdt");
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "BTCUSDT",
            "BTC/",
            "/USDT",
            "BTC/USDT/X",
            "BT C/USDT",
            "BTC/btc",
            "",
        ] {
            assert!(bad.parse::<Symbol>().is_err(), "{bad} should be rejected");
        }
    }
}
