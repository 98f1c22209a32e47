//! Where a backtest's outputs go and how it is put on record: the outputs folder, progress on
//! a terminal, the error shown, and the stored backtest with its fills and chart.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::{CliError, Context};
use crate::backtest::BacktestError;
use crate::clock::wall_clock_ms;
use crate::store::backtests::NewBacktest;

/// Where backtests keep their outputs: `<base_dir>/data/backtests/<id>/`.
pub(crate) fn outputs_root(ctx: &Context) -> PathBuf {
    let base =
        std::path::absolute(&ctx.config.base_dir).unwrap_or_else(|_| ctx.config.base_dir.clone());
    base.join("data").join("backtests")
}

/// A fresh folder for a run's outputs until the run has its id.
pub(crate) fn staging_dir(out_root: &Path, n: usize) -> Result<PathBuf, CliError> {
    let staging = out_root.join(format!(
        ".run-{}-{}-{n}",
        std::process::id(),
        wall_clock_ms()
    ));
    let cannot = |e: &dyn std::fmt::Display| {
        CliError::runtime(format!("cannot create {}: {e}", staging.display()))
    };
    crate::private_files::private_dir(out_root).map_err(|e| cannot(&e))?;
    // Created by this call and no other (a folder or link already there is refused), 0700.
    std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
        .create(&staging)
        .map_err(|e| cannot(&e))?;
    Ok(staging)
}

/// A progress line on stderr (only on a terminal, never with `--json`), redrawn at most five
/// times a second: `label: 42% [#####.....] 330 MB read 610 MB/s` plus `extra`.
pub(crate) fn progress_line(
    ctx: &Context,
    label: &'static str,
    extra: String,
) -> impl FnMut(u64, u64, u64) {
    let show = !ctx.json && std::io::stderr().is_terminal();
    let started = Instant::now();
    let mut last_draw: Option<Instant> = None;
    move |done: u64, total: u64, _ticks: u64| {
        if show && (last_draw.is_none_or(|t| t.elapsed().as_millis() >= 200) || done == total) {
            last_draw = Some(Instant::now());
            let pct = (done * 100).checked_div(total).unwrap_or(100).min(100);
            let bar: String = (0..20)
                .map(|i| if i * 5 < pct { '#' } else { '.' })
                .collect();
            let mb = done as f64 / 1e6;
            let secs = started.elapsed().as_secs_f64().max(1e-9);
            let eta = if done > 0 && done < total {
                format!("  eta {:.0} s", secs * (total - done) as f64 / done as f64)
            } else {
                String::new()
            };
            eprint!(
                "\r{label}: {pct:>3}% [{bar}] {mb:.0} MB read {:.0} MB/s{extra}{eta}   ",
                mb / secs
            );
            if done == total {
                eprintln!();
            }
        }
    }
}

pub(crate) fn backtest_error(e: BacktestError) -> CliError {
    match e {
        BacktestError::Io(_) => CliError::runtime(e.to_string()),
        _ => CliError::invalid(e.to_string()),
    }
}

/// Store a finished run as an ordinary backtest and move its outputs from `staging` to the
/// run's own folder; returns its id and output paths.
pub(crate) async fn store_outcome(
    store: &crate::store::Store,
    outcome: &crate::backtest::BacktestOutcome,
    data_path: &str,
    staging: &Path,
    out_root: &Path,
) -> Result<(i64, Option<String>, Option<String>), CliError> {
    let result_json =
        serde_json::to_value(&outcome.result).map_err(|e| CliError::runtime(e.to_string()))?;
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
        CliError::runtime(format!(
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
    Ok((id, fills, chart))
}
