//! A finished backtest put on record: an ordinary stored backtest (what `backtest show` reads)
//! with its fills and chart moved from the run's staging folder to the backtest's own. Shared by
//! `backtest run`, sweeps and the canary's backtest stage.

use std::path::{Path, PathBuf};

use super::BacktestOutcome;
use crate::clock::wall_clock_ms;
use crate::store::backtests::NewBacktest;
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Io(String),
}

/// A backtest on record: its id and where its outputs are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBacktest {
    pub id: i64,
    pub fills_csv: Option<String>,
    pub chart: Option<String>,
}

/// Where backtests keep their outputs: `<base_dir>/data/backtests/<id>/`.
pub fn outputs_root(base_dir: &Path) -> PathBuf {
    let base = std::path::absolute(base_dir).unwrap_or_else(|_| base_dir.to_path_buf());
    base.join("data").join("backtests")
}

/// Where `backtest sweep` writes each sweep's reports by default: `<base_dir>/data/sweeps/<ms>/`.
pub fn sweeps_root(base_dir: &Path) -> PathBuf {
    let base = std::path::absolute(base_dir).unwrap_or_else(|_| base_dir.to_path_buf());
    base.join("data").join("sweeps")
}

/// A fresh folder for a run's outputs until the run has its id.
pub fn staging_dir(out_root: &Path, n: usize) -> Result<PathBuf, RecordError> {
    let staging = out_root.join(format!(
        ".run-{}-{}-{n}",
        std::process::id(),
        wall_clock_ms()
    ));
    let cannot = |e: &dyn std::fmt::Display| {
        RecordError::Io(format!("cannot create {}: {e}", staging.display()))
    };
    crate::private_files::private_dir(out_root).map_err(|e| cannot(&e))?;
    // Created by this call and no other (a folder or link already there is refused), 0700.
    std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
        .create(&staging)
        .map_err(|e| cannot(&e))?;
    Ok(staging)
}

/// Store a finished run as an ordinary backtest and move its outputs from `staging` to the
/// run's own folder.
pub async fn store_outcome(
    store: &Store,
    outcome: &BacktestOutcome,
    data_path: &str,
    staging: &Path,
    out_root: &Path,
) -> Result<StoredBacktest, RecordError> {
    let result_json =
        serde_json::to_value(&outcome.result).map_err(|e| RecordError::Io(e.to_string()))?;
    let id = store
        .insert_backtest(
            &NewBacktest {
                kind: &outcome.result.kind,
                symbol: &outcome.result.symbol,
                params: &outcome.result.params,
                data_path,
                result: &result_json,
            },
            wall_clock_ms(),
        )
        .await?;
    let final_dir = out_root.join(id.to_string());
    // Whatever is at the new id's name (a leftover, or a link) goes itself; never its target.
    match std::fs::symlink_metadata(&final_dir) {
        Ok(m) if m.is_dir() => {
            let _ = std::fs::remove_dir_all(&final_dir);
        }
        Ok(_) => {
            let _ = std::fs::remove_file(&final_dir);
        }
        Err(_) => {}
    }
    std::fs::rename(staging, &final_dir).map_err(|e| {
        RecordError::Io(format!(
            "cannot move backtest output to {}: {e}",
            final_dir.display()
        ))
    })?;
    let fills = outcome
        .fills_csv
        .as_ref()
        .map(|_| final_dir.join("fills.csv").display().to_string());
    let chart = outcome
        .chart
        .as_ref()
        .map(|_| final_dir.join("equity.svg").display().to_string());
    store
        .set_backtest_outputs(id, fills.as_deref(), chart.as_deref())
        .await?;
    Ok(StoredBacktest {
        id,
        fills_csv: fills,
        chart,
    })
}
