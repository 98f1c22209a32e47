//! Field-by-field parsing of strategy parameters, shared by every strategy type.
//!
//! Parameters arrive as JSON (`-p '{...}'`) or as a TOML table (`--file`); both are turned into a
//! JSON object first so one parser gives one set of error messages naming the offending field.

use std::collections::BTreeSet;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::{Map, Value};

/// A parameter problem, always naming the field so the operator knows what to fix.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{field}: {message}")]
pub struct ParamError {
    pub field: String,
    pub message: String,
}

impl ParamError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ParamError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Reader over a parameter object that remembers which keys were consumed, so unknown keys
/// (usually typos such as `grid_cout`) are rejected instead of silently ignored.
pub struct ParamReader<'a> {
    object: &'a Map<String, Value>,
    seen: BTreeSet<&'static str>,
}

impl<'a> ParamReader<'a> {
    pub fn new(value: &'a Value) -> Result<Self, ParamError> {
        match value {
            Value::Object(object) => Ok(ParamReader {
                object,
                seen: BTreeSet::new(),
            }),
            other => Err(ParamError::new(
                "params",
                format!("expected a JSON object, got {}", kind_of(other)),
            )),
        }
    }

    fn get(&mut self, key: &'static str) -> Option<&'a Value> {
        self.seen.insert(key);
        self.object.get(key).filter(|v| !v.is_null())
    }

    pub fn decimal(&mut self, key: &'static str) -> Result<Decimal, ParamError> {
        self.opt_decimal(key)?
            .ok_or_else(|| ParamError::new(key, "is required (a decimal string such as \"0.5\")"))
    }

    pub fn opt_decimal(&mut self, key: &'static str) -> Result<Option<Decimal>, ParamError> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        let text = match value {
            Value::String(s) => s.trim().to_string(),
            Value::Number(n) => n.to_string(),
            other => {
                return Err(ParamError::new(
                    key,
                    format!("expected a decimal string, got {}", kind_of(other)),
                ))
            }
        };
        parse_decimal(&text)
            .map(Some)
            .ok_or_else(|| ParamError::new(key, format!("{text:?} is not a decimal number")))
    }

    pub fn integer(&mut self, key: &'static str, default: Option<i64>) -> Result<i64, ParamError> {
        match self.get(key) {
            None => default.ok_or_else(|| ParamError::new(key, "is required (an integer)")),
            Some(Value::Number(n)) => n
                .as_i64()
                .ok_or_else(|| ParamError::new(key, format!("expected an integer, got {n}"))),
            Some(Value::String(s)) => s
                .trim()
                .parse::<i64>()
                .map_err(|_| ParamError::new(key, format!("expected an integer, got {s:?}"))),
            Some(other) => Err(ParamError::new(
                key,
                format!("expected an integer, got {}", kind_of(other)),
            )),
        }
    }

    /// One of a fixed set of words; `default` when absent.
    pub fn choice(
        &mut self,
        key: &'static str,
        allowed: &[&'static str],
        default: &'static str,
    ) -> Result<&'static str, ParamError> {
        let Some(value) = self.get(key) else {
            return Ok(default);
        };
        let text = value.as_str().ok_or_else(|| {
            ParamError::new(
                key,
                format!(
                    "expected one of {}, got {}",
                    allowed.join(" | "),
                    kind_of(value)
                ),
            )
        })?;
        allowed.iter().copied().find(|a| *a == text).ok_or_else(|| {
            ParamError::new(
                key,
                format!("{text:?} is not one of {}", allowed.join(" | ")),
            )
        })
    }

    /// Call last: any key never asked for is an error.
    pub fn finish(self) -> Result<(), ParamError> {
        match self.object.keys().find(|k| !self.seen.contains(k.as_str())) {
            Some(unknown) => Err(ParamError::new(
                unknown.clone(),
                format!(
                    "unknown key; expected one of: {}",
                    self.seen.iter().copied().collect::<Vec<_>>().join(", ")
                ),
            )),
            None => Ok(()),
        }
    }
}

/// Plain or scientific notation; rejects NaN/inf spellings and anything with trailing junk.
pub fn parse_decimal(text: &str) -> Option<Decimal> {
    if text.is_empty() {
        return None;
    }
    Decimal::from_str(text)
        .ok()
        .or_else(|| Decimal::from_scientific(text).ok())
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decimals_from_strings_and_numbers() {
        let v = json!({"a": "1.50", "b": 2, "c": "1e-3", "d": "abc"});
        let mut r = ParamReader::new(&v).unwrap();
        assert_eq!(r.decimal("a").unwrap(), Decimal::new(150, 2));
        assert_eq!(r.decimal("b").unwrap(), Decimal::from(2));
        assert_eq!(r.decimal("c").unwrap(), Decimal::new(1, 3));
        let err = r.decimal("d").unwrap_err();
        assert_eq!(err.field, "d");
        assert!(err.message.contains("not a decimal"));
    }

    #[test]
    fn unknown_key_named() {
        let v = json!({"grid_cout": 5});
        let mut r = ParamReader::new(&v).unwrap();
        assert!(r.integer("grid_count", Some(3)).is_ok());
        let err = r.finish().unwrap_err();
        assert_eq!(err.field, "grid_cout");
    }
}
