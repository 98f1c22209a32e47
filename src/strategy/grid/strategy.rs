//! The grid as a synchronous state machine, exactly per GRID.md.
//!
//! Each of the N-1 cells is empty (a buy rests at `L_i`) or holding one lot (its sell rests at
//! `L_{i+1}`). Order tags encode the cell, so a fill tells the grid which cell changed.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::levels::grid_levels;
use super::params::{GridParams, OnExit};
use crate::engine::order::{
    Amount, Fill, GuardKind, GuardRequest, Intent, LimitRequest, MarketRequest, Side,
};
use crate::strategy::traits::{Strategy, StrategyCtx};

const TAG_LIMIT_BUY: u64 = 0;
const TAG_LIMIT_SELL: u64 = 1_000;
const TAG_START_BUY: u64 = 2_000;
const TAG_LIQUIDATE: u64 = 3_000;
const TAG_GUARD: u64 = 9_000;

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
                ctx.intents.push(Intent::Market(MarketRequest {
                    tag: TAG_START_BUY + i as u64,
                    side: Side::Buy,
                    amount: Amount::Quote(self.params.base_order_size),
                    lot_cost: None,
                }));
            } else {
                ctx.intents.push(self.buy(i));
            }
        }
        self.guards(ctx.intents);
    }

    fn on_fill(&mut self, ctx: &mut StrategyCtx<'_>, fill: &Fill) {
        match GridTag::decode(fill.tag) {
            GridTag::LimitBuy(i) | GridTag::StartBuy(i) if i < self.cells.len() => {
                self.cells[i] = Cell::Holding {
                    base: fill.base,
                    cost: fill.quote,
                };
                if !self.stopped {
                    ctx.intents.push(self.sell(i, fill.base, fill.quote));
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
            }
            _ => {}
        }
    }

    fn on_guard(&mut self, ctx: &mut StrategyCtx<'_>, kind: GuardKind) {
        self.stopped = true;
        ctx.intents.push(Intent::CancelAll);
        match kind {
            GuardKind::StopLoss | GuardKind::TakeProfit => {
                for (i, cell) in self.cells.iter().enumerate() {
                    if let Cell::Holding { base, cost } | Cell::Stranded { base, cost } = cell {
                        ctx.intents.push(Intent::Market(MarketRequest {
                            tag: TAG_LIQUIDATE + i as u64,
                            side: Side::Sell,
                            amount: Amount::Base(*base),
                            lot_cost: Some(*cost),
                        }));
                    }
                }
                ctx.intents.push(Intent::Stop {
                    reason: format!("{} at {}", kind.as_str(), ctx.price),
                });
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
}

impl crate::strategy::traits::StrategyState for GridState {
    fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}
