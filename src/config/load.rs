//! Reading the config: file (optional only at the default path), env overrides, validation.

use std::path::{Path, PathBuf};

use super::{url_has_password, Config};

/// Environment variables that carry secrets or test hooks; they are not config keys and are
/// never printed. Everything else starting with `BSC_BOT_` must name a config key.
pub const SECRET_ENV_VARS: &[&str] = &[
    "BSC_BOT_API_TOKEN",
    "BSC_BOT_PRIVATE_KEY",
    "BSC_BOT_KEYSTORE_PASSWORD",
    "BSC_BOT_TREASURY_PRIVATE_KEY",
    "BSC_BOT_TELEGRAM_BOT_TOKEN",
    "BSC_BOT_SLACK_WEBHOOK_URL",
];

/// Not config keys either, and not secret: read by the binary itself.
const NON_CONFIG_ENV_VARS: &[&str] = &["BSC_BOT_CONFIG", "BSC_BOT_FAILPOINTS", "BSC_BOT_LOG"];

/// Key names that look like secrets; rejected in the file.
const SECRET_KEY_WORDS: &[&str] = &[
    "password",
    "secret",
    "token",
    "private_key",
    "mnemonic",
    "seed",
];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {message}")]
    Syntax { path: String, message: String },
    #[error("config key {key} is not a known key ({expected})")]
    UnknownKey { key: String, expected: String },
    #[error("config section [{section}] in {path}: {message}")]
    Section {
        path: String,
        section: String,
        message: String,
    },
    #[error("config key {key} = {value} is invalid: expected {expected}")]
    Invalid {
        key: String,
        value: String,
        expected: String,
    },
    #[error("config key {key} looks like a secret; secrets must come from the environment ({hint}), never from the config file")]
    SecretInFile { key: String, hint: String },
    #[error("environment variable {var} does not name a config key ({why})")]
    UnknownEnv { var: String, why: String },
    #[error("{} config problems: {}", .0.len(), .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Many(Vec<ConfigError>),
}

/// Where the effective config came from, for `config check` and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    File(PathBuf),
    /// The default path did not exist; embedded defaults are in effect.
    Defaults,
}

/// Load `path` (or the embedded defaults when `path` is the default and absent), apply env
/// overrides from `env`, validate.
pub fn load(
    path: &Path,
    explicit: bool,
    env: &[(String, String)],
) -> Result<(Config, ConfigSource), ConfigError> {
    let shown = path.display().to_string();
    let (mut table, source) = match std::fs::read_to_string(path) {
        Ok(text) => {
            let table: toml::Table =
                text.parse()
                    .map_err(|e: toml::de::Error| ConfigError::Syntax {
                        path: shown.clone(),
                        message: e.to_string().trim().to_string(),
                    })?;
            reject_secret_keys(&table, "")?;
            (table, ConfigSource::File(path.to_path_buf()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
            (toml::Table::new(), ConfigSource::Defaults)
        }
        Err(source) => {
            return Err(ConfigError::Read {
                path: shown,
                source,
            })
        }
    };
    if let Some(url) = table
        .get("database")
        .and_then(|d| d.get("url"))
        .and_then(|u| u.as_str())
    {
        if url_has_password(url) {
            return Err(ConfigError::SecretInFile {
                key: "database.url".into(),
                hint: "put the whole URL in DATABASE_URL".into(),
            });
        }
    }
    apply_env(&mut table, env)?;
    let (mut config, mut problems) = deserialize(table, &shown);
    config.base_dir = match &source {
        ConfigSource::File(p) => p
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from(".")),
        ConfigSource::Defaults => PathBuf::from("."),
    };
    // Every problem at once: unknown keys and bad sections, then the values' checks.
    match validate(&config) {
        Ok(()) => {}
        Err(ConfigError::Many(more)) => problems.extend(more),
        Err(e) => problems.push(e),
    }
    match problems.len() {
        0 => Ok((config, source)),
        1 => Err(problems.remove(0)),
        _ => Err(ConfigError::Many(problems)),
    }
}

/// The config, and every key or section it could not take. A section that fails is taken
/// without its unknown keys (each reported with the keys it could have been), or left at its
/// defaults when something else in it is wrong, so the checks of the rest still run.
fn deserialize(table: toml::Table, shown: &str) -> (Config, Vec<ConfigError>) {
    if let Ok(config) = Config::deserialize_from(table.clone()) {
        return (config, Vec::new());
    }
    let mut problems = Vec::new();
    let mut taken = toml::Table::new();
    for (section, mut body) in table {
        // Bounded: each round removes one key.
        for _ in 0..1_000 {
            let mut one = toml::Table::new();
            one.insert(section.clone(), body.clone());
            let message = match Config::deserialize_from(one) {
                Ok(_) => {
                    taken.insert(section.clone(), body);
                    break;
                }
                Err(e) => e.to_string().trim().to_string(),
            };
            if let Some((field, expected)) = unknown_field(&message) {
                if field == section {
                    problems.push(ConfigError::UnknownKey {
                        key: section.clone(),
                        expected,
                    });
                    break;
                }
                if let Some(path) = remove_key(&mut body, &field) {
                    problems.push(ConfigError::UnknownKey {
                        key: format!("{section}.{path}"),
                        expected,
                    });
                    continue;
                }
            }
            problems.push(ConfigError::Section {
                path: shown.to_string(),
                section: section.clone(),
                message,
            });
            break;
        }
    }
    let config = Config::deserialize_from(taken).unwrap_or_default();
    (config, problems)
}

/// `unknown field `k`, expected one of …` → (`k`, `expected one of …`).
fn unknown_field(message: &str) -> Option<(String, String)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (field, after) = rest.split_once('`')?;
    let expected = after
        .trim_start_matches(',')
        .trim()
        .lines()
        .next()
        .unwrap_or("")
        .to_string();
    let expected = if expected.is_empty() {
        "no keys are known there".to_string()
    } else {
        expected
    };
    Some((field.to_string(), expected))
}

/// Remove the first key named `field` in `value` (depth first), returning its dotted path.
fn remove_key(value: &mut toml::Value, field: &str) -> Option<String> {
    let table = value.as_table_mut()?;
    if table.remove(field).is_some() {
        return Some(field.to_string());
    }
    for (name, inner) in table.iter_mut() {
        if let Some(path) = remove_key(inner, field) {
            return Some(format!("{name}.{path}"));
        }
    }
    None
}

impl Config {
    fn deserialize_from(table: toml::Table) -> Result<Config, toml::de::Error> {
        toml::Value::Table(table).try_into()
    }
}

fn reject_secret_keys(table: &toml::Table, prefix: &str) -> Result<(), ConfigError> {
    for (key, value) in table {
        let full = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        let lower = key.to_ascii_lowercase();
        // A path to a file holding a secret (`token_file`) is not the secret itself.
        if !lower.ends_with("_file") && SECRET_KEY_WORDS.iter().any(|w| lower.contains(w)) {
            return Err(ConfigError::SecretInFile {
                key: full,
                hint: format!(
                    "see the README for the variable; e.g. {}",
                    SECRET_ENV_VARS[0]
                ),
            });
        }
        if let toml::Value::Table(inner) = value {
            reject_secret_keys(inner, &full)?;
        }
    }
    Ok(())
}

/// `DATABASE_URL` and `BSC_BOT_<SECTION>_<KEY>` override file values. The type of each value is
/// taken from the default config, so `BSC_BOT_DATABASE_MAX_CONNECTIONS=8` becomes an integer.
fn apply_env(table: &mut toml::Table, env: &[(String, String)]) -> Result<(), ConfigError> {
    let defaults = toml::Table::try_from(Config::default()).unwrap_or_default();
    for (var, value) in env {
        let (section, key) = if var == "DATABASE_URL" {
            ("database".to_string(), "url".to_string())
        } else if let Some(rest) = var.strip_prefix("BSC_BOT_") {
            if SECRET_ENV_VARS.contains(&var.as_str())
                || NON_CONFIG_ENV_VARS.contains(&var.as_str())
            {
                continue;
            }
            let rest = rest.to_ascii_lowercase();
            let Some((section, key)) = defaults
                .keys()
                .filter_map(|s| {
                    rest.strip_prefix(&format!("{s}_"))
                        .map(|k| (s.clone(), k.to_string()))
                })
                .next()
            else {
                return Err(ConfigError::UnknownEnv {
                    var: var.clone(),
                    why: format!(
                        "sections are: {}",
                        defaults.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                });
            };
            (section, key)
        } else {
            continue;
        };
        let Some(default_value) = defaults.get(&section).and_then(|s| s.get(&key)) else {
            return Err(ConfigError::UnknownEnv {
                var: var.clone(),
                why: format!("[{section}] has no key {key}"),
            });
        };
        let typed = typed_like(default_value, value).ok_or_else(|| ConfigError::Invalid {
            key: format!("{section}.{key} (from {var})"),
            value: format!("{value:?}"),
            expected: format!("a {}", default_value.type_str()),
        })?;
        let section_table = table
            .entry(section.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        match section_table {
            toml::Value::Table(t) => {
                t.insert(key, typed);
            }
            _ => {
                return Err(ConfigError::Invalid {
                    key: section,
                    value: "a non-table value".into(),
                    expected: "a [section] table".into(),
                })
            }
        }
    }
    Ok(())
}

fn typed_like(default: &toml::Value, raw: &str) -> Option<toml::Value> {
    Some(match default {
        toml::Value::String(_) => toml::Value::String(raw.to_string()),
        toml::Value::Integer(_) => toml::Value::Integer(raw.trim().parse().ok()?),
        toml::Value::Float(_) => toml::Value::Float(raw.trim().parse().ok()?),
        toml::Value::Boolean(_) => toml::Value::Boolean(raw.trim().parse().ok()?),
        toml::Value::Array(_) => {
            // A TOML array literal, or plain comma-separated values (`ws://a,ws://b`).
            let parsed: Option<toml::Table> = format!("v = {raw}").parse().ok();
            parsed
                .and_then(|t| t.get("v").cloned())
                .filter(|v| v.is_array())
                .unwrap_or_else(|| {
                    toml::Value::Array(
                        raw.split(',')
                            .map(|s| toml::Value::String(s.trim().to_string()))
                            .filter(|v| v.as_str() != Some(""))
                            .collect(),
                    )
                })
        }
        _ => return None,
    })
}

/// Every problem at once: an operator fixes the file in one go, not one error per attempt.
fn validate(config: &Config) -> Result<(), ConfigError> {
    let mut errors: Vec<ConfigError> = Vec::new();
    for section in [
        super::chain::validate(&config.chain, &config.dex),
        config.risk.validate(),
        config.funds.validate(),
        config.canary.validate().map_err(|e| ConfigError::Invalid {
            key: format!("canary.{}", e.key),
            value: e.value,
            expected: e.expected,
        }),
    ] {
        if let Err(e) = section {
            errors.push(e);
        }
    }
    let db = &config.database;
    let url = &db.url;
    if !(db.is_sqlite() || url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        errors.push(ConfigError::Invalid {
            key: "database.url".into(),
            value: format!("{:?}", db.redacted_url()),
            expected: "sqlite://PATH or postgres://USER@HOST/DB".into(),
        });
    }
    if !(1..=100).contains(&db.max_connections) {
        errors.push(ConfigError::Invalid {
            key: "database.max_connections".into(),
            value: db.max_connections.to_string(),
            expected: "an integer in 1..=100".into(),
        });
    }
    if !(100..=600_000).contains(&db.busy_timeout_ms) {
        errors.push(ConfigError::Invalid {
            key: "database.busy_timeout_ms".into(),
            value: db.busy_timeout_ms.to_string(),
            expected: "milliseconds in 100..=600000".into(),
        });
    }
    let cluster = &config.cluster;
    if !(2..=3_600).contains(&cluster.lease_secs) {
        errors.push(ConfigError::Invalid {
            key: "cluster.lease_secs".into(),
            value: cluster.lease_secs.to_string(),
            expected: "seconds in 2..=3600".into(),
        });
    }
    // Renewal must leave room for several tries, and the halt, before the lease runs out.
    if !(100..=60_000).contains(&cluster.renew_ms)
        || cluster.renew_ms.saturating_mul(4) > cluster.lease_secs.saturating_mul(1000)
    {
        errors.push(ConfigError::Invalid {
            key: "cluster.renew_ms".into(),
            value: cluster.renew_ms.to_string(),
            expected: "milliseconds in 100..=60000, at most a quarter of cluster.lease_secs".into(),
        });
    }
    if cluster.capacity == 0 {
        errors.push(ConfigError::Invalid {
            key: "cluster.capacity".into(),
            value: "0".into(),
            expected: "at least 1 unit".into(),
        });
    }
    let archive = &config.data.archive_url;
    if !(archive.starts_with("https://") || archive.starts_with("http://")) {
        errors.push(ConfigError::Invalid {
            key: "data.archive_url".into(),
            value: format!("{archive:?}"),
            expected: "an http:// or https:// URL".into(),
        });
    }
    if config.data.dir.trim().is_empty() {
        errors.push(ConfigError::Invalid {
            key: "data.dir".into(),
            value: "\"\"".into(),
            expected: "a folder path".into(),
        });
    }
    for url in &config.market.ws_urls {
        if !(url.starts_with("ws://") || url.starts_with("wss://")) {
            errors.push(ConfigError::Invalid {
                key: "market.ws_urls".into(),
                value: format!("{url:?}"),
                expected: "ws:// or wss:// URLs".into(),
            });
        }
    }
    if let Some(bad) = config
        .market
        .extra_markets
        .iter()
        .find(|m| m.parse::<crate::model::Symbol>().is_err())
    {
        errors.push(ConfigError::Invalid {
            key: "market.extra_markets".into(),
            value: format!("{bad:?}"),
            expected: "BASE/QUOTE markets such as \"PEPE/FDUSD\"".into(),
        });
    }
    if !["limit", "amm"].contains(&config.market.paper_fill_model.as_str()) {
        errors.push(ConfigError::Invalid {
            key: "market.paper_fill_model".into(),
            value: format!("{:?}", config.market.paper_fill_model),
            expected: "\"limit\" or \"amm\"".into(),
        });
    } else if let Err(why) = config.market.paper_pool() {
        errors.push(ConfigError::Invalid {
            key: "market.paper_pool_reserves".into(),
            value: format!("{:?}", config.market.paper_pool_reserves),
            expected: why,
        });
    } else if let Err(why) = config.market.paper_v3() {
        errors.push(ConfigError::Invalid {
            key: "market.paper_pool_profile".into(),
            value: format!("{:?}", config.market.paper_pool_profile),
            expected: why,
        });
    }
    if config.market.ws_urls.is_empty() {
        errors.push(ConfigError::Invalid {
            key: "market.ws_urls".into(),
            value: "[]".into(),
            expected: "at least one WebSocket URL".into(),
        });
    }
    if !["binance", "pool"].contains(&config.market.paper_price_source.as_str()) {
        errors.push(ConfigError::Invalid {
            key: "market.paper_price_source".into(),
            value: format!("{:?}", config.market.paper_price_source),
            expected: "\"binance\" or \"pool\"".into(),
        });
    }
    if config.market.stale_after_secs == 0 || config.market.silent_after_secs == 0 {
        errors.push(ConfigError::Invalid {
            key: "market.stale_after_secs / market.silent_after_secs".into(),
            value: "0".into(),
            expected: "seconds > 0".into(),
        });
    }
    if config.api.listen.parse::<std::net::SocketAddr>().is_err() {
        errors.push(ConfigError::Invalid {
            key: "api.listen".into(),
            value: format!("{:?}", config.api.listen),
            expected: "IP:PORT such as \"127.0.0.1:10001\"".into(),
        });
    }
    if !(100..=300_000).contains(&config.api.request_head_timeout_ms) {
        errors.push(ConfigError::Invalid {
            key: "api.request_head_timeout_ms".into(),
            value: config.api.request_head_timeout_ms.to_string(),
            expected: "milliseconds in 100..=300000".into(),
        });
    }
    if config.api.max_connections_per_client == 0
        || config.api.max_connections < config.api.max_connections_per_client
        || config.api.max_connections > 10_000
    {
        errors.push(ConfigError::Invalid {
            key: "api.max_connections".into(),
            value: format!(
                "{} (per client {})",
                config.api.max_connections, config.api.max_connections_per_client
            ),
            expected: "1 <= max_connections_per_client <= max_connections <= 10000".into(),
        });
    }
    let explorer = &config.api.explorer_tx_url;
    if !(explorer.starts_with("https://") || explorer.starts_with("http://"))
        || !explorer.contains("{tx}")
        || explorer
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "\"'<>`".contains(c))
    {
        errors.push(ConfigError::Invalid {
            key: "api.explorer_tx_url".into(),
            value: format!("{explorer:?}"),
            expected: "an http(s) URL with {tx} where the transaction hash goes, such as \
                       \"https://bscscan.com/tx/{tx}\""
                .into(),
        });
    }
    if config.api.rate_limit_per_sec == 0 {
        errors.push(ConfigError::Invalid {
            key: "api.rate_limit_per_sec".into(),
            value: "0".into(),
            expected: "requests per second > 0".into(),
        });
    }
    if !(50..=5_000).contains(&config.daemon.control_poll_ms) {
        errors.push(ConfigError::Invalid {
            key: "daemon.control_poll_ms".into(),
            value: config.daemon.control_poll_ms.to_string(),
            expected: "milliseconds in 50..=5000 (pause and stop-all must land within a second)"
                .into(),
        });
    }
    if !(0..=19).contains(&config.daemon.background_nice) {
        errors.push(ConfigError::Invalid {
            key: "daemon.background_nice".into(),
            value: config.daemon.background_nice.to_string(),
            expected: "a nice value in 0..=19 (0 leaves priorities alone)".into(),
        });
    }
    let hook = &config.alerts.webhook_url;
    if !(hook.is_empty() || hook.starts_with("http://") || hook.starts_with("https://")) {
        errors.push(ConfigError::Invalid {
            key: "alerts.webhook_url".into(),
            // By host only: a webhook's path is its secret.
            value: format!("{:?}", crate::config::host_of(hook)),
            expected: "an http(s) URL or \"\"".into(),
        });
    }
    if !matches!(config.log.format.as_str(), "text" | "json") {
        errors.push(ConfigError::Invalid {
            key: "log.format".into(),
            value: format!("{:?}", config.log.format),
            expected: "\"text\" or \"json\"".into(),
        });
    }
    if tracing_subscriber::EnvFilter::try_new(&config.log.level).is_err() {
        errors.push(ConfigError::Invalid {
            key: "log.level".into(),
            value: format!("{:?}", config.log.level),
            expected: "a tracing filter such as \"info\" or \"bsc_bot=debug,sqlx=warn\"".into(),
        });
    }
    match errors.len() {
        0 => Ok(()),
        1 => Err(errors.remove(0)),
        _ => Err(ConfigError::Many(errors)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn missing_default_file_uses_defaults_but_explicit_path_errors() {
        let p = Path::new("/nonexistent/bsc-bot.toml");
        let (c, src) = load(p, false, &[]).unwrap();
        assert_eq!(src, ConfigSource::Defaults);
        assert_eq!(c.database, super::super::DatabaseConfig::default());
        assert!(matches!(load(p, true, &[]), Err(ConfigError::Read { .. })));
    }

    #[test]
    fn env_overrides_are_typed() {
        let f = write("[database]\nmax_connections = 3\n");
        let (c, _) = load(
            f.path(),
            true,
            &env(&[
                ("BSC_BOT_DATABASE_MAX_CONNECTIONS", "9"),
                ("DATABASE_URL", "postgres://u:p@h/db"),
                ("BSC_BOT_API_TOKEN", "ignored-secret"),
                ("PATH", "/bin"),
            ]),
        )
        .unwrap();
        assert_eq!(c.database.max_connections, 9);
        assert_eq!(c.database.url, "postgres://u:p@h/db");
    }

    #[test]
    fn bad_env_value_names_key_and_value() {
        let err = load(
            Path::new("/nonexistent"),
            false,
            &env(&[("BSC_BOT_DATABASE_MAX_CONNECTIONS", "many")]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("database.max_connections"), "{err}");
        assert!(err.contains("many"), "{err}");
    }

    #[test]
    fn unknown_env_key_rejected() {
        let err = load(
            Path::new("/x"),
            false,
            &env(&[("BSC_BOT_DATABASE_URLL", "x")]),
        )
        .unwrap_err();
        assert!(matches!(err, ConfigError::UnknownEnv { .. }), "{err}");
    }

    #[test]
    fn secrets_in_file_rejected() {
        let f = write("[api]\ntoken = \"abc\"\n");
        assert!(matches!(
            load(f.path(), true, &[]),
            Err(ConfigError::SecretInFile { .. })
        ));
        let f = write("[database]\nurl = \"postgres://u:pw@h/db\"\n");
        assert!(matches!(
            load(f.path(), true, &[]),
            Err(ConfigError::SecretInFile { .. })
        ));
    }

    #[test]
    fn validation_names_key_value_expected() {
        let f = write("[database]\nmax_connections = 0\n");
        let err = load(f.path(), true, &[]).unwrap_err().to_string();
        assert!(err.contains("database.max_connections = 0"), "{err}");
        assert!(err.contains("1..=100"), "{err}");
        let f = write("[log]\nformat = \"xml\"\n");
        let err = load(f.path(), true, &[]).unwrap_err().to_string();
        assert!(err.contains("log.format"), "{err}");
        let f = write("[daemon]\nbackground_nice = -5\n");
        let err = load(f.path(), true, &[]).unwrap_err().to_string();
        assert!(err.contains("daemon.background_nice = -5"), "{err}");
        assert!(err.contains("0..=19"), "{err}");
    }

    #[test]
    fn unknown_key_in_file_rejected() {
        let f = write("[database]\nurll = \"x\"\n");
        let err = load(f.path(), true, &[]).unwrap_err().to_string();
        assert!(err.contains("urll"), "{err}");
    }
}
