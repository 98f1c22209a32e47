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

pub use super::report::Execution;
use super::report::VenueReport;
use super::Venue;
use crate::engine::order::{Amount, Fill, Side};
use crate::risk::Approved;

pub const AMOUNT_DECIMALS: u32 = 18;

/// One in a million: failure shares are integers so no float decides a fill.
pub const PPM: u32 = 1_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SimVenueConfig {
    /// Market orders fill this many bps worse than the price seen.
    pub slippage_bps: u32,
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
}

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

    /// The fill of `o` at `market` (the price seen) or at its limit.
    pub fn fill_of(&self, o: &Execution, market: Decimal, ts_us: i64) -> Fill {
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

    fn answer(&self, q: Queued, market: Option<Decimal>, ts_us: i64) -> VenueReport {
        match (q.failure, market) {
            (Some((retryable, reason)), _) => VenueReport::Failed {
                order_id: q.order.order_id,
                reason: reason.into(),
                retryable,
                ts_us,
            },
            (None, Some(market)) => VenueReport::Filled(self.fill_of(&q.order, market, ts_us)),
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
