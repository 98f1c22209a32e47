//! The market feed never misleads its operator (issue 11, items 1 and 2), against the real daemon
//! and a local Binance-like WebSocket server:
//! - a connection that only answers pings (no trades, no book) is replaced once
//!   `market.silent_after_secs` pass without data — a ping is not data;
//! - trades that arrive too far behind their exchange time (a host clock off, a slow link) are
//!   dropped, and that is visible: health `degraded` with the feed `lagging` and the measured
//!   offset and count in its reason, `bsc_bot_trades_dropped_stale_total` and
//!   `bsc_bot_feed_clock_offset_seconds` in the metrics.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::daemon::{write_config, RunningDaemon};
use common::exchange::{trade_frame, Cmd, FakeBinance};
use common::TestDb;

const PARAMS: &str =
    r#"{"lower_price":"27000","upper_price":"29000","grid_count":5,"base_order_size":"100"}"#;

fn now_ms() -> i64 {
    bsc_bot::clock::wall_clock_ms()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_are_not_data_and_lagging_trades_are_visible() {
    let db = TestDb::new("sqlite").await;
    let ex = FakeBinance::start().await;
    // silent_after_secs = 2, stale_after_secs = 2 (common::daemon::write_config).
    let config = write_config(&db, &ex.url, "");
    db.run(&[
        "--config", &config, "strategy", "create", "-t", "grid", "-s", "BTC/USDT", "-n", "g", "-p",
        PARAMS,
    ])
    .ok();
    let d = RunningDaemon::start(&db, &config, &[]).await;
    assert!(ex.wait_connections(0, Duration::from_secs(5)).await);
    ex.send(Cmd::Text(trade_frame(1, "28100.00", now_ms())));
    let ok = d
        .until(Duration::from_secs(5), || async {
            d.get("/api/health").await.1["status"] == "ok"
        })
        .await;
    assert!(ok.is_some(), "healthy on fresh trades");

    // Only pings (up to 10 s; 2 s of silence is the limit): the connection is replaced (it was
    // kept for ever before).
    let before = ex.connections();
    for _ in 0..40 {
        if ex.connections() > before {
            break;
        }
        ex.send(Cmd::Ping);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        ex.connections() > before,
        "a connection that only answers pings must be replaced"
    );

    // Trades 5 s behind their exchange time: dropped, and said so.
    for i in 0..15 {
        ex.send(Cmd::Text(trade_frame(
            100 + i,
            "28100.00",
            now_ms() - 5_000,
        )));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, h) = d.get("/api/health").await;
    assert_eq!(h["status"], "degraded", "{h}");
    assert_eq!(h["services"]["market_feed"], "lagging", "{h}");
    let reason = h["reasons"][0].as_str().unwrap();
    assert!(
        reason.contains("btcusdt lagging: trades arrive 5.") && reason.contains("dropped"),
        "{reason}"
    );
    let (_, metrics) = d.text("/metrics").await;
    let dropped: u64 = metrics
        .lines()
        .find(|l| l.starts_with("bsc_bot_trades_dropped_stale_total{symbol=\"btcusdt\"}"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap();
    assert!(dropped >= 10, "{dropped}");
    let offset: f64 = metrics
        .lines()
        .find(|l| l.starts_with("bsc_bot_feed_clock_offset_seconds{symbol=\"btcusdt\"}"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap();
    // 5 s behind, plus the delivery (a loaded machine's second at most).
    assert!((4.9..7.0).contains(&offset), "{offset}");

    // Fresh trades again: healthy.
    ex.send(Cmd::Text(trade_frame(200, "28100.00", now_ms())));
    let ok = d
        .until(Duration::from_secs(5), || async {
            d.get("/api/health").await.1["status"] == "ok"
        })
        .await;
    assert!(ok.is_some(), "healthy again");
}
