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
use super::event::Event;
use super::inflight::InFlight;
use super::ledger::Ledger;
use super::recorder::Recorder;
use super::venue::{Execution, Venue, VenueReport};
use crate::model::order::{
    Fill, GuardKind, Intent, OrderId, RestingKind, RestingOrder, Side, StrategyIx,
};
use crate::model::PriceKey;
use crate::risk::RiskGuard;
use crate::strategy::traits::{Strategy, StrategyCtx};
use crate::strategy::StrategyStatus;

mod control;
mod execution;
mod slab;
mod state;

pub use slab::{block_bounds, TickSlab, TICK_BLOCK};

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

    /// Start a new active strategy on its market's last price now, rather than at the market's
    /// next price: a pool's price only ticks when the pool trades, and a live grid joining a
    /// quiet pool would otherwise wait for it. Nothing happens before the market's first price,
    /// while trading is halted, or for a strategy already started or paused.
    pub fn start_on_last_price(&mut self, ix: StrategyIx) {
        let Some(slot) = self.slots.get(ix) else {
            return;
        };
        let symbol = slot.symbol;
        let state = &self.symbols[symbol];
        if !state.seen
            || self.risk.halted.is_some()
            || slot.status != StrategyStatus::Active
            || !state.pending_start.contains(&ix)
        {
            return;
        }
        let price = state.last_price;
        self.symbols[symbol].pending_start.retain(|p| *p != ix);
        self.call_strategy(ix, self.now_us, price, |s, ctx| s.on_start(ctx));
        self.drain_fills();
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
}
