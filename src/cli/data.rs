//! `bsc-bot data download`: fill `backtest-data/` from Binance's public archive.

use clap::{Args, Subcommand};
use serde_json::json;

use super::output::print_json;
use super::{CliError, Context};
use crate::backtest::download::{
    download, ArchiveKind, DownloadError, DownloadEvent, DownloadRequest, KLINE_INTERVALS,
};
use crate::model::Symbol;

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Download, verify (SHA-256) and unzip spot history; files already there are skipped.
    Download(DownloadArgs),
}

#[derive(Debug, Args)]
pub struct DownloadArgs {
    #[arg(short, long)]
    pub symbol: String,
    /// klines, trades or aggTrades.
    #[arg(long, default_value = "klines", value_parser = ["klines", "trades", "aggTrades"])]
    pub kind: String,
    /// Kline interval (klines only).
    #[arg(long, default_value = "1m")]
    pub interval: String,
    /// First day (YYYY-MM-DD), included.
    #[arg(long)]
    pub from: String,
    /// Last day (YYYY-MM-DD), excluded; default today.
    #[arg(long)]
    pub to: Option<String>,
    /// Archive base URL (default: data.archive_url from the config).
    #[arg(long)]
    pub base_url: Option<String>,
}

pub async fn run(cmd: DataCommand, ctx: &Context) -> Result<(), CliError> {
    match cmd {
        DataCommand::Download(args) => download_cmd(args, ctx).await,
    }
}

fn day(flag: &str, text: &str) -> Result<chrono::NaiveDate, CliError> {
    chrono::NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| CliError::invalid(format!("--{flag} {text:?}: expected YYYY-MM-DD")))
}

async fn download_cmd(args: DownloadArgs, ctx: &Context) -> Result<(), CliError> {
    let symbol: Symbol = args
        .symbol
        .parse()
        .map_err(|e: crate::model::SymbolError| CliError::invalid(e.to_string()))?;
    let today = chrono::Utc::now().date_naive();
    let from = day("from", &args.from)?;
    let to = match &args.to {
        Some(t) => day("to", t)?,
        None => today,
    };
    if from >= to {
        return Err(CliError::invalid("--from must be before --to"));
    }
    let kind = match args.kind.as_str() {
        "trades" => ArchiveKind::Trades,
        "aggTrades" => ArchiveKind::AggTrades,
        _ => {
            if !KLINE_INTERVALS.contains(&args.interval.as_str()) {
                return Err(CliError::invalid(format!(
                    "--interval {:?}: expected one of {}",
                    args.interval,
                    KLINE_INTERVALS.join(", ")
                )));
            }
            ArchiveKind::Klines {
                interval: args.interval.clone(),
            }
        }
    };
    let req = DownloadRequest {
        symbol,
        kind,
        from,
        to,
        today,
        base_url: args
            .base_url
            .clone()
            .unwrap_or_else(|| ctx.config.data.archive_url.clone()),
        dest: ctx.config.base_dir.join(&ctx.config.data.dir),
    };
    let mut total = 0;
    let mut progress = |ev: DownloadEvent<'_>| match ev {
        DownloadEvent::Start { total: t } => {
            total = t;
            if !ctx.json {
                eprintln!(
                    "data download: {t} archive file(s) into {}",
                    req.dest_dir().display()
                );
            }
        }
        DownloadEvent::File {
            index,
            name,
            status,
        } => {
            if !ctx.json {
                eprintln!("  [{index}/{total}] {name}: {status}");
            }
        }
    };
    // Network, checksum and disk failures are runtime failures (exit 2): the request was fine.
    let report = download(&req, &mut progress)
        .await
        .map_err(|e: DownloadError| CliError::runtime(e.to_string()))?;
    if report.downloaded.is_empty() && report.skipped.is_empty() {
        return Err(CliError::invalid(format!(
            "nothing published for {} {} between {from} and {to} ({} file(s) missing)",
            req.symbol,
            req.kind.token(),
            report.missing.len()
        )));
    }
    if ctx.json {
        return print_json(&json!({"download": report}));
    }
    println!(
        "downloaded {} file(s) ({:.1} MB), skipped {} already there, {} not published; in {}",
        report.downloaded.len(),
        report.bytes as f64 / 1e6,
        report.skipped.len(),
        report.missing.len(),
        report.dest
    );
    Ok(())
}
