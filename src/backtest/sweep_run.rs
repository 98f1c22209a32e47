//! Running a sweep: every valid grid of the expansion in one pass over the data, then ranked.

use serde::Serialize;

use super::multi::{run_pass, GridJob, PassSpec};
use super::spec::{BacktestError, BacktestSpec, ParamsSource};
use super::sweep::{rank, Figures, Metric, Point, SweepRow, Vary};

/// A combination that is not a valid grid, and why (it is reported, not run).
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    pub grid: usize,
    pub values: serde_json::Map<String, serde_json::Value>,
    pub reason: String,
}

pub struct SweepOutcome {
    /// Best first.
    pub rows: Vec<SweepRow>,
    pub skipped: Vec<Skipped>,
    /// Ticks each grid saw (before the split, with `--train-until`) and after it.
    pub ticks: u64,
    pub test_ticks: Option<u64>,
}

fn values_map(varies: &[Vary], values: &[String]) -> serde_json::Map<String, serde_json::Value> {
    varies
        .iter()
        .zip(values)
        .map(|(v, x)| (v.key.clone(), serde_json::Value::String(x.clone())))
        .collect()
}

/// Run `points` over `spec`'s data (its own params are ignored) on `threads` workers.
pub fn run_sweep(
    spec: &BacktestSpec,
    varies: &[Vary],
    points: Vec<Point>,
    metric: Metric,
    threads: usize,
    split_us: Option<i64>,
    progress: &mut dyn FnMut(u64, u64, u64),
) -> Result<SweepOutcome, BacktestError> {
    let mut skipped = Vec::new();
    let mut jobs = Vec::new();
    let mut grids = Vec::new();
    for (ix, point) in points.into_iter().enumerate() {
        match point.params {
            Ok(p) => {
                jobs.push(GridJob {
                    params: ParamsSource::Fixed(p.clone()),
                    out_dir: None,
                });
                grids.push((ix + 1, point.values, p));
            }
            Err(reason) => skipped.push(Skipped {
                grid: ix + 1,
                values: values_map(varies, &point.values),
                reason,
            }),
        }
    }
    if jobs.is_empty() {
        let why = skipped
            .first()
            .map(|s| s.reason.clone())
            .unwrap_or_else(|| "nothing to vary".into());
        return Err(BacktestError::Params(format!(
            "no valid grid in the sweep: {why}"
        )));
    }
    let pass = PassSpec {
        threads,
        split_us,
        light: true,
    };
    let outcome = run_pass(spec, jobs, &pass, progress)?;
    let mut seconds = outcome.second.map(Vec::into_iter);
    let mut rows = Vec::with_capacity(grids.len());
    let (mut ticks, mut test_ticks) = (0, None);
    for ((grid, values, params), first) in grids.into_iter().zip(outcome.first) {
        let first = first?;
        ticks = first.result.ticks;
        let test = match seconds.as_mut().and_then(Iterator::next) {
            Some(second) => {
                let second = second?;
                test_ticks = Some(second.result.ticks);
                Some(Figures::of(&second.result))
            }
            None => None,
        };
        rows.push(SweepRow {
            rank: 0,
            grid,
            values: values_map(varies, &values),
            figures: Figures::of(&first.result),
            test,
            params,
        });
    }
    rank(&mut rows, metric);
    Ok(SweepOutcome {
        rows,
        skipped,
        ticks,
        test_ticks,
    })
}
