//! Persistence (floor 4, may use floors 0–3): SQLite or PostgreSQL, the source of truth.
//!
//! One sqlx pool over SQLite (default) or PostgreSQL, migrations applied on open.
//!
//! The database is the source of truth for desired state (strategy status, kill switch) and for
//! history. Every operator write goes through [`Store::begin_control_write`], which bumps one
//! revision counter first: that serialises control-plane writers on both backends and gives the
//! daemon a cheap "did anything change?" check.

pub mod audit;
pub mod backtests;
pub mod backup;
pub mod canary;
pub mod chain_txs;
pub mod cluster;
pub mod control;
pub mod daemon;
pub mod error;
pub mod funds;
pub mod orders;
pub mod paper;
pub mod recovery;
pub mod strategies;

use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, Executor, Row, Transaction};

use crate::config::{sqlite_path, DatabaseConfig};

/// A failed connection, naming the database (its URL without the password) and the cause: the
/// pool only says it timed out retrying, so one direct attempt is made to learn why (refused,
/// unknown host, authentication).
async fn connect_failure(url: &str, e: sqlx::Error) -> StoreError {
    let cause = match e {
        sqlx::Error::PoolTimedOut => {
            let direct = tokio::time::timeout(
                Duration::from_secs(5),
                <sqlx::AnyConnection as sqlx::Connection>::connect(url),
            )
            .await;
            match direct {
                Ok(Err(why)) => why.to_string(),
                _ => "no connection within the pool's timeout".to_string(),
            }
        }
        other => other.to_string(),
    };
    StoreError::ConnectTo {
        target: crate::config::redact_url(url),
        cause,
    }
}

/// The one spelling of an address on record: `0x` and 40 lower-case hex digits. Every query
/// that stores or filters by an address takes an `Address` and binds this, so no comparison
/// can depend on how the address was written (checksummed, upper or lower case).
pub fn address_key(address: &alloy::primitives::Address) -> String {
    format!("{address:#x}")
}

pub use audit::AuditContext;
pub use control::KillSwitch;
pub use daemon::DaemonInfoExt;
pub use error::StoreError;
pub use orders::{OrderRecord, OrderStatus};
pub use paper::PlacedOrder;
pub use strategies::{StopAllReport, StrategyRecord, StrategyRef};

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// How long a PostgreSQL session of ours may sit inside a transaction with no statement before
/// the server ends it. Our transactions wait on nothing but the database (pg_dump's snapshot
/// excepted, which lifts the limit for itself), so such a session has lost its process: one
/// cut off from the network, or stopped, mid-write. Ended, it lets go of its row locks; left,
/// it would hold a unit's lease row share-locked, and with it every other member's takeover,
/// until TCP gave up on it (hours with the kernel's defaults), as the database cannot tell a
/// silent client from a gone one.
pub const IDLE_IN_TRANSACTION_MS: u64 = 5_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// Set on a cluster member's store: unit writes are fenced by its leases.
    fence: Option<std::sync::Arc<cluster::Fence>>,
}

/// A write transaction whose first statement took the control-row lock.
pub type WriteTx = Transaction<'static, Any>;

impl Store {
    /// Connect (creating the SQLite file and its folder if needed) and apply pending migrations.
    pub async fn open(url: &str, db: &DatabaseConfig) -> Result<Store, StoreError> {
        Store::open_with_idle_limit(url, db, IDLE_IN_TRANSACTION_MS).await
    }

    /// [`Store::open`], with PostgreSQL ending a session of ours that sits inside a transaction
    /// for `idle_in_transaction_ms` without a statement (see [`IDLE_IN_TRANSACTION_MS`]).
    pub async fn open_with_idle_limit(
        url: &str,
        db: &DatabaseConfig,
        idle_in_transaction_ms: u64,
    ) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if sqlite_path(url).is_some() {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let url = match backend {
            Backend::Sqlite => prepare_sqlite_url(url)?,
            Backend::Postgres => url.to_string(),
        };
        let busy_ms = db.busy_timeout_ms;
        let mut options = AnyPoolOptions::new()
            .max_connections(db.max_connections)
            .acquire_timeout(Duration::from_millis(busy_ms.max(5_000)));
        options = match backend {
            Backend::Sqlite => options.after_connect(move |conn, _meta| {
                Box::pin(async move {
                    // busy_timeout first, so the pragmas below wait for a busy writer too.
                    conn.execute(sqlx::raw_sql(&format!("PRAGMA busy_timeout = {busy_ms}")))
                        .await?;
                    conn.execute("PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL")
                        .await?;
                    Ok(())
                })
            }),
            Backend::Postgres => options.after_connect(move |conn, _meta| {
                Box::pin(async move {
                    conn.execute(sqlx::raw_sql(&format!(
                        "SET idle_in_transaction_session_timeout = {idle_in_transaction_ms}"
                    )))
                    .await?;
                    Ok(())
                })
            }),
        };
        let pool = match options.connect(&url).await {
            Ok(p) => p,
            Err(e) => return Err(connect_failure(&url, e).await),
        };
        if let Some(path) = sqlite_path(&url).filter(|p| *p != ":memory:") {
            // The trading history is the operator's alone: made by whoever opened it first, or
            // before the bot set its umask, it is made 0600 (SQLite gives its WAL the same mode).
            for suffix in ["", "-wal", "-shm"] {
                crate::private_files::tighten_file(Path::new(&format!("{path}{suffix}")))
                    .map_err(|e| StoreError::Io(e.to_string()))?;
            }
        }
        let store = Store {
            pool,
            backend,
            fence: None,
        };
        store.migrate(&url).await?;
        Ok(store)
    }

    async fn migrate(&self, url: &str) -> Result<(), StoreError> {
        match self.backend {
            // PostgreSQL: sqlx takes an advisory lock around migrations itself.
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&self.pool).await?,
            Backend::Sqlite => {
                // SQLite has no advisory lock; a lock file keeps concurrent first starts
                // (several CLI processes on a fresh file) from applying the same migration twice.
                let lock_path = sqlite_path(url)
                    .filter(|p| *p != ":memory:")
                    .map(|p| format!("{p}.migrate-lock"));
                let _guard = match lock_path {
                    Some(path) => {
                        let file = std::fs::OpenOptions::new()
                            .create(true)
                            .truncate(false)
                            .write(true)
                            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
                            .open(&path)
                            .map_err(|e| StoreError::Io(format!("{path}: {e}")))?;
                        file.lock()
                            .map_err(|e| StoreError::Io(format!("lock {path}: {e}")))?;
                        Some(file)
                    }
                    None => None,
                };
                let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
                    .fetch_one(&self.pool)
                    .await?;
                if !mode.eq_ignore_ascii_case("wal") {
                    sqlx::query("PRAGMA journal_mode = WAL")
                        .execute(&self.pool)
                        .await?;
                }
                SQLITE_MIGRATIONS.run(&self.pool).await?;
            }
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// SQLite needs `BEGIN IMMEDIATE` so a read-then-write transaction waits for the write
    /// lock up front instead of failing with "database is locked" when it upgrades.
    pub async fn begin_write(&self) -> Result<WriteTx, StoreError> {
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        Ok(tx)
    }

    /// Begin an operator write: lock the control row, bump the revision, return the kill switch.
    pub async fn begin_control_write(&self, now_ms: i64) -> Result<(WriteTx, bool), StoreError> {
        let mut tx = self.begin_write().await?;
        let row: AnyRow = sqlx::query(
            "UPDATE control_state SET revision = revision + 1, updated_at = $1 WHERE id = 1 \
             RETURNING kill_switch",
        )
        .bind(now_ms)
        .fetch_one(&mut *tx)
        .await?;
        let engaged: i64 = row.try_get("kill_switch")?;
        Ok((tx, engaged != 0))
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Create the SQLite file's folder and ask sqlx to create the file (`mode=rwc`).
fn prepare_sqlite_url(url: &str) -> Result<String, StoreError> {
    let path = sqlite_path(url).unwrap_or_default();
    if path != ":memory:" && !path.is_empty() {
        if let Some(parent) = Path::new(path)
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
        {
            crate::private_files::create_private_dirs(parent)
                .map_err(|e| StoreError::Io(format!("create {e}")))?;
        }
        // A file that is not SQLite is refused at once, instead of by a pool retrying for seconds.
        if let Ok(mut f) = std::fs::File::open(path) {
            use std::io::Read;
            let mut header = [0u8; 16];
            match f.read(&mut header) {
                Ok(0) => {}
                Ok(n) if n == 16 && &header == b"SQLite format 3\0" => {}
                _ => return Err(StoreError::NotADatabase(path.to_string())),
            }
        }
    }
    if url.contains("mode=") {
        Ok(url.to_string())
    } else if url.contains('?') {
        Ok(format!("{url}&mode=rwc"))
    } else {
        Ok(format!("{url}?mode=rwc"))
    }
}
