//! The one event type the engine loop consumes, whatever the mode.

use super::order::{Fill, OrderId, StrategyIx};
use super::price::PriceKey;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A price seen on `symbol` (engine symbol index) at event time `ts_us`.
    Tick {
        symbol: usize,
        ts_us: i64,
        price: PriceKey,
    },
    /// A fill reported by an asynchronous venue (the simulated venue fills inline).
    Fill(Fill),
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
}
