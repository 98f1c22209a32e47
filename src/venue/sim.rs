//! The simulated venue shared by backtest and paper: limit orders fill at their limit price when
//! crossed, market orders at the price seen (± `slippage_bps`), fee per GRID.md.
//!
//! Amounts received are rounded toward zero to 18 decimal places (BEP-20 token precision), so
//! balances are exact sums of exact amounts and a lot's sell can never overdraw the base balance.

use rust_decimal::{Decimal, RoundingStrategy};

use crate::engine::order::{Amount, Fill, OrderId, Side, StrategyIx};
use crate::risk::Approved;

pub const AMOUNT_DECIMALS: u32 = 18;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SimVenueConfig {
    /// Market orders fill this many bps worse than the price seen.
    pub slippage_bps: u32,
}

/// An order cleared by the risk guard, ready to execute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Execution {
    pub order_id: OrderId,
    pub strategy: StrategyIx,
    pub tag: u64,
    pub side: Side,
    pub amount: Amount,
    pub lot_cost: Option<Decimal>,
    /// `Some(limit)` for limit orders, `None` for market.
    pub limit: Option<Decimal>,
    pub fee_bps: u32,
}

#[derive(Debug, Default)]
pub struct SimVenue {
    pub config: SimVenueConfig,
}

fn down(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(AMOUNT_DECIMALS, RoundingStrategy::ToZero)
}

impl SimVenue {
    pub fn new(config: SimVenueConfig) -> Self {
        SimVenue { config }
    }

    /// Fill an approved order at `market` (the price seen) or at its limit.
    pub fn execute(&self, order: &Approved<Execution>, market: Decimal, ts_us: i64) -> Fill {
        let o = order.inner();
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
        Fill {
            order_id: o.order_id,
            strategy: o.strategy,
            tag: o.tag,
            side: o.side,
            market: o.limit.is_none(),
            price,
            base,
            quote,
            fee,
            lot_cost: o.lot_cost,
            ts_us,
        }
    }
}
