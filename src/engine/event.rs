//! The one event type the engine loop consumes, whatever the mode.

use super::venue::VenueReport;
use crate::model::order::{OrderId, StrategyIx};
use crate::model::PriceKey;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A price seen on `symbol` (engine symbol index) at event time `ts_us`.
    Tick {
        symbol: usize,
        ts_us: i64,
        price: PriceKey,
    },
    /// A venue's answer about an order in flight (an instant venue answers inline instead).
    Venue(VenueReport),
    /// Desired state changed (operator command or risk breach).
    Control(Control),
    /// Clock tick for timers; marks equity in paper/live when no prices arrive.
    Timer { ts_us: i64 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    Pause(StrategyIx),
    Resume(StrategyIx),
    Stop {
        strategy: StrategyIx,
        reason: String,
    },
    CancelOrder(OrderId),
    KillSwitch(bool),
    /// Stop placing orders at all, sells included (the record of them could not be kept).
    /// Cleared only by an operator clearing the kill switch, which the halt's owner engages.
    Halt {
        reason: String,
    },
    /// The operator's trading mode (active, reducing, halted).
    Mode(crate::risk::TradingMode),
}
