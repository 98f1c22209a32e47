//! Grid parameters exactly as `GRID.md` pins them, validated with errors naming the field.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::params::{all_of, ParamError, ParamReader};

pub const MIN_GRID_COUNT: i64 = 2;
pub const MAX_GRID_COUNT: i64 = 500;
/// 10 %: anything above is almost certainly a typo (bps vs percent) and would lose on every cell.
pub const MAX_FEE_BPS: i64 = crate::config::MAX_FEE_BPS;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Spacing {
    Arithmetic,
    Geometric,
}

/// What the grid does when price leaves `[lower_price, upper_price]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnExit {
    Hold,
    Stop,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GridParams {
    pub lower_price: Decimal,
    pub upper_price: Decimal,
    /// Number of price levels N (N-1 cells).
    pub grid_count: u32,
    pub spacing: Spacing,
    /// Quote amount spent by each buy.
    pub base_order_size: Decimal,
    pub fee_bps: u32,
    pub on_exit: OnExit,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub stop_loss_price: Option<Decimal>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub take_profit_price: Option<Decimal>,
    /// The one pool a live grid trades (`v2`, `v3:500`, …), whatever best execution would pick;
    /// `None`: the best of the market's pools for each swap.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pool: Option<crate::amm::PoolKind>,
    /// The strategy's own risk limits (`daily_loss_limit`, `max_position`,
    /// `max_order_notional`, `max_error_rate`), over `[risk]`'s.
    #[serde(flatten, default)]
    pub risk: crate::config::risk::StrategyRiskOverrides,
}

/// The value, or `None` with its problem kept for the report.
fn take<T>(res: Result<T, ParamError>, problems: &mut Vec<ParamError>) -> Option<T> {
    match res {
        Ok(v) => Some(v),
        Err(e) => {
            problems.push(e);
            None
        }
    }
}

impl GridParams {
    /// Every problem is reported at once (`params: N problems: …`), not one per attempt.
    pub fn from_json(value: &Value) -> Result<Self, ParamError> {
        let mut r = ParamReader::new(value)?;
        let mut problems: Vec<ParamError> = Vec::new();
        let lower_price = take(r.decimal("lower_price"), &mut problems);
        let upper_price = take(r.decimal("upper_price"), &mut problems);
        let grid_count = take(r.integer("grid_count", None), &mut problems);
        let spacing = take(
            r.choice("spacing", &["arithmetic", "geometric"], "arithmetic"),
            &mut problems,
        )
        .map(|s| match s {
            "geometric" => Spacing::Geometric,
            _ => Spacing::Arithmetic,
        });
        let base_order_size = take(r.decimal("base_order_size"), &mut problems);
        let fee_bps = take(r.integer("fee_bps", Some(25)), &mut problems);
        let on_exit = take(
            r.choice("on_exit", &["hold", "stop"], "hold"),
            &mut problems,
        )
        .map(|s| match s {
            "stop" => OnExit::Stop,
            _ => OnExit::Hold,
        });
        let stop_loss_price = take(r.opt_decimal("stop_loss_price"), &mut problems).flatten();
        let take_profit_price = take(r.opt_decimal("take_profit_price"), &mut problems).flatten();
        let pool = match take(r.opt_text("pool"), &mut problems).flatten() {
            None => None,
            Some(text) => match text.parse::<crate::amm::PoolKind>() {
                Ok(kind) => Some(kind),
                Err(e) => {
                    problems.push(ParamError::new("pool", e.to_string()));
                    None
                }
            },
        };
        // A grid pinned to a V3 pool without its own fee pays that pool's tier, not V2's fee.
        let fee_bps = match (pool, value.get("fee_bps").is_some_and(|v| !v.is_null())) {
            (Some(kind @ crate::amm::PoolKind::V3 { .. }), false) => {
                Some(i64::from(kind.fee_bps(0)))
            }
            _ => fee_bps,
        };
        let risk = crate::config::risk::StrategyRiskOverrides::read(&mut r, &mut problems);
        if let Err(e) = r.finish() {
            problems.push(e);
        }
        let mut bad = |field: &str, message: String| problems.push(ParamError::new(field, message));
        if let Some(lower) = lower_price.filter(|l| *l <= Decimal::ZERO) {
            bad("lower_price", format!("must be > 0, got {lower}"));
        }
        if let (Some(lower), Some(upper)) = (lower_price, upper_price) {
            if upper <= lower {
                bad(
                    "upper_price",
                    format!("must be greater than lower_price ({lower}), got {upper}"),
                );
            }
        }
        if let Some(n) = grid_count.filter(|n| !(MIN_GRID_COUNT..=MAX_GRID_COUNT).contains(n)) {
            bad(
                "grid_count",
                format!("must be in {MIN_GRID_COUNT}..={MAX_GRID_COUNT}, got {n}"),
            );
        }
        if let Some(q) = base_order_size.filter(|q| *q <= Decimal::ZERO) {
            bad(
                "base_order_size",
                format!("must be > 0 (quote spent per buy), got {q}"),
            );
        }
        if let Some(f) = fee_bps.filter(|f| !(0..=MAX_FEE_BPS).contains(f)) {
            bad(
                "fee_bps",
                format!("must be in 0..={MAX_FEE_BPS} basis points, got {f}"),
            );
        }
        if let (Some(sl), Some(upper)) = (stop_loss_price, upper_price) {
            if sl <= Decimal::ZERO || sl >= upper {
                bad(
                    "stop_loss_price",
                    format!("must be > 0 and below upper_price ({upper}), got {sl}"),
                );
            }
        }
        if let (Some(tp), Some(lower)) = (take_profit_price, lower_price) {
            if tp <= lower {
                bad(
                    "take_profit_price",
                    format!("must be above lower_price ({lower}), got {tp}"),
                );
            } else if let Some(sl) = stop_loss_price.filter(|sl| tp <= *sl) {
                bad(
                    "take_profit_price",
                    format!("must be above stop_loss_price ({sl}), got {tp}"),
                );
            }
        }
        all_of(problems)?;
        let (
            Some(lower_price),
            Some(upper_price),
            Some(grid_count),
            Some(spacing),
            Some(base_order_size),
            Some(fee_bps),
            Some(on_exit),
        ) = (
            lower_price,
            upper_price,
            grid_count,
            spacing,
            base_order_size,
            fee_bps,
            on_exit,
        )
        else {
            return Err(ParamError::new("params", "incomplete"));
        };
        // Ranges are checked above, so these conversions cannot truncate.
        Ok(GridParams {
            lower_price,
            upper_price,
            grid_count: u32::try_from(grid_count).unwrap_or(MIN_GRID_COUNT as u32),
            spacing,
            base_order_size,
            fee_bps: u32::try_from(fee_bps).unwrap_or(0),
            on_exit,
            stop_loss_price,
            take_profit_price,
            pool,
            risk,
        })
    }

    /// What an update may not change: the levels (a held lot is tied to its cell's levels).
    /// `None` when `new` keeps them; the first differing key otherwise.
    pub fn level_change(&self, new: &GridParams) -> Option<&'static str> {
        if self.lower_price != new.lower_price {
            Some("lower_price")
        } else if self.upper_price != new.upper_price {
            Some("upper_price")
        } else if self.grid_count != new.grid_count {
            Some("grid_count")
        } else if self.spacing != new.spacing {
            Some("spacing")
        } else {
            None
        }
    }

    /// `fee_bps / 10000` as an exact decimal.
    pub fn fee_rate(&self) -> Decimal {
        Decimal::from(self.fee_bps) / Decimal::from(10_000)
    }

    /// Quote needed to run the grid: every cell either buys at start or keeps `Q` for its buy.
    pub fn required_quote(&self) -> Decimal {
        Decimal::from(self.grid_count - 1) * self.base_order_size
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> Value {
        json!({"lower_price": "100", "upper_price": "200", "grid_count": 5, "base_order_size": "10"})
    }

    fn with(key: &str, value: Value) -> Value {
        let mut v = base();
        v[key] = value;
        v
    }

    #[test]
    fn defaults_applied() {
        let p = GridParams::from_json(&base()).unwrap();
        assert_eq!(p.fee_bps, 25);
        assert_eq!(p.spacing, Spacing::Arithmetic);
        assert_eq!(p.on_exit, OnExit::Hold);
        assert_eq!(p.required_quote(), Decimal::from(40));
    }

    #[test]
    fn each_invalid_field_is_named() {
        let cases = [
            (with("lower_price", json!("0")), "lower_price"),
            (with("upper_price", json!("100")), "upper_price"),
            (with("grid_count", json!(1)), "grid_count"),
            (with("grid_count", json!(501)), "grid_count"),
            (with("base_order_size", json!("-1")), "base_order_size"),
            (with("base_order_size", json!("ten")), "base_order_size"),
            (with("spacing", json!("log")), "spacing"),
            (with("on_exit", json!("sell")), "on_exit"),
            (with("fee_bps", json!(20000)), "fee_bps"),
            (with("stop_loss_price", json!("250")), "stop_loss_price"),
            (with("take_profit_price", json!("50")), "take_profit_price"),
            (with("grid_cout", json!(5)), "grid_cout"),
        ];
        for (value, field) in cases {
            let err = GridParams::from_json(&value).unwrap_err();
            assert_eq!(err.field, field, "{value}");
        }
    }

    #[test]
    fn every_missing_field_named_at_once() {
        let err = GridParams::from_json(&json!({"lower_price": "1"})).unwrap_err();
        assert_eq!(err.field, "params");
        for field in ["upper_price", "grid_count", "base_order_size"] {
            assert!(
                err.message
                    .contains(&format!("params.{field}: is required")),
                "{err}"
            );
        }
        assert!(err.message.starts_with("3 problems"), "{err}");
    }
}
