//! `bsc-bot backtest sweep`: a spec of varied parameters → many grids in one pass over the
//! data → ranked rows (CSV and JSON), an optional heatmap, and the top K stored as backtests.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use serde_json::{json, Value};

use super::backtest_inputs::{parse_time_us, read_options, CommonArgs};
use super::backtest_outputs::{backtest_error, progress_line};
use super::output::{print_json, print_table};
use super::{CliError, Context};
use crate::backtest::heatmap::render_heatmap;
use crate::backtest::multi::{run_pass, GridJob, PassSpec};
use crate::backtest::sweep::{
    expand, grid_count, rows_csv, split_sweep_file, Metric, SweepRow, Vary, DEFAULT_MAX_GRIDS,
};
use crate::backtest::sweep_run::{run_sweep, SweepOutcome};
use crate::backtest::{record, BacktestSpec, ParamsSource};
use crate::clock::wall_clock_ms;
use crate::strategy::spec::{RawFlags, RawSpec};

#[derive(Debug, Args)]
pub struct SweepArgs {
    /// Sweep file: a strategy spec (`type`, `symbol`, `[params]`) plus a `[vary]` table of
    /// `key = [v1, v2]`, `key = "FROM:TO:STEP"` or `key = { from, to, step }`.
    #[arg(long)]
    pub file: Option<PathBuf>,
    #[arg(short = 't', long = "type")]
    pub type_name: Option<String>,
    #[arg(short, long)]
    pub symbol: Option<String>,
    /// Base parameters (JSON) the varied keys are laid over.
    #[arg(short, long)]
    pub params: Option<String>,
    /// A parameter to vary: `KEY=FROM:TO:STEP` (inclusive) or `KEY=V1,V2,...`; repeat for more
    /// keys (a flag wins over the file's `[vary]` for the same key).
    #[arg(long = "vary")]
    pub vary: Vec<String>,
    /// A CSV/zip file or a folder of them (read in file-name order).
    #[arg(long)]
    pub data: PathBuf,
    /// Rank by `return`, `drawdown` (lowest first), `sharpe` or `return_dd`.
    #[arg(long, default_value = "return")]
    pub metric: String,
    /// Store the best K as ordinary backtests (fills CSV, chart; `backtest show ID`); 0: none.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// Draw the metric over two varied keys: `--heatmap X_KEY,Y_KEY`.
    #[arg(long)]
    pub heatmap: Option<String>,
    /// Walk-forward: rank on the data before this time, and report the same grids run afresh
    /// on the rest (same forms as --from).
    #[arg(long)]
    pub train_until: Option<String>,
    /// Refuse a sweep that expands to more grids than this.
    #[arg(long, default_value_t = DEFAULT_MAX_GRIDS)]
    pub max_grids: u64,
    /// Worker threads (default: every core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Folder for rows.csv, rows.json and heatmap.svg (default: data/sweeps/<time>/).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub common: CommonArgs,
}

fn invalid(e: impl std::fmt::Display) -> CliError {
    CliError::invalid(e.to_string())
}

/// The base spec and the varied keys, from the file and the flags.
fn sweep_spec(args: &SweepArgs, fee_bps: u32) -> Result<(RawSpec, Vec<Vary>), CliError> {
    let (mut raw, mut varies) = match &args.file {
        Some(path) => {
            let shown = path.display().to_string();
            let text = std::fs::read_to_string(path)
                .map_err(|e| CliError::invalid(format!("cannot read {shown}: {e}")))?;
            let (rest, varies) = split_sweep_file(&text, &shown).map_err(invalid)?;
            (RawSpec::from_toml_str(&rest, &shown)?, varies)
        }
        None => (RawSpec::default(), Vec::new()),
    };
    raw = raw.with_flags(RawFlags {
        type_name: args.type_name.as_deref(),
        symbol: args.symbol.as_deref(),
        params: args.params.as_deref(),
        ..RawFlags::default()
    })?;
    for flag in &args.vary {
        let v = Vary::parse_flag(flag).map_err(invalid)?;
        varies.retain(|old| old.key != v.key);
        varies.push(v);
    }
    if varies.is_empty() {
        return Err(CliError::invalid(
            "nothing to vary: give --vary KEY=FROM:TO:STEP (or KEY=V1,V2) or a [vary] table in --file",
        ));
    }
    raw.name = None;
    raw.mode = None;
    if raw.params.is_none() {
        raw.params = Some(json!({}));
    }
    raw.default_fee_bps(fee_bps);
    Ok((raw, varies))
}

pub async fn run(args: SweepArgs, ctx: &Context) -> Result<(), CliError> {
    let metric: Metric = args.metric.parse().map_err(CliError::invalid)?;
    let (raw, varies) = sweep_spec(&args, ctx.config.dex.fee_bps)?;
    let type_name = raw
        .type_name
        .clone()
        .ok_or_else(|| CliError::invalid("type: is required (-t grid or type = in the file)"))?;
    let base = raw.params.clone().unwrap_or_else(|| json!({}));
    let count = grid_count(&varies);
    let points = expand(&type_name, &base, &varies, args.max_grids).map_err(invalid)?;
    // The symbol and everything else in the spec, checked once on the first valid grid.
    let first_valid = points
        .iter()
        .find_map(|p| p.params.as_ref().ok())
        .ok_or_else(|| {
            let why = points
                .first()
                .and_then(|p| p.params.as_ref().err())
                .cloned()
                .unwrap_or_default();
            CliError::invalid(format!("no valid grid in the sweep: {why}"))
        })?;
    let mut check = raw.clone();
    check.params = Some(first_valid.params_json());
    let symbol = check.validate(false)?.symbol;
    let heat_keys = match &args.heatmap {
        Some(text) => {
            let (x, y) = text.split_once(',').ok_or_else(|| {
                CliError::invalid(format!("--heatmap {text:?}: expected X_KEY,Y_KEY"))
            })?;
            let find = |k: &str| {
                varies
                    .iter()
                    .find(|v| v.key == k.trim())
                    .cloned()
                    .ok_or_else(|| {
                        CliError::invalid(format!(
                            "--heatmap: {k:?} is not a varied key ({})",
                            varies
                                .iter()
                                .map(|v| v.key.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ))
                    })
            };
            let (x, y) = (find(x)?, find(y)?);
            if x.key == y.key {
                return Err(CliError::invalid("--heatmap needs two different keys"));
            }
            Some((x, y))
        }
        None => None,
    };
    let files = crate::backtest::data::list_data_files(&args.data)
        .map_err(|e| CliError::invalid(format!("--data {}: {e}", args.data.display())))?;
    let read = read_options(&args.common)?;
    let split_us = args
        .train_until
        .as_deref()
        .map(|t| parse_time_us("train-until", t))
        .transpose()?;
    if let Some(t) = split_us {
        if read.from_us.is_some_and(|f| t <= f) || read.to_us.is_some_and(|to| t >= to) {
            return Err(CliError::invalid(
                "--train-until must fall inside --from/--to",
            ));
        }
    }
    let fill_pool = args.common.fill.pool(ctx, &symbol).await?;
    let spec = BacktestSpec {
        symbol: symbol.clone(),
        params: ParamsSource::Fixed(first_valid.clone()),
        data_label: args.data.display().to_string(),
        files,
        read,
        slippage_bps: args.common.slippage_bps,
        delays: args.common.venue.delays()?,
        amm: fill_pool.amm,
        v3: fill_pool.v3,
    };
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let started = Instant::now();
    let mut progress = progress_line(ctx, "sweep", format!("  {count} grids"));
    let outcome = tokio::task::block_in_place(|| {
        run_sweep(
            &spec,
            &varies,
            points,
            metric,
            threads,
            split_us,
            &mut progress,
        )
    })
    .map_err(backtest_error)?;
    let elapsed = started.elapsed();
    let out_dir = match &args.out {
        Some(d) => d.clone(),
        None => record::sweeps_root(&ctx.config.base_dir).join(wall_clock_ms().to_string()),
    };
    let written = write_reports(&out_dir, &varies, &outcome, metric, &heat_keys, &spec)?;
    let stored = store_top(&spec, &outcome.rows, args.top, threads, split_us, ctx).await?;
    report(
        ctx,
        &varies,
        &outcome,
        metric,
        &stored,
        &written,
        (threads, elapsed.as_secs_f64()),
    )
}

struct Written {
    csv: PathBuf,
    json: PathBuf,
    heatmap: Option<PathBuf>,
}

/// rows.csv, rows.json and heatmap.svg: nothing in them depends on the clock or the database,
/// so the same sweep writes the same bytes.
fn write_reports(
    dir: &Path,
    varies: &[Vary],
    outcome: &SweepOutcome,
    metric: Metric,
    heat_keys: &Option<(Vary, Vary)>,
    spec: &BacktestSpec,
) -> Result<Written, CliError> {
    crate::private_files::private_dir(dir)
        .map_err(|e| CliError::runtime(format!("cannot create {}: {e}", dir.display())))?;
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        crate::private_files::replace(&path, text.as_bytes())
            .map_err(|e| CliError::runtime(format!("cannot write: {e}")))?;
        Ok::<PathBuf, CliError>(path)
    };
    let csv = write("rows.csv", &rows_csv(varies, &outcome.rows))?;
    let doc = json!({
        "symbol": spec.symbol.to_string(),
        "metric": metric.name(),
        "varied": varies.iter().map(|v| json!({"key": v.key, "values": v.values})).collect::<Vec<_>>(),
        "ticks": outcome.ticks,
        "test_ticks": outcome.test_ticks,
        "rows": outcome.rows,
        "skipped": outcome.skipped,
    });
    let text = serde_json::to_string_pretty(&doc).map_err(|e| CliError::runtime(e.to_string()))?;
    let json_path = write("rows.json", &(text + "\n"))?;
    let heatmap = match heat_keys {
        Some((x, y)) => {
            let title = format!(
                "{} sweep: {} grids, {} by {} × {}",
                spec.symbol,
                outcome.rows.len(),
                metric.name(),
                x.key,
                y.key
            );
            Some(write(
                "heatmap.svg",
                &render_heatmap(x, y, &outcome.rows, metric, &title),
            )?)
        }
        None => None,
    };
    Ok(Written {
        csv,
        json: json_path,
        heatmap,
    })
}

/// Run the best K again with outputs (one more pass, over the ranked window) and store them as
/// ordinary backtests. Returns `(grid, backtest id)`.
async fn store_top(
    spec: &BacktestSpec,
    rows: &[SweepRow],
    top: usize,
    threads: usize,
    split_us: Option<i64>,
    ctx: &Context,
) -> Result<Vec<(usize, i64)>, CliError> {
    let best: Vec<&SweepRow> = rows.iter().take(top).collect();
    if best.is_empty() {
        return Ok(Vec::new());
    }
    let store = ctx.open_store().await?;
    let out_root = record::outputs_root(&ctx.config.base_dir);
    let mut jobs = Vec::new();
    for (n, row) in best.iter().enumerate() {
        jobs.push(GridJob {
            params: ParamsSource::Fixed(row.params.clone()),
            out_dir: Some(record::staging_dir(&out_root, n)?),
        });
    }
    let staged: Vec<PathBuf> = jobs.iter().filter_map(|j| j.out_dir.clone()).collect();
    let mut ranked = spec.clone();
    if let Some(t) = split_us {
        ranked.read.to_us = Some(t);
    }
    let pass = PassSpec {
        threads,
        split_us: None,
        light: false,
    };
    let outcome = tokio::task::block_in_place(|| run_pass(&ranked, jobs, &pass, &mut |_, _, _| {}));
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            for d in &staged {
                let _ = std::fs::remove_dir_all(d);
            }
            return Err(backtest_error(e));
        }
    };
    let mut stored = Vec::new();
    for ((row, result), staging) in best.iter().zip(outcome.first).zip(&staged) {
        let result = result.map_err(backtest_error)?;
        let on_record =
            record::store_outcome(&store, &result, &ranked.data_label, staging, &out_root).await?;
        stored.push((row.grid, on_record.id));
    }
    Ok(stored)
}

fn report(
    ctx: &Context,
    varies: &[Vary],
    outcome: &SweepOutcome,
    metric: Metric,
    stored: &[(usize, i64)],
    written: &Written,
    (threads, secs): (usize, f64),
) -> Result<(), CliError> {
    let id_of = |grid: usize| stored.iter().find(|(g, _)| *g == grid).map(|(_, id)| *id);
    if ctx.json {
        let top: Vec<Value> = outcome
            .rows
            .iter()
            .take(stored.len().max(1))
            .map(|r| {
                let mut v = serde_json::to_value(r).unwrap_or_else(|_| json!({}));
                if let Some(o) = v.as_object_mut() {
                    o.insert("backtest_id".into(), json!(id_of(r.grid)));
                }
                v
            })
            .collect();
        return print_json(&json!({
            "grids": outcome.rows.len(),
            "skipped": outcome.skipped,
            "metric": metric.name(),
            "ticks": outcome.ticks,
            "test_ticks": outcome.test_ticks,
            "threads": threads,
            "seconds": (secs * 1000.0).round() / 1000.0,
            "rows_csv": written.csv.display().to_string(),
            "rows_json": written.json.display().to_string(),
            "heatmap": written.heatmap.as_ref().map(|p| p.display().to_string()),
            "top": top,
        }));
    }
    println!(
        "sweep: {} grids over {} ticks{} in {:.2} s ({} threads, one pass), ranked by {}",
        outcome.rows.len(),
        outcome.ticks,
        outcome
            .test_ticks
            .map(|t| format!(" (+{t} after --train-until)"))
            .unwrap_or_default(),
        secs,
        threads,
        metric.name()
    );
    if !outcome.skipped.is_empty() {
        println!(
            "  skipped {} invalid combination(s), e.g. grid {}: {}",
            outcome.skipped.len(),
            outcome.skipped[0].grid,
            outcome.skipped[0].reason
        );
    }
    let mut headers: Vec<String> = vec!["RANK".into(), "BACKTEST".into()];
    headers.extend(varies.iter().map(|v| v.key.to_uppercase()));
    headers.extend(
        ["RETURN", "MAX DD", "SHARPE", "ROUND TRIPS"]
            .iter()
            .map(|s| s.to_string()),
    );
    let walk = outcome.test_ticks.is_some();
    if walk {
        headers.extend(["TEST RETURN".to_string(), "TEST MAX DD".to_string()]);
    }
    let shown = stored.len().max(10).min(outcome.rows.len());
    let rows: Vec<Vec<String>> = outcome
        .rows
        .iter()
        .take(shown)
        .map(|r| {
            let mut cells = vec![
                r.rank.to_string(),
                id_of(r.grid).map(|i| i.to_string()).unwrap_or("-".into()),
            ];
            for v in varies {
                cells.push(
                    r.values
                        .get(&v.key)
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                );
            }
            cells.push(format!("{}%", r.figures.total_return_pct));
            cells.push(format!("{}%", r.figures.max_drawdown_pct));
            cells.push(r.figures.sharpe.clone());
            cells.push(r.figures.round_trips.to_string());
            if let Some(t) = &r.test {
                cells.push(format!("{}%", t.total_return_pct));
                cells.push(format!("{}%", t.max_drawdown_pct));
            }
            cells
        })
        .collect();
    let header_refs: Vec<&str> = headers.iter().map(String::as_str).collect();
    print_table(&header_refs, &rows);
    println!("  rows csv     {}", written.csv.display());
    println!("  rows json    {}", written.json.display());
    if let Some(h) = &written.heatmap {
        println!("  heatmap      {}", h.display());
    }
    Ok(())
}
