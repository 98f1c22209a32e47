//! `backtest sweep` through the real binary on real Binance klines from `tests/data`: every row
//! equals a separate `backtest run` of its grid, the ranking follows the metric, the exports and
//! the heatmap are written, walk-forward splits the data, two sweeps are byte-identical (even on
//! different thread counts), and a sweep too large is refused before anything runs.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use common::TestDb;
use serde_json::Value;

const DATA: &str = "BTCUSDT-1m-2025-08-01_to_2025-08-11.csv";
const BASE: &str = r#"{"base_order_size":"100"}"#;
/// 3 × 2 × 3 × 2 = 36 grids over Aug 2025 (112k–119k).
const VARY: [&str; 4] = [
    "lower_price=112000:114000:1000",
    "upper_price=117000,119000",
    "grid_count=6:10:2",
    "spacing=arithmetic,geometric",
];
/// What a row shares with `backtest run --json`, string for string.
const FIGURES: [&str; 12] = [
    "ticks",
    "fills",
    "round_trips",
    "win_rate",
    "realized_pnl",
    "unrealized_pnl",
    "fees",
    "final_equity",
    "total_return_pct",
    "max_drawdown_pct",
    "sharpe",
    "final_status",
];

fn data() -> PathBuf {
    let p = common::repo_path("tests/data").join(DATA);
    assert!(p.exists(), "real market data missing: {}", p.display());
    p
}

fn sweep(db: &TestDb, out: &Path, extra: &[&str]) -> common::Run {
    sweep_varying(db, out, &VARY, extra)
}

/// `backtest sweep --json` of the base grid over the test data, varying `vary`.
fn sweep_varying(db: &TestDb, out: &Path, vary: &[&str], extra: &[&str]) -> common::Run {
    let d = data();
    let mut args = vec![
        "--json",
        "backtest",
        "sweep",
        "-t",
        "grid",
        "-s",
        "BTC/USDT",
        "-p",
        BASE,
        "--data",
        d.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    for v in vary {
        args.extend(["--vary", v]);
    }
    args.extend_from_slice(extra);
    db.run(&args)
}

fn rows_of(out: &Path) -> Vec<Value> {
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("rows.json")).unwrap()).unwrap();
    doc["rows"].as_array().unwrap().clone()
}

/// The row's grid as `backtest run` params.
fn params_of(row: &Value) -> String {
    let mut p: Value = serde_json::from_str(BASE).unwrap();
    for (k, v) in row["values"].as_object().unwrap() {
        p[k] = v.clone();
    }
    p.to_string()
}

fn run_one(db: &TestDb, params: &str, extra: &[&str]) -> Value {
    let d = data();
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
        d.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    db.run(&args).ok().json()
}

#[track_caller]
fn assert_figures(row: &Value, run: &Value, what: &str) {
    for k in FIGURES {
        assert_eq!(
            row[k], run[k],
            "{what}: {k} differs: row {row} vs run {run}"
        );
    }
}

fn score(row: &Value, metric: &str) -> f64 {
    let f = |k: &str| row[k].as_str().unwrap().parse::<f64>().unwrap();
    match metric {
        "return" => f("total_return_pct"),
        "drawdown" => -f("max_drawdown_pct"),
        "sharpe" => f("sharpe"),
        _ => match row["return_dd"].as_str() {
            Some(r) => r.parse().unwrap(),
            None if f("total_return_pct") > 0.0 => f64::INFINITY,
            None => 0.0,
        },
    }
}

#[tokio::test]
async fn rows_equal_separate_runs_ranked_exported_and_the_best_stored() {
    let db = TestDb::new("sqlite").await;
    let out = db.dir.path().join("sweep-a");
    let r = sweep(
        &db,
        &out,
        &[
            "--metric",
            "return_dd",
            "--top",
            "3",
            "--heatmap",
            "lower_price,upper_price",
            "--threads",
            "2",
        ],
    );
    let doc = r.ok().json();
    assert_eq!(doc["grids"], 36);
    assert_eq!(doc["metric"], "return_dd");
    let rows = rows_of(&out);
    assert_eq!(rows.len(), 36);
    // Ranked best first by return over drawdown; ties keep expansion order.
    for w in rows.windows(2) {
        let (a, b) = (score(&w[0], "return_dd"), score(&w[1], "return_dd"));
        assert!(
            a > b || (a == b && w[0]["grid"].as_u64() < w[1]["grid"].as_u64()),
            "rank order broken: {} then {}",
            w[0],
            w[1]
        );
    }
    let trades: u64 = rows
        .iter()
        .map(|r| r["round_trips"].as_u64().unwrap())
        .sum();
    assert!(trades > 100, "the grids should trade on this data");
    // A sample of rows (best, worst, middle, and two more) equals separate runs exactly.
    for ix in [0, 35, 17, 5, 29] {
        let row = &rows[ix];
        let run = run_one(&db, &params_of(row), &[]);
        assert_figures(row, &run, &format!("rank {}", ix + 1));
    }
    // rows.csv: a header and one line per grid, the ranked order.
    let csv = std::fs::read_to_string(out.join("rows.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 37);
    assert!(lines[0].starts_with("rank,grid,lower_price,upper_price,grid_count,spacing,ticks,"));
    assert!(lines[1].starts_with(&format!("1,{},", rows[0]["grid"])));
    assert!(lines[1].contains(rows[0]["realized_pnl"].as_str().unwrap()));
    // The heatmap: one cell per (lower, upper) pair, the best grid's figure in it.
    let svg = std::fs::read_to_string(out.join("heatmap.svg")).unwrap();
    assert!(svg.starts_with("<svg"));
    assert_eq!(
        svg.matches("<rect x=").count(),
        6,
        "3 lower × 2 upper cells"
    );
    assert!(svg.contains(">lower_price<") && svg.contains(">upper_price<"));
    // The best three are ordinary backtests now: `backtest show` has their figures and outputs.
    let top = doc["top"].as_array().unwrap();
    assert_eq!(top.len(), 3);
    for (t, row) in top.iter().zip(&rows) {
        assert_eq!(t["grid"], row["grid"]);
        let id = t["backtest_id"].as_i64().unwrap().to_string();
        let shown = db.run(&["--json", "backtest", "show", &id]).ok().json();
        assert_figures(row, &shown, "stored best grid");
        for k in ["fills_csv", "chart"] {
            assert!(
                Path::new(shown[k].as_str().unwrap()).exists(),
                "{k}: {shown}"
            );
        }
    }
    let list = db.run(&["--json", "backtest", "list"]).ok().json();
    // 3 stored by the sweep, 5 by the separate runs above.
    assert_eq!(list["backtests"].as_array().unwrap().len(), 8);
}

#[tokio::test]
async fn two_sweeps_are_byte_identical_whatever_the_thread_count() {
    let db = TestDb::new("sqlite").await;
    let (a, b) = (db.dir.path().join("a"), db.dir.path().join("b"));
    let heat = ["--heatmap", "grid_count,lower_price", "--top", "0"];
    sweep(&db, &a, &[&heat[..], &["--threads", "1"]].concat()).ok();
    sweep(&db, &b, &[&heat[..], &["--threads", "2"]].concat()).ok();
    for f in ["rows.csv", "rows.json", "heatmap.svg"] {
        let (x, y) = (
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
        );
        assert!(x.len() > 500, "{f} is too small");
        assert_eq!(x, y, "{f} differs between two identical sweeps");
    }
    // --top 0 stores nothing.
    let list = db.run(&["--json", "backtest", "list"]).ok().json();
    assert!(list["backtests"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn walk_forward_ranks_on_the_first_part_and_reports_the_rest() {
    let db = TestDb::new("sqlite").await;
    let out = db.dir.path().join("wf");
    // With the AMM fill model too: a sweep takes every `backtest run` option.
    let amm = ["--fill-model", "amm", "--pool-reserves", "300:34500000"];
    let extra = [
        &[
            "--train-until",
            "2025-08-06",
            "--metric",
            "sharpe",
            "--top",
            "1",
        ][..],
        &amm[..],
    ]
    .concat();
    let doc = sweep(&db, &out, &extra).ok().json();
    let rows = rows_of(&out);
    assert_eq!(rows.len(), 36);
    let (train_ticks, test_ticks) = (
        doc["ticks"].as_u64().unwrap(),
        doc["test_ticks"].as_u64().unwrap(),
    );
    assert!(train_ticks > 0 && test_ticks > 0);
    for w in rows.windows(2) {
        assert!(
            score(&w[0], "sharpe") >= score(&w[1], "sharpe"),
            "ranked on the train part"
        );
    }
    for ix in [0, 20, 35] {
        let row = &rows[ix];
        let p = params_of(row);
        let train = run_one(&db, &p, &[&["--to", "2025-08-06"][..], &amm[..]].concat());
        assert_figures(row, &train, "train part");
        let test = run_one(&db, &p, &[&["--from", "2025-08-06"][..], &amm[..]].concat());
        assert_figures(&row["test"], &test, "test part");
        assert_eq!(row["test"]["ticks"].as_u64().unwrap(), test_ticks);
        assert!(test["swap_costs"]["gas"].as_str().is_some(), "{test}");
    }
    let csv = std::fs::read_to_string(out.join("rows.csv")).unwrap();
    assert!(csv
        .lines()
        .next()
        .unwrap()
        .contains(",test_total_return_pct,"));
    // The stored best is the train-part run.
    let id = doc["top"][0]["backtest_id"].as_i64().unwrap().to_string();
    let shown = db.run(&["--json", "backtest", "show", &id]).ok().json();
    assert_figures(&rows[0], &shown, "stored train run");
}

#[tokio::test]
async fn a_sweep_file_gives_the_same_rows_and_invalid_grids_are_skipped() {
    let db = TestDb::new("sqlite").await;
    let file = db.dir.path().join("sweep.toml");
    std::fs::write(
        &file,
        "type = \"grid\"\nsymbol = \"BTC/USDT\"\n[params]\nbase_order_size = \"100\"\n\n[vary]\n\
         lower_price = \"112000:114000:1000\"\nupper_price = [\"117000\", \"119000\"]\n\
         grid_count = { from = 6, to = 10, step = 2 }\nspacing = [\"arithmetic\", \"geometric\"]\n",
    )
    .unwrap();
    let (a, b) = (db.dir.path().join("flags"), db.dir.path().join("file"));
    sweep(&db, &a, &["--top", "0"]).ok();
    let d = data();
    db.run(&[
        "--json",
        "backtest",
        "sweep",
        "--file",
        file.to_str().unwrap(),
        "--data",
        d.to_str().unwrap(),
        "--out",
        b.to_str().unwrap(),
        "--top",
        "0",
    ])
    .ok();
    // The file's [vary] keys come in name order, the flags' in the order given: compare by grid.
    let key = |r: &Value| {
        (
            params_of(r),
            r["total_return_pct"].clone(),
            r["sharpe"].clone(),
        )
    };
    let mut x: Vec<_> = rows_of(&a).iter().map(key).collect();
    let mut y: Vec<_> = rows_of(&b).iter().map(key).collect();
    x.sort_by(|p, q| p.0.cmp(&q.0));
    y.sort_by(|p, q| p.0.cmp(&q.0));
    assert_eq!(x, y);
    // Lower prices above the upper one are not grids: reported, not run, the rest still runs.
    let out = db.dir.path().join("skips");
    let vary = [
        "lower_price=112000,118000,120000",
        "upper_price=119000",
        "grid_count=5",
    ];
    let doc = sweep_varying(&db, &out, &vary, &["--top", "0"]).ok().json();
    assert_eq!(doc["grids"], 2);
    let skipped = doc["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{doc}");
    assert_eq!(skipped[0]["values"]["lower_price"], "120000");
    assert!(skipped[0]["reason"]
        .as_str()
        .unwrap()
        .contains("lower_price"));
}

#[tokio::test]
async fn too_many_grids_and_bad_specs_are_refused_before_anything_runs() {
    let db = TestDb::new("sqlite").await;
    let out = db.dir.path().join("refused");
    let refuse = |vary: &[&str], extra: &[&str], code: i32, needle: &str| {
        sweep_varying(&db, &out, vary, extra).fails_with(code, needle);
    };
    // 1,001 × 100 = 100,100 grids: over the default limit of 100,000.
    refuse(
        &[
            "lower_price=100000:110000:10",
            "grid_count=2:101:1",
            "upper_price=120000",
        ],
        &[],
        1,
        "the sweep expands to 100100 grids, more than --max-grids 100000",
    );
    refuse(
        &VARY,
        &["--max-grids", "35"],
        1,
        "36 grids, more than --max-grids 35",
    );
    refuse(&["grid_cout=5,6"], &[], 1, "grid_cout");
    refuse(&["grid_count=9:5:1"], &[], 1, "TO is below FROM");
    refuse(&["grid_count"], &[], 1, "expected KEY=FROM:TO:STEP");
    refuse(&[], &[], 1, "nothing to vary");
    refuse(
        &VARY,
        &["--heatmap", "grid_count,fee_bps"],
        1,
        "\"fee_bps\" is not a varied key",
    );
    refuse(
        &VARY,
        &["--metric", "profit"],
        1,
        "expected return, drawdown, sharpe or return_dd",
    );
    refuse(
        &VARY,
        &["--train-until", "2025-07-01", "--from", "2025-08-02"],
        1,
        "--train-until must fall inside",
    );
    assert!(!out.exists(), "a refused sweep writes nothing");
    let list = db.run(&["--json", "backtest", "list"]).ok().json();
    assert!(list["backtests"].as_array().unwrap().is_empty());
}
