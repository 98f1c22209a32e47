//! The simulated venue shared by backtest and paper: limit orders fill at their limit price when
//! crossed, market orders at the price seen (± `slippage_bps`), fee per GRID.md.
//!
//! By default it answers at once, which keeps backtests exact and fast. With `latency_us` it
//! answers after that much engine time (a market order then fills at the price of that later
//! moment, as a swap mined seconds later would), and with `fail_ppm` / `reject_ppm` a seeded share
//! of orders fails, retryably or for good. The seed and the event stream decide everything, so a
//! delayed, failing backtest is still reproducible to the byte.
//!
//! Amounts received are rounded toward zero to 18 decimal places (BEP-20 token precision), so
//! balances are exact sums of exact amounts and a lot's sell can never overdraw the base balance.

use std::collections::VecDeque;

use rust_decimal::{Decimal, RoundingStrategy};

use crate::amm::swap_math::amount_out;
use crate::amm::AmmPool;
use crate::engine::venue::{Execution, Venue, VenueReport};
use crate::model::order::{Amount, Fill, Side};
use crate::risk::Approved;

pub const AMOUNT_DECIMALS: u32 = 18;

/// One in a million: failure shares are integers so no float decides a fill.
pub const PPM: u32 = 1_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SimVenueConfig {
    /// Market orders fill this many bps worse than the price seen.
    pub slippage_bps: u32,
    /// Fill as a constant-product pool would (`--fill-model amm`); `None`: at the limit price.
    pub amm: Option<AmmPool>,
}

/// When and whether the simulated venue answers; the default answers every order at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SimDelays {
    /// Engine time (µs) between submission and the venue's answer; 0 answers at once.
    pub latency_us: i64,
    /// Share of submissions (parts per million) that fail retryably, as a timed-out swap does.
    pub fail_ppm: u32,
    /// Share of submissions (parts per million) that fail for good, as a reverted swap does.
    pub reject_ppm: u32,
    /// Seed of the failure draws.
    pub seed: u64,
}

#[derive(Debug)]
struct Queued {
    due_us: i64,
    order: Execution,
    /// Decided at submission, so the outcome does not depend on when the venue is polled.
    failure: Option<(bool, &'static str)>,
}

#[derive(Debug, Default)]
pub struct SimVenue {
    pub config: SimVenueConfig,
    pub delays: SimDelays,
    /// Orders waiting for their answer, in due order (the latency is constant).
    queue: VecDeque<Queued>,
    rng: u64,
    /// The pool as the last AMM swap left it: `(symbol, time, price, reserves)`.
    amm_after: Option<(usize, i64, Decimal, (Decimal, Decimal))>,
    /// `--fill-model amm` on a V3 pool: its liquidity profile, moved along the price path, and
    /// the `(symbol, time, price)` of its last swap (swaps at one price and time meet the pool
    /// as the one before left it).
    v3: Option<(crate::amm::v3::V3FillModel, Option<SwapMoment>)>,
}

/// `(symbol, time, price)` of a modelled swap.
type SwapMoment = (usize, i64, Decimal);

fn down(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(AMOUNT_DECIMALS, RoundingStrategy::ToZero)
}

/// splitmix64: a tiny, well-mixed, seedable generator (no dependency, same numbers everywhere).
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl SimVenue {
    pub fn new(config: SimVenueConfig) -> Self {
        SimVenue {
            config,
            delays: SimDelays::default(),
            queue: VecDeque::new(),
            rng: 0,
            amm_after: None,
            v3: None,
        }
    }

    /// Fill as the V3 pool of this liquidity profile would (it overrides `config.amm`).
    pub fn with_v3(mut self, model: Option<crate::amm::v3::V3FillModel>) -> Self {
        self.v3 = model.map(|m| (m, None));
        self
    }

    /// A swap of `o` on the V3 pool at `price` (the market price of the moment): the pool moved
    /// there (unless this swap follows another at the same price and time), then the exact-input
    /// swap in the pool's integer arithmetic. A swap past the profile's ticks cannot be
    /// modelled: it fails for good.
    fn v3_fill(
        &mut self,
        o: &Execution,
        price: Decimal,
        ts_us: i64,
    ) -> Option<Result<Fill, crate::amm::v3::V3FillError>> {
        let (model, last) = self.v3.as_mut()?;
        let here = (o.symbol, ts_us, price);
        if *last != Some(here) {
            if let Err(e) = model.move_to(price) {
                return Some(Err(e));
            }
        }
        *last = Some(here);
        let amount_in = match (o.side, o.amount) {
            (Side::Buy, Amount::Quote(q)) => q,
            (Side::Buy, Amount::Base(b)) => b * price,
            (Side::Sell, Amount::Base(b)) => b,
            (Side::Sell, Amount::Quote(q)) => down(q / price),
        };
        // Live, a market order is bounded by the price it was sent at.
        let limit = o.limit.unwrap_or(price);
        Some(match model.swap(o.side, amount_in, limit) {
            Ok(s) => {
                let effective = if s.base.is_zero() {
                    price
                } else {
                    s.quote / s.base
                };
                let mut fill = o.fill(effective, s.base, s.quote, s.fee, ts_us);
                fill.impact = s.impact;
                fill.gas = model.gas_quote;
                Ok(fill)
            }
            Err(e) => Err(e),
        })
    }

    /// The answer to `o` at `market`: through the V3 pool when one is set — at the price of the
    /// moment (the tick that fired it), as a live swap meets it, its limit the bound it must not
    /// fill worse than; a swap below its bound fails as a reverted swap does, retryably — else
    /// [`SimVenue::fill_in_turn`].
    fn answer_in_turn(&mut self, o: &Execution, market: Decimal, ts_us: i64) -> VenueReport {
        match self.v3_fill(o, market, ts_us) {
            Some(Ok(fill)) => VenueReport::Filled(fill),
            Some(Err(e)) => VenueReport::Failed {
                order_id: o.order_id,
                retryable: matches!(e, crate::amm::v3::V3FillError::BelowBound { .. }),
                reason: format!("V3 fill model: {e}"),
                ts_us,
            },
            None => VenueReport::Filled(self.fill_in_turn(o, market, ts_us)),
        }
    }

    /// Answer after a latency and fail a share of orders (seeded).
    pub fn with_delays(mut self, delays: SimDelays) -> Self {
        self.delays = delays;
        self.rng = delays.seed;
        self
    }

    /// Orders submitted and not answered yet.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// A swap of `o` on the configured pool with its price at `price` (the trigger): what a
    /// constant-product pool returns for that size after its fee. Its gas is charged beside the
    /// swap (`fill.gas`, paid in BNB on chain), never out of the amounts, as live swaps do.
    fn amm_fill(&self, pool: &AmmPool, o: &Execution, price: Decimal, ts_us: i64) -> Fill {
        self.amm_swap(pool, o, price, pool.reserves_at(price), price, ts_us)
            .0
    }

    /// [`SimVenue::amm_fill`] on given reserves whose mid price is `mid`; also the reserves
    /// after the swap (what the next swap at this price meets).
    fn amm_swap(
        &self,
        pool: &AmmPool,
        o: &Execution,
        price: Decimal,
        (reserve_base, reserve_quote): (Decimal, Decimal),
        mid: Decimal,
        ts_us: i64,
    ) -> (Fill, (Decimal, Decimal)) {
        let fee_rate = Decimal::from(o.fee_bps) / Decimal::from(10_000);
        let (base, quote, fee, impact, after) = match (o.side, o.amount) {
            (Side::Buy, amount) => {
                let spend = match amount {
                    Amount::Quote(q) => q,
                    Amount::Base(b) => b * price,
                };
                let got = down(amount_out(spend, reserve_quote, reserve_base, o.fee_bps));
                let fee = spend * fee_rate;
                // At the mid price, the input after fee would have bought this much more.
                let impact = (spend - fee) - got * mid;
                (
                    got,
                    spend,
                    fee,
                    impact,
                    (reserve_base - got, reserve_quote + spend),
                )
            }
            (Side::Sell, amount) => {
                let lot = match amount {
                    Amount::Base(b) => b,
                    Amount::Quote(q) => down(q / price),
                };
                let out = down(amount_out(lot, reserve_base, reserve_quote, o.fee_bps));
                let fee = lot * mid * fee_rate;
                let impact = lot * mid - fee - out;
                (
                    lot,
                    out,
                    fee,
                    impact,
                    (reserve_base + lot, reserve_quote - out),
                )
            }
        };
        let effective = if base.is_zero() { price } else { quote / base };
        let mut fill = o.fill(effective, base, quote, fee, ts_us);
        fill.impact = impact.max(Decimal::ZERO);
        fill.gas = pool.gas_quote;
        (fill, after)
    }

    /// The fill of `o` as this venue answers it: through the pool, in turn. Swaps at one price
    /// and time (a grid's start buys, a liquidation with them) meet the pool as the one before
    /// left it, as consecutive swaps do on chain; a swap at another price meets the pool at that
    /// price.
    fn fill_in_turn(&mut self, o: &Execution, market: Decimal, ts_us: i64) -> Fill {
        let Some(pool) = self.config.amm else {
            return self.fill_of(o, market, ts_us);
        };
        let price = o.limit.unwrap_or(market);
        let (reserves, mid) = match self.amm_after {
            Some((symbol, ts, at, r)) if (symbol, ts, at) == (o.symbol, ts_us, price) => {
                let mid = if r.0 > Decimal::ZERO {
                    r.1 / r.0
                } else {
                    price
                };
                (r, mid)
            }
            _ => (pool.reserves_at(price), price),
        };
        let (fill, after) = self.amm_swap(&pool, o, price, reserves, mid, ts_us);
        self.amm_after = Some((o.symbol, ts_us, price, after));
        fill
    }

    /// The fill of `o` at `market` (the price seen) or at its limit.
    pub fn fill_of(&self, o: &Execution, market: Decimal, ts_us: i64) -> Fill {
        if let Some(pool) = &self.config.amm {
            return self.amm_fill(pool, o, o.limit.unwrap_or(market), ts_us);
        }
        let price = match o.limit {
            Some(limit) => limit,
            None => {
                let slip = Decimal::from(self.config.slippage_bps) / Decimal::from(10_000);
                match o.side {
                    Side::Buy => market * (Decimal::ONE + slip),
                    Side::Sell => market * (Decimal::ONE - slip),
                }
            }
        };
        let fee_rate = Decimal::from(o.fee_bps) / Decimal::from(10_000);
        let (base, quote, fee) = match (o.side, o.amount) {
            (Side::Buy, Amount::Quote(spend)) => {
                let fee = spend * fee_rate;
                (down((spend - fee) / price), spend, fee)
            }
            (Side::Buy, Amount::Base(qty)) => {
                // Buying an exact base amount: spend what it costs plus the fee.
                let gross = qty * price;
                let spend = gross / (Decimal::ONE - fee_rate);
                (qty, spend, spend - gross)
            }
            (Side::Sell, Amount::Base(qty)) => {
                let gross = qty * price;
                let fee = down(gross * fee_rate);
                (qty, down(gross * (Decimal::ONE - fee_rate)), fee)
            }
            (Side::Sell, Amount::Quote(target)) => {
                let qty = down(target / price);
                let gross = qty * price;
                let fee = down(gross * fee_rate);
                (qty, down(gross * (Decimal::ONE - fee_rate)), fee)
            }
        };
        o.fill(price, base, quote, fee, ts_us)
    }

    fn draw_failure(&mut self) -> Option<(bool, &'static str)> {
        let (fail, reject) = (self.delays.fail_ppm, self.delays.reject_ppm);
        if fail == 0 && reject == 0 {
            return None;
        }
        let roll = (splitmix64(&mut self.rng) % u64::from(PPM)) as u32;
        if roll < reject {
            Some((false, "simulated rejection"))
        } else if roll < reject.saturating_add(fail) {
            Some((true, "simulated timeout"))
        } else {
            None
        }
    }

    fn answer(&mut self, q: Queued, market: Option<Decimal>, ts_us: i64) -> VenueReport {
        match (q.failure, market) {
            (Some((retryable, reason)), _) => VenueReport::Failed {
                order_id: q.order.order_id,
                reason: reason.into(),
                retryable,
                ts_us,
            },
            (None, Some(market)) => self.answer_in_turn(&q.order, market, ts_us),
            (None, None) => VenueReport::Failed {
                order_id: q.order.order_id,
                reason: "no price to fill at".into(),
                retryable: true,
                ts_us,
            },
        }
    }
}

impl Venue for SimVenue {
    fn submit(
        &mut self,
        order: Approved<Execution>,
        market: Decimal,
        ts_us: i64,
        reports: &mut Vec<VenueReport>,
    ) {
        let failure = self.draw_failure();
        let order = order.into_inner();
        let queued = Queued {
            due_us: ts_us.saturating_add(self.delays.latency_us),
            order,
            failure,
        };
        if self.delays.latency_us <= 0 {
            reports.push(self.answer(queued, Some(market), ts_us));
        } else {
            self.queue.push_back(queued);
        }
    }

    fn poll(
        &mut self,
        now_us: i64,
        price: &dyn Fn(usize) -> Option<Decimal>,
        reports: &mut Vec<VenueReport>,
    ) {
        while self.queue.front().is_some_and(|q| q.due_us <= now_us) {
            let Some(q) = self.queue.pop_front() else {
                break;
            };
            let due = q.due_us;
            let market = price(q.order.symbol);
            reports.push(self.answer(q, market, due));
        }
    }

    fn next_due_us(&self) -> Option<i64> {
        self.queue.front().map(|q| q.due_us)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap_or_default()
    }

    fn order(side: Side, amount: Amount, limit: &str, fee_bps: u32) -> Execution {
        Execution {
            order_id: 1,
            strategy: 0,
            symbol: 0,
            tag: 0,
            side,
            amount,
            lot_cost: None,
            limit: Some(d(limit)),
            fee_bps,
        }
    }

    /// 100 BTC against 10,000,000 USDT; gas 150,000 units × 0.1 gwei × 600 = 0.009 USDT.
    fn venue() -> SimVenue {
        SimVenue::new(SimVenueConfig {
            slippage_bps: 0,
            amm: AmmPool::from_reserves(d("100"), d("10000000"), d("0.009")),
        })
    }

    #[test]
    fn the_pool_keeps_its_depth_at_any_price() {
        let pool = AmmPool::from_reserves(d("100"), d("10000000"), Decimal::ZERO).unwrap();
        assert_eq!(pool.reserves_at(d("100000")), (d("100"), d("10000000")));
        let (b, q) = pool.reserves_at(d("90000"));
        assert_eq!((q / b).round_dp(6), d("90000"));
        assert_eq!((b * q).round_dp(6), d("1000000000"));
    }

    #[test]
    fn a_buy_gets_what_get_amount_out_gives_after_fee_with_gas_beside_it() {
        // 25 bps (PancakeSwap V2): getAmountOut multiplies the input by 9975 / 10000.
        let fill = venue().fill_of(
            &order(Side::Buy, Amount::Quote(d("1000")), "100000", 25),
            d("1"),
            0,
        );
        let input = d("1000");
        let want =
            down(input * d("9975") * d("100") / (d("10000000") * d("10000") + input * d("9975")));
        assert_eq!(
            fill.base, want,
            "the whole quote goes into the swap, as on chain"
        );
        assert_eq!(fill.quote, d("1000"), "spends exactly its quote");
        assert_eq!(fill.gas, d("0.009"), "gas is charged beside the swap");
        assert_eq!(fill.fee, input * d("0.0025"), "the pool fee only");
        // Worse than the mid price by the impact: 1000 × 0.9975 / 100,000 would buy more.
        assert_eq!(fill.impact, input * d("0.9975") - want * d("100000"));
        assert!(fill.impact > Decimal::ZERO);
        assert!(fill.price > d("100000"));
    }

    #[test]
    fn a_sell_gets_what_get_amount_out_gives_after_fee_with_gas_beside_it() {
        // 30 bps (Uniswap V2): 997 / 1000.
        let fill = venue().fill_of(
            &order(Side::Sell, Amount::Base(d("0.01")), "100000", 30),
            d("1"),
            0,
        );
        let out = down(
            d("0.01") * d("9970") * d("10000000") / (d("100") * d("10000") + d("0.01") * d("9970")),
        );
        assert_eq!(fill.base, d("0.01"), "sends exactly its lot");
        assert_eq!(fill.quote, out, "receives what the pool gives");
        assert_eq!(fill.gas, d("0.009"));
        assert_eq!(fill.fee, d("0.01") * d("100000") * d("0.003"));
        assert_eq!(fill.impact, d("1000") - d("3") - out);
        assert!(fill.price < d("100000"));
    }

    #[test]
    fn swaps_at_one_price_meet_the_pool_as_the_last_one_left_it() {
        let mut v = venue();
        let mut buy = order(Side::Buy, Amount::Quote(d("1000")), "100000", 25);
        buy.limit = None;
        let first = v.fill_in_turn(&buy, d("100000"), 7);
        let second = v.fill_in_turn(&buy, d("100000"), 7);
        // The second buy's input meets reserves the first moved: (100 - got, 10,000,000 + 1000).
        let (b, q) = (d("100") - first.base, d("10000000") + d("1000"));
        let want = down(amount_out(d("1000"), q, b, 25));
        assert_eq!(second.base, want);
        assert!(
            second.base < first.base,
            "the second buy pays the first's impact"
        );
        // Another time (a new price seen): a fresh pool at that price.
        let later = v.fill_in_turn(&buy, d("100000"), 8);
        assert_eq!(later.base, first.base);
    }

    #[test]
    fn without_a_pool_fills_stay_at_the_limit() {
        let v = SimVenue::new(SimVenueConfig::default());
        let fill = v.fill_of(
            &order(Side::Buy, Amount::Quote(d("1000")), "100000", 25),
            d("1"),
            0,
        );
        assert_eq!(fill.price, d("100000"));
        assert_eq!((fill.gas, fill.impact), (Decimal::ZERO, Decimal::ZERO));
    }
}
