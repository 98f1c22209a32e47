//! Strategies (floor 3, may use floors 0–2): the registry by type name, the grid, lifecycle states, spec files.

pub mod grid;
pub mod spec;
pub mod status;
pub mod traits;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::ParamError;

pub use spec::{SpecError, StrategySpec};
pub use status::{InvalidTransition, LifecycleAction, StrategyMode, StrategyStatus};

/// Registered strategy types. Adding a strategy means adding a variant here and its module;
/// everything that creates strategies by name goes through [`StrategyParams::parse`].
pub const STRATEGY_TYPES: &[&str] = &["grid"];

/// Validated parameters of one strategy, tagged by type name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "params", rename_all = "lowercase")]
pub enum StrategyParams {
    Grid(grid::GridParams),
}

impl StrategyParams {
    /// Look up `type_name` in the registry and validate `params` for it.
    pub fn parse(type_name: &str, params: &Value) -> Result<Self, ParamError> {
        match type_name {
            "grid" => Ok(StrategyParams::Grid(grid::GridParams::from_json(params)?)),
            other => Err(ParamError::new(
                "type",
                format!(
                    "unknown strategy type {other:?}; known types: {}",
                    STRATEGY_TYPES.join(", ")
                ),
            )),
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            StrategyParams::Grid(_) => "grid",
        }
    }

    /// Parameters alone as JSON (decimals as strings), the form stored and shown.
    pub fn params_json(&self) -> Value {
        match self {
            StrategyParams::Grid(p) => serde_json::to_value(p).unwrap_or(Value::Null),
        }
    }

    /// Build a fresh strategy instance from validated parameters.
    pub fn build(&self) -> Box<dyn traits::Strategy> {
        match self {
            StrategyParams::Grid(p) => Box::new(grid::GridStrategy::new(p.clone())),
        }
    }

    /// The one pool the strategy's swaps go to, when its parameters pin one.
    pub fn pinned_pool(&self) -> Option<crate::amm::PoolKind> {
        match self {
            StrategyParams::Grid(p) => p.pool,
        }
    }

    /// The prices the strategy trades between (a grid's lower and upper price).
    pub fn price_range(&self) -> Option<(rust_decimal::Decimal, rust_decimal::Decimal)> {
        match self {
            StrategyParams::Grid(p) => Some((p.lower_price, p.upper_price)),
        }
    }

    /// Why these parameters cannot replace `old` on a strategy that exists (`None`: they can).
    pub fn update_refusal(&self, old: &StrategyParams) -> Option<String> {
        match (old, self) {
            (StrategyParams::Grid(o), StrategyParams::Grid(n)) => o.level_change(n).map(|key| {
                format!(
                    "params.{key}: a grid's levels cannot change (its held lots belong to them); \
                     stop it and create a new one"
                )
            }),
        }
    }

    /// Rebuild a strategy from its snapshot under these (updated) parameters: what it holds and
    /// its cells stay, what it places next follows the new parameters.
    pub fn restore_updated(&self, snapshot: &Value) -> Result<Box<dyn traits::Strategy>, String> {
        let mut snapshot = snapshot.clone();
        if let Some(o) = snapshot.as_object_mut() {
            o.insert("params".into(), self.params_json());
        }
        self.restore(&snapshot)
    }

    /// Rebuild a strategy on record from its snapshot after a restart. A snapshot the engine wrote
    /// between `strategy update` going on record and the engine applying it carries the old
    /// parameters: the record's win whenever they could have replaced them (the levels are the
    /// same), as the update would have done.
    pub fn restore_on_record(&self, snapshot: &Value) -> Result<Box<dyn traits::Strategy>, String> {
        match self.restore(snapshot) {
            Ok(s) => Ok(s),
            Err(e) => {
                let old = snapshot
                    .get("params")
                    .and_then(|p| StrategyParams::parse(self.type_name(), p).ok());
                match old {
                    Some(old) if self.update_refusal(&old).is_none() => {
                        self.restore_updated(snapshot)
                    }
                    _ => Err(e),
                }
            }
        }
    }

    /// Rebuild a strategy from its persisted snapshot (daemon restart).
    pub fn restore(&self, snapshot: &Value) -> Result<Box<dyn traits::Strategy>, String> {
        match self {
            StrategyParams::Grid(p) => {
                Ok(Box::new(grid::GridStrategy::restore(p.clone(), snapshot)?))
            }
        }
    }

    /// Venue fee the simulated venue charges this strategy.
    /// The strategy's own risk limits from its params.
    pub fn risk_overrides(&self) -> crate::config::risk::StrategyRiskOverrides {
        match self {
            StrategyParams::Grid(p) => p.risk,
        }
    }

    /// The quote the strategy starts with: its budget, which follows its size.
    pub fn required_quote(&self) -> Decimal {
        match self {
            StrategyParams::Grid(p) => p.required_quote(),
        }
    }

    pub fn fee_bps(&self) -> u32 {
        match self {
            StrategyParams::Grid(p) => p.fee_bps,
        }
    }

    /// With the AMM fill model: the narrowest cell of a grid whose edge (its width over its lower
    /// level) is below what a round trip costs — two pool fees, the price impact of buying and
    /// selling a lot in this pool, and two swaps' gas — loses on every round trip.
    pub fn amm_warnings(&self, pool: &crate::amm::AmmPool) -> Vec<String> {
        let StrategyParams::Grid(g) = self;
        let levels = grid::grid_levels(g);
        let Some((i, lower, width)) = levels
            .windows(2)
            .enumerate()
            .map(|(i, w)| (i, w[0], w[1] - w[0]))
            .filter(|(_, l, _)| *l > Decimal::ZERO)
            .min_by(|a, b| (a.2 / a.1).cmp(&(b.2 / b.1)))
        else {
            return Vec::new();
        };
        let bps = Decimal::from(10_000);
        let size = g.base_order_size;
        let (_, quote_reserve) = pool.reserves_at(lower);
        let impact = if quote_reserve + size > Decimal::ZERO {
            Decimal::TWO * size / (quote_reserve + size)
        } else {
            Decimal::ZERO
        };
        let gas = if size > Decimal::ZERO {
            Decimal::TWO * pool.gas_quote / size
        } else {
            Decimal::ZERO
        };
        let cost = (Decimal::from(2 * g.fee_bps) / bps + impact + gas) * bps;
        let edge = width / lower * bps;
        if edge >= cost {
            return Vec::new();
        }
        vec![format!(
            "cell {i} ({} .. {}) is {} bps wide, below a round trip's cost in this pool: {} bps \
         (2 × {} bps pool fee, {} bps price impact, {} bps gas): it loses on every round trip",
            lower.normalize(),
            (lower + width).normalize(),
            edge.round_dp(2).normalize(),
            cost.round_dp(2).normalize(),
            g.fee_bps,
            (impact * bps).round_dp(2).normalize(),
            (gas * bps).round_dp(2).normalize()
        )]
    }

    /// Things that are allowed but probably not what the operator wants.
    pub fn warnings(&self) -> Vec<String> {
        match self {
            StrategyParams::Grid(p) => {
                let levels = grid::grid_levels(p);
                let cells = grid::unprofitable_cells(p, &levels);
                if cells.is_empty() {
                    return Vec::new();
                }
                let mut named: Vec<String> = cells
                    .iter()
                    .take(5)
                    .map(|&i| format!("#{i} [{}, {}]", levels[i], levels[i + 1]))
                    .collect();
                if cells.len() > 5 {
                    named.push(format!("and {} more", cells.len() - 5));
                }
                vec![format!(
                    "{} of {} grid cells cannot cover the {} bps fee on a round trip and lose money on every fill: {}",
                    cells.len(),
                    levels.len() - 1,
                    p.fee_bps,
                    named.join(", ")
                )]
            }
        }
    }
}
