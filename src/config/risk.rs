//! `[risk]`: the limits the guard enforces, globally, and a strategy's own overrides from its
//! params. Every limit is optional: absent means the guard does not check it (backtests run with
//! none unless asked).

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::ConfigError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RiskConfig {
    /// Loss since 00:00 UTC (realized + unrealized, in the strategy's quote) that pauses a
    /// strategy. The runbook's alert fires at 1,000.
    pub daily_loss_limit: Option<Decimal>,
    /// Largest inventory value (base held × price, quote) a strategy may build; buys beyond it
    /// are refused until sells bring it down.
    pub max_position: Option<Decimal>,
    /// Largest quote value of one order.
    pub max_order_notional: Option<Decimal>,
    /// A price move over `price_jump_window_secs` beyond this many percent stops new buys on that
    /// market for `price_jump_cooldown_secs` (sells still go: they reduce exposure).
    pub price_jump_pct: Option<Decimal>,
    pub price_jump_window_secs: u64,
    pub price_jump_cooldown_secs: u64,
    /// A market priced by its pool trades only while the pool is within this many bps of the
    /// reference (Binance) price.
    pub max_divergence_bps: Option<Decimal>,
    /// Failed orders / all answered orders over `error_rate_window_secs`, as a fraction (the
    /// runbook's threshold: 0.10), from `error_rate_min_orders` orders on: pauses the strategy.
    pub max_error_rate: Option<Decimal>,
    pub error_rate_window_secs: u64,
    pub error_rate_min_orders: u32,
    /// Quote value leaving the trading wallets within a rolling hour (swap inputs of live
    /// strategies) beyond which further swaps are refused until the hour rolls on.
    pub max_hourly_outflow: Option<Decimal>,
}

impl Default for RiskConfig {
    fn default() -> Self {
        RiskConfig {
            daily_loss_limit: None,
            max_position: None,
            max_order_notional: None,
            price_jump_pct: None,
            price_jump_window_secs: 60,
            price_jump_cooldown_secs: 300,
            max_divergence_bps: None,
            max_error_rate: Some(Decimal::new(10, 2)),
            error_rate_window_secs: 600,
            error_rate_min_orders: 10,
            max_hourly_outflow: None,
        }
    }
}

impl RiskConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = |key: &str, v: Option<Decimal>| match v {
            Some(v) if v <= Decimal::ZERO => Err(ConfigError::Invalid {
                key: format!("risk.{key}"),
                value: v.to_string(),
                expected: "a decimal > 0 (or leave it out: no limit)".into(),
            }),
            _ => Ok(()),
        };
        positive("daily_loss_limit", self.daily_loss_limit)?;
        positive("max_position", self.max_position)?;
        positive("max_order_notional", self.max_order_notional)?;
        positive("price_jump_pct", self.price_jump_pct)?;
        positive("max_divergence_bps", self.max_divergence_bps)?;
        positive("max_hourly_outflow", self.max_hourly_outflow)?;
        if let Some(r) = self.max_error_rate {
            if r <= Decimal::ZERO || r > Decimal::ONE {
                return Err(ConfigError::Invalid {
                    key: "risk.max_error_rate".into(),
                    value: r.to_string(),
                    expected: "a fraction in (0, 1], e.g. \"0.10\"".into(),
                });
            }
        }
        for (key, v) in [
            ("price_jump_window_secs", self.price_jump_window_secs),
            ("price_jump_cooldown_secs", self.price_jump_cooldown_secs),
            ("error_rate_window_secs", self.error_rate_window_secs),
        ] {
            if !(1..=86_400).contains(&v) {
                return Err(ConfigError::Invalid {
                    key: format!("risk.{key}"),
                    value: v.to_string(),
                    expected: "seconds in 1..=86400".into(),
                });
            }
        }
        Ok(())
    }

    /// The limits of one strategy: its own where its params set them, these otherwise.
    pub fn for_strategy(&self, own: &StrategyRiskOverrides) -> StrategyLimits {
        StrategyLimits {
            daily_loss_limit: own.daily_loss_limit.or(self.daily_loss_limit),
            max_position: own.max_position.or(self.max_position),
            max_order_notional: own.max_order_notional.or(self.max_order_notional),
            max_error_rate: own.max_error_rate.or(self.max_error_rate),
            error_rate_window_us: secs_to_us(self.error_rate_window_secs),
            error_rate_min_orders: self.error_rate_min_orders.max(1),
            daily_loss_key: if own.daily_loss_limit.is_some() {
                OWN_DAILY_LOSS_KEY
            } else {
                "risk.daily_loss_limit"
            },
            error_rate_key: if own.max_error_rate.is_some() {
                OWN_ERROR_RATE_KEY
            } else {
                "risk.max_error_rate"
            },
        }
    }

    pub fn market_limits(&self) -> MarketLimits {
        MarketLimits {
            price_jump_pct: self.price_jump_pct,
            price_jump_window_us: secs_to_us(self.price_jump_window_secs),
            price_jump_cooldown_us: secs_to_us(self.price_jump_cooldown_secs),
            max_divergence_bps: self.max_divergence_bps,
            max_hourly_outflow: self.max_hourly_outflow,
        }
    }
}

fn secs_to_us(s: u64) -> i64 {
    i64::try_from(s)
        .unwrap_or(i64::MAX / 1_000_000)
        .saturating_mul(1_000_000)
}

/// A strategy's own limits, from its params (`max_daily_loss`, `max_position`,
/// `max_order_notional`, `max_error_rate`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StrategyRiskOverrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub daily_loss_limit: Option<Decimal>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_position: Option<Decimal>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_order_notional: Option<Decimal>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_error_rate: Option<Decimal>,
}

impl StrategyRiskOverrides {
    /// Read the four keys from a strategy's params, every problem kept for the report.
    pub fn read(
        r: &mut crate::model::params::ParamReader<'_>,
        problems: &mut Vec<crate::model::params::ParamError>,
    ) -> Self {
        use crate::model::params::ParamError;
        let mut get = |key: &'static str, fraction: bool| match r.opt_decimal(key) {
            Ok(Some(v)) if v <= Decimal::ZERO || (fraction && v > Decimal::ONE) => {
                let want = if fraction {
                    "a fraction in (0, 1]"
                } else {
                    "> 0"
                };
                problems.push(ParamError::new(key, format!("must be {want}, got {v}")));
                None
            }
            Ok(v) => v,
            Err(e) => {
                problems.push(e);
                None
            }
        };
        StrategyRiskOverrides {
            daily_loss_limit: get("daily_loss_limit", false),
            max_position: get("max_position", false),
            max_order_notional: get("max_order_notional", false),
            max_error_rate: get("max_error_rate", true),
        }
    }
}

/// What the guard checks for one strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StrategyLimits {
    pub daily_loss_limit: Option<Decimal>,
    pub max_position: Option<Decimal>,
    pub max_order_notional: Option<Decimal>,
    pub max_error_rate: Option<Decimal>,
    pub error_rate_window_us: i64,
    pub error_rate_min_orders: u32,
    /// Where the daily-loss limit came from, as a message names it (the config key, or the
    /// strategy's own parameter).
    pub daily_loss_key: &'static str,
    /// Where the error-rate limit came from.
    pub error_rate_key: &'static str,
}

/// How a message names a limit set in the strategy's own parameters.
pub const OWN_DAILY_LOSS_KEY: &str = "the strategy's daily_loss_limit parameter";
pub const OWN_ERROR_RATE_KEY: &str = "the strategy's max_error_rate parameter";

impl Default for StrategyLimits {
    fn default() -> Self {
        StrategyLimits {
            daily_loss_limit: None,
            max_position: None,
            max_order_notional: None,
            max_error_rate: None,
            error_rate_window_us: 600_000_000,
            error_rate_min_orders: 10,
            daily_loss_key: "risk.daily_loss_limit",
            error_rate_key: "risk.max_error_rate",
        }
    }
}

/// What the guard checks for every market.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MarketLimits {
    pub price_jump_pct: Option<Decimal>,
    pub price_jump_window_us: i64,
    pub price_jump_cooldown_us: i64,
    pub max_divergence_bps: Option<Decimal>,
    pub max_hourly_outflow: Option<Decimal>,
}

impl Default for MarketLimits {
    fn default() -> Self {
        MarketLimits {
            price_jump_pct: None,
            price_jump_window_us: 60_000_000,
            price_jump_cooldown_us: 300_000_000,
            max_divergence_bps: None,
            max_hourly_outflow: None,
        }
    }
}
