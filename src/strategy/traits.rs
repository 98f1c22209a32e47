//! The strategy plug point: a synchronous state machine fed by the engine.
//!
//! No async, no I/O, no clock reads: everything a strategy knows arrives as an argument, and
//! everything it wants leaves as an [`Intent`]. That is what makes backtest, paper and live agree.

use rust_decimal::Decimal;

use crate::model::order::{Fill, GuardKind, Intent};

/// What a strategy sees of the engine when it is called.
pub struct StrategyCtx<'a> {
    /// Event time (µs) of the event being processed.
    pub ts_us: i64,
    /// Last price of the strategy's symbol.
    pub price: Decimal,
    pub intents: &'a mut Vec<Intent>,
}

pub trait Strategy: Send {
    /// Quote capital the strategy needs, credited to its ledger at registration.
    fn initial_quote(&self) -> Decimal;

    /// First price this strategy sees (`P0`): place initial orders.
    fn on_start(&mut self, ctx: &mut StrategyCtx<'_>);

    /// One of this strategy's orders filled.
    fn on_fill(&mut self, ctx: &mut StrategyCtx<'_>, fill: &Fill);

    /// A guard (stop-loss, take-profit, range exit) fired at `ctx.price`.
    fn on_guard(&mut self, ctx: &mut StrategyCtx<'_>, kind: GuardKind);

    /// A resting order was cancelled from outside (operator or risk guard), not by the strategy.
    fn on_cancelled(&mut self, tag: u64);

    /// An order did not execute: refused by the risk guard or failed at the venue. Nothing it
    /// would have spent was spent. `retryable`: the same order may succeed later. A strategy that
    /// does not retry treats a failure as a cancel.
    fn on_failed(&mut self, _ctx: &mut StrategyCtx<'_>, tag: u64, _retryable: bool) {
        self.on_cancelled(tag);
    }

    /// Engine time reached a time the strategy asked for with [`Intent::WakeAt`].
    fn on_timer(&mut self, _ctx: &mut StrategyCtx<'_>) {}

    /// After a restart: re-issue the resting orders implied by the restored state.
    fn on_restore(&mut self, ctx: &mut StrategyCtx<'_>);

    /// Whether `on_start` already ran (restored strategies have started).
    fn started(&self) -> bool;

    /// State as JSON, restorable with the registry's `restore`.
    fn snapshot(&self) -> serde_json::Value;

    /// A cheap copy of the state, serialized later off the engine thread.
    fn state(&self) -> Box<dyn StrategyState>;
}

/// A detached copy of a strategy's state that can be serialized on another thread.
pub trait StrategyState: Send + Sync + std::fmt::Debug {
    fn to_value(&self) -> serde_json::Value;
}
