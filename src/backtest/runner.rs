//! Run one strategy over historical data through the real engine and simulated venue: a pass
//! of one grid.

use std::path::Path;

use super::multi::{run_pass, GridJob, PassSpec};
use super::spec::{BacktestError, BacktestOutcome, BacktestSpec};

/// Run a backtest. Outputs (`fills.csv`, `equity.svg`) go to `out_dir` when given.
/// `progress(bytes_done, bytes_total, ticks)` is called about once per MiB read.
pub fn run_backtest(
    spec: &BacktestSpec,
    out_dir: Option<&Path>,
    progress: &mut dyn FnMut(u64, u64, u64),
) -> Result<BacktestOutcome, BacktestError> {
    let job = GridJob {
        params: spec.params.clone(),
        out_dir: out_dir.map(Path::to_path_buf),
    };
    let pass = PassSpec {
        threads: 1,
        split_us: None,
        light: false,
    };
    let mut outcome = run_pass(spec, vec![job], &pass, progress)?;
    outcome
        .first
        .pop()
        .unwrap_or_else(|| Err(BacktestError::Empty(String::new())))
}
