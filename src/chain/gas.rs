//! What a transaction pays: BSC takes legacy-priced transactions, so the bot sets a gas price
//! itself (the node's suggestion × a multiplier, kept between a floor and a cap) instead of
//! letting EIP-1559 defaults pick a 1-wei fee on a zero-base-fee chain.

use alloy::primitives::U256;
use rust_decimal::Decimal;

use super::units::{to_units, UnitsError};
use crate::config::ChainConfig;

/// Gas price in wei from the node's suggestion.
pub fn gas_price_wei(node_wei: u128, config: &ChainConfig) -> Result<u128, UnitsError> {
    let gwei = |d: Decimal| -> Result<u128, UnitsError> {
        let v = to_units(d, 9)?;
        Ok(u128::try_from(v).unwrap_or(u128::MAX))
    };
    let floor = gwei(config.gas_price_floor_gwei)?;
    let cap = gwei(config.gas_price_cap_gwei)?;
    let node = Decimal::from_i128_with_scale(i128::try_from(node_wei).unwrap_or(i128::MAX), 0);
    let scaled = to_units(node * config.gas_price_multiplier, 0)?;
    let scaled = u128::try_from(scaled).unwrap_or(u128::MAX);
    Ok(scaled.clamp(floor, cap.max(floor)))
}

/// The configured cap in wei: no transaction, replacements included, pays more.
pub fn gas_price_cap_wei(config: &ChainConfig) -> Result<u128, UnitsError> {
    let v = to_units(config.gas_price_cap_gwei, 9)?;
    Ok(u128::try_from(v).unwrap_or(u128::MAX))
}

/// Gas limit: the node's estimate with the configured margin (rounded up).
pub fn gas_limit(estimate: u64, margin: Decimal) -> u64 {
    use rust_decimal::prelude::ToPrimitive;
    (Decimal::from(estimate) * margin)
        .ceil()
        .to_u64()
        .unwrap_or(u64::MAX)
}

/// A replacement of a stuck transaction must pay at least 10 % more (nodes refuse less).
pub fn replacement_price(previous_wei: u128) -> u128 {
    previous_wei + previous_wei.div_ceil(10)
}

/// Wei spent on gas, as BNB.
pub fn fee_bnb(gas_used: u64, price_wei: u128) -> Result<Decimal, UnitsError> {
    super::units::from_units(U256::from(gas_used) * U256::from(price_wei), 18)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn price_follows_the_node_within_floor_and_cap() {
        let c = ChainConfig::default(); // floor 0.1 gwei, × 1.1, cap 10 gwei
        assert_eq!(gas_price_wei(1_000_000_000, &c), Ok(1_100_000_000));
        assert_eq!(gas_price_wei(0, &c), Ok(100_000_000), "floor");
        assert_eq!(gas_price_wei(50_000_000_000, &c), Ok(10_000_000_000), "cap");
    }

    #[test]
    fn limit_margin_replacement_and_fee() {
        assert_eq!(gas_limit(100_000, Decimal::new(13, 1)), 130_000);
        assert_eq!(gas_limit(100_001, Decimal::new(13, 1)), 130_002);
        assert_eq!(replacement_price(1_000_000_000), 1_100_000_000);
        assert_eq!(replacement_price(1), 2);
        assert_eq!(fee_bnb(21_000, 1_000_000_000), Ok(Decimal::new(21, 6)));
    }
}
