//! A live market's two prices side by side: the pool's (what its swaps get, what a live grid
//! triggers on) and the reference exchange's (Binance), with their divergence in basis points.
//! A large divergence means the pool is being moved (or is thin) — worth an operator's look
//! before a swap fills there.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarketPrices {
    /// Pool price (quote per base); `None` until the pool feed has read it.
    pub dex_price: Option<Decimal>,
    /// Reference exchange's last trade; `None` until one arrived.
    pub reference_price: Option<Decimal>,
    /// (dex − reference) / reference × 10,000, to 0.1 bps.
    pub divergence_bps: Option<Decimal>,
    /// When the daemon took these (epoch ms).
    pub at_ms: i64,
}

/// (pool − reference) / reference × 10,000, to 0.1 bps; `None` without a reference price. The
/// one formula for metrics, `strategy status` and the risk guard's divergence limit.
pub fn divergence_bps(pool: Decimal, reference: Decimal) -> Option<Decimal> {
    (reference > Decimal::ZERO)
        .then(|| ((pool - reference) / reference * Decimal::from(10_000)).round_dp(1))
}

impl MarketPrices {
    pub fn new(dex: Option<Decimal>, reference: Option<Decimal>, at_ms: i64) -> Self {
        let divergence_bps = match (dex, reference) {
            (Some(d), Some(r)) => divergence_bps(d, r),
            _ => None,
        };
        MarketPrices {
            dex_price: dex.map(|p| p.round_dp(8).normalize()),
            reference_price: reference.map(|p| p.normalize()),
            divergence_bps,
            at_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn divergence_in_basis_points() {
        let d = |s: &str| Decimal::from_str(s).unwrap();
        let m = MarketPrices::new(Some(d("100100")), Some(d("100000")), 1);
        assert_eq!(m.divergence_bps, Some(d("10")));
        let m = MarketPrices::new(Some(d("99950")), Some(d("100000")), 1);
        assert_eq!(m.divergence_bps, Some(d("-5")));
        assert_eq!(
            MarketPrices::new(Some(d("1")), None, 1).divergence_bps,
            None
        );
    }
}
