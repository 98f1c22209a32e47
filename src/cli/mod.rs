//! The operator's command line: one clap tree, one file per command group.
//!
//! Exit codes (documented in the README): 0 ok, 1 invalid input (bad arguments, parameters,
//! config, unknown ids, refused transitions), 2 runtime failure (database, I/O).

pub mod backtest;
pub mod bot;
pub mod config_cmd;
pub mod context;
pub mod data;
pub mod db;
pub mod emergency;
pub mod funds;
pub mod output;
pub mod risk;
pub mod strategy;
pub mod wallet;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub use context::{CliError, Context};

#[derive(Debug, Parser)]
#[command(
    name = "bsc-bot",
    version,
    about = "Grid-trading daemon and operator CLI for BNB Smart Chain"
)]
pub struct Cli {
    /// Config file; when the default is absent the embedded defaults are used.
    #[arg(
        long,
        global = true,
        env = "BSC_BOT_CONFIG",
        default_value = "bsc-bot.toml"
    )]
    pub config: PathBuf,
    /// Machine-readable output (stable JSON, see the README).
    #[arg(long, global = true)]
    pub json: bool,
    /// Log format on stderr: text or json (overrides log.format).
    #[arg(long, global = true, value_parser = ["text", "json"])]
    pub log_format: Option<String>,
    /// Log filter such as `info` or `bsc_bot=debug` (overrides log.level for the daemon;
    /// other commands log warnings only unless this is given).
    #[arg(long, global = true)]
    pub log_level: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The daemon: start (foreground), stop, status, health.
    #[command(subcommand)]
    Bot(bot::BotCommand),
    /// Create, inspect and control strategies.
    #[command(subcommand)]
    Strategy(strategy::StrategyCommand),
    /// The kill switch: stop everything now, see it, lift it.
    #[command(subcommand)]
    Emergency(emergency::EmergencyCommand),
    /// Backtest strategies on historical data through the live engine.
    #[command(subcommand)]
    Backtest(backtest::BacktestCommand),
    /// Historical market data for backtests.
    #[command(subcommand)]
    Data(data::DataCommand),
    /// Inspect the effective configuration.
    #[command(subcommand)]
    Config(config_cmd::ConfigCommand),
    /// Trading wallets: encrypted keystores, addresses, balances.
    #[command(subcommand)]
    Wallet(wallet::WalletCommand),
    /// The risk guard: limits in force, what it did, the trading mode.
    #[command(subcommand)]
    Risk(risk::RiskCommand),
    /// The treasury and trading wallets: balances, gas, drips and sweeps.
    #[command(subcommand)]
    Funds(funds::FundsCommand),
    /// Database backups, verification, restore, pruning and vacuum.
    #[command(subcommand)]
    Db(db::DbCommand),
}

impl Cli {
    /// Whether this invocation was explicitly given a config path (then it must exist).
    pub fn config_is_explicit(&self) -> bool {
        self.config != std::path::Path::new("bsc-bot.toml")
    }
}

/// Logs go to stderr so stdout stays clean for tables and JSON. The daemon logs at the config's
/// `log.level` / `log.format`; other commands log warnings only unless `--log-level` says otherwise.
fn init_logging(cli: &Cli, ctx: &Context) {
    use tracing_subscriber::EnvFilter;
    let daemon = matches!(cli.command, Command::Bot(bot::BotCommand::Start(_)));
    let level = cli
        .log_level
        .clone()
        .or_else(|| std::env::var("BSC_BOT_LOG").ok())
        .unwrap_or_else(|| {
            if daemon {
                ctx.config.log.level.clone()
            } else {
                "warn".into()
            }
        });
    let format = cli.log_format.clone().unwrap_or_else(|| {
        if daemon {
            ctx.config.log.format.clone()
        } else {
            "text".into()
        }
    });
    let filter = EnvFilter::try_new(&level).unwrap_or_else(|_| EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Run one parsed command line.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    let ctx = Context::from_cli(&cli)?;
    init_logging(&cli, &ctx);
    match cli.command {
        Command::Bot(cmd) => bot::run(cmd, &ctx).await,
        Command::Strategy(cmd) => strategy::run(cmd, &ctx).await,
        Command::Emergency(cmd) => emergency::run(cmd, &ctx).await,
        Command::Config(cmd) => config_cmd::run(cmd, &ctx),
        Command::Backtest(cmd) => backtest::run(cmd, &ctx).await,
        Command::Data(cmd) => data::run(cmd, &ctx).await,
        Command::Wallet(cmd) => wallet::run(cmd, &ctx).await,
        Command::Risk(cmd) => risk::run(cmd, &ctx).await,
        Command::Funds(cmd) => funds::run(cmd, &ctx).await,
        Command::Db(cmd) => db::run(cmd, &ctx).await,
    }
}
