//! Hand-computed grid scenarios (GRID.md) pushed through the real engine: exact fills and PnL.
//!
//! Grid used unless said otherwise: levels 100, 125, 150, 175, 200 (N = 5), Q = 100 USDT,
//! fee 25 bps, so a buy at L receives `99.75 / L` base (rounded toward zero to 18 dp).

#![allow(clippy::unwrap_used)]

use std::str::FromStr;

use bsc_bot::engine::{Control, Engine, Event, MemoryRecorder};
use bsc_bot::model::order::{Fill, Side};
use bsc_bot::model::PriceKey;
use bsc_bot::risk::{RiskGuard, RiskLimits};
use bsc_bot::strategy::{StrategyParams, StrategyStatus};
use bsc_bot::venue::{SimVenue, SimVenueConfig};
use rust_decimal::Decimal;

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn engine_with(params: &str) -> Engine<MemoryRecorder, SimVenue> {
    let p = StrategyParams::parse("grid", &serde_json::from_str(params).unwrap()).unwrap();
    let mut e = Engine::new(
        1,
        SimVenue::new(SimVenueConfig::default()),
        RiskGuard::new(RiskLimits::default()),
        MemoryRecorder::default(),
    );
    e.add_strategy(p.build(), 0, p.fee_bps(), StrategyStatus::Active, None);
    e
}

fn tick(e: &mut Engine<MemoryRecorder, SimVenue>, ts: i64, price: &str) {
    e.process(Event::Tick {
        symbol: 0,
        ts_us: ts,
        price: PriceKey::parse_ascii(price.as_bytes()).unwrap(),
    });
}

fn run(params: &str, prices: &[&str]) -> Engine<MemoryRecorder, SimVenue> {
    let mut e = engine_with(params);
    for (i, p) in prices.iter().enumerate() {
        tick(&mut e, i as i64 * 1_000_000, p);
    }
    e
}

/// (side, market?, price, base, quote) of each fill, as strings for readable asserts.
fn fills(e: &Engine<MemoryRecorder, SimVenue>) -> Vec<(Side, bool, String, String, String)> {
    e.recorder()
        .fills
        .iter()
        .map(|f: &Fill| {
            (
                f.side,
                f.market,
                f.price.normalize().to_string(),
                f.base.normalize().to_string(),
                f.quote.normalize().to_string(),
            )
        })
        .collect()
}

const GRID: &str =
    r#"{"lower_price":"100","upper_price":"200","grid_count":5,"base_order_size":"100"}"#;

fn fill(
    side: Side,
    market: bool,
    price: &str,
    base: &str,
    quote: &str,
) -> (Side, bool, String, String, String) {
    (side, market, price.into(), base.into(), quote.into())
}

#[test]
fn start_rule_buys_cells_above_p0_at_market_and_rests_the_rest() {
    let e = run(GRID, &["160"]);
    // Only cell [175, 200] lies entirely above 160: one market buy at P0.
    assert_eq!(
        fills(&e),
        [fill(Side::Buy, true, "160", "0.6234375", "100")]
    );
    let orders = e.resting_orders(0);
    let shown: Vec<(bool, String)> = orders
        .iter()
        .map(|o| match &o.kind {
            bsc_bot::model::order::RestingKind::Limit(l) => {
                (l.side == Side::Buy, l.limit.to_string())
            }
            _ => panic!("no guards configured"),
        })
        .collect();
    // Buys at 100, 125, 150 (the cell containing P0 included) and the lot's sell at 200.
    assert_eq!(
        shown,
        [
            (true, "100".into()),
            (true, "125".into()),
            (true, "150".into()),
            (false, "200".into())
        ]
    );
    let l = e.ledger(0);
    assert_eq!(
        (l.quote, l.base, l.fees),
        (d("300"), d("0.6234375"), d("0.25"))
    );
}

#[test]
fn buy_then_sell_is_one_round_trip() {
    let e = run(GRID, &["160", "149", "176"]);
    assert_eq!(
        fills(&e),
        [
            fill(Side::Buy, true, "160", "0.6234375", "100"),
            fill(Side::Buy, false, "150", "0.665", "100"),
            // 0.665 × 175 × 0.9975
            fill(Side::Sell, false, "175", "0.665", "116.0840625"),
        ]
    );
    let l = e.ledger(0);
    assert_eq!(l.round_trips, 1);
    assert_eq!(l.realized_pnl, d("16.0840625"));
    assert_eq!(l.fees, d("0.7909375"));
    assert_eq!(l.quote, d("316.0840625"));
    assert_eq!(l.base, d("0.6234375"));
    assert_eq!(l.equity(d("176")), d("425.8090625"));
    // The cell is empty again: its buy at 150 rests once more.
    assert!(e.resting_orders(0).iter().any(|o| matches!(&o.kind, bsc_bot::model::order::RestingKind::Limit(l) if l.side == Side::Buy && l.limit == d("150"))));
}

#[test]
fn a_gap_through_several_levels_fills_each_at_its_own_limit() {
    // P0 = 190: every cell is below, four buys rest. 110 crosses three of them at once (highest first);
    // 210 then crosses all three sells (lowest first).
    let e = run(GRID, &["190", "110", "210"]);
    assert_eq!(
        fills(&e),
        [
            fill(Side::Buy, false, "175", "0.57", "100"),
            fill(Side::Buy, false, "150", "0.665", "100"),
            fill(Side::Buy, false, "125", "0.798", "100"),
            fill(Side::Sell, false, "150", "0.798", "119.40075"),
            fill(Side::Sell, false, "175", "0.665", "116.0840625"),
            fill(Side::Sell, false, "200", "0.57", "113.715"),
        ]
    );
    assert_eq!(e.ledger(0).realized_pnl, d("49.1998125"));
    assert_eq!(e.ledger(0).round_trips, 3);
}

#[test]
fn a_price_changes_each_cell_at_most_once() {
    // 150 exactly fills the buy at 150; the new sell at 175 must not fire on the same price.
    let e = run(GRID, &["160", "150", "150"]);
    assert_eq!(fills(&e).len(), 2);
}

#[test]
fn geometric_levels_trade_at_rounded_levels() {
    // Levels 100, 141.42135624, 200. P0 = 150: both cells empty.
    let e = run(
        r#"{"lower_price":"100","upper_price":"200","grid_count":3,"base_order_size":"100","spacing":"geometric"}"#,
        &["150", "141", "200"],
    );
    assert_eq!(
        fills(&e),
        [
            fill(
                Side::Buy,
                false,
                "141.42135624",
                "0.705339014220162311",
                "100"
            ),
            fill(
                Side::Sell,
                false,
                "200",
                "0.705339014220162311",
                "140.715133336922381044"
            ),
        ]
    );
    assert_eq!(e.ledger(0).realized_pnl, d("40.715133336922381044"));
    assert_eq!(e.ledger(0).fees, d("0.602669507110081155"));
}

#[test]
fn on_exit_stop_cancels_and_keeps_inventory() {
    let e = run(
        r#"{"lower_price":"100","upper_price":"200","grid_count":5,"base_order_size":"100","on_exit":"stop"}"#,
        &["160", "99", "300"],
    );
    // 99 first fills the buys at 150, 125, 100; then, below the range, the grid stops.
    assert_eq!(fills(&e).len(), 4);
    assert_eq!(e.status(0), StrategyStatus::Stopped);
    assert!(e.resting_orders(0).is_empty());
    assert_eq!(e.ledger(0).base, d("3.0839375"));
    assert_eq!(
        e.ledger(0).round_trips,
        0,
        "inventory kept, nothing sold, even when price later returns"
    );
    // Exactly at the bound is still inside the range.
    let e = run(
        r#"{"lower_price":"100","upper_price":"200","grid_count":5,"base_order_size":"100","on_exit":"stop"}"#,
        &["160", "100"],
    );
    assert_eq!(e.status(0), StrategyStatus::Active);
}

#[test]
fn stop_loss_sells_every_lot_at_market_after_the_price_fills() {
    let e = run(
        r#"{"lower_price":"100","upper_price":"200","grid_count":5,"base_order_size":"100","stop_loss_price":"90"}"#,
        &["160", "89", "50"],
    );
    let f = fills(&e);
    assert_eq!(f.len(), 8, "{f:?}");
    assert_eq!(
        &f[4..],
        [
            fill(Side::Sell, true, "89", "0.9975", "88.55555625"),
            fill(Side::Sell, true, "89", "0.798", "70.844445"),
            fill(Side::Sell, true, "89", "0.665", "59.0370375"),
            fill(Side::Sell, true, "89", "0.6234375", "55.34722265625"),
        ]
    );
    let l = e.ledger(0);
    assert_eq!(l.realized_pnl, d("-126.21573859375"));
    assert_eq!(
        (l.base, l.round_trips, l.winning_round_trips),
        (Decimal::ZERO, 4, 0)
    );
    assert_eq!(e.status(0), StrategyStatus::Stopped);
    assert!(e.resting_orders(0).is_empty());
}

#[test]
fn take_profit_sells_inventory_and_stops() {
    let e = run(
        r#"{"lower_price":"100","upper_price":"200","grid_count":5,"base_order_size":"100","take_profit_price":"180"}"#,
        &["160", "181"],
    );
    assert_eq!(
        fills(&e),
        [
            fill(Side::Buy, true, "160", "0.6234375", "100"),
            fill(Side::Sell, true, "181", "0.6234375", "112.56008203125")
        ]
    );
    assert_eq!(e.ledger(0).realized_pnl, d("12.56008203125"));
    assert_eq!(e.status(0), StrategyStatus::Stopped);
}

#[test]
fn stop_loss_wins_over_range_exit_on_the_same_price() {
    let e = run(
        r#"{"lower_price":"100","upper_price":"200","grid_count":5,"base_order_size":"100","stop_loss_price":"95","on_exit":"stop"}"#,
        &["160", "90"],
    );
    assert_eq!(
        e.ledger(0).base,
        Decimal::ZERO,
        "the stop-loss sold the inventory"
    );
    assert_eq!(e.ledger(0).round_trips, 4);
    assert_eq!(e.status(0), StrategyStatus::Stopped);
}

#[test]
fn slippage_applies_to_market_orders_only() {
    let p = StrategyParams::parse("grid", &serde_json::from_str(GRID).unwrap()).unwrap();
    let mut e = Engine::new(
        1,
        SimVenue::new(SimVenueConfig {
            slippage_bps: 100,
            amm: None,
        }),
        RiskGuard::new(RiskLimits::default()),
        MemoryRecorder::default(),
    );
    e.add_strategy(p.build(), 0, p.fee_bps(), StrategyStatus::Active, None);
    for (i, price) in ["160", "149"].iter().enumerate() {
        tick(&mut e, i as i64, price);
    }
    let f = fills(&e);
    assert_eq!(f[0].2, "161.6", "market buy 1 % worse");
    assert_eq!(f[1].2, "150", "limit fill at its limit");
}

#[test]
fn paused_strategy_does_not_trade_and_operator_cancel_idles_a_cell() {
    let mut e = run(GRID, &["160"]);
    e.process(Event::Control(Control::Pause(0)));
    tick(&mut e, 10, "140");
    assert_eq!(fills(&e).len(), 1, "paused: the buy at 150 did not fire");
    e.process(Event::Control(Control::Resume(0)));
    // Cancel the buy at 125 from outside: the grid learns and leaves the cell idle.
    let id = e
        .resting_orders(0)
        .iter()
        .find(|o| matches!(&o.kind, bsc_bot::model::order::RestingKind::Limit(l) if l.limit == d("125")))
        .unwrap()
        .id;
    e.process(Event::Control(Control::CancelOrder(id)));
    tick(&mut e, 11, "120");
    let f = fills(&e);
    assert_eq!(f.len(), 2, "{f:?}");
    assert_eq!(
        f[1].2, "150",
        "on resume the crossed buy at 150 fills; the cancelled 125 does not"
    );
    let snapshot = e.snapshot(0);
    assert_eq!(snapshot["cells"][1]["state"], "idle");
}

#[test]
fn kill_switch_blocks_buys_but_lets_protective_sells_out() {
    let mut e = run(
        r#"{"lower_price":"100","upper_price":"200","grid_count":5,"base_order_size":"100","stop_loss_price":"90"}"#,
        &["160"],
    );
    e.process(Event::Control(Control::KillSwitch(true)));
    tick(&mut e, 5, "140");
    assert_eq!(fills(&e).len(), 1, "the buy at 150 was refused");
    assert!(!e.recorder().refusals.is_empty());
    tick(&mut e, 6, "85");
    assert_eq!(
        e.ledger(0).base,
        Decimal::ZERO,
        "stop-loss still sold the lot"
    );
}

#[test]
fn restore_from_snapshot_continues_identically() {
    let prices = ["160", "149", "176", "140", "190", "120", "175"];
    let whole = run(GRID, &prices);
    // Run the first half, snapshot, rebuild from the snapshot, run the second half.
    let first = run(GRID, &prices[..3]);
    let p = StrategyParams::parse("grid", &serde_json::from_str(GRID).unwrap()).unwrap();
    let restored = p.restore(&first.snapshot(0)).unwrap();
    let mut second = Engine::new(
        1,
        SimVenue::new(SimVenueConfig::default()),
        RiskGuard::new(RiskLimits::default()),
        MemoryRecorder::default(),
    );
    tick(&mut second, 0, prices[2]);
    second.add_strategy(
        restored,
        0,
        p.fee_bps(),
        StrategyStatus::Active,
        Some(first.ledger(0).clone()),
    );
    for (i, price) in prices[3..].iter().enumerate() {
        tick(&mut second, 10 + i as i64, price);
    }
    assert_eq!(second.ledger(0), whole.ledger(0));
    assert_eq!(second.snapshot(0), whole.snapshot(0));
}

#[test]
fn a_buy_the_strategy_cannot_pay_for_is_refused_not_overdrawn() {
    // Cells of 0.6 % with a 31 bps fee lose on every round trip (the create-time warning), so
    // after two round trips the quote left is below Q and the second buy cannot be paid for.
    let mut e = run(
        r#"{"lower_price":"81.26","upper_price":"82.26","grid_count":3,"base_order_size":"1","fee_bps":31}"#,
        &["81.75", "40.63", "82.26", "40.63"],
    );
    let l = e.ledger(0).clone();
    assert!(l.quote >= Decimal::ZERO, "{l:?}");
    assert_eq!(l.fills, 5, "the last buy was refused");
    let refusals = &e.recorder().refusals;
    assert_eq!(refusals.len(), 1);
    assert!(matches!(
        refusals[0].1,
        bsc_bot::risk::Refusal::InsufficientFunds { .. }
    ));
    assert_eq!(e.snapshot(0)["cells"][0]["state"], "idle");
    tick(&mut e, 99, "90");
    assert_eq!(e.ledger(0).fills, 6, "the other cell keeps trading");
}

#[test]
fn kline_path_order_decides_which_side_fills_first() {
    use bsc_bot::backtest::data::{ReadOptions, TickReader};
    use std::io::Write as _;
    // P0 = 160 (first bar's open): cell [175, 200] is bought at market, its sell rests at 200,
    // the buy at 150 rests. The second bar spans both (high 205, low 145).
    let run_bars = |second_bar: &str| {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        write!(f, "0,160,160,160,160,1\n60000,{second_bar},1\n").unwrap();
        let mut e = engine_with(GRID);
        TickReader::new(ReadOptions::default())
            .read_file(f.path(), &mut |ts, p| e.on_tick(0, ts, p), &mut |_| {})
            .unwrap();
        fills(&e)
            .into_iter()
            .skip(1)
            .map(|f| (f.0, f.2))
            .collect::<Vec<_>>()
    };
    // Up bar (close >= open): open, low, high, close → the buy at 150 fills first, then both
    // sells at the high, and the close (170) crosses the buy at 175 that the sell re-rested.
    assert_eq!(
        run_bars("160,205,145,170"),
        [
            (Side::Buy, "150".to_string()),
            (Side::Sell, "175".to_string()),
            (Side::Sell, "200".to_string()),
            (Side::Buy, "175".to_string())
        ]
    );
    // Down bar: open, high, low, close → the sell at 200 fills first, then the buys at 175 and 150.
    assert_eq!(
        run_bars("170,205,145,160"),
        [
            (Side::Sell, "200".to_string()),
            (Side::Buy, "175".to_string()),
            (Side::Buy, "150".to_string())
        ]
    );
}
