//! A rollout's plan: its stages in order, how long each runs and at what size, and the gate that
//! ends each.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::config::canary::CanaryConfig;

/// One stage of a rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Stage {
    /// The grid backtested over the last `backtest_days` of history; ends as soon as it has run.
    Backtest,
    /// The grid in paper on the pool's price.
    Paper,
    /// The grid live at `size_pct` of the target size (the first is the canary).
    Live { size_pct: Decimal },
}

impl Stage {
    /// How the stage is named in status, records and alerts: `backtest`, `paper`, `live 10%`.
    pub fn name(&self) -> String {
        match self {
            Stage::Backtest => "backtest".into(),
            Stage::Paper => "paper".into(),
            Stage::Live { size_pct } => format!("live {}%", size_pct.normalize()),
        }
    }

    pub fn is_live(&self) -> bool {
        matches!(self, Stage::Live { .. })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagePlan {
    pub stage: Stage,
    /// How long it runs before its gate is measured (`None`: the gate is measured once it ran).
    pub hours: Option<Decimal>,
    /// The grid's `base_order_size` in this stage (`None`: the backtest and paper trade the
    /// target size, which risks nothing).
    pub base_order_size: Option<Decimal>,
}

impl StagePlan {
    pub fn duration_ms(&self) -> i64 {
        self.hours.map_or(0, CanaryConfig::stage_ms)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutPlan {
    pub target_base_order_size: Decimal,
    pub stages: Vec<StagePlan>,
}

/// A target size that cannot be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("target base_order_size {0}: expected more than 0")]
pub struct PlanError(pub Decimal);

impl RolloutPlan {
    /// Backtest, paper, the canary at `canary_size_pct`, then each scale step, the last at the
    /// target size.
    pub fn new(target: Decimal, config: &CanaryConfig) -> Result<RolloutPlan, PlanError> {
        if target <= Decimal::ZERO {
            return Err(PlanError(target));
        }
        let size = |pct: Decimal| Some((target * pct / Decimal::ONE_HUNDRED).normalize());
        let mut stages = vec![
            StagePlan {
                stage: Stage::Backtest,
                hours: None,
                base_order_size: None,
            },
            StagePlan {
                stage: Stage::Paper,
                hours: Some(config.paper_hours),
                base_order_size: None,
            },
            StagePlan {
                stage: Stage::Live {
                    size_pct: config.canary_size_pct,
                },
                hours: Some(config.live_hours),
                base_order_size: size(config.canary_size_pct),
            },
        ];
        stages.extend(config.scale_steps_pct.iter().map(|pct| StagePlan {
            stage: Stage::Live { size_pct: *pct },
            hours: Some(config.step_hours),
            base_order_size: size(*pct),
        }));
        Ok(RolloutPlan {
            target_base_order_size: target.normalize(),
            stages,
        })
    }

    /// The plan as `canary start` prints it: one line a stage with its length, size and gate.
    pub fn lines(&self, config: &CanaryConfig) -> Vec<String> {
        self.stages
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let length = match s.hours {
                    Some(h) => format!("{} h", h.normalize()),
                    None => format!("the last {} days of history", config.backtest_days),
                };
                let size = match s.base_order_size {
                    Some(b) => format!("base_order_size {b}"),
                    None => format!(
                        "base_order_size {} (no money at risk)",
                        self.target_base_order_size
                    ),
                };
                format!(
                    "{}. {}: {length}, {size}; gate: {}",
                    i + 1,
                    s.stage.name(),
                    gate_summary(&s.stage, config)
                )
            })
            .collect()
    }
}

fn gate_summary(stage: &Stage, c: &CanaryConfig) -> String {
    match stage {
        Stage::Backtest => format!(
            "return net of gas ≥ {}%, max drawdown ≤ {}%, round trips ≥ {}, every cell wider than a round trip's cost",
            c.min_backtest_return_pct.normalize(),
            c.max_backtest_drawdown_pct.normalize(),
            c.min_backtest_round_trips
        ),
        Stage::Paper => format!(
            "at least one fill, fills equal to its backtest over the same ticks, risk events ≤ {}, return ≥ {}%",
            c.max_risk_events,
            c.min_paper_return_pct.normalize()
        ),
        Stage::Live { .. } => format!(
            "failed swaps ≤ {}%, risk events ≤ {}, slippage against paper ≤ {} bps, gas per round \
             trip ≤ {} × the model's, return net of gas ≥ {}%",
            c.max_failed_swap_pct.normalize(),
            c.max_risk_events,
            c.max_slippage_bps.normalize(),
            c.max_gas_ratio.normalize(),
            c.min_live_return_pct.normalize()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().expect("a decimal")
    }

    #[test]
    fn default_plan_walks_backtest_paper_canary_and_three_steps() {
        let plan = RolloutPlan::new(d("200"), &CanaryConfig::default()).expect("a plan");
        let names: Vec<String> = plan.stages.iter().map(|s| s.stage.name()).collect();
        assert_eq!(
            names,
            [
                "backtest",
                "paper",
                "live 10%",
                "live 25%",
                "live 50%",
                "live 100%"
            ]
        );
        let sizes: Vec<Option<Decimal>> = plan.stages.iter().map(|s| s.base_order_size).collect();
        assert_eq!(
            sizes,
            [
                None,
                None,
                Some(d("20")),
                Some(d("50")),
                Some(d("100")),
                Some(d("200"))
            ]
        );
        assert_eq!(plan.stages[1].duration_ms(), 24 * 3_600_000);
        assert_eq!(plan.stages[0].duration_ms(), 0);
        let lines = plan.lines(&CanaryConfig::default());
        assert_eq!(
            lines[2],
            "3. live 10%: 2 h, base_order_size 20; gate: failed swaps ≤ 10%, risk events ≤ 0, \
             slippage against paper ≤ 50 bps, gas per round trip ≤ 2 × the model's, return net \
             of gas ≥ -1%"
        );
        assert!(lines[0].starts_with("1. backtest: the last 7 days of history"));
    }

    #[test]
    fn a_target_of_nothing_is_refused() {
        assert_eq!(
            RolloutPlan::new(Decimal::ZERO, &CanaryConfig::default()),
            Err(PlanError(Decimal::ZERO))
        );
    }
}
