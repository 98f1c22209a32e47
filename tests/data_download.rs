//! `data download` against a local HTTP server that serves data.binance.vision's layout:
//! monthly and daily zips with `.CHECKSUM` files, missing files, a corrupted archive.

#![allow(clippy::unwrap_used)]

#[path = "common/archive.rs"]
mod archive;
mod common;

use archive::{publish, serve, Files};
use common::TestDb;

fn shared(name: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("real market data missing: {} ({e})", p.display()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_verifies_unzips_and_skips_what_is_there() {
    let aug = shared("BTCUSDT-1m-2025-08-01_to_2025-08-11.csv");
    let lines: Vec<&str> = aug.lines().collect();
    let day = |i: usize| lines[i * 1440..(i + 1) * 1440].join("\n") + "\n";
    let files: Files = Default::default();
    publish(
        &files,
        "/data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2025-08-01.zip",
        "BTCUSDT-1m-2025-08-01.csv",
        day(0).as_bytes(),
    );
    publish(
        &files,
        "/data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2025-08-02.zip",
        "BTCUSDT-1m-2025-08-02.csv",
        day(1).as_bytes(),
    );
    let june = shared("BTCUSDT-1m-2025-06-01_to_2025-06-04.ohlcv.csv");
    publish(
        &files,
        "/data/spot/monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2025-06.zip",
        "BTCUSDT-1m-2025-06.csv",
        june.as_bytes(),
    );
    let (url, log) = serve(files.clone()).await;
    let db = TestDb::new("sqlite").await;
    let run = |args: &[&str]| {
        let out = db
            .cmd(args)
            .env("BSC_BOT_DATA_ARCHIVE_URL", &url)
            .output()
            .unwrap();
        common::Run::from(out)
    };

    // Two published days, two unpublished ones before them.
    let r = run(&[
        "--json",
        "data",
        "download",
        "-s",
        "BTC/USDT",
        "--interval",
        "1m",
        "--from",
        "2025-07-30",
        "--to",
        "2025-08-03",
    ]);
    let v = r.ok().json();
    assert_eq!(
        v["download"]["downloaded"],
        serde_json::json!(["BTCUSDT-1m-2025-08-01.csv", "BTCUSDT-1m-2025-08-02.csv"])
    );
    assert_eq!(
        v["download"]["missing"],
        serde_json::json!(["BTCUSDT-1m-2025-07-30.csv", "BTCUSDT-1m-2025-07-31.csv"])
    );
    let dir = db.dir.path().join("backtest-data/BTCUSDT/1m");
    assert_eq!(
        std::fs::read_to_string(dir.join("BTCUSDT-1m-2025-08-01.csv")).unwrap(),
        day(0)
    );
    // A whole past month comes as one monthly archive.
    let r = run(&[
        "data",
        "download",
        "-s",
        "BTC/USDT",
        "--from",
        "2025-06-01",
        "--to",
        "2025-07-01",
    ]);
    r.ok();
    assert!(
        r.stderr
            .contains("BTCUSDT-1m-2025-06.csv: downloaded, sha256 ok"),
        "{r:#?}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("BTCUSDT-1m-2025-06.csv")).unwrap(),
        june
    );

    // Again: everything is already there, no archive is fetched.
    let before = log.lock().unwrap().len();
    let v = run(&[
        "--json",
        "data",
        "download",
        "-s",
        "BTC/USDT",
        "--from",
        "2025-08-01",
        "--to",
        "2025-08-03",
    ])
    .ok()
    .json();
    assert_eq!(v["download"]["skipped"].as_array().unwrap().len(), 2);
    assert_eq!(
        log.lock().unwrap().len(),
        before,
        "nothing requested for files already there"
    );

    // The downloaded files feed a backtest directly.
    let bt = db
        .run(&[
            "--json",
            "backtest",
            "quick-grid",
            "-s",
            "BTC/USDT",
            "--days",
            "1",
            "--grid-count",
            "5",
        ])
        .ok()
        .json();
    assert_eq!(bt["data"]["rows"], 1440 + 1);

    // No temporary files are left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_monthly_falls_back_to_days_and_bad_checksum_keeps_nothing() {
    let trades = shared("BTCUSDT-trades-2023-04-05.from-ws.csv");
    let files: Files = Default::default();
    publish(
        &files,
        "/data/spot/daily/trades/BTCUSDT/BTCUSDT-trades-2023-04-05.zip",
        "BTCUSDT-trades-2023-04-05.csv",
        trades.as_bytes(),
    );
    let (url, log) = serve(files.clone()).await;
    let db = TestDb::new("sqlite").await;
    let v = db
        .run(&[
            "--json",
            "data",
            "download",
            "-s",
            "BTC/USDT",
            "--kind",
            "trades",
            "--from",
            "2023-04-01",
            "--to",
            "2023-05-01",
            "--base-url",
            &url,
        ])
        .ok()
        .json();
    assert_eq!(
        v["download"]["downloaded"],
        serde_json::json!(["BTCUSDT-trades-2023-04-05.csv"])
    );
    assert_eq!(v["download"]["missing"].as_array().unwrap().len(), 29);
    assert!(log
        .lock()
        .unwrap()
        .iter()
        .any(|p| p.ends_with("/monthly/trades/BTCUSDT/BTCUSDT-trades-2023-04.zip.CHECKSUM")));

    // A corrupted archive: the published checksum does not match.
    let path = "/data/spot/daily/aggTrades/BTCUSDT/BTCUSDT-aggTrades-2023-04-05.zip";
    publish(
        &files,
        path,
        "BTCUSDT-aggTrades-2023-04-05.csv",
        b"1,2,3,1,1,1680652800000,true,true\n",
    );
    files.lock().unwrap().get_mut(path).unwrap().push(0);
    let r = db.run(&[
        "data",
        "download",
        "-s",
        "BTC/USDT",
        "--kind",
        "aggTrades",
        "--from",
        "2023-04-05",
        "--to",
        "2023-04-06",
        "--base-url",
        &url,
    ]);
    r.fails_with(2, "checksum mismatch");
    let dir = db.dir.path().join("backtest-data/BTCUSDT/aggTrades");
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "nothing kept from a corrupted archive"
    );

    // Nothing published at all, and bad input.
    db.run(&[
        "data",
        "download",
        "-s",
        "ETH/USDT",
        "--from",
        "2023-04-05",
        "--to",
        "2023-04-06",
        "--base-url",
        &url,
    ])
    .fails_with(1, "nothing published");
    db.run(&[
        "data",
        "download",
        "-s",
        "BTC/USDT",
        "--from",
        "2023-04-06",
        "--to",
        "2023-04-05",
    ])
    .fails_with(1, "--from must be before --to");
    db.run(&[
        "data",
        "download",
        "-s",
        "BTC/USDT",
        "--interval",
        "7m",
        "--from",
        "2023-04-01",
    ])
    .fails_with(1, "--interval \"7m\"");
    // Unreachable archive: a runtime failure.
    db.run(&[
        "data",
        "download",
        "-s",
        "BTC/USDT",
        "--from",
        "2023-04-05",
        "--to",
        "2023-04-06",
        "--base-url",
        "http://127.0.0.1:1",
    ])
    .fails_with(2, "gave up after 4 attempts");
}

/// An archive that inflates far past what a CSV compresses to (a zip bomb) is refused before it
/// fills the disk; nothing is left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zip_bomb_is_refused_before_it_fills_the_disk() {
    let files: Files = Default::default();
    // 80 MiB of one byte: deflates to ~80 KB, over 100 times and past the 64 MiB floor.
    let bomb = vec![b'1'; 80 << 20];
    publish(
        &files,
        "/data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2025-08-01.zip",
        "BTCUSDT-1m-2025-08-01.csv",
        &bomb,
    );
    let (url, _) = serve(files.clone()).await;
    let db = TestDb::new("sqlite").await;
    let out = db
        .cmd(&[
            "data",
            "download",
            "-s",
            "BTC/USDT",
            "--interval",
            "1m",
            "--from",
            "2025-08-01",
            "--to",
            "2025-08-02",
        ])
        .env("BSC_BOT_DATA_ARCHIVE_URL", &url)
        .output()
        .unwrap();
    let r = common::Run::from(out);
    assert_ne!(r.code, Some(0), "{r:#?}");
    assert!(r.stderr.contains("inflates past"), "{r:#?}");
    let dir = db.dir.path().join("backtest-data/BTCUSDT/1m");
    let left: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "nothing left behind: {left:?}");
}
