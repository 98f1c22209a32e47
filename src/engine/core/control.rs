//! Operator control, marks and the risk guard's actions: cancels, status changes, pauses, equity
//! marks.

use rust_decimal::Decimal;

use super::Engine;
use crate::engine::event::Control;
use crate::engine::recorder::{Mark, Recorder};
use crate::engine::venue::Venue;
use crate::model::order::{OrderId, RestingKind, StrategyIx};
use crate::risk::RiskAction;
use crate::strategy::StrategyStatus;

impl<R: Recorder, V: Venue> Engine<R, V> {
    pub(super) fn cancel_all(&mut self, ix: StrategyIx, reason: &str, ts: i64) {
        let symbol = self.slots[ix].symbol;
        for id in self.symbols[symbol].book.ids_of(ix) {
            self.symbols[symbol].book.remove(id);
            self.recorder.order_cancelled(ix, id, reason, ts);
        }
        for (order, _) in std::mem::take(&mut self.slots[ix].parked) {
            self.recorder.order_cancelled(ix, order.id, reason, ts);
        }
    }

    pub(super) fn set_status(
        &mut self,
        ix: StrategyIx,
        status: StrategyStatus,
        reason: &str,
        ts: i64,
    ) {
        if self.slots[ix].status == status {
            return;
        }
        self.slots[ix].status = status;
        self.recorder.status_changed(ix, status, reason, ts);
    }

    pub(super) fn on_control(&mut self, control: Control) {
        let ts = self.now_us;
        match control {
            Control::Pause(ix) => {
                self.pause(ix, "paused", ts);
            }
            Control::Resume(ix)
                if self.slots.get(ix).map(|s| s.status) == Some(StrategyStatus::Paused) =>
            {
                // An operator's resume accepts the loss so far today and the errors so far.
                self.risk.acknowledge(ix);
                let symbol = self.slots[ix].symbol;
                for (order, guard) in std::mem::take(&mut self.slots[ix].parked) {
                    self.symbols[symbol].book.insert(order, guard);
                }
                self.set_status(ix, StrategyStatus::Active, "resumed", ts);
            }
            Control::Stop { strategy, reason }
                if self
                    .slots
                    .get(strategy)
                    .is_some_and(|s| s.status != StrategyStatus::Stopped) =>
            {
                self.cancel_all(strategy, &reason, ts);
                self.set_status(strategy, StrategyStatus::Stopped, &reason, ts);
            }
            Control::CancelOrder(id) => self.cancel_one(id, ts),
            Control::KillSwitch(on) => self.risk.set_kill_switch(on),
            Control::Halt { reason } => self.risk.halted = Some(reason),
            Control::Mode(mode) => self.risk.mode = mode,
            _ => {}
        }
    }

    pub(super) fn cancel_one(&mut self, id: OrderId, ts: i64) {
        for ix in 0..self.slots.len() {
            let symbol = self.slots[ix].symbol;
            let removed =
                if let Some(pos) = self.slots[ix].parked.iter().position(|(o, _)| o.id == id) {
                    Some(self.slots[ix].parked.remove(pos).0)
                } else if self.symbols[symbol]
                    .book
                    .get(id)
                    .is_some_and(|o| o.strategy == ix)
                {
                    self.symbols[symbol].book.remove(id)
                } else {
                    None
                };
            if let Some(order) = removed {
                self.slots[ix].strategy.on_cancelled(order.tag());
                self.recorder.order_cancelled(ix, id, "operator cancel", ts);
                return;
            }
        }
    }

    pub(super) fn mark_all(&mut self, ts: i64) {
        let mut actions = Vec::new();
        for (symbol, state) in self.symbols.iter_mut().enumerate() {
            if state.seen {
                let price = state.last.to_decimal().unwrap_or(state.last_price);
                state.mark_price = price;
                actions.extend(self.risk.observe_price(symbol, ts, price));
            }
        }
        for (ix, slot) in self.slots.iter().enumerate() {
            let state = &self.symbols[slot.symbol];
            if state.seen && slot.strategy.started() {
                let price = state.mark_price;
                let equity = slot.ledger.equity(price);
                self.recorder.mark(
                    ts,
                    ix,
                    &Mark {
                        ledger: &slot.ledger,
                        price,
                        equity,
                    },
                );
                let active = slot.status == StrategyStatus::Active;
                actions.extend(self.risk.observe_equity(ix, ts, equity, active));
                if self.recorder.shows_risk() {
                    if let Some(view) = self.risk.view(ix) {
                        self.recorder.risk_marked(ix, &view);
                    }
                }
            }
        }
        if self.recorder.shows_risk() {
            self.recorder.outflow_marked(self.risk.hourly_outflow(ts));
        }
        for action in actions {
            self.apply_risk_action(action, ts);
        }
        let interval = self.mark_interval_us;
        self.next_mark_us = (ts.div_euclid(interval) + 1) * interval;
    }

    /// Do what the risk guard decided, on record with why.
    pub(super) fn apply_risk_action(&mut self, action: RiskAction, ts: i64) {
        match action {
            RiskAction::Pause {
                strategy,
                kind,
                message,
            } => {
                if self.pause(strategy, &message, ts) {
                    self.recorder.risk_paused(strategy, kind, &message, ts);
                }
            }
            RiskAction::BuysBlocked {
                symbol,
                until_us,
                message,
            } => self.recorder.buys_blocked(symbol, until_us, &message, ts),
        }
    }

    /// Pool vs reference price of a market priced by its pool, in bps.
    pub(super) fn divergence_bps(&self, symbol: usize) -> Option<Decimal> {
        let reference = self.risk.reference_of(symbol)?;
        let pool = self.last_price(symbol)?;
        let reference = self.last_price(reference)?;
        crate::model::divergence::divergence_bps(pool, reference)
    }

    /// Take a strategy's orders out of the book until it resumes. `false`: it was not active.
    pub(super) fn pause(&mut self, ix: StrategyIx, reason: &str, ts: i64) -> bool {
        if self.slots.get(ix).map(|s| s.status) != Some(StrategyStatus::Active) {
            return false;
        }
        let symbol = self.slots[ix].symbol;
        let mut parked = Vec::new();
        for id in self.symbols[symbol].book.ids_of(ix) {
            let guard = matches!(
                self.symbols[symbol].book.get(id).map(|o| &o.kind),
                Some(RestingKind::Guard(_))
            );
            if let Some(order) = self.symbols[symbol].book.remove(id) {
                parked.push((order, guard));
            }
        }
        self.slots[ix].parked = parked;
        self.set_status(ix, StrategyStatus::Paused, reason, ts);
        true
    }
}
