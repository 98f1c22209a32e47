//! The seam the engine owns: venues execute approved orders. The simulated venue serves backtest
//! and paper alike; the PancakeSwap venue (live) plugs in behind the same [`Venue`] trait; both
//! live in `crate::venue`, a floor above, so the engine names no venue of its own.
//!
//! A venue never answers with a return value: it answers with [`VenueReport`]s, at once (the
//! instant simulated venue) or later (latency, a mined transaction). The engine holds every
//! submitted order as in flight until its report arrives, so a venue that answers in seconds
//! and one that answers in nanoseconds run the same strategy code.
//!
//! What the engine hands a venue and what the venue answers.

use rust_decimal::Decimal;

use crate::model::order::{Amount, Fill, OrderId, Side, StrategyIx};
use crate::risk::Approved;

/// An order cleared by the risk guard, ready to execute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Execution {
    pub order_id: OrderId,
    pub strategy: StrategyIx,
    /// Engine symbol index (a delayed venue prices market orders at this symbol's later price).
    pub symbol: usize,
    pub tag: u64,
    pub side: Side,
    pub amount: Amount,
    pub lot_cost: Option<Decimal>,
    /// `Some(limit)` for limit orders, `None` for market.
    pub limit: Option<Decimal>,
    pub fee_bps: u32,
}

impl Execution {
    /// This order's fill: what moved, at what price, for what fee (every venue fills through here).
    pub fn fill(
        &self,
        price: Decimal,
        base: Decimal,
        quote: Decimal,
        fee: Decimal,
        ts_us: i64,
    ) -> Fill {
        Fill {
            order_id: self.order_id,
            strategy: self.strategy,
            tag: self.tag,
            side: self.side,
            market: self.limit.is_none(),
            price,
            base,
            quote,
            fee,
            impact: Decimal::ZERO,
            gas: Decimal::ZERO,
            gas_bnb: Decimal::ZERO,
            bnb_price: None,
            lot_cost: self.lot_cost,
            ts_us,
        }
    }
}

/// A venue's answer about one submitted order. Reports are matched to in-flight orders by id;
/// one for an order no longer in flight (late, duplicated) changes nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VenueReport {
    /// The venue took the order; `reference` is what it is known by there (a tx hash on chain).
    Accepted {
        order_id: OrderId,
        reference: String,
        ts_us: i64,
    },
    /// The venue now knows an accepted order under another reference: its transaction was stuck
    /// and replaced at the same nonce (a speed-up or a cancel); the last reference is the one
    /// whose receipt decides the order.
    Replaced {
        order_id: OrderId,
        reference: String,
        ts_us: i64,
    },
    /// The order executed; the amounts are what really moved (within the order's bounds).
    Filled(Fill),
    /// A transaction for the order paid gas without filling it (a swap that reverted): its gas
    /// in BNB, and BNB's price in quote when it settled (the order's ledger books it as gas).
    GasPaid {
        order_id: OrderId,
        gas_bnb: Decimal,
        bnb_price: Option<Decimal>,
        ts_us: i64,
    },
    /// The order did not execute. `retryable`: the same order may succeed later (a timeout, a
    /// price that moved past the slippage bound); otherwise it never will (a revert, a refusal).
    Failed {
        order_id: OrderId,
        reason: String,
        retryable: bool,
        ts_us: i64,
    },
}

impl VenueReport {
    pub fn order_id(&self) -> OrderId {
        match self {
            VenueReport::Accepted { order_id, .. }
            | VenueReport::Replaced { order_id, .. }
            | VenueReport::GasPaid { order_id, .. }
            | VenueReport::Failed { order_id, .. } => *order_id,
            VenueReport::Filled(f) => f.order_id,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            VenueReport::Accepted { .. } => "accepted",
            VenueReport::Replaced { .. } => "replaced",
            VenueReport::GasPaid { .. } => "gas_paid",
            VenueReport::Filled(_) => "filled",
            VenueReport::Failed { .. } => "failed",
        }
    }
}

/// Where the engine sends approved orders.
pub trait Venue: Send {
    /// Take an approved order. `market` is the last price of its symbol; reports that are already
    /// known (an instant fill, a refusal by the venue) are pushed to `reports` now, the others
    /// come from [`Venue::poll`] or through the live loop's report channel.
    fn submit(
        &mut self,
        order: Approved<Execution>,
        market: Decimal,
        ts_us: i64,
        reports: &mut Vec<VenueReport>,
    );

    /// Reports due by engine time `now_us`; `price(symbol)` is the last price of a symbol.
    fn poll(
        &mut self,
        _now_us: i64,
        _price: &dyn Fn(usize) -> Option<Decimal>,
        _reports: &mut Vec<VenueReport>,
    ) {
    }

    /// Engine time of the next report [`Venue::poll`] would give (`None`: nothing due).
    fn next_due_us(&self) -> Option<i64> {
        None
    }
}
