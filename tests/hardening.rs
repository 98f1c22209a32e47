//! What another user on the host could try against the files the bot writes and reads: links
//! planted where it writes, files readable by others, weak tokens, a raw key in the daemon's
//! environment, secrets in `config check`.

#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use common::daemon::{write_config, RunningDaemon};
use common::exchange::FakeBinance;
use common::TestDb;

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p)
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// `db backup` names its files by the millisecond: links planted at every name of the next
/// seconds are refused, naming the path, and the files they point at stay as they were.
#[tokio::test]
async fn backups_never_write_through_a_planted_link() {
    let db = TestDb::new("sqlite").await;
    db.run(&["strategy", "list"]).ok();
    let out = db.dir.path().join("backups");
    std::fs::create_dir(&out).unwrap();
    let victim = db.dir.path().join("victim.txt");
    std::fs::write(&victim, "the operator's other file").unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    for ms in now..now + 4_000 {
        let stamp = chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .format("%Y%m%d-%H%M%S%.3f")
            .to_string();
        for name in [
            format!("bsc-bot-{stamp}.sqlite"),
            format!("bsc-bot-{stamp}.sqlite.manifest.json"),
        ] {
            std::os::unix::fs::symlink(&victim, out.join(name)).unwrap();
        }
    }
    let r = db.run(&["db", "backup", "--out", out.to_str().unwrap()]);
    assert_ne!(r.code, Some(0), "{r:#?}");
    assert!(r.stderr.contains("is a symbolic link"), "{r:#?}");
    assert!(r.stderr.contains("bsc-bot-"), "the path is named: {r:#?}");
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "the operator's other file"
    );
    // With the links gone, a backup is made, private, in a private folder.
    for entry in std::fs::read_dir(&out).unwrap() {
        let p = entry.unwrap().path();
        if std::fs::symlink_metadata(&p)
            .unwrap()
            .file_type()
            .is_symlink()
        {
            std::fs::remove_file(p).unwrap();
        }
    }
    let made = db
        .run(&["--json", "db", "backup", "--out", out.to_str().unwrap()])
        .ok()
        .json();
    let file = Path::new(made["backup"].as_str().unwrap()).to_path_buf();
    assert_eq!(mode(&file), 0o600);
    let mut manifest = file.as_os_str().to_owned();
    manifest.push(".manifest.json");
    assert_eq!(mode(Path::new(&manifest)), 0o600);
    assert_eq!(mode(&out), 0o700, "the backup folder is made private");
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "no scratch left: {leftovers:?}");
}

/// Sweep outputs: a link at rows.csv is refused and its target untouched.
#[tokio::test]
async fn exports_never_write_through_a_planted_link() {
    let db = TestDb::new("sqlite").await;
    let data = common::repo_path("tests/data")
        .join("BTCUSDT-1m-2025-08-01_to_2025-08-11.csv")
        .display()
        .to_string();
    let out = db.dir.path().join("sweep");
    std::fs::create_dir(&out).unwrap();
    let victim = db.dir.path().join("victim.txt");
    std::fs::write(&victim, "theirs").unwrap();
    std::os::unix::fs::symlink(&victim, out.join("rows.csv")).unwrap();
    let r = db.run(&[
        "backtest",
        "sweep",
        "-t",
        "grid",
        "-s",
        "BTC/USDT",
        "--data",
        &data,
        "-p",
        r#"{"lower_price":"114000","upper_price":"120000","grid_count":5,"base_order_size":"100"}"#,
        "--vary",
        "grid_count=5,6",
        "--out",
        out.to_str().unwrap(),
        "--top",
        "1",
    ]);
    assert_ne!(r.code, Some(0), "{r:#?}");
    assert!(r.stderr.contains("rows.csv is a symbolic link"), "{r:#?}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "theirs");
}

/// The daemon's files: the database, its WAL, the logs and the token are the operator's alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemons_files_are_private() {
    let db = TestDb::new("sqlite").await;
    let ex = FakeBinance::start().await;
    let config = write_config(&db, &ex.url, "[log]\nfile = \"logs/bsc-bot.log\"\n");
    let d = RunningDaemon::start(&db, &config, &[]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let data = db.dir.path().join("data");
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("bsc-bot.sqlite")), 0o600);
    assert_eq!(mode(&data.join("bsc-bot.sqlite-wal")), 0o600);
    assert_eq!(mode(&db.dir.path().join("logs")), 0o700);
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert_eq!(
        mode(&db.dir.path().join(format!("logs/bsc-bot.log.{today}"))),
        0o600
    );
    drop(d);
}

/// The API token: a link, a file others can read, or a short token is refused, naming the file.
#[tokio::test]
async fn weak_or_exposed_api_tokens_are_refused() {
    let db = TestDb::new("sqlite").await;
    let ex = FakeBinance::start().await;
    let config = write_config(&db, &ex.url, "");
    let data = db.dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let token = data.join("api-token");
    let start = |env: &[(&str, &str)]| {
        let mut c = db.cmd(&["--config", &config, "bot", "start"]);
        for (k, v) in env {
            c.env(k, v);
        }
        common::Run::from(c.output().unwrap())
    };
    // Readable by others.
    std::fs::write(&token, "0123456789abcdef0123456789abcdef\n").unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    let r = start(&[]);
    assert_ne!(r.code, Some(0), "{r:#?}");
    assert!(r.stderr.contains("can be read by others"), "{r:#?}");
    assert!(r.stderr.contains(token.to_str().unwrap()), "{r:#?}");
    // Too short.
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(&token, "x\n").unwrap();
    let r = start(&[]);
    assert!(r.stderr.contains("has 1 characters"), "{r:#?}");
    assert!(r.stderr.contains(token.to_str().unwrap()), "{r:#?}");
    // A link.
    std::fs::remove_file(&token).unwrap();
    let elsewhere = db.dir.path().join("elsewhere");
    std::fs::write(&elsewhere, "0123456789abcdef0123456789abcdef\n").unwrap();
    std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &token).unwrap();
    let r = start(&[]);
    assert!(r.stderr.contains("is a symbolic link"), "{r:#?}");
    // A short token in the environment.
    let r = start(&[("BSC_BOT_API_TOKEN", "abc")]);
    assert!(
        r.stderr.contains("BSC_BOT_API_TOKEN has 3 characters"),
        "{r:#?}"
    );
    // A raw private key in the daemon's environment.
    let r = start(&[(
        "BSC_BOT_PRIVATE_KEY",
        "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    )]);
    assert_eq!(r.code, Some(1), "{r:#?}");
    assert!(
        r.stderr
            .contains("BSC_BOT_PRIVATE_KEY is set: the daemon never reads a raw key"),
        "{r:#?}"
    );
    assert!(!r.stderr.contains("5de4111a"), "the key is never echoed");
}

/// A webhook URL carries its secret in the path: `config check` shows its host only.
#[tokio::test]
async fn config_check_shows_a_webhook_by_host_only() {
    let db = TestDb::new("sqlite").await;
    let path = db.dir.path().join("hook.toml");
    std::fs::write(
        &path,
        "[alerts]\nwebhook_url = \"https://hooks.example.com/services/T000/B000/SECRETPART\"\n",
    )
    .unwrap();
    for args in [
        vec!["config", "check", "--config", path.to_str().unwrap()],
        vec![
            "--json",
            "config",
            "check",
            "--config",
            path.to_str().unwrap(),
        ],
    ] {
        let r = db.run(&args);
        r.ok();
        assert!(!r.stdout.contains("SECRETPART"), "{r:#?}");
        assert!(r.stdout.contains("hooks.example.com"), "{r:#?}");
    }
    // Not even in the error about a URL that is not http(s), nor an RPC URL's key.
    std::fs::write(
        &path,
        "[alerts]\nwebhook_url = \"ftp://hooks.example.com/services/SECRETPART\"\n\n\
         [chain]\nrpc_urls = [\"ftp://rpc.example.com/v1/APIKEYPART\"]\n",
    )
    .unwrap();
    let r = db.run(&["config", "check", "--config", path.to_str().unwrap()]);
    r.fails_with(1, "alerts.webhook_url");
    assert!(r.stderr.contains("chain.rpc_urls"), "{r:#?}");
    assert!(
        !r.stderr.contains("SECRETPART") && !r.stderr.contains("APIKEYPART"),
        "{r:#?}"
    );
}

/// Reasons and messages from outside are shown with their control characters escaped (no
/// cleared screen, no forged rows) in every text output, kept exact in JSON, and capped in
/// length.
#[tokio::test]
async fn escape_sequences_in_reasons_are_shown_not_acted_on() {
    let db = TestDb::new("sqlite").await;
    let id = common::create_grid(&db, "esc").to_string();
    let evil = "drill\u{1b}[2J\u{1b}[H\nkill switch not engaged\u{7}";
    let raw = |text: &str| text.contains('\u{1b}') || text.contains('\u{7}');
    let texts = [
        db.run(&["strategy", "pause", &id, "--reason", evil]),
        db.run(&["strategy", "status", &id]),
        db.run(&["risk", "mode", "reducing", "--reason", evil]),
        db.run(&["risk", "status"]),
        db.run(&["risk", "events"]),
        db.run(&["emergency", "stop-all", "--reason", evil]),
        db.run(&["emergency", "status"]),
        db.run(&["bot", "status"]),
    ];
    for r in &texts {
        r.ok();
        assert!(!raw(&r.stdout) && !raw(&r.stderr), "{r:#?}");
    }
    assert!(texts[1].stdout.contains("\\u{1b}[2J"), "{:#?}", texts[1]);
    assert!(
        !texts[6].stdout.contains("\nkill switch not engaged"),
        "no forged row: {:#?}",
        texts[6]
    );
    // JSON keeps the text exact.
    let status = db.run(&["--json", "emergency", "status"]).ok().json();
    assert_eq!(status["reason"], evil);
    // A parameter key echoed in an error is escaped too.
    let r = db.run(&[
        "strategy",
        "update",
        &id,
        "-p",
        r#"{"bad\u001b[2Jkey":"1"}"#,
    ]);
    assert!(!raw(&r.stderr), "{r:#?}");
    // Reasons are capped.
    let long = "x".repeat(10_000);
    db.run(&["emergency", "clear", "--reason", &long])
        .fails_with(1, "--reason has 10000 characters; at most 500");
    db.run(&["risk", "mode", "halted", "--reason", &long])
        .fails_with(1, "at most 500");
    db.run(&["emergency", "clear", "--reason", "over"]).ok();
    let other = common::create_grid(&db, "esc-2").to_string();
    db.run(&["strategy", "pause", &other, "--reason", &long])
        .fails_with(1, "at most 500");
}

/// A log folder that is a link is not written through: the daemon logs to stderr only and says
/// why; the folder it points at stays empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_folder_that_is_a_link_is_not_written_through() {
    let db = TestDb::new("sqlite").await;
    let ex = FakeBinance::start().await;
    let elsewhere = db.dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, db.dir.path().join("logs")).unwrap();
    let config = write_config(&db, &ex.url, "[log]\nfile = \"logs/bsc-bot.log\"\n");
    let log = db.dir.path().join("stderr.log");
    let d = RunningDaemon::start_logged_with_env(&db, &config, &[], &[], &log).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(d);
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("is a symbolic link"), "{text}");
    assert!(text.contains("logging to stderr only"), "{text}");
}

/// `funds balances` without a node: with no wallet there is nothing to read (exit 0, an empty
/// list); with one, its name and address are listed, its balances unknown with the reason, and
/// the command exits 2.
#[tokio::test]
async fn funds_balances_without_a_node_say_what_they_can_and_cannot_show() {
    let db = TestDb::new("sqlite").await;
    let path = db.dir.path().join("dead-node.toml");
    std::fs::write(
        &path,
        "[chain]\nrpc_urls = [\"http://127.0.0.1:9\"]\nrpc_timeout_ms = 500\nrpc_retries = 0\n",
    )
    .unwrap();
    let config = path.to_str().unwrap();
    let none = db
        .run(&["--config", config, "funds", "balances", "--export", "json"])
        .ok()
        .json();
    assert_eq!(none["balances"], serde_json::json!([]), "{none}");
    let made = db
        .cmd(&["--config", config, "wallet", "generate", "--name", "hot"])
        .env("BSC_BOT_KEYSTORE_PASSWORD", "correct horse battery")
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let address = String::from_utf8(made.stdout).unwrap().trim().to_string();
    let r = db.run(&["--config", config, "funds", "balances", "--export", "json"]);
    r.fails_with(2, "balances not read (addresses listed)");
    let doc = r.json();
    assert_eq!(doc["balances"][0]["holder"], "hot", "{doc}");
    assert_eq!(
        doc["balances"][0]["address"]
            .as_str()
            .unwrap()
            .to_lowercase(),
        address.to_lowercase()
    );
    assert!(doc["balances"][0]["balances"].is_null(), "{doc}");
    assert!(doc["balances_error"].is_string(), "{doc}");
}
