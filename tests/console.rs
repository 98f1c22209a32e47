//! Issue 22: the operator console, driven in a real headless Chromium over WebDriver against a
//! real daemon trading paper grids on the local WebSocket feed.
#![allow(clippy::unwrap_used)]

#[path = "common/browser.rs"]
mod browser;
mod common;

use std::time::{Duration, Instant};

use browser::Browser;
use common::daemon::{write_config, RunningDaemon, TOKEN};
use common::exchange::{trade_frame, Cmd, FakeBinance};
use common::{create_grid, TestDb};
use serde_json::{json, Value};

/// A config whose API listens on a port of its own (a restarted daemon comes back on it) and
/// whose node is a closed port (the Funds page says why it has no balances, at once).
fn console_config(db: &TestDb, ws: &str) -> (String, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let api = format!("127.0.0.1:{port}");
    let config = write_config(
        db,
        ws,
        "[chain]\nrpc_urls = [\"http://127.0.0.1:9\"]\nrpc_timeout_ms = 500\n",
    );
    // The explorer a live fill's hash links to.
    let config_text = std::fs::read_to_string(&config).unwrap().replace(
        "[api]\n",
        "[api]\nexplorer_tx_url = \"https://explorer.test/tx/{tx}\"\n",
    );
    std::fs::write(&config, config_text).unwrap();
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("listen = \"127.0.0.1:0\"", &format!("listen = \"{api}\""));
    std::fs::write(&config, text).unwrap();
    (config, api)
}

/// `GET http://API/PATH`, with the token or without.
async fn get(api: &str, path: &str, token: bool) -> reqwest::Response {
    let req = reqwest::Client::new().get(format!("http://{api}{path}"));
    let req = if token { req.bearer_auth(TOKEN) } else { req };
    req.send().await.unwrap()
}

fn now_ms() -> i64 {
    bsc_bot::clock::wall_clock_ms()
}

/// Trades around 105,500 and 104,990 until strategy `id` fills once more (its grid buys at
/// 105,000 and sells at 106,000).
async fn drive_a_fill(ex: &FakeBinance, store: &bsc_bot::store::Store, id: i64, first: i64) {
    let before = store.trade_count(id).await.unwrap();
    for i in 0..100 {
        for (n, price) in [(first + 2 * i, "106010"), (first + 2 * i + 1, "104990")] {
            ex.send(Cmd::Text(trade_frame(n, price, now_ms())));
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        if store.trade_count(id).await.unwrap() > before {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("strategy {id} never filled");
}

/// Where the README's screenshots are written when asked (`CONSOLE_SCREENSHOTS_DIR=docs/img`),
/// else beside the test's database.
fn screenshot_path(db: &TestDb, name: &str) -> std::path::PathBuf {
    match std::env::var("CONSOLE_SCREENSHOTS_DIR") {
        Ok(dir) if !dir.is_empty() => common::repo_path(&dir).join(name),
        _ => db.dir.path().join(name),
    }
}

/// Wait until the page has drawn its data and `also` (a script expression) holds.
async fn until_loaded(b: &Browser, also: &str, what: &str) {
    let script = format!(
        "return document.getElementById('app').getAttribute('data-loaded') === 'true' && ({also});"
    );
    b.until(&script, json!([]), Duration::from_secs(15))
        .await
        .unwrap_or_else(|| panic!("{what} not shown"));
}

async fn save_png(browser: &Browser, path: &std::path::Path) {
    let png = browser.screenshot().await;
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
        "a real screenshot ({} bytes)",
        png.len()
    );
    std::fs::write(path, png).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_in_a_real_browser() {
    let db = TestDb::new("sqlite").await;
    let ex = FakeBinance::start().await;
    let (config, api) = console_config(&db, &ex.url);
    let grid = create_grid(&db, "console-grid");
    let other = create_grid(&db, "console-other");
    // A sweep with a heat map, its best grid stored as a backtest with its chart.
    let klines = common::repo_path("tests/data/BTCUSDT-1m-2025-08-01_to_2025-08-11.csv");
    db.run(&[
        "backtest",
        "sweep",
        "-t",
        "grid",
        "-s",
        "BTC/USDT",
        "-p",
        r#"{"base_order_size":"100"}"#,
        "--vary",
        "lower_price=112000:113000:1000",
        "--vary",
        "upper_price=117000,119000",
        "--vary",
        "grid_count=6",
        "--heatmap",
        "lower_price,upper_price",
        "--top",
        "1",
        "--data",
        klines.to_str().unwrap(),
    ])
    .ok();
    let store = db.store().await;
    let mut daemon = RunningDaemon::start(&db, &config, &[]).await;
    assert!(ex.wait_connections(0, Duration::from_secs(10)).await);
    // Both grids start on a first price.
    for i in 0..20 {
        ex.send(Cmd::Text(trade_frame(i, "105500", now_ms())));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let url = format!("http://{api}/");
    let b = Browser::start().await;

    // Without the token: the login screen, and the API says 401.
    b.goto(&url).await;
    b.wait_for("#login", Duration::from_secs(10)).await;
    assert_eq!(b.count("#strategies").await, 0);
    for path in [
        "/api/v1/overview",
        "/api/v1/events",
        "/api/v1/strategies/1/page",
    ] {
        let r = get(&api, path, false).await;
        assert_eq!(r.status(), 401, "{path} without the token");
    }

    // A wrong token: an error, nothing shown, nothing kept.
    b.type_into("#token", "not-the-token").await;
    b.type_into("#operator", "alice").await;
    b.click("#login-submit").await;
    assert!(
        b.until(
            "return document.getElementById('login-error').textContent.includes('Wrong token');",
            json!([]),
            Duration::from_secs(5)
        )
        .await
        .is_some(),
        "login error: {:?}",
        b.text("#login-error").await
    );
    assert_eq!(b.count("#strategies").await, 0);
    assert_eq!(
        b.eval(
            "return sessionStorage.length + localStorage.length;",
            json!([])
        )
        .await,
        json!(0)
    );

    // The token: the overview lists both strategies.
    b.type_into("#token", TOKEN).await;
    b.type_into("#operator", "alice").await;
    b.click("#login-submit").await;
    b.wait_for("#strategies", Duration::from_secs(10)).await;
    for id in [grid, other] {
        b.wait_for(
            &format!("#strategies tr[data-strategy-id='{id}']"),
            Duration::from_secs(5),
        )
        .await;
    }
    assert!(b.text("#strategies").await.contains("console-grid"));
    // The token is kept for the tab only.
    assert_eq!(
        b.eval(
            "return [sessionStorage.getItem('bsc-bot-token') !== null, localStorage.length];",
            json!([])
        )
        .await,
        json!([true, 0])
    );
    b.until(
        "return document.body.getAttribute('data-connected') === 'true';",
        json!([]),
        Duration::from_secs(5),
    )
    .await
    .expect("the push stream connected");

    // A price pushed through the feed is on the page within a second.
    let mut worst = Duration::ZERO;
    for (n, price) in [(1000, "105432.1"), (1001, "105678.9"), (1002, "105511.5")] {
        let sent = Instant::now();
        ex.send(Cmd::Text(trade_frame(n, price, now_ms())));
        let seen = b
            .until(
                "const e = document.querySelector(`#strategies [data-price-stream='btcusdt']`); \
                 return !!e && e.getAttribute('data-price') === arguments[0];",
                json!([price]),
                Duration::from_secs(3),
            )
            .await;
        let took = sent.elapsed();
        assert!(seen.is_some(), "price {price} never shown");
        worst = worst.max(took);
    }
    eprintln!("pushed price on the page after at most {worst:?}");
    assert!(worst < Duration::from_secs(1), "{worst:?}");
    save_png(&b, &screenshot_path(&db, "console-overview.png")).await;

    // The strategy page: a fill appears on its chart and in its trades.
    b.goto(&format!("{url}#/strategy/{grid}")).await;
    until_loaded(
        &b,
        "!!document.getElementById('price-chart')",
        "the strategy page",
    )
    .await;
    b.until(
        "return document.body.getAttribute('data-connected') === 'true';",
        json!([]),
        Duration::from_secs(5),
    )
    .await
    .expect("the push stream connected");
    let shown_before = b.count("#chart-fills li").await;
    assert_eq!(
        shown_before as i64,
        store.trade_count(grid).await.unwrap(),
        "the fills so far"
    );
    drive_a_fill(&ex, &store, grid, 2000).await;
    let fill = store.trading_history(Some(grid), 1).await.unwrap()[0].clone();
    b.until(
        "return document.querySelectorAll('#chart-fills li').length > arguments[0] \
            && Number(document.getElementById('price-chart').dataset.markers) > arguments[0] \
            && document.querySelector(`#trades tbody tr[data-trade='${arguments[1]}']`) !== null;",
        json!([shown_before, fill.id.unwrap().to_string()]),
        Duration::from_secs(5),
    )
    .await
    .expect("the fill on the chart and in the trades");
    let listed = b.text("#chart-fills li:first-child").await;
    assert!(listed.contains(&fill.side), "{listed}");
    let shown_price: f64 = fill.price.parse().unwrap();
    let trades = b.text("#trades tbody").await.replace(',', "");
    assert!(
        trades.contains(&format!("{}", shown_price.trunc() as i64)),
        "the fill's price {} in the trades: {trades}",
        fill.price
    );
    // The page then reads itself again with the fill on record (cards, cells, equity).
    let fills = store.trade_count(grid).await.unwrap();
    b.until(
        "const c = document.getElementById('fills-card'); \
         return document.getElementById('app').getAttribute('data-loaded') === 'true' \
            && !!c && c.getAttribute('data-fills') === String(arguments[0]) \
            && Number(document.getElementById('price-chart').dataset.markers) === arguments[0] \
            && document.querySelectorAll('#cells tr[data-cell]').length === 10 \
            && document.querySelectorAll('#chart-fills li').length === arguments[0];",
        json!([fills]),
        Duration::from_secs(5),
    )
    .await
    .expect("the cells and the fill after the page's refresh");
    save_png(&b, &screenshot_path(&db, "console-strategy.png")).await;

    // A fill with a transaction hash (as a live one has) links to the configured explorer, on
    // the chart's list and in the trades. (A row written beside the daemon: what is shown of a
    // live fill, without a chain.)
    let hash = format!("0x{}", "ab".repeat(32));
    sqlx::query(
        "INSERT INTO trades (strategy_id, order_id, side, price, base_amount, quote_amount, \
         fee_quote, realized_pnl, tx_hash, gas_fee, status, executed_at, gas_quote, gas_bnb_price) \
         VALUES ($1, NULL, 'sell', '106000', '0.0005', '53', '0.01', NULL, $2, '0.0001', 'filled', $3, '0.06', '600')",
    )
    .bind(other)
    .bind(&hash)
    .bind(now_ms())
    .execute(store.pool())
    .await
    .unwrap();
    b.goto(&format!("{url}#/strategy/{other}")).await;
    let link = format!("a[href='https://explorer.test/tx/{hash}']");
    b.until(
        "return document.querySelector(`#trades ${arguments[0]}`) !== null \
            && document.querySelector(`#chart-fills ${arguments[0]}`) !== null;",
        json!([link]),
        Duration::from_secs(10),
    )
    .await
    .expect("the fill's hash linked to the explorer");
    let gas = b.text("#trades tbody tr[data-side='sell']").await;
    assert!(gas.contains("0.0001 BNB"), "gas shown in BNB: {gas}");

    // Pause from the console: the database says paused, and so does `strategy status`.
    b.goto(&format!("{url}#/strategy/{grid}")).await;
    b.click(&format!(
        "button[data-action='pause'][data-strategy='{grid}']"
    ))
    .await;
    b.wait_for("#confirm-reason", Duration::from_secs(3)).await;
    // No reason: refused in the page, nothing sent.
    b.click("#confirm-ok").await;
    assert!(b.text("#confirm-error").await.contains("reason"));
    b.type_into("#confirm-reason", "console pause drill").await;
    b.click("#confirm-ok").await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let s = store
            .get_strategy(&bsc_bot::store::StrategyRef::Id(grid))
            .await
            .unwrap();
        if s.status == bsc_bot::strategy::StrategyStatus::Paused {
            break;
        }
        assert!(Instant::now() < deadline, "not paused: {:?}", s.status);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = db.run(&["--json", "strategy", "status", &grid.to_string()]);
    status.ok();
    assert_eq!(status.json()["strategy"]["status"], json!("paused"));
    let audit = store.audit_log(1).await.unwrap();
    assert_eq!(audit[0].command, "strategy pause");
    assert_eq!(audit[0].actor, "alice (console)");
    assert!(audit[0]
        .arguments
        .contains(&"console pause drill".to_string()));
    assert!(daemon
        .until(Duration::from_secs(5), || async {
            daemon.engine_status(grid).await.as_deref() == Some("paused")
        })
        .await
        .is_some());

    // The funds page reads (and says why it has no balances: the node is down).
    b.goto(&format!("{url}#/funds")).await;
    until_loaded(&b, "true", "the funds page").await;
    assert!(
        b.text("#balances-error").await.contains("rpc"),
        "{}",
        b.text("#app").await
    );
    assert!(b.count("#outflow tbody tr").await >= 1);
    save_png(&b, &screenshot_path(&db, "console-funds.png")).await;
    b.goto(&format!("{url}#/backtests")).await;
    until_loaded(&b, "true", "the backtests page").await;
    // The stored run with its figures; the sweep's heat map drawn (an SVG read with the token).
    assert_eq!(b.count("#backtests tbody tr[data-backtest]").await, 1);
    b.until(
        "const i = document.querySelector('[data-sweep] img.heatmap'); return !!i && i.complete && i.naturalWidth > 0;",
        json!([]),
        Duration::from_secs(5),
    )
    .await
    .expect("the sweep's heat map");
    b.click("#backtests tbody tr[data-backtest] a").await;
    b.until(
        "const i = document.querySelector('#backtest-detail img.chart-img'); return !!i && i.complete && i.naturalWidth > 0;",
        json!([]),
        Duration::from_secs(5),
    )
    .await
    .expect("the backtest's chart");
    save_png(&b, &screenshot_path(&db, "console-backtests.png")).await;

    // Emergency stop-all from the console: kill switch on, everything stopped, audited.
    b.goto(&url).await;
    b.click("#emergency-stop-all").await;
    b.type_into("#confirm-reason", "console emergency drill")
        .await;
    b.click("#confirm-ok").await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while !store.kill_switch().await.unwrap().engaged {
        assert!(Instant::now() < deadline, "kill switch not engaged");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for s in store.list_strategies(None).await.unwrap() {
        assert_eq!(
            s.status,
            bsc_bot::strategy::StrategyStatus::Stopped,
            "{}",
            s.name
        );
    }
    let audit = store.audit_log(1).await.unwrap();
    assert_eq!(audit[0].command, "emergency stop-all");
    assert_eq!(audit[0].actor, "alice (console)");
    assert_eq!(audit[0].outcome, "ok");
    assert!(audit[0]
        .arguments
        .contains(&"console emergency drill".to_string()));
    b.until(
        "return document.querySelector('#kill-switch') && document.querySelector('#kill-switch').textContent.includes('ENGAGED');",
        json!([]),
        Duration::from_secs(5),
    )
    .await
    .expect("the page shows the kill switch engaged");

    // The daemon restarted under the open page: the banner, then the page reconnects itself.
    let first_start: Value = b
        .eval(
            "return document.body.getAttribute('data-daemon-started');",
            json!([]),
        )
        .await;
    daemon.child.kill().unwrap();
    daemon.child.wait().unwrap();
    b.until(
        "return !document.getElementById('banner').hidden;",
        json!([]),
        Duration::from_secs(10),
    )
    .await
    .expect("the banner on a lost connection");
    assert!(b.text("#banner").await.contains("Reconnecting"));
    let daemon = RunningDaemon::start(&db, &config, &[]).await;
    assert_eq!(daemon.api, api);
    let back = b
        .until(
            "return document.getElementById('banner').hidden \
                && document.body.getAttribute('data-connected') === 'true' \
                && document.body.getAttribute('data-daemon-started') !== arguments[0];",
            json!([first_start]),
            Duration::from_secs(15),
        )
        .await;
    assert!(back.is_some(), "the page did not reconnect on its own");
    until_loaded(
        &b,
        "!!document.getElementById('strategies')",
        "the overview after the restart",
    )
    .await;
    // The login held across the restart (same tab).
    assert_eq!(b.count("#login-submit:not([hidden])").await, 0);
    drop(daemon);
    store.close().await;
}

/// Without a browser, on SQLite and PostgreSQL: the headers every answer carries, the assets,
/// each page's one call, the stream's first event and a pushed fill, and the controls'
/// refusals (each on record).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_routes_headers_and_refusals() {
    for kind in common::backends() {
        routes_headers_and_refusals(kind).await;
    }
}

async fn routes_headers_and_refusals(kind: &'static str) {
    let db = TestDb::new(kind).await;
    let ex = FakeBinance::start().await;
    let (config, api) = console_config(&db, &ex.url);
    let grid = create_grid(&db, "routes-grid");
    let _d = RunningDaemon::start(&db, &config, &[]).await;
    assert!(ex.wait_connections(0, Duration::from_secs(10)).await);
    let http = reqwest::Client::new();
    for path in [
        "/",
        "/console/",
        "/console/app.js",
        "/console/chart.js",
        "/console/app.css",
    ] {
        let r = get(&api, path, false).await;
        assert_eq!(r.status(), 200, "{path}");
        let h = r.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{csp}"
        );
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["cache-control"], "no-store");
    }
    // No inline script or style anywhere in the page.
    let page = get(&api, "/", false).await.text().await.unwrap();
    assert!(!page.contains("<script>") && !page.contains(" style=") && !page.contains("onclick"));
    // The API's JSON carries them too.
    let r = get(&api, "/api/v1/overview", true).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    let overview: Value = r.json().await.unwrap();
    assert_eq!(overview["strategies"][0]["id"], json!(grid));
    assert_eq!(overview["strategies"][0]["range"]["lower"], json!("100000"));
    // The stream: its first event says when this daemon started.
    let mut r = get(&api, "/api/v1/events", true).await;
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let first = tokio::time::timeout(Duration::from_secs(5), r.chunk())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let first = String::from_utf8_lossy(&first);
    assert!(first.starts_with("event: hello\ndata: {"), "{first}");
    // A fill on record reaches the open stream.
    ex.send(Cmd::Text(trade_frame(1, "105500", now_ms())));
    let store = db.store().await;
    drive_a_fill(&ex, &store, grid, 10).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen = String::new();
    while !seen.contains("event: fill\n") {
        assert!(Instant::now() < deadline, "no fill pushed: {seen}");
        if let Ok(Ok(Some(c))) = tokio::time::timeout(Duration::from_secs(1), r.chunk()).await {
            seen.push_str(&String::from_utf8_lossy(&c));
        }
    }
    drop(r);
    for path in [
        format!("/api/v1/strategies/{grid}/page"),
        "/api/v1/funds".to_string(),
        "/api/v1/backtests".to_string(),
        "/api/v1/audit".to_string(),
    ] {
        let r = get(&api, &path, true).await;
        assert_eq!(r.status(), 200, "{kind} {path}");
    }
    let page: Value = get(&api, &format!("/api/v1/strategies/{grid}/page"), true)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["levels"].as_array().unwrap().len(), 11);
    assert_eq!(page["cells"].as_array().unwrap().len(), 10);
    assert!(!page["trades"].as_array().unwrap().is_empty());
    assert_eq!(
        page["equity"].as_array().unwrap().len(),
        store.trade_count(grid).await.unwrap() as usize,
        "a point per fill"
    );

    let post = |path: &str, body: Value| {
        http.post(format!("http://{api}{path}"))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
    };
    let p = format!("/api/v1/strategies/{grid}/pause");
    let r = post(&p, json!({"actor": "bob", "via": "cli"}))
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "no reason");
    let refused = store.audit_log(1).await.unwrap();
    assert_eq!(refused[0].command, "strategy pause");
    assert_eq!(
        refused[0].actor, "bob (api)",
        "only the console or the API as sources"
    );
    assert_ne!(refused[0].outcome, "ok");
    let r = post(&p, json!({"reason": "x"})).await.unwrap();
    assert_eq!(r.status(), 400, "no operator name");
    let r = post(&p, json!({"reason": "x\u{1b}[2J", "actor": "bob"}))
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "control characters");
    let r = post(
        &format!("/api/v1/strategies/{grid}/explode"),
        json!({"reason": "x", "actor": "bob"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 404);
    let r = post(
        &format!("/api/v1/strategies/{grid}/resume"),
        json!({"reason": "x", "actor": "bob"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 409, "resume an active strategy");
    let audit = store.audit_log(1).await.unwrap();
    assert_eq!(audit[0].command, "strategy resume");
    assert_eq!(audit[0].actor, "bob (api)");
    assert_ne!(audit[0].outcome, "ok");
    // Stopping what is stopped is done already, as `strategy stop` says.
    for expected in [false, true] {
        let r = post(
            &format!("/api/v1/strategies/{grid}/stop"),
            json!({"reason": "end", "actor": "bob"}),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        assert_eq!(
            v["already_stopped"].as_bool().unwrap_or(false),
            expected,
            "{v}"
        );
    }
    let r = post(
        "/api/v1/risk/mode",
        json!({"mode": "sideways", "reason": "x", "actor": "bob"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    let r = post(
        "/api/v1/risk/mode",
        json!({"mode": "reducing", "reason": "calm down", "actor": "bob"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        store.trading_mode().await.unwrap().mode.as_str(),
        "reducing"
    );
    // A heat map's name is never a path.
    let r = get(&api, "/api/v1/sweeps/..%2F..%2Fetc/heatmap", true).await;
    assert_eq!(r.status(), 400);
    // `bot status` names the console.
    let status = db.run(&["--config", &config, "bot", "status"]);
    status.ok();
    assert!(
        status
            .stdout
            .contains(&format!("console     http://{api}/")),
        "{}",
        status.stdout
    );
    store.close().await;
}
