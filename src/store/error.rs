//! Store errors, split into what the operator did wrong and what broke underneath.

use crate::strategy::InvalidTransition;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("strategy {id} ({name}): {source}")]
    InvalidTransition {
        id: i64,
        name: String,
        source: InvalidTransition,
    },
    #[error("the emergency kill switch is engaged ({reason}); {action} is refused until `bsc-bot emergency clear --reason …`")]
    KillSwitchEngaged { reason: String, action: String },
    #[error("a strategy named {0:?} already exists and is not stopped; pick another name or stop it first")]
    DuplicateName(String),
    #[error("{0}")]
    Conflict(String),
    #[error("cannot connect to the database: {0}")]
    Connect(sqlx::Error),
    /// Names where (the URL without its password) and the real cause, not only the pool's
    /// "timed out".
    #[error("cannot connect to the database at {target}: {cause}")]
    ConnectTo { target: String, cause: String },
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database holds an unexpected value: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Io(String),
    /// A write for a unit whose lease this daemon no longer holds (or could not renew).
    #[error("fenced: {0}")]
    Fenced(String),
    /// A unit's lease row stayed locked past the wait given: a write of its owner's has not
    /// finished (or its owner vanished mid-write, until the database ends that session).
    #[error("the lease of {0} is locked by a write that has not finished; tried again next round")]
    LeaseBusy(String),
    #[error("{0} is not a SQLite database (wrong file, or a damaged one); point database.url at the bot's database or restore it from a backup")]
    NotADatabase(String),
}

impl StoreError {
    /// The operator can fix it by changing the command (exit code 1), as opposed to a
    /// failure of the database or machine (exit code 2).
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            StoreError::NotFound(_)
                | StoreError::InvalidTransition { .. }
                | StoreError::KillSwitchEngaged { .. }
                | StoreError::DuplicateName(_)
                | StoreError::Conflict(_)
                | StoreError::NotADatabase(_)
        )
    }
}
