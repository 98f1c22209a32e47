//! The engine: one synchronous loop over [`Event`]s, routing prices to the strategies of that
//! symbol through the trigger book, the risk guard and the venue.
//!
//! Fills are queued and delivered to strategies as events, after the intent that caused them has
//! been applied. A price that crosses no trigger touches nothing but two integer compares and the
//! mark timer, which is what keeps backtests fast.

use std::collections::{BTreeMap, VecDeque};

use rust_decimal::Decimal;

use super::book::TriggerBook;
use super::event::{Control, Event};
use super::ledger::Ledger;
use super::order::{
    Amount, Fill, GuardKind, Intent, OrderId, RestingKind, RestingOrder, Side, StrategyIx,
};
use super::price::PriceKey;
use super::recorder::Recorder;
use crate::risk::{OrderCheck, RiskGuard};
use crate::strategy::traits::{Strategy, StrategyCtx};
use crate::strategy::StrategyStatus;
use crate::venue::sim::Execution;
use crate::venue::SimVenue;

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
    seen: bool,
    /// Strategies that have not seen their first price yet.
    pending_start: Vec<StrategyIx>,
}

pub struct Engine<R: Recorder> {
    slots: Vec<Slot>,
    symbols: Vec<SymbolState>,
    venue: SimVenue,
    risk: RiskGuard,
    recorder: R,
    next_order_id: OrderId,
    fills: VecDeque<Fill>,
    fired: Vec<RestingOrder>,
    intents: Vec<Intent>,
    mark_interval_us: i64,
    next_mark_us: i64,
    ticks: u64,
    now_us: i64,
}

impl<R: Recorder> Engine<R> {
    pub fn new(symbols: usize, venue: SimVenue, risk: RiskGuard, recorder: R) -> Self {
        Engine {
            slots: Vec::new(),
            symbols: (0..symbols)
                .map(|_| SymbolState {
                    book: TriggerBook::new(),
                    last: PriceKey(0),
                    last_price: Decimal::ZERO,
                    seen: false,
                    pending_start: Vec::new(),
                })
                .collect(),
            venue,
            risk,
            recorder,
            next_order_id: 1,
            fills: VecDeque::new(),
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
            seen: false,
            pending_start: Vec::new(),
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
            let mut intents = std::mem::take(&mut self.intents);
            {
                let mut ctx = StrategyCtx {
                    ts_us: self.now_us,
                    price,
                    intents: &mut intents,
                };
                self.slots[ix].strategy.on_restore(&mut ctx);
            }
            self.apply_intents(ix, &mut intents);
            self.intents = intents;
        } else {
            self.symbols[symbol].pending_start.push(ix);
        }
        ix
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
            Event::Fill(fill) => {
                self.book_fill(fill);
                self.drain_fills();
            }
            Event::Control(c) => self.on_control(c),
            Event::Timer { ts_us } => {
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
        // A symbol the engine was never given (a feed/registry mismatch) is ignored, not a panic.
        let Some(state) = self.symbols.get_mut(symbol) else {
            return;
        };
        self.ticks += 1;
        self.now_us = ts_us;
        state.last = price;
        let quiet = state.book.is_quiet(price) && state.pending_start.is_empty();
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

    #[cold]
    fn tick_slow(&mut self, symbol: usize, ts_us: i64, key: PriceKey) {
        let Some(price) = key.to_decimal() else {
            return;
        };
        let state = &mut self.symbols[symbol];
        state.last_price = price;
        state.seen = true;
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
        // The price's fills first ...
        let mut fired = std::mem::take(&mut self.fired);
        fired.clear();
        self.symbols[symbol].book.pop_fired_limits(key, &mut fired);
        for order in fired.drain(..) {
            self.execute_resting(order, price, ts_us);
        }
        self.drain_fills();
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
                        tag: req.tag,
                        side: req.side,
                        amount: req.amount,
                        lot_cost: req.lot_cost,
                        limit: None,
                        fee_bps: self.slots[ix].fee_bps,
                    };
                    self.execute(exec, price, ts);
                }
                Intent::CancelAll => self.cancel_all(ix, "strategy cancelled its orders", ts),
                Intent::Stop { reason } => {
                    self.set_status(ix, StrategyStatus::Stopped, &reason, ts)
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

        let (strategy, tag) = (exec.strategy, exec.tag);
        let (spends, available) = match (exec.side, exec.amount) {
            (Side::Buy, Amount::Quote(q)) => (q, slot.ledger.quote),
            (Side::Buy, Amount::Base(b)) => (b * reference, slot.ledger.quote),
            (Side::Sell, Amount::Base(b)) => (b, slot.ledger.base),
            (Side::Sell, Amount::Quote(q)) if reference > Decimal::ZERO => {
                (q / reference, slot.ledger.base)
            }
            (Side::Sell, Amount::Quote(_)) => (Decimal::ZERO, slot.ledger.base),
        };
        let check = OrderCheck {
            active,
            notional,
            reduces_exposure: reduces,
            spends,
            available,
        };
        match self.risk.approve(exec, check) {
            Ok(approved) => {
                let fill = self.venue.execute(&approved, market, ts);
                self.book_fill(fill);
            }
            Err(refusal) => {
                self.recorder.refused(strategy, &refusal, ts);
                self.slots[strategy].strategy.on_cancelled(tag);
            }
        }
    }

    /// Account for a fill the moment it happens (so the next order's funds check sees it) and
    /// queue it for its strategy, which hears of it as an event.
    fn book_fill(&mut self, fill: Fill) {
        let slot = &mut self.slots[fill.strategy];
        slot.ledger.apply(&fill);
        self.recorder.fill(&fill, &slot.ledger);
        self.fills.push_back(fill);
    }

    fn drain_fills(&mut self) {
        while let Some(fill) = self.fills.pop_front() {
            let ix = fill.strategy;
            let slot = &self.slots[ix];
            let price = self.symbols[slot.symbol].last_price;
            let ts = fill.ts_us;
            let mut intents = std::mem::take(&mut self.intents);
            intents.clear();
            {
                let mut ctx = StrategyCtx {
                    ts_us: ts,
                    price,
                    intents: &mut intents,
                };
                self.slots[ix].strategy.on_fill(&mut ctx, &fill);
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
            Control::Pause(ix)
                if self.slots.get(ix).map(|s| s.status) == Some(StrategyStatus::Active) =>
            {
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
                self.set_status(ix, StrategyStatus::Paused, "paused", ts);
            }
            Control::Resume(ix)
                if self.slots.get(ix).map(|s| s.status) == Some(StrategyStatus::Paused) =>
            {
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
            Control::KillSwitch(on) => self.risk.kill_switch = on,
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
        for (ix, slot) in self.slots.iter().enumerate() {
            let state = &self.symbols[slot.symbol];
            if state.seen && slot.strategy.started() {
                let price = state.last.to_decimal().unwrap_or(state.last_price);
                self.recorder.mark(ts, ix, &slot.ledger, price);
            }
        }
        let interval = self.mark_interval_us;
        self.next_mark_us = (ts.div_euclid(interval) + 1) * interval;
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
