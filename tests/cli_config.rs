//! `config check`, env overrides, secrets never printed, invalid config exits 1.

#![allow(clippy::unwrap_used)]

mod common;

use common::TestDb;

#[tokio::test]
async fn check_prints_effective_config_with_secrets_redacted() {
    let db = TestDb::new("sqlite").await;
    let out = db
        .cmd(&["config", "check"])
        .env(
            "DATABASE_URL",
            "postgres://bot:hunter2@db.internal:5432/bsc",
        )
        .env("BSC_BOT_API_TOKEN", "tok-supersecret")
        .env("BSC_BOT_DATABASE_MAX_CONNECTIONS", "7")
        .output()
        .unwrap();
    let r = common::Run::from(out);
    r.ok();
    assert!(r.stdout.contains("embedded defaults"), "{r:#?}");
    assert!(
        r.stdout.contains("postgres://bot:***@db.internal:5432/bsc"),
        "{r:#?}"
    );
    assert!(r.stdout.contains("max_connections = 7"), "{r:#?}");
    assert!(r.stdout.contains("BSC_BOT_API_TOKEN: set"), "{r:#?}");
    assert!(
        !r.stdout.contains("hunter2") && !r.stdout.contains("supersecret"),
        "{r:#?}"
    );
    assert!(
        !r.stderr.contains("hunter2") && !r.stderr.contains("supersecret"),
        "{r:#?}"
    );

    let out = db
        .cmd(&["config", "check", "--json"])
        .env(
            "DATABASE_URL",
            "postgres://bot:hunter2@db.internal:5432/bsc",
        )
        .env("BSC_BOT_API_TOKEN", "tok-supersecret")
        .output()
        .unwrap();
    let r = common::Run::from(out);
    let v = r.ok().json();
    assert_eq!(v["valid"], true);
    assert_eq!(
        v["config"]["database"]["url"],
        "postgres://bot:***@db.internal:5432/bsc"
    );
    assert_eq!(v["secrets"]["BSC_BOT_API_TOKEN"], "set");
    assert!(!r.stdout.contains("hunter2") && !r.stdout.contains("supersecret"));
}

#[tokio::test]
async fn repo_config_file_is_valid_and_documented() {
    let db = TestDb::new("sqlite").await;
    let path = common::repo_path("bsc-bot.toml");
    let r = db.run(&["config", "check", "--config", path.to_str().unwrap()]);
    r.ok();
    assert!(
        r.stdout.contains("url = \"sqlite://data/bsc-bot.sqlite\""),
        "{r:#?}"
    );
    // Every key in the shipped file carries an explanatory comment line above it or beside it.
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') || t.starts_with('[') {
            continue;
        }
        let commented = t.contains('#') || (i > 0 && lines[i - 1].trim().starts_with('#'));
        assert!(
            commented,
            "bsc-bot.toml line {} has no comment: {line}",
            i + 1
        );
    }
}

#[tokio::test]
async fn invalid_config_names_key_value_and_expectation() {
    let db = TestDb::new("sqlite").await;
    let write = |text: &str| {
        let p = db.dir.path().join("bad.toml");
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    let cases = [
        ("[database]\nmax_connections = 0\n", "config key database.max_connections = 0 is invalid: expected an integer in 1..=100"),
        ("[log]\nformat = \"xml\"\n", "config key log.format = \"xml\" is invalid: expected \"text\" or \"json\""),
        ("[database]\nurl = \"mysql://x\"\n", "config key database.url = \"mysql://x\" is invalid: expected sqlite://PATH or postgres://USER@HOST/DB"),
        ("[database]\nurll = \"x\"\n", "config key database.urll is not a known key (expected one of `url`"),
        ("[dex]\nfee_bps = 5000\n", "config key dex.fee_bps = 5000 is invalid: expected basis points in 0..=1000"),
        ("[wallets]\nprivate_key = \"0xabc\"\n", "wallets.private_key looks like a secret"),
        ("[database]\nurl = \"postgres://u:pw@h/db\"\n", "database.url looks like a secret"),
        ("[database\n", "is not valid TOML"),
    ];
    for (text, message) in cases {
        let path = write(text);
        db.run(&["config", "check", "--config", &path])
            .fails_with(1, message);
        // Every other command refuses to run on an invalid config too.
        db.run(&["strategy", "list", "--config", &path])
            .fails_with(1, message);
    }
    // Every problem at once: misspelt keys in two sections and a bad value, none called TOML.
    let path = write(
        "[database]\nurll = \"x\"\n[market]\nstale_after_sec = 3\n[dex]\nfee_bps = 5000\n[nosuch]\na = 1\n",
    );
    let r = db.run(&["config", "check", "--config", &path]);
    r.fails_with(1, "4 config problems");
    for part in [
        "config key database.urll is not a known key",
        "config key market.stale_after_sec is not a known key",
        "config key nosuch is not a known key",
        "config key dex.fee_bps = 5000 is invalid",
    ] {
        assert!(r.stderr.contains(part), "{part}: {r:#?}");
    }
    assert!(!r.stderr.contains("not valid TOML"), "{r:#?}");
    // The secret value itself never appears in the error.
    let path = write("[wallets]\nprivate_key = \"0xdeadbeefcafe\"\n");
    let r = db.run(&["config", "check", "--config", &path]);
    assert!(!r.stderr.contains("deadbeef"), "{r:#?}");

    db.run(&["config", "check", "--config", "/nonexistent/bsc-bot.toml"])
        .fails_with(1, "cannot read config file /nonexistent/bsc-bot.toml");
    let r = db
        .cmd(&["config", "check"])
        .env("BSC_BOT_DATABASE_MAX_CONNECTIONS", "lots")
        .output()
        .unwrap();
    common::Run::from(r).fails_with(
        1,
        "database.max_connections (from BSC_BOT_DATABASE_MAX_CONNECTIONS) = \"lots\" is invalid",
    );
    let r = db
        .cmd(&["config", "check"])
        .env("BSC_BOT_DATABSE_URL", "x")
        .output()
        .unwrap();
    common::Run::from(r).fails_with(1, "BSC_BOT_DATABSE_URL does not name a config key");
}
