//! A strategy spec: what `strategy create` (flags or `--file`) and `backtest run --file` read.

use std::path::Path;

use serde_json::Value;

use super::status::StrategyMode;
use super::StrategyParams;
use crate::model::ParamError;
use crate::model::Symbol;

/// Everything needed to create a strategy, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrategySpec {
    pub name: String,
    pub symbol: Symbol,
    pub mode: StrategyMode,
    /// The wallet (keystore name) a live strategy trades from.
    pub wallet: Option<String>,
    pub params: StrategyParams,
}

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("cannot read strategy file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("strategy file {path} is not valid TOML: {message}")]
    Toml { path: String, message: String },
    #[error("params is not valid JSON: {0}")]
    Json(String),
    #[error("{0}")]
    Field(#[from] ParamError),
}

/// Spec fields given as command-line flags (`-t`, `-s`, `-n`, `-m`, `-p`).
#[derive(Debug, Default, Clone, Copy)]
pub struct RawFlags<'a> {
    pub type_name: Option<&'a str>,
    pub symbol: Option<&'a str>,
    pub name: Option<&'a str>,
    pub mode: Option<&'a str>,
    pub params: Option<&'a str>,
    pub wallet: Option<&'a str>,
}

/// Fields of a spec as given, before validation; CLI flags fill or override file values.
#[derive(Debug, Default, Clone)]
pub struct RawSpec {
    pub name: Option<String>,
    pub type_name: Option<String>,
    pub symbol: Option<String>,
    pub mode: Option<String>,
    pub params: Option<Value>,
    pub wallet: Option<String>,
}

impl RawSpec {
    /// Read a `strategies/*.toml` file: top-level `name`, `type`, `symbol`, `mode`, and `[params]`.
    pub fn from_toml_file(path: &Path) -> Result<Self, SpecError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| SpecError::Read {
            path: shown.clone(),
            source,
        })?;
        Self::from_toml_str(&text, &shown)
    }

    pub fn from_toml_str(text: &str, shown_path: &str) -> Result<Self, SpecError> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| SpecError::Toml {
            path: shown_path.to_string(),
            message: e.message().to_string(),
        })?;
        let mut raw = RawSpec::default();
        for (key, value) in table {
            let as_string = |v: &toml::Value| {
                v.as_str().map(str::to_string).ok_or_else(|| {
                    ParamError::new(
                        key.clone(),
                        format!("expected a string, got {}", v.type_str()),
                    )
                })
            };
            match key.as_str() {
                "name" => raw.name = Some(as_string(&value)?),
                "type" => raw.type_name = Some(as_string(&value)?),
                "symbol" => raw.symbol = Some(as_string(&value)?),
                "mode" => raw.mode = Some(as_string(&value)?),
                "wallet" => raw.wallet = Some(as_string(&value)?),
                "params" => {
                    let json = serde_json::to_value(&value)
                        .map_err(|e| ParamError::new("params", e.to_string()))?;
                    raw.params = Some(json);
                }
                _ => {
                    return Err(ParamError::new(
                        key.clone(),
                        "unknown key; expected name, type, symbol, mode, wallet, [params]",
                    )
                    .into())
                }
            }
        }
        Ok(raw)
    }

    /// A spec file (if any) with command-line flags laid over it: a flag given wins.
    pub fn from_file_and_flags(
        file: Option<&Path>,
        flags: RawFlags<'_>,
    ) -> Result<Self, SpecError> {
        let raw = match file {
            Some(path) => RawSpec::from_toml_file(path)?,
            None => RawSpec::default(),
        };
        raw.with_flags(flags)
    }

    /// Command-line flags laid over these fields: a flag given wins.
    pub fn with_flags(mut self, flags: RawFlags<'_>) -> Result<Self, SpecError> {
        let raw = &mut self;
        let set = |slot: &mut Option<String>, flag: Option<&str>| {
            if let Some(v) = flag {
                *slot = Some(v.to_string());
            }
        };
        set(&mut raw.type_name, flags.type_name);
        set(&mut raw.symbol, flags.symbol);
        set(&mut raw.name, flags.name);
        set(&mut raw.mode, flags.mode);
        set(&mut raw.wallet, flags.wallet);
        if let Some(text) = flags.params {
            raw.params = Some(Self::params_from_json_text(text)?);
        }
        Ok(self)
    }

    /// A strategy without its own `fee_bps` pays the configured pool's fee (`dex.fee_bps`: 25 on
    /// PancakeSwap V2), so paper and backtests charge what live swaps will.
    pub fn default_fee_bps(&mut self, fee_bps: u32) {
        if let Some(Value::Object(p)) = self.params.as_mut() {
            p.entry("fee_bps").or_insert_with(|| Value::from(fee_bps));
        }
    }

    pub fn params_from_json_text(text: &str) -> Result<Value, SpecError> {
        serde_json::from_str(text).map_err(|e| SpecError::Json(e.to_string()))
    }

    /// Validate; `name` may be absent only for backtests (`require_name = false`).
    pub fn validate(self, require_name: bool) -> Result<StrategySpec, SpecError> {
        let name = match self.name {
            Some(n) => validate_name(&n)?,
            None if require_name => {
                return Err(
                    ParamError::new("name", "is required (-n NAME or name = in the file)").into(),
                )
            }
            None => "backtest".to_string(),
        };
        let type_name = self.type_name.ok_or_else(|| {
            ParamError::new("type", "is required (-t grid or type = in the file)")
        })?;
        let symbol: Symbol = self
            .symbol
            .ok_or_else(|| ParamError::new("symbol", "is required (-s BASE/QUOTE)"))?
            .parse()
            .map_err(|e: crate::model::SymbolError| ParamError::new("symbol", e.to_string()))?;
        let mode = match self.mode {
            None => StrategyMode::Paper,
            Some(m) => m
                .parse::<StrategyMode>()
                .map_err(|e| ParamError::new("mode", e.to_string()))?,
        };
        let params = self.params.ok_or_else(|| {
            ParamError::new("params", "are required (-p JSON or [params] in the file)")
        })?;
        let params = StrategyParams::parse(&type_name, &params).map_err(|e| {
            if e.field == "type" || e.field == "params" {
                e
            } else {
                ParamError::new(format!("params.{}", e.field), e.message)
            }
        })?;
        let wallet = match (mode, self.wallet) {
            (StrategyMode::Live, Some(w)) => Some(w),
            (StrategyMode::Live, None) => {
                return Err(ParamError::new(
                    "wallet",
                    "is required for a live strategy (--wallet NAME; see `bsc-bot wallet list`)",
                )
                .into())
            }
            (StrategyMode::Paper, Some(_)) => {
                return Err(
                    ParamError::new("wallet", "only live strategies trade from a wallet").into(),
                )
            }
            (StrategyMode::Paper, None) => None,
        };
        Ok(StrategySpec {
            name,
            symbol,
            mode,
            wallet,
            params,
        })
    }
}

/// Names are what operators type and grep for: short, words separated by single spaces
/// (`Canary Grid V2`), never a bare number (a bare number is read as a strategy id).
pub fn validate_name(name: &str) -> Result<String, ParamError> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ' '));
    let spaced_well = !name.starts_with(' ') && !name.ends_with(' ') && !name.contains("  ");
    if name.is_empty() || name.len() > 64 || !ok_chars || !spaced_well {
        return Err(ParamError::new(
            "name",
            format!(
                "{name:?} must be 1 to 64 characters of letters, digits, '-', '_', '.' and single \
                 spaces between words"
            ),
        ));
    }
    if name.chars().all(|c| c.is_ascii_digit()) {
        return Err(ParamError::new(
            "name",
            format!("{name:?} must not be a bare number (numbers are strategy ids)"),
        ));
    }
    Ok(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_file_roundtrip() {
        let raw = RawSpec::from_toml_str(
            r#"
name = "btc-grid"
type = "grid"
symbol = "BTC/USDT"
mode = "paper"
[params]
lower_price = "100000"
upper_price = "110000"
grid_count = 11
base_order_size = "50"
"#,
            "x.toml",
        )
        .unwrap();
        let spec = raw.validate(true).unwrap();
        assert_eq!(spec.name, "btc-grid");
        assert_eq!(spec.symbol.to_string(), "BTC/USDT");
        assert_eq!(spec.params.type_name(), "grid");
    }

    #[test]
    fn field_errors_are_prefixed() {
        let raw = RawSpec {
            name: Some("x".into()),
            type_name: Some("grid".into()),
            symbol: Some("BTC/USDT".into()),
            mode: None,
            params: Some(
                serde_json::json!({"lower_price": "5", "upper_price": "1", "grid_count": 3, "base_order_size": "1"}),
            ),
            wallet: None,
        };
        let err = raw.validate(true).unwrap_err().to_string();
        assert!(err.starts_with("params.upper_price:"), "{err}");
    }

    #[test]
    fn unknown_type_and_bad_symbol() {
        let mut raw = RawSpec {
            name: Some("x".into()),
            type_name: Some("dca".into()),
            symbol: Some("BTC/USDT".into()),
            mode: None,
            params: Some(serde_json::json!({})),
            wallet: None,
        };
        assert!(raw
            .clone()
            .validate(true)
            .unwrap_err()
            .to_string()
            .contains("unknown strategy type"));
        raw.type_name = Some("grid".into());
        raw.symbol = Some("BTCUSDT".into());
        assert!(raw
            .validate(true)
            .unwrap_err()
            .to_string()
            .starts_with("symbol:"));
    }
}
