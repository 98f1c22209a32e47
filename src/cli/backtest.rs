//! `bsc-bot backtest run|quick-grid|show|list`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Args, Subcommand};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde_json::json;

use super::output::{print_json, print_table};
use super::{CliError, Context};
use crate::backtest::data::{last_timestamp_us, ReadOptions};
use crate::backtest::{run_backtest, BacktestError, BacktestResult, BacktestSpec, ParamsSource};
use crate::clock::{format_ms, wall_clock_ms};
use crate::market::Symbol;
use crate::store::backtests::NewBacktest;
use crate::strategy::grid::Spacing;
use crate::strategy::params::parse_decimal;
use crate::strategy::spec::{RawFlags, RawSpec};
use crate::venue::sim::{SimDelays, PPM};

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
pub struct CommonArgs {
    /// Start of the window: 2025-06-01, 2025-06-01T12:00:00Z or epoch milliseconds.
    #[arg(long)]
    pub from: Option<String>,
    /// End of the window (exclusive), same forms.
    #[arg(long)]
    pub to: Option<String>,
    /// Count and report malformed rows instead of stopping at the first.
    #[arg(long)]
    pub skip_bad_rows: bool,
    /// Market orders fill this many basis points worse than the price seen.
    #[arg(long, default_value_t = 0)]
    pub slippage_bps: u32,
    #[command(flatten)]
    pub venue: VenueArgs,
    #[command(flatten)]
    pub fill: FillArgs,
}

/// How fills are priced: at the limit (the pinned model), or as a constant-product pool swap.
#[derive(Debug, Args, Default)]
pub struct FillArgs {
    /// `limit`: at the order's limit price with a flat fee; `amm`: what a Uniswap-V2-style pool
    /// whose price is the trigger price returns for the order's size, after the pool fee
    /// (`fee_bps`), less gas.
    #[arg(long, default_value = "limit", value_parser = ["limit", "amm"])]
    pub fill_model: String,
    /// The pool for `--fill-model amm`, by its reserves at any one price: `BASE:QUOTE`
    /// (e.g. `250:25000000` for 250 BTC against 25 M USDT). Its depth holds at every price.
    #[arg(long, conflicts_with = "pool_pair")]
    pub pool_reserves: Option<String>,
    /// The pool for `--fill-model amm` by its pair address, its reserves read once from the
    /// configured node (`chain.rpc_urls`); which token is the base comes from `[dex.assets]`, else
    /// from the tokens' symbols.
    #[arg(long)]
    pub pool_pair: Option<String>,
    /// Gas of one swap (units; PancakeSwap V2 swaps use ~110,000-150,000).
    #[arg(long, default_value_t = 150_000)]
    pub gas_units: u64,
    /// Gas price in gwei (BSC: ~0.1).
    #[arg(long, default_value = "0.1")]
    pub gas_price_gwei: String,
    /// BNB's price in the quote asset, to turn gas into quote.
    #[arg(long, default_value = "600")]
    pub bnb_price: String,
}

impl FillArgs {
    pub async fn pool(
        &self,
        ctx: &Context,
        symbol: &Symbol,
    ) -> Result<Option<crate::venue::sim::AmmPool>, CliError> {
        if self.fill_model != "amm" {
            if self.pool_reserves.is_some() || self.pool_pair.is_some() {
                return Err(CliError::invalid(
                    "--pool-reserves and --pool-pair are for --fill-model amm",
                ));
            }
            return Ok(None);
        }
        let (b, q, shown) = match (&self.pool_reserves, &self.pool_pair) {
            (Some(reserves), _) => {
                let bad = || {
                    CliError::invalid(format!(
                        "--pool-reserves {reserves:?}: expected BASE:QUOTE, two decimals > 0"
                    ))
                };
                let (b, q) = reserves.split_once(':').ok_or_else(bad)?;
                (
                    parse_decimal(b.trim()).ok_or_else(bad)?,
                    parse_decimal(q.trim()).ok_or_else(bad)?,
                    format!("--pool-reserves {reserves:?}"),
                )
            }
            (None, Some(pair)) => {
                let (b, q) = pair_reserves(ctx, symbol, pair).await?;
                (b, q, format!("--pool-pair {pair}"))
            }
            (None, None) => {
                return Err(CliError::invalid(
                    "--fill-model amm needs the pool: --pool-reserves BASE:QUOTE or --pool-pair ADDRESS",
                ))
            }
        };
        let bad = || CliError::invalid(format!("{shown}: the pool has no liquidity"));
        let decimal = |flag: &str, text: &str| {
            parse_decimal(text)
                .filter(|d| *d >= Decimal::ZERO)
                .ok_or_else(|| {
                    CliError::invalid(format!("--{flag} {text:?}: expected a decimal >= 0"))
                })
        };
        let gwei = decimal("gas-price-gwei", &self.gas_price_gwei)?;
        let bnb = decimal("bnb-price", &self.bnb_price)?;
        let gas_quote = crate::venue::sim::AmmPool::gas_quote_of(self.gas_units, gwei, bnb);
        crate::venue::sim::AmmPool::from_reserves(b, q, gas_quote)
            .map(Some)
            .ok_or_else(bad)
    }
}

/// A pair's reserves as `(base, quote)` of `symbol`, read once from the configured node.
async fn pair_reserves(
    ctx: &Context,
    symbol: &Symbol,
    pair: &str,
) -> Result<(Decimal, Decimal), CliError> {
    let address: alloy::primitives::Address = pair
        .trim()
        .parse()
        .map_err(|_| CliError::invalid(format!("--pool-pair {pair:?}: not an address")))?;
    let failed = |e: crate::chain::ChainError| {
        CliError::runtime(format!(
            "--pool-pair {pair}: cannot read the pool from chain.rpc_urls: {e}"
        ))
    };
    let client = crate::chain::ChainClient::connect(&ctx.config.chain)
        .await
        .map_err(failed)?;
    let (t0, t1) = client.pair_tokens(address).await.map_err(failed)?;
    // The configured token address decides; without one, the token's own symbol.
    let is_base = |t: &crate::chain::Token| match ctx.config.dex.asset_address(symbol.base()) {
        Some(a) => t.address == a,
        None => t.symbol.eq_ignore_ascii_case(symbol.base()),
    };
    let (base, quote) = match (is_base(&t0), is_base(&t1)) {
        (true, false) => (t0, t1),
        (false, true) => (t1, t0),
        _ => {
            return Err(CliError::invalid(format!(
                "--pool-pair {pair}: cannot tell which of its tokens ({}, {}) is {}; set \
                 [dex.assets] {} = \"ADDRESS\"",
                t0.symbol,
                t1.symbol,
                symbol.base(),
                symbol.base()
            )))
        }
    };
    let pool = crate::chain::Pool {
        pair: address,
        base_is_token0: base.address < quote.address,
        base,
        quote,
    };
    client.reserves(&pool).await.map_err(failed)
}

/// A venue that answers late and sometimes fails, to see a strategy with orders in flight.
#[derive(Debug, Args, Default)]
pub struct VenueArgs {
    /// The venue answers each order this many milliseconds (of data time) after it was sent;
    /// a market order fills at the price of that moment. 0: at once.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Share of orders (0 to 1) that fail retryably, as a swap that times out.
    #[arg(long, default_value = "0")]
    pub fail_rate: String,
    /// Share of orders (0 to 1) that fail for good, as a reverted swap.
    #[arg(long, default_value = "0")]
    pub reject_rate: String,
    /// Seed of the failure draws (same seed, same data: same result to the byte).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl VenueArgs {
    pub(crate) fn delays(&self) -> Result<SimDelays, CliError> {
        let rate = |flag: &str, text: &str| -> Result<u32, CliError> {
            let d: Decimal = text.trim().parse().map_err(|_| {
                CliError::invalid(format!("--{flag} {text:?}: not a decimal number"))
            })?;
            if d < Decimal::ZERO || d > Decimal::ONE {
                return Err(CliError::invalid(format!(
                    "--{flag} {text}: must be between 0 and 1"
                )));
            }
            (d * Decimal::from(PPM))
                .round()
                .to_u32()
                .ok_or_else(|| CliError::invalid(format!("--{flag} {text}: out of range")))
        };
        let fail_ppm = rate("fail-rate", &self.fail_rate)?;
        let reject_ppm = rate("reject-rate", &self.reject_rate)?;
        if u64::from(fail_ppm) + u64::from(reject_ppm) > u64::from(PPM) {
            return Err(CliError::invalid(
                "--fail-rate plus --reject-rate must not exceed 1",
            ));
        }
        let latency_us = i64::try_from(self.latency_ms)
            .ok()
            .and_then(|ms| ms.checked_mul(1000))
            .ok_or_else(|| CliError::invalid("--latency-ms: out of range"))?;
        Ok(SimDelays {
            latency_us,
            fail_ppm,
            reject_ppm,
            seed: self.seed,
        })
    }
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

/// `2025-06-01`, an RFC 3339 time, or epoch milliseconds → epoch microseconds.
pub fn parse_time_us(flag: &str, text: &str) -> Result<i64, CliError> {
    use chrono::{DateTime, NaiveDate};
    let t = text.trim();
    if let Ok(ms) = t.parse::<i64>() {
        return Ok(ms * 1000);
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        if let Some(dt) = d.and_hms_opt(0, 0, 0) {
            return Ok(dt.and_utc().timestamp_micros());
        }
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Ok(dt.timestamp_micros());
    }
    Err(CliError::invalid(format!(
        "--{flag} {text:?}: expected YYYY-MM-DD, an RFC 3339 time or epoch milliseconds"
    )))
}

pub(crate) fn read_options(common: &CommonArgs) -> Result<ReadOptions, CliError> {
    let from_us = common
        .from
        .as_deref()
        .map(|t| parse_time_us("from", t))
        .transpose()?;
    let to_us = common
        .to
        .as_deref()
        .map(|t| parse_time_us("to", t))
        .transpose()?;
    if let (Some(f), Some(t)) = (from_us, to_us) {
        if f >= t {
            return Err(CliError::invalid("--from must be before --to"));
        }
    }
    Ok(ReadOptions {
        from_us,
        to_us,
        skip_bad_rows: common.skip_bad_rows,
    })
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
    let bt = BacktestSpec {
        symbol: spec.symbol.clone(),
        params: ParamsSource::Fixed(spec.params),
        data_label: args.data.display().to_string(),
        files,
        read: read_options(&args.common)?,
        slippage_bps: args.common.slippage_bps,
        delays: args.common.venue.delays()?,
        amm: args.common.fill.pool(ctx, &spec.symbol).await?,
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
        .map_err(|e: crate::market::SymbolError| CliError::invalid(e.to_string()))?;
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
        amm: args.fill.pool(ctx, &symbol).await?,
    };
    execute(bt, ctx).await
}

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

async fn execute(spec: BacktestSpec, ctx: &Context) -> Result<(), CliError> {
    let store = ctx.open_store().await?;
    let out_root = outputs_root(ctx);
    let staging = staging_dir(&out_root, 0)?;
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
    let (id, fills, chart) =
        store_outcome(&store, &outcome, &data_path, &staging, &out_root).await?;
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
