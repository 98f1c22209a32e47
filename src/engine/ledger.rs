//! Per-strategy accounting in exact decimals, as GRID.md defines it.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::model::order::{Fill, Side};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    /// Quote the strategy started with (its capital).
    pub initial_quote: Decimal,
    pub quote: Decimal,
    pub base: Decimal,
    /// Cost (quote spent) of the lots currently held.
    pub open_cost: Decimal,
    pub fees: Decimal,
    pub realized_pnl: Decimal,
    pub fills: u64,
    pub round_trips: u64,
    pub winning_round_trips: u64,
    /// Quote promised to orders in flight (submitted, not yet filled or failed): still held,
    /// but no other order may spend it. Absent from the JSON while zero, so records without
    /// orders in flight read and write exactly as before.
    #[serde(default, skip_serializing_if = "Decimal::is_zero")]
    pub reserved_quote: Decimal,
    /// Base promised to sells in flight.
    #[serde(default, skip_serializing_if = "Decimal::is_zero")]
    pub reserved_base: Decimal,
    /// Gas the fills paid, in quote (each at its conversion price). Paid beside the swaps, so
    /// it is in no balance above: PnL net of gas subtracts it. Absent while zero.
    #[serde(default, skip_serializing_if = "Decimal::is_zero")]
    pub gas: Decimal,
    /// The same gas in BNB, for chain swaps.
    #[serde(default, skip_serializing_if = "Decimal::is_zero")]
    pub gas_bnb: Decimal,
}

impl Ledger {
    pub fn new(initial_quote: Decimal) -> Self {
        Ledger {
            initial_quote,
            quote: initial_quote,
            ..Default::default()
        }
    }

    pub fn apply(&mut self, fill: &Fill) {
        self.fills += 1;
        self.fees += fill.fee;
        self.gas += fill.gas;
        self.gas_bnb += fill.gas_bnb;
        match fill.side {
            Side::Buy => {
                self.quote -= fill.quote;
                self.base += fill.base;
                self.open_cost += fill.quote;
            }
            Side::Sell => {
                self.quote += fill.quote;
                self.base -= fill.base;
                if let Some(cost) = fill.lot_cost {
                    let pnl = fill.quote - cost;
                    self.realized_pnl += pnl;
                    self.open_cost -= cost;
                    self.round_trips += 1;
                    if pnl > Decimal::ZERO {
                        self.winning_round_trips += 1;
                    }
                }
            }
        }
    }

    /// Quote a new order may spend.
    pub fn available_quote(&self) -> Decimal {
        self.quote - self.reserved_quote
    }

    /// Base a new sell may send.
    pub fn available_base(&self) -> Decimal {
        self.base - self.reserved_base
    }

    /// quote + base × price.
    pub fn equity(&self, price: Decimal) -> Decimal {
        self.quote + self.base * price
    }

    /// Held inventory at `price` minus what it cost.
    pub fn unrealized_pnl(&self, price: Decimal) -> Decimal {
        self.base * price - self.open_cost
    }

    /// PnL gross of gas: realized plus unrealized at `price` (pool or exchange fees included).
    pub fn total_pnl(&self, price: Decimal) -> Decimal {
        self.realized_pnl + self.unrealized_pnl(price)
    }

    /// PnL net of gas: [`Ledger::total_pnl`] less the gas the fills paid (in quote).
    pub fn total_pnl_net_of_gas(&self, price: Decimal) -> Decimal {
        self.total_pnl(price) - self.gas
    }
}
