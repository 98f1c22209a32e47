//! `[funds]`: the treasury, how much gas a trading wallet keeps, what it keeps of each asset and
//! what is swept above that, where funds may go, and how much may leave in an hour.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::ConfigError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FundsConfig {
    /// The treasury's address: drips come from it, sweeps go to it. Empty: no funds manager.
    /// Its key comes from `BSC_BOT_TREASURY_PRIVATE_KEY` or the keystore named below, never
    /// from this file.
    pub treasury: String,
    /// Keystore (under the data dir's keystore folder) holding the treasury's key, unlocked with
    /// `BSC_BOT_KEYSTORE_PASSWORD`; empty: `BSC_BOT_TREASURY_PRIVATE_KEY`.
    pub treasury_keystore: String,
    /// Below this a trading wallet is dripped up to `gas_target_bnb` from the treasury.
    pub gas_min_bnb: Decimal,
    pub gas_target_bnb: Decimal,
    /// Working capital a trading wallet keeps, per asset (`USDT`, `BTC`, `BNB` …); only what is
    /// above it is swept.
    pub keep: BTreeMap<String, Decimal>,
    /// An excess is swept only when it is at least this (per asset; absent: never swept).
    pub sweep_min: BTreeMap<String, Decimal>,
    /// The most of each asset drips and sweeps may move within a rolling hour; an operation that
    /// would pass it is refused (absent: no limit for that asset).
    pub max_hourly_outflow: BTreeMap<String, Decimal>,
    /// Where funds may go besides the treasury (also for `funds sweep execute`); anything else is
    /// refused.
    pub allowed_destinations: Vec<String>,
    /// How often balances are checked (seconds).
    pub check_interval_secs: u64,
}

impl Default for FundsConfig {
    fn default() -> Self {
        FundsConfig {
            treasury: String::new(),
            treasury_keystore: String::new(),
            gas_min_bnb: Decimal::new(5, 2),
            gas_target_bnb: Decimal::new(2, 1),
            keep: BTreeMap::new(),
            sweep_min: BTreeMap::new(),
            max_hourly_outflow: BTreeMap::new(),
            allowed_destinations: Vec::new(),
            check_interval_secs: 60,
        }
    }
}

fn invalid(key: &str, value: impl ToString, expected: &str) -> ConfigError {
    ConfigError::Invalid {
        key: format!("funds.{key}"),
        value: value.to_string(),
        expected: expected.into(),
    }
}

fn is_address(text: &str) -> bool {
    text.parse::<alloy::primitives::Address>().is_ok()
}

impl FundsConfig {
    pub fn enabled(&self) -> bool {
        !self.treasury.trim().is_empty()
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.enabled() && !is_address(&self.treasury) {
            return Err(invalid("treasury", &self.treasury, "a 0x address"));
        }
        for d in &self.allowed_destinations {
            if !is_address(d) {
                return Err(invalid("allowed_destinations", d, "0x addresses"));
            }
        }
        if self.gas_min_bnb < Decimal::ZERO || self.gas_target_bnb < self.gas_min_bnb {
            return Err(invalid(
                "gas_target_bnb",
                self.gas_target_bnb,
                "at least gas_min_bnb (both >= 0)",
            ));
        }
        for (key, map) in [
            ("keep", &self.keep),
            ("sweep_min", &self.sweep_min),
            ("max_hourly_outflow", &self.max_hourly_outflow),
        ] {
            if let Some((asset, v)) = map.iter().find(|(_, v)| **v < Decimal::ZERO) {
                return Err(invalid(&format!("{key}.{asset}"), v, "a decimal >= 0"));
            }
        }
        if !(1..=86_400).contains(&self.check_interval_secs) {
            return Err(invalid(
                "check_interval_secs",
                self.check_interval_secs,
                "seconds in 1..=86400",
            ));
        }
        Ok(())
    }

    /// Whether funds may be sent to `to` (the treasury, or the allow-list).
    pub fn allows(&self, to: &str) -> bool {
        let same = |a: &str| {
            a.parse::<alloy::primitives::Address>().ok()
                == to.parse::<alloy::primitives::Address>().ok()
        };
        to.parse::<alloy::primitives::Address>().is_ok()
            && (same(&self.treasury) || self.allowed_destinations.iter().any(|a| same(a)))
    }
}
