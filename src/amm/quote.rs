//! What each pool would pay for an exact input, in the pools' own integer arithmetic, and the best
//! of them: best execution quotes every allowed pool from the state the bot follows, with no
//! round trip on the swap path.

use alloy::primitives::U256;

use super::v3::{V3Pool, V3PoolError};
use super::PoolKind;

/// A pool's state as far as a swap's output depends on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolState {
    /// A V2 pair's raw reserves `(token0, token1)` and its fee.
    V2 {
        reserve0: U256,
        reserve1: U256,
        fee_bps: u32,
    },
    V3(V3Pool),
}

/// What one swap does to a pool: what it pays, the initialized ticks it crosses, and what it
/// moves (so the pool after it needs no second run of the swap).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quote {
    pub amount_in: U256,
    pub amount_out: U256,
    /// V3 only.
    pub ticks_crossed: Option<u32>,
    outcome: Option<super::v3::SwapOutcome>,
}

impl PoolState {
    /// What the pool does with `amount_in` of token0 (`zero_for_one`) or token1: V2's
    /// `getAmountOut`, or V3's swap loop. A V3 pool that cannot take the whole input (its
    /// liquidity ends) pays nothing: it is no venue for it.
    pub fn quote(&self, zero_for_one: bool, amount_in: U256) -> Result<Quote, V3PoolError> {
        match self {
            PoolState::V2 {
                reserve0,
                reserve1,
                fee_bps,
            } => {
                let (r_in, r_out) = if zero_for_one {
                    (*reserve0, *reserve1)
                } else {
                    (*reserve1, *reserve0)
                };
                let keep = U256::from(10_000u32.saturating_sub(*fee_bps));
                let with_fee = amount_in * keep;
                let denominator = r_in * U256::from(10_000u32) + with_fee;
                let amount_out = if denominator.is_zero() {
                    U256::ZERO
                } else {
                    with_fee * r_out / denominator
                };
                Ok(Quote {
                    amount_in,
                    amount_out,
                    ticks_crossed: None,
                    outcome: None,
                })
            }
            PoolState::V3(pool) => {
                let out = pool.swap_exact_in(zero_for_one, amount_in)?;
                let whole = out.amount_in == amount_in;
                Ok(Quote {
                    amount_in,
                    amount_out: if whole { out.amount_out } else { U256::ZERO },
                    ticks_crossed: Some(out.ticks_crossed),
                    outcome: Some(out),
                })
            }
        }
    }

    /// What the pool pays out for `amount_in` ([`PoolState::quote`]'s amount).
    pub fn quote_exact_in(&self, zero_for_one: bool, amount_in: U256) -> Result<U256, V3PoolError> {
        self.quote(zero_for_one, amount_in).map(|q| q.amount_out)
    }

    /// The pool after the swap `quote` describes (V2: the reserves move by its amounts; V3: the
    /// swap loop's end state), so the next quote needs no read of the chain.
    pub fn after(&self, zero_for_one: bool, quote: &Quote) -> PoolState {
        match self {
            PoolState::V2 {
                reserve0,
                reserve1,
                fee_bps,
            } => {
                let (amount_in, amount_out) = (quote.amount_in, quote.amount_out);
                let (r0, r1) = if zero_for_one {
                    (*reserve0 + amount_in, reserve1.saturating_sub(amount_out))
                } else {
                    (reserve0.saturating_sub(amount_out), *reserve1 + amount_in)
                };
                PoolState::V2 {
                    reserve0: r0,
                    reserve1: r1,
                    fee_bps: *fee_bps,
                }
            }
            PoolState::V3(pool) => {
                let mut next = pool.clone();
                if let Some(outcome) = &quote.outcome {
                    next.apply(outcome);
                }
                PoolState::V3(next)
            }
        }
    }
}

/// One pool's quote for a swap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolQuote {
    pub kind: PoolKind,
    pub quote: Quote,
}

/// The pool that pays the most for the swap among `pools` (ties to the first listed), with every
/// pool's quote; `None` when no pool pays anything. A pool whose quote cannot be given (its
/// ticks around the price were not read) is left out, never guessed.
pub fn best_pool<'a>(
    pools: impl IntoIterator<Item = (PoolKind, &'a PoolState, bool)>,
    amount_in: U256,
) -> (Option<PoolKind>, Vec<PoolQuote>) {
    let quotes: Vec<PoolQuote> = pools
        .into_iter()
        .filter_map(|(kind, state, zero_for_one)| {
            state
                .quote(zero_for_one, amount_in)
                .ok()
                .map(|quote| PoolQuote { kind, quote })
        })
        .collect();
    let best = quotes
        .iter()
        .filter(|q| !q.quote.amount_out.is_zero())
        .fold(None::<&PoolQuote>, |best, q| match best {
            Some(b) if b.quote.amount_out >= q.quote.amount_out => Some(b),
            _ => Some(q),
        })
        .map(|q| q.kind);
    (best, quotes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn v3(liquidity: u128, fee: u32) -> PoolState {
        let spacing = super::super::v3::tick_spacing_of(fee).unwrap_or(10);
        PoolState::V3(V3Pool {
            fee,
            tick_spacing: spacing,
            sqrt_price_x96: U256::from(1u8) << 96,
            tick: 0,
            liquidity,
            ticks: BTreeMap::from([
                (-spacing * 100, liquidity as i128),
                (spacing * 100, -(liquidity as i128)),
            ]),
            known_words: (-2, 2),
        })
    }

    #[test]
    fn v2_quote_is_get_amount_out() {
        let pair = PoolState::V2 {
            reserve0: U256::from(1_000_000u64),
            reserve1: U256::from(2_000_000u64),
            fee_bps: 25,
        };
        // 1000 × 9975 × 2e6 / (1e6 × 10000 + 1000 × 9975) = 1993.0...
        assert_eq!(
            pair.quote_exact_in(true, U256::from(1000u64)),
            Ok(U256::from(1993u64))
        );
    }

    #[test]
    fn small_swaps_go_to_the_cheap_pool_and_large_ones_to_the_deep_pool() {
        let e18 = U256::from(10u64).pow(U256::from(18u8));
        let deep_v2 = PoolState::V2 {
            reserve0: e18 * U256::from(1_000_000u64),
            reserve1: e18 * U256::from(1_000_000u64),
            fee_bps: 25,
        };
        let thin_v3 = v3(10u128.pow(22), 500);
        let pools = || {
            [
                (PoolKind::V2, &deep_v2, true),
                (PoolKind::V3 { fee: 500 }, &thin_v3, true),
            ]
        };
        let (small, quotes) = best_pool(pools(), e18);
        assert_eq!(small, Some(PoolKind::V3 { fee: 500 }), "{quotes:?}");
        let (large, quotes) = best_pool(pools(), e18 * U256::from(500u64));
        assert_eq!(large, Some(PoolKind::V2), "{quotes:?}");
        // Nothing pays: no best.
        let empty = PoolState::V2 {
            reserve0: U256::ZERO,
            reserve1: U256::ZERO,
            fee_bps: 25,
        };
        assert_eq!(best_pool([(PoolKind::V2, &empty, true)], e18).0, None);
    }
}
