//! `bsc-bot backtest run|quick-grid|show|list`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Args, Subcommand};
use rust_decimal::Decimal;
use serde_json::json;

use super::backtest_inputs::{read_options, CommonArgs, FillArgs, VenueArgs};
use super::backtest_outputs::{backtest_error, progress_line};
use super::output::{print_json, print_table};
use super::{CliError, Context};
use crate::backtest::data::{last_timestamp_us, ReadOptions};
use crate::backtest::{record, run_backtest, BacktestResult, BacktestSpec, ParamsSource};
use crate::clock::format_ms;
use crate::model::params::parse_decimal;
use crate::model::Symbol;
use crate::strategy::grid::Spacing;
use crate::strategy::spec::{RawFlags, RawSpec};

#[derive(Debug, Subcommand)]
pub enum BacktestCommand {
    /// Backtest a strategy spec over historical data.
    Run(RunArgs),
    /// A grid centred on the first price of the last N days, ± range-pct percent.
    QuickGrid(QuickGridArgs),
    /// Many grids over the same data in one pass, ranked; the best stored as backtests.
    Sweep(Box<super::sweep::SweepArgs>),
    /// Show a stored backtest.
    Show { id: i64 },
    /// List stored backtests, newest first.
    List {
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Spec file (strategies/*.toml); `name` and `mode` in it are ignored.
    #[arg(long, conflicts_with = "params")]
    pub file: Option<PathBuf>,
    #[arg(short = 't', long = "type")]
    pub type_name: Option<String>,
    #[arg(short, long)]
    pub symbol: Option<String>,
    #[arg(short, long)]
    pub params: Option<String>,
    /// A CSV file or a folder of them (read in file-name order).
    #[arg(long)]
    pub data: PathBuf,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Debug, Args)]
pub struct QuickGridArgs {
    #[arg(short, long)]
    pub symbol: String,
    #[arg(long, default_value_t = 7)]
    pub days: u32,
    #[arg(long, default_value_t = 5)]
    pub grid_count: u32,
    /// The range is first price × (1 ± range-pct / 100).
    #[arg(long, default_value = "5")]
    pub range_pct: String,
    #[arg(long, default_value = "100")]
    pub base_order_size: String,
    #[arg(long, default_value = "arithmetic", value_parser = ["arithmetic", "geometric"])]
    pub spacing: String,
    /// Pool fee; default: the configured pool's (`dex.fee_bps`, 25 on PancakeSwap V2).
    #[arg(long)]
    pub fee_bps: Option<u32>,
    /// Data file or folder; default: this symbol's files under backtest-data/.
    #[arg(long)]
    pub data: Option<PathBuf>,
    #[arg(long)]
    pub skip_bad_rows: bool,
    #[arg(long, default_value_t = 0)]
    pub slippage_bps: u32,
    #[command(flatten)]
    pub venue: VenueArgs,
    #[command(flatten)]
    pub fill: FillArgs,
}

pub async fn run(cmd: BacktestCommand, ctx: &Context) -> Result<(), CliError> {
    match cmd {
        BacktestCommand::Run(args) => run_cmd(args, ctx).await,
        BacktestCommand::QuickGrid(args) => quick_grid(args, ctx).await,
        BacktestCommand::Sweep(args) => super::sweep::run(*args, ctx).await,
        BacktestCommand::Show { id } => show(id, ctx).await,
        BacktestCommand::List { limit } => list(limit, ctx).await,
    }
}

async fn run_cmd(args: RunArgs, ctx: &Context) -> Result<(), CliError> {
    let mut raw = RawSpec::from_file_and_flags(
        args.file.as_deref(),
        RawFlags {
            type_name: args.type_name.as_deref(),
            symbol: args.symbol.as_deref(),
            params: args.params.as_deref(),
            ..RawFlags::default()
        },
    )?;
    raw.name = None;
    raw.mode = None;
    raw.default_fee_bps(ctx.config.dex.fee_bps);
    let spec = raw.validate(false)?;
    let files = crate::backtest::data::list_data_files(&args.data)
        .map_err(|e| CliError::invalid(format!("--data {}: {e}", args.data.display())))?;
    let fill_pool = args.common.fill.pool(ctx, &spec.symbol).await?;
    let bt = BacktestSpec {
        symbol: spec.symbol.clone(),
        params: ParamsSource::Fixed(spec.params),
        data_label: args.data.display().to_string(),
        files,
        read: read_options(&args.common)?,
        slippage_bps: args.common.slippage_bps,
        delays: args.common.venue.delays()?,
        amm: fill_pool.amm,
        v3: fill_pool.v3,
    };
    execute(bt, ctx).await
}

/// Files of one symbol under `root`, grouped by kind (`1m`, `trades`, …); 1-minute klines are
/// preferred, then aggTrades, then trades, then any other interval.
pub(crate) fn symbol_files(root: &Path, symbol: &Symbol) -> Result<Vec<PathBuf>, CliError> {
    let prefix = format!("{}{}-", symbol.base(), symbol.quote());
    let all = crate::backtest::data::list_data_files(root).map_err(|e| {
        CliError::invalid(format!(
            "{}: {e}; download history with `bsc-bot data download -s {symbol}` or pass --data",
            root.display()
        ))
    })?;
    let mut groups: std::collections::BTreeMap<String, Vec<PathBuf>> = Default::default();
    for f in all {
        let Some(name) = f.file_name().and_then(|n| n.to_str()).map(str::to_string) else {
            continue;
        };
        if let Some(rest) = name.to_ascii_uppercase().strip_prefix(&prefix) {
            let kind = rest
                .split(['-', '.'])
                .next()
                .unwrap_or("")
                .to_ascii_lowercase();
            groups.entry(kind).or_default().push(f);
        }
    }
    for preferred in ["1m", "aggtrades", "trades"] {
        if let Some(files) = groups.remove(preferred) {
            return Ok(files);
        }
    }
    groups.into_values().next().ok_or_else(|| {
        CliError::invalid(format!(
            "no {prefix}*.csv files under {}; download history with `bsc-bot data download -s {symbol}`",
            root.display()
        ))
    })
}

async fn quick_grid(args: QuickGridArgs, ctx: &Context) -> Result<(), CliError> {
    let symbol: Symbol = args
        .symbol
        .parse()
        .map_err(|e: crate::model::SymbolError| CliError::invalid(e.to_string()))?;
    let range_pct = parse_decimal(&args.range_pct)
        .filter(|d| *d > Decimal::ZERO && *d < Decimal::ONE_HUNDRED)
        .ok_or_else(|| {
            CliError::invalid(format!(
                "--range-pct {:?}: expected a decimal in (0, 100)",
                args.range_pct
            ))
        })?;
    let base_order_size = parse_decimal(&args.base_order_size)
        .filter(|d| *d > Decimal::ZERO)
        .ok_or_else(|| {
            CliError::invalid(format!(
                "--base-order-size {:?}: expected a decimal > 0",
                args.base_order_size
            ))
        })?;
    if args.days == 0 {
        return Err(CliError::invalid("--days must be at least 1"));
    }
    let root = args
        .data
        .clone()
        .unwrap_or_else(|| ctx.config.base_dir.join("backtest-data"));
    let files = if root.is_file() {
        vec![root.clone()]
    } else {
        symbol_files(&root, &symbol)?
    };
    let last = files
        .iter()
        .rev()
        .find_map(|f| last_timestamp_us(f))
        .ok_or_else(|| {
            CliError::invalid(format!(
                "cannot read a timestamp from the end of {}",
                root.display()
            ))
        })?;
    let fill_pool = args.fill.pool(ctx, &symbol).await?;
    let from_us = last - i64::from(args.days) * 86_400_000_000;
    let bt = BacktestSpec {
        symbol: symbol.clone(),
        params: ParamsSource::QuickGrid {
            grid_count: args.grid_count,
            range_pct,
            base_order_size,
            spacing: if args.spacing == "geometric" {
                Spacing::Geometric
            } else {
                Spacing::Arithmetic
            },
            fee_bps: args.fee_bps.unwrap_or(ctx.config.dex.fee_bps),
        },
        data_label: root.display().to_string(),
        files,
        read: ReadOptions {
            from_us: Some(from_us),
            to_us: None,
            skip_bad_rows: args.skip_bad_rows,
        },
        slippage_bps: args.slippage_bps,
        delays: args.venue.delays()?,
        amm: fill_pool.amm,
        v3: fill_pool.v3,
    };
    execute(bt, ctx).await
}

async fn execute(spec: BacktestSpec, ctx: &Context) -> Result<(), CliError> {
    let store = ctx.open_store().await?;
    let out_root = record::outputs_root(&ctx.config.base_dir);
    let staging = record::staging_dir(&out_root, 0)?;
    let started = Instant::now();
    let mut progress = progress_line(ctx, "backtest", String::new());
    let data_path = spec.data_label.clone();
    let spec_clone = spec.clone();
    let staging_clone = staging.clone();
    let outcome = tokio::task::block_in_place(|| {
        run_backtest(&spec_clone, Some(&staging_clone), &mut progress)
    });
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(backtest_error(e));
        }
    };
    let elapsed = started.elapsed();
    let stored = record::store_outcome(&store, &outcome, &data_path, &staging, &out_root).await?;
    let (id, fills, chart) = (stored.id, stored.fills_csv, stored.chart);
    if ctx.json {
        return print_json(&result_document(
            id,
            &outcome.result,
            fills.as_deref(),
            chart.as_deref(),
        ));
    }
    let secs = elapsed.as_secs_f64().max(1e-9);
    print_result(id, &outcome.result, fills.as_deref(), chart.as_deref());
    eprintln!(
        "ran {} ticks in {:.2} s ({:.1} M ticks/s)",
        outcome.result.ticks,
        secs,
        outcome.result.ticks as f64 / secs / 1e6
    );
    Ok(())
}

/// The stable `--json` document of a run: the result plus its id and output paths.
fn result_document(
    id: i64,
    r: &BacktestResult,
    fills: Option<&str>,
    chart: Option<&str>,
) -> serde_json::Value {
    let mut v = serde_json::to_value(r).unwrap_or_else(|_| json!({}));
    if let Some(obj) = v.as_object_mut() {
        obj.insert("id".into(), json!(id));
        obj.insert("fills_csv".into(), json!(fills));
        obj.insert("chart".into(), json!(chart));
    }
    v
}

fn print_result(id: i64, r: &BacktestResult, fills: Option<&str>, chart: Option<&str>) {
    println!("backtest {id}: {} {} {}", r.symbol, r.kind, r.params);
    for w in &r.warnings {
        println!("  warning: {w}");
    }
    let d = &r.data;
    println!(
        "  data        {} file(s), {} rows, {} -> {}",
        d.files.len(),
        d.rows,
        d.first_ts_us
            .map(|t| format_ms(t / 1000))
            .unwrap_or_default(),
        d.last_ts_us
            .map(|t| format_ms(t / 1000))
            .unwrap_or_default()
    );
    if d.gaps > 0 {
        println!(
            "  gaps        {} gap(s), {} missing bars/ids (see --json data.gap_list)",
            d.gaps, d.missing
        );
    }
    if d.bad_rows_skipped > 0 {
        println!("  bad rows    {} skipped", d.bad_rows_skipped);
    }
    let rows = [
        ("ticks", r.ticks.to_string()),
        ("fills", r.fills.to_string()),
        ("round trips", r.round_trips.to_string()),
        ("win rate", r.win_rate.to_string()),
        ("realized pnl", r.realized_pnl.to_string()),
        ("unrealized", r.unrealized_pnl.to_string()),
        (
            "pnl",
            format!(
                "{} gross, {} net of gas",
                r.total_pnl, r.total_pnl_net_of_gas
            ),
        ),
        ("gas", r.gas.to_string()),
        ("fees", r.fees.to_string()),
        ("initial", r.initial_quote.to_string()),
        ("final quote", r.final_quote.to_string()),
        ("final base", r.final_base.to_string()),
        (
            "final equity",
            format!("{} (at {})", r.final_equity, r.final_price),
        ),
        ("return", format!("{}%", r.total_return_pct)),
        ("max drawdown", format!("{}%", r.max_drawdown_pct)),
        ("sharpe", r.sharpe.clone()),
        ("status", r.final_status.to_string()),
    ];
    for (k, v) in rows {
        println!("  {k:<12} {v}");
    }
    if let Some(f) = fills {
        println!("  fills csv    {f}");
    }
    if let Some(c) = chart {
        println!("  chart        {c}");
    }
}

async fn show(id: i64, ctx: &Context) -> Result<(), CliError> {
    let store = ctx.open_store().await?;
    let b = store.get_backtest(id).await?;
    let mut doc = b.result.clone();
    if let Some(obj) = doc.as_object_mut() {
        obj.insert("id".into(), json!(b.id));
        obj.insert("fills_csv".into(), json!(b.fills_csv));
        obj.insert("chart".into(), json!(b.chart));
        obj.insert("data_path".into(), json!(b.data_path));
        obj.insert("created_at".into(), json!(b.created_at));
    }
    if ctx.json {
        return print_json(&doc);
    }
    println!(
        "backtest {}: {} {} {} (run {}, data {})",
        b.id,
        b.symbol,
        b.kind,
        b.result["params"],
        format_ms(b.created_at),
        b.data_path
    );
    for key in [
        "ticks",
        "fills",
        "round_trips",
        "win_rate",
        "realized_pnl",
        "unrealized_pnl",
        "total_pnl",
        "gas",
        "total_pnl_net_of_gas",
        "fees",
        "initial_quote",
        "final_quote",
        "final_base",
        "final_price",
        "final_equity",
        "total_return_pct",
        "max_drawdown_pct",
        "sharpe",
        "final_status",
    ] {
        println!("  {key:<17} {}", json_text(&b.result[key]));
    }
    println!(
        "  fills csv         {}",
        b.fills_csv.as_deref().unwrap_or("-")
    );
    println!("  chart             {}", b.chart.as_deref().unwrap_or("-"));
    Ok(())
}

fn json_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

async fn list(limit: i64, ctx: &Context) -> Result<(), CliError> {
    let store = ctx.open_store().await?;
    let runs = store.list_backtests(limit.clamp(1, 10_000)).await?;
    if ctx.json {
        let items: Vec<serde_json::Value> = runs
            .iter()
            .map(|b| {
                json!({
                    "id": b.id, "type": b.kind, "symbol": b.symbol, "data_path": b.data_path,
                    "created_at": b.created_at,
                    "ticks": b.result["ticks"], "round_trips": b.result["round_trips"],
                    "realized_pnl": b.result["realized_pnl"], "total_return_pct": b.result["total_return_pct"],
                    "max_drawdown_pct": b.result["max_drawdown_pct"],
                })
            })
            .collect();
        return print_json(&json!({"backtests": items}));
    }
    if runs.is_empty() {
        println!("no backtests");
        return Ok(());
    }
    let s = json_text;
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|b| {
            vec![
                b.id.to_string(),
                b.symbol.clone(),
                b.kind.clone(),
                s(&b.result["ticks"]),
                s(&b.result["round_trips"]),
                s(&b.result["realized_pnl"]),
                format!("{}%", s(&b.result["total_return_pct"])),
                format!("{}%", s(&b.result["max_drawdown_pct"])),
                format_ms(b.created_at),
            ]
        })
        .collect();
    print_table(
        &[
            "ID",
            "SYMBOL",
            "TYPE",
            "TICKS",
            "ROUND TRIPS",
            "REALIZED",
            "RETURN",
            "MAX DD",
            "CREATED",
        ],
        &rows,
    );
    Ok(())
}
