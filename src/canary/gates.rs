//! The gates between stages: what each measures and against which threshold. A gate passes when
//! every measure meets its threshold; a measure that could not be taken fails (a gate never
//! passes on what it did not see).

use std::fmt;

use rust_decimal::Decimal;
use serde::Serialize;

use crate::config::canary::CanaryConfig;
use crate::model::order::{Fill, Side};

/// One measure against its threshold, as status and the transition record show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GateValue {
    pub measure: &'static str,
    /// `None`: not measured (counts as a failure).
    pub value: Option<String>,
    /// `≥ 0`, `≤ 10`, `= backtest`.
    pub threshold: String,
    pub passed: bool,
}

impl fmt::Display for GateValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = self.value.as_deref().unwrap_or("not measured");
        write!(f, "{} {value} (needs {})", self.measure, self.threshold)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GateReport {
    pub gate: String,
    pub values: Vec<GateValue>,
}

impl GateReport {
    /// Every measure met its threshold (a report with no measure has shown nothing: it fails).
    pub fn passed(&self) -> bool {
        !self.values.is_empty() && self.values.iter().all(|v| v.passed)
    }

    /// Why it did not pass: every failing measure with its figure.
    pub fn failures(&self) -> Option<String> {
        if self.values.is_empty() {
            return Some(format!("{} gate: nothing was measured", self.gate));
        }
        let failed: Vec<String> = self
            .values
            .iter()
            .filter(|v| !v.passed)
            .map(ToString::to_string)
            .collect();
        (!failed.is_empty()).then(|| format!("{} gate: {}", self.gate, failed.join("; ")))
    }
}

/// A measure as shown: four decimals at most (the comparison uses the exact value).
fn shown(v: Decimal) -> String {
    v.round_dp(4).normalize().to_string()
}

fn at_least(measure: &'static str, value: Option<Decimal>, min: Decimal) -> GateValue {
    GateValue {
        measure,
        value: value.map(shown),
        threshold: format!("≥ {}", min.normalize()),
        passed: value.is_some_and(|v| v >= min),
    }
}

fn at_most(measure: &'static str, value: Option<Decimal>, max: Decimal) -> GateValue {
    GateValue {
        measure,
        value: value.map(shown),
        threshold: format!("≤ {}", max.normalize()),
        passed: value.is_some_and(|v| v <= max),
    }
}

/// What the backtest stage measured (from its stored result).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BacktestMeasures {
    /// PnL net of gas over the starting capital, in %.
    pub return_net_of_gas_pct: Decimal,
    pub max_drawdown_pct: Decimal,
    pub round_trips: u64,
    /// The cells narrower than a round trip's cost in the pool (the create-time check's words);
    /// empty when every cell pays for its round trip.
    pub cost_warnings: Vec<String>,
}

pub fn backtest_gate(m: &BacktestMeasures, c: &CanaryConfig) -> GateReport {
    GateReport {
        gate: "backtest".into(),
        values: vec![
            at_least(
                "return net of gas %",
                Some(m.return_net_of_gas_pct),
                c.min_backtest_return_pct,
            ),
            at_most(
                "max drawdown %",
                Some(m.max_drawdown_pct),
                c.max_backtest_drawdown_pct,
            ),
            at_least(
                "round trips",
                Some(Decimal::from(m.round_trips)),
                Decimal::from(c.min_backtest_round_trips),
            ),
            GateValue {
                measure: "round-trip cost against cell",
                value: Some(match m.cost_warnings.first() {
                    None => "every cell pays for its round trip".into(),
                    Some(w) => w.clone(),
                }),
                threshold: "every cell wider than a round trip's cost".into(),
                passed: m.cost_warnings.is_empty(),
            },
        ],
    }
}

/// A fill as the fidelity check compares it: what moved and when, not the engine's numbering.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FillFacts {
    pub side: Side,
    pub price: Decimal,
    pub base: Decimal,
    pub quote: Decimal,
    pub fee: Decimal,
    pub ts_us: i64,
}

impl From<&Fill> for FillFacts {
    fn from(f: &Fill) -> Self {
        FillFacts {
            side: f.side,
            price: f.price.normalize(),
            base: f.base.normalize(),
            quote: f.quote.normalize(),
            fee: f.fee.normalize(),
            ts_us: f.ts_us,
        }
    }
}

impl fmt::Display for FillFacts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let side = match self.side {
            Side::Buy => "buy",
            Side::Sell => "sell",
        };
        write!(
            f,
            "{side} {} at {} for {} (fee {}, at {} µs)",
            self.base, self.price, self.quote, self.fee, self.ts_us
        )
    }
}

/// Where paper and its backtest over the same ticks first part: the fill's place in order and
/// each side's fill there (`None`: that side had no more fills).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FillDifference {
    pub index: usize,
    pub paper: Option<FillFacts>,
    pub backtest: Option<FillFacts>,
}

impl fmt::Display for FillDifference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |x: &Option<FillFacts>| x.as_ref().map_or("no fill".into(), ToString::to_string);
        write!(
            f,
            "fill #{}: paper {}, backtest {}",
            self.index + 1,
            show(&self.paper),
            show(&self.backtest)
        )
    }
}

/// The first fill where paper and the backtest of the same ticks differ (`None`: fill for fill
/// the same).
pub fn first_difference(paper: &[Fill], backtest: &[Fill]) -> Option<FillDifference> {
    let n = paper.len().max(backtest.len());
    (0..n).find_map(|i| {
        let p = paper.get(i).map(FillFacts::from);
        let b = backtest.get(i).map(FillFacts::from);
        (p != b).then_some(FillDifference {
            index: i,
            paper: p,
            backtest: b,
        })
    })
}

/// What the paper stage measured.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PaperMeasures {
    pub fills: u64,
    /// From [`first_difference`] of paper's fills against the backtest of its own ticks.
    pub difference: Option<FillDifference>,
    pub risk_events: u64,
    pub return_pct: Decimal,
}

pub fn paper_gate(m: &PaperMeasures, c: &CanaryConfig) -> GateReport {
    GateReport {
        gate: "paper".into(),
        values: vec![
            at_least("fills", Some(Decimal::from(m.fills)), Decimal::ONE),
            GateValue {
                measure: "fills against the backtest of the same ticks",
                value: Some(match &m.difference {
                    None => format!("{} fills, all equal", m.fills),
                    Some(d) => d.to_string(),
                }),
                threshold: "= fill for fill".into(),
                passed: m.difference.is_none(),
            },
            at_most(
                "risk events",
                Some(Decimal::from(m.risk_events)),
                Decimal::from(c.max_risk_events),
            ),
            at_least("return %", Some(m.return_pct), c.min_paper_return_pct),
        ],
    }
}

/// What a live stage measured over the stage.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LiveMeasures {
    pub swaps: u64,
    pub failed_swaps: u64,
    pub risk_events: u64,
    /// The worst live fill against its paper twin on the same pool price, in bps (positive:
    /// worse); `None` without a fill to compare.
    pub worst_slippage_bps: Option<Decimal>,
    /// Gas paid per round trip (quote); `None` before the first round trip.
    pub gas_per_round_trip: Option<Decimal>,
    /// The backtest model's gas per round trip (quote).
    pub model_gas_per_round_trip: Option<Decimal>,
    /// PnL net of gas over the capital the stage traded with, in %.
    pub return_net_of_gas_pct: Decimal,
}

impl LiveMeasures {
    pub fn failed_swap_pct(&self) -> Option<Decimal> {
        (self.swaps > 0).then(|| {
            Decimal::from(self.failed_swaps) * Decimal::ONE_HUNDRED / Decimal::from(self.swaps)
        })
    }

    pub fn gas_ratio(&self) -> Option<Decimal> {
        match (self.gas_per_round_trip, self.model_gas_per_round_trip) {
            (Some(g), Some(m)) if m > Decimal::ZERO => Some(g / m),
            (Some(g), Some(_)) if g.is_zero() => Some(Decimal::ZERO),
            _ => None,
        }
    }
}

/// A stage with no swap has nothing to judge: its failed share, slippage and gas are "not
/// measured" and the gate holds.
pub fn live_gate(m: &LiveMeasures, c: &CanaryConfig) -> GateReport {
    GateReport {
        gate: "live".into(),
        values: vec![
            at_most("failed swaps %", m.failed_swap_pct(), c.max_failed_swap_pct),
            at_most(
                "risk events",
                Some(Decimal::from(m.risk_events)),
                Decimal::from(c.max_risk_events),
            ),
            at_most(
                "slippage against paper, bps",
                m.worst_slippage_bps,
                c.max_slippage_bps,
            ),
            at_most("gas per round trip / model", m.gas_ratio(), c.max_gas_ratio),
            at_least(
                "return net of gas %",
                Some(m.return_net_of_gas_pct),
                c.min_live_return_pct,
            ),
        ],
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().expect("a decimal")
    }

    /// A limit fill of 0.1 base at `price` (the paper stage's tests use it too).
    pub(crate) fn fill(side: Side, price: &str, ts_us: i64) -> Fill {
        Fill {
            order_id: 7,
            strategy: 0,
            tag: 1,
            side,
            market: false,
            price: d(price),
            base: d("0.1"),
            quote: d(price) / d("10"),
            fee: d("0.01"),
            impact: Decimal::ZERO,
            gas: Decimal::ZERO,
            gas_bnb: Decimal::ZERO,
            bnb_price: None,
            lot_cost: None,
            ts_us,
        }
    }

    #[test]
    fn backtest_gate_names_every_failing_measure() {
        let c = CanaryConfig::default();
        let good = BacktestMeasures {
            return_net_of_gas_pct: d("1.5"),
            max_drawdown_pct: d("3"),
            round_trips: 4,
            cost_warnings: vec![],
        };
        assert!(backtest_gate(&good, &c).passed());
        let narrow = BacktestMeasures {
            round_trips: 0,
            cost_warnings: vec![
                "cell 0 (100 .. 100.3) is 30 bps wide, below a round trip's cost".into(),
            ],
            ..good
        };
        let r = backtest_gate(&narrow, &c);
        assert!(!r.passed());
        assert_eq!(
            r.failures().expect("failures"),
            "backtest gate: round trips 0 (needs ≥ 1); round-trip cost against cell cell 0 \
             (100 .. 100.3) is 30 bps wide, below a round trip's cost (needs every cell wider \
             than a round trip's cost)"
        );
    }

    #[test]
    fn fidelity_names_the_first_differing_fill_and_ignores_engine_numbering() {
        let backtest = vec![fill(Side::Buy, "100", 1), fill(Side::Sell, "101", 2)];
        let mut same = backtest.clone();
        same[0].order_id = 99;
        same[1].strategy = 3;
        assert_eq!(first_difference(&same, &backtest), None);

        let mut late = backtest.clone();
        late[1].ts_us = 5;
        let diff = first_difference(&late, &backtest).expect("a difference");
        assert_eq!(diff.index, 1);
        assert_eq!(
            diff.to_string(),
            "fill #2: paper sell 0.1 at 101 for 10.1 (fee 0.01, at 5 µs), backtest sell 0.1 at 101 \
             for 10.1 (fee 0.01, at 2 µs)"
        );

        let missing = first_difference(&backtest[..1], &backtest).expect("a difference");
        assert_eq!(missing.index, 1);
        assert_eq!(missing.paper, None);

        let m = PaperMeasures {
            fills: 1,
            difference: Some(missing),
            risk_events: 0,
            return_pct: d("0.2"),
        };
        let r = paper_gate(&m, &CanaryConfig::default());
        assert!(!r.passed());
        assert!(r
            .failures()
            .expect("failures")
            .contains("fill #2: paper no fill"));
    }

    #[test]
    fn live_gate_holds_on_what_it_did_not_measure_and_on_breaches() {
        let c = CanaryConfig::default();
        let quiet = LiveMeasures::default();
        let r = live_gate(&quiet, &c);
        assert!(!r.passed());
        assert_eq!(r.values[0].value, None);

        let good = LiveMeasures {
            swaps: 10,
            failed_swaps: 1,
            risk_events: 0,
            worst_slippage_bps: Some(d("12.5")),
            gas_per_round_trip: Some(d("0.06")),
            model_gas_per_round_trip: Some(d("0.05")),
            return_net_of_gas_pct: d("0.1"),
        };
        assert!(live_gate(&good, &c).passed(), "{:?}", live_gate(&good, &c));
        assert_eq!(good.failed_swap_pct(), Some(d("10")));
        assert_eq!(good.gas_ratio(), Some(d("1.2")));

        let front_run = LiveMeasures {
            failed_swaps: 2,
            ..good
        };
        let r = live_gate(&front_run, &c);
        assert_eq!(
            r.failures().expect("failures"),
            "live gate: failed swaps % 20 (needs ≤ 10)"
        );
    }
}
