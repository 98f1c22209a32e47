//! The engine: one synchronous loop over [`Event`]s, routing prices to the strategies of that
//! symbol through the trigger book, the risk guard and the venue.
//!
//! An approved order goes to the [`Venue`] and is in flight until the venue's answer (accepted,
//! filled, failed) comes back as a report: at once from the instant simulated venue, later from a
//! delayed one or from the chain. What it spends is reserved meanwhile. Fills and failures are
//! queued and delivered to strategies as events, after the intent that caused them has been
//! applied. A price that crosses no trigger touches nothing but three integer compares and the
//! mark timer, which is what keeps backtests fast.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::ops::Range;

use rust_decimal::Decimal;

use super::book::TriggerBook;
use super::event::{Control, Event};
use super::inflight::InFlight;
use super::ledger::Ledger;
use super::recorder::{Mark, Recorder};
use super::venue::{Execution, Venue, VenueReport};
use crate::model::order::{
    Amount, Fill, GuardKind, Intent, OrderId, RestingKind, RestingOrder, Side, StrategyIx,
};
use crate::model::PriceKey;
use crate::risk::{OrderCheck, RiskAction, RiskGuard};
use crate::strategy::traits::{Strategy, StrategyCtx};
use crate::strategy::StrategyStatus;

/// Equity is marked for every strategy once per this much event time (and at every fill's ledger).
pub const DEFAULT_MARK_INTERVAL_US: i64 = 60_000_000;

struct Slot {
    strategy: Box<dyn Strategy>,
    symbol: usize,
    status: StrategyStatus,
    fee_bps: u32,
    ledger: Ledger,
    /// Orders of a paused strategy, out of the book until it resumes.
    parked: Vec<(RestingOrder, bool)>,
}

struct SymbolState {
    book: TriggerBook,
    last: PriceKey,
    last_price: Decimal,
    /// The price of the latest mark (made once per symbol, read by every strategy on it).
    mark_price: Decimal,
    seen: bool,
    /// Strategies that have not seen their first price yet.
    pending_start: Vec<StrategyIx>,
    /// Market orders issued before the symbol had a price (a restored strategy finishing a
    /// liquidation at start-up): they go to the venue at the first price, not at zero and not
    /// before the daemon has routed the strategy to its venue.
    deferred: Vec<Execution>,
}

/// What a strategy hears about its orders, in the order it happened.
#[derive(Debug)]
enum Outcome {
    Fill(Fill),
    Failed {
        strategy: StrategyIx,
        tag: u64,
        retryable: bool,
        ts_us: i64,
    },
}

impl Outcome {
    fn strategy(&self) -> StrategyIx {
        match self {
            Outcome::Fill(f) => f.strategy,
            Outcome::Failed { strategy, .. } => *strategy,
        }
    }
}

pub struct Engine<R: Recorder, V: Venue> {
    slots: Vec<Slot>,
    symbols: Vec<SymbolState>,
    venue: V,
    risk: RiskGuard,
    recorder: R,
    next_order_id: OrderId,
    outcomes: VecDeque<Outcome>,
    /// Orders the venue has not answered for, by id (ordered: deterministic iteration).
    in_flight: BTreeMap<OrderId, InFlight>,
    reports: Vec<VenueReport>,
    /// Strategy wake-ups `(time, strategy)`, earliest first.
    wakes: BinaryHeap<Reverse<(i64, StrategyIx)>>,
    /// Earliest engine time at which a venue report or a wake-up is due (`i64::MAX`: none).
    next_due_us: i64,
    fired: Vec<RestingOrder>,
    intents: Vec<Intent>,
    mark_interval_us: i64,
    next_mark_us: i64,
    ticks: u64,
    now_us: i64,
}

impl<R: Recorder, V: Venue> Engine<R, V> {
    pub fn new(symbols: usize, venue: V, mut risk: RiskGuard, recorder: R) -> Self {
        risk.set_outcome_history(recorder.shows_risk());
        Engine {
            slots: Vec::new(),
            symbols: (0..symbols)
                .map(|_| SymbolState {
                    book: TriggerBook::new(),
                    last: PriceKey(0),
                    last_price: Decimal::ZERO,
                    mark_price: Decimal::ZERO,
                    seen: false,
                    pending_start: Vec::new(),
                    deferred: Vec::new(),
                })
                .collect(),
            venue,
            risk,
            recorder,
            next_order_id: 1,
            outcomes: VecDeque::new(),
            in_flight: BTreeMap::new(),
            reports: Vec::new(),
            wakes: BinaryHeap::new(),
            next_due_us: i64::MAX,
            fired: Vec::new(),
            intents: Vec::new(),
            mark_interval_us: DEFAULT_MARK_INTERVAL_US,
            next_mark_us: i64::MIN,
            ticks: 0,
            now_us: 0,
        }
    }

    pub fn with_mark_interval(mut self, interval_us: i64) -> Self {
        self.mark_interval_us = interval_us.max(1);
        self
    }

    /// Add a symbol slot at runtime (the daemon learns symbols as strategies are created).
    pub fn add_symbol(&mut self) -> usize {
        self.symbols.push(SymbolState {
            book: TriggerBook::new(),
            last: PriceKey(0),
            last_price: Decimal::ZERO,
            mark_price: Decimal::ZERO,
            seen: false,
            pending_start: Vec::new(),
            deferred: Vec::new(),
        });
        self.symbols.len() - 1
    }

    /// Register a strategy; it starts on the next price of `symbol` (unless already started,
    /// as a restored one is: then its resting orders are re-issued now).
    pub fn add_strategy(
        &mut self,
        strategy: Box<dyn Strategy>,
        symbol: usize,
        fee_bps: u32,
        status: StrategyStatus,
        ledger: Option<Ledger>,
    ) -> StrategyIx {
        let ix = self.slots.len();
        let started = strategy.started();
        let ledger = ledger.unwrap_or_else(|| Ledger::new(strategy.initial_quote()));
        self.slots.push(Slot {
            strategy,
            symbol,
            status,
            fee_bps,
            ledger,
            parked: Vec::new(),
        });
        if started {
            let price = self.symbols[symbol].last_price;
            self.call_strategy(ix, self.now_us, price, |s, ctx| s.on_restore(ctx));
        } else {
            self.symbols[symbol].pending_start.push(ix);
        }
        ix
    }

    /// Replace a paused strategy by the same one under updated parameters (`strategy update`):
    /// its parked orders are cancelled and it re-issues what its state calls for under the new
    /// parameters (parked until it resumes). Refused (`false`) unless it is paused.
    pub fn replace_strategy(
        &mut self,
        ix: StrategyIx,
        strategy: Box<dyn Strategy>,
        fee_bps: u32,
    ) -> bool {
        if self.slots.get(ix).map(|s| s.status) != Some(StrategyStatus::Paused) {
            return false;
        }
        let ts = self.now_us;
        for (order, _) in std::mem::take(&mut self.slots[ix].parked) {
            self.recorder
                .order_cancelled(ix, order.id, "parameters updated", ts);
        }
        self.slots[ix].strategy = strategy;
        self.slots[ix].fee_bps = fee_bps;
        if self.slots[ix].strategy.started() {
            let price = self.symbols[self.slots[ix].symbol].last_price;
            self.call_strategy(ix, ts, price, |s, ctx| s.on_restore(ctx));
        }
        true
    }

    /// Move the engine's clock forward (never back). The live loop calls it before control,
    /// calls and venue fills, so what they record carries the time they happened, not the time
    /// of the last trade.
    pub fn advance_clock(&mut self, ts_us: i64) {
        self.now_us = self.now_us.max(ts_us);
    }

    pub fn process(&mut self, event: Event) {
        match event {
            Event::Tick {
                symbol,
                ts_us,
                price,
            } => self.on_tick(symbol, ts_us, price),
            Event::Venue(report) => {
                self.apply_report(report);
                self.drain_fills();
            }
            Event::Control(c) => self.on_control(c),
            Event::Timer { ts_us } => {
                if ts_us >= self.next_due_us {
                    self.run_due(ts_us);
                }
                self.advance_clock(ts_us);
                if ts_us >= self.next_mark_us {
                    self.mark_all(ts_us);
                }
            }
        }
    }

    /// The hot path: one price of one symbol.
    #[inline]
    pub fn on_tick(&mut self, symbol: usize, ts_us: i64, price: PriceKey) {
        // Venue answers and wake-ups due before this price happen at the prices before it.
        if ts_us >= self.next_due_us {
            self.run_due(ts_us);
        }
        // A symbol the engine was never given (a feed/registry mismatch) is ignored, not a panic.
        let Some(state) = self.symbols.get_mut(symbol) else {
            return;
        };
        self.ticks += 1;
        self.now_us = ts_us;
        state.last = price;
        let quiet = state.book.is_quiet(price)
            && state.pending_start.is_empty()
            && state.deferred.is_empty();
        if quiet && state.seen {
            if ts_us >= self.next_mark_us {
                self.mark_all(ts_us);
            }
            return;
        }
        self.tick_slow(symbol, ts_us, price);
        if ts_us >= self.next_mark_us {
            self.mark_all(ts_us);
        }
    }

    /// Prices `range` of a slab, in order: exactly what calling [`Engine::on_tick`] on each
    /// would do, but a stretch of prices that fires nothing, with nothing due and no mark, is
    /// passed over in one scan — whole blocks at a time by their lowest and highest price. A
    /// sweep runs thousands of grids over the same ticks, and almost every tick is such a
    /// stretch for almost every grid.
    pub fn on_tick_slab(&mut self, symbol: usize, slab: &TickSlab<'_>, range: Range<usize>) {
        let end = range.end.min(slab.ts.len()).min(slab.keys.len());
        let mut i = range.start;
        while i < end {
            if let Some(state) = self.symbols.get(symbol) {
                if state.seen && state.pending_start.is_empty() && state.deferred.is_empty() {
                    let (lo, hi) = state.book.quiet_band();
                    let due = self.next_due_us.min(self.next_mark_us);
                    let j = slab.quiet_until(i, end, lo, hi, due);
                    if j > i {
                        self.ticks += (j - i) as u64;
                        self.now_us = slab.ts[j - 1];
                        self.symbols[symbol].last = slab.keys[j - 1];
                        i = j;
                        continue;
                    }
                }
            }
            self.on_tick(symbol, slab.ts[i], slab.keys[i]);
            i += 1;
        }
    }

    #[cold]
    fn tick_slow(&mut self, symbol: usize, ts_us: i64, key: PriceKey) {
        let Some(price) = key.to_decimal() else {
            return;
        };
        let state = &mut self.symbols[symbol];
        state.last_price = price;
        state.seen = true;
        if self.risk.halted.is_some() {
            // Nothing is placed while halted: orders keep resting, new strategies wait.
            return;
        }
        // Strategies seeing their first price start on it (paused ones wait).
        if !state.pending_start.is_empty() {
            let pending = std::mem::take(&mut state.pending_start);
            let mut still = Vec::new();
            for ix in pending {
                if self.slots[ix].status == StrategyStatus::Active {
                    self.call_strategy(ix, ts_us, price, |s, ctx| s.on_start(ctx));
                } else if self.slots[ix].status == StrategyStatus::Paused {
                    still.push(ix);
                }
            }
            self.symbols[symbol].pending_start.extend(still);
        }
        if !self.symbols[symbol].deferred.is_empty() {
            for exec in std::mem::take(&mut self.symbols[symbol].deferred) {
                self.execute(exec, price, ts_us);
            }
            self.drain_fills();
        }
        // The price's fills first ...
        self.fire_limits(symbol, key, price, ts_us);
        let mut fired = std::mem::take(&mut self.fired);
        fired.clear();
        // ... then the guard checks on the same price: stop-loss / take-profit before range exits.
        self.symbols[symbol].book.pop_fired_guards(key, &mut fired);
        fired.sort_by_key(|o| match &o.kind {
            RestingKind::Guard(g) => match g.kind {
                GuardKind::StopLoss | GuardKind::TakeProfit => (0, o.id),
                GuardKind::ExitBelow | GuardKind::ExitAbove => (1, o.id),
            },
            RestingKind::Limit(_) => (2, o.id),
        });
        for order in fired.drain(..) {
            if let RestingKind::Guard(g) = &order.kind {
                if self.slots[order.strategy].status == StrategyStatus::Active {
                    let kind = g.kind;
                    self.call_strategy(order.strategy, ts_us, price, |s, ctx| {
                        s.on_guard(ctx, kind)
                    });
                }
            }
        }
        self.fired = fired;
    }

    fn call_strategy<F>(&mut self, ix: StrategyIx, ts_us: i64, price: Decimal, f: F)
    where
        F: FnOnce(&mut dyn Strategy, &mut StrategyCtx<'_>),
    {
        let mut intents = std::mem::take(&mut self.intents);
        intents.clear();
        {
            let mut ctx = StrategyCtx {
                ts_us,
                price,
                intents: &mut intents,
            };
            f(self.slots[ix].strategy.as_mut(), &mut ctx);
        }
        self.apply_intents(ix, &mut intents);
        self.intents = intents;
        self.drain_fills();
    }

    fn apply_intents(&mut self, ix: StrategyIx, intents: &mut Vec<Intent>) {
        let symbol = self.slots[ix].symbol;
        let price = self.symbols[symbol].last_price;
        let ts = self.now_us;
        for intent in intents.drain(..) {
            match intent {
                Intent::Limit(req) => {
                    let below = req.side == Side::Buy;
                    let trigger = if below {
                        PriceKey::floor_of(req.limit)
                    } else {
                        PriceKey::ceil_of(req.limit)
                    };
                    let order = RestingOrder {
                        id: self.take_order_id(),
                        strategy: ix,
                        kind: RestingKind::Limit(req),
                        trigger,
                        below,
                    };
                    self.rest(order, false, ts);
                }
                Intent::Guard(req) => {
                    let (trigger, below) = match req.kind {
                        GuardKind::StopLoss => (PriceKey::floor_of(req.price), true),
                        GuardKind::TakeProfit => (PriceKey::ceil_of(req.price), false),
                        GuardKind::ExitBelow => {
                            (PriceKey(PriceKey::ceil_of(req.price).0 - 1), true)
                        }
                        GuardKind::ExitAbove => {
                            (PriceKey(PriceKey::floor_of(req.price).0 + 1), false)
                        }
                    };
                    let order = RestingOrder {
                        id: self.take_order_id(),
                        strategy: ix,
                        kind: RestingKind::Guard(req),
                        trigger,
                        below,
                    };
                    self.rest(order, true, ts);
                }
                Intent::Market(req) => {
                    let exec = Execution {
                        order_id: self.take_order_id(),
                        strategy: ix,
                        symbol,
                        tag: req.tag,
                        side: req.side,
                        amount: req.amount,
                        lot_cost: req.lot_cost,
                        limit: None,
                        fee_bps: self.slots[ix].fee_bps,
                    };
                    if self.symbols[symbol].seen {
                        self.execute(exec, price, ts);
                    } else {
                        self.symbols[symbol].deferred.push(exec);
                    }
                }
                Intent::CancelAll => self.cancel_all(ix, "strategy cancelled its orders", ts),
                Intent::Stop { reason } => {
                    self.set_status(ix, StrategyStatus::Stopped, &reason, ts)
                }
                Intent::WakeAt(at) => {
                    self.wakes.push(Reverse((at, ix)));
                    self.next_due_us = self.next_due_us.min(at);
                }
            }
        }
    }

    fn take_order_id(&mut self) -> OrderId {
        let id = self.next_order_id;
        self.next_order_id += 1;
        id
    }

    fn rest(&mut self, order: RestingOrder, guard: bool, ts: i64) {
        self.recorder.order_placed(&order, ts);
        let slot = &mut self.slots[order.strategy];
        match slot.status {
            StrategyStatus::Active => self.symbols[slot.symbol].book.insert(order, guard),
            StrategyStatus::Paused => slot.parked.push((order, guard)),
            StrategyStatus::Stopped => {}
        }
    }

    fn execute_resting(&mut self, order: RestingOrder, price: Decimal, ts: i64) {
        let RestingKind::Limit(req) = order.kind else {
            return;
        };
        let exec = Execution {
            order_id: order.id,
            strategy: order.strategy,
            symbol: self.slots[order.strategy].symbol,
            tag: req.tag,
            side: req.side,
            amount: req.amount,
            lot_cost: req.lot_cost,
            limit: Some(req.limit),
            fee_bps: self.slots[order.strategy].fee_bps,
        };
        self.execute(exec, price, ts);
    }

    fn execute(&mut self, exec: Execution, market: Decimal, ts: i64) {
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
    fn apply_reports(&mut self, mut reports: Vec<VenueReport>) {
        for report in reports.drain(..) {
            self.apply_report(report);
        }
        self.reports = reports;
    }

    /// Apply one venue answer to the order in flight it names. A report for an order that is not
    /// in flight (answered already, or never submitted) is reported as ignored and changes nothing.
    fn apply_report(&mut self, report: VenueReport) {
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
            } => {
                let Some(flight) = self.in_flight.get_mut(&id) else {
                    return;
                };
                let strategy = flight.order.strategy;
                self.recorder
                    .order_accepted(strategy, id, &reference, ts_us);
                flight.reference = Some(reference);
            }
            VenueReport::Replaced {
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
                if let Some(p) = bnb_price {
                    ledger.gas += gas_bnb * p;
                }
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
    fn release(&mut self, id: OrderId) -> Option<InFlight> {
        let flight = self.in_flight.remove(&id)?;
        let ledger = &mut self.slots[flight.order.strategy].ledger;
        match flight.order.side {
            Side::Buy => ledger.reserved_quote -= flight.reserved,
            Side::Sell => ledger.reserved_base -= flight.reserved,
        }
        Some(flight)
    }

    /// Venue answers and strategy wake-ups due by `now_us`, one at a time in time order, each at
    /// its own time (an answer due at 10:00:01 happens then, not at the next tick's time).
    #[cold]
    fn run_due(&mut self, now_us: i64) {
        for state in &mut self.symbols {
            if state.seen {
                state.last_price = state.last.to_decimal().unwrap_or(state.last_price);
            }
        }
        loop {
            let venue_due = self.venue.next_due_us().unwrap_or(i64::MAX);
            let wake_due = self.wakes.peek().map_or(i64::MAX, |Reverse((at, _))| *at);
            let due = venue_due.min(wake_due);
            if due > now_us {
                self.next_due_us = due;
                return;
            }
            self.advance_clock(due);
            if venue_due <= wake_due {
                let mut reports = std::mem::take(&mut self.reports);
                let symbols = &self.symbols;
                let price = |s: usize| symbols.get(s).and_then(|st| st.last.to_decimal());
                self.venue.poll(due, &price, &mut reports);
                self.apply_reports(reports);
                self.drain_fills();
            } else if let Some(Reverse((at, ix))) = self.wakes.pop() {
                let Some(slot) = self.slots.get(ix) else {
                    continue;
                };
                if slot.status != StrategyStatus::Stopped {
                    let symbol = slot.symbol;
                    let price = self.symbols[symbol].last_price;
                    self.call_strategy(ix, at, price, |s, ctx| s.on_timer(ctx));
                    self.fire_at_last_price(symbol, at);
                }
            }
        }
    }

    /// Orders a wake-up re-armed (after a failure or a refusal that cleared) are checked at once
    /// against the last price seen: one it already satisfies fires now, not at the next price
    /// (which may be long in coming on a quiet pool).
    fn fire_at_last_price(&mut self, symbol: usize, ts_us: i64) {
        let state = &self.symbols[symbol];
        if !state.seen || self.risk.halted.is_some() {
            return;
        }
        let key = state.last;
        if let Some(price) = key.to_decimal() {
            self.fire_limits(symbol, key, price, ts_us);
        }
    }

    /// Execute `symbol`'s resting limits that price `key` satisfies, and book their fills.
    fn fire_limits(&mut self, symbol: usize, key: PriceKey, price: Decimal, ts_us: i64) {
        let mut fired = std::mem::take(&mut self.fired);
        fired.clear();
        self.symbols[symbol].book.pop_fired_limits(key, &mut fired);
        for order in fired.drain(..) {
            self.execute_resting(order, price, ts_us);
        }
        self.fired = fired;
        self.drain_fills();
    }

    /// Account for a fill the moment it happens (so the next order's funds check sees it) and
    /// queue it for its strategy, which hears of it as an event.
    fn book_fill(&mut self, fill: Fill) {
        let slot = &mut self.slots[fill.strategy];
        slot.ledger.apply(&fill);
        self.recorder.fill(&fill, &slot.ledger);
        self.outcomes.push_back(Outcome::Fill(fill));
    }

    fn drain_fills(&mut self) {
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

    fn cancel_all(&mut self, ix: StrategyIx, reason: &str, ts: i64) {
        let symbol = self.slots[ix].symbol;
        for id in self.symbols[symbol].book.ids_of(ix) {
            self.symbols[symbol].book.remove(id);
            self.recorder.order_cancelled(ix, id, reason, ts);
        }
        for (order, _) in std::mem::take(&mut self.slots[ix].parked) {
            self.recorder.order_cancelled(ix, order.id, reason, ts);
        }
    }

    fn set_status(&mut self, ix: StrategyIx, status: StrategyStatus, reason: &str, ts: i64) {
        if self.slots[ix].status == status {
            return;
        }
        self.slots[ix].status = status;
        self.recorder.status_changed(ix, status, reason, ts);
    }

    fn on_control(&mut self, control: Control) {
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

    fn cancel_one(&mut self, id: OrderId, ts: i64) {
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

    fn mark_all(&mut self, ts: i64) {
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
    fn apply_risk_action(&mut self, action: RiskAction, ts: i64) {
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
    fn divergence_bps(&self, symbol: usize) -> Option<Decimal> {
        let reference = self.risk.reference_of(symbol)?;
        let pool = self.last_price(symbol)?;
        let reference = self.last_price(reference)?;
        crate::model::divergence::divergence_bps(pool, reference)
    }

    /// Take a strategy's orders out of the book until it resumes. `false`: it was not active.
    fn pause(&mut self, ix: StrategyIx, reason: &str, ts: i64) -> bool {
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

/// Ticks per block of a [`TickSlab`].
pub const TICK_BLOCK: usize = 64;

/// Time-ordered ticks of one symbol, with the lowest and highest price of each block of
/// [`TICK_BLOCK`] ticks (`lows[b]`, `highs[b]` cover `keys[b * TICK_BLOCK..]`); without them
/// (empty) the scan goes tick by tick.
#[derive(Debug, Clone, Copy)]
pub struct TickSlab<'a> {
    pub ts: &'a [i64],
    pub keys: &'a [PriceKey],
    pub lows: &'a [PriceKey],
    pub highs: &'a [PriceKey],
}

/// Each block's lowest and highest price, for [`TickSlab`].
pub fn block_bounds(keys: &[PriceKey], lows: &mut Vec<PriceKey>, highs: &mut Vec<PriceKey>) {
    lows.clear();
    highs.clear();
    for block in keys.chunks(TICK_BLOCK) {
        let (mut lo, mut hi) = (PriceKey::MAX, PriceKey::MIN);
        for &k in block {
            lo = lo.min(k);
            hi = hi.max(k);
        }
        lows.push(lo);
        highs.push(hi);
    }
}

impl TickSlab<'_> {
    /// The first index in `from..end` that fires something (at or outside `(lo, hi)`) or comes
    /// at or after `due`; `end` if none does.
    #[inline]
    fn quiet_until(&self, from: usize, end: usize, lo: PriceKey, hi: PriceKey, due: i64) -> usize {
        let keys = self.keys;
        // Time never goes back, so the ticks before `due` are a prefix.
        let end = if end > from && self.ts[end - 1] >= due {
            from + self.ts[from..end].partition_point(|&t| t < due)
        } else {
            end
        };
        let mut i = from;
        let quiet = |k: PriceKey| k > lo && k < hi;
        while i < end && !i.is_multiple_of(TICK_BLOCK) {
            if !quiet(keys[i]) {
                return i;
            }
            i += 1;
        }
        if self.lows.len() * TICK_BLOCK >= end {
            while i + TICK_BLOCK <= end {
                let b = i / TICK_BLOCK;
                if !(self.lows[b] > lo && self.highs[b] < hi) {
                    break;
                }
                i += TICK_BLOCK;
            }
        }
        while i < end && quiet(keys[i]) {
            i += 1;
        }
        i
    }
}
