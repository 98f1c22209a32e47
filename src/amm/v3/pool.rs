//! A V3 pool's state and its exact-input swap, as the pool's `swap` loop steps it.

use std::collections::BTreeMap;

use alloy::primitives::U256;

use super::swap_step::compute_swap_step;
use super::tick_math::{
    max_sqrt_ratio, min_sqrt_ratio, sqrt_ratio_at_tick, tick_at_sqrt_ratio, MAX_TICK, MIN_TICK,
};

/// Why a V3 quote cannot be given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum V3PoolError {
    /// The swap would step into a bitmap word whose ticks were not read: the caller reads more of
    /// the pool's ticks and asks again, rather than guessing the liquidity there.
    #[error("the swap leaves the ticks read from the pool (word {word}); read more ticks around the price")]
    OutsideKnownTicks { word: i32 },
    /// The pool's own arithmetic would revert (overflow, zero price, a tick out of range).
    #[error("the pool's math reverts for this swap: {0}")]
    Reverts(&'static str),
}

/// A pool's price, in-range liquidity and initialized ticks: everything a swap's outcome depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V3Pool {
    /// Fee tier in hundredths of a basis point (500 = 5 bps).
    pub fee: u32,
    pub tick_spacing: i32,
    pub sqrt_price_x96: U256,
    pub tick: i32,
    pub liquidity: u128,
    /// Initialized ticks with their `liquidityNet`.
    pub ticks: BTreeMap<i32, i128>,
    /// The tick-bitmap words (`compressed tick >> 8`) whose ticks are in `ticks`, inclusive.
    pub known_words: (i32, i32),
}

/// What an exact-input swap takes and gives, and the pool after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SwapOutcome {
    /// What the pool takes (less than offered only when the price runs to the end of the range).
    pub amount_in: U256,
    pub amount_out: U256,
    /// The part of `amount_in` paid as fee.
    pub fee_paid: U256,
    pub sqrt_price_after: U256,
    pub tick_after: i32,
    pub liquidity_after: u128,
    /// Initialized ticks crossed (each changes the in-range liquidity).
    pub ticks_crossed: u32,
}

fn compress(tick: i32, spacing: i32) -> i32 {
    tick.div_euclid(spacing)
}

impl V3Pool {
    /// The word of the tick bitmap a compressed tick is in.
    pub fn word_of(compressed: i32) -> i32 {
        compressed >> 8
    }

    /// `TickBitmap.nextInitializedTickWithinOneWord`: the next initialized tick at or below
    /// (`lte`) or above the current one, but never past the end of the current bitmap word; the
    /// word's last tick when none is initialized there.
    fn next_tick_within_word(&self, tick: i32, lte: bool) -> Result<(i32, bool), V3PoolError> {
        let spacing = self.tick_spacing;
        let compressed = compress(tick, spacing);
        let (from, to, word) = if lte {
            let word = Self::word_of(compressed);
            (word * 256, compressed, word)
        } else {
            let next = compressed + 1;
            let word = Self::word_of(next);
            (next, word * 256 + 255, word)
        };
        if word < self.known_words.0 || word > self.known_words.1 {
            return Err(V3PoolError::OutsideKnownTicks { word });
        }
        let range = self.ticks.range(from * spacing..=to * spacing);
        let found = if lte {
            range.last()
        } else {
            range.into_iter().next()
        };
        Ok(match found {
            Some((t, _)) => (*t, true),
            None => (if lte { from } else { to } * spacing, false),
        })
    }

    /// An exact-input swap through the router with no price limit (`sqrtPriceLimitX96 = 0`):
    /// token0 in when `zero_for_one`. The pool is not changed; `apply` moves it.
    pub fn swap_exact_in(
        &self,
        zero_for_one: bool,
        amount: U256,
    ) -> Result<SwapOutcome, V3PoolError> {
        let limit = if zero_for_one {
            min_sqrt_ratio() + U256::from(1u8)
        } else {
            max_sqrt_ratio() - U256::from(1u8)
        };
        let mut remaining = amount;
        let mut out = U256::ZERO;
        let mut fee_paid = U256::ZERO;
        let mut sqrt = self.sqrt_price_x96;
        let mut tick = self.tick;
        let mut liquidity = self.liquidity;
        let mut crossed = 0u32;
        while !remaining.is_zero() && sqrt != limit {
            let start = sqrt;
            let (next, initialized) = self.next_tick_within_word(tick, zero_for_one)?;
            let next = next.clamp(MIN_TICK, MAX_TICK);
            let sqrt_next =
                sqrt_ratio_at_tick(next).ok_or(V3PoolError::Reverts("tick out of range"))?;
            let target =
                if (zero_for_one && sqrt_next < limit) || (!zero_for_one && sqrt_next > limit) {
                    limit
                } else {
                    sqrt_next
                };
            let step = compute_swap_step(sqrt, target, liquidity, remaining, self.fee)
                .ok_or(V3PoolError::Reverts("swap step"))?;
            sqrt = step.sqrt_next;
            remaining -= step.amount_in + step.fee;
            out += step.amount_out;
            fee_paid += step.fee;
            if sqrt == sqrt_next {
                if initialized {
                    let net = self.ticks.get(&next).copied().unwrap_or(0);
                    let net = if zero_for_one { -net } else { net };
                    liquidity =
                        add_delta(liquidity, net).ok_or(V3PoolError::Reverts("liquidity"))?;
                    crossed += 1;
                }
                tick = if zero_for_one { next - 1 } else { next };
            } else if sqrt != start {
                tick =
                    tick_at_sqrt_ratio(sqrt).ok_or(V3PoolError::Reverts("price out of range"))?;
            }
        }
        Ok(SwapOutcome {
            amount_in: amount - remaining,
            amount_out: out,
            fee_paid,
            sqrt_price_after: sqrt,
            tick_after: tick,
            liquidity_after: liquidity,
            ticks_crossed: crossed,
        })
    }

    /// Moves the pool to where a swap left it (paper and backtest fills carry the pool forward).
    pub fn apply(&mut self, outcome: &SwapOutcome) {
        self.sqrt_price_x96 = outcome.sqrt_price_after;
        self.tick = outcome.tick_after;
        self.liquidity = outcome.liquidity_after;
    }

    /// The pool moved to another price without trading against it (a backtest replaying a price
    /// path: other traders moved it). The in-range liquidity follows the ticks between.
    pub fn move_to(&mut self, sqrt_price_x96: U256) -> Result<(), V3PoolError> {
        let tick =
            tick_at_sqrt_ratio(sqrt_price_x96).ok_or(V3PoolError::Reverts("price out of range"))?;
        let mut liquidity = self.liquidity;
        if tick > self.tick {
            for (_, net) in self.ticks.range(self.tick + 1..=tick) {
                liquidity = add_delta(liquidity, *net).ok_or(V3PoolError::Reverts("liquidity"))?;
            }
        } else if tick < self.tick {
            for (_, net) in self.ticks.range(tick + 1..=self.tick) {
                liquidity = add_delta(liquidity, -*net).ok_or(V3PoolError::Reverts("liquidity"))?;
            }
        }
        self.sqrt_price_x96 = sqrt_price_x96;
        self.tick = tick;
        self.liquidity = liquidity;
        Ok(())
    }
}

fn add_delta(liquidity: u128, delta: i128) -> Option<u128> {
    if delta < 0 {
        liquidity.checked_sub(delta.unsigned_abs())
    } else {
        liquidity.checked_add(delta.unsigned_abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool_with(ticks: &[(i32, i128)], liquidity: u128) -> V3Pool {
        V3Pool {
            fee: 500,
            tick_spacing: 10,
            sqrt_price_x96: U256::from(1u8) << 96,
            tick: 0,
            liquidity,
            ticks: ticks.iter().copied().collect(),
            known_words: (-4, 4),
        }
    }

    #[test]
    fn a_swap_inside_one_range_is_one_constant_product_step() {
        // One full-range-like position: liquidity 1e21 from tick -1000 to 1000.
        let pool = pool_with(
            &[(-1000, 10i128.pow(21)), (1000, -(10i128.pow(21)))],
            10u128.pow(21),
        );
        let amount = U256::from(10u64.pow(18));
        let out = pool
            .swap_exact_in(false, amount)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out.amount_in, amount);
        assert_eq!(out.ticks_crossed, 0);
        // 5 bps of the input is fee (rounded up by the pool).
        assert_eq!(out.fee_paid, U256::from(500_000_000_000_000u64));
        // Constant product on the net input, rounded down: 1e21 × x / (1e21 + x) with x the net.
        let net = U256::from(999_500_000_000_000_000u128);
        let l = U256::from(10u128.pow(21));
        let expect = l * net / (l + net);
        let got = out.amount_out;
        assert!(
            got <= expect && expect - got <= U256::from(1u8),
            "{got} vs {expect}"
        );
        assert!(out.sqrt_price_after > pool.sqrt_price_x96 && out.tick_after >= 0);
    }

    #[test]
    fn crossing_a_tick_changes_the_liquidity_and_stepping_stops_at_word_edges() {
        // Liquidity ends at tick 20 going up: a big buy crosses it and then runs on the next range.
        let l = 10u128.pow(20);
        let pool = pool_with(&[(-20, l as i128), (20, -(l as i128) / 2)], l);
        let out = pool
            .swap_exact_in(false, U256::from(10u64.pow(18)))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out.ticks_crossed, 1);
        assert_eq!(out.liquidity_after, l / 2);
        assert!(out.tick_after >= 20);
        // Past the words that were read the quote refuses instead of guessing.
        let thin = pool_with(&[(-20, l as i128), (20, -(l as i128) + 1)], l);
        let far = thin.swap_exact_in(false, U256::from(10u128.pow(24)));
        assert!(
            matches!(far, Err(V3PoolError::OutsideKnownTicks { .. })),
            "{far:?}"
        );
    }

    #[test]
    fn moving_the_price_follows_the_ticks_between() {
        let l = 10u128.pow(20);
        let mut pool = pool_with(&[(-20, l as i128), (20, -(l as i128) / 2)], l);
        let up = sqrt_ratio_at_tick(25).unwrap_or_default();
        pool.move_to(up).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((pool.tick, pool.liquidity), (25, l / 2));
        pool.move_to(U256::from(1u8) << 96)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((pool.tick, pool.liquidity), (0, l));
    }
}
