//! The real daemon binary against a local WebSocket server that speaks Binance's combined-stream
//! format: replays the real capture, drops the connection, goes silent, sends garbage and half
//! frames. Paper fills must reach the database and the API; reconnects must happen; a stale feed
//! must stop trading and show in health; nothing may crash.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::daemon::{write_config, RunningDaemon, TOKEN};
use common::exchange::{capture_frames, restamp, trade_frame, Cmd, FakeBinance, Receiver};
use common::{backends, TestDb};

/// 21 levels over the capture's range (28,100–28,200), no fee: it trades on the real ticks.
const PARAMS: &str = r#"{"lower_price":"28100","upper_price":"28200","grid_count":21,"base_order_size":"100","fee_bps":0}"#;

fn now_ms() -> i64 {
    bsc_bot::clock::wall_clock_ms()
}

async fn replay(ex: &FakeBinance, frames: &[String]) {
    for (i, f) in frames.iter().enumerate() {
        ex.send(Cmd::Text(restamp(f, now_ms())));
        if i % 200 == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

async fn trade_count(db: &TestDb) -> i64 {
    let store = db.store().await;
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM trades")
        .fetch_one(store.pool())
        .await
        .unwrap();
    store.close().await;
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paper_trading_through_drops_silence_and_garbage() {
    for kind in backends() {
        let db = TestDb::new(kind).await;
        let ex = FakeBinance::start().await;
        let hook = Receiver::start(0, Duration::ZERO).await;
        let config = write_config(
            &db,
            &ex.url,
            &format!("[alerts]\nwebhook_url = \"{}\"\n", hook.url),
        );
        db.run(&[
            "--config", &config, "strategy", "create", "-t", "grid", "-s", "BTC/USDT", "-n", "cap",
            "-p", PARAMS,
        ])
        .ok();
        let log = db.dir.path().join("daemon.log");
        let d = RunningDaemon::start_logged(&db, &config, &log).await;
        assert!(
            ex.wait_connections(0, Duration::from_secs(5)).await,
            "{kind}: feed never connected"
        );
        assert!(
            ex.paths.lock().unwrap()[0]
                .contains("/stream?streams=btcusdt@trade/btcusdt@bookTicker"),
            "{kind}"
        );

        // Everything but the engine thread runs below it (daemon.background_nice = 5).
        // (Relative to the nice value this test runs at, which the daemon inherits.)
        let me = std::process::id();
        let base = thread_nice(me)
            .iter()
            .find(|t| t.0 == me)
            .map_or(0, |t| t.2);
        let threads = thread_nice(d.child.id());
        let engine = threads.iter().find(|t| t.1 == "engine");
        assert_eq!(engine.map(|t| t.2), Some(base), "{kind}: {threads:?}");
        let main = threads.iter().find(|t| t.0 == d.child.id());
        assert_eq!(main.map(|t| t.2), Some(base.max(5)), "{kind}: {threads:?}");
        assert!(
            threads
                .iter()
                .filter(|t| t.1.starts_with("tokio-runtime") || t.1.starts_with("sqlx"))
                .all(|t| t.2 == base.max(5)),
            "{kind}: {threads:?}"
        );

        // Garbage and pings in between real frames: skipped and answered, never fatal.
        let frames = capture_frames(4_000);
        ex.send(Cmd::Text("this is not json".into()));
        ex.send(Cmd::Text(
            r#"{"stream":"btcusdt@trade","data":{"p":"oops"}}"#.into(),
        ));
        ex.send(Cmd::Ping);
        replay(&ex, &frames[..2_000]).await;
        let filled = d
            .until(Duration::from_secs(10), || async {
                trade_count(&db).await >= 5
            })
            .await;
        assert!(
            filled.is_some(),
            "{kind}: no paper fills reached the database"
        );
        assert!(
            ex.pongs.load(std::sync::atomic::Ordering::SeqCst) >= 1,
            "{kind}: ping not answered"
        );

        // Fills are in the API's trading history and the strategy's status.
        let (code, hist) = d.get("/api/v1/trading/history?limit=3").await;
        assert_eq!(code, 200, "{kind}");
        assert_eq!(
            hist["trades"].as_array().unwrap().len(),
            3,
            "{kind}: {hist}"
        );
        assert_eq!(hist["trades"][0]["symbol"], "BTC/USDT", "{kind}");
        let st = d
            .until(Duration::from_secs(5), || async {
                let s = db
                    .run(&["--config", &config, "--json", "strategy", "status", "cap"])
                    .json();
                s["performance"]["fills"].as_u64().unwrap_or(0) >= 5
            })
            .await;
        assert!(st.is_some(), "{kind}: strategy status shows no fills");

        // Drop the connection, then a half frame: the feed reconnects each time.
        let before = ex.connections();
        ex.send(Cmd::Drop);
        assert!(
            ex.wait_connections(before, Duration::from_secs(5)).await,
            "{kind}: no reconnect after drop"
        );
        let before = ex.connections();
        ex.send(Cmd::HalfFrame);
        assert!(
            ex.wait_connections(before, Duration::from_secs(5)).await,
            "{kind}: no reconnect after half frame"
        );
        replay(&ex, &frames[2_000..2_500]).await;

        // Silence: health degrades (stale), the dead connection is replaced.
        let before = ex.connections();
        let stale = d
            .until(Duration::from_secs(6), || async {
                let (_, h) = d.get("/api/health").await;
                h["status"] == "degraded" && h["services"]["market_feed"] == "stale"
            })
            .await;
        assert!(stale.is_some(), "{kind}: silence did not show in health");
        let (_, h) = d.get("/api/health").await;
        assert!(
            h["reasons"][0].as_str().unwrap().contains("btcusdt stale"),
            "{kind}: {h}"
        );
        let health = db.run(&["--config", &config, "bot", "health"]);
        assert_eq!(health.code, Some(2), "{kind}: {health:#?}");
        assert!(health.stderr.contains("stale"), "{kind}: {health:#?}");
        assert!(
            ex.wait_connections(before, Duration::from_secs(6)).await,
            "{kind}: silent connection not replaced"
        );

        // A trade that arrives stale (exchange time far behind) is not traded on, even if it crosses.
        let fills_before = trade_count(&db).await;
        ex.send(Cmd::Text(trade_frame(1, "28000.00", now_ms() - 60_000)));
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            trade_count(&db).await,
            fills_before,
            "{kind}: traded on a stale price"
        );
        // A fresh one does trade, and health recovers.
        ex.send(Cmd::Text(trade_frame(2, "28000.00", now_ms())));
        assert!(
            d.until(Duration::from_secs(5), || async {
                trade_count(&db).await > fills_before
            })
            .await
            .is_some(),
            "{kind}: fresh price did not trade"
        );
        let ok = d
            .until(Duration::from_secs(3), || async {
                d.get("/api/health").await.1["status"] == "ok"
            })
            .await;
        assert!(ok.is_some(), "{kind}: health did not recover");

        // The database catches up with the engine: every queued write is done.
        let caught_up = d
            .until(Duration::from_secs(5), || async {
                let s = d.get("/api/v1/status").await.1;
                s["persist_queued"].as_u64().unwrap_or(0) > 0 && s["persist_backlog"] == 0
            })
            .await;
        assert!(
            caught_up.is_some(),
            "{kind}: {}",
            d.get("/api/v1/status").await.1
        );

        // Metrics count what happened and parse as Prometheus text.
        let (code, text) = d.text("/metrics").await;
        assert_eq!(code, 200);
        assert_prometheus(&text);
        // Runbook 002's database pool series: in use, idle, and the configured maximum.
        assert!(
            text.contains("bsc_bot_db_pool_connections{state=\"max\"} 5\n")
                && text.contains("bsc_bot_db_pool_connections{state=\"in_use\"} ")
                && text.contains("bsc_bot_db_pool_connections{state=\"idle\"} "),
            "{kind}: {text}"
        );
        let value = |name: &str| -> f64 {
            text.lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(-1.0)
        };
        assert!(
            value("bsc_bot_feed_malformed_frames_total") >= 2.0,
            "{kind}: {text}"
        );
        assert!(
            value("bsc_bot_feed_reconnects_total") >= 3.0,
            "{kind}: {text}"
        );
        assert!(
            value("bsc_bot_ticks_received_total{symbol=\"btcusdt\"}") >= 500.0,
            "{kind}: {text}"
        );
        assert!(
            value("bsc_bot_tick_to_decision_seconds_count") >= 500.0,
            "{kind}: {text}"
        );
        assert!(
            value("bsc_bot_fills_total{strategy=\"1\",side=\"buy\"}") >= 1.0,
            "{kind}: {text}"
        );
        assert!(
            value("bsc_bot_orders_total{strategy=\"1\",status=\"placed\"}") >= 1.0,
            "{kind}: {text}"
        );
        // Marked every second: equity of a funded grid is positive.
        assert!(
            value("bsc_bot_strategy_equity{strategy=\"1\"}") > 0.0,
            "{kind}: {text}"
        );

        // bot status sees it all; bot stop ends it within 5 s.
        let out = db
            .cmd(&["--config", &config, "--json", "bot", "status"])
            .env("BSC_BOT_API_TOKEN", TOKEN)
            .output()
            .unwrap();
        let s = common::Run::from(out).ok().json();
        assert_eq!(s["running"], true, "{kind}");
        assert_eq!(s["strategies"]["active"], 1, "{kind}");
        assert_eq!(s["feed"]["symbols"][0]["stream"], "btcusdt", "{kind}");
        assert!(
            s["feed"]["symbols"][0]["bid"].is_string(),
            "{kind}: bookTicker not tracked: {s}"
        );
        let mut d = d;
        let started = std::time::Instant::now();
        db.run(&["--config", &config, "bot", "stop"]).ok();
        let exit = d.wait_exit(Duration::from_secs(5));
        assert!(
            exit.is_some_and(|e| e.success()),
            "{kind}: daemon did not exit cleanly within 5 s: {exit:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        // Alerts: start and stop reached the webhook.
        let kinds: Vec<String> = hook
            .bodies()
            .iter()
            .map(|b| b["kind"].as_str().unwrap_or("").to_string())
            .collect();
        assert!(
            kinds.contains(&"daemon_started".to_string())
                && kinds.contains(&"daemon_stopped".to_string()),
            "{kind}: {kinds:?}"
        );
        // JSON logs: every fill on record is logged in a span naming its strategy and order.
        let text = std::fs::read_to_string(&log).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{kind}: not JSON: {l}: {e}"))
            })
            .collect();
        let fills: Vec<&serde_json::Value> = lines
            .iter()
            .filter(|l| l["fields"]["message"] == "paper fill")
            .collect();
        assert_eq!(fills.len() as i64, trade_count(&db).await, "{kind}: {text}");
        for f in &fills {
            assert_eq!(f["span"]["strategy_id"], 1, "{kind}: {f}");
            assert!(
                f["span"]["order_id"].as_i64().unwrap_or(0) > 0,
                "{kind}: {f}"
            );
            assert!(f["fields"]["price"].is_string(), "{kind}: {f}");
        }
        assert!(
            !text.contains(TOKEN),
            "{kind}: the API token reached the log"
        );
    }
}

/// (thread id, name, nice) of every thread of process `pid`, from /proc.
fn thread_nice(pid: u32) -> Vec<(u32, String, i64)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
    {
        let tid: u32 = entry.file_name().to_str().unwrap().parse().unwrap();
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let name = stat[stat.find('(').unwrap() + 1..stat.rfind(')').unwrap()].to_string();
        // Fields after "(comm)": state is field 3, nice is field 19.
        let nice = stat[stat.rfind(')').unwrap() + 2..]
            .split(' ')
            .nth(16)
            .unwrap()
            .parse()
            .unwrap();
        out.push((tid, name, nice));
    }
    out
}

fn assert_prometheus(text: &str) {
    for line in text.lines() {
        if line.is_empty() || line.starts_with("# HELP ") || line.starts_with("# TYPE ") {
            continue;
        }
        let (name_labels, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad metrics line {line:?}"));
        assert!(
            value.parse::<f64>().is_ok() || value == "+Inf",
            "bad value in {line:?}"
        );
        let name = name_labels.split('{').next().unwrap();
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "bad name in {line:?}"
        );
        if let Some(labels) = name_labels.strip_prefix(name) {
            if !labels.is_empty() {
                assert!(
                    labels.starts_with('{') && labels.ends_with('}'),
                    "bad labels in {line:?}"
                );
                for pair in labels[1..labels.len() - 1].split(',') {
                    let (k, v) = pair
                        .split_once('=')
                        .unwrap_or_else(|| panic!("bad label in {line:?}"));
                    assert!(
                        !k.is_empty() && v.starts_with('"') && v.ends_with('"'),
                        "bad label in {line:?}"
                    );
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_auth_rate_limit_and_validation() {
    let db = TestDb::new("sqlite").await;
    let ex = FakeBinance::start().await;
    let config = write_config(&db, &ex.url, "");
    std::fs::write(
        &config,
        std::fs::read_to_string(&config).unwrap().replace(
            "rate_limit_per_sec = 1000\nrate_limit_burst = 1000",
            "rate_limit_per_sec = 5\nrate_limit_burst = 10",
        ),
    )
    .unwrap();
    db.run(&[
        "--config", &config, "strategy", "create", "-t", "grid", "-s", "BTC/USDT", "-n", "a", "-p",
        PARAMS,
    ])
    .ok();
    let d = RunningDaemon::start(&db, &config, &[]).await;
    let client = reqwest::Client::new();
    let url = |p: &str| format!("http://{}{p}", d.api);
    for path in [
        "/metrics",
        "/api/v1/status",
        "/api/v1/trading/history",
        "/api/v1/strategies",
        "/api/v1/strategies/1",
    ] {
        let r = client.get(url(path)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401, "{path} without token");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"]["status"], 401, "{path}");
        let r = client
            .get(url(path))
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 401, "{path} with a wrong token");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for path in ["/api/v1/control/poke", "/api/v1/control/stop"] {
        assert_eq!(
            client
                .post(url(path))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
            401,
            "{path}"
        );
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Health needs no token and has the documented shape.
    let h: serde_json::Value = client
        .get(url("/api/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        ["ok", "degraded", "down"].contains(&h["status"].as_str().unwrap()),
        "{h}"
    );
    assert!(
        h["timestamp"].is_i64() && h["websocket_connections"].is_u64(),
        "{h}"
    );
    for s in ["database", "market_feed", "rpc"] {
        assert!(h["services"][s].is_string(), "{h}");
    }
    // Bad input: 400 with a JSON error.
    tokio::time::sleep(Duration::from_secs(1)).await;
    for (path, msg) in [
        ("/api/v1/trading/history?limit=abc", "limit"),
        ("/api/v1/trading/history?limit=0", "1..=1000"),
        ("/api/v1/trading/history?strategy_id=x", "strategy_id"),
        ("/api/v1/strategies/abc", "expected an integer"),
    ] {
        let r = client
            .get(url(path))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400, "{path}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert!(
            body["error"]["message"].as_str().unwrap().contains(msg),
            "{path}: {body}"
        );
    }
    let r = client
        .get(url("/api/v1/strategies/99"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    // Unknown routes and methods, and parameters axum cannot read, answer with the same JSON
    // error envelope.
    for (method, path, code) in [
        (
            reqwest::Method::GET,
            "/api/v1/trading/history?limit=1&limit=2",
            400,
        ),
        (reqwest::Method::GET, "/api/v1/strategies/%FF", 400),
        (reqwest::Method::GET, "/api/v1/nope", 404),
        (reqwest::Method::GET, "/nope", 404),
        (reqwest::Method::DELETE, "/api/v1/strategies", 405),
    ] {
        let r = client
            .request(method.clone(), url(path))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), code, "{method} {path}");
        let body: serde_json::Value = r
            .json()
            .await
            .unwrap_or_else(|e| panic!("{path}: not JSON: {e}"));
        assert_eq!(body["error"]["status"], code, "{path}: {body}");
        assert!(body["error"]["message"].is_string(), "{path}: {body}");
    }
    // A burst beyond the bucket gets 429s.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut codes = Vec::new();
    for _ in 0..30 {
        codes.push(
            client
                .get(url("/api/v1/strategies"))
                .bearer_auth(TOKEN)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
    }
    assert!(codes.contains(&200) && codes.contains(&429), "{codes:?}");
    let r = client
        .get(url("/api/v1/status"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        429,
        "the limit applies per client to the API"
    );
    // Health is never limited: a load balancer or monitor polling it must not see a 429.
    let r = client.get(url("/api/health")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200, "health is not rate-limited");
    // /api/metrics is /metrics (what the runbooks scrape).
    let m = client
        .get(url("/api/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert!(
        m.status().as_u16() == 200 || m.status().as_u16() == 429,
        "{}",
        m.status()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_daemon_per_database_and_monitoring_only_never_trades() {
    for kind in backends() {
        let db = TestDb::new(kind).await;
        let ex = FakeBinance::start().await;
        // On PostgreSQL a second daemon joins the cluster (tests/cluster.rs); without it, one
        // daemon per database as on SQLite.
        let config = write_config(&db, &ex.url, "[cluster]\nenabled = false\n");
        db.run(&[
            "--config", &config, "strategy", "create", "-t", "grid", "-s", "BTC/USDT", "-n", "m",
            "-p", PARAMS,
        ])
        .ok();
        let d = RunningDaemon::start(&db, &config, &["--monitoring-only"]).await;
        // A second daemon on the same database is refused, naming the first.
        let second = db.run(&["--config", &config, "bot", "start"]);
        assert_eq!(second.code, Some(1), "{kind}: {second:#?}");
        assert!(
            second
                .stderr
                .contains("another bsc-bot daemon is already running on this database (pid"),
            "{kind}: {second:#?}"
        );
        // It says what to do instead.
        let hint = if kind == "sqlite" {
            "SQLite runs one daemon per database: to run several daemons"
        } else {
            "this one has cluster.enabled = false"
        };
        assert!(second.stderr.contains(hint), "{kind}: {second:#?}");
        // Also when the second names the same SQLite file by another path (a symlink).
        if kind == "sqlite" {
            let link = db.dir.path().join("other-name.sqlite");
            std::os::unix::fs::symlink(db.sqlite_path(), &link).unwrap();
            let mut child = db
                .cmd(&["--config", &config, "bot", "start"])
                .env("DATABASE_URL", format!("sqlite://{}", link.display()))
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while child.try_wait().unwrap().is_none() {
                if std::time::Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("a second daemon started on the same database through a symlink");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let out = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{stderr}");
            assert!(
                stderr.contains("another bsc-bot daemon is already running"),
                "{stderr}"
            );
            let status = db
                .run(&["--config", &config, "--json", "bot", "status"])
                .ok()
                .json();
            assert_eq!(
                status["running"], true,
                "the first daemon's record is untouched"
            );
        }
        // Monitoring only: the feed watches the strategy's market, nothing trades.
        assert!(
            ex.wait_connections(0, Duration::from_secs(5)).await,
            "{kind}"
        );
        replay(&ex, &capture_frames(1_500)).await;
        let watched = d
            .until(Duration::from_secs(5), || async {
                d.get("/api/v1/status").await.1["feed"]["symbols"][0]["ticks"]
                    .as_u64()
                    .unwrap_or(0)
                    > 100
            })
            .await;
        assert!(
            watched.is_some(),
            "{kind}: monitoring-only did not watch the market"
        );
        assert_eq!(trade_count(&db).await, 0, "{kind}: monitoring-only traded");
    }
}

/// Runbook parity: `bot start --market-only` runs the feed and the API only, and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn market_only_watches_and_says_what_runs() {
    let db = TestDb::new("sqlite").await;
    let ex = FakeBinance::start().await;
    let config = write_config(
        &db,
        &ex.url,
        "[funds]\ntreasury = \"0x000000000000000000000000000000000000dEaD\"\n",
    );
    db.run(&[
        "--config", &config, "strategy", "create", "-t", "grid", "-s", "BTC/USDT", "-n", "m", "-p",
        PARAMS,
    ])
    .ok();
    let d = RunningDaemon::start(&db, &config, &["--market-only"]).await;
    replay(&ex, &capture_frames(1_500)).await;
    let watched = d
        .until(Duration::from_secs(5), || async {
            d.get("/api/v1/status").await.1["feed"]["symbols"][0]["ticks"]
                .as_u64()
                .unwrap_or(0)
                > 100
        })
        .await;
    assert!(watched.is_some(), "the feed runs");
    assert_eq!(trade_count(&db).await, 0, "nothing trades");
    let status = db
        .run(&["--config", &config, "--json", "bot", "status"])
        .ok()
        .json();
    assert_eq!(status["trading"], "off: --market-only", "{status}");
    assert_eq!(status["funds"], "off: --market-only", "{status}");
    let text = db
        .run(&["--config", &config, "bot", "status"])
        .ok()
        .stdout
        .clone();
    assert!(
        text.contains("strategies  trading: off: --market-only"),
        "{text}"
    );
    let (_, health) = d.get("/api/health").await;
    assert_eq!(health["services"]["funds"], "off: --market-only");
}

/// A feed nobody needs is no health problem (`--no-strategies` dials nothing; once every
/// strategy stopped the feed is only a reference); a feed that fails says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_nobody_needs_is_healthy_and_a_failing_one_says_why() {
    let db = TestDb::new("sqlite").await;
    let ex = FakeBinance::start().await;
    let config = write_config(&db, &ex.url, "");
    db.run(&[
        "--config", &config, "strategy", "create", "-t", "grid", "-s", "BTC/USDT", "-n", "f", "-p",
        PARAMS,
    ])
    .ok();
    let d = RunningDaemon::start(&db, &config, &["--no-strategies"]).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(ex.connections(), 0, "--no-strategies dials no exchange");
    let (_, health) = d.get("/api/health").await;
    assert_eq!(health["status"], "ok", "{health}");
    drop(d);

    // Nothing listens where the feed goes: the paper grid needs it, health says why.
    let refused = write_config(&db, "ws://127.0.0.1:1", "");
    let d = RunningDaemon::start(&db, &refused, &[]).await;
    let said = d
        .until(Duration::from_secs(5), || async {
            let (_, h) = d.get("/api/health").await;
            h["status"] == "degraded"
                && h["reasons"]
                    .to_string()
                    .contains("market feed disconnected: connect: connection refused")
        })
        .await;
    let (_, health) = d.get("/api/health").await;
    assert!(said.is_some(), "{health}");
    // The only strategy stops: nobody needs the feed any more.
    db.run(&["--config", &refused, "strategy", "stop", "1"])
        .ok();
    let healthy = d
        .until(Duration::from_secs(5), || async {
            d.get("/api/health").await.1["status"] == "ok"
        })
        .await;
    let (_, health) = d.get("/api/health").await;
    assert!(healthy.is_some(), "{health}");
    assert!(
        health["services"]["market_feed"]
            .as_str()
            .unwrap()
            .starts_with("not needed"),
        "{health}"
    );
}

/// A daemon whose core is slow to come up (held 10 s here, as a slow node or a long recovery
/// would hold it) says so: health is degraded with the engine starting, `bot status` shows it
/// running with trading and funds `starting` (not the last run's words), its heartbeat goes on
/// past the 5 s a silent daemon is taken for gone (a restore is refused under it), and `bot stop`
/// stops it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_slow_to_start_says_so_and_stops_when_asked() {
    let db = TestDb::new("sqlite").await;
    let ex = FakeBinance::start().await;
    let config = write_config(&db, &ex.url, "");
    db.run(&[
        "--config", &config, "strategy", "create", "-t", "grid", "-s", "BTC/USDT", "-n", "f", "-p",
        PARAMS,
    ])
    .ok();
    let out = db.dir.path().join("backups");
    let backup = db
        .run(&[
            "--config",
            &config,
            "--json",
            "db",
            "backup",
            "--out",
            out.to_str().unwrap(),
        ])
        .ok()
        .json();
    let backup = backup["backup"].as_str().unwrap().to_string();
    // The last run's words, which this start must not show.
    drop(RunningDaemon::start(&db, &config, &["--market-only"]).await);
    let mut d = RunningDaemon::start_serving_with_env(
        &db,
        &config,
        &[],
        &[("BSC_BOT_FAILPOINTS", "daemon.core_start=sleep:10000")],
    )
    .await;
    let served = std::time::Instant::now();
    let (_, health) = d.get("/api/health").await;
    assert_eq!(health["status"], "degraded", "{health}");
    assert!(
        health["services"]["engine"]
            .as_str()
            .is_some_and(|e| e.starts_with("starting for ")),
        "{health}"
    );
    assert!(
        health["reasons"].to_string().contains("engine starting ("),
        "{health}"
    );
    // Past the 5 s after which a daemon without a heartbeat counts as gone.
    tokio::time::sleep(Duration::from_millis(5_600).saturating_sub(served.elapsed())).await;
    let status = db
        .run(&["--config", &config, "--json", "bot", "status"])
        .ok()
        .json();
    assert_eq!(status["running"], true, "{status}");
    assert_eq!(status["trading"], "starting", "{status}");
    assert_eq!(status["funds"], "starting", "{status}");
    let (_, health) = d.get("/api/health").await;
    assert!(
        health["services"]["engine"]
            .as_str()
            .is_some_and(|e| e.starts_with("starting for ")),
        "still held: {health}"
    );
    db.run(&["--config", &config, "db", "restore", &backup])
        .fails_with(1, "a daemon runs on this database");
    let out = db
        .run(&["--config", &config, "--json", "bot", "stop"])
        .ok()
        .json();
    assert_eq!(out["stopped"], true, "{out}");
    assert!(d.wait_exit(Duration::from_secs(5)).is_some());

    // Up, it says running, and so does everything it was starting.
    let d = RunningDaemon::start(&db, &config, &[]).await;
    let (_, health) = d.get("/api/health").await;
    assert_eq!(health["services"]["engine"], "running", "{health}");
    let status = db
        .run(&["--config", &config, "--json", "bot", "status"])
        .ok()
        .json();
    assert_eq!(status["trading"], "running", "{status}");
    assert_ne!(status["funds"], "starting", "{status}");
}

/// Clients that send half a request, drip a header line every few hundred milliseconds, or open
/// more connections than allowed are closed, while the daemon goes on trading and health stays
/// ok.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_greedy_clients_are_closed_while_trading_goes_on() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let db = TestDb::new("sqlite").await;
    let ex = std::sync::Arc::new(FakeBinance::start().await);
    let config = write_config(&db, &ex.url, "");
    db.run(&[
        "--config", &config, "strategy", "create", "-t", "grid", "-s", "BTC/USDT", "-n", "s", "-p",
        PARAMS,
    ])
    .ok();
    let d = RunningDaemon::start_with_env(
        &db,
        &config,
        &[],
        &[
            ("BSC_BOT_API_REQUEST_HEAD_TIMEOUT_MS", "1000"),
            ("BSC_BOT_API_MAX_CONNECTIONS_PER_CLIENT", "60"),
        ],
    )
    .await;
    assert!(ex.wait_connections(0, Duration::from_secs(5)).await);
    let frames = capture_frames(3_000);
    let feeder = {
        let frames = frames.clone();
        let ex = ex.clone();
        tokio::spawn(async move {
            for f in &frames {
                ex.send(Cmd::Text(restamp(f, now_ms())));
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    let addr = d.api.clone();
    // 40 half-open requests and 10 that drip a header line every 300 ms.
    let mut half = Vec::new();
    for _ in 0..40 {
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        s.write_all(b"GET /api/health HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        half.push(s);
    }
    let dripping: Vec<_> = (0..10)
        .map(|_| {
            let addr = addr.clone();
            tokio::spawn(async move {
                let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
                s.write_all(b"GET /api/health HTTP/1.1\r\n").await.unwrap();
                let started = std::time::Instant::now();
                for n in 0..40 {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    if s.write_all(format!("X-Drip-{n}: 1\r\n").as_bytes())
                        .await
                        .is_err()
                    {
                        return started.elapsed();
                    }
                    let mut byte = [0u8; 1];
                    match tokio::time::timeout(Duration::from_millis(1), s.read(&mut byte)).await {
                        Ok(Ok(_)) | Ok(Err(_)) => return started.elapsed(),
                        Err(_) => {}
                    }
                }
                started.elapsed()
            })
        })
        .collect();
    // Meanwhile health answers at once and is ok.
    let (_, health) = d.get("/api/health").await;
    assert_eq!(health["status"], "ok", "{health}");
    // Half-open connections are closed by the head timeout (1 s).
    tokio::time::sleep(Duration::from_millis(1800)).await;
    for (i, s) in half.iter_mut().enumerate() {
        let mut buf = [0u8; 256];
        let read = tokio::time::timeout(Duration::from_millis(500), s.read(&mut buf)).await;
        assert!(
            matches!(read, Ok(Ok(_)) | Ok(Err(_))),
            "half-open connection {i} still open after the head timeout"
        );
    }
    for task in dripping {
        let held = task.await.unwrap();
        assert!(
            held < Duration::from_secs(4),
            "a dripping client was held {held:?} (40 lines at 300 ms would be 12 s)"
        );
    }
    // Over the per-client cap, new connections are closed at once.
    let mut idle = Vec::new();
    for _ in 0..60 {
        idle.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut extra = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let _ = extra
        .write_all(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), extra.read_to_end(&mut buf)).await;
    assert!(
        buf.is_empty(),
        "the 61st connection got an answer: {}",
        String::from_utf8_lossy(&buf)
    );
    drop(idle);
    tokio::time::sleep(Duration::from_millis(200)).await;
    feeder.await.unwrap();
    // Trading went on, and health with it.
    let (_, health) = d.get("/api/health").await;
    assert_eq!(health["status"], "ok", "{health}");
    assert!(trade_count(&db).await > 0, "the grid traded meanwhile");
}

/// Runbook parity: `log.file` — the daemon logs to a daily file as well as stderr.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_also_logs_to_a_daily_file() {
    let db = TestDb::new("sqlite").await;
    let ex = FakeBinance::start().await;
    let config = write_config(
        &db,
        &ex.url,
        "[log]\nfile = \"logs/bsc-bot.log\"\nkeep_days = 3\n",
    );
    let d = RunningDaemon::start(&db, &config, &[]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(d);
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let file = db.dir.path().join(format!("logs/bsc-bot.log.{today}"));
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    assert!(text.contains("bsc-bot daemon started"), "{text}");
    assert!(!text.contains("\u{1b}["), "no terminal colours in the file");
}

/// Trades at 28,200 then 28,195 on the feed until strategy 1 has a trade on record (5 s at most):
/// its trades.
async fn paper_trades_at_28195(
    ex: &FakeBinance,
    store: &bsc_bot::store::Store,
) -> Vec<bsc_bot::store::paper::TradeRecord> {
    let mut trades = Vec::new();
    for i in 0..50 {
        for (n, price) in [(2 * i, "28200"), (2 * i + 1, "28195")] {
            ex.send(Cmd::Text(trade_frame(
                n,
                price,
                bsc_bot::clock::wall_clock_ms(),
            )));
        }
        // The buys, oldest first: on a loaded machine the cell's sell at 28,200 may be on
        // record too by the time this reads.
        trades = store.trading_history(Some(1), 10).await.unwrap();
        trades.retain(|t| t.side == "buy");
        trades.reverse();
        if !trades.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    trades
}

/// Issue 12: paper can fill through a constant-product pool (`market.paper_fill_model = "amm"`):
/// a buy triggered at its limit pays the pool's price impact and gas beside the fee.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paper_fills_through_the_configured_pool() {
    let db = TestDb::new("sqlite").await;
    let ex = FakeBinance::start().await;
    let config = write_config(&db, &ex.url, "");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "[market]\n",
        "[market]\npaper_fill_model = \"amm\"\npaper_pool_reserves = \"2:56400\"\n",
    );
    std::fs::write(&config, text).unwrap();
    db.run(&[
        "--config", &config, "strategy", "create", "-t", "grid", "-s", "BTC/USDT", "-n", "amm",
        "-p",
        r#"{"lower_price":"28100","upper_price":"28200","grid_count":21,"base_order_size":"100","fee_bps":25}"#,
    ])
    .ok();
    let store = db.store().await;
    let _d = RunningDaemon::start(&db, &config, &[]).await;
    assert!(ex.wait_connections(1, Duration::from_secs(10)).await);
    let trades = paper_trades_at_28195(&ex, &store).await;
    let buy = trades.first().expect("a buy at 28,195");
    let price: rust_decimal::Decimal = buy.price.parse().unwrap();
    assert!(
        price > "28195".parse().unwrap(),
        "the pool's impact: {price}"
    );
    let base: rust_decimal::Decimal = buy.base_amount.parse().unwrap();
    let at_limit: rust_decimal::Decimal = "100".parse::<rust_decimal::Decimal>().unwrap()
        * "0.9975".parse::<rust_decimal::Decimal>().unwrap()
        / "28195".parse::<rust_decimal::Decimal>().unwrap();
    assert!(base < at_limit, "{base} < {at_limit}");
    assert_eq!(
        buy.quote_amount, "100",
        "spends exactly its quote, gas included"
    );
    store.close().await;
}

/// Paper can fill through a V3 pool's liquidity profile (`market.paper_pool_profile`, the JSON
/// `backtest --save-pool-profile` writes): a buy is an exact-input swap through the pool at the
/// price of the moment, with the 5 bps tier's fee — what the V3 model gives, to the wei. A file
/// that is no profile is refused at load, naming the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paper_fills_through_a_v3_pool_profile() {
    use bsc_bot::amm::v3::{tick_math::sqrt_ratio_at_tick, V3FillModel, V3Pool, V3Profile};
    use rust_decimal::Decimal;
    let db = TestDb::new("sqlite").await;
    let ex = FakeBinance::start().await;
    // A 5 bps pool around 28,195 (tick 102,470 for two 18-decimal tokens, base = token0).
    let tick = bsc_bot::amm::v3::tick_math::tick_at_sqrt_ratio(
        bsc_bot::amm::v3::sqrt_x96_from_price("28195".parse().unwrap(), 18, 18, true).unwrap(),
    )
    .unwrap();
    let l = 10i128.pow(21);
    let centre = tick.div_euclid(10) * 10;
    let pool = V3Pool {
        fee: 500,
        tick_spacing: 10,
        sqrt_price_x96: sqrt_ratio_at_tick(tick).unwrap(),
        tick,
        liquidity: l as u128,
        ticks: [(centre - 2000, l), (centre + 2000, -l)]
            .into_iter()
            .collect(),
        known_words: (
            V3Pool::word_of(centre / 10) - 2,
            V3Pool::word_of(centre / 10) + 2,
        ),
    };
    let profile = V3Profile::of(&pool, true, 18, 18);
    let path = db.dir.path().join("pool-profile.json");
    std::fs::write(&path, serde_json::to_string(&profile).unwrap()).unwrap();
    let junk = db.dir.path().join("junk.json");
    std::fs::write(&junk, "{}").unwrap();
    let config = write_config(&db, &ex.url, "");
    let base_text = std::fs::read_to_string(&config).unwrap();
    let with = |file: &std::path::Path| {
        base_text.replace(
            "[market]\n",
            &format!(
                "[market]\npaper_fill_model = \"amm\"\npaper_pool_profile = \"{}\"\npaper_gas_quote = \"0.01\"\n",
                file.display()
            ),
        )
    };
    std::fs::write(&config, with(&junk)).unwrap();
    db.run(&["--config", &config, "config", "check"])
        .fails_with(1, "market.paper_pool_profile");
    std::fs::write(&config, with(&path)).unwrap();
    db.run(&[
        "--config", &config, "strategy", "create", "-t", "grid", "-s", "BTC/USDT", "-n", "v3",
        "-p",
        r#"{"lower_price":"28100","upper_price":"28200","grid_count":21,"base_order_size":"100","fee_bps":5}"#,
    ])
    .ok();
    let store = db.store().await;
    let _d = RunningDaemon::start(&db, &config, &[]).await;
    assert!(ex.wait_connections(1, Duration::from_secs(10)).await);
    let trades = paper_trades_at_28195(&ex, &store).await;
    let buy = trades.first().expect("a buy at 28,195");
    // The model's own answer for 100 quote at 28,195: the daemon filled exactly that.
    let mut model = V3FillModel::new(profile, Decimal::ZERO).unwrap();
    model.move_to("28195".parse().unwrap()).unwrap();
    let want = model
        .swap(
            bsc_bot::model::order::Side::Buy,
            Decimal::from(100),
            "28195".parse().unwrap(),
        )
        .unwrap();
    let base: Decimal = buy.base_amount.parse().unwrap();
    assert_eq!(base, want.base, "{buy:?}");
    assert_eq!(buy.quote_amount, "100");
    let fee: Decimal = buy.fee_quote.parse().unwrap();
    assert_eq!(fee, want.fee, "the tier's 5 bps, rounded up by the pool");
    store.close().await;
}
