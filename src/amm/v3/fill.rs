//! The V3 fill model of backtests and paper: a grid order is an exact-input swap through a pool
//! with the liquidity profile read from the chain (or a file), at the price of the moment, in
//! the pool's own integer arithmetic — what a live swap on that pool receives.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::pool::{V3Pool, V3PoolError};
use super::price::{price_from_sqrt_x96, sqrt_x96_from_price};
use crate::amm::units::{from_units, to_units};
use crate::model::order::Side;

/// A V3 pool's liquidity profile and how its tokens map to a market.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct V3Profile {
    pub fee: u32,
    pub tick_spacing: i32,
    /// Where the profile was read: the pool's square-root price (decimal string), tick and
    /// in-range liquidity then. Moving to any price follows the ticks from there.
    pub sqrt_price_x96: String,
    pub tick: i32,
    pub liquidity: String,
    /// Initialized ticks with their `liquidityNet` (decimal strings).
    pub ticks: Vec<(i32, String)>,
    /// The tick-bitmap words read, inclusive: a swap past them is refused, never guessed.
    pub known_words: (i32, i32),
    pub base_is_token0: bool,
    pub base_decimals: u8,
    pub quote_decimals: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum V3FillError {
    #[error("{0}")]
    Pool(#[from] V3PoolError),
    #[error("V3 profile: {0}")]
    Profile(String),
    #[error("price {0} is outside the pool's range")]
    Price(Decimal),
    #[error("amount: {0}")]
    Units(String),
    /// The swap would pay less than its bound: on chain it reverts and the pool stays.
    #[error("the swap would pay {got}, below its bound {min}: it reverts on chain")]
    BelowBound { got: Decimal, min: Decimal },
}

impl V3Profile {
    /// The profile of `pool` for a market whose base is token0 or not.
    pub fn of(
        pool: &V3Pool,
        base_is_token0: bool,
        base_decimals: u8,
        quote_decimals: u8,
    ) -> V3Profile {
        V3Profile {
            fee: pool.fee,
            tick_spacing: pool.tick_spacing,
            sqrt_price_x96: pool.sqrt_price_x96.to_string(),
            tick: pool.tick,
            liquidity: pool.liquidity.to_string(),
            ticks: pool
                .ticks
                .iter()
                .map(|(t, n)| (*t, n.to_string()))
                .collect(),
            known_words: pool.known_words,
            base_is_token0,
            base_decimals,
            quote_decimals,
        }
    }

    /// The pool the profile describes.
    pub fn pool(&self) -> Result<V3Pool, V3FillError> {
        let bad = |what: &str| V3FillError::Profile(format!("{what} is not a number"));
        if super::tick_spacing_of(self.fee) != Some(self.tick_spacing) {
            return Err(V3FillError::Profile(format!(
                "fee {} with tick spacing {} is not a PancakeSwap V3 fee tier",
                self.fee, self.tick_spacing
            )));
        }
        let mut ticks = std::collections::BTreeMap::new();
        for (t, net) in &self.ticks {
            ticks.insert(
                *t,
                net.parse::<i128>()
                    .map_err(|_| bad("a tick's liquidityNet"))?,
            );
        }
        Ok(V3Pool {
            fee: self.fee,
            tick_spacing: self.tick_spacing,
            sqrt_price_x96: self
                .sqrt_price_x96
                .parse()
                .map_err(|_| bad("sqrt_price_x96"))?,
            tick: self.tick,
            liquidity: self.liquidity.parse().map_err(|_| bad("liquidity"))?,
            ticks,
            known_words: self.known_words,
        })
    }
}

/// One modelled swap: what moved and what it cost, in decimals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct V3Fill {
    pub base: Decimal,
    pub quote: Decimal,
    /// The pool fee in quote (a sell's fee is paid in base: at the mid price).
    pub fee: Decimal,
    /// How much worse than the mid price the swap filled, before the fee, in quote.
    pub impact: Decimal,
    pub ticks_crossed: u32,
}

/// A V3 pool moved along a price path, swapping as orders come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V3FillModel {
    pub profile: V3Profile,
    pool: V3Pool,
    /// Gas of one swap, in quote (charged beside the amounts, as live swaps pay it in BNB).
    pub gas_quote: Decimal,
    /// `dex.slippage_bps`: a swap paying less than its limit after the tier's fee and this
    /// reverts, as on chain (`None`: no bound).
    pub bound_slippage_bps: Option<u32>,
}

impl V3FillModel {
    pub fn new(profile: V3Profile, gas_quote: Decimal) -> Result<V3FillModel, V3FillError> {
        let pool = profile.pool()?;
        Ok(V3FillModel {
            profile,
            pool,
            gas_quote,
            bound_slippage_bps: None,
        })
    }

    /// Swaps carry the live bound: `amountOutMinimum` from the limit after the tier's fee, less
    /// `slippage_bps`.
    pub fn with_bound(mut self, slippage_bps: u32) -> V3FillModel {
        self.bound_slippage_bps = Some(slippage_bps);
        self
    }

    /// The pool's price now (quote per base).
    pub fn price(&self) -> Option<Decimal> {
        let p = &self.profile;
        price_from_sqrt_x96(
            self.pool.sqrt_price_x96,
            decimals0(p),
            decimals1(p),
            p.base_is_token0,
        )
    }

    /// Other traders moved the pool to `price` (the price path's next price).
    pub fn move_to(&mut self, price: Decimal) -> Result<(), V3FillError> {
        let p = &self.profile;
        let sqrt = sqrt_x96_from_price(price, decimals0(p), decimals1(p), p.base_is_token0)
            .ok_or(V3FillError::Price(price))?;
        self.pool.move_to(sqrt)?;
        Ok(())
    }

    /// An exact-input swap on the pool where it is: a buy spends `amount_in` quote, a sell sends
    /// `amount_in` base, no worse than `limit` (with the bound set). The pool moves as the swap
    /// moved it; a swap below its bound leaves it where it was.
    pub fn swap(
        &mut self,
        side: Side,
        amount_in: Decimal,
        limit: Decimal,
    ) -> Result<V3Fill, V3FillError> {
        let p = &self.profile;
        let (base_is_token0, base_decimals, quote_decimals) =
            (p.base_is_token0, p.base_decimals, p.quote_decimals);
        let mid = self.price().unwrap_or_default();
        let (in_decimals, out_decimals) = match side {
            Side::Buy => (quote_decimals, base_decimals),
            Side::Sell => (base_decimals, quote_decimals),
        };
        let zero_for_one = match side {
            Side::Buy => !base_is_token0,
            Side::Sell => base_is_token0,
        };
        let units =
            to_units(amount_in, in_decimals).map_err(|e| V3FillError::Units(e.to_string()))?;
        let outcome = self.pool.swap_exact_in(zero_for_one, units)?;
        let dec = |u, d| from_units(u, d).map_err(|e| V3FillError::Units(e.to_string()));
        let spent = dec(outcome.amount_in, in_decimals)?;
        let got = dec(outcome.amount_out, out_decimals)?;
        if let Some(slippage) = self.bound_slippage_bps {
            let min = crate::amm::swap_math::min_amount_out(
                side,
                amount_in,
                limit,
                self.pool.fee / 100,
                slippage,
            )
            .trunc_with_scale(u32::from(out_decimals));
            if got < min {
                return Err(V3FillError::BelowBound { got, min });
            }
        }
        self.pool.apply(&outcome);
        let fee_in = dec(outcome.fee_paid, in_decimals)?;
        Ok(match side {
            Side::Buy => V3Fill {
                base: got,
                quote: spent,
                fee: fee_in,
                impact: ((spent - fee_in) - got * mid).max(Decimal::ZERO),
                ticks_crossed: outcome.ticks_crossed,
            },
            Side::Sell => {
                let fee = fee_in * mid;
                V3Fill {
                    base: spent,
                    quote: got,
                    fee,
                    impact: (spent * mid - fee - got).max(Decimal::ZERO),
                    ticks_crossed: outcome.ticks_crossed,
                }
            }
        })
    }
}

fn decimals0(p: &V3Profile) -> u8 {
    if p.base_is_token0 {
        p.base_decimals
    } else {
        p.quote_decimals
    }
}

fn decimals1(p: &V3Profile) -> u8 {
    if p.base_is_token0 {
        p.quote_decimals
    } else {
        p.base_decimals
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::U256;
    use std::str::FromStr;

    fn profile() -> V3Profile {
        let l = 10i128.pow(22);
        let pool = V3Pool {
            fee: 500,
            tick_spacing: 10,
            sqrt_price_x96: super::super::tick_math::sqrt_ratio_at_tick(46_050)
                .unwrap_or(U256::ZERO),
            tick: 46_050,
            liquidity: l as u128,
            ticks: [(45_000, l), (47_000, -l)].into_iter().collect(),
            known_words: (15, 20),
        };
        V3Profile::of(&pool, true, 18, 18)
    }

    #[test]
    fn a_profile_round_trips_through_json_and_bad_ones_are_refused() {
        let p = profile();
        let text = serde_json::to_string(&p).unwrap_or_default();
        let back: V3Profile = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, p);
        assert!(back.pool().is_ok());
        let mut bad = p.clone();
        bad.fee = 300;
        assert!(bad
            .pool()
            .is_err_and(|e| e.to_string().contains("fee tier")));
        let mut bad = p;
        bad.liquidity = "lots".into();
        assert!(bad.pool().is_err());
    }

    #[test]
    fn a_swap_below_its_bound_reverts_and_leaves_the_pool() {
        let mut m = V3FillModel::new(profile(), Decimal::ZERO)
            .unwrap_or_else(|e| panic!("{e}"))
            .with_bound(50);
        m.move_to(Decimal::from(100))
            .unwrap_or_else(|e| panic!("{e}"));
        let before = m.price();
        // 2,000 quote moves this pool ~4 %, far more than 0.5 % + 5 bps: below the bound.
        let big = m.swap(Side::Buy, Decimal::from(2_000), Decimal::from(100));
        assert!(
            matches!(big, Err(V3FillError::BelowBound { .. })),
            "{big:?}"
        );
        assert_eq!(m.price(), before, "a reverted swap leaves the pool");
        // A small one fills.
        assert!(m
            .swap(Side::Buy, Decimal::from(10), Decimal::from(100))
            .is_ok());
    }

    #[test]
    fn a_round_trip_at_one_price_loses_the_fees_and_the_pool_moves_back() {
        let mut m = V3FillModel::new(profile(), Decimal::ZERO).unwrap_or_else(|e| panic!("{e}"));
        m.move_to(Decimal::from(100))
            .unwrap_or_else(|e| panic!("{e}"));
        let buy = m
            .swap(Side::Buy, Decimal::from(1_000), Decimal::from(100))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(buy.quote, Decimal::from(1_000));
        // 5 bps of 1,000, rounded up by the pool to the next wei.
        assert_eq!(
            buy.fee,
            Decimal::from_str("0.500000000000000001").unwrap_or_default()
        );
        assert!(buy.base < Decimal::from(10) && buy.impact > Decimal::ZERO);
        let sell = m
            .swap(Side::Sell, buy.base, Decimal::from(100))
            .unwrap_or_else(|e| panic!("{e}"));
        // 5 bps each way, and rounding in the pool's favour.
        assert!(sell.quote < Decimal::from(1_000) && sell.quote > Decimal::from(998));
        let back = m.price().unwrap_or_default();
        assert!(
            (back - Decimal::from(100)).abs() < Decimal::from_str("0.2").unwrap_or_default(),
            "{back}"
        );
        // Past the ticks read: refused.
        assert!(m.move_to(Decimal::from(1_000_000)).is_ok());
        assert!(m
            .swap(Side::Buy, Decimal::from(10), Decimal::from(1_000_000))
            .is_err());
    }
}
