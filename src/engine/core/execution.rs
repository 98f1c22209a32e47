//! Orders out to the venue and its answers back: execution, reports, releases, fills booked and
//! handed to strategies.

use rust_decimal::Decimal;

use super::{Engine, Outcome};
use crate::engine::inflight::InFlight;
use crate::engine::recorder::Recorder;
use crate::engine::venue::{Execution, Venue, VenueReport};
use crate::model::order::{Amount, Fill, OrderId, Side};
use crate::risk::OrderCheck;
use crate::strategy::traits::StrategyCtx;
use crate::strategy::StrategyStatus;

impl<R: Recorder, V: Venue> Engine<R, V> {
    pub(super) fn execute(&mut self, exec: Execution, market: Decimal, ts: i64) {
        let slot = &self.slots[exec.strategy];
        let reference = exec.limit.unwrap_or(market);
        let notional = match exec.amount {
            Amount::Quote(q) => q,
            Amount::Base(b) => b * reference,
        };
        let active = slot.status == StrategyStatus::Active;
        let reduces = exec.side == Side::Sell;
        let position = slot.ledger.base * reference;
        let divergence_bps = self.divergence_bps(exec.symbol);
        // What the order spends, against what is not already promised to orders in flight.
        let (spends, available) = match (exec.side, exec.amount) {
            (Side::Buy, Amount::Quote(q)) => (q, slot.ledger.available_quote()),
            (Side::Buy, Amount::Base(b)) => (b * reference, slot.ledger.available_quote()),
            (Side::Sell, Amount::Base(b)) => (b, slot.ledger.available_base()),
            (Side::Sell, Amount::Quote(q)) if reference > Decimal::ZERO => {
                (q / reference, slot.ledger.available_base())
            }
            (Side::Sell, Amount::Quote(_)) => (Decimal::ZERO, slot.ledger.available_base()),
        };
        let check = OrderCheck {
            strategy: exec.strategy,
            symbol: exec.symbol,
            active,
            notional,
            reduces_exposure: reduces,
            spends,
            available,
            position,
            divergence_bps,
            ts_us: ts,
        };
        match self.risk.approve(exec, check) {
            Ok(approved) => {
                let o = approved.inner();
                let slot = &mut self.slots[o.strategy];
                match o.side {
                    Side::Buy => slot.ledger.reserved_quote += spends,
                    Side::Sell => slot.ledger.reserved_base += spends,
                }
                self.in_flight.insert(
                    o.order_id,
                    InFlight {
                        order: o.clone(),
                        reserved: spends,
                        submitted_us: ts,
                        reference: None,
                    },
                );
                self.recorder.order_submitted(o, ts);
                let mut reports = std::mem::take(&mut self.reports);
                self.venue.submit(approved, market, ts, &mut reports);
                self.apply_reports(reports);
                if let Some(due) = self.venue.next_due_us() {
                    self.next_due_us = self.next_due_us.min(due);
                }
            }
            Err((exec, refusal)) => {
                self.recorder.refused(&exec, &refusal, ts);
                // A refusal that lifts by itself (cool-down, divergence, position) re-arms.
                self.outcomes.push_back(Outcome::Failed {
                    strategy: exec.strategy,
                    tag: exec.tag,
                    retryable: refusal.retryable(),
                    ts_us: ts,
                });
            }
        }
    }

    /// Apply the reports a venue call buffered, then hand the buffer back for reuse.
    pub(super) fn apply_reports(&mut self, mut reports: Vec<VenueReport>) {
        for report in reports.drain(..) {
            self.apply_report(report);
        }
        self.reports = reports;
    }

    /// Apply one venue answer to the order in flight it names. A report for an order that is not
    /// in flight (answered already, or never submitted) is reported as ignored and changes nothing.
    pub(super) fn apply_report(&mut self, report: VenueReport) {
        let id = report.order_id();
        let why = match self.in_flight.get(&id) {
            None if id < self.next_order_id => {
                Some("order not in flight (late or duplicate report)")
            }
            None => Some("unknown order"),
            Some(f) if f.reference.is_some() && matches!(report, VenueReport::Accepted { .. }) => {
                Some("order already accepted")
            }
            Some(_) => None,
        };
        if let Some(why) = why {
            self.recorder.report_ignored(&report, why, self.now_us);
            return;
        }
        match report {
            VenueReport::Accepted {
                reference, ts_us, ..
            }
            | VenueReport::Replaced {
                reference, ts_us, ..
            } => {
                let Some(flight) = self.in_flight.get_mut(&id) else {
                    return;
                };
                let strategy = flight.order.strategy;
                self.recorder
                    .order_accepted(strategy, id, &reference, ts_us);
                flight.reference = Some(reference);
            }
            VenueReport::GasPaid {
                gas_bnb, bnb_price, ..
            } => {
                // Gas a swap paid for nothing (it reverted): the strategy paid it all the same.
                let Some(flight) = self.in_flight.get(&id) else {
                    return;
                };
                let ledger = &mut self.slots[flight.order.strategy].ledger;
                ledger.gas_bnb += gas_bnb;
                ledger.gas += crate::model::order::gas_in_quote(gas_bnb, bnb_price);
            }
            VenueReport::Filled(mut fill) => {
                let Some(flight) = self.release(id) else {
                    return;
                };
                // The engine's own record of the order decides whose fill it is.
                let o = flight.order;
                fill.strategy = o.strategy;
                fill.tag = o.tag;
                fill.side = o.side;
                fill.lot_cost = o.lot_cost;
                let (strategy, ts, spent) = (fill.strategy, fill.ts_us, fill.quote);
                self.book_fill(fill);
                // What went into the swap, in quote (a sell's lot is worth what it fetched).
                self.risk.record_spend(strategy, ts, spent);
                if let Some(action) = self.risk.record_outcome(strategy, ts, false) {
                    self.apply_risk_action(action, ts);
                }
            }
            VenueReport::Failed {
                reason,
                retryable,
                ts_us,
                ..
            } => {
                let Some(flight) = self.release(id) else {
                    return;
                };
                self.recorder
                    .order_failed(flight.order.strategy, id, &reason, retryable, ts_us);
                self.outcomes.push_back(Outcome::Failed {
                    strategy: flight.order.strategy,
                    tag: flight.order.tag,
                    retryable,
                    ts_us,
                });
                if let Some(action) = self.risk.record_outcome(flight.order.strategy, ts_us, true) {
                    self.apply_risk_action(action, ts_us);
                }
            }
        }
    }

    /// Take an order out of flight and give back what it had reserved.
    pub(super) fn release(&mut self, id: OrderId) -> Option<InFlight> {
        let flight = self.in_flight.remove(&id)?;
        let ledger = &mut self.slots[flight.order.strategy].ledger;
        match flight.order.side {
            Side::Buy => ledger.reserved_quote -= flight.reserved,
            Side::Sell => ledger.reserved_base -= flight.reserved,
        }
        Some(flight)
    }

    /// Account for a fill the moment it happens (so the next order's funds check sees it) and
    /// queue it for its strategy, which hears of it as an event.
    pub(super) fn book_fill(&mut self, fill: Fill) {
        let slot = &mut self.slots[fill.strategy];
        slot.ledger.apply(&fill);
        self.recorder.fill(&fill, &slot.ledger);
        self.outcomes.push_back(Outcome::Fill(fill));
    }

    pub(super) fn drain_fills(&mut self) {
        while let Some(outcome) = self.outcomes.pop_front() {
            let ix = outcome.strategy();
            let slot = &self.slots[ix];
            let price = self.symbols[slot.symbol].last_price;
            let ts = match &outcome {
                Outcome::Fill(f) => f.ts_us,
                Outcome::Failed { ts_us, .. } => *ts_us,
            };
            let mut intents = std::mem::take(&mut self.intents);
            intents.clear();
            {
                let mut ctx = StrategyCtx {
                    ts_us: ts,
                    price,
                    intents: &mut intents,
                };
                let strategy = self.slots[ix].strategy.as_mut();
                match &outcome {
                    Outcome::Fill(fill) => strategy.on_fill(&mut ctx, fill),
                    Outcome::Failed { tag, retryable, .. } => {
                        strategy.on_failed(&mut ctx, *tag, *retryable)
                    }
                }
            }
            if self.slots[ix].status != StrategyStatus::Stopped {
                self.apply_intents(ix, &mut intents);
            }
            self.intents = intents;
        }
    }
}
