//! Property tests: accounting invariants of the grid hold after every event, for random grids
//! and random price paths.

#![allow(clippy::unwrap_used)]

use bsc_bot::engine::recorder::Mark;
use bsc_bot::engine::{block_bounds, Engine, Event, Ledger, Recorder, TickSlab};
use bsc_bot::model::order::{Fill, Side};
use bsc_bot::model::PriceKey;
use bsc_bot::risk::{RiskGuard, RiskLimits};
use bsc_bot::strategy::grid::{grid_levels, GridParams};
use bsc_bot::strategy::{StrategyParams, StrategyStatus};
use bsc_bot::venue::{SimDelays, SimVenue, SimVenueConfig};
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

/// Writes down everything the engine reports, in order, to compare two runs event for event.
#[derive(Default)]
struct Transcript(Vec<String>);

impl Recorder for Transcript {
    fn order_failed(&mut self, s: usize, o: u64, r: &str, retryable: bool, ts: i64) {
        self.0.push(format!("failed {s} {o} {r} {retryable} {ts}"));
    }
    fn fill(&mut self, fill: &Fill, ledger: &Ledger) {
        self.0.push(format!("fill {fill:?} {ledger:?}"));
    }
    fn mark(&mut self, ts: i64, s: usize, m: &Mark<'_>) {
        self.0.push(format!(
            "mark {ts} {s} {:?} {} {}",
            m.ledger, m.price, m.equity
        ));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// The sweep's batch path (`on_ticks`, cut into arbitrary chunks) is the tick-by-tick path:
    /// same fills, failures and marks in the same order, same counters — with a venue that
    /// answers late and fails, and marks every few ticks.
    #[test]
    fn batches_of_ticks_equal_tick_by_tick(
        (params, lower, upper) in grid(),
        steps in proptest::collection::vec(0u64..1_000_000, 1..1500),
        latency in 0i64..40,
        fail_ppm in 0u32..300_000,
        mark_every in 1i64..60,
        cuts in proptest::collection::vec(1usize..50, 1..20),
    ) {
        let p = StrategyParams::parse("grid", &params).unwrap();
        let engine = || {
            let venue = SimVenue::new(SimVenueConfig::default()).with_delays(SimDelays {
                latency_us: latency, fail_ppm, reject_ppm: fail_ppm / 3, seed: 7,
            });
            let mut e = Engine::new(1, venue, RiskGuard::new(RiskLimits::default()), Transcript::default())
                .with_mark_interval(mark_every);
            e.add_strategy(p.build(), 0, p.fee_bps(), StrategyStatus::Active, None);
            e
        };
        let (lo, hi) = (lower / 2, upper * 3 / 2);
        // Several ticks share a timestamp, as trades in one millisecond do.
        let ts: Vec<i64> = (0..steps.len() as i64).map(|i| i / 3).collect();
        // A random walk (long quiet stretches, whole quiet blocks), jumping now and then to a
        // random price, and some prices exactly on a level: a price on a trigger must fire.
        let gp: GridParams = serde_json::from_value(params.clone()).unwrap();
        let levels = grid_levels(&gp);
        let mut cents = (lo + hi) / 2;
        let keys: Vec<PriceKey> = steps.iter()
            .map(|s| match s % 97 {
                0 => PriceKey::ceil_of(levels[(*s as usize / 97) % levels.len()]),
                1 => {
                    cents = lo + s % (hi - lo);
                    PriceKey::parse_ascii(price_str(cents).as_bytes()).unwrap()
                }
                _ => {
                    let step = (s / 97) % (1 + (hi - lo) / 200);
                    cents = if s % 2 == 0 { (cents + step).min(hi) } else { cents.saturating_sub(step).max(lo) };
                    PriceKey::parse_ascii(price_str(cents).as_bytes()).unwrap()
                }
            })
            .collect();
        let mut one = engine();
        for (t, k) in ts.iter().zip(&keys) {
            one.on_tick(0, *t, *k);
        }
        one.finish();
        // Chunks cut anywhere, each run in two parts split anywhere (as a walk-forward split
        // does), the block bounds skipping whole blocks.
        let mut batch = engine();
        let (mut at, mut c) = (0, 0);
        while at < ts.len() {
            let end = (at + cuts[c % cuts.len()] * 7).min(ts.len());
            let (cts, ckeys) = (&ts[at..end], &keys[at..end]);
            let (mut lows, mut highs) = (Vec::new(), Vec::new());
            block_bounds(ckeys, &mut lows, &mut highs);
            let slab = TickSlab { ts: cts, keys: ckeys, lows: &lows, highs: &highs };
            let split = cuts[(c + 1) % cuts.len()].min(cts.len());
            batch.on_tick_slab(0, &slab, 0..split);
            batch.on_tick_slab(0, &slab, split..cts.len());
            at = end;
            c += 1;
        }
        batch.finish();
        prop_assert_eq!(one.ticks(), batch.ticks());
        prop_assert_eq!(one.status(0), batch.status(0));
        prop_assert_eq!(format!("{:?}", one.ledger(0)), format!("{:?}", batch.ledger(0)));
        prop_assert_eq!(&one.recorder().0, &batch.recorder().0);
    }
}
