//! What strategies ask for (intents) and what venues report back (fills).

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::price::PriceKey;

/// Index of a strategy inside one engine (dense, assigned at registration).
pub type StrategyIx = usize;

/// Engine-assigned order id; deterministic (a counter), so replays give the same ids.
pub type OrderId = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Buy => "buy",
            Side::Sell => "sell",
        }
    }
}

/// How much an order moves: buys spend quote, sells send base.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Amount {
    Quote(Decimal),
    Base(Decimal),
}

/// A resting conditional limit order: fires when the price crosses `limit`
/// (buy: a price `<= limit`; sell: a price `>= limit`) and fills at `limit` on the simulated venue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitRequest {
    /// Strategy-chosen tag, unique among the strategy's live orders (the grid uses the cell).
    pub tag: u64,
    pub side: Side,
    pub limit: Decimal,
    pub amount: Amount,
    /// For sells closing a lot: what the lot cost, so realized PnL is per round trip.
    pub lot_cost: Option<Decimal>,
}

/// A market order, filled at the price seen (plus slippage on the simulated venue).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarketRequest {
    pub tag: u64,
    pub side: Side,
    pub amount: Amount,
    pub lot_cost: Option<Decimal>,
}

/// Protective triggers that notify the strategy instead of filling anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GuardKind {
    StopLoss,
    TakeProfit,
    /// `on_exit = stop`, price strictly below the range.
    ExitBelow,
    /// `on_exit = stop`, price strictly above the range.
    ExitAbove,
}

impl GuardKind {
    pub fn as_str(self) -> &'static str {
        match self {
            GuardKind::StopLoss => "stop_loss",
            GuardKind::TakeProfit => "take_profit",
            GuardKind::ExitBelow => "exit_below",
            GuardKind::ExitAbove => "exit_above",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardRequest {
    pub tag: u64,
    pub kind: GuardKind,
    pub price: Decimal,
}

/// Everything a strategy can ask of the engine. Applied in order, each through the risk guard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intent {
    Limit(LimitRequest),
    Market(MarketRequest),
    Guard(GuardRequest),
    /// Cancel every resting order and guard of this strategy.
    CancelAll,
    /// The strategy is done (inventory is kept unless it sold it first).
    Stop {
        reason: String,
    },
    /// Call the strategy's `on_timer` once engine time reaches this (µs).
    WakeAt(i64),
}

/// An order after the engine accepted it: its id and where it triggers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestingOrder {
    pub id: OrderId,
    pub strategy: StrategyIx,
    pub kind: RestingKind,
    /// Fires when price key `<= trigger` (`below`) or `>= trigger` (above).
    pub trigger: PriceKey,
    pub below: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestingKind {
    Limit(LimitRequest),
    Guard(GuardRequest),
}

impl RestingOrder {
    pub fn tag(&self) -> u64 {
        match &self.kind {
            RestingKind::Limit(l) => l.tag,
            RestingKind::Guard(g) => g.tag,
        }
    }
}

/// A fill as the venue reports it. Amounts are what actually moved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fill {
    pub order_id: OrderId,
    pub strategy: StrategyIx,
    pub tag: u64,
    pub side: Side,
    /// `limit` or `market`.
    pub market: bool,
    pub price: Decimal,
    /// Base bought or sold.
    pub base: Decimal,
    /// Quote spent (buy) or received net of fee (sell).
    pub quote: Decimal,
    /// Fee in quote.
    pub fee: Decimal,
    /// What a swap lost to the pool's price impact (quote, against the pool's mid price before
    /// it, pool fee apart) and paid in gas (quote); zero on limit-price fills.
    #[serde(default, skip_serializing_if = "Decimal::is_zero")]
    pub impact: Decimal,
    /// Gas in quote: the model's charge (AMM fills), or a chain swap's `gas_bnb` at
    /// `bnb_price`. Paid beside the swap (in BNB on chain), so the amounts above exclude it.
    #[serde(default, skip_serializing_if = "Decimal::is_zero")]
    pub gas: Decimal,
    /// Gas a chain swap paid, in BNB (zero off chain).
    #[serde(default, skip_serializing_if = "Decimal::is_zero")]
    pub gas_bnb: Decimal,
    /// BNB's price in quote that turned `gas_bnb` into `gas` (the conversion price on record).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bnb_price: Option<Decimal>,
    pub lot_cost: Option<Decimal>,
    /// Event time (µs) of the price that caused it.
    pub ts_us: i64,
}

/// Gas a chain swap paid, in quote: its BNB at BNB's price then; zero while that price is not
/// known (the BNB stays on record, and PnL net of gas is short of it rather than wrong).
pub fn gas_in_quote(gas_bnb: Decimal, bnb_price: Option<Decimal>) -> Decimal {
    bnb_price.map_or(Decimal::ZERO, |p| gas_bnb * p)
}

impl Fill {
    /// The gas a chain swap paid for this fill: in BNB, and in quote at `bnb_price`.
    pub fn pay_chain_gas(&mut self, gas_bnb: Decimal, bnb_price: Option<Decimal>) {
        self.gas_bnb = gas_bnb;
        self.bnb_price = bnb_price;
        self.gas = gas_in_quote(gas_bnb, bnb_price);
    }
}
