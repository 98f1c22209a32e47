//! Strategies: the registry by type name, parameters, lifecycle states and spec files.

pub mod grid;
pub mod params;
pub mod spec;
pub mod status;
pub mod traits;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use params::ParamError;
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
    pub fn risk_overrides(&self) -> crate::risk::StrategyRiskOverrides {
        match self {
            StrategyParams::Grid(p) => p.risk,
        }
    }

    pub fn fee_bps(&self) -> u32 {
        match self {
            StrategyParams::Grid(p) => p.fee_bps,
        }
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
