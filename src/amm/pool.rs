//! A constant-product pool as the fill models see it: its depth at any price, and its gas.

use rust_decimal::{Decimal, MathematicalOps};

/// Price of `base` in `quote` from a pair's reserves (`None` for an empty pool).
pub fn reserves_price(base_reserve: Decimal, quote_reserve: Decimal) -> Option<Decimal> {
    (base_reserve > Decimal::ZERO).then(|| quote_reserve / base_reserve)
}

/// A Uniswap-V2-style pool for fills: its depth, and the gas each swap pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AmmPool {
    /// √(base reserve × quote reserve): constant as the price moves, so a pool "at" any trigger
    /// price has reserves `L/√P` base and `L·√P` quote.
    pub liquidity: Decimal,
    /// Gas of one swap, in quote (gas units × gas price × BNB price).
    pub gas_quote: Decimal,
}

impl AmmPool {
    /// A pool given by its reserves (`--pool-reserves BASE:QUOTE`).
    pub fn from_reserves(base: Decimal, quote: Decimal, gas_quote: Decimal) -> Option<AmmPool> {
        (base > Decimal::ZERO && quote > Decimal::ZERO).then(|| AmmPool {
            liquidity: (base * quote).sqrt().unwrap_or_default(),
            gas_quote,
        })
    }

    /// What one swap's gas costs in quote: `units` of gas at `gas_price_gwei`, paid in BNB
    /// worth `bnb_price` quote (`--gas-units`, `--gas-price-gwei`, `--bnb-price`).
    pub fn gas_quote_of(units: u64, gas_price_gwei: Decimal, bnb_price: Decimal) -> Decimal {
        Decimal::from(units) * gas_price_gwei * bnb_price / Decimal::from(1_000_000_000u64)
    }

    /// The reserves `(base, quote)` of this pool when its price is `price`, to token units
    /// (18 decimals).
    pub fn reserves_at(&self, price: Decimal) -> (Decimal, Decimal) {
        let root = price.sqrt().unwrap_or_default();
        if root.is_zero() {
            return (Decimal::ZERO, Decimal::ZERO);
        }
        (
            (self.liquidity / root).round_dp(18),
            (self.liquidity * root).round_dp(18),
        )
    }
}
