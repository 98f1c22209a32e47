//! Grid price levels per `GRID.md`, in exact decimals so backtest, paper and live agree.

use rust_decimal::{Decimal, MathematicalOps, RoundingStrategy};

use super::params::{GridParams, Spacing};

/// Decimal places geometric levels are rounded to (half-even), as `GRID.md` pins.
pub const GEOMETRIC_LEVEL_DP: u32 = 8;

/// The N levels `L_0 = lower` .. `L_{N-1} = upper`, strictly increasing.
pub fn grid_levels(p: &GridParams) -> Vec<Decimal> {
    let n = p.grid_count as usize;
    let steps = Decimal::from(p.grid_count - 1);
    let mut levels = Vec::with_capacity(n);
    match p.spacing {
        Spacing::Arithmetic => {
            let step = (p.upper_price - p.lower_price) / steps;
            for i in 0..n {
                levels.push(p.lower_price + Decimal::from(i as u64) * step);
            }
        }
        Spacing::Geometric => {
            let ratio = p.upper_price / p.lower_price;
            for i in 0..n {
                let exponent = Decimal::from(i as u64) / steps;
                let level = p.lower_price * ratio.powd(exponent);
                levels.push(level.round_dp_with_strategy(
                    GEOMETRIC_LEVEL_DP,
                    RoundingStrategy::MidpointNearestEven,
                ));
            }
        }
    }
    // The ends are exact by definition; arithmetic division or pow may leave a tail digit.
    if let Some(first) = levels.first_mut() {
        *first = p.lower_price;
    }
    if let Some(last) = levels.last_mut() {
        *last = p.upper_price;
    }
    levels
}

/// Cells `[L_i, L_{i+1}]` whose round trip cannot cover the fee twice:
/// `(1 - fee)^2 * L_{i+1} / L_i <= 1`. Returned as cell indexes.
pub fn unprofitable_cells(p: &GridParams, levels: &[Decimal]) -> Vec<usize> {
    let keep = Decimal::ONE - p.fee_rate();
    let keep2 = keep * keep;
    levels
        .windows(2)
        .enumerate()
        .filter(|(_, w)| keep2 * w[1] <= w[0])
        .map(|(i, _)| i)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::grid::params::OnExit;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn params(lower: &str, upper: &str, n: u32, spacing: Spacing, fee_bps: u32) -> GridParams {
        GridParams {
            lower_price: d(lower),
            upper_price: d(upper),
            grid_count: n,
            spacing,
            base_order_size: d("10"),
            fee_bps,
            on_exit: OnExit::Hold,
            stop_loss_price: None,
            take_profit_price: None,
            pool: None,
            risk: Default::default(),
        }
    }

    #[test]
    fn arithmetic_levels_exact() {
        let l = grid_levels(&params("100", "200", 5, Spacing::Arithmetic, 25));
        assert_eq!(l, vec![d("100"), d("125"), d("150"), d("175"), d("200")]);
    }

    #[test]
    fn geometric_levels_rounded_half_even_8dp() {
        // 100 * 2^(i/4): 100, 118.92071150, 141.42135624, 168.17928305, 200
        // (reference values from Python's decimal module at 50 digits, rounded half-even).
        let l = grid_levels(&params("100", "200", 5, Spacing::Geometric, 25));
        assert_eq!(
            l,
            vec![
                d("100"),
                d("118.92071150"),
                d("141.42135624"),
                d("168.17928305"),
                d("200")
            ]
        );
    }

    #[test]
    fn geometric_levels_at_btc_prices() {
        // 60000 * (70000/60000)^(i/3), reference from Python decimal (50 digits).
        let l = grid_levels(&params("60000", "70000", 4, Spacing::Geometric, 25));
        assert_eq!(
            l,
            vec![
                d("60000"),
                d("63163.59597656"),
                d("66493.99761151"),
                d("70000")
            ]
        );
    }

    #[test]
    fn narrow_cells_flagged() {
        // 0.25% fee twice ≈ 0.4994%; cells of 0.25% cannot pay for it.
        let p = params("100", "101", 5, Spacing::Arithmetic, 25);
        let l = grid_levels(&p);
        assert_eq!(unprofitable_cells(&p, &l), vec![0, 1, 2, 3]);
        let wide = params("100", "200", 5, Spacing::Arithmetic, 25);
        assert!(unprofitable_cells(&wide, &grid_levels(&wide)).is_empty());
    }
}
