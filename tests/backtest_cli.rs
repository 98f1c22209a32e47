//! `backtest run|quick-grid|show|list` through the real binary on real Binance data from
//! `tests/data` (see its SOURCES.md). A missing data folder is a failure, not a skip.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use common::{backends, TestDb};

fn shared(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    assert!(
        p.exists(),
        "real market data missing: {} (tests/data is part of the repository)",
        p.display()
    );
    p
}

const GRID_AUG: &str = r#"{"lower_price":"112000","upper_price":"119000","grid_count":8,"base_order_size":"100","spacing":"geometric"}"#;
const GRID_APR: &str = r#"{"lower_price":"28100","upper_price":"28200","grid_count":11,"base_order_size":"100","fee_bps":0}"#;

fn run_bt(db: &TestDb, params: &str, data: &Path, extra: &[&str]) -> common::Run {
    let mut args = vec![
        "--json",
        "backtest",
        "run",
        "-t",
        "grid",
        "-s",
        "BTC/USDT",
        "-p",
        params,
        "--data",
        data.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    db.run(&args)
}

fn without_run_identity(mut v: serde_json::Value) -> serde_json::Value {
    for k in ["id", "fills_csv", "chart"] {
        v.as_object_mut().unwrap().remove(k);
    }
    v
}

#[tokio::test]
async fn same_run_twice_is_byte_identical() {
    let db = TestDb::new("sqlite").await;
    for (params, file) in [
        (GRID_AUG, "BTCUSDT-1m-2025-08-01_to_2025-08-11.csv"),
        (GRID_APR, "BTCUSDT-trades-2023-04-05.from-ws.csv"),
    ] {
        let a = run_bt(&db, params, &shared(file), &[]);
        let b = run_bt(&db, params, &shared(file), &[]);
        let (ja, jb) = (a.ok().json(), b.ok().json());
        assert_ne!(ja["id"], jb["id"]);
        let fa = std::fs::read(ja["fills_csv"].as_str().unwrap()).unwrap();
        let fb = std::fs::read(jb["fills_csv"].as_str().unwrap()).unwrap();
        assert!(fa.len() > 200, "fills csv should have rows");
        assert_eq!(fa, fb, "{file}: fills CSV differs between identical runs");
        let (sa, sb) = (without_run_identity(ja), without_run_identity(jb));
        assert_eq!(
            serde_json::to_string(&sa).unwrap(),
            serde_json::to_string(&sb).unwrap()
        );
    }
}

#[tokio::test]
async fn delayed_failing_venue_is_byte_identical_and_reported() {
    let db = TestDb::new("sqlite").await;
    let data = shared("BTCUSDT-1m-2025-08-01_to_2025-08-11.csv");
    let delayed = |seed: &'static str| {
        [
            "--latency-ms",
            "2000",
            "--fail-rate",
            "0.3",
            "--reject-rate",
            "0.2",
            "--seed",
            seed,
        ]
    };
    let flags = delayed("7");
    let a = run_bt(&db, GRID_AUG, &data, &flags);
    let b = run_bt(&db, GRID_AUG, &data, &flags);
    let (ja, jb) = (a.ok().json(), b.ok().json());
    let fa = std::fs::read(ja["fills_csv"].as_str().unwrap()).unwrap();
    let fb = std::fs::read(jb["fills_csv"].as_str().unwrap()).unwrap();
    assert_eq!(fa, fb, "fills CSV differs between identical delayed runs");
    let (sa, sb) = (without_run_identity(ja), without_run_identity(jb));
    assert_eq!(
        serde_json::to_string(&sa).unwrap(),
        serde_json::to_string(&sb).unwrap()
    );
    let venue = &sa["venue"];
    assert_eq!(venue["latency_ms"], 2000);
    assert_eq!(venue["seed"], 7);
    assert!(venue["failed_retryable"].as_u64().unwrap() > 0, "{venue}");
    assert!(venue["failed_permanent"].as_u64().unwrap() > 0, "{venue}");
    // Another seed fails other orders; the instant venue has no venue section at all.
    let c = run_bt(&db, GRID_AUG, &data, &delayed("8"));
    assert_ne!(without_run_identity(c.ok().json())["venue"], sa["venue"]);
    let plain = run_bt(&db, GRID_AUG, &data, &[]);
    assert!(plain.ok().json().get("venue").is_none());
    run_bt(&db, GRID_AUG, &data, &["--fail-rate", "1.5"])
        .fails_with(1, "--fail-rate 1.5: must be between 0 and 1");
    run_bt(
        &db,
        GRID_AUG,
        &data,
        &["--fail-rate", "0.7", "--reject-rate", "0.5"],
    )
    .fails_with(1, "must not exceed 1");
}

#[tokio::test]
async fn result_fields_and_outputs() {
    let db = TestDb::new("sqlite").await;
    let data = shared("BTCUSDT-1m-2025-08-01_to_2025-08-11.csv");
    let v = run_bt(&db, GRID_AUG, &data, &[]).ok().json();
    for key in [
        "id",
        "ticks",
        "fills",
        "round_trips",
        "realized_pnl",
        "fees",
        "final_base",
        "final_quote",
        "final_equity",
        "total_return_pct",
        "max_drawdown_pct",
        "sharpe",
        "win_rate",
    ] {
        assert!(v.get(key).is_some(), "missing {key}: {v}");
    }
    for key in [
        "realized_pnl",
        "fees",
        "final_base",
        "final_quote",
        "final_equity",
        "total_return_pct",
        "max_drawdown_pct",
        "sharpe",
        "win_rate",
    ] {
        assert!(v[key].is_string(), "{key} must be a decimal string: {v}");
    }
    // 14,401 one-minute bars give four prices each.
    assert_eq!(v["ticks"], 14_401 * 4);
    assert_eq!(v["data"]["rows"], 14_401);
    assert_eq!(v["data"]["format"], "kline12");
    assert_eq!(v["data"]["gaps"], 0);
    let fills = v["fills"].as_u64().unwrap();
    assert!(fills > 10 && v["round_trips"].as_u64().unwrap() > 5, "{v}");
    let csv = std::fs::read_to_string(v["fills_csv"].as_str().unwrap()).unwrap();
    assert_eq!(
        csv.lines().count() as u64,
        fills + 1,
        "one row per fill plus the header"
    );
    assert!(csv.starts_with("time,ts_us,side,type,cell,price,"));
    let svg = std::fs::read_to_string(v["chart"].as_str().unwrap()).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("equity") && svg.trim_end().ends_with("</svg>")
    );
    // final_equity = final_quote + final_base × final_price, exactly.
    let dec = |k: &str| {
        v[k].as_str()
            .unwrap()
            .parse::<rust_decimal::Decimal>()
            .unwrap()
    };
    assert_eq!(
        dec("final_equity"),
        dec("final_quote") + dec("final_base") * dec("final_price")
    );
    // Human output names the outputs.
    let h = db.run(&[
        "backtest",
        "run",
        "-t",
        "grid",
        "-s",
        "BTC/USDT",
        "-p",
        GRID_AUG,
        "--data",
        data.to_str().unwrap(),
    ]);
    assert!(
        h.ok().stdout.contains("fills csv") && h.stdout.contains("equity.svg"),
        "{h:#?}"
    );
}

#[tokio::test]
async fn every_format_with_or_without_header_in_ms_or_us() {
    let db = TestDb::new("sqlite").await;
    let dir = db.dir.path();
    // 6-column OHLCV: 30 days of ETH.
    let v = db
        .run(&[
            "--json",
            "backtest",
            "run",
            "-t",
            "grid",
            "-s",
            "ETH/USDT",
            "-p",
            r#"{"lower_price":"2100","upper_price":"2900","grid_count":17,"base_order_size":"50"}"#,
            "--data",
            shared("ETHUSDT-1m-2025-06-01_to_2025-06-04.ohlcv.csv")
                .to_str()
                .unwrap(),
        ])
        .ok()
        .json();
    assert_eq!(v["data"]["format"], "kline6");
    assert_eq!(v["ticks"], 4_320 * 4);

    // Trades, as in the archive.
    let trades = shared("BTCUSDT-trades-2023-04-05.from-ws.csv");
    let base = run_bt(&db, GRID_APR, &trades, &[]).ok().json();
    assert_eq!(base["ticks"], 3_144);
    assert_eq!(base["data"]["format"], "trades");

    // The same trades with a header and microsecond timestamps (Binance's 2025+ layout): same result.
    let text = std::fs::read_to_string(&trades).unwrap();
    let mut us = String::from("id,price,qty,quote_qty,time,is_buyer_maker,is_best_match\n");
    let mut agg = String::from("agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker,is_best_match\n");
    for line in text.lines() {
        let f: Vec<&str> = line.split(',').collect();
        us.push_str(&format!(
            "{},{},{},{},{}000,{},{}\n",
            f[0], f[1], f[2], f[3], f[4], f[5], f[6]
        ));
        agg.push_str(&format!(
            "{},{},{},{},{},{},{},{}\n",
            f[0], f[1], f[2], f[0], f[0], f[4], f[5], f[6]
        ));
    }
    let us_path = dir.join("BTCUSDT-trades-us.csv");
    std::fs::write(&us_path, us).unwrap();
    let v = run_bt(&db, GRID_APR, &us_path, &[]).ok().json();
    assert_eq!(v["data"]["first_ts_us"], base["data"]["first_ts_us"]);
    for k in [
        "ticks",
        "fills",
        "realized_pnl",
        "final_equity",
        "final_base",
    ] {
        assert_eq!(v[k], base[k], "{k}");
    }
    let agg_path = dir.join("BTCUSDT-aggTrades.csv");
    std::fs::write(&agg_path, agg).unwrap();
    let v = run_bt(&db, GRID_APR, &agg_path, &[]).ok().json();
    assert_eq!(v["data"]["format"], "agg_trades");
    assert_eq!(v["realized_pnl"], base["realized_pnl"]);
}

#[tokio::test]
async fn bad_rows_name_file_and_line_and_gaps_are_reported() {
    let db = TestDb::new("sqlite").await;
    let src = std::fs::read_to_string(shared("BTCUSDT-1m-2025-08-01_to_2025-08-11.csv")).unwrap();
    let mut lines: Vec<String> = src.lines().map(str::to_string).collect();
    lines[99] = lines[99].replacen(',', ",oops", 2);
    // Drop bars 200..210 (10 missing minutes) to make a gap.
    lines.drain(200..210);
    let path = db.dir.path().join("BTCUSDT-1m-broken.csv");
    std::fs::write(&path, lines.join("\n")).unwrap();
    let r = run_bt(&db, GRID_AUG, &path, &[]);
    r.fails_with(1, &format!("{}:100:", path.display()));
    assert!(r.stderr.contains("is not a positive decimal"), "{r:#?}");
    let v = run_bt(&db, GRID_AUG, &path, &["--skip-bad-rows"])
        .ok()
        .json();
    assert_eq!(v["data"]["bad_rows_skipped"], 1);
    // The skipped row leaves a one-minute hole of its own.
    assert_eq!(v["data"]["gaps"], 2);
    assert_eq!(v["data"]["missing"], 11);
    assert_eq!(v["data"]["rows"], 14_401 - 10 - 1);

    run_bt(&db, GRID_AUG, Path::new("/nonexistent/data.csv"), &[])
        .fails_with(1, "/nonexistent/data.csv");
    run_bt(&db, r#"{"lower_price":"1"}"#, &path, &[])
        .fails_with(1, "params.upper_price: is required");
}

#[tokio::test]
async fn from_to_window() {
    let db = TestDb::new("sqlite").await;
    let data = shared("BTCUSDT-1m-2025-08-01_to_2025-08-11.csv");
    let v = run_bt(
        &db,
        GRID_AUG,
        &data,
        &["--from", "2025-08-02", "--to", "2025-08-03T00:00:00Z"],
    )
    .ok()
    .json();
    assert_eq!(v["data"]["rows"], 1440, "one day of minutes");
    assert_eq!(v["data"]["first_ts_us"], 1_754_092_800_000_000i64);
    run_bt(&db, GRID_AUG, &data, &["--from", "yesterday"]).fails_with(1, "--from \"yesterday\"");
    run_bt(&db, GRID_AUG, &data, &["--from", "2030-01-01"])
        .fails_with(1, "no prices in the data within --from/--to");
}

#[tokio::test]
async fn quick_grid_uses_the_last_days_of_the_symbols_data() {
    let db = TestDb::new("sqlite").await;
    let bd = db.dir.path().join("backtest-data/BTCUSDT");
    std::fs::create_dir_all(&bd).unwrap();
    std::fs::copy(
        shared("BTCUSDT-1m-2025-08-01_to_2025-08-11.csv"),
        bd.join("BTCUSDT-1m-2025-08.csv"),
    )
    .unwrap();
    std::fs::copy(
        shared("ETHUSDT-1m-2025-06-01_to_2025-06-04.ohlcv.csv"),
        db.dir.path().join("backtest-data/ETHUSDT-1m-2025-06.csv"),
    )
    .unwrap();
    let v = db
        .run(&[
            "--json",
            "backtest",
            "quick-grid",
            "-s",
            "BTC/USDT",
            "--days",
            "7",
            "--grid-count",
            "5",
        ])
        .ok()
        .json();
    // The file ends at 2025-08-11 00:00; seven days back is 2025-08-04 00:00.
    assert_eq!(v["data"]["first_ts_us"], 1_754_265_600_000_000i64);
    assert_eq!(v["data"]["rows"], 7 * 1440 + 1);
    // Range = first price of the window (the 2025-08-04 00:00 bar opens at 114208.81) ± 5 %.
    assert_eq!(v["params"]["lower_price"], "108498.3695");
    assert_eq!(v["params"]["upper_price"], "119919.2505");
    assert_eq!(v["params"]["grid_count"], 5);
    db.run(&["backtest", "quick-grid", "-s", "SOL/USDT", "--days", "7"])
        .fails_with(1, "no SOLUSDT-*.csv files");
}

#[tokio::test]
async fn stored_runs_show_and_list_on_every_backend() {
    for kind in backends() {
        let db = TestDb::new(kind).await;
        let data = shared("BTCUSDT-trades-2023-04-05.from-ws.csv");
        let run = run_bt(&db, GRID_APR, &data, &[]).ok().json();
        let id = run["id"].as_i64().unwrap();
        let shown = db
            .run(&["--json", "backtest", "show", &id.to_string()])
            .ok()
            .json();
        for k in [
            "ticks",
            "fills",
            "realized_pnl",
            "final_equity",
            "fills_csv",
            "chart",
            "sharpe",
        ] {
            assert_eq!(shown[k], run[k], "{kind}: {k}");
        }
        let human = db.run(&["backtest", "show", &id.to_string()]);
        assert!(
            human.ok().stdout.contains("equity.svg"),
            "{kind}: {human:#?}"
        );
        let list = db.run(&["--json", "backtest", "list"]).ok().json();
        assert_eq!(list["backtests"][0]["id"], id, "{kind}");
        db.run(&["backtest", "show", "999"])
            .fails_with(1, "backtest 999 not found");
    }
}

/// Issue 11, item 8: a BTC grid on ETH data warns (the file's market, and prices that never
/// reach the grid); a bookTicker file is refused, with or without its header, never read as bars.
#[tokio::test]
async fn mismatched_input_warns_and_quote_files_are_refused() {
    let db = TestDb::new("sqlite").await;
    let eth = shared("ETHUSDT-1m-2025-06-01_to_2025-06-04.ohlcv.csv");
    let r = run_bt(&db, GRID_AUG, &eth, &[]).ok().json();
    let warnings: Vec<&str> = r["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("is named for ETHUSDT, not BTC/USDT")),
        "{warnings:?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("never reach the grid's range (112000 .. 119000)")),
        "{warnings:?}"
    );
    // The right market and range: no such warning.
    let btc = shared("BTCUSDT-1m-2025-08-01_to_2025-08-11.csv");
    let r = run_bt(&db, GRID_AUG, &btc, &[]).ok().json();
    assert!(
        !r["warnings"].to_string().contains("never reach"),
        "{}",
        r["warnings"]
    );
    // A bookTicker capture (real rows from the 2023-04-05 sample), with and without its header.
    let rows = "36090299876,28165.47000000,7.98680000,28165.48000000,3.26888000,1680652800004231\n\
                36090299879,28165.47000000,7.98552000,28165.48000000,3.26888000,1680652800004333\n";
    let with_header = db.dir.path().join("BTCUSDT-bookTicker-2023-04-05.csv");
    std::fs::write(
        &with_header,
        format!(
            "update_id,best_bid_price,best_bid_qty,best_ask_price,best_ask_qty,local_recv_time_us\n{rows}"
        ),
    )
    .unwrap();
    run_bt(&db, GRID_APR, &with_header, &[]).fails_with(1, "a bookTicker file");
    let bare = db.dir.path().join("quotes.csv");
    std::fs::write(&bare, rows).unwrap();
    run_bt(&db, GRID_APR, &bare, &[]).fails_with(1, "bid/ask quotes");
}

/// Issue 12, part 3: `--fill-model amm` fills as a constant-product pool at the trigger price
/// would, after the pool fee and gas; the report splits pool fees, price impact and gas; the
/// pinned limit model is unchanged.
#[tokio::test]
async fn the_amm_fill_model_reports_fees_impact_and_gas() {
    let db = TestDb::new("sqlite").await;
    let data = shared("BTCUSDT-1m-2025-08-01_to_2025-08-11.csv");
    let limit = run_bt(&db, GRID_AUG, &data, &[]).ok().json();
    assert!(
        limit.get("swap_costs").is_none(),
        "the limit model reads as before"
    );
    // A thin pool (2 BTC) makes the impact plain; gas 150,000 × 0.1 gwei × 600 = 0.009.
    let amm = run_bt(
        &db,
        GRID_AUG,
        &data,
        &["--fill-model", "amm", "--pool-reserves", "2:230000"],
    )
    .ok()
    .json();
    let costs = &amm["swap_costs"];
    let dec = |v: &serde_json::Value| {
        v.as_str()
            .unwrap()
            .parse::<rust_decimal::Decimal>()
            .unwrap()
    };
    assert_eq!(dec(&costs["gas_per_swap"]), "0.009".parse().unwrap());
    let fills = amm["fills"].as_u64().unwrap();
    assert!(fills > 0);
    assert_eq!(
        dec(&costs["gas"]),
        dec(&costs["gas_per_swap"]) * rust_decimal::Decimal::from(fills),
        "gas on every swap"
    );
    assert!(dec(&costs["pool_fees"]) > rust_decimal::Decimal::ZERO);
    assert!(dec(&costs["price_impact"]) > rust_decimal::Decimal::ZERO);
    // PnL gross and net of gas, one definition: gas is charged beside the swaps (as on chain),
    // so the fees are the pool's alone and net = gross - gas.
    assert_eq!(dec(&costs["pool_fees"]), dec(&amm["fees"]));
    assert_eq!(dec(&amm["gas"]), dec(&costs["gas"]));
    assert_eq!(
        dec(&amm["total_pnl"]),
        dec(&amm["realized_pnl"]) + dec(&amm["unrealized_pnl"])
    );
    assert_eq!(
        dec(&amm["total_pnl_net_of_gas"]),
        dec(&amm["total_pnl"]) - dec(&amm["gas"])
    );
    assert_eq!(
        dec(&amm["total_pnl"]),
        dec(&amm["final_equity"]) - dec(&amm["initial_quote"]),
        "the balances hold no gas: it is paid in BNB"
    );
    // The limit model pays no gas: net equals gross.
    assert_eq!(dec(&limit["gas"]), rust_decimal::Decimal::ZERO);
    assert_eq!(limit["total_pnl_net_of_gas"], limit["total_pnl"]);
    assert!(
        dec(&amm["realized_pnl"]) < dec(&limit["realized_pnl"]),
        "a thin pool's grid earns less than the limit model says"
    );
    assert!(!amm["warnings"].to_string().contains("round trip's cost"));
    // Cells of 10 on 115,000 (0.87 bps) cannot pay two pool fees: warned.
    let narrow = r#"{"lower_price":"115000","upper_price":"115100","grid_count":11,"base_order_size":"100"}"#;
    let r = run_bt(
        &db,
        narrow,
        &data,
        &["--fill-model", "amm", "--pool-reserves", "2:230000"],
    )
    .ok()
    .json();
    assert!(
        r["warnings"]
            .to_string()
            .contains("below a round trip's cost in this pool"),
        "{}",
        r["warnings"]
    );
    // The pool is required, and only for the AMM model.
    run_bt(&db, GRID_AUG, &data, &["--fill-model", "amm"]).fails_with(1, "--pool-reserves");
    run_bt(&db, GRID_AUG, &data, &["--pool-reserves", "2:230000"]).fails_with(
        1,
        "--pool-reserves, --pool-pair and --pool-profile are for --fill-model amm",
    );
    run_bt(
        &db,
        GRID_AUG,
        &data,
        &["--fill-model", "amm", "--pool-reserves", "2"],
    )
    .fails_with(1, "expected BASE:QUOTE");
}

/// Issue 12: a Binance archive is read as downloaded (`.zip`), the CSV inflated as it is read:
/// the same result as the unpacked file, also for `quick-grid` on a folder of archives.
#[tokio::test]
async fn zipped_archives_are_read_in_place() {
    use std::io::Write;
    let db = TestDb::new("sqlite").await;
    let csv = shared("BTCUSDT-1m-2025-08-01_to_2025-08-11.csv");
    let dir = db.dir.path().join("zips");
    std::fs::create_dir_all(&dir).unwrap();
    let zip_path = dir.join("BTCUSDT-1m-2025-08.zip");
    {
        let mut w = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
        w.start_file(
            "BTCUSDT-1m-2025-08.csv",
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
        w.write_all(&std::fs::read(&csv).unwrap()).unwrap();
        w.finish().unwrap();
    }
    let plain = run_bt(&db, GRID_AUG, &csv, &[]).ok().json();
    let zipped = run_bt(&db, GRID_AUG, &zip_path, &[]).ok().json();
    for key in [
        "ticks",
        "fills",
        "realized_pnl",
        "final_equity",
        "max_drawdown_pct",
    ] {
        assert_eq!(plain[key], zipped[key], "{key}");
    }
    assert!(zip_path.metadata().unwrap().len() < csv.metadata().unwrap().len());
    // quick-grid finds the archive's last row for its window.
    let q = db
        .run(&[
            "--json",
            "backtest",
            "quick-grid",
            "-s",
            "BTC/USDT",
            "--days",
            "2",
            "--grid-count",
            "5",
            "--data",
            dir.to_str().unwrap(),
        ])
        .ok()
        .json();
    assert!(q["ticks"].as_u64().unwrap() > 0, "{q}");
}
