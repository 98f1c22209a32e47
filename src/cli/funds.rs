//! `bsc-bot funds …`: the treasury and the trading wallets — balances, gas runway, drips and
//! sweeps on record, the hour's outflow against its limits, and an audited manual sweep.

use std::collections::BTreeMap;
use std::sync::Arc;

use alloy::primitives::Address;
use clap::{Args, Subcommand};
use rust_decimal::Decimal;
use serde_json::json;

use super::output::print_json;
use super::{CliError, Context};
use crate::chain::{ChainClient, Swapper};
use crate::clock::{format_ms, wall_clock_ms};
use crate::funds::{FundsError, FundsManager, Operation};
use crate::strategy::StrategyMode;
use crate::views::funds::{balances_of, funds_status, keystore_wallets, token_list, with_treasury};
use crate::wallet::Keystore;

#[derive(Debug, Subcommand)]
pub enum FundsCommand {
    /// Treasury and wallets: BNB and token balances, gas runway, last drip and sweep, the hour's
    /// outflow against its limits, and what the daemon's funds manager is doing.
    Status,
    /// Every balance of the treasury and the trading wallets.
    Balances {
        /// Print as `json` or `csv` instead of a table.
        #[arg(long, value_parser = ["json", "csv"])]
        export: Option<String>,
    },
    /// Drips (gas top-ups from the treasury).
    #[command(subcommand)]
    Gas(GasCommand),
    /// Sweeps (excess to the treasury, or an operator's move).
    #[command(subcommand)]
    Sweep(SweepCommand),
}

#[derive(Debug, Subcommand)]
pub enum GasCommand {
    History {
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
}

#[derive(Debug, Subcommand)]
pub enum SweepCommand {
    History {
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// Move an asset out of a trading wallet (e.g. to a new wallet when rotating keys), through
    /// the allow-list and the hourly limit; audited. Stop or pause the wallet's strategies first:
    /// this process signs with the wallet's key beside the daemon.
    Execute(SweepArgs),
}

#[derive(Debug, Args)]
pub struct SweepArgs {
    /// The wallet (keystore name) funds leave.
    #[arg(short = 'w', long)]
    wallet: String,
    /// Destination address (the treasury or one in funds.allowed_destinations).
    #[arg(short = 't', long = "to")]
    to: String,
    /// Asset: BNB or a name in [dex.assets].
    #[arg(short = 'a', long)]
    asset: String,
    /// How much; default: everything above what the wallet keeps (funds.keep).
    #[arg(long)]
    amount: Option<String>,
    /// Check and show, send nothing.
    #[arg(long)]
    dry_run: bool,
}

pub async fn run(cmd: FundsCommand, ctx: &Context) -> Result<(), CliError> {
    match cmd {
        FundsCommand::Status => status(ctx).await,
        FundsCommand::Balances { export } => balances(export.as_deref(), ctx).await,
        FundsCommand::Gas(GasCommand::History { limit }) => history("drip", limit, ctx).await,
        FundsCommand::Sweep(SweepCommand::History { limit }) => history("sweep", limit, ctx).await,
        FundsCommand::Sweep(SweepCommand::Execute(args)) => execute(args, ctx).await,
    }
}

fn chain(e: impl std::fmt::Display) -> CliError {
    CliError::runtime(format!("chain: {e}"))
}

async fn client(ctx: &Context) -> Result<ChainClient, CliError> {
    ChainClient::connect(&ctx.config.chain).await.map_err(chain)
}

/// `funds balances`: the treasury and every wallet the bot has keys for. Without a node the
/// holders and their addresses are still listed, each balance unknown (`null`, an empty CSV
/// field) with the reason, and the command exits 2; with no wallet at all there is nothing to
/// read and it exits 0 without a node.
async fn balances(export: Option<&str>, ctx: &Context) -> Result<(), CliError> {
    let holders = with_treasury(
        &ctx.config,
        keystore_wallets(&ctx.config).map_err(|e| CliError::invalid(e.to_string()))?,
    );
    let mut rows: Vec<BalanceRow> = Vec::new();
    let mut failure = None;
    if !holders.is_empty() {
        match client(ctx).await {
            Ok(c) => {
                let tokens = token_list(&ctx.config, &c).await;
                for (name, who) in holders {
                    match balances_of(&c, &tokens, who).await {
                        Ok(b) => rows.push((name, who, Some(b), None)),
                        Err(e) => {
                            failure.get_or_insert_with(|| e.to_string());
                            rows.push((name, who, None, Some(e.to_string())));
                        }
                    }
                }
            }
            Err(e) => {
                failure = Some(e.message.clone());
                rows.extend(
                    holders
                        .into_iter()
                        .map(|(n, a)| (n, a, None, Some(e.message.clone()))),
                );
            }
        }
    }
    match export {
        Some("csv") => {
            println!("holder,address,asset,balance");
            for (name, address, b, _) in &rows {
                match b {
                    Some(b) => {
                        for (asset, v) in b {
                            println!("{name},{address},{asset},{}", v.normalize());
                        }
                    }
                    None => println!("{name},{address},,"),
                }
            }
        }
        Some(_) => print_balances_json(&rows, failure.as_deref())?,
        None if ctx.json => print_balances_json(&rows, failure.as_deref())?,
        None => {
            if rows.is_empty() {
                println!("no wallets: no treasury configured and no keystore");
            }
            for (name, address, b, why) in &rows {
                let shown = match b {
                    Some(b) => b
                        .iter()
                        .map(|(asset, v)| format!("{} {asset}", v.normalize()))
                        .collect::<Vec<_>>()
                        .join("  "),
                    None => format!("balances unknown: {}", why.as_deref().unwrap_or("not read")),
                };
                println!("{name:<10} {address}  {shown}");
            }
        }
    }
    match failure {
        Some(why) => Err(CliError::runtime(format!(
            "balances not read (addresses listed): {why}"
        ))),
        None => Ok(()),
    }
}

type BalanceRow = (
    String,
    Address,
    Option<BTreeMap<String, Decimal>>,
    Option<String>,
);

fn print_balances_json(rows: &[BalanceRow], failure: Option<&str>) -> Result<(), CliError> {
    let doc: Vec<_> = rows
        .iter()
        .map(|(n, a, b, why)| {
            let mut row = json!({"holder": n, "address": a, "balances": b});
            if let Some(why) = why {
                row["error"] = json!(why);
            }
            row
        })
        .collect();
    let mut out = json!({ "balances": doc });
    if let Some(why) = failure {
        out["balances_error"] = json!(why);
    }
    print_json(&out)
}

async fn status(ctx: &Context) -> Result<(), CliError> {
    let store = ctx.open_store().await?;
    let daemon = crate::views::running_daemon(&store).await;
    let manager = daemon
        .as_ref()
        .and_then(|d| d.funds_status.clone())
        .unwrap_or_else(|| "no daemon running".into());
    let client = client(ctx).await.map_err(|e| e.to_string());
    let doc = funds_status(
        &ctx.config,
        &store,
        client.as_ref().map_err(Clone::clone),
        manager.clone(),
        1,
        wall_clock_ms(),
    )
    .await?;
    if ctx.json {
        let mut doc = doc;
        if let Some(o) = doc.as_object_mut() {
            o.remove("drips");
            o.remove("sweeps");
            o.remove("gas_min_bnb");
        }
        return print_json(&doc);
    }
    let wallets = doc["wallets"].as_array().cloned().unwrap_or_default();
    let balances: Result<(), String> = match doc["balances_error"].as_str() {
        Some(e) => Err(e.to_string()),
        None => Ok(()),
    };
    let quote_used = doc["hourly_outflow_quote"]["used"]
        .as_str()
        .unwrap_or("0")
        .to_string();
    let outflow = doc["hourly_outflow"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    println!("funds manager  {manager}");
    if let Err(e) = &balances {
        println!("balances       not read: {e}");
    }
    for w in &wallets {
        let shown: Vec<String> = w["balances"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| format!("{} {k}", v.as_str().unwrap_or("?")))
            .collect();
        println!(
            "{:<10} {}  {}  gas 24h {} BNB, runway {}",
            w["holder"].as_str().unwrap_or(""),
            w["address"].as_str().unwrap_or(""),
            shown.join("  "),
            w["gas_spent_24h_bnb"].as_str().unwrap_or("0"),
            w["gas_runway_days"]
                .as_str()
                .map(|d| format!("{d} days"))
                .unwrap_or_else(|| "—".into())
        );
    }
    for (what, o) in [
        ("last drip", &doc["last_drip"]),
        ("last sweep", &doc["last_sweep"]),
    ] {
        let f = |k: &str| o[k].as_str().unwrap_or("-").to_string();
        match o.as_object() {
            Some(_) => println!(
                "{what:<14} {} {} {} → {} {} ({})",
                format_ms(o["created_at"].as_i64().unwrap_or(0)),
                f("amount"),
                f("asset"),
                f("destination"),
                f("status"),
                f("tx_hash"),
            ),
            None => println!("{what:<14} none"),
        }
    }
    println!(
        "outflow (1 h)  {} in quote (swaps, drips and sweeps) of {}",
        quote_used,
        ctx.config
            .risk
            .max_hourly_outflow
            .map_or("no limit".to_string(), |l| l.to_string())
    );
    for o in &outflow {
        println!(
            "outflow (1 h)  {} {} of {}",
            o["used"].as_str().unwrap_or("0"),
            o["asset"].as_str().unwrap_or(""),
            o["limit"].as_str().unwrap_or("")
        );
    }
    Ok(())
}

async fn history(kind: &str, limit: i64, ctx: &Context) -> Result<(), CliError> {
    if !(1..=10_000).contains(&limit) {
        return Err(CliError::invalid(format!(
            "--limit {limit}: expected 1..=10000"
        )));
    }
    let store = ctx.open_store().await?;
    let ops = store.funds_operations(Some(kind), limit).await?;
    if ctx.json {
        return print_json(&json!({ "operations": ops }));
    }
    if ops.is_empty() {
        println!("no {kind}s on record");
    }
    for o in &ops {
        println!(
            "#{} {} {} {} {} from {} to {} {}{}",
            o.id,
            format_ms(o.created_at),
            o.status,
            o.amount,
            o.asset,
            o.wallet,
            o.destination,
            o.tx_hash.as_deref().unwrap_or("-"),
            o.error
                .as_deref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        );
    }
    Ok(())
}

/// The pools of the live strategies' markets (what prices a sweep for the outflow limit).
async fn live_pools(ctx: &Context, client: &ChainClient) -> BTreeMap<String, crate::chain::Pool> {
    let mut pools = BTreeMap::new();
    let Ok(store) = ctx.open_store().await else {
        return pools;
    };
    let Ok(factory) = ctx.config.dex.factory.parse::<Address>() else {
        return pools;
    };
    let strategies = store.list_strategies(None).await.unwrap_or_default();
    for s in strategies.iter().filter(|s| s.mode == StrategyMode::Live) {
        let Some((b, q)) = s.symbol.split_once('/') else {
            continue;
        };
        let token = |name: &str| {
            ctx.config
                .dex
                .assets
                .get(name)
                .and_then(|a| a.parse::<Address>().ok())
        };
        let (Some(b), Some(q)) = (token(b), token(q)) else {
            continue;
        };
        if let (Ok(bt), Ok(qt)) = (client.token(b).await, client.token(q).await) {
            if let Ok(p) = client.pool(factory, bt, qt).await {
                pools.insert(s.symbol.clone(), p);
            }
        }
    }
    pools
}

async fn execute(args: SweepArgs, ctx: &Context) -> Result<(), CliError> {
    let store = ctx.open_store().await?;
    let audit = ctx.audit("funds sweep execute");
    let outcome = ctx
        .audited(&store, &audit, async {
            let amount = match &args.amount {
                None => None,
                Some(t) => Some(
                    t.trim()
                        .parse::<Decimal>()
                        .ok()
                        .filter(|a| *a > Decimal::ZERO)
                        .ok_or_else(|| {
                            CliError::invalid(format!("--amount {t:?}: expected a decimal > 0"))
                        })?,
                ),
            };
            let password = std::env::var("BSC_BOT_KEYSTORE_PASSWORD").map_err(|_| {
                CliError::invalid("BSC_BOT_KEYSTORE_PASSWORD is not set (the wallet's keystore)")
            })?;
            let signer = Keystore::of_config(&ctx.config)
                .unlock(&args.wallet, &password)
                .map_err(|e| CliError::invalid(e.to_string()))?;
            let client = client(ctx).await?;
            let swapper = Swapper::new(
                client.clone(),
                signer,
                store.clone(),
                ctx.config.chain.clone(),
                ctx.config.dex.clone(),
            )
            .map_err(|e| CliError::runtime(e.to_string()))?;
            let swapper = Arc::new(swapper);
            // What a crash left of this wallet's transactions settles first.
            swapper
                .reconcile()
                .await
                .map_err(|e| CliError::runtime(e.to_string()))?;
            let wallets = BTreeMap::from([(args.wallet.clone(), swapper)]);
            let pools = live_pools(ctx, &client).await;
            let manager = FundsManager::new(&ctx.config, store.clone(), client, None, wallets)
                .with_pools(pools, None);
            let op = Operation {
                kind: "sweep",
                from: args.wallet.clone(),
                to: args.to.clone(),
                asset: args.asset.clone(),
                amount,
            };
            match manager.execute(&op, args.dry_run).await {
                Ok(o) if o.status == "failed" => Err(CliError::runtime(format!(
                    "sweep failed: {} ({})",
                    o.error.clone().unwrap_or_default(),
                    o.tx_hash.clone().unwrap_or_default()
                ))),
                Ok(o) => {
                    store
                        .record_command(
                            &audit,
                            &format!(
                                "sweep {} of {} {} from {} to {} ({})",
                                o.status,
                                o.amount,
                                o.asset,
                                o.from,
                                o.to,
                                o.tx_hash.as_deref().unwrap_or("nothing sent")
                            ),
                            wall_clock_ms(),
                        )
                        .await?;
                    Ok(o)
                }
                Err(FundsError::Refused(why)) => {
                    Err(CliError::invalid(format!("sweep refused: {why}")))
                }
                Err(FundsError::Config(why)) => Err(CliError::invalid(why)),
                Err(e) => Err(CliError::runtime(e.to_string())),
            }
        })
        .await?;
    if ctx.json {
        return print_json(&json!({ "sweep": outcome }));
    }
    println!(
        "sweep {}: {} {} from {} to {}{}",
        outcome.status,
        outcome.amount,
        outcome.asset,
        outcome.from,
        outcome.to,
        outcome
            .tx_hash
            .as_deref()
            .map(|h| format!(" ({h}, gas {} BNB)", outcome.fee_bnb.normalize()))
            .unwrap_or_default()
    );
    Ok(())
}
