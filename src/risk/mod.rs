//! The risk guard (floor 3, may use floors 0–2): every order passes it before a venue sees it.
//!
//! The risk guard: every order passes it before a venue sees it, and it keeps the state that
//! limits need — each strategy's loss since 00:00 UTC and its recent order outcomes, each market's
//! recent prices and its reference — so it can act (pause a strategy, stop buys on a market)
//! before a person reads the alert.
//!
//! Approval is a type: a venue only executes an [`Approved`] value, and only this module can make
//! one, so an unchecked order cannot reach a venue by construction. The guard is synchronous and
//! reads no clock: the engine hands it event time, so a backtest with limits is as reproducible
//! as one without.

pub mod guard;
pub mod outflow;

pub use guard::{RiskAction, RiskGuard, StrategyRiskState, TradingMode};
pub use outflow::OutflowLedger;

use rust_decimal::Decimal;

use crate::config::risk::{MarketLimits, StrategyLimits, StrategyRiskOverrides};
use crate::config::RiskConfig;
use serde::Serialize;

/// An order the guard let through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approved<T>(T);

impl<T> Approved<T> {
    pub fn inner(&self) -> &T {
        &self.0
    }

    /// The order itself, for the venue that executes it.
    pub fn into_inner(self) -> T {
        self.0
    }
}

/// Why an order was refused; recorded as a risk event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
pub enum Refusal {
    #[error("kill switch engaged")]
    KillSwitch,
    #[error("strategy is not active")]
    NotActive,
    #[error("order notional {notional} exceeds the limit {limit}")]
    MaxOrderNotional { notional: Decimal, limit: Decimal },
    #[error("trading halted: {reason}")]
    Halted { reason: String },
    #[error("insufficient funds: needs {needed}, has {available}")]
    InsufficientFunds { needed: Decimal, available: Decimal },
    #[error("position {position} + order {notional} would exceed max_position {limit}")]
    MaxPosition {
        position: Decimal,
        notional: Decimal,
        limit: Decimal,
    },
    #[error("price jump on this market: no new buys until the cool-down ends")]
    PriceJump,
    #[error("pool price {divergence_bps} bps from the reference (limit {limit_bps}): no swaps until it converges")]
    Divergence {
        divergence_bps: Decimal,
        limit_bps: Decimal,
    },
    #[error("trading mode is reducing: only orders that reduce exposure")]
    Reducing,
    #[error("hourly outflow {outflow} + order {notional} would exceed max_hourly_outflow {limit}")]
    HourlyOutflow {
        outflow: Decimal,
        notional: Decimal,
        limit: Decimal,
    },
}

impl Refusal {
    /// A refusal that lifts by itself (a cool-down, a price converging, inventory sold down):
    /// the strategy re-arms the order after its backoff instead of giving the cell up.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            Refusal::MaxPosition { .. }
                | Refusal::PriceJump
                | Refusal::Divergence { .. }
                | Refusal::HourlyOutflow { .. }
        )
    }

    /// The risk event kind it is recorded under.
    pub fn kind(&self) -> &'static str {
        match self {
            Refusal::MaxPosition { .. } => "max_position",
            Refusal::PriceJump => "price_jump",
            Refusal::Divergence { .. } => "divergence",
            Refusal::MaxOrderNotional { .. } => "max_order_notional",
            Refusal::HourlyOutflow { .. } => "hourly_outflow",
            _ => "order_refused",
        }
    }
}

/// What the guard needs to know about one order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderCheck {
    /// The engine's index of the strategy and of the market it trades.
    pub strategy: usize,
    pub symbol: usize,
    /// The strategy may trade (active, or liquidating on its way to stopped).
    pub active: bool,
    /// Quote value of the order.
    pub notional: Decimal,
    /// A sell: it reduces exposure, so it may pass the kill switch.
    pub reduces_exposure: bool,
    /// What the order spends (quote for buys, base for sells) and what the strategy has of it.
    pub spends: Decimal,
    pub available: Decimal,
    /// Inventory value before the order (base held × price).
    pub position: Decimal,
    /// Pool vs reference price of the market in bps, when it has both.
    pub divergence_bps: Option<Decimal>,
    /// Event time.
    pub ts_us: i64,
}

/// The guard's limits (defaults for every strategy, and for every market).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RiskLimits {
    pub strategy: StrategyLimits,
    pub market: MarketLimits,
}

impl RiskLimits {
    pub fn from_config(config: &RiskConfig) -> Self {
        RiskLimits {
            strategy: config.for_strategy(&StrategyRiskOverrides::default()),
            market: config.market_limits(),
        }
    }
}
