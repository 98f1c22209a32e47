//! Configuration (floor 2, may use floors 0–1): settings and their validation, data only.
//!
//! The daemon's configuration: `bsc-bot.toml`, then environment overrides, then validation.
//!
//! Secrets never live in the file (see [`load::SECRET_ENV_VARS`]); a secret-looking key in the
//! file is rejected so it cannot leak through backups, `config check` or version control.

pub mod canary;
pub mod chain;
pub mod funds;
pub mod load;
pub mod risk;
pub mod url;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use chain::{ChainConfig, DexConfig};
pub use funds::FundsConfig;
pub use risk::RiskConfig;
pub use url::{host_of, redact_url, url_has_password};

/// The highest fee a grid (and so a pool, whose fee is a live grid's) may have: 10 %.
pub const MAX_FEE_BPS: i64 = 1000;
pub use load::{load, ConfigError, ConfigSource};

/// Effective configuration. Every key has a default so the bot runs with no file at all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub database: DatabaseConfig,
    pub log: LogConfig,
    pub data: DataConfig,
    pub market: MarketConfig,
    pub api: ApiConfig,
    pub daemon: DaemonConfig,
    pub alerts: AlertsConfig,
    pub chain: ChainConfig,
    pub dex: DexConfig,
    pub risk: RiskConfig,
    pub funds: FundsConfig,
    /// Canary rollouts: stage lengths, sizes and gate thresholds (each rollout may override).
    pub canary: canary::CanaryConfig,
    /// Several daemons on one PostgreSQL: leases, capacity, renewal.
    pub cluster: ClusterConfig,
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

/// Live market data (Binance public spot WebSocket).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MarketConfig {
    /// Combined-stream endpoints, tried in order (failover); `/stream?streams=…` is appended.
    pub ws_urls: Vec<String>,
    /// A symbol with no trade for this long is stale: its strategies do not trade, health degrades.
    pub stale_after_secs: u64,
    /// No frame at all (not even a ping) for this long means the connection is dead: reconnect.
    pub silent_after_secs: u64,
    /// Reconnect proactively before Binance's 24-hour disconnect.
    pub max_connection_secs: u64,
    /// Reconnect backoff bounds (exponential with jitter).
    pub reconnect_min_ms: u64,
    pub reconnect_max_ms: u64,
    /// Where paper strategies get their price: `binance` (the reference market), or `pool` (the
    /// DEX pool their live twin trades on, read through `[chain]` / `[dex]`), so a paper canary
    /// sees exactly the prices its live twin sees.
    pub paper_price_source: String,
    /// Binance spot markets to accept besides the shipped list (`BASE/QUOTE`).
    pub extra_markets: Vec<String>,
    /// How paper orders fill: `limit` (at the limit price, flat fee) or `amm` (as a swap on a
    /// constant-product pool of `paper_pool_reserves` at the trigger price, pool fee and gas).
    pub paper_fill_model: String,
    /// `BASE:QUOTE` reserves of the pool paper fills through with `paper_fill_model = "amm"`.
    pub paper_pool_reserves: String,
    /// A V3 pool's liquidity profile (a JSON file, as `backtest --save-pool-profile` writes it)
    /// paper fills through with `paper_fill_model = "amm"`, instead of `paper_pool_reserves`.
    pub paper_pool_profile: String,
    /// Gas of one paper swap in quote (gas units × gas price × BNB price).
    pub paper_gas_quote: rust_decimal::Decimal,
}

impl MarketConfig {
    /// The pool paper orders fill through (`None`: the limit model).
    pub fn paper_pool(&self) -> Result<Option<crate::amm::AmmPool>, String> {
        if self.paper_fill_model != "amm" || !self.paper_pool_profile.is_empty() {
            return Ok(None);
        }
        let (b, q) = self.paper_pool_reserves.split_once(':').ok_or(
            "market.paper_pool_reserves: expected BASE:QUOTE with paper_fill_model = \"amm\"",
        )?;
        let parse = |t: &str| t.trim().parse::<rust_decimal::Decimal>().ok();
        match (parse(b), parse(q)) {
            (Some(b), Some(q)) => crate::amm::AmmPool::from_reserves(b, q, self.paper_gas_quote)
                .map(Some)
                .ok_or_else(|| "market.paper_pool_reserves: both reserves must be > 0".to_string()),
            _ => Err("market.paper_pool_reserves: expected BASE:QUOTE, two decimals".into()),
        }
    }
}

impl MarketConfig {
    /// The V3 pool paper orders fill through (`None`: none configured).
    pub fn paper_v3(&self) -> Result<Option<crate::amm::v3::V3FillModel>, String> {
        if self.paper_fill_model != "amm" || self.paper_pool_profile.is_empty() {
            return Ok(None);
        }
        let path = &self.paper_pool_profile;
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("cannot read {path:?}: {e}"))?;
        let profile: crate::amm::v3::V3Profile = serde_json::from_str(&text)
            .map_err(|e| format!("{path:?} is not a V3 pool profile: {e}"))?;
        crate::amm::v3::V3FillModel::new(profile, self.paper_gas_quote)
            .map(Some)
            .map_err(|e| format!("{path:?}: {e}"))
    }
}

impl Default for MarketConfig {
    fn default() -> Self {
        MarketConfig {
            ws_urls: vec![
                "wss://stream.binance.com:9443".to_string(),
                "wss://data-stream.binance.vision".to_string(),
            ],
            stale_after_secs: 10,
            silent_after_secs: 30,
            max_connection_secs: 23 * 3600 + 50 * 60,
            reconnect_min_ms: 250,
            reconnect_max_ms: 30_000,
            paper_price_source: "binance".to_string(),
            extra_markets: Vec::new(),
            paper_fill_model: "limit".to_string(),
            paper_pool_reserves: String::new(),
            paper_pool_profile: String::new(),
            paper_gas_quote: rust_decimal::Decimal::new(9, 3),
        }
    }
}

/// The daemon's HTTP API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Listen address; keep it on loopback unless a proxy with TLS sits in front.
    pub listen: String,
    /// Token file used when BSC_BOT_API_TOKEN is unset (created on first start, mode 0600).
    pub token_file: String,
    /// Requests per second per client address (token bucket), and the burst above it.
    pub rate_limit_per_sec: u32,
    pub rate_limit_burst: u32,
    /// A connection that has not sent a whole request head this long after it opened (or after
    /// its last answer, kept alive) is closed: half-sent or dripping requests hold nothing.
    pub request_head_timeout_ms: u64,
    /// Open connections allowed per client address, and in all: beyond, new ones are closed at
    /// once, so no local process can take the daemon's file descriptors.
    pub max_connections_per_client: usize,
    pub max_connections: usize,
    /// Serve the operator console at `/` and `/console/` (the API itself is served either way).
    pub console: bool,
    /// A live fill's transaction page in a block explorer, `{tx}` standing for its hash: the
    /// console links each fill to it (a testnet or a private explorer changes it here).
    pub explorer_tx_url: String,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: "127.0.0.1:10001".to_string(),
            token_file: "data/api-token".to_string(),
            rate_limit_per_sec: 20,
            rate_limit_burst: 40,
            request_head_timeout_ms: 10_000,
            max_connections_per_client: 32,
            max_connections: 256,
            console: true,
            explorer_tx_url: "https://bscscan.com/tx/{tx}".to_string(),
        }
    }
}

/// The daemon loop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DaemonConfig {
    /// How often desired state is re-read from the database even without a poke.
    pub control_poll_ms: u64,
    /// How often strategy state is persisted when it changed.
    pub snapshot_every_ms: u64,
    /// Nice value given to every daemon thread but the engine's (0 = leave priorities alone), so
    /// the writer and the API never preempt a tick's decision on a small host.
    pub background_nice: i32,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            control_poll_ms: 250,
            snapshot_every_ms: 1_000,
            background_nice: 5,
        }
    }
}

/// Several daemons on one PostgreSQL database share its strategies by leases (SQLite keeps one
/// daemon per file whatever this says).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// On PostgreSQL, join the cluster (false: one daemon per database, as on SQLite).
    pub enabled: bool,
    /// Units (a wallet with its live strategies, a paper strategy) this daemon takes at most.
    pub capacity: u32,
    /// How long a lease lasts unrenewed. A daemon that cannot renew stops trading its units
    /// three renewal periods before this runs out; another daemon takes them once it has.
    pub lease_secs: u64,
    /// How often leases are renewed (and the node's heartbeat written).
    pub renew_ms: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            enabled: true,
            capacity: 1_000,
            lease_secs: 10,
            renew_ms: 1_000,
        }
    }
}

impl ClusterConfig {
    /// Lease length in milliseconds.
    pub fn lease_ms(&self) -> i64 {
        i64::try_from(self.lease_secs.saturating_mul(1000)).unwrap_or(i64::MAX)
    }
}

/// Where alerts go. Tokens come from the environment (BSC_BOT_SLACK_WEBHOOK_URL,
/// BSC_BOT_TELEGRAM_BOT_TOKEN); the generic webhook URL may live here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// Generic JSON webhook (POST {"kind","severity","message","timestamp"}); empty = off.
    pub webhook_url: String,
    /// Telegram chat to post to; empty = off (the bot token comes from BSC_BOT_TELEGRAM_BOT_TOKEN).
    pub telegram_chat_id: String,
    /// Telegram API base (a local stand-in in tests).
    pub telegram_api_url: String,
    /// The same alert (kind + message) is sent at most once per window.
    pub dedupe_window_secs: u64,
    /// Delivery attempts per alert and per destination.
    pub max_attempts: u32,
    /// A feed stale for longer than this raises an alert.
    pub feed_stale_alert_secs: u64,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            webhook_url: String::new(),
            telegram_chat_id: String::new(),
            telegram_api_url: "https://api.telegram.org".to_string(),
            dedupe_window_secs: 300,
            max_attempts: 4,
            feed_stale_alert_secs: 60,
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
    /// The daemon also logs to this file (relative to the config file's folder), one file a day
    /// (`FILE.YYYY-MM-DD`); empty: stderr only.
    pub file: String,
    /// Daily log files kept (older ones are deleted at rotation).
    pub keep_days: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            database: DatabaseConfig::default(),
            log: LogConfig::default(),
            data: DataConfig::default(),
            market: MarketConfig::default(),
            api: ApiConfig::default(),
            daemon: DaemonConfig::default(),
            alerts: AlertsConfig::default(),
            chain: ChainConfig::default(),
            dex: DexConfig::default(),
            risk: RiskConfig::default(),
            funds: FundsConfig::default(),
            canary: canary::CanaryConfig::default(),
            cluster: ClusterConfig::default(),
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
            file: String::new(),
            keep_days: 14,
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
