//! `strategy create|list|status|pause|resume|stop` through the real binary, on every backend.

#![allow(clippy::unwrap_used)]

mod common;

use common::{backends, create_grid, repo_path, TestDb, GRID_PARAMS};

#[tokio::test]
async fn create_list_status_roundtrip() {
    for kind in backends() {
        let db = TestDb::new(kind).await;
        let r = db.run(&[
            "strategy",
            "create",
            "-t",
            "grid",
            "-s",
            "btc/usdt",
            "-n",
            "g1",
            "-m",
            "paper",
            "-p",
            GRID_PARAMS,
        ]);
        r.ok();
        assert!(
            r.stdout
                .contains("created strategy 1 \"g1\": grid BTC/USDT paper, active"),
            "{kind}: {r:#?}"
        );

        let file = repo_path("strategies/btc-usdt-paper-grid.toml");
        let r = db.run(&[
            "--json",
            "strategy",
            "create",
            "--file",
            file.to_str().unwrap(),
        ]);
        let created = r.ok().json();
        assert_eq!(created["strategy"]["name"], "btc-usdt-paper-grid", "{kind}");
        assert_eq!(created["strategy"]["params"]["grid_count"], 21, "{kind}");
        assert_eq!(created["warnings"], serde_json::json!([]), "{kind}");

        // A flag overrides the file: same spec, another name, created paused.
        let r = db.run(&[
            "--json",
            "strategy",
            "create",
            "--file",
            file.to_str().unwrap(),
            "-n",
            "copy",
            "--paused",
        ]);
        assert_eq!(r.ok().json()["strategy"]["status"], "paused", "{kind}");

        let list = db.run(&["strategy", "list", "--json"]).ok().json();
        let names: Vec<&str> = list["strategies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["g1", "btc-usdt-paper-grid", "copy"], "{kind}");

        let paused = db
            .run(&["strategy", "list", "--status", "paused", "--json"])
            .ok()
            .json();
        assert_eq!(paused["strategies"].as_array().unwrap().len(), 1, "{kind}");

        let table = db.run(&["strategy", "list"]);
        table.ok();
        assert!(table.stdout.starts_with("ID  NAME"), "{kind}: {table:#?}");
        assert!(table.stdout.contains("btc-usdt-paper-grid"), "{kind}");

        let status = db.run(&["strategy", "status", "g1", "--json"]).ok().json();
        assert_eq!(status["strategy"]["id"], 1, "{kind}");
        assert_eq!(status["strategy"]["symbol"], "BTC/USDT", "{kind}");
        assert_eq!(
            status["strategy"]["params"]["lower_price"], "100000",
            "{kind}"
        );
        assert_eq!(status["pending_orders"], serde_json::json!([]), "{kind}");
        let human = db.run(&["strategy", "status", "1"]);
        assert!(
            human.ok().stdout.contains("status    active"),
            "{kind}: {human:#?}"
        );
    }
}

#[tokio::test]
async fn canary_spec_and_live_confirmation() {
    for kind in backends() {
        let db = TestDb::new(kind).await;
        let file = repo_path("strategies/canary-grid.toml");
        let f = file.to_str().unwrap();
        let before = db.snapshot().await;
        db.run(&["strategy", "create", "--file", f, "-m", "live"])
            .fails_with(1, "--confirm-live");
        assert_eq!(
            db.snapshot().await,
            before,
            "{kind}: refused live create changed the database"
        );
        // Confirmed, a live strategy still needs a wallet that exists (and, past that, tokens
        // and a pool on chain: tests/wallet_chain.rs).
        db.run(&[
            "strategy",
            "create",
            "--file",
            f,
            "-m",
            "live",
            "--confirm-live",
        ])
        .fails_with(1, "wallet: is required for a live strategy");
        db.run(&[
            "strategy",
            "create",
            "--file",
            f,
            "-m",
            "live",
            "--confirm-live",
            "--wallet",
            "nope",
        ])
        .fails_with(1, "no wallet named \"nope\"");
        db.run(&["strategy", "create", "--file", f, "--wallet", "nope"])
            .fails_with(1, "wallet: only live strategies trade from a wallet");
        assert_eq!(
            db.snapshot().await,
            before,
            "{kind}: refused live creates changed the database"
        );
        // The canary spec itself, as paper.
        let v = db
            .run(&["--json", "strategy", "create", "--file", f])
            .ok()
            .json();
        assert_eq!(v["strategy"]["mode"], "paper", "{kind}");
        assert_eq!(v["strategy"]["params"]["spacing"], "geometric", "{kind}");
        assert_eq!(
            v["strategy"]["params"]["stop_loss_price"], "95000",
            "{kind}"
        );
    }
}

#[tokio::test]
async fn unprofitable_cells_warn_but_create() {
    for kind in backends() {
        let db = TestDb::new(kind).await;
        let r = db.run(&[
            "strategy",
            "create",
            "-t",
            "grid",
            "-s",
            "BTC/USDT",
            "-n",
            "thin",
            "-p",
            r#"{"lower_price":"100","upper_price":"101","grid_count":5,"base_order_size":"1"}"#,
        ]);
        r.ok();
        assert!(
            r.stderr
                .contains("warning: 4 of 4 grid cells cannot cover the 25 bps fee"),
            "{kind}: {r:#?}"
        );
        assert!(r.stderr.contains("#0 [100, 100.25]"), "{kind}: {r:#?}");
    }
}

/// A grid without its own `fee_bps` pays the configured pool's fee (`BSC_BOT_DEX_FEE_BPS`, here
/// 30 as on Uniswap V2), in `strategy create` and `backtest quick-grid` alike; its own wins.
#[tokio::test]
async fn the_pool_fee_is_the_default_fee() {
    let db = TestDb::new("sqlite").await;
    let create = |name: &str, params: &str| {
        let out = db
            .cmd(&[
                "--json", "strategy", "create", "-t", "grid", "-s", "BTC/USDT", "-n", name, "-p",
                params,
            ])
            .env("BSC_BOT_DEX_FEE_BPS", "30")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let v = create(
        "pool-fee",
        r#"{"lower_price":"100","upper_price":"110","grid_count":5,"base_order_size":"10"}"#,
    );
    assert_eq!(v["strategy"]["params"]["fee_bps"], 30, "{v}");
    let v = create(
        "own-fee",
        r#"{"lower_price":"100","upper_price":"110","grid_count":5,"base_order_size":"10","fee_bps":10}"#,
    );
    assert_eq!(v["strategy"]["params"]["fee_bps"], 10, "{v}");
}

#[tokio::test]
async fn invalid_create_inputs_are_rejected_and_change_nothing() {
    let bad_params = |json: &str| json.to_string();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            grid_args(
                "a",
                &bad_params(
                    r#"{"lower_price":"110000","upper_price":"100000","grid_count":5,"base_order_size":"1"}"#,
                ),
            ),
            "params.upper_price: must be greater than lower_price (110000), got 100000",
        ),
        (
            grid_args(
                "a",
                &bad_params(
                    r#"{"lower_price":"100","upper_price":"100","grid_count":5,"base_order_size":"1"}"#,
                ),
            ),
            "params.upper_price",
        ),
        (
            grid_args(
                "a",
                &bad_params(
                    r#"{"lower_price":"1","upper_price":"2","grid_count":1,"base_order_size":"1"}"#,
                ),
            ),
            "params.grid_count: must be in 2..=500, got 1",
        ),
        (
            grid_args(
                "a",
                &bad_params(
                    r#"{"lower_price":"1","upper_price":"2","grid_count":501,"base_order_size":"1"}"#,
                ),
            ),
            "params.grid_count: must be in 2..=500, got 501",
        ),
        (
            grid_args(
                "a",
                &bad_params(
                    r#"{"lower_price":"1","upper_price":"2","grid_count":3,"base_order_size":"0"}"#,
                ),
            ),
            "params.base_order_size: must be > 0",
        ),
        (
            grid_args(
                "a",
                &bad_params(
                    r#"{"lower_price":"1","upper_price":"2","grid_count":3,"base_order_size":"-5"}"#,
                ),
            ),
            "params.base_order_size: must be > 0",
        ),
        (
            grid_args(
                "a",
                &bad_params(
                    r#"{"lower_price":"1.2.3","upper_price":"2","grid_count":3,"base_order_size":"1"}"#,
                ),
            ),
            "params.lower_price: \"1.2.3\" is not a decimal number",
        ),
        (
            grid_args(
                "a",
                &bad_params(
                    r#"{"lower_price":"1","upper_price":"2","grid_count":3,"base_order_size":"1","grid_cout":4}"#,
                ),
            ),
            "params.grid_cout: unknown key; did you mean \"grid_count\"?",
        ),
        (
            // Everything wrong is reported at once, each named; a huge number is out of range,
            // not "not a decimal".
            grid_args(
                "a",
                &bad_params(
                    r#"{"lower_price":"1e32","upper_price":"2","grid_cout":3,"base_order_size":"-1"}"#,
                ),
            ),
            "params: 4 problems: params.lower_price: \"1e32\" is out of range (an exact decimal has \
             at most 28 significant digits, below 7.9e28); params.grid_count: is required (an integer); \
             params.grid_cout: unknown key; did you mean \"grid_count\"?",
        ),
        (
            grid_args(
                "a",
                &bad_params(r#"{"lower_price":"1","upper_price":"2","grid_count":3}"#),
            ),
            "params.base_order_size: is required",
        ),
        (
            grid_args(
                "a",
                &bad_params(
                    r#"{"lower_price":"1","upper_price":"2","grid_count":3,"base_order_size":"1""#,
                ),
            ),
            "params is not valid JSON",
        ),
        (grid_args("a", "[1,2]"), "params: expected a JSON object"),
        (
            args(&[
                "strategy",
                "create",
                "-t",
                "dca",
                "-s",
                "BTC/USDT",
                "-n",
                "a",
                "-p",
                GRID_PARAMS,
            ]),
            "unknown strategy type \"dca\"; known types: grid",
        ),
        (
            args(&[
                "strategy",
                "create",
                "-t",
                "grid",
                "-s",
                "BTCUSDT",
                "-n",
                "a",
                "-p",
                GRID_PARAMS,
            ]),
            "symbol: symbol \"BTCUSDT\" is not BASE/QUOTE",
        ),
        (
            args(&[
                "strategy",
                "create",
                "-t",
                "grid",
                "-s",
                "BTC/USDT",
                "-n",
                "a",
                "-m",
                "yolo",
                "-p",
                GRID_PARAMS,
            ]),
            "mode: mode \"yolo\" is not one of: paper, live",
        ),
        (
            args(&[
                "strategy",
                "create",
                "-t",
                "grid",
                "-s",
                "BTC/USDT",
                "-p",
                GRID_PARAMS,
            ]),
            "name: is required",
        ),
        (
            args(&[
                "strategy",
                "create",
                "-t",
                "grid",
                "-s",
                "BTC/USDT",
                "-n",
                "42",
                "-p",
                GRID_PARAMS,
            ]),
            "must not be a bare number",
        ),
        (
            args(&[
                "strategy",
                "create",
                "-t",
                "grid",
                "-s",
                "BTC/USDT",
                "-n",
                "two  spaces",
                "-p",
                GRID_PARAMS,
            ]),
            "name: \"two  spaces\" must be 1 to 64 characters",
        ),
        (
            args(&[
                "strategy",
                "create",
                "-t",
                "grid",
                "-s",
                "BTC/USDT",
                "-n",
                "a",
                "-m",
                "live",
                "-p",
                GRID_PARAMS,
            ]),
            "add --confirm-live",
        ),
        (
            args(&["strategy", "create", "--file", "/nonexistent/x.toml"]),
            "cannot read strategy file /nonexistent/x.toml",
        ),
        (
            args(&[
                "strategy",
                "create",
                "-t",
                "grid",
                "-s",
                "BTC/USDT",
                "-n",
                "existing",
                "-p",
                GRID_PARAMS,
            ]),
            "a strategy named \"existing\" already exists",
        ),
    ];
    for kind in backends() {
        let db = TestDb::new(kind).await;
        create_grid(&db, "existing");
        let before = db.snapshot().await;
        for (argv, message) in &cases {
            let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
            db.run(&argv).fails_with(1, message);
            assert_eq!(
                db.snapshot().await,
                before,
                "{kind}: {argv:?} changed the database"
            );
        }
        // Failed attempts are in the audit log with their reason.
        let store = db.store().await;
        let audit = store.audit_log(100).await.unwrap();
        let failed: Vec<_> = audit.iter().filter(|a| a.outcome == "error").collect();
        assert_eq!(
            failed.len(),
            cases.len(),
            "{kind}: every failed create is audited"
        );
        assert!(
            failed.iter().all(|a| a.command == "strategy create"),
            "{kind}"
        );
        assert!(
            failed
                .iter()
                .any(|a| a.detail.as_deref().unwrap_or("").contains("grid_count")),
            "{kind}"
        );
    }
}

#[tokio::test]
async fn bad_toml_spec_names_the_problem() {
    for kind in backends() {
        let db = TestDb::new(kind).await;
        let file = db.dir.path().join("bad.toml");
        std::fs::write(
            &file,
            "name = \"x\"\ntype = \"grid\"\nsymbol = \"BTC/USDT\"\ncolour = \"red\"\n[params]\n",
        )
        .unwrap();
        db.run(&["strategy", "create", "--file", file.to_str().unwrap()])
            .fails_with(1, "colour: unknown key");
        std::fs::write(&file, "name = \n").unwrap();
        db.run(&["strategy", "create", "--file", file.to_str().unwrap()])
            .fails_with(1, "is not valid TOML");
        assert_eq!(
            db.store().await.list_strategies(None).await.unwrap().len(),
            0,
            "{kind}"
        );
    }
}

#[tokio::test]
async fn lifecycle_transitions_and_invalid_ones() {
    for kind in backends() {
        let db = TestDb::new(kind).await;
        let id = create_grid(&db, "life").to_string();
        let id = id.as_str();

        let before = db.snapshot().await;
        db.run(&["strategy", "resume", id])
            .fails_with(1, "cannot resume a strategy that is active");
        assert_eq!(db.snapshot().await, before, "{kind}");

        let r = db.run(&["strategy", "pause", id, "--reason", "volatility"]);
        assert!(r.ok().stdout.contains("active -> paused"), "{kind}: {r:#?}");
        let s = db.run(&["strategy", "status", id, "--json"]).ok().json();
        assert_eq!(s["strategy"]["status"], "paused", "{kind}");
        assert_eq!(s["strategy"]["status_reason"], "volatility", "{kind}");

        let before = db.snapshot().await;
        db.run(&["strategy", "pause", id])
            .fails_with(1, "cannot pause a strategy that is paused");
        assert_eq!(db.snapshot().await, before, "{kind}");

        let v = db
            .run(&["--json", "strategy", "resume", "life"])
            .ok()
            .json();
        assert_eq!(
            (v["from"].as_str(), v["to"].as_str()),
            (Some("paused"), Some("active")),
            "{kind}"
        );

        db.run(&["strategy", "stop", id]).ok();
        let before = db.snapshot().await;
        for action in ["pause", "resume"] {
            db.run(&["strategy", action, id])
                .fails_with(1, &format!("cannot {action} a strategy that is stopped"));
        }
        // Stopping it again is a no-op that says so, exit 0 (emergency loops stop every id).
        let again = db.run(&["strategy", "stop", id]);
        assert!(
            again
                .ok()
                .stdout
                .contains("is already stopped; nothing to do"),
            "{kind}"
        );
        let v = db.run(&["--json", "strategy", "stop", id]).ok().json();
        assert_eq!(v["already_stopped"], true, "{kind}");
        db.run(&["strategy", "pause", "999"])
            .fails_with(1, "strategy 999 not found");
        db.run(&["strategy", "stop", "nosuch"])
            .fails_with(1, "strategy \"nosuch\" not found");
        db.run(&["strategy", "status", "999"])
            .fails_with(1, "strategy 999 not found");
        assert_eq!(db.snapshot().await, before, "{kind}");

        // A stopped strategy frees its name.
        create_grid(&db, "life");

        let store = db.store().await;
        let audit = store.audit_log(100).await.unwrap();
        let ok: Vec<&str> = audit
            .iter()
            .rev()
            .filter(|a| a.outcome == "ok")
            .map(|a| a.command.as_str())
            .collect();
        assert_eq!(
            ok,
            [
                "strategy create",
                "strategy pause",
                "strategy resume",
                "strategy stop",
                "strategy create"
            ],
            "{kind}"
        );
        let pause = audit
            .iter()
            .find(|a| a.command == "strategy pause" && a.outcome == "ok")
            .unwrap();
        assert_eq!(
            pause.arguments,
            ["strategy", "pause", id, "--reason", "volatility"],
            "{kind}"
        );
    }
}

#[tokio::test]
async fn stop_cancels_only_that_strategys_orders() {
    for kind in backends() {
        let db = TestDb::new(kind).await;
        let a = create_grid(&db, "a");
        let b = create_grid(&db, "b");
        let store = db.store().await;
        for (sid, n) in [(a, 3), (b, 2)] {
            for i in 0..n {
                store.insert_order(&order(sid, i), 1).await.unwrap();
            }
        }
        let v = db
            .run(&["--json", "strategy", "stop", &a.to_string()])
            .ok()
            .json();
        assert_eq!(
            v["cancelled_orders"],
            serde_json::json!([1, 2, 3]),
            "{kind}"
        );
        let pending = store
            .list_orders(None, Some(bsc_bot::store::OrderStatus::Pending))
            .await
            .unwrap();
        assert_eq!(
            pending.iter().map(|o| o.strategy_id).collect::<Vec<_>>(),
            [b, b],
            "{kind}"
        );
    }
}

#[tokio::test]
async fn conditional_list_and_cancel() {
    for kind in backends() {
        let db = TestDb::new(kind).await;
        let a = create_grid(&db, "a");
        let store = db.store().await;
        let o1 = store.insert_order(&order(a, 0), 1).await.unwrap();
        let o2 = store.insert_order(&order(a, 1), 1).await.unwrap();
        let listed = db
            .run(&[
                "strategy",
                "conditional",
                "list",
                "--strategy-id",
                &a.to_string(),
                "--json",
            ])
            .ok()
            .json();
        assert_eq!(listed["orders"].as_array().unwrap().len(), 2, "{kind}");
        assert_eq!(listed["orders"][0]["trigger_price"], "100000", "{kind}");

        db.run(&["strategy", "conditional", "cancel", &o1.to_string()])
            .ok();
        let before = db.snapshot().await;
        db.run(&["strategy", "conditional", "cancel", &o1.to_string()])
            .fails_with(1, "is cancelled, only pending orders can be cancelled");
        db.run(&["strategy", "conditional", "cancel", "999"])
            .fails_with(1, "order 999 not found");
        assert_eq!(db.snapshot().await, before, "{kind}");
        let pending = db
            .run(&["strategy", "conditional", "list", "--json"])
            .ok()
            .json();
        let ids: Vec<i64> = pending["orders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["id"].as_i64().unwrap())
            .collect();
        assert_eq!(ids, [o2], "{kind}");
        let all = db
            .run(&["strategy", "conditional", "list", "--all", "--json"])
            .ok()
            .json();
        assert_eq!(all["orders"].as_array().unwrap().len(), 2, "{kind}");
    }
}

#[tokio::test]
async fn usage_errors_exit_1() {
    let db = TestDb::new("sqlite").await;
    let r = db.run(&["strategy", "list", "--status", "running"]);
    assert_eq!(r.code, Some(1), "{r:#?}");
    assert!(r.stderr.contains("invalid value 'running'"), "{r:#?}");
    let r = db.run(&["strategy", "frobnicate"]);
    assert_eq!(r.code, Some(1), "{r:#?}");
    let r = db.run(&["--help"]);
    assert_eq!(r.code, Some(0), "{r:#?}");
}

#[tokio::test]
async fn unreachable_database_is_a_runtime_failure() {
    let db = TestDb::new("sqlite").await;
    let r = db
        .cmd(&["--json", "strategy", "list"])
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .env("BSC_BOT_DATABASE_BUSY_TIMEOUT_MS", "500")
        .output()
        .unwrap();
    let r = common::Run::from(r);
    assert_eq!(r.code, Some(2), "{r:#?}");
    let v = r.json();
    assert_eq!(v["error"]["kind"], "runtime_failure", "{r:#?}");
    assert!(
        r.stderr.contains("cannot connect to the database"),
        "{r:#?}"
    );
    // It names where, and why (not only the pool's "timed out").
    assert!(r.stderr.contains("127.0.0.1:1"), "{r:#?}");
    assert!(!r.stderr.contains("pool timed out"), "{r:#?}");
}

/// Warnings on a stderr that is not a terminal carry no colour codes.
#[tokio::test]
async fn cli_messages_on_a_pipe_carry_no_colour_codes() {
    let db = TestDb::new("sqlite").await;
    let r = db.run(&["--log-level", "debug", "strategy", "list"]);
    assert!(!r.stderr.is_empty(), "something is logged at debug");
    assert!(!r.stderr.contains('\u{1b}'), "{r:#?}");
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

fn grid_args(name: &str, params: &str) -> Vec<String> {
    args(&[
        "strategy", "create", "-t", "grid", "-s", "BTC/USDT", "-n", name, "-p", params,
    ])
}

pub fn order(strategy_id: i64, cell: i64) -> bsc_bot::store::PlacedOrder {
    bsc_bot::store::PlacedOrder {
        strategy_id,
        client_order_id: format!("s{strategy_id}-c{cell}-b"),
        kind: "limit".into(),
        side: "buy".into(),
        trigger_price: Some((100_000 + cell * 1000).to_string()),
        quote_amount: Some("50".into()),
        base_amount: None,
        cell: Some(cell),
        tag: None,
        status: "pending",
    }
}

/// Runbook parity: `strategy create -n "Canary Grid V2" -p '{"grid_count":5,"base_order_size":"10"}'`
/// — a name with spaces, and a range centred on the current price ± 5 % (or `range_pct`).
#[tokio::test]
async fn a_grid_without_prices_is_centred_on_the_current_price() {
    let db = TestDb::new("sqlite").await;
    let create = |name: &str, params: &str| {
        db.run(&[
            "--json", "strategy", "create", "-t", "grid", "-s", "BTC/USDT", "-n", name, "-m",
            "paper", "-p", params,
        ])
    };
    let params = r#"{"grid_count":5,"base_order_size":"10"}"#;
    create("Canary Grid V2", params).fails_with(1, "no current price of BTC/USDT");
    // The latest data: its last close is 119,231.36.
    let data = db.dir.path().join("backtest-data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::copy(
        common::repo_path("tests/data/BTCUSDT-1m-2025-08-01_to_2025-08-11.csv"),
        data.join("BTCUSDT-1m-2025-08-01_to_2025-08-11.csv"),
    )
    .unwrap();
    let out = create("Canary Grid V2", params).ok().json();
    assert_eq!(out["strategy"]["name"], "Canary Grid V2");
    assert_eq!(out["strategy"]["params"]["lower_price"], "113269.792");
    assert_eq!(out["strategy"]["params"]["upper_price"], "125192.928");
    let note = out["centred_range"].as_str().unwrap();
    assert!(
        note.starts_with("range 113269.792 .. 125192.928: 119231.36 ± 5 % (the latest data"),
        "{note}"
    );
    let out = create(
        "Canary Grid V3",
        r#"{"grid_count":5,"base_order_size":"10","range_pct":"2"}"#,
    )
    .ok()
    .json();
    assert_eq!(out["strategy"]["params"]["lower_price"], "116846.7328");
    assert!(out["strategy"]["params"].get("range_pct").is_none());
    // The human output prints the range.
    let text = db
        .run(&[
            "strategy",
            "create",
            "-t",
            "grid",
            "-s",
            "BTC/USDT",
            "-n",
            "Canary Grid V4",
            "-p",
            params,
        ])
        .ok()
        .stdout
        .clone();
    assert!(text.contains("range 113269.792 .. 125192.928"), "{text}");
    create(
        "bad",
        r#"{"grid_count":5,"base_order_size":"10","range_pct":"150"}"#,
    )
    .fails_with(1, "params.range_pct");
}

/// Issue 12: `strategy create` warns when a cell is narrower than a round trip's cost in the pool
/// paper fills through (`market.paper_fill_model = "amm"`).
#[tokio::test]
async fn create_warns_about_cells_narrower_than_a_pool_round_trip() {
    let db = TestDb::new("sqlite").await;
    let narrow = r#"{"lower_price":"115000","upper_price":"115100","grid_count":11,"base_order_size":"100"}"#;
    let out = db
        .cmd(&[
            "--json", "strategy", "create", "-t", "grid", "-s", "BTC/USDT", "-n", "narrow", "-p",
            narrow,
        ])
        .env("BSC_BOT_MARKET_PAPER_FILL_MODEL", "amm")
        .env("BSC_BOT_MARKET_PAPER_POOL_RESERVES", "2:230000")
        .output()
        .unwrap();
    assert!(out.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        doc["warnings"]
            .to_string()
            .contains("below a round trip's cost in this pool"),
        "{doc}"
    );
    // A wide grid in the same pool: no such warning.
    let wide = r#"{"lower_price":"100000","upper_price":"130000","grid_count":11,"base_order_size":"100"}"#;
    let out = db
        .cmd(&[
            "--json", "strategy", "create", "-t", "grid", "-s", "BTC/USDT", "-n", "wide", "-p",
            wide,
        ])
        .env("BSC_BOT_MARKET_PAPER_FILL_MODEL", "amm")
        .env("BSC_BOT_MARKET_PAPER_POOL_RESERVES", "2:230000")
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        !doc["warnings"].to_string().contains("round trip's cost"),
        "{doc}"
    );
}
