//! `[canary]`: the stages of a rollout (how long each runs, at what share of the target size) and
//! the thresholds of the gates between them. A rollout may override any of them for itself.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Stage lengths, sizes and gate thresholds. Percentages are plain numbers (`10` is 10 %).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CanaryConfig {
    /// Days of history the backtest gate runs the grid over (ending now).
    pub backtest_days: u32,
    /// The backtest's return net of gas (its PnL less the AMM fill model's gas, over its starting
    /// capital) must be at least this.
    pub min_backtest_return_pct: Decimal,
    /// The backtest's largest fall of equity from a high must be at most this.
    pub max_backtest_drawdown_pct: Decimal,
    /// A grid that never completes a round trip in the window has shown nothing.
    pub min_backtest_round_trips: u64,
    /// How long the grid trades paper on the pool's price.
    pub paper_hours: Decimal,
    /// Paper's return over its stage must be at least this.
    pub min_paper_return_pct: Decimal,
    /// The first live stage's size, as a share of the target `base_order_size`.
    pub canary_size_pct: Decimal,
    /// How long the canary trades live before the first scale step.
    pub live_hours: Decimal,
    /// The scale steps after the canary, as shares of the target size, rising, the last 100.
    pub scale_steps_pct: Vec<Decimal>,
    /// How long each scale step trades before the next.
    pub step_hours: Decimal,
    /// Swaps that failed (reverted, dropped, refused by the node) as a share of swaps sent.
    pub max_failed_swap_pct: Decimal,
    /// A live fill's price against its paper twin's on the same pool price, worst fill, in bps
    /// (positive: the live fill was worse).
    pub max_slippage_bps: Decimal,
    /// Gas paid per live round trip over the backtest model's gas per round trip.
    pub max_gas_ratio: Decimal,
    /// A live stage's PnL net of gas, as a share of the capital it traded with.
    pub min_live_return_pct: Decimal,
    /// Risk events (refusals, pauses, limits hit) a paper or live stage may have.
    pub max_risk_events: u64,
    /// A live stage's own `daily_loss_limit`: this share of its capital (unless the grid sets one).
    pub live_daily_loss_pct: Decimal,
    /// A live stage's own `max_position`: this share of its capital (unless the grid sets one).
    pub live_max_position_pct: Decimal,
    /// A live stage's own `max_error_rate` (unless the grid sets one).
    pub live_max_error_rate: Decimal,
}

impl Default for CanaryConfig {
    fn default() -> Self {
        CanaryConfig {
            backtest_days: 7,
            min_backtest_return_pct: Decimal::ZERO,
            max_backtest_drawdown_pct: Decimal::from(10),
            min_backtest_round_trips: 1,
            paper_hours: Decimal::from(24),
            min_paper_return_pct: Decimal::from(-2),
            canary_size_pct: Decimal::from(10),
            live_hours: Decimal::from(2),
            scale_steps_pct: vec![Decimal::from(25), Decimal::from(50), Decimal::from(100)],
            step_hours: Decimal::from(2),
            max_failed_swap_pct: Decimal::from(10),
            max_slippage_bps: Decimal::from(50),
            max_gas_ratio: Decimal::TWO,
            min_live_return_pct: Decimal::from(-1),
            max_risk_events: 0,
            live_daily_loss_pct: Decimal::from(5),
            live_max_position_pct: Decimal::from(110),
            live_max_error_rate: Decimal::new(5, 2),
        }
    }
}

/// A threshold or stage setting out of range, or an override that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("canary.{key} = {value}: expected {expected}")]
pub struct CanaryConfigError {
    pub key: String,
    pub value: String,
    pub expected: String,
}

fn invalid(key: &str, value: impl ToString, expected: &str) -> CanaryConfigError {
    CanaryConfigError {
        key: key.into(),
        value: value.to_string(),
        expected: expected.into(),
    }
}

/// The longest any stage may be set to run: 30 days.
const MAX_STAGE_HOURS: i64 = 24 * 30;

impl CanaryConfig {
    pub fn validate(&self) -> Result<(), CanaryConfigError> {
        let hundred = Decimal::ONE_HUNDRED;
        if !(1..=365).contains(&self.backtest_days) {
            return Err(invalid(
                "backtest_days",
                self.backtest_days,
                "1 to 365 days",
            ));
        }
        for (key, hours) in [
            ("paper_hours", self.paper_hours),
            ("live_hours", self.live_hours),
            ("step_hours", self.step_hours),
        ] {
            if hours <= Decimal::ZERO || hours > Decimal::from(MAX_STAGE_HOURS) {
                return Err(invalid(key, hours, "more than 0 and at most 720 hours"));
            }
        }
        for (key, pct) in [
            ("max_backtest_drawdown_pct", self.max_backtest_drawdown_pct),
            ("max_failed_swap_pct", self.max_failed_swap_pct),
        ] {
            if pct < Decimal::ZERO || pct > hundred {
                return Err(invalid(key, pct, "0 to 100 (%)"));
            }
        }
        for (key, pct) in [
            ("min_backtest_return_pct", self.min_backtest_return_pct),
            ("min_paper_return_pct", self.min_paper_return_pct),
            ("min_live_return_pct", self.min_live_return_pct),
        ] {
            if pct < -hundred || pct > hundred {
                return Err(invalid(key, pct, "-100 to 100 (%)"));
            }
        }
        if self.min_backtest_round_trips == 0 {
            return Err(invalid(
                "min_backtest_round_trips",
                0,
                "at least 1 (a grid that never completed a round trip has shown nothing)",
            ));
        }
        if self.canary_size_pct <= Decimal::ZERO || self.canary_size_pct >= hundred {
            return Err(invalid(
                "canary_size_pct",
                self.canary_size_pct,
                "more than 0 and less than 100 (%)",
            ));
        }
        let steps = &self.scale_steps_pct;
        let shown = format!(
            "[{}]",
            steps
                .iter()
                .map(|s| s.normalize().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        let rising = steps.windows(2).all(|w| w[0] < w[1]);
        let above_canary = steps.first().is_some_and(|s| *s > self.canary_size_pct);
        if !rising || !above_canary || steps.last() != Some(&hundred) {
            return Err(invalid(
                "scale_steps_pct",
                shown,
                "rising shares of the target size above canary_size_pct, the last 100",
            ));
        }
        if self.max_slippage_bps < Decimal::ZERO || self.max_slippage_bps > Decimal::from(10_000) {
            return Err(invalid(
                "max_slippage_bps",
                self.max_slippage_bps,
                "0 to 10000 bps",
            ));
        }
        if self.live_daily_loss_pct <= Decimal::ZERO || self.live_daily_loss_pct > hundred {
            return Err(invalid(
                "live_daily_loss_pct",
                self.live_daily_loss_pct,
                "more than 0 and at most 100 (% of the stage's capital)",
            ));
        }
        if self.live_max_position_pct <= Decimal::ZERO
            || self.live_max_position_pct > Decimal::from(1000)
        {
            return Err(invalid(
                "live_max_position_pct",
                self.live_max_position_pct,
                "more than 0 and at most 1000 (% of the stage's capital)",
            ));
        }
        if self.live_max_error_rate <= Decimal::ZERO || self.live_max_error_rate > Decimal::ONE {
            return Err(invalid(
                "live_max_error_rate",
                self.live_max_error_rate,
                "a fraction in (0, 1]",
            ));
        }
        if self.max_gas_ratio < Decimal::ONE || self.max_gas_ratio > Decimal::from(100) {
            return Err(invalid(
                "max_gas_ratio",
                self.max_gas_ratio,
                "1 to 100 (live gas per round trip over the model's)",
            ));
        }
        Ok(())
    }

    /// These settings with a rollout's own overrides (`{"paper_hours": "1", …}`) applied and
    /// checked: an unknown key, a value of the wrong type or out of range is refused, naming it.
    pub fn with_overrides(&self, overrides: &serde_json::Value) -> Result<Self, CanaryConfigError> {
        let serde_json::Value::Object(changes) = overrides else {
            return Err(invalid(
                "overrides",
                overrides,
                "a JSON object of canary settings",
            ));
        };
        let mut merged = serde_json::to_value(self).map_err(|e| invalid("overrides", e, "JSON"))?;
        let known: Vec<String> = merged
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        for (key, value) in changes {
            if !known.contains(key) {
                return Err(invalid(
                    key,
                    value,
                    &format!("one of the canary settings: {}", known.join(", ")),
                ));
            }
            // Each key alone first, so a wrong type is named by its key.
            let mut one = merged.clone();
            one[key] = value.clone();
            if let Err(e) = serde_json::from_value::<CanaryConfig>(one) {
                let expected = match e.to_string() {
                    m if m.contains("invalid type") => format!("the type of the default ({m})"),
                    m => m,
                };
                return Err(invalid(key, value, &expected));
            }
            merged[key] = value.clone();
        }
        let config: CanaryConfig = serde_json::from_value(merged)
            .map_err(|e| invalid("overrides", e, "canary settings"))?;
        config.validate()?;
        Ok(config)
    }

    /// Milliseconds a stage of `hours` runs.
    pub fn stage_ms(hours: Decimal) -> i64 {
        use rust_decimal::prelude::ToPrimitive;
        (hours * Decimal::from(3_600_000))
            .round()
            .to_i64()
            .unwrap_or(i64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_are_valid_and_as_documented() {
        let c = CanaryConfig::default();
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(c.backtest_days, 7);
        assert_eq!(c.paper_hours, Decimal::from(24));
        assert_eq!(c.live_hours, Decimal::from(2));
        assert_eq!(c.canary_size_pct, Decimal::from(10));
        assert_eq!(CanaryConfig::stage_ms(c.live_hours), 7_200_000);
        assert_eq!(c.live_daily_loss_pct, Decimal::from(5));
        assert_eq!(c.live_max_error_rate, Decimal::new(5, 2));
        let e = c
            .with_overrides(&json!({"live_max_error_rate": "1.5"}))
            .unwrap_err();
        assert_eq!(e.key, "live_max_error_rate");
    }

    #[test]
    fn overrides_apply_and_bad_ones_are_named() {
        let c = CanaryConfig::default();
        let o = c
            .with_overrides(&json!({"paper_hours": "0.5", "max_risk_events": 2}))
            .expect("valid overrides");
        assert_eq!(o.paper_hours, Decimal::new(5, 1));
        assert_eq!(o.max_risk_events, 2);
        assert_eq!(o.live_hours, c.live_hours);

        let e = c.with_overrides(&json!({"paper_hour": 1})).unwrap_err();
        assert_eq!(e.key, "paper_hour");
        assert!(e.expected.contains("paper_hours"), "{e}");

        let e = c
            .with_overrides(&json!({"max_risk_events": "many"}))
            .unwrap_err();
        assert_eq!(e.key, "max_risk_events");
        assert!(e.expected.contains("invalid type"), "{e}");

        let e = c.with_overrides(&json!({"live_hours": "0"})).unwrap_err();
        assert_eq!(
            e.to_string(),
            "canary.live_hours = 0: expected more than 0 and at most 720 hours"
        );

        let e = c.with_overrides(&json!(["paper_hours"])).unwrap_err();
        assert_eq!(e.key, "overrides");
    }

    #[test]
    fn scale_steps_must_rise_above_the_canary_to_100() {
        for steps in [vec![50, 25, 100], vec![5, 50, 100], vec![25, 50], vec![]] {
            let c = CanaryConfig {
                scale_steps_pct: steps.iter().map(|s| Decimal::from(*s)).collect(),
                ..CanaryConfig::default()
            };
            let e = c.validate().unwrap_err();
            assert_eq!(e.key, "scale_steps_pct", "{steps:?}");
        }
        let c = CanaryConfig {
            scale_steps_pct: vec![Decimal::ONE_HUNDRED],
            ..CanaryConfig::default()
        };
        assert_eq!(c.validate(), Ok(()));
    }
}
