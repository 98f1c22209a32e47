//! The daemon's configuration: `bsc-bot.toml`, then environment overrides, then validation.
//!
//! Secrets never live in the file (see [`load::SECRET_ENV_VARS`]); a secret-looking key in the
//! file is rejected so it cannot leak through backups, `config check` or version control.

pub mod load;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use load::{load, ConfigError, ConfigSource};

/// Effective configuration. Every key has a default so the bot runs with no file at all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub database: DatabaseConfig,
    pub log: LogConfig,
    pub data: DataConfig,
    /// Directory relative paths in the config are resolved against (the config file's folder).
    #[serde(skip)]
    pub base_dir: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` (relative to the config file) or `postgres://…` (password only via env).
    pub url: String,
    pub max_connections: u32,
    /// How long a writer waits for SQLite's single write lock before giving up.
    pub busy_timeout_ms: u64,
}

/// Historical market data for backtests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// Folder `data download` fills and `backtest quick-grid` reads (relative to the config file).
    pub dir: String,
    /// Binance public archive; a local mirror with the same layout works too.
    pub archive_url: String,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            dir: "backtest-data".to_string(),
            archive_url: "https://data.binance.vision".to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `tracing` filter directive, e.g. `info` or `bsc_bot=debug,sqlx=warn`.
    pub level: String,
    /// `text` for people, `json` for log shippers.
    pub format: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            database: DatabaseConfig::default(),
            log: LogConfig::default(),
            data: DataConfig::default(),
            base_dir: PathBuf::from("."),
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: "sqlite://data/bsc-bot.sqlite".to_string(),
            max_connections: 5,
            busy_timeout_ms: 10_000,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".to_string(),
            format: "text".to_string(),
        }
    }
}

impl DatabaseConfig {
    /// The URL with a relative SQLite path resolved against `base_dir`.
    pub fn resolved_url(&self, base_dir: &Path) -> String {
        match sqlite_path(&self.url) {
            Some(path) if path != ":memory:" && Path::new(path).is_relative() => {
                format!("sqlite://{}", base_dir.join(path).display())
            }
            _ => self.url.clone(),
        }
    }

    pub fn is_sqlite(&self) -> bool {
        sqlite_path(&self.url).is_some()
    }

    /// The URL with any password replaced, safe to print and log.
    pub fn redacted_url(&self) -> String {
        redact_url(&self.url)
    }
}

/// The file path of a `sqlite:` URL, without its query string.
pub fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    Some(rest.split('?').next().unwrap_or(rest))
}

/// `scheme://user:secret@host` → `scheme://user:***@host`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

/// True when a URL carries a password (which must come from env, not the file).
pub fn url_has_password(url: &str) -> bool {
    redact_url(url) != url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("postgres://bot:hunter2@db:5432/bsc"),
            "postgres://bot:***@db:5432/bsc"
        );
        assert_eq!(redact_url("postgres://bot@db/bsc"), "postgres://bot@db/bsc");
        assert_eq!(
            redact_url("sqlite://data/x.sqlite"),
            "sqlite://data/x.sqlite"
        );
    }

    #[test]
    fn resolves_relative_sqlite_paths() {
        let db = DatabaseConfig::default();
        assert_eq!(
            db.resolved_url(Path::new("/etc/bsc-bot")),
            "sqlite:///etc/bsc-bot/data/bsc-bot.sqlite"
        );
        let abs = DatabaseConfig {
            url: "sqlite:///var/lib/bot.sqlite".into(),
            ..DatabaseConfig::default()
        };
        assert_eq!(
            abs.resolved_url(Path::new("/x")),
            "sqlite:///var/lib/bot.sqlite"
        );
    }
}
