//! Orders in flight: the engine with a venue that answers late and fails, through the real grid.
//!
//! Grid used unless said otherwise: levels 100, 125, 150, 175, 200 (N = 5), Q = 100 USDT,
//! fee 25 bps.

#![allow(clippy::unwrap_used)]

use std::str::FromStr;

use bsc_bot::engine::Execution;
use bsc_bot::engine::Venue;
use bsc_bot::engine::VenueReport;
use bsc_bot::engine::{Control, Engine, Event, Ledger, MemoryRecorder, Recorder};
use bsc_bot::model::order::{Fill, OrderId, Side, StrategyIx};
use bsc_bot::model::PriceKey;
use bsc_bot::risk::{Approved, Refusal, RiskGuard, RiskLimits};
use bsc_bot::strategy::grid::{retry_backoff_us, RETRY_MAX_US};
use bsc_bot::strategy::{StrategyParams, StrategyStatus};
use bsc_bot::venue::sim::PPM;
use bsc_bot::venue::{SimDelays, SimVenue, SimVenueConfig};
use proptest::prelude::*;
use rust_decimal::Decimal;

const GRID: &str = r#"{"lower_price":"100","upper_price":"200","grid_count":5,"base_order_size":"100","fee_bps":25}"#;

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn key(price: &str) -> PriceKey {
    PriceKey::parse_ascii(price.as_bytes()).unwrap()
}

fn sim(delays: SimDelays) -> SimVenue {
    SimVenue::new(SimVenueConfig::default()).with_delays(delays)
}

fn engine<R: Recorder, V: Venue>(params: &str, venue: V, recorder: R) -> Engine<R, V> {
    let p = StrategyParams::parse("grid", &serde_json::from_str(params).unwrap()).unwrap();
    let mut e = Engine::new(1, venue, RiskGuard::new(RiskLimits::default()), recorder);
    e.add_strategy(p.build(), 0, p.fee_bps(), StrategyStatus::Active, None);
    e
}

fn tick<R: Recorder, V: Venue>(e: &mut Engine<R, V>, ts: i64, price: &str) {
    e.process(Event::Tick {
        symbol: 0,
        ts_us: ts,
        price: key(price),
    });
}

fn cells<R: Recorder, V: Venue>(e: &Engine<R, V>) -> Vec<String> {
    e.snapshot(0)["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["state"].as_str().unwrap().to_string())
        .collect()
}

/// Everything the engine reports, with the ledger checked against the sum of fills each time.
#[derive(Default)]
struct Audit {
    fills: Vec<Fill>,
    /// `(time, order, tag, side)` of every submission.
    submitted: Vec<(i64, OrderId, u64, Side)>,
    failed: Vec<(OrderId, bool)>,
    ignored: Vec<(OrderId, String)>,
    refused: Vec<Refusal>,
    violations: Vec<String>,
}

impl Audit {
    /// quote and base as the capital and the fills alone say they must be.
    fn balances_by_fills(&self, initial: Decimal) -> (Decimal, Decimal) {
        let mut quote = initial;
        let mut base = Decimal::ZERO;
        for f in &self.fills {
            match f.side {
                Side::Buy => {
                    quote -= f.quote;
                    base += f.base;
                }
                Side::Sell => {
                    quote += f.quote;
                    base -= f.base;
                }
            }
        }
        (quote, base)
    }
}

impl Recorder for Audit {
    fn order_submitted(&mut self, order: &Execution, ts_us: i64) {
        self.submitted
            .push((ts_us, order.order_id, order.tag, order.side));
    }
    fn order_failed(&mut self, _s: StrategyIx, order: OrderId, _r: &str, retry: bool, _t: i64) {
        self.failed.push((order, retry));
    }
    fn fill(&mut self, fill: &Fill, ledger: &Ledger) {
        self.fills.push(fill.clone());
        let (quote, base) = self.balances_by_fills(ledger.initial_quote);
        if (ledger.quote, ledger.base) != (quote, base) {
            self.violations.push(format!(
                "ledger {}/{} != fills {quote}/{base}",
                ledger.quote, ledger.base
            ));
        }
        if ledger.available_quote() < Decimal::ZERO || ledger.available_base() < Decimal::ZERO {
            self.violations.push(format!(
                "reserved more than held after {fill:?}: {ledger:?}"
            ));
        }
    }
    fn refused(&mut self, _order: &Execution, refusal: &Refusal, _t: i64) {
        self.refused.push(refusal.clone());
    }
    fn report_ignored(&mut self, report: &VenueReport, why: &str, _t: i64) {
        self.ignored.push((report.order_id(), why.to_string()));
    }
}

#[test]
fn delayed_fill_reserves_funds_until_it_arrives() {
    let delays = SimDelays {
        latency_us: 2_000_000,
        ..SimDelays::default()
    };
    let mut e = engine(GRID, sim(delays), MemoryRecorder::default());
    tick(&mut e, 0, "160");
    // Only cell 3 (175-200) lies above 160: its lot is bought at market, and is in flight.
    let flight = e.in_flight(0);
    assert_eq!(flight.len(), 1, "the start buy is in flight: {flight:?}");
    assert_eq!(e.ledger(0).reserved_quote, d("100"));
    assert_eq!(e.ledger(0).quote, d("400"), "nothing spent yet");
    assert_eq!(e.ledger(0).available_quote(), d("300"));
    assert!(e.recorder().fills.is_empty());
    // The price moves before the answer: the market buy fills at the price of its moment.
    tick(&mut e, 1_000_000, "161");
    tick(&mut e, 2_500_000, "162");
    let f = &e.recorder().fills;
    assert_eq!(f.len(), 1);
    assert_eq!(
        f[0].price,
        d("161"),
        "price at the answer's time, not the submit's"
    );
    assert_eq!(f[0].ts_us, 2_000_000, "the answer happens at its own time");
    assert_eq!(e.ledger(0).reserved_quote, Decimal::ZERO);
    assert_eq!(e.ledger(0).quote, d("300"));
    assert!(e.in_flight(0).is_empty());
}

#[test]
fn duplicate_late_and_unknown_reports_change_nothing() {
    let delays = SimDelays {
        latency_us: 1_000,
        ..SimDelays::default()
    };
    let mut e = engine(GRID, sim(delays), Audit::default());
    tick(&mut e, 0, "160");
    tick(&mut e, 5_000, "160");
    let fill = e.recorder().fills[0].clone();
    let before = e.ledger(0).clone();
    let cells_before = cells(&e);
    // The same fill again, a failure for the filled order, an acceptance of it, and a fill for
    // an order the engine never made.
    e.process(Event::Venue(VenueReport::Filled(fill.clone())));
    e.process(Event::Venue(VenueReport::Failed {
        order_id: fill.order_id,
        reason: "late".into(),
        retryable: true,
        ts_us: 6_000,
    }));
    e.process(Event::Venue(VenueReport::Accepted {
        order_id: fill.order_id,
        reference: "0xabc".into(),
        ts_us: 6_000,
    }));
    let mut stranger = fill.clone();
    stranger.order_id = 10_000;
    e.process(Event::Venue(VenueReport::Filled(stranger)));
    assert_eq!(e.ledger(0), &before);
    assert_eq!(cells(&e), cells_before);
    assert_eq!(e.recorder().fills.len(), 1, "applied once");
    let ignored = &e.recorder().ignored;
    assert_eq!(ignored.len(), 4, "{ignored:?}");
    assert!(ignored[..3]
        .iter()
        .all(|(id, why)| *id == fill.order_id && why.contains("late or duplicate")));
    assert_eq!(ignored[3], (10_000, "unknown order".to_string()));
}

#[test]
fn accepted_then_filled_and_a_second_acceptance_is_ignored() {
    /// Accepts every order at once with a made-up hash and fills it on the next poll.
    #[derive(Default)]
    struct Chainish {
        waiting: Vec<(Execution, Decimal, i64)>,
    }
    impl Venue for Chainish {
        fn submit(
            &mut self,
            o: Approved<Execution>,
            m: Decimal,
            ts: i64,
            r: &mut Vec<VenueReport>,
        ) {
            let o = o.into_inner();
            r.push(VenueReport::Accepted {
                order_id: o.order_id,
                reference: format!("0x{:064x}", o.order_id),
                ts_us: ts,
            });
            self.waiting.push((o, m, ts + 10));
        }
        fn poll(
            &mut self,
            now: i64,
            _p: &dyn Fn(usize) -> Option<Decimal>,
            r: &mut Vec<VenueReport>,
        ) {
            let sim = SimVenue::default();
            for (o, m, due) in std::mem::take(&mut self.waiting) {
                if due <= now {
                    r.push(VenueReport::Filled(sim.fill_of(&o, m, due)));
                } else {
                    self.waiting.push((o, m, due));
                }
            }
        }
        fn next_due_us(&self) -> Option<i64> {
            self.waiting.iter().map(|w| w.2).min()
        }
    }
    let mut e = engine(GRID, Chainish::default(), MemoryRecorder::default());
    tick(&mut e, 0, "160");
    let flight = e.in_flight(0);
    assert_eq!(flight.len(), 1);
    assert_eq!(flight[0].state().as_str(), "accepted");
    assert_eq!(flight[0].reference.as_deref().map(str::len), Some(66));
    e.process(Event::Venue(VenueReport::Accepted {
        order_id: flight[0].order.order_id,
        reference: "0xother".into(),
        ts_us: 1,
    }));
    assert_eq!(
        e.in_flight(0)[0].reference,
        flight[0].reference,
        "first acceptance stands"
    );
    tick(&mut e, 20, "160");
    assert!(e.in_flight(0).is_empty());
    assert_eq!(e.recorder().fills.len(), 1);
    assert_eq!(cells(&e)[3], "holding");
}

#[test]
fn retryable_failures_rearm_with_a_bounded_backoff() {
    // Every order times out. The price sits below L0 for an hour, ticking every 100 ms.
    let delays = SimDelays {
        fail_ppm: PPM,
        seed: 1,
        ..SimDelays::default()
    };
    let mut e = engine(GRID, sim(delays), Audit::default());
    tick(&mut e, 0, "160");
    let hour = 3_600_000_000i64;
    let mut ts = 0;
    while ts < hour {
        ts += 100_000;
        tick(&mut e, ts, "90");
    }
    let a = e.recorder();
    assert!(a.fills.is_empty());
    assert!(a.violations.is_empty(), "{:?}", a.violations);
    // Attempts of the buy of cell 0 (tag 0), in time order.
    let times: Vec<i64> = a
        .submitted
        .iter()
        .filter(|s| s.2 == 0)
        .map(|s| s.0)
        .collect();
    assert!(times.len() > 5, "it keeps trying: {times:?}");
    for (n, pair) in times.windows(2).enumerate() {
        let gap = pair[1] - pair[0];
        let backoff = retry_backoff_us(n as u32 + 1);
        assert!(
            gap >= backoff && gap <= backoff + 100_000,
            "attempt {} came {gap} µs after the last; backoff {backoff}",
            n + 2
        );
    }
    // No storm: after the backoff reached its cap, one attempt a minute per order at most.
    let per_order = hour / RETRY_MAX_US + 8;
    assert!(times.len() as i64 <= per_order, "{} attempts", times.len());
    assert_eq!(
        e.ledger(0).reserved_quote,
        Decimal::ZERO,
        "failures release reservations"
    );
    assert_eq!(e.ledger(0).quote, d("400"));
    // The price comes back, the venue heals: the grid trades again without an operator.
    let mut healthy = engine(GRID, sim(SimDelays::default()), Audit::default());
    tick(&mut healthy, 0, "160");
    tick(&mut healthy, 1, "90");
    assert_eq!(cells(&healthy)[..3], ["holding", "holding", "holding"]);
}

/// GRID.md: an order re-armed after a failure is checked at once against the last price seen.
/// On a quiet market (no new price at all) it is tried again at each wake-up.
#[test]
fn a_rearmed_order_fires_at_once_on_the_last_price() {
    let delays = SimDelays {
        fail_ppm: PPM,
        seed: 1,
        ..SimDelays::default()
    };
    let mut e = engine(GRID, sim(delays), Audit::default());
    tick(&mut e, 0, "160");
    tick(&mut e, 1, "90");
    let attempts = |e: &Engine<Audit, SimVenue>| {
        e.recorder()
            .submitted
            .iter()
            .filter(|s| s.2 == 0)
            .map(|s| s.0)
            .collect::<Vec<i64>>()
    };
    assert_eq!(attempts(&e).len(), 1, "the buy at 100 fired once");
    // Only time passes: a minute of timer events, no price.
    for k in 1..=600 {
        e.process(Event::Timer {
            ts_us: 1 + k * 100_000,
        });
    }
    let times = attempts(&e);
    assert!(
        times.len() >= 3,
        "re-armed and fired without a new price: {times:?}"
    );
    for (n, pair) in times.windows(2).enumerate() {
        let gap = pair[1] - pair[0];
        let backoff = retry_backoff_us(n as u32 + 1);
        assert!(
            gap >= backoff && gap <= backoff + 100_000,
            "attempt {} came {gap} µs after the last; backoff {backoff}",
            n + 2
        );
    }
}

#[test]
fn permanent_failures_settle_the_cell() {
    /// Fills buys at once, rejects every sell for good.
    struct NoSells;
    impl Venue for NoSells {
        fn submit(
            &mut self,
            o: Approved<Execution>,
            m: Decimal,
            ts: i64,
            r: &mut Vec<VenueReport>,
        ) {
            let o = o.into_inner();
            r.push(match o.side {
                Side::Buy => VenueReport::Filled(SimVenue::default().fill_of(&o, m, ts)),
                Side::Sell => VenueReport::Failed {
                    order_id: o.order_id,
                    reason: "execution reverted: INSUFFICIENT_OUTPUT_AMOUNT".into(),
                    retryable: false,
                    ts_us: ts,
                },
            });
        }
    }
    let mut e = engine(GRID, NoSells, Audit::default());
    tick(&mut e, 0, "160");
    tick(&mut e, 1, "149");
    assert_eq!(cells(&e), ["empty", "empty", "holding", "holding"]);
    tick(&mut e, 2, "176"); // cell 2's sell at 175 fires and is rejected: the lot is kept.
    assert_eq!(cells(&e), ["empty", "empty", "stranded", "holding"]);
    tick(&mut e, 3, "201"); // cell 3's sell too.
    assert_eq!(cells(&e), ["empty", "empty", "stranded", "stranded"]);
    let base = e.ledger(0).base;
    assert!(base > Decimal::ZERO);
    assert_eq!(e.ledger(0).reserved_base, Decimal::ZERO);
    // Nothing re-fires for stranded cells.
    let submitted = e.recorder().submitted.len();
    tick(&mut e, 4, "180");
    tick(&mut e, 5, "205");
    assert_eq!(e.recorder().submitted.len(), submitted);
    // A rejected buy leaves its cell idle and its quote unspent.
    let delays = SimDelays {
        reject_ppm: PPM,
        ..SimDelays::default()
    };
    let mut e = engine(GRID, sim(delays), Audit::default());
    tick(&mut e, 0, "160");
    tick(&mut e, 1, "120");
    assert_eq!(cells(&e), ["empty", "idle", "idle", "idle"]);
    assert_eq!(e.ledger(0).quote, d("400"));
}

#[test]
fn a_refused_buy_is_a_permanent_failure_at_once() {
    let mut e = engine(GRID, sim(SimDelays::default()), Audit::default());
    tick(&mut e, 0, "160");
    e.process(Event::Control(Control::KillSwitch(true)));
    tick(&mut e, 1, "149");
    assert_eq!(e.recorder().refused, vec![Refusal::KillSwitch]);
    assert_eq!(cells(&e)[2], "idle");
    assert!(e.in_flight(0).is_empty());
}

#[test]
fn a_halt_places_nothing_and_lifts_when_the_operator_clears_the_kill_switch() {
    let mut e = engine(GRID, sim(SimDelays::default()), Audit::default());
    tick(&mut e, 0, "160");
    let submitted = e.recorder().submitted.len();
    e.process(Event::Control(Control::Halt {
        reason: "database cannot be written".into(),
    }));
    tick(&mut e, 1, "140"); // crosses the buy at 150: it keeps resting instead.
    tick(&mut e, 2, "201"); // and the sell at 200.
    assert_eq!(
        e.recorder().submitted.len(),
        submitted,
        "nothing placed while halted"
    );
    assert_eq!(
        cells(&e),
        ["empty", "empty", "empty", "holding"],
        "no cell lost"
    );
    // The halt's owner engages the kill switch; the operator clears it: trading resumes.
    e.process(Event::Control(Control::KillSwitch(true)));
    e.process(Event::Control(Control::KillSwitch(false)));
    assert_eq!(e.halted(), None);
    tick(&mut e, 3, "149");
    assert_eq!(cells(&e)[2], "holding");
}

#[test]
fn stop_loss_waits_for_its_liquidation_to_settle() {
    let params = r#"{"lower_price":"100","upper_price":"200","grid_count":5,"base_order_size":"100","fee_bps":25,"stop_loss_price":"90"}"#;
    let delays = SimDelays {
        latency_us: 1_000_000,
        ..SimDelays::default()
    };
    let mut e = engine(params, sim(delays), MemoryRecorder::default());
    tick(&mut e, 0, "160");
    tick(&mut e, 2_000_000, "160"); // start buy filled
    tick(&mut e, 3_000_000, "149"); // buy at 150 in flight
    tick(&mut e, 5_000_000, "149"); // filled
                                    // 89 crosses the buys at 125 and 100 (fired first, in flight), then the stop-loss: the two
                                    // lots held go out as market sells, and the two buys are sold off when they fill.
    tick(&mut e, 6_000_000, "89");
    assert_eq!(e.status(0), StrategyStatus::Active, "still selling");
    assert_eq!(e.in_flight(0).len(), 4);
    tick(&mut e, 8_000_000, "88");
    assert_eq!(e.status(0), StrategyStatus::Stopped);
    assert_eq!(e.ledger(0).base, Decimal::ZERO, "everything sold");
    assert!(e.recorder().statuses[0].2.starts_with("stop_loss at 89"));
}

fn price_str(cents: u64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

#[test]
fn fills_differ_from_the_instant_venue_only_where_the_price_moved() {
    // A price that holds each value for 10 s.
    let path: Vec<&str> = vec!["160", "149", "120", "176", "130", "201", "99", "151", "180"];
    let run = |latency_us: i64| {
        let delays = SimDelays {
            latency_us,
            ..SimDelays::default()
        };
        let mut e = engine(GRID, sim(delays), MemoryRecorder::default());
        for (i, p) in path.iter().enumerate() {
            tick(&mut e, i as i64 * 10_000_000, p);
        }
        tick(&mut e, path.len() as i64 * 10_000_000, path[path.len() - 1]);
        e.recorder()
            .fills
            .iter()
            .map(|f| (f.side, f.price, f.base, f.quote, f.ts_us))
            .collect::<Vec<_>>()
    };
    let instant = run(0);
    let short = run(1_000_000);
    // Latency shorter than the price's steps: the same fills, each 1 s later.
    assert_eq!(instant.len(), short.len());
    for (a, b) in instant.iter().zip(&short) {
        assert_eq!((a.0, a.1, a.2, a.3), (b.0, b.1, b.2, b.3));
        assert!(b.4 > a.4, "answered later");
    }
    // Latency longer than a step: the start buy (a market order) fills at the next price.
    let long = run(15_000_000);
    assert_eq!(instant[0].1, d("160"));
    assert_eq!(long[0].1, d("149"));
    let limit_prices = |v: &[(Side, Decimal, Decimal, Decimal, i64)]| {
        v.iter().skip(1).map(|f| f.1).collect::<Vec<_>>()
    };
    let levels = [d("100"), d("125"), d("150"), d("175"), d("200")];
    assert!(
        limit_prices(&long).iter().all(|p| levels.contains(p)),
        "limit orders fill at their limit"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// With latency and failures: no negative balance, nothing reserved twice, the ledger equal
    /// to the sum of fills after every event, reservations equal to what is in flight.
    #[test]
    fn ledger_equals_fills_and_reservations_equal_flight(
        latency_ms in 0i64..5_000,
        fail in 0u32..400_000,
        reject in 0u32..200_000,
        seed in any::<u64>(),
        n in 2u32..12,
        steps in proptest::collection::vec(0u64..1_000_000, 1..200),
        gaps in proptest::collection::vec(0i64..3_000_000, 200),
    ) {
        let params = serde_json::json!({
            "lower_price": "100", "upper_price": "200", "grid_count": n,
            "base_order_size": "100", "fee_bps": 25, "stop_loss_price": "70",
        }).to_string();
        let delays = SimDelays { latency_us: latency_ms * 1000, fail_ppm: fail, reject_ppm: reject, seed };
        let mut e = engine(&params, sim(delays), Audit::default());
        let mut ts = 0i64;
        for (i, s) in steps.iter().enumerate() {
            ts += gaps[i % gaps.len()];
            let cents = 6_000 + s % 18_000;
            let text = price_str(cents);
            e.process(Event::Tick { symbol: 0, ts_us: ts, price: key(&text) });
            let l = e.ledger(0);
            prop_assert!(l.quote >= Decimal::ZERO && l.base >= Decimal::ZERO, "negative: {l:?}");
            prop_assert!(l.available_quote() >= Decimal::ZERO && l.available_base() >= Decimal::ZERO, "double spend: {l:?}");
            let (q, b) = e.recorder().balances_by_fills(l.initial_quote);
            prop_assert_eq!((l.quote, l.base), (q, b));
            let (mut buys, mut sells) = (Decimal::ZERO, Decimal::ZERO);
            for f in e.in_flight(0) {
                match f.order.side {
                    Side::Buy => buys += f.reserved,
                    Side::Sell => sells += f.reserved,
                }
            }
            prop_assert_eq!((l.reserved_quote, l.reserved_base), (buys, sells));
        }
        prop_assert!(e.recorder().violations.is_empty(), "{:?}", e.recorder().violations);
        // Every submitted order is answered once at most: fills + failures + in flight = submitted.
        let a = e.recorder();
        prop_assert_eq!(a.fills.len() + a.failed.len() + e.in_flight_count(), a.submitted.len());
    }

    /// Same seed, same events: the same fills, failures and ledger, to the byte.
    #[test]
    fn delayed_failing_venue_is_deterministic(seed in any::<u64>(), steps in proptest::collection::vec(0u64..1_000_000, 1..100)) {
        let run = || {
            let delays = SimDelays { latency_us: 700_000, fail_ppm: 300_000, reject_ppm: 50_000, seed };
            let mut e = engine(GRID, sim(delays), Audit::default());
            for (i, s) in steps.iter().enumerate() {
                let text = price_str(9_000 + s % 12_000);
                e.process(Event::Tick { symbol: 0, ts_us: i as i64 * 400_000, price: key(&text) });
            }
            (format!("{:?}", e.recorder().fills), format!("{:?}", e.recorder().failed), format!("{:?}", e.ledger(0)))
        };
        prop_assert_eq!(run(), run());
    }
}

/// A grid restored while its stop-loss liquidation was in flight re-issues the sell at once, but
/// the symbol has no price yet (and, in the daemon, its live venue is routed only after the
/// strategies are added): the sell waits for the first price instead of going out at zero.
#[test]
fn liquidation_restored_before_any_price_waits_for_the_first_one() {
    const SL_GRID: &str = r#"{"lower_price":"100","upper_price":"200","grid_count":5,"base_order_size":"100","fee_bps":25,"stop_loss_price":"90"}"#;
    let delays = SimDelays {
        latency_us: 1_000_000,
        ..SimDelays::default()
    };
    let mut e = engine(SL_GRID, sim(delays), MemoryRecorder::default());
    tick(&mut e, 0, "160");
    tick(&mut e, 2_000_000, "160");
    let held = e.ledger(0).fills;
    assert!(held > 0, "the start buys filled");
    // The stop-loss fires; its liquidations are in flight when the process dies.
    tick(&mut e, 3_000_000, "89");
    let selling = e
        .in_flight(0)
        .iter()
        .filter(|f| f.order.side == Side::Sell)
        .count();
    assert_eq!(selling as u64, held, "one liquidation per lot");
    let state = e.snapshot(0);
    let ledger = e.ledger(0).clone();

    let p = StrategyParams::parse("grid", &serde_json::from_str(SL_GRID).unwrap()).unwrap();
    let mut restored = Engine::new(
        1,
        sim(SimDelays::default()),
        RiskGuard::new(RiskLimits::default()),
        MemoryRecorder::default(),
    );
    let ledger = Ledger {
        reserved_quote: Decimal::ZERO,
        reserved_base: Decimal::ZERO,
        ..ledger
    };
    restored.add_strategy(
        p.restore(&state).unwrap(),
        0,
        p.fee_bps(),
        StrategyStatus::Active,
        Some(ledger),
    );
    assert!(
        restored.recorder().fills.is_empty() && restored.in_flight(0).is_empty(),
        "nothing goes out before the symbol has a price"
    );
    tick(&mut restored, 4_000_000, "88");
    let fills = &restored.recorder().fills;
    assert_eq!(fills.len(), selling, "the liquidations, at the first price");
    assert!(fills
        .iter()
        .all(|f| f.side == Side::Sell && f.price == d("88")));
    assert_eq!(restored.status(0), StrategyStatus::Stopped);
}
