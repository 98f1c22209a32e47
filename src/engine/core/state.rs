//! What the daemon, the backtest and the tests read of an engine, and the end of a run.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use super::Engine;
use crate::engine::inflight::InFlight;
use crate::engine::ledger::Ledger;
use crate::engine::recorder::Recorder;
use crate::engine::venue::Venue;
use crate::model::order::{RestingOrder, StrategyIx};
use crate::risk::RiskGuard;
use crate::strategy::StrategyStatus;

impl<R: Recorder, V: Venue> Engine<R, V> {
    /// Final mark at the last price seen (end of a backtest, or shutdown).
    pub fn finish(&mut self) {
        let ts = self.now_us;
        for state in &mut self.symbols {
            if state.seen {
                state.last_price = state.last.to_decimal().unwrap_or(state.last_price);
            }
        }
        self.mark_all(ts);
    }

    /// The engine's time: the last event's (µs), never behind a clock it was advanced to.
    pub fn now_us(&self) -> i64 {
        self.now_us
    }

    pub fn ticks(&self) -> u64 {
        self.ticks
    }

    pub fn ledger(&self, ix: StrategyIx) -> &Ledger {
        &self.slots[ix].ledger
    }

    /// Resize a strategy's budget when its size changes (a canary's scale step): its quote and
    /// its starting capital move together, so its PnL is unchanged; never below no quote.
    pub fn change_capital(&mut self, ix: StrategyIx, delta: rust_decimal::Decimal) {
        let ledger = &mut self.slots[ix].ledger;
        let delta = delta.max(-ledger.quote);
        ledger.quote += delta;
        ledger.initial_quote += delta;
    }

    pub fn status(&self, ix: StrategyIx) -> StrategyStatus {
        self.slots[ix].status
    }

    pub fn snapshot(&self, ix: StrategyIx) -> serde_json::Value {
        self.slots[ix].strategy.snapshot()
    }

    /// A detached copy of a strategy's state, for serializing elsewhere.
    pub fn strategy_state(
        &self,
        ix: StrategyIx,
    ) -> Box<dyn crate::strategy::traits::StrategyState> {
        self.slots[ix].strategy.state()
    }

    /// Last price of a symbol (exact), if any was seen.
    pub fn last_price(&self, symbol: usize) -> Option<Decimal> {
        let s = &self.symbols[symbol];
        s.seen.then(|| s.last.to_decimal().unwrap_or(s.last_price))
    }

    /// Resting orders of one strategy (book and parked), in id order.
    pub fn resting_orders(&self, ix: StrategyIx) -> Vec<RestingOrder> {
        let symbol = self.slots[ix].symbol;
        let mut out: Vec<RestingOrder> = self.symbols[symbol]
            .book
            .orders()
            .into_iter()
            .filter(|o| o.strategy == ix)
            .cloned()
            .chain(self.slots[ix].parked.iter().map(|(o, _)| o.clone()))
            .collect();
        out.sort_by_key(|o| o.id);
        out
    }

    /// Orders of one strategy the venue has not answered for yet, in id order.
    pub fn in_flight(&self, ix: StrategyIx) -> Vec<InFlight> {
        self.in_flight
            .values()
            .filter(|f| f.order.strategy == ix)
            .cloned()
            .collect()
    }

    /// Orders in flight across all strategies.
    pub fn in_flight_count(&self) -> usize {
        self.in_flight.len()
    }

    /// Why nothing may be placed (`None`: trading is not halted).
    /// The risk guard, for the daemon to give it per-strategy limits, market references and
    /// state restored after a restart.
    pub fn risk_mut(&mut self) -> &mut RiskGuard {
        &mut self.risk
    }

    pub fn risk(&self) -> &RiskGuard {
        &self.risk
    }

    pub fn halted(&self) -> Option<&str> {
        self.risk.halted.as_deref()
    }

    pub fn venue(&self) -> &V {
        &self.venue
    }

    /// The venue, to set routes up before the loop runs.
    pub fn venue_mut(&mut self) -> &mut V {
        &mut self.venue
    }

    /// Engine symbol index of a strategy.
    pub fn strategy_symbol(&self, ix: StrategyIx) -> usize {
        self.slots[ix].symbol
    }

    pub fn strategy_count(&self) -> usize {
        self.slots.len()
    }

    pub fn recorder(&self) -> &R {
        &self.recorder
    }

    pub fn recorder_mut(&mut self) -> &mut R {
        &mut self.recorder
    }

    pub fn into_recorder(self) -> R {
        self.recorder
    }

    /// Count of resting orders per strategy (for metrics / status).
    pub fn resting_counts(&self) -> BTreeMap<StrategyIx, usize> {
        let mut counts = BTreeMap::new();
        for state in &self.symbols {
            for o in state.book.orders() {
                *counts.entry(o.strategy).or_insert(0) += 1;
            }
        }
        counts
    }
}
