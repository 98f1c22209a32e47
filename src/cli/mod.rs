//! The operator's command line (floor 11, may use floors 0–10).
//!
//! The operator's command line: one clap tree, one file per command group.
//!
//! Exit codes (documented in the README): 0 ok, 1 invalid input (bad arguments, parameters,
//! config, unknown ids, refused transitions), 2 runtime failure (database, I/O).

pub mod backtest;
pub mod backtest_inputs;
pub mod backtest_outputs;
pub mod bot;
pub mod canary;
pub mod cluster;
pub mod config_cmd;
pub mod context;
pub mod data;
pub mod db;
pub mod db_drill;
pub mod emergency;
pub mod funds;
pub mod output;
pub mod risk;
pub mod strategy;
pub mod sweep;
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
    Backtest(Box<backtest::BacktestCommand>),
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
    /// Canary rollouts: backtest → paper → live canary → scale, each step gated by evidence.
    #[command(subcommand)]
    Canary(canary::CanaryCommand),
    /// Several daemons on one PostgreSQL: who holds what, and `drain` for a rolling restart.
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
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
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{EnvFilter, Layer};
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
    let json = format == "json";
    type Boxed = Box<dyn Layer<tracing_subscriber::Registry> + Send + Sync>;
    let stderr: Boxed = if json {
        tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .boxed()
    } else {
        // Colour only for a person at a terminal: a pipe, a file or journald gets plain text.
        tracing_subscriber::fmt::layer()
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_writer(std::io::stderr)
            .boxed()
    };
    let mut layers = vec![stderr];
    // The daemon also writes `log.file`, one file a day, `log.keep_days` kept.
    if daemon && !ctx.config.log.file.trim().is_empty() {
        let path = ctx.config.base_dir.join(ctx.config.log.file.trim());
        let dir = path
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_default();
        let prefix = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_else(|| "bsc-bot.log".into());
        // The log folder is the operator's alone (0700, never a link): no one else can plant a
        // link at the next day's file name there.
        let folder = crate::private_files::private_dir(&dir)
            .map_err(|e| eprintln!("log.file: {e}; logging to stderr only"));
        let appender = folder.ok().and_then(|_| {
            tracing_appender::rolling::Builder::new()
                .rotation(tracing_appender::rolling::Rotation::DAILY)
                .filename_prefix(prefix)
                .max_log_files(ctx.config.log.keep_days.max(1))
                .build(&dir)
                .map_err(|e| eprintln!("log.file {}: {e}; logging to stderr only", path.display()))
                .ok()
        });
        if let Some(appender) = appender {
            let file: Boxed = if json {
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_ansi(false)
                    .with_writer(appender)
                    .boxed()
            } else {
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .with_writer(appender)
                    .boxed()
            };
            layers.push(file);
        }
    }
    let filter = EnvFilter::try_new(&level).unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::registry()
        .with(layers)
        .with(filter)
        .try_init();
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
        Command::Backtest(cmd) => backtest::run(*cmd, &ctx).await,
        Command::Data(cmd) => data::run(cmd, &ctx).await,
        Command::Wallet(cmd) => wallet::run(cmd, &ctx).await,
        Command::Risk(cmd) => risk::run(cmd, &ctx).await,
        Command::Funds(cmd) => funds::run(cmd, &ctx).await,
        Command::Db(cmd) => db::run(cmd, &ctx).await,
        Command::Canary(cmd) => canary::run(cmd, &ctx).await,
        Command::Cluster(cmd) => cluster::run(cmd, &ctx).await,
    }
}
