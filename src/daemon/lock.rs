//! One daemon per database: a file lock beside a SQLite database, a session advisory lock on
//! PostgreSQL (held by a connection kept for the daemon's lifetime). Both vanish with the process,
//! so a crashed daemon never leaves a stale lock behind.

use sqlx::pool::PoolConnection;
use sqlx::Any;
use std::os::unix::fs::OpenOptionsExt;

use crate::config::sqlite_path;
use crate::store::{Backend, Store};

/// Arbitrary constant naming bsc-bot's advisory lock.
const PG_LOCK_KEY: i64 = 0x0062_7363_5f62_6f74;

pub enum DaemonLock {
    File(std::fs::File),
    Postgres(PoolConnection<Any>),
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another bsc-bot daemon is already running on this database{0}")]
    Held(String),
    #[error("cannot take the daemon lock: {0}")]
    Failed(String),
}

pub async fn acquire(store: &Store, url: &str) -> Result<DaemonLock, LockError> {
    let holder = match store.daemon_info().await {
        Ok(Some(d)) if d.stopped_at.is_none() => {
            format!(" (pid {} on {}, API {})", d.pid, d.host, d.api_addr)
        }
        _ => String::new(),
    };
    match store.backend() {
        Backend::Sqlite => {
            let path = sqlite_path(url)
                .filter(|p| *p != ":memory:")
                .unwrap_or("bsc-bot");
            // The database's real identity, not the path it was named by: a symlink or a
            // `dir/../` spelling of the same file must find the same lock.
            let real = std::fs::canonicalize(path)
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| path.to_string());
            let lock_path = format!("{real}.daemon-lock");
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
                .open(&lock_path)
                .map_err(|e| LockError::Failed(format!("{lock_path}: {e}")))?;
            match file.try_lock() {
                Ok(()) => Ok(DaemonLock::File(file)),
                Err(std::fs::TryLockError::WouldBlock) => Err(LockError::Held(format!(
                    "{holder}; SQLite runs one daemon per database: to run several daemons (a \
                     standby, more capacity) put them on one PostgreSQL database, where they \
                     share the strategies by leases"
                ))),
                Err(std::fs::TryLockError::Error(e)) => {
                    Err(LockError::Failed(format!("{lock_path}: {e}")))
                }
            }
        }
        Backend::Postgres => {
            let mut conn = store
                .pool()
                .acquire()
                .await
                .map_err(|e| LockError::Failed(e.to_string()))?;
            let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                .bind(PG_LOCK_KEY)
                .fetch_one(&mut *conn)
                .await
                .map_err(|e| LockError::Failed(e.to_string()))?;
            if got {
                Ok(DaemonLock::Postgres(conn))
            } else {
                Err(LockError::Held(format!(
                    "{holder}; this one has cluster.enabled = false (one daemon per database)"
                )))
            }
        }
    }
}
