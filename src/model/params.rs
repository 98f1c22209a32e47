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

    /// A string, when present.
    pub fn opt_text(&mut self, key: &'static str) -> Result<Option<&'a str>, ParamError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(other) => Err(ParamError::new(
                key,
                format!("expected a string, got {}", kind_of(other)),
            )),
        }
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
        parse_decimal(&text).map(Some).ok_or_else(|| {
            // A number too large or too precise for an exact decimal is not a typo: say so.
            let why = if text.parse::<f64>().is_ok_and(f64::is_finite) {
                format!(
                    "{text:?} is out of range (an exact decimal has at most 28 significant \
                     digits, below 7.9e28)"
                )
            } else {
                format!("{text:?} is not a decimal number")
            };
            ParamError::new(key, why)
        })
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

    /// Call last: every key never asked for is an error, named, with the nearest known key.
    pub fn finish(self) -> Result<(), ParamError> {
        let problems: Vec<ParamError> = self
            .object
            .keys()
            .filter(|k| !self.seen.contains(k.as_str()))
            .map(|unknown| {
                let nearest = self
                    .seen
                    .iter()
                    .map(|known| (edit_distance(unknown, known), *known))
                    .min()
                    .filter(|(d, _)| *d <= 3);
                let hint = match nearest {
                    Some((_, known)) => format!("did you mean {known:?}? "),
                    None => String::new(),
                };
                ParamError::new(
                    unknown.clone(),
                    format!(
                        "unknown key; {hint}expected one of: {}",
                        self.seen.iter().copied().collect::<Vec<_>>().join(", ")
                    ),
                )
            })
            .collect();
        all_of(problems)
    }
}

/// Several problems as one error naming each (`Ok` when there are none): an operator fixes them
/// all in one go instead of one per attempt.
pub fn all_of(mut problems: Vec<ParamError>) -> Result<(), ParamError> {
    match problems.len() {
        0 => Ok(()),
        1 => Err(problems.remove(0)),
        n => Err(ParamError::new(
            "params",
            format!(
                "{n} problems: {}",
                problems
                    .iter()
                    .map(|p| format!("params.{p}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        )),
    }
}

/// Levenshtein distance (keys are short).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
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
    fn unknown_key_named_with_the_nearest() {
        let v = json!({"grid_cout": 5});
        let mut r = ParamReader::new(&v).unwrap();
        assert!(r.integer("grid_count", Some(3)).is_ok());
        let err = r.finish().unwrap_err();
        assert_eq!(err.field, "grid_cout");
        assert!(
            err.message.contains("did you mean \"grid_count\"?"),
            "{err}"
        );
    }

    #[test]
    fn out_of_range_is_not_a_typo() {
        let v = json!({"a": "1e32", "b": "12x"});
        let mut r = ParamReader::new(&v).unwrap();
        assert!(r.decimal("a").unwrap_err().message.contains("out of range"));
        assert!(r
            .decimal("b")
            .unwrap_err()
            .message
            .contains("not a decimal"));
    }

    #[test]
    fn distance() {
        assert_eq!(edit_distance("grid_cout", "grid_count"), 1);
        assert_eq!(edit_distance("fee", "fee_bps"), 4);
        assert_eq!(edit_distance("", "ab"), 2);
    }
}
