//! The Binance spot markets bsc-bot knows how to price (a shipped snapshot of commonly traded
//! pairs, extended by `market.extra_markets`): a paper strategy on anything else would wait for a
//! price that never comes, so it is refused when created.

use crate::model::Symbol;

const SHIPPED: &str = include_str!("binance_spot_markets.txt");

/// The shipped list, as symbols.
pub fn shipped() -> impl Iterator<Item = Symbol> {
    SHIPPED
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.parse().ok())
}

/// Whether `symbol` is a Binance spot market bsc-bot knows (shipped, or named in `extra`).
pub fn is_known(symbol: &Symbol, extra: &[String]) -> bool {
    shipped().any(|s| &s == symbol)
        || extra
            .iter()
            .filter_map(|e| e.parse::<Symbol>().ok())
            .any(|s| &s == symbol)
}

/// Up to three known markets closest to `symbol` (same base, or same quote), for the error.
pub fn suggestions(symbol: &Symbol) -> Vec<String> {
    let mut same_base: Vec<String> = shipped()
        .filter(|s| s.base() == symbol.base())
        .map(|s| s.to_string())
        .collect();
    same_base.truncate(3);
    same_base
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_list_parses_and_knows_the_majors() {
        let all: Vec<Symbol> = shipped().collect();
        assert!(all.len() > 200, "{}", all.len());
        let btc: Symbol = "btc/usdt".parse().unwrap_or_else(|_| unreachable!());
        assert!(is_known(&btc, &[]));
        let foo: Symbol = "FOO/BAR".parse().unwrap_or_else(|_| unreachable!());
        assert!(!is_known(&foo, &[]));
        assert!(is_known(&foo, &["foo/bar".to_string()]));
    }
}
