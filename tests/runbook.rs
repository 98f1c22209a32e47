//! Runbook 001 as written (the README's "Runbook 001" list), command by command against a running
//! daemon trading on prices over a local WebSocket: every exit code and the output fields an
//! operator reads.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::daemon::{write_config, RunningDaemon, TOKEN};
use common::exchange::{trade_frame, Cmd, FakeBinance};
use common::TestDb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runbook_001_walks_against_a_running_daemon() {
    let db = TestDb::new("sqlite").await;
    let ex = FakeBinance::start().await;
    let config = write_config(&db, &ex.url, "");
    let bsc = |args: &[&str]| {
        let mut argv = vec!["--config", config.as_str()];
        argv.extend_from_slice(args);
        let mut c = db.cmd(&argv);
        c.env("BSC_BOT_API_TOKEN", TOKEN);
        common::Run::from(c.output().unwrap())
    };
    // 1. Start, status, health.
    let d = RunningDaemon::start(&db, &config, &[]).await;
    let status = bsc(&["--json", "bot", "status"]).ok().json();
    assert_eq!(status["running"], true);
    assert_eq!(status["trading"], "running");
    assert_eq!(status["funds"], "off: no funds.treasury configured");
    assert_eq!(status["kill_switch"]["engaged"], false);
    assert_eq!(status["trading_mode"]["mode"], "active");

    // 2. A first grid with its own range; the daemon trades it on live prices.
    bsc(&[
        "strategy",
        "create",
        "-t",
        "grid",
        "-s",
        "BTC/USDT",
        "-n",
        "Main Grid",
        "-m",
        "paper",
        "-p",
        r#"{"lower_price":"28000","upper_price":"28400","grid_count":5,"base_order_size":"10"}"#,
    ])
    .ok();
    assert!(ex.wait_connections(1, Duration::from_secs(10)).await);
    let mut id = 0;
    let mut send = |price: &str| {
        id += 1;
        ex.send(Cmd::Text(trade_frame(
            id,
            price,
            bsc_bot::clock::wall_clock_ms(),
        )));
    };
    for _ in 0..30 {
        send("28210");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let health = bsc(&["--json", "bot", "health"]).ok().json();
    assert_eq!(health["status"], "ok", "{health}");

    // 3. The canary without prices: centred on the daemon's last price ± 5 %.
    let canary = bsc(&[
        "--json",
        "strategy",
        "create",
        "-t",
        "grid",
        "-s",
        "BTC/USDT",
        "-n",
        "Canary Grid V2",
        "-m",
        "paper",
        "-p",
        r#"{"grid_count":5,"base_order_size":"10"}"#,
    ])
    .ok()
    .json();
    let canary_id = canary["strategy"]["id"].as_i64().unwrap().to_string();
    assert_eq!(canary["strategy"]["params"]["lower_price"], "26799.5");
    assert_eq!(canary["strategy"]["params"]["upper_price"], "29620.5");
    assert!(canary["centred_range"]
        .as_str()
        .unwrap()
        .contains("the running daemon's last price"));

    // 4. List, status, conditional orders.
    let list = bsc(&["--json", "strategy", "list"]).ok().json();
    assert_eq!(list["strategies"].as_array().unwrap().len(), 2);
    for _ in 0..20 {
        send("28150");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let st = bsc(&["--json", "strategy", "status", "1"]).ok().json();
    assert!(st["fills"].as_i64().unwrap() >= 1, "{st}");
    assert!(st["performance"]["total_pnl"].is_string(), "{st}");
    let text = bsc(&["strategy", "status", "1"]).ok().stdout.clone();
    // The runbook's `grep -E "(PnL|trades|win_rate)"` finds its three lines.
    let re = ["PnL", "trades", "win_rate"];
    let found = text
        .lines()
        .filter(|l| re.iter().any(|w| l.contains(w)))
        .count();
    assert_eq!(found, 3, "{text}");
    for w in re {
        assert!(text.contains(&format!("  {w}")), "{w}: {text}");
    }
    let money_lines: String = text
        .lines()
        .filter(|l| l.contains("PnL") || l.contains("balances"))
        .collect();
    assert!(!has_long_fraction(&money_lines), "{text}");
    let orders = bsc(&[
        "--json",
        "strategy",
        "conditional",
        "list",
        "--strategy-id",
        &canary_id,
    ])
    .ok()
    .json();
    assert!(!orders["orders"].as_array().unwrap().is_empty(), "{orders}");

    // 5. Scale the canary: pause, update, resume.
    bsc(&["strategy", "pause", &canary_id]).ok();
    let upd = bsc(&[
        "--json",
        "strategy",
        "update",
        &canary_id,
        "-p",
        r#"{"base_order_size":"20"}"#,
    ])
    .ok()
    .json();
    assert_eq!(upd["changed"][0]["after"], "20");
    bsc(&["strategy", "resume", &canary_id]).ok();

    // 6. Risk and funds, bot status per strategy.
    let risk = bsc(&["--json", "risk", "status"]).ok().json();
    assert_eq!(risk["trading_mode"]["mode"], "active");
    assert_eq!(risk["strategies"].as_array().unwrap().len(), 2);
    bsc(&["--json", "risk", "events"]).ok();
    let funds = bsc(&["--json", "funds", "status"]).ok().json();
    assert_eq!(funds["manager"], "off: no funds.treasury configured");
    let status = bsc(&["--json", "bot", "status"]).ok().json();
    assert_eq!(
        status["strategy_pnl"].as_array().unwrap().len(),
        2,
        "{status}"
    );
    let text = bsc(&["bot", "status"]).ok().stdout.clone();
    assert!(
        text.contains("Canary Grid V2") && text.contains("PnL"),
        "{text}"
    );
    // Money in text at its asset's precision (USDT: cents), every digit in JSON.
    let pnl_lines: String = text.lines().filter(|l| l.contains("PnL")).collect();
    assert!(!has_long_fraction(&pnl_lines), "{text}");
    let one = status["strategy_pnl"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "Canary Grid V2")
        .unwrap();
    let total = one["total_pnl"].as_str().unwrap();
    let cents = format!(
        "{:.2}",
        total.parse::<rust_decimal::Decimal>().unwrap().round_dp(2)
    )
    .replace("-0.00", "0.00");
    assert!(
        text.contains(&format!("PnL {cents} USDT")),
        "{cents}: {text}"
    );

    // 7. The emergency drill.
    let stop = bsc(&["--json", "emergency", "stop-all", "--reason", "drill"])
        .ok()
        .json();
    assert_eq!(stop["kill_switch"], true);
    assert_eq!(stop["stopped_strategies"].as_array().unwrap().len(), 2);
    let es = bsc(&["--json", "emergency", "status"]).ok().json();
    assert_eq!(es["kill_switch"], true);
    assert_eq!(es["reason"], "drill");
    let again = bsc(&["--json", "strategy", "stop", &canary_id]).ok().json();
    assert_eq!(again["already_stopped"], true);
    bsc(&["emergency", "clear", "--reason", "drill over"]).ok();

    // 8. Backup and verify while the daemon runs.
    let out = db.dir.path().join("backups");
    let backup = bsc(&["--json", "db", "backup", "--out", out.to_str().unwrap()])
        .ok()
        .json();
    let file = backup["backup"].as_str().unwrap().to_string();
    bsc(&["db", "verify", &file]).ok();

    // 9. The API as the README's curl lines use it.
    let client = reqwest::Client::new();
    let health = client
        .get(format!("http://{}/api/health", d.api))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let metrics = client
        .get(format!("http://{}/api/metrics", d.api))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status().as_u16(), 200);
    assert!(metrics
        .text()
        .await
        .unwrap()
        .contains("bsc_bot_strategy_daily_loss"));

    // 10. Stop.
    bsc(&["bot", "stop"]).ok();
    let status = bsc(&["--json", "bot", "status"]).ok().json();
    assert_eq!(status["running"], false);
}

/// A number with more than eight decimals somewhere in `text`.
fn has_long_fraction(text: &str) -> bool {
    text.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .filter_map(|w| w.split_once('.'))
        .any(|(_, frac)| frac.len() > 8)
}
