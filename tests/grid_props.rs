//! Property tests: accounting invariants of the grid hold after every event, for random grids
//! and random price paths.

#![allow(clippy::unwrap_used)]

use bsc_bot::engine::order::{Fill, Side};
use bsc_bot::engine::{Engine, Event, Ledger, PriceKey, Recorder};
use bsc_bot::risk::{RiskGuard, RiskLimits};
use bsc_bot::strategy::{StrategyParams, StrategyStatus};
use bsc_bot::venue::{SimVenue, SimVenueConfig};
use proptest::prelude::*;
use rust_decimal::{Decimal, RoundingStrategy};

/// Checks every fill as it happens, against the ledger right after it.
struct Checker {
    fee: Decimal,
    prev_realized: Decimal,
    violations: Vec<String>,
}

impl Recorder for Checker {
    fn fill(&mut self, fill: &Fill, ledger: &Ledger) {
        if ledger.quote < Decimal::ZERO || ledger.base < Decimal::ZERO {
            self.violations
                .push(format!("negative balance after {fill:?}: {ledger:?}"));
        }
        // equity = quote + base × price, and it equals capital + realized + unrealized.
        let p = fill.price;
        if ledger.equity(p) != ledger.quote + ledger.base * p
            || ledger.equity(p)
                != ledger.initial_quote + ledger.realized_pnl + ledger.unrealized_pnl(p)
        {
            self.violations
                .push(format!("equity identity broken after {fill:?}: {ledger:?}"));
        }
        if fill.side == Side::Sell {
            if let Some(cost) = fill.lot_cost {
                // Each round trip realizes exactly q · L · (1 − fee) − Q (received amounts rounded
                // toward zero to 18 dp).
                let expect = (fill.base * fill.price * (Decimal::ONE - self.fee))
                    .round_dp_with_strategy(18, RoundingStrategy::ToZero)
                    - cost;
                if ledger.realized_pnl - self.prev_realized != expect {
                    self.violations.push(format!(
                        "round trip realized {} expected {expect}",
                        ledger.realized_pnl - self.prev_realized
                    ));
                }
            }
        }
        self.prev_realized = ledger.realized_pnl;
    }
}

fn price_str(cents: u64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

prop_compose! {
    fn grid()(lower in 5_000u64..20_000, width in 100u64..20_000, n in 2u32..15,
              geometric in any::<bool>(), fee_bps in 0u32..100, q in 1u64..1_000,
              on_exit_stop in any::<bool>(), sl in proptest::option::of(1u64..100), tp in proptest::option::of(1u64..100))
        -> (serde_json::Value, u64, u64) {
        let upper = lower + width;
        let mut v = serde_json::json!({
            "lower_price": price_str(lower), "upper_price": price_str(upper), "grid_count": n,
            "spacing": if geometric { "geometric" } else { "arithmetic" }, "fee_bps": fee_bps,
            "base_order_size": q.to_string(), "on_exit": if on_exit_stop { "stop" } else { "hold" },
        });
        // stop-loss somewhere below the middle, take-profit above it
        let mid = (lower + upper) / 2;
        let sl_price = sl.map(|s| lower / 2 + (mid - lower / 2) * s / 100);
        if let Some(s) = sl_price { v["stop_loss_price"] = serde_json::json!(price_str(s.max(1))); }
        if let Some(t) = tp { v["take_profit_price"] = serde_json::json!(price_str(mid + (upper * 3 / 2 - mid) * t / 100 + 1)); }
        (v, lower, upper)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn accounting_invariants_hold_after_every_event(
        (params, lower, upper) in grid(),
        steps in proptest::collection::vec(0u64..1_000_000, 1..150),
    ) {
        let p = StrategyParams::parse("grid", &params).unwrap();
        let fee = Decimal::from(p.fee_bps()) / Decimal::from(10_000);
        let checker = Checker { fee, prev_realized: Decimal::ZERO, violations: Vec::new() };
        let mut e = Engine::new(1, SimVenue::new(SimVenueConfig::default()), RiskGuard::new(RiskLimits::default()), checker);
        e.add_strategy(p.build(), 0, p.fee_bps(), StrategyStatus::Active, None);
        let lo = lower / 2;
        let hi = upper * 3 / 2;
        for (i, s) in steps.iter().enumerate() {
            let cents = lo + s % (hi - lo);
            let text = price_str(cents);
            let key = PriceKey::parse_ascii(text.as_bytes()).unwrap();
            e.process(Event::Tick { symbol: 0, ts_us: i as i64, price: key });
            let price: Decimal = text.parse().unwrap();
            let l = e.ledger(0);
            prop_assert!(l.quote >= Decimal::ZERO && l.base >= Decimal::ZERO, "negative balance: {l:?}");
            prop_assert_eq!(l.equity(price), l.quote + l.base * price);
            prop_assert_eq!(l.equity(price), l.initial_quote + l.realized_pnl + l.unrealized_pnl(price));
            // The ledger's base is exactly the lots the grid believes it holds.
            let snap = e.snapshot(0);
            let held: Decimal = snap["cells"].as_array().unwrap().iter()
                .filter_map(|c| c.get("base").and_then(|b| b.as_str()).map(|b| b.parse::<Decimal>().unwrap()))
                .sum();
            prop_assert_eq!(held, l.base);
        }
        prop_assert!(e.recorder().violations.is_empty(), "{:?}", e.recorder().violations);
    }
}
