//! Operator-facing edges of the CLI (issue 11, item 7): output cut short by `head`, no `$USER`,
//! a list in an environment override, and a file that is not a database.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::TestDb;

#[tokio::test]
async fn output_cut_short_by_the_reader_is_not_a_panic() {
    let db = TestDb::new("sqlite").await;
    for _ in 0..5 {
        let mut child = db
            .cmd(&["config", "check"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take()); // the reader is gone before the first line
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert_eq!(out.status.code(), Some(0), "{stderr}");
    }
}

#[tokio::test]
async fn the_audit_names_the_os_user_when_user_is_unset() {
    let db = TestDb::new("sqlite").await;
    let out = db
        .cmd(&[
            "strategy",
            "create",
            "-t",
            "grid",
            "-s",
            "BTC/USDT",
            "-n",
            "who",
            "-p",
            r#"{"lower_price":"1","upper_price":"2","grid_count":3,"base_order_size":"1"}"#,
        ])
        .env_remove("USER")
        .env_remove("LOGNAME")
        .output()
        .unwrap();
    assert!(out.status.success());
    let me = std::process::Command::new("id")
        .arg("-un")
        .output()
        .unwrap();
    let me = String::from_utf8(me.stdout).unwrap().trim().to_string();
    let store = db.store().await;
    let rows = store.audit_log(10).await.unwrap();
    assert_eq!(rows[0].actor, me);
    assert_ne!(rows[0].actor, "unknown");
}

#[tokio::test]
async fn a_comma_separated_list_overrides_a_list_key() {
    let db = TestDb::new("sqlite").await;
    let out = db
        .cmd(&["--json", "config", "check"])
        .env("BSC_BOT_MARKET_WS_URLS", "ws://a.example, wss://b.example")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["config"]["market"]["ws_urls"],
        serde_json::json!(["ws://a.example", "wss://b.example"])
    );
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_refused_at_once() {
    let db = TestDb::new("sqlite").await;
    let path = db.sqlite_path();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, "id,price\n1,100\n".repeat(100)).unwrap();
    let started = Instant::now();
    db.run(&["strategy", "list"])
        .fails_with(1, "is not a SQLite database");
    // Before: ~10 s of pool retries, then "pool timed out".
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "id,price\n1,100\n".repeat(100),
        "left as it was"
    );
}

/// Issue 11, item 6: a market bsc-bot cannot price is refused with a clear error, a lower-case
/// spelling is the same market, and `market.extra_markets` extends the shipped list.
#[tokio::test]
async fn unknown_markets_are_refused_and_spellings_are_one_market() {
    let db = TestDb::new("sqlite").await;
    let params = r#"{"lower_price":"1","upper_price":"2","grid_count":3,"base_order_size":"10"}"#;
    let create = |symbol: &str, name: &str| {
        db.cmd(&[
            "--json", "strategy", "create", "-t", "grid", "-s", symbol, "-n", name, "-p", params,
        ])
    };
    let out = create("FOO/BAR", "foo").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("FOO/BAR is not a Binance spot market bsc-bot knows")
            && text.contains("market.extra_markets"),
        "{text}"
    );
    let out = create("BTC/FOO", "btcfoo").output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("(known: BTC/USDT"),
        "suggests markets of the same base"
    );
    let store = db.store().await;
    assert!(
        store.list_strategies(None).await.unwrap().is_empty(),
        "nothing created"
    );
    // One market, however it is typed.
    let out = create("btc/usdt", "lower").output().unwrap();
    assert!(out.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["strategy"]["symbol"], "BTC/USDT");
    // Extended in config (here through the environment, comma-separated).
    let out = create("FOO/BAR", "foo")
        .env("BSC_BOT_MARKET_EXTRA_MARKETS", "FOO/BAR,BAZ/USDT")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // A malformed entry is a config error naming the key.
    let out = create("ETH/USDT", "eth")
        .env("BSC_BOT_MARKET_EXTRA_MARKETS", "FOOBAR")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("market.extra_markets"));
    store.close().await;
}

/// Issue 11, item 7: an invalid config reports every problem at once, each naming its key.
#[tokio::test]
async fn config_validation_reports_every_problem_at_once() {
    let db = TestDb::new("sqlite").await;
    let path = db.dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[database]\nmax_connections = 0\n\n[daemon]\ncontrol_poll_ms = 1\n\n[risk]\nmax_error_rate = \"2\"\n",
    )
    .unwrap();
    let out = db
        .cmd(&["--config", path.to_str().unwrap(), "config", "check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("3 config problems"), "{err}");
    for key in [
        "database.max_connections",
        "daemon.control_poll_ms",
        "risk.max_error_rate",
    ] {
        assert!(err.contains(key), "{key} in {err}");
    }
}
