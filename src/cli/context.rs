//! What every command needs: the loaded config, output mode, a store, and audit/exit handling.

use std::future::Future;

use crate::clock::wall_clock_ms;
use crate::config::{self, Config, ConfigError, ConfigSource};
use crate::model::ParamError;
use crate::store::{AuditContext, Store, StoreError};
use crate::strategy::SpecError;

use super::Cli;

/// Exit code 1: the operator can fix the command.
pub const EXIT_INVALID_INPUT: i32 = 1;
/// Exit code 2: something underneath failed (database, I/O).
pub const EXIT_RUNTIME_FAILURE: i32 = 2;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    pub exit_code: i32,
    pub message: String,
}

impl CliError {
    pub fn invalid(message: impl Into<String>) -> Self {
        CliError {
            exit_code: EXIT_INVALID_INPUT,
            message: message.into(),
        }
    }

    pub fn runtime(message: impl Into<String>) -> Self {
        CliError {
            exit_code: EXIT_RUNTIME_FAILURE,
            message: message.into(),
        }
    }

    pub fn kind(&self) -> &'static str {
        if self.exit_code == EXIT_INVALID_INPUT {
            "invalid_input"
        } else {
            "runtime_failure"
        }
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<StoreError> for CliError {
    fn from(e: StoreError) -> Self {
        if e.is_invalid_input() {
            CliError::invalid(e.to_string())
        } else {
            CliError::runtime(e.to_string())
        }
    }
}

impl From<crate::backtest::record::RecordError> for CliError {
    fn from(e: crate::backtest::record::RecordError) -> Self {
        match e {
            crate::backtest::record::RecordError::Store(e) => e.into(),
            crate::backtest::record::RecordError::Io(m) => CliError::runtime(m),
        }
    }
}

impl From<ConfigError> for CliError {
    fn from(e: ConfigError) -> Self {
        CliError::invalid(e.to_string())
    }
}

impl From<SpecError> for CliError {
    fn from(e: SpecError) -> Self {
        CliError::invalid(e.to_string())
    }
}

impl From<ParamError> for CliError {
    fn from(e: ParamError) -> Self {
        CliError::invalid(e.to_string())
    }
}

pub struct Context {
    pub config: Config,
    pub source: ConfigSource,
    pub json: bool,
    /// The command line after the program name, for the audit log.
    pub argv: Vec<String>,
}

impl Context {
    pub fn from_cli(cli: &Cli) -> Result<Self, CliError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        let (config, source) = config::load(&cli.config, cli.config_is_explicit(), &env)?;
        Ok(Context {
            config,
            source,
            json: cli.json,
            argv: std::env::args().skip(1).collect(),
        })
    }

    pub async fn open_store(&self) -> Result<Store, CliError> {
        let url = self.config.database.resolved_url(&self.config.base_dir);
        Ok(Store::open(&url, &self.config.database).await?)
    }

    pub fn audit(&self, command: &str) -> AuditContext {
        AuditContext::new(command, self.argv.clone())
    }

    /// Run a state-changing command; a failure is recorded in the audit log before it is
    /// returned (successes are recorded inside the command's own transaction), a success pokes
    /// the running daemon.
    pub async fn audited<T, F>(
        &self,
        store: &Store,
        audit: &AuditContext,
        body: F,
    ) -> Result<T, CliError>
    where
        F: Future<Output = Result<T, CliError>>,
    {
        let result = body.await;
        match &result {
            // Desired state changed: tell a running daemon now (it re-reads on its own as well).
            Ok(_) => super::bot::poke(self, store).await,
            Err(e) => {
                if let Err(audit_err) = store
                    .record_failed_command(audit, &e.message, wall_clock_ms())
                    .await
                {
                    tracing::warn!(error = %audit_err, "could not record the failed command in the audit log");
                }
            }
        }
        result
    }
}
