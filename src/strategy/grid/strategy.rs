//! The grid as a synchronous state machine, exactly per GRID.md.
//!
//! Each of the N-1 cells is empty (a buy rests at `L_i`) or holding one lot (its sell rests at
//! `L_{i+1}`). Order tags encode the cell, so a fill tells the grid which cell changed.
//!
//! Orders can fail at the venue (a swap that times out or reverts). A retryable failure re-arms
//! the same order after a backoff that doubles per consecutive failure of that order, from
//! [`RETRY_BASE_US`] up to [`RETRY_MAX_US`], so a venue that fails every time sees at most one
//! attempt per cell a minute, never a storm. A permanent failure settles the cell as a cancel
//! would: a buy that never happened leaves it idle, a sell that never happened leaves the lot
//! stranded (held, no resting sell).

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::levels::grid_levels;
use super::params::{GridParams, OnExit};
use crate::model::order::{
    Amount, Fill, GuardKind, GuardRequest, Intent, LimitRequest, MarketRequest, Side,
};
use crate::strategy::traits::{Strategy, StrategyCtx};

const TAG_LIMIT_BUY: u64 = 0;
const TAG_LIMIT_SELL: u64 = 1_000;
const TAG_START_BUY: u64 = 2_000;
const TAG_LIQUIDATE: u64 = 3_000;
const TAG_GUARD: u64 = 9_000;

/// First re-arm delay after a retryable failure (µs of engine time).
pub const RETRY_BASE_US: i64 = 1_000_000;
/// Longest re-arm delay, however many failures came before.
pub const RETRY_MAX_US: i64 = 60_000_000;

/// Re-arm delay after the `attempts`-th consecutive failure of one order.
pub fn retry_backoff_us(attempts: u32) -> i64 {
    let doublings = attempts.saturating_sub(1).min(16);
    (RETRY_BASE_US << doublings).min(RETRY_MAX_US)
}

/// An order waiting to be re-armed after a retryable failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retry {
    /// Consecutive failures of this order.
    pub attempts: u32,
    /// When it is re-armed (µs); `None` once re-armed and waiting for its answer.
    pub at_us: Option<i64>,
}

/// What the tag of a grid order means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GridTag {
    LimitBuy(usize),
    LimitSell(usize),
    StartBuy(usize),
    Liquidate(usize),
    Guard(u64),
}

impl GridTag {
    pub fn decode(tag: u64) -> GridTag {
        let cell = (tag % 1_000) as usize;
        match tag / 1_000 {
            0 => GridTag::LimitBuy(cell),
            1 => GridTag::LimitSell(cell),
            2 => GridTag::StartBuy(cell),
            3 => GridTag::Liquidate(cell),
            _ => GridTag::Guard(tag),
        }
    }

    /// The cell an order tag belongs to (`None` for guards).
    pub fn cell(tag: u64) -> Option<usize> {
        match GridTag::decode(tag) {
            GridTag::LimitBuy(c)
            | GridTag::LimitSell(c)
            | GridTag::StartBuy(c)
            | GridTag::Liquidate(c) => Some(c),
            GridTag::Guard(_) => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Cell {
    /// A buy rests at `L_i`.
    Empty,
    /// One lot held; its sell rests at `L_{i+1}`.
    Holding { base: Decimal, cost: Decimal },
    /// The operator cancelled this cell's buy: nothing rests, nothing is held.
    Idle,
    /// The operator cancelled this cell's sell: the lot is kept without a resting sell.
    Stranded { base: Decimal, cost: Decimal },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GridStrategy {
    params: GridParams,
    /// Derived from the parameters; not persisted (restore recomputes it).
    #[serde(skip)]
    levels: Vec<Decimal>,
    cells: Vec<Cell>,
    /// The first price seen, once started.
    p0: Option<Decimal>,
    stopped: bool,
    /// Orders (by tag) that failed retryably, with their re-arm time.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    retries: BTreeMap<u64, Retry>,
    /// Cells whose lot is being sold off by a stop-loss / take-profit; the grid stops once
    /// every one of them is settled.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    liquidating: BTreeSet<usize>,
    /// Why the grid stops once liquidation is done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stop_reason: Option<String>,
}

impl GridStrategy {
    pub fn new(params: GridParams) -> Self {
        let levels = grid_levels(&params);
        let cells = vec![Cell::Empty; levels.len() - 1];
        GridStrategy {
            params,
            levels,
            cells,
            p0: None,
            stopped: false,
            retries: BTreeMap::new(),
            liquidating: BTreeSet::new(),
            stop_reason: None,
        }
    }

    /// Rebuild from a snapshot; the parameters must be the strategy's own.
    pub fn restore(params: GridParams, snapshot: &serde_json::Value) -> Result<Self, String> {
        let mut g: GridStrategy =
            serde_json::from_value(snapshot.clone()).map_err(|e| format!("grid snapshot: {e}"))?;
        if g.params != params {
            return Err("grid snapshot belongs to other parameters".into());
        }
        g.levels = grid_levels(&params);
        Ok(g)
    }

    pub fn levels(&self) -> &[Decimal] {
        &self.levels
    }

    pub fn cells(&self) -> &[Cell] {
        &self.cells
    }

    fn buy(&self, cell: usize) -> Intent {
        Intent::Limit(LimitRequest {
            tag: TAG_LIMIT_BUY + cell as u64,
            side: Side::Buy,
            limit: self.levels[cell],
            amount: Amount::Quote(self.params.base_order_size),
            lot_cost: None,
        })
    }

    fn sell(&self, cell: usize, base: Decimal, cost: Decimal) -> Intent {
        Intent::Limit(LimitRequest {
            tag: TAG_LIMIT_SELL + cell as u64,
            side: Side::Sell,
            limit: self.levels[cell + 1],
            amount: Amount::Base(base),
            lot_cost: Some(cost),
        })
    }

    fn start_buy(&self, cell: usize) -> Intent {
        Intent::Market(MarketRequest {
            tag: TAG_START_BUY + cell as u64,
            side: Side::Buy,
            amount: Amount::Quote(self.params.base_order_size),
            lot_cost: None,
        })
    }

    fn liquidate(&self, cell: usize, base: Decimal, cost: Decimal) -> Intent {
        Intent::Market(MarketRequest {
            tag: TAG_LIQUIDATE + cell as u64,
            side: Side::Sell,
            amount: Amount::Base(base),
            lot_cost: Some(cost),
        })
    }

    /// The order `tag` stands for in the cell's current state, if it still makes sense.
    fn reissue(&self, tag: u64) -> Option<Intent> {
        let cell = GridTag::cell(tag)?;
        let state = self.cells.get(cell)?;
        match (GridTag::decode(tag), state) {
            (GridTag::LimitBuy(i), Cell::Empty) if !self.stopped => Some(self.buy(i)),
            (GridTag::StartBuy(i), Cell::Empty) if !self.stopped => Some(self.start_buy(i)),
            (GridTag::LimitSell(i), Cell::Holding { base, cost }) if !self.stopped => {
                Some(self.sell(i, *base, *cost))
            }
            (GridTag::Liquidate(i), Cell::Holding { base, cost })
            | (GridTag::Liquidate(i), Cell::Stranded { base, cost })
                if self.liquidating.contains(&i) =>
            {
                Some(self.liquidate(i, *base, *cost))
            }
            _ => None,
        }
    }

    /// A cell changed for good: its failure count no longer applies.
    fn forget_retries(&mut self, cell: usize) {
        self.retries
            .retain(|tag, _| GridTag::cell(*tag) != Some(cell));
    }

    /// Stop once the last liquidation settled.
    fn settle_liquidation(&mut self, cell: usize, ctx: &mut StrategyCtx<'_>) {
        if self.liquidating.remove(&cell) && self.liquidating.is_empty() {
            if let Some(reason) = self.stop_reason.take() {
                ctx.intents.push(Intent::Stop { reason });
            }
        }
    }

    fn guards(&self, out: &mut Vec<Intent>) {
        let p = &self.params;
        let mut add = |n: u64, kind: GuardKind, price: Decimal| {
            out.push(Intent::Guard(GuardRequest {
                tag: TAG_GUARD + n,
                kind,
                price,
            }))
        };
        if let Some(sl) = p.stop_loss_price {
            add(1, GuardKind::StopLoss, sl);
        }
        if let Some(tp) = p.take_profit_price {
            add(2, GuardKind::TakeProfit, tp);
        }
        if p.on_exit == OnExit::Stop {
            add(3, GuardKind::ExitBelow, p.lower_price);
            add(4, GuardKind::ExitAbove, p.upper_price);
        }
    }
}

impl Strategy for GridStrategy {
    fn initial_quote(&self) -> Decimal {
        self.params.required_quote()
    }

    fn on_start(&mut self, ctx: &mut StrategyCtx<'_>) {
        let p0 = ctx.price;
        self.p0 = Some(p0);
        for i in 0..self.cells.len() {
            if self.levels[i] >= p0 {
                // Entirely above P0: its lot is bought at market now, one fill per cell.
                ctx.intents.push(self.start_buy(i));
            } else {
                ctx.intents.push(self.buy(i));
            }
        }
        self.guards(ctx.intents);
    }

    fn on_fill(&mut self, ctx: &mut StrategyCtx<'_>, fill: &Fill) {
        if let Some(cell) = GridTag::cell(fill.tag) {
            if !self.retries.is_empty() {
                self.forget_retries(cell);
            }
        }
        match GridTag::decode(fill.tag) {
            GridTag::LimitBuy(i) | GridTag::StartBuy(i) if i < self.cells.len() => {
                self.cells[i] = Cell::Holding {
                    base: fill.base,
                    cost: fill.quote,
                };
                if !self.stopped {
                    ctx.intents.push(self.sell(i, fill.base, fill.quote));
                } else if self.stop_reason.is_some() {
                    // A buy that was in flight when the stop-loss fired: sell it off too.
                    self.liquidating.insert(i);
                    ctx.intents.push(self.liquidate(i, fill.base, fill.quote));
                }
            }
            GridTag::LimitSell(i) if i < self.cells.len() => {
                self.cells[i] = Cell::Empty;
                if !self.stopped {
                    ctx.intents.push(self.buy(i));
                }
            }
            GridTag::Liquidate(i) if i < self.cells.len() => {
                self.cells[i] = Cell::Idle;
                self.settle_liquidation(i, ctx);
            }
            _ => {}
        }
    }

    fn on_failed(&mut self, ctx: &mut StrategyCtx<'_>, tag: u64, retryable: bool) {
        let decoded = GridTag::decode(tag);
        if retryable && self.reissue(tag).is_some() {
            let retry = self.retries.entry(tag).or_insert(Retry {
                attempts: 0,
                at_us: None,
            });
            retry.attempts += 1;
            let at = ctx.ts_us.saturating_add(retry_backoff_us(retry.attempts));
            retry.at_us = Some(at);
            ctx.intents.push(Intent::WakeAt(at));
            return;
        }
        self.retries.remove(&tag);
        match decoded {
            GridTag::LimitBuy(i) | GridTag::StartBuy(i)
                if i < self.cells.len() && self.cells[i] == Cell::Empty =>
            {
                self.cells[i] = Cell::Idle;
            }
            GridTag::LimitSell(i) | GridTag::Liquidate(i) if i < self.cells.len() => {
                if let Cell::Holding { base, cost } = self.cells[i] {
                    self.cells[i] = Cell::Stranded { base, cost };
                }
                if matches!(decoded, GridTag::Liquidate(_)) {
                    self.settle_liquidation(i, ctx);
                }
            }
            _ => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut StrategyCtx<'_>) {
        let due: Vec<u64> = self
            .retries
            .iter()
            .filter(|(_, r)| r.at_us.is_some_and(|at| at <= ctx.ts_us))
            .map(|(tag, _)| *tag)
            .collect();
        for tag in due {
            match self.reissue(tag) {
                Some(intent) => {
                    if let Some(r) = self.retries.get_mut(&tag) {
                        r.at_us = None;
                    }
                    ctx.intents.push(intent);
                }
                None => {
                    self.retries.remove(&tag);
                }
            }
        }
    }

    fn on_guard(&mut self, ctx: &mut StrategyCtx<'_>, kind: GuardKind) {
        self.stopped = true;
        self.retries.clear();
        ctx.intents.push(Intent::CancelAll);
        match kind {
            GuardKind::StopLoss | GuardKind::TakeProfit => {
                for (i, cell) in self.cells.iter().enumerate() {
                    if let Cell::Holding { base, cost } | Cell::Stranded { base, cost } = cell {
                        self.liquidating.insert(i);
                        ctx.intents.push(self.liquidate(i, *base, *cost));
                    }
                }
                let reason = format!("{} at {}", kind.as_str(), ctx.price);
                // The grid stops when its last lot is sold (at once on an instant venue).
                if self.liquidating.is_empty() {
                    ctx.intents.push(Intent::Stop { reason });
                } else {
                    self.stop_reason = Some(reason);
                }
            }
            GuardKind::ExitBelow | GuardKind::ExitAbove => ctx.intents.push(Intent::Stop {
                reason: format!("price {} left the range (on_exit = stop)", ctx.price),
            }),
        }
    }

    fn on_cancelled(&mut self, tag: u64) {
        match GridTag::decode(tag) {
            GridTag::LimitBuy(i) if i < self.cells.len() => self.cells[i] = Cell::Idle,
            GridTag::LimitSell(i) if i < self.cells.len() => {
                if let Cell::Holding { base, cost } = self.cells[i] {
                    self.cells[i] = Cell::Stranded { base, cost };
                }
            }
            _ => {}
        }
    }

    fn on_restore(&mut self, ctx: &mut StrategyCtx<'_>) {
        // Orders in flight did not survive the restart: what waited for a re-arm is re-issued now.
        self.retries.clear();
        if self.stop_reason.is_some() {
            let selling: Vec<usize> = self.liquidating.iter().copied().collect();
            for i in selling {
                if let Cell::Holding { base, cost } | Cell::Stranded { base, cost } = self.cells[i]
                {
                    ctx.intents.push(self.liquidate(i, base, cost));
                }
            }
            return;
        }
        if self.stopped || self.p0.is_none() {
            return;
        }
        for i in 0..self.cells.len() {
            match self.cells[i] {
                Cell::Empty => ctx.intents.push(self.buy(i)),
                Cell::Holding { base, cost } => ctx.intents.push(self.sell(i, base, cost)),
                Cell::Idle | Cell::Stranded { .. } => {}
            }
        }
        self.guards(ctx.intents);
    }

    fn started(&self) -> bool {
        self.p0.is_some()
    }

    fn snapshot(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    fn state(&self) -> Box<dyn crate::strategy::traits::StrategyState> {
        Box::new(GridState {
            params: self.params.clone(),
            cells: self.cells.clone(),
            p0: self.p0,
            stopped: self.stopped,
            retries: self.retries.clone(),
            liquidating: self.liquidating.clone(),
            stop_reason: self.stop_reason.clone(),
        })
    }
}

/// The persisted part of a grid, detached (no derived levels); serializes exactly like
/// [`GridStrategy`] does, so [`GridStrategy::restore`] reads either.
#[derive(Debug, Clone, Serialize)]
struct GridState {
    params: GridParams,
    cells: Vec<Cell>,
    p0: Option<Decimal>,
    stopped: bool,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    retries: BTreeMap<u64, Retry>,
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    liquidating: BTreeSet<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_reason: Option<String>,
}

impl crate::strategy::traits::StrategyState for GridState {
    fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}
