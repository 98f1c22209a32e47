//! Parameter sweeps: a spec of varied parameters expands to many grids, all run in one pass over
//! the data (see `multi`), ranked by a metric, each row the figures a separate `backtest run`
//! of that grid prints.

use std::fmt::Write as _;

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::Serialize;
use serde_json::Value;

use super::spec::BacktestResult;
use crate::model::params::parse_decimal;
use crate::strategy::StrategyParams;

/// Refused above this many grids unless the operator raises it (`--max-grids`).
pub const DEFAULT_MAX_GRIDS: u64 = 100_000;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SweepError {
    #[error("{0}")]
    Spec(String),
    #[error(
        "the sweep expands to {count} grids, more than --max-grids {max}: narrow a --vary range \
         or raise --max-grids"
    )]
    TooMany { count: String, max: u64 },
}

/// One varied parameter and its values, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vary {
    pub key: String,
    pub values: Vec<String>,
}

/// `from:to:step` (inclusive of `to` when a step lands on it) or `v1,v2,...`.
fn values_of(key: &str, text: &str) -> Result<Vec<String>, SweepError> {
    let bad = |why: &str| SweepError::Spec(format!("--vary {key}={text}: {why}"));
    let text = text.trim();
    if text.is_empty() {
        return Err(bad("no values"));
    }
    let parts: Vec<&str> = text.split(':').map(str::trim).collect();
    if parts.len() == 1 {
        let values: Vec<String> = text.split(',').map(|v| v.trim().to_string()).collect();
        if values.iter().any(String::is_empty) {
            return Err(bad("an empty value in the list"));
        }
        return Ok(values);
    }
    if parts.len() != 3 {
        return Err(bad("expected FROM:TO:STEP or a list V1,V2,..."));
    }
    let num = |s: &str| parse_decimal(s).ok_or_else(|| bad(&format!("{s:?} is not a decimal")));
    let (from, to, step) = (num(parts[0])?, num(parts[1])?, num(parts[2])?);
    if step <= Decimal::ZERO {
        return Err(bad("STEP must be > 0"));
    }
    if to < from {
        return Err(bad("TO is below FROM"));
    }
    let count = ((to - from) / step).floor().to_u64().map(|n| n + 1);
    match count {
        Some(n) if n <= DEFAULT_MAX_GRIDS * 10 => {}
        _ => return Err(bad("too many values in one range")),
    }
    let n = count.unwrap_or(0);
    Ok((0..n)
        .map(|i| (from + step * Decimal::from(i)).normalize().to_string())
        .collect())
}

impl Vary {
    /// One `--vary key=...` flag.
    pub fn parse_flag(text: &str) -> Result<Vary, SweepError> {
        let (key, values) = text.split_once('=').ok_or_else(|| {
            SweepError::Spec(format!(
                "--vary {text:?}: expected KEY=FROM:TO:STEP or KEY=V1,V2,..."
            ))
        })?;
        let key = key.trim().to_string();
        if key.is_empty() {
            return Err(SweepError::Spec(format!("--vary {text:?}: no key")));
        }
        Ok(Vary {
            values: values_of(&key, values)?,
            key,
        })
    }

    /// A `[vary]` entry of a sweep file: a list (`[10, 20]`, `["0.5", "1"]`), a range string
    /// (`"90000:95000:1000"`), or `{ from = .., to = .., step = .. }`.
    pub fn from_toml(key: &str, value: &toml::Value) -> Result<Vary, SweepError> {
        let scalar = |v: &toml::Value| -> Result<String, SweepError> {
            match v {
                toml::Value::String(s) => Ok(s.trim().to_string()),
                toml::Value::Integer(i) => Ok(i.to_string()),
                toml::Value::Float(f) => Ok(f.to_string()),
                toml::Value::Boolean(b) => Ok(b.to_string()),
                other => Err(SweepError::Spec(format!(
                    "[vary] {key}: {} is not a value",
                    other.type_str()
                ))),
            }
        };
        let values = match value {
            toml::Value::Array(items) => {
                let v = items.iter().map(scalar).collect::<Result<Vec<_>, _>>()?;
                if v.is_empty() {
                    return Err(SweepError::Spec(format!("[vary] {key}: an empty list")));
                }
                v
            }
            toml::Value::String(s) => values_of(key, s)?,
            toml::Value::Table(t) => {
                let get = |k: &str| {
                    t.get(k)
                        .map(scalar)
                        .transpose()?
                        .ok_or_else(|| SweepError::Spec(format!("[vary] {key}: `{k}` is missing")))
                };
                values_of(
                    key,
                    &format!("{}:{}:{}", get("from")?, get("to")?, get("step")?),
                )?
            }
            other => {
                return Err(SweepError::Spec(format!(
                    "[vary] {key}: expected a list, \"FROM:TO:STEP\" or a table, got {}",
                    other.type_str()
                )))
            }
        };
        Ok(Vary {
            key: key.to_string(),
            values,
        })
    }
}

/// A sweep file: the base strategy spec (`type`, `symbol`, `[params]`) and a `[vary]` table.
/// Returns the spec part as TOML text (for the strategy spec reader) and the varied keys.
pub fn split_sweep_file(text: &str, shown: &str) -> Result<(String, Vec<Vary>), SweepError> {
    let mut table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| SweepError::Spec(format!("{shown}: {}", e.message())))?;
    let vary = match table.remove("vary") {
        Some(toml::Value::Table(t)) => t
            .iter()
            .map(|(k, v)| Vary::from_toml(k, v))
            .collect::<Result<Vec<_>, _>>()?,
        Some(other) => {
            return Err(SweepError::Spec(format!(
                "{shown}: [vary] must be a table, got {}",
                other.type_str()
            )))
        }
        None => Vec::new(),
    };
    let rest = toml::to_string(&table).map_err(|e| SweepError::Spec(e.to_string()))?;
    Ok((rest, vary))
}

/// The number of grids the varied keys give (the product of their value counts).
pub fn grid_count(varies: &[Vary]) -> u128 {
    varies
        .iter()
        .fold(1u128, |n, v| n.saturating_mul(v.values.len() as u128))
}

/// One grid of the sweep: its varied values (in the varies' order) and its parameters, or why
/// that combination is not a valid grid (say lower above upper).
pub struct Point {
    pub values: Vec<String>,
    pub params: Result<StrategyParams, String>,
}

/// Every combination, the last key varying fastest; refused beyond `max` grids before anything
/// is built.
pub fn expand(
    type_name: &str,
    base: &Value,
    varies: &[Vary],
    max: u64,
) -> Result<Vec<Point>, SweepError> {
    let mut seen = std::collections::BTreeSet::new();
    for v in varies {
        if !seen.insert(v.key.as_str()) {
            return Err(SweepError::Spec(format!("{} is varied twice", v.key)));
        }
    }
    let total = grid_count(varies);
    if total > u128::from(max) {
        return Err(SweepError::TooMany {
            count: total.to_string(),
            max,
        });
    }
    let Value::Object(base) = base else {
        return Err(SweepError::Spec("params must be a JSON object".into()));
    };
    let total = total as usize;
    let mut out = Vec::with_capacity(total);
    let mut ix = vec![0usize; varies.len()];
    for _ in 0..total {
        let mut params = base.clone();
        let values: Vec<String> = varies
            .iter()
            .zip(&ix)
            .map(|(v, &i)| v.values[i].clone())
            .collect();
        for (v, value) in varies.iter().zip(&values) {
            params.insert(v.key.clone(), Value::String(value.clone()));
        }
        let parsed = StrategyParams::parse(type_name, &Value::Object(params))
            .map_err(|e| format!("params.{}: {}", e.field, e.message));
        out.push(Point {
            values,
            params: parsed,
        });
        // Odometer: the last key turns fastest.
        for d in (0..ix.len()).rev() {
            ix[d] += 1;
            if ix[d] < varies[d].values.len() {
                break;
            }
            ix[d] = 0;
        }
    }
    Ok(out)
}

/// What the grids are ranked by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Total return, highest first.
    Return,
    /// Maximum drawdown, lowest first.
    Drawdown,
    /// Sharpe ratio of hourly returns, highest first.
    Sharpe,
    /// Return over maximum drawdown, highest first.
    ReturnDd,
}

impl std::str::FromStr for Metric {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "return" => Ok(Metric::Return),
            "drawdown" => Ok(Metric::Drawdown),
            "sharpe" => Ok(Metric::Sharpe),
            "return_dd" | "return-dd" => Ok(Metric::ReturnDd),
            other => Err(format!(
                "--metric {other:?}: expected return, drawdown, sharpe or return_dd"
            )),
        }
    }
}

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Metric::Return => "return",
            Metric::Drawdown => "drawdown",
            Metric::Sharpe => "sharpe",
            Metric::ReturnDd => "return_dd",
        }
    }

    /// The figure, oriented so that higher is better (drawdown negated). A return over no
    /// drawdown is infinitely good when positive.
    pub fn score(self, f: &Figures) -> f64 {
        let f64_of = |d: Decimal| d.to_f64().unwrap_or(0.0);
        match self {
            Metric::Return => f64_of(f.total_return_pct),
            Metric::Drawdown => -f64_of(f.max_drawdown_pct),
            Metric::Sharpe => f.sharpe.parse::<f64>().unwrap_or(0.0),
            Metric::ReturnDd => match f.return_dd {
                Some(r) => f64_of(r),
                None if f.total_return_pct > Decimal::ZERO => f64::INFINITY,
                None if f.total_return_pct < Decimal::ZERO => f64::NEG_INFINITY,
                None => 0.0,
            },
        }
    }

    /// The figure as the report shows it.
    pub fn shown(self, f: &Figures) -> String {
        match self {
            Metric::Return => f.total_return_pct.to_string(),
            Metric::Drawdown => f.max_drawdown_pct.to_string(),
            Metric::Sharpe => f.sharpe.clone(),
            Metric::ReturnDd => f
                .return_dd
                .map(|d| d.to_string())
                .unwrap_or_else(|| "-".into()),
        }
    }
}

/// A run's figures as `backtest run` prints them (same decimals, same strings).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Figures {
    pub ticks: u64,
    pub fills: u64,
    pub round_trips: u64,
    pub win_rate: Decimal,
    pub realized_pnl: Decimal,
    pub unrealized_pnl: Decimal,
    pub total_pnl: Decimal,
    pub gas: Decimal,
    pub total_pnl_net_of_gas: Decimal,
    pub fees: Decimal,
    pub final_equity: Decimal,
    pub total_return_pct: Decimal,
    pub max_drawdown_pct: Decimal,
    pub sharpe: String,
    /// Return over maximum drawdown (none without a drawdown).
    pub return_dd: Option<Decimal>,
    pub final_status: String,
}

impl Figures {
    pub fn of(r: &BacktestResult) -> Figures {
        Figures {
            ticks: r.ticks,
            fills: r.fills,
            round_trips: r.round_trips,
            win_rate: r.win_rate,
            realized_pnl: r.realized_pnl,
            unrealized_pnl: r.unrealized_pnl,
            total_pnl: r.total_pnl,
            gas: r.gas,
            total_pnl_net_of_gas: r.total_pnl_net_of_gas,
            fees: r.fees,
            final_equity: r.final_equity,
            total_return_pct: r.total_return_pct,
            max_drawdown_pct: r.max_drawdown_pct,
            sharpe: r.sharpe.clone(),
            return_dd: (r.max_drawdown_pct > Decimal::ZERO).then(|| {
                (r.total_return_pct / r.max_drawdown_pct)
                    .round_dp_with_strategy(8, RoundingStrategy::MidpointNearestEven)
                    .normalize()
            }),
            final_status: r.final_status.to_string(),
        }
    }
}

/// One grid's line of the sweep report.
#[derive(Debug, Clone, Serialize)]
pub struct SweepRow {
    pub rank: usize,
    /// Position in the expansion (1-based), stable whatever the ranking.
    pub grid: usize,
    /// The varied parameters' values, by key.
    pub values: serde_json::Map<String, Value>,
    /// The whole window, or with `--train-until` the part before it (ranked on).
    #[serde(flatten)]
    pub figures: Figures,
    /// With `--train-until`: the same grid over the rest of the data, run afresh.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test: Option<Figures>,
    /// The grid itself (what the best are run again with to be stored).
    #[serde(skip)]
    pub params: StrategyParams,
}

/// Rank rows best first by `metric`; ties keep expansion order, so the ranking is reproducible.
pub fn rank(rows: &mut [SweepRow], metric: Metric) {
    rows.sort_by(|a, b| {
        metric
            .score(&b.figures)
            .total_cmp(&metric.score(&a.figures))
            .then(a.grid.cmp(&b.grid))
    });
    for (i, r) in rows.iter_mut().enumerate() {
        r.rank = i + 1;
    }
}

impl Figures {
    /// Column name and text of each figure, in the CSV's order.
    fn columns(&self) -> [(&'static str, String); 16] {
        [
            ("ticks", self.ticks.to_string()),
            ("fills", self.fills.to_string()),
            ("round_trips", self.round_trips.to_string()),
            ("win_rate", self.win_rate.to_string()),
            ("realized_pnl", self.realized_pnl.to_string()),
            ("unrealized_pnl", self.unrealized_pnl.to_string()),
            ("total_pnl", self.total_pnl.to_string()),
            ("gas", self.gas.to_string()),
            (
                "total_pnl_net_of_gas",
                self.total_pnl_net_of_gas.to_string(),
            ),
            ("fees", self.fees.to_string()),
            ("final_equity", self.final_equity.to_string()),
            ("total_return_pct", self.total_return_pct.to_string()),
            ("max_drawdown_pct", self.max_drawdown_pct.to_string()),
            ("sharpe", self.sharpe.clone()),
            (
                "return_dd",
                self.return_dd.map(|d| d.to_string()).unwrap_or_default(),
            ),
            ("final_status", self.final_status.clone()),
        ]
    }
}

fn csv_cell(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// All rows as CSV, ranked order: `rank,grid,<varied keys>,<figures>[,test_<figures>]`.
pub fn rows_csv(varies: &[Vary], rows: &[SweepRow]) -> String {
    let mut out = String::new();
    let walk_forward = rows.iter().any(|r| r.test.is_some());
    let mut header: Vec<String> = vec!["rank".into(), "grid".into()];
    header.extend(varies.iter().map(|v| csv_cell(&v.key)));
    let names = Figures::default().columns().map(|(name, _)| name);
    header.extend(names.iter().map(|c| c.to_string()));
    if walk_forward {
        header.extend(names.iter().map(|c| format!("test_{c}")));
    }
    let _ = writeln!(out, "{}", header.join(","));
    for r in rows {
        let mut cells = vec![r.rank.to_string(), r.grid.to_string()];
        for v in varies {
            let value = r.values.get(&v.key).and_then(Value::as_str).unwrap_or("");
            cells.push(csv_cell(value));
        }
        cells.extend(r.figures.columns().map(|(_, text)| text));
        if walk_forward {
            match &r.test {
                Some(t) => cells.extend(t.columns().map(|(_, text)| text)),
                None => cells.extend(std::iter::repeat_n(String::new(), names.len())),
            }
        }
        let _ = writeln!(out, "{}", cells.join(","));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ranges_and_lists_expand_in_order() {
        let v = Vary::parse_flag("grid_count=10:30:10").unwrap();
        assert_eq!(v.values, ["10", "20", "30"]);
        let v = Vary::parse_flag("base_order_size=0.5:1.6:0.5").unwrap();
        assert_eq!(v.values, ["0.5", "1", "1.5"]);
        let v = Vary::parse_flag("spacing=arithmetic, geometric").unwrap();
        assert_eq!(v.values, ["arithmetic", "geometric"]);
        for bad in [
            "grid_count",
            "=1,2",
            "grid_count=1:2",
            "grid_count=5:1:1",
            "x=1:2:0",
            "x=1,,2",
        ] {
            assert!(Vary::parse_flag(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn expansion_turns_the_last_key_fastest_and_keeps_invalid_grids_with_a_reason() {
        let base = json!({"base_order_size": "1", "grid_count": 5});
        let varies = [
            Vary::parse_flag("lower_price=90,110").unwrap(),
            Vary::parse_flag("upper_price=100:120:20").unwrap(),
        ];
        let points = expand("grid", &base, &varies, 100).unwrap();
        let values: Vec<Vec<String>> = points.iter().map(|p| p.values.clone()).collect();
        assert_eq!(
            values,
            [["90", "100"], ["90", "120"], ["110", "100"], ["110", "120"]]
        );
        assert!(points[0].params.is_ok() && points[1].params.is_ok());
        let err = points[2].params.as_ref().err().unwrap();
        assert!(err.contains("lower_price"), "{err}");
        assert_eq!(
            expand("grid", &base, &varies, 3).err().unwrap(),
            SweepError::TooMany {
                count: "4".into(),
                max: 3
            }
        );
    }

    #[test]
    fn a_sweep_file_splits_into_spec_and_vary() {
        let text = "type = \"grid\"\nsymbol = \"BTC/USDT\"\n[params]\nbase_order_size = \"1\"\n\
                    [vary]\ngrid_count = [5, 9]\nlower_price = \"90:92:1\"\n\
                    upper_price = { from = \"110\", to = \"111\", step = \"0.5\" }\n";
        let (rest, varies) = split_sweep_file(text, "s.toml").unwrap();
        assert!(rest.contains("symbol") && !rest.contains("vary"));
        let by_key: std::collections::BTreeMap<_, _> = varies
            .iter()
            .map(|v| (v.key.as_str(), v.values.clone()))
            .collect();
        assert_eq!(by_key["grid_count"], ["5", "9"]);
        assert_eq!(by_key["lower_price"], ["90", "91", "92"]);
        assert_eq!(by_key["upper_price"], ["110", "110.5", "111"]);
    }
}
