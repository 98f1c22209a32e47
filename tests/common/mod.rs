//! Shared test harness: real databases (SQLite always, PostgreSQL when `DATABASE_URL` is set)
//! and the real `bsc-bot` binary.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

pub mod daemon;
pub mod exchange;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use bsc_bot::config::DatabaseConfig;
use bsc_bot::store::Store;

pub const BIN: &str = env!("CARGO_BIN_EXE_bsc-bot");

/// A fresh, empty database for one test.
pub struct TestDb {
    pub kind: &'static str,
    /// Working directory for spawned commands (holds the SQLite file for `sqlite`).
    pub dir: tempfile::TempDir,
    /// `DATABASE_URL` for spawned commands; `None` means the default SQLite file in `dir`.
    pub url: Option<String>,
    admin_url: Option<String>,
    pg_name: Option<String>,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Every backend the tests must cover. In CI a missing PostgreSQL is a failure, never a skip.
pub fn backends() -> Vec<&'static str> {
    let mut kinds = vec!["sqlite"];
    match std::env::var("DATABASE_URL") {
        Ok(url) if url.starts_with("postgres") => kinds.push("postgres"),
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
                panic!("CI=true but DATABASE_URL is not set: the PostgreSQL tests cannot run (use scripts/test.sh)");
            }
            eprintln!(
                "NOTE: DATABASE_URL unset, PostgreSQL variant skipped (scripts/test.sh sets it up)"
            );
        }
    }
    kinds
}

impl TestDb {
    pub async fn new(kind: &'static str) -> TestDb {
        let dir = tempfile::tempdir().expect("tempdir");
        match kind {
            "sqlite" => TestDb {
                kind,
                dir,
                url: None,
                admin_url: None,
                pg_name: None,
            },
            "postgres" => {
                let admin = std::env::var("DATABASE_URL").expect("DATABASE_URL");
                let name = format!(
                    "bsc_bot_t_{}_{}_{}",
                    std::process::id(),
                    COUNTER.fetch_add(1, Ordering::SeqCst),
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .subsec_nanos()
                );
                sqlx::any::install_default_drivers();
                let pool = sqlx::AnyPool::connect(&admin).await.expect("connect admin");
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&pool)
                    .await
                    .expect("create database");
                pool.close().await;
                let url = replace_db_name(&admin, &name);
                TestDb {
                    kind,
                    dir,
                    url: Some(url),
                    admin_url: Some(admin),
                    pg_name: Some(name),
                }
            }
            other => panic!("unknown backend {other}"),
        }
    }

    /// A database this test owns entirely (a PostgreSQL cluster it starts and stops itself).
    pub fn with_url(url: String) -> TestDb {
        TestDb {
            kind: "postgres",
            dir: tempfile::tempdir().expect("tempdir"),
            url: Some(url),
            admin_url: None,
            pg_name: None,
        }
    }

    pub fn sqlite_path(&self) -> PathBuf {
        self.dir.path().join("data/bsc-bot.sqlite")
    }

    /// URL the library uses to open this database directly.
    pub fn store_url(&self) -> String {
        match &self.url {
            Some(u) => u.clone(),
            None => format!("sqlite://{}", self.sqlite_path().display()),
        }
    }

    pub async fn store(&self) -> Store {
        Store::open(&self.store_url(), &DatabaseConfig::default())
            .await
            .expect("open store")
    }

    /// [`Self::store`] whose PostgreSQL sessions the server ends after `idle_ms` inside a
    /// transaction without a statement: the daemon's guard against a process gone mid-write.
    pub async fn store_with_idle_limit(&self, idle_ms: u64) -> Store {
        Store::open_with_idle_limit(&self.store_url(), &DatabaseConfig::default(), idle_ms)
            .await
            .expect("open store")
    }

    /// The real binary, pointed at this database, with a clean environment.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args).current_dir(self.dir.path());
        for (k, _) in std::env::vars() {
            if k.starts_with("BSC_BOT_") || k == "DATABASE_URL" {
                c.env_remove(k);
            }
        }
        if let Some(url) = &self.url {
            c.env("DATABASE_URL", url);
        }
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        let out = self.cmd(args).output().expect("spawn bsc-bot");
        Run::from(out)
    }

    /// Everything the control plane may change, except the audit log (which records failures too).
    pub async fn snapshot(&self) -> String {
        let store = self.store().await;
        let strategies = store.list_strategies(None).await.expect("list");
        let orders = store.list_orders(None, None).await.expect("orders");
        let ks = store.kill_switch().await.expect("kill switch");
        let risk: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM risk_events")
            .fetch_one(store.pool())
            .await
            .expect("risk count");
        store.close().await;
        format!("{strategies:#?}\n{orders:#?}\n{ks:?}\nrisk_events={risk}")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (Some(admin), Some(name)) = (self.admin_url.clone(), self.pg_name.clone()) else {
            return;
        };
        // Drop runs outside the test's runtime; use a short-lived one of our own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let pool = sqlx::AnyPool::connect(&admin).await.ok()?;
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&pool)
                    .await;
                pool.close().await;
                Some(())
            })
        })
        .join();
    }
}

fn replace_db_name(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[scheme_end..].rfind('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// A finished command.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    #[track_caller]
    pub fn ok(&self) -> &Self {
        assert_eq!(self.code, Some(0), "expected success: {self:#?}");
        self
    }

    #[track_caller]
    pub fn fails_with(&self, code: i32, needle: &str) -> &Self {
        assert_eq!(self.code, Some(code), "expected exit {code}: {self:#?}");
        assert!(
            self.stderr.contains(needle),
            "stderr should contain {needle:?}: {self:#?}"
        );
        self
    }

    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:#?}"))
    }
}

/// A valid grid parameter object for BTC/USDT.
pub const GRID_PARAMS: &str =
    r#"{"lower_price":"100000","upper_price":"110000","grid_count":11,"base_order_size":"50"}"#;

/// The value of one series (`name{labels} `, with the trailing space) in a Prometheus text.
pub fn metric(text: &str, series: &str) -> Option<rust_decimal::Decimal> {
    text.lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|v| v.trim().parse().ok())
}

pub fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Create a paper grid and return its id.
pub fn create_grid(db: &TestDb, name: &str) -> i64 {
    let r = db.run(&[
        "--json",
        "strategy",
        "create",
        "-t",
        "grid",
        "-s",
        "BTC/USDT",
        "-n",
        name,
        "-m",
        "paper",
        "-p",
        GRID_PARAMS,
    ]);
    r.ok();
    r.json()["strategy"]["id"].as_i64().expect("id")
}
