//! The shipped Prometheus alert rules: `promtool check rules` passes, and evaluated against a
//! running daemon's real `/metrics` they fire as the runbooks mean them to — a paper grid that
//! lost more than 1,000 today raises `StrategyLossExceeded` for that strategy and nothing else,
//! and a daemon that stopped answering raises `BotSystemDown`. (`HighErrorRate`,
//! `LowGasBalance` and `FundsAbnormalMovement` are evaluated on a live daemon's metrics in
//! `tests/live_front_run.rs`.)

#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/promtool.rs"]
mod promtool;

use std::process::Command;
use std::time::Duration;

use common::daemon::{write_config, RunningDaemon};
use common::exchange::{trade_frame, Cmd, FakeBinance};
use common::TestDb;
use rust_decimal::Decimal;

/// 20 cells between 28,100 and 28,200, 100,000 quote each: two million at work.
const PARAMS: &str = r#"{"lower_price":"28100","upper_price":"28200","grid_count":21,"base_order_size":"100000","fee_bps":0}"#;

#[test]
fn the_shipped_rules_pass_promtool_check() {
    let Some(promtool) = promtool::promtool() else {
        return;
    };
    let out = Command::new(promtool)
        .args(["check", "rules"])
        .arg(promtool::rules_path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("5 rules found"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rules_fire_on_a_real_daemons_metrics() {
    let Some(promtool) = promtool::promtool() else {
        return;
    };
    let db = TestDb::new("sqlite").await;
    let ex = FakeBinance::start().await;
    let config = write_config(&db, &ex.url, "");
    db.run(&[
        "--config", &config, "strategy", "create", "-t", "grid", "-s", "BTC/USDT", "-n", "big",
        "-p", PARAMS,
    ])
    .ok();
    let d = RunningDaemon::start(&db, &config, &[]).await;
    assert!(ex.wait_connections(1, Duration::from_secs(10)).await);
    let send = |id: i64, price: &str| {
        ex.send(Cmd::Text(trade_frame(
            id,
            price,
            bsc_bot::clock::wall_clock_ms(),
        )))
    };
    send(1, "28200");
    // The day's starting equity is taken at the first mark after the start price.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while common::metric(
        &d.text("/metrics").await.1,
        "bsc_bot_strategy_equity{strategy=\"1\"} ",
    )
    .is_none_or(|e| e <= Decimal::ZERO)
    {
        assert!(std::time::Instant::now() < deadline, "no mark at 28,200");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Down through every buy: ~10,500 lost at 28,000.
    let mut metrics = String::new();
    for i in 0..50 {
        send(2 + i, "28000");
        metrics = d.text("/metrics").await.1;
        let loss = common::metric(&metrics, "bsc_bot_strategy_daily_loss{strategy=\"1\"} ")
            .unwrap_or_default();
        if loss > Decimal::from(1000) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    promtool::assert_alerts(
        &promtool,
        &metrics,
        true,
        &[("StrategyLossExceeded", vec![vec![("strategy", "1")]])],
    );
    // Every series the shipped Grafana dashboard and the rules read is one the daemon serves.
    let served: Vec<&str> = metrics
        .lines()
        .filter_map(|l| l.strip_prefix("# HELP "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    let dashboard =
        std::fs::read_to_string(common::repo_path("deploy/grafana/bsc-bot-dashboard.json"))
            .unwrap();
    let doc: serde_json::Value = serde_json::from_str(&dashboard).unwrap();
    let mut exprs: Vec<String> = doc["panels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["targets"][0]["expr"].as_str().unwrap().to_string())
        .collect();
    exprs.push(std::fs::read_to_string(promtool::rules_path()).unwrap());
    for text in &exprs {
        for (at, _) in text.match_indices("bsc_bot_") {
            let name: String = text[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            assert!(served.contains(&name.as_str()), "{name} is not in /metrics");
        }
    }
    // The daemon stops: its scrape fails, `up` is 0, and only the loss alert it left and
    // BotSystemDown remain.
    let api = d.api.clone();
    drop(d);
    let scrape = reqwest::Client::new()
        .get(format!("http://{api}/metrics"))
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(scrape.is_err(), "the daemon is gone");
    promtool::assert_alerts(
        &promtool,
        "",
        false,
        &[(
            "BotSystemDown",
            vec![vec![("job", "bsc-bot"), ("instance", "daemon")]],
        )],
    );
}
