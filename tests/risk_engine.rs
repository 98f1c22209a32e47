//! The stateful risk guard inside the engine, tripped by real events (ticks, venue answers, time):
//! an error rate above the limit pauses the strategy; a pool price too far from its reference
//! stops its swaps until the two converge; inventory at the position limit refuses buys (and the
//! refused buy re-arms, then fills once sells bring inventory down); the reducing mode lets only
//! sells through and the halted mode nothing. The daemon-level tests (alerts, metrics, records,
//! restarts) are in `tests/risk_daemon.rs`.

#![allow(clippy::unwrap_used)]

use std::str::FromStr;

use bsc_bot::config::risk::MarketLimits;
use bsc_bot::config::risk::StrategyLimits;
use bsc_bot::engine::event::Control;
use bsc_bot::engine::{Engine, Event, MemoryRecorder};
use bsc_bot::model::PriceKey;
use bsc_bot::risk::{Refusal, RiskGuard, RiskLimits, TradingMode};
use bsc_bot::strategy::{StrategyParams, StrategyStatus};
use bsc_bot::venue::sim::{SimDelays, SimVenue, SimVenueConfig};
use rust_decimal::Decimal;

const GRID: &str = r#"{"lower_price":"100","upper_price":"200","grid_count":11,"base_order_size":"100","fee_bps":0}"#;

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn engine(
    symbols: usize,
    delays: SimDelays,
    limits: RiskLimits,
) -> Engine<MemoryRecorder, SimVenue> {
    let p = StrategyParams::parse("grid", &serde_json::from_str(GRID).unwrap()).unwrap();
    let venue = SimVenue::new(SimVenueConfig::default()).with_delays(delays);
    let mut e = Engine::new(
        symbols,
        venue,
        RiskGuard::new(limits),
        MemoryRecorder::default(),
    )
    .with_mark_interval(1_000_000);
    e.add_strategy(p.build(), 0, p.fee_bps(), StrategyStatus::Active, None);
    e
}

fn tick(e: &mut Engine<MemoryRecorder, SimVenue>, symbol: usize, ts: i64, price: &str) {
    e.process(Event::Tick {
        symbol,
        ts_us: ts,
        price: PriceKey::parse_ascii(price.as_bytes()).unwrap(),
    });
}

#[test]
fn an_error_rate_above_the_limit_pauses_the_strategy() {
    // Every order fails retryably (a venue timing out): the grid re-arms, the guard counts.
    let mut e = engine(
        1,
        SimDelays {
            latency_us: 1_000,
            fail_ppm: 1_000_000,
            ..Default::default()
        },
        RiskLimits {
            strategy: StrategyLimits {
                max_error_rate: Some(d("0.10")),
                error_rate_min_orders: 5,
                ..Default::default()
            },
            ..Default::default()
        },
    );
    tick(&mut e, 0, 1, "150");
    tick(&mut e, 0, 2, "145");
    let mut t = 10;
    while e.status(0) == StrategyStatus::Active && t < 600_000_000 {
        e.process(Event::Timer { ts_us: t });
        t += 100_000;
    }
    assert_eq!(e.status(0), StrategyStatus::Paused, "paused by the guard");
    assert_eq!(
        e.recorder().risk_pauses,
        vec![(0, "error_rate".to_string())]
    );
    let failures = e.recorder().failures.len();
    assert!(failures >= 5, "{failures} failures before the pause");
    // Paused: nothing more is tried.
    for k in 0..100 {
        e.process(Event::Timer {
            ts_us: t + k * 1_000_000,
        });
    }
    assert!(e.recorder().failures.len() <= failures + 1);
    // An operator's resume starts a fresh window.
    e.process(Event::Control(Control::Resume(0)));
    assert_eq!(e.status(0), StrategyStatus::Active);
}

#[test]
fn a_diverging_pool_gets_no_swaps_until_it_converges() {
    // Symbol 0 is the pool's price, symbol 1 its reference.
    let mut e = engine(
        2,
        SimDelays::default(),
        RiskLimits {
            market: MarketLimits {
                max_divergence_bps: Some(d("100")),
                ..Default::default()
            },
            ..Default::default()
        },
    );
    e.risk_mut().set_reference(0, 1);
    tick(&mut e, 1, 1, "150");
    tick(&mut e, 0, 2, "150");
    // The reference runs 3 % above the pool: the buy at 140 is refused, retryably.
    tick(&mut e, 1, 3, "145");
    tick(&mut e, 0, 4, "140");
    let refusals: Vec<Refusal> = e.recorder().refusals.iter().map(|r| r.1.clone()).collect();
    assert!(
        matches!(refusals.last(), Some(Refusal::Divergence { .. })),
        "{refusals:?}"
    );
    assert!(refusals.last().unwrap().retryable());
    let fills = e.recorder().fills.len();
    // Converged: the re-armed buy goes through after its backoff.
    tick(&mut e, 1, 5, "140.5");
    for k in 1..=3 {
        e.process(Event::Timer {
            ts_us: 5 + k * 1_000_000,
        });
    }
    tick(&mut e, 0, 4_000_000, "140");
    assert!(e.recorder().fills.len() > fills, "bought once converged");
}

#[test]
fn the_position_limit_refuses_buys_until_sells_bring_inventory_down() {
    let mut e = engine(
        1,
        SimDelays::default(),
        RiskLimits {
            strategy: StrategyLimits {
                max_position: Some(d("250")),
                ..Default::default()
            },
            ..Default::default()
        },
    );
    // Started at the top: every cell waits below with a buy.
    tick(&mut e, 0, 1, "200");
    tick(&mut e, 0, 2, "190");
    tick(&mut e, 0, 3, "180");
    // At 170 the inventory is worth 183.9 and one more buy of 100 would pass 250.
    tick(&mut e, 0, 4, "170");
    assert_eq!(e.recorder().fills.len(), 2);
    assert!(matches!(
        e.recorder().refusals.last(),
        Some((0, Refusal::MaxPosition { .. }))
    ));
    let refused = e.recorder().refusals.len();
    // Up to 200: both lots sell. The refused buy at 170 was re-armed (a refusal that lifts by
    // itself is retryable): on the next walk down it is tried again, and the cap still holds.
    tick(&mut e, 0, 5, "200");
    assert_eq!(e.recorder().fills.len(), 4, "the sells at 190 and 200");
    for k in 1..=3 {
        e.process(Event::Timer {
            ts_us: 5 + k * 1_000_000,
        });
    }
    tick(&mut e, 0, 4_000_000, "170");
    assert_eq!(e.recorder().fills.len(), 6, "the buys at 190 and 180 again");
    assert!(
        e.recorder().refusals.len() > refused,
        "the buy at 170 tried again"
    );
    let held = e.ledger(0).base * d("170");
    assert!(held <= d("250"), "inventory worth {held} at 170");
}

#[test]
fn reducing_lets_only_sells_through_and_halted_nothing() {
    let mut e = engine(1, SimDelays::default(), RiskLimits::default());
    tick(&mut e, 0, 1, "200");
    tick(&mut e, 0, 2, "190");
    assert_eq!(e.recorder().fills.len(), 1, "a buy at 190");
    e.process(Event::Control(Control::Mode(TradingMode::Reducing)));
    tick(&mut e, 0, 3, "180");
    assert_eq!(e.recorder().refusals.last().unwrap().1, Refusal::Reducing);
    tick(&mut e, 0, 4, "200");
    assert_eq!(e.recorder().fills.len(), 2, "the sell at 200 reduces");
    e.process(Event::Control(Control::Mode(TradingMode::Halted)));
    tick(&mut e, 0, 5, "190");
    assert!(matches!(
        e.recorder().refusals.last().unwrap().1,
        Refusal::Halted { .. }
    ));
    assert_eq!(e.recorder().fills.len(), 2);
}
