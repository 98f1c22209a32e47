//! The bound every swap carries: `amountOutMin` is what the order's limit price gives after the
//! pool fee, less the configured slippage. A swap that would fill worse reverts on chain.
//!
//! A grid buy spends exactly its quote amount and must receive at least
//! `quote × (1 − fee) / limit × (1 − slippage)` base; a sell sends exactly its lot and must
//! receive at least `base × limit × (1 − fee) × (1 − slippage)` quote. Rounded toward zero in the
//! output token's base units, so the bound never asks for more than that.

use rust_decimal::Decimal;

use crate::model::order::Side;

fn bps(b: u32) -> Decimal {
    Decimal::from(b) / Decimal::from(10_000)
}

/// Least acceptable output of a swap of `amount_in` at `limit` (quote per base).
pub fn min_amount_out(
    side: Side,
    amount_in: Decimal,
    limit: Decimal,
    fee_bps: u32,
    slippage_bps: u32,
) -> Decimal {
    if limit <= Decimal::ZERO {
        return Decimal::ZERO;
    }
    let keep = (Decimal::ONE - bps(fee_bps)) * (Decimal::ONE - bps(slippage_bps));
    match side {
        Side::Buy => amount_in * keep / limit,
        Side::Sell => amount_in * limit * keep,
    }
}

/// What a constant-product pool returns for `amount_in` (Uniswap V2's `getAmountOut`, exact in
/// decimals): `in × (1 − fee) × reserve_out / (reserve_in + in × (1 − fee))`.
pub fn amount_out(
    amount_in: Decimal,
    reserve_in: Decimal,
    reserve_out: Decimal,
    fee_bps: u32,
) -> Decimal {
    let net = amount_in * (Decimal::ONE - bps(fee_bps));
    if reserve_in + net <= Decimal::ZERO {
        return Decimal::ZERO;
    }
    net * reserve_out / (reserve_in + net)
}

/// A swap's price impact, from the pool's reserves after it (its `Sync` event) and its own
/// amounts: the reserves before were those less what the pair received, plus what it paid out.
/// Returns the mid price before the swap (quote per base) and how much worse than it the swap
/// filled before the pool fee, in basis points (0.01 bps). `None` for an empty pool.
pub fn price_impact(
    side: Side,
    base: Decimal,
    quote: Decimal,
    after: (Decimal, Decimal),
    fee_bps: u32,
) -> Option<(Decimal, Decimal)> {
    let (base_after, quote_after) = after;
    let keep = Decimal::ONE - bps(fee_bps);
    let (base_before, quote_before) = match side {
        Side::Buy => (base_after + base, quote_after - quote),
        Side::Sell => (base_after - base, quote_after + quote),
    };
    if base_before <= Decimal::ZERO || quote_before <= Decimal::ZERO || base <= Decimal::ZERO {
        return None;
    }
    let mid = quote_before / base_before;
    let impact = match side {
        // Paid per base, the fee taken out, against the mid price.
        Side::Buy => (quote * keep / base / mid - Decimal::ONE) * Decimal::from(10_000),
        // Received per base the pool kept (after the fee), against the mid price.
        Side::Sell => (Decimal::ONE - quote / (base * keep) / mid) * Decimal::from(10_000),
    };
    Some((mid, impact.round_dp(2)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap_or_default()
    }

    #[test]
    fn bounds_by_hand() {
        // Buy 100 USDT at 50,000 with 25 bps fee and 50 bps slippage:
        // 100 × 0.9975 × 0.995 / 50000 = 0.00198502500 BTC.
        assert_eq!(
            min_amount_out(Side::Buy, d("100"), d("50000"), 25, 50),
            d("0.001985025")
        );
        // Sell 0.002 BTC at 51,000, 30 bps fee, no slippage: 0.002 × 51000 × 0.997 = 101.694.
        assert_eq!(
            min_amount_out(Side::Sell, d("0.002"), d("51000"), 30, 0),
            d("101.694")
        );
        assert_eq!(
            min_amount_out(Side::Buy, d("1"), Decimal::ZERO, 30, 0),
            Decimal::ZERO
        );
    }

    #[test]
    fn impact_by_hand() {
        // Buy 1,000 quote from 10 / 1,000,000 at 30 bps: the net 997 moves the pool by
        // 997 / 1,000,000 of its quote, which is the impact: 9.97 bps.
        let out = amount_out(d("1000"), d("1000000"), d("10"), 30);
        let after = (d("10") - out, d("1001000"));
        let (mid, impact) = price_impact(Side::Buy, out, d("1000"), after, 30).unwrap_or_default();
        assert_eq!(mid, d("100000"));
        assert_eq!(impact, d("9.97"));
        // Sell 0.01 base into the same pool: 0.00997 net of 10 → 9.96 bps (0.00997 / 10.00997).
        let got = amount_out(d("0.01"), d("10"), d("1000000"), 30);
        let after = (d("10.01"), d("1000000") - got);
        let (_, impact) = price_impact(Side::Sell, d("0.01"), got, after, 30).unwrap_or_default();
        assert_eq!(impact, d("9.96"));
    }

    #[test]
    fn pool_output_matches_get_amount_out() {
        // 997/1000 for 30 bps: 1 in against 10 / 1,000,000 reserves.
        let out = amount_out(d("1"), d("10"), d("1000000"), 30);
        let expect = d("0.997") * d("1000000") / (d("10") + d("0.997"));
        assert_eq!(out, expect);
        // 9975/10000 for 25 bps.
        assert_eq!(
            amount_out(d("100"), d("1000"), d("1"), 25),
            d("99.75") / d("1099.75")
        );
    }
}
