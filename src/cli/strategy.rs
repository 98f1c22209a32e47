//! `bsc-bot strategy …`: create, list, status, pause, resume, stop, conditional orders.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::json;

use super::output::{id_list, print_json, print_table};
use super::{CliError, Context};
use crate::clock::{format_ms, wall_clock_ms};
use crate::model::Symbol;
use crate::store::{StrategyRecord, StrategyRef};
use crate::strategy::spec::{RawFlags, RawSpec};
use crate::strategy::{LifecycleAction, StrategyMode, StrategyStatus};
use crate::views::{listed, performance, LiveStatus};

#[derive(Debug, Subcommand)]
pub enum StrategyCommand {
    /// Create a strategy from flags or a spec file (strategies/*.toml).
    Create(CreateArgs),
    /// List strategies.
    List {
        #[arg(long, value_parser = ["active", "paused", "stopped"])]
        status: Option<String>,
    },
    /// Show one strategy (by id or name) with its pending conditional orders.
    Status { strategy: String },
    /// Pause an active strategy (its conditional orders stay, untriggered, until resumed).
    Pause {
        strategy: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Resume a paused strategy (refused while the kill switch is engaged).
    Resume { strategy: String },
    /// Stop a strategy for good: pending conditional orders are cancelled, inventory is kept.
    Stop {
        strategy: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Change a paused strategy's parameters: only the keys given change (e.g. a canary scaled
    /// up: `-p '{"base_order_size":"50"}'`); validated as at create; audited. A grid's levels
    /// (lower_price, upper_price, grid_count, spacing) cannot change; lots it holds keep their
    /// size and sell at their cell's level; buys placed from now on use the new size.
    Update {
        strategy: String,
        #[arg(short, long)]
        params: String,
    },
    /// Conditional orders (resting grid orders, stop-loss, take-profit).
    #[command(subcommand)]
    Conditional(ConditionalCommand),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Strategy type from the registry (`grid`).
    #[arg(short = 't', long = "type")]
    pub type_name: Option<String>,
    /// Trading pair, BASE/QUOTE.
    #[arg(short, long)]
    pub symbol: Option<String>,
    /// Unique name among strategies that are not stopped.
    #[arg(short, long)]
    pub name: Option<String>,
    /// paper or live.
    #[arg(short, long)]
    pub mode: Option<String>,
    /// Parameters as a JSON object (see the README's grid section).
    #[arg(short, long)]
    pub params: Option<String>,
    /// Spec file; flags given as well override the file's values.
    #[arg(long, conflicts_with = "params")]
    pub file: Option<PathBuf>,
    /// Required with `-m live`: real money moves.
    #[arg(long)]
    pub confirm_live: bool,
    /// The wallet a live strategy trades from (see `bsc-bot wallet list`).
    #[arg(long)]
    pub wallet: Option<String>,
    /// Create it paused (allowed while the kill switch is engaged).
    #[arg(long)]
    pub paused: bool,
}

#[derive(Debug, Subcommand)]
pub enum ConditionalCommand {
    /// List conditional orders: open ones (resting, and in flight at the venue) unless --all.
    List {
        #[arg(long)]
        strategy_id: Option<String>,
        #[arg(long)]
        all: bool,
    },
    /// Cancel one pending conditional order; its strategy learns of it.
    Cancel { order_id: i64 },
}

pub async fn run(cmd: StrategyCommand, ctx: &Context) -> Result<(), CliError> {
    match cmd {
        StrategyCommand::Create(args) => create(args, ctx).await,
        StrategyCommand::List { status } => list(status, ctx).await,
        StrategyCommand::Status { strategy } => status(&strategy, ctx).await,
        StrategyCommand::Update { strategy, params } => update(&strategy, &params, ctx).await,
        StrategyCommand::Pause { strategy, reason } => {
            transition(&strategy, LifecycleAction::Pause, reason, ctx).await
        }
        StrategyCommand::Resume { strategy } => {
            transition(&strategy, LifecycleAction::Resume, None, ctx).await
        }
        StrategyCommand::Stop { strategy, reason } => {
            transition(&strategy, LifecycleAction::Stop, reason, ctx).await
        }
        StrategyCommand::Conditional(ConditionalCommand::List { strategy_id, all }) => {
            conditional_list(strategy_id, all, ctx).await
        }
        StrategyCommand::Conditional(ConditionalCommand::Cancel { order_id }) => {
            conditional_cancel(order_id, ctx).await
        }
    }
}

/// A grid created without `lower_price` and `upper_price` is centred on the market's current
/// price ± `range_pct` percent (default 5, as `backtest quick-grid`): the price comes from a
/// running daemon (the last price a strategy on the market saw within the minute) or else from
/// the newest downloaded data. Returns what was chosen, to print.
async fn centre_range(raw: &mut RawSpec, ctx: &Context) -> Result<Option<String>, CliError> {
    let Some(serde_json::Value::Object(params)) = raw.params.as_mut() else {
        return Ok(None);
    };
    let range_pct = match params.remove("range_pct") {
        None => rust_decimal::Decimal::from(5),
        Some(v) => v
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| v.to_string())
            .parse::<rust_decimal::Decimal>()
            .ok()
            .filter(|p| *p > rust_decimal::Decimal::ZERO && *p < rust_decimal::Decimal::ONE_HUNDRED)
            .ok_or_else(|| {
                CliError::invalid(format!(
                    "params.range_pct {v}: expected a decimal in (0, 100)"
                ))
            })?,
    };
    if params.contains_key("lower_price") || params.contains_key("upper_price") {
        return Ok(None);
    }
    let Some(symbol) = raw.symbol.as_deref().and_then(|s| s.parse::<Symbol>().ok()) else {
        return Ok(None);
    };
    let store = ctx.open_store().await?;
    let now = wall_clock_ms();
    let mut found = None;
    if crate::views::running_daemon(&store).await.is_some() {
        for s in store.list_strategies(None).await? {
            if s.symbol != symbol.to_string() || now - s.updated_at > 60_000 {
                continue;
            }
            let price = s
                .state
                .as_deref()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
                .and_then(|d| d["last_price"].as_str().and_then(|p| p.parse().ok()));
            if let Some(p) = price {
                found = Some((p, "the running daemon's last price".to_string()));
                break;
            }
        }
    }
    if found.is_none() {
        let root = ctx.config.base_dir.join(&ctx.config.data.dir);
        if let Ok(files) = super::backtest::symbol_files(&root, &symbol) {
            if let Some((ts, p)) = files
                .iter()
                .rev()
                .find_map(|f| crate::backtest::data::last_row(f))
            {
                found = Some((
                    p,
                    format!("the latest data ({})", crate::clock::format_ms(ts / 1000)),
                ));
            }
        }
    }
    let Some((price, source)) = found else {
        return Err(CliError::invalid(format!(
            "params: no lower_price / upper_price, and no current price of {symbol} to centre the \
             range on (no running daemon trading it, no data under {}): give both prices, or \
             `bsc-bot data download -s {symbol}`",
            ctx.config.data.dir
        )));
    };
    let f = range_pct / rust_decimal::Decimal::ONE_HUNDRED;
    let round = |d: rust_decimal::Decimal| {
        d.round_dp_with_strategy(8, rust_decimal::RoundingStrategy::MidpointNearestEven)
            .normalize()
    };
    let (lower, upper) = (
        round(price * (rust_decimal::Decimal::ONE - f)),
        round(price * (rust_decimal::Decimal::ONE + f)),
    );
    params.insert(
        "lower_price".into(),
        serde_json::Value::from(lower.to_string()),
    );
    params.insert(
        "upper_price".into(),
        serde_json::Value::from(upper.to_string()),
    );
    Ok(Some(format!(
        "range {lower} .. {upper}: {} ± {range_pct} % ({source})",
        price.normalize()
    )))
}

fn raw_spec(args: &CreateArgs) -> Result<RawSpec, CliError> {
    Ok(RawSpec::from_file_and_flags(
        args.file.as_deref(),
        RawFlags {
            type_name: args.type_name.as_deref(),
            symbol: args.symbol.as_deref(),
            name: args.name.as_deref(),
            mode: args.mode.as_deref(),
            params: args.params.as_deref(),
            wallet: args.wallet.as_deref(),
        },
    )?)
}

fn build_spec(
    args: &CreateArgs,
    mut raw: RawSpec,
    pool_fee_bps: u32,
) -> Result<crate::strategy::StrategySpec, CliError> {
    // The safety gate first: nothing about a live strategy is considered without it.
    let live = raw.mode.as_deref().and_then(|m| m.parse().ok()) == Some(StrategyMode::Live);
    if live && !args.confirm_live {
        return Err(CliError::invalid(
            "mode live trades real funds on-chain; add --confirm-live to create it",
        ));
    }
    raw.default_fee_bps(pool_fee_bps);
    Ok(raw.validate(true)?)
}

/// A live strategy must be able to trade: its wallet exists, both assets have a token in
/// `[dex.assets]`, and the pool exists at the configured factory (asked of the chain; a node that
/// does not answer refuses the create rather than let an unverifiable strategy look active).
async fn check_live_market(
    spec: &crate::strategy::StrategySpec,
    config: &crate::config::Config,
) -> Result<Vec<String>, CliError> {
    let wallet = spec.wallet.as_deref().unwrap_or_default();
    let wallets = crate::wallet::Keystore::of_config(config)
        .list()
        .map_err(|e| CliError::runtime(e.to_string()))?;
    if !wallets.iter().any(|w| w.name == wallet) {
        return Err(CliError::invalid(format!(
            "wallet: no wallet named {wallet:?} (create one with `bsc-bot wallet generate --name {wallet}`)"
        )));
    }
    if let Some(pin) = spec.params.pinned_pool() {
        let allowed = config
            .dex
            .pool_kinds()
            .map_err(|e| CliError::invalid(e.to_string()))?;
        if !allowed.contains(&pin) {
            return Err(CliError::invalid(format!(
                "params.pool: {pin} is not among dex.pools {:?}; the daemon would not run it",
                config.dex.pools
            )));
        }
    }
    use crate::chain::pool_model::{live_pool_model_of, PoolModelError};
    // The pool it would trade: its pin, else the market's deepest of `dex.pools`.
    let model = match live_pool_model_of(config, &spec.symbol, spec.params.pinned_pool()).await {
        Ok(m) => m,
        Err(PoolModelError::NoToken(asset)) => {
            return Err(CliError::invalid(format!(
                "symbol: {} cannot trade live: no token for {asset} in [dex.assets]",
                spec.symbol
            )))
        }
        Err(PoolModelError::Wallet(e)) => return Err(CliError::invalid(e)),
        Err(PoolModelError::Factory) => {
            return Err(CliError::invalid("dex.factory is not an address"))
        }
        Err(PoolModelError::Chain(e)) => {
            return Err(CliError::invalid(format!(
                "cannot verify the {} pool on chain {}: {e}",
                spec.symbol, config.chain.chain_id
            )))
        }
        Err(PoolModelError::Pools(e)) => return Err(CliError::invalid(e)),
    };
    if model.model.is_none() {
        return Err(CliError::invalid(format!(
            "the {} {} pool {} has no liquidity at the price: nothing would fill",
            spec.symbol, model.pool.kind, model.pool.pair
        )));
    }
    // What a round trip costs in this pool today (fee, the lot's impact, gas): a cell narrower
    // than that loses live, whatever a limit-price backtest said.
    Ok(model
        .model
        .map(|p| spec.params.amm_warnings(&p))
        .unwrap_or_default()
        .into_iter()
        .map(|w| format!("{w} ({})", model.gas_note))
        .collect())
}

async fn create(args: CreateArgs, ctx: &Context) -> Result<(), CliError> {
    let store = ctx.open_store().await?;
    let audit = ctx.audit("strategy create");
    let (record, warnings, centred) = ctx
        .audited(&store, &audit, async {
            let mut raw = raw_spec(&args)?;
            let centred = centre_range(&mut raw, ctx).await?;
            let spec = build_spec(&args, raw, ctx.config.dex.fee_bps)?;
            let mut pool_warnings = Vec::new();
            if spec.mode == StrategyMode::Live {
                pool_warnings = check_live_market(&spec, &ctx.config).await?;
            } else if let Ok(Some(pool)) = ctx.config.market.paper_pool() {
                pool_warnings = spec.params.amm_warnings(&pool);
            }
            if spec.mode != StrategyMode::Live
                && ctx.config.market.paper_price_source != "pool"
                && !crate::market::known::is_known(&spec.symbol, &ctx.config.market.extra_markets)
            {
                let near = crate::market::known::suggestions(&spec.symbol);
                return Err(CliError::invalid(format!(
                    "symbol: {} is not a Binance spot market bsc-bot knows, so a paper strategy on it \
                     would never get a price{}; add it to market.extra_markets if Binance lists it",
                    spec.symbol,
                    if near.is_empty() {
                        String::new()
                    } else {
                        format!(" (known: {})", near.join(", "))
                    }
                )));
            }
            let initial = if args.paused {
                StrategyStatus::Paused
            } else {
                StrategyStatus::Active
            };
            let record = store
                .create_strategy(&spec, initial, &audit, wall_clock_ms())
                .await?;
            let mut warnings = spec.params.warnings();
            warnings.extend(pool_warnings);
            Ok((record, warnings, centred))
        })
        .await?;
    if ctx.json {
        return print_json(
            &json!({"strategy": record, "warnings": warnings, "centred_range": centred}),
        );
    }
    println!(
        "created strategy {} {:?}: {} {} {}, {}",
        record.id, record.name, record.kind, record.symbol, record.mode, record.status
    );
    if let Some(c) = &centred {
        println!("  {c}");
    }
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    Ok(())
}

async fn list(status: Option<String>, ctx: &Context) -> Result<(), CliError> {
    let status = status
        .map(|s| s.parse::<StrategyStatus>())
        .transpose()
        .map_err(|e| CliError::invalid(e.to_string()))?;
    let store = ctx.open_store().await?;
    let strategies = store.list_strategies(status).await?;
    let daemon = crate::views::running_daemon(&store).await;
    let live = daemon.as_ref().map(|d| &d.live_status);
    if ctx.json {
        return print_json(
            &json!({"strategies": strategies.iter().map(|s| listed(s, live)).collect::<Vec<_>>()}),
        );
    }
    if strategies.is_empty() {
        println!("no strategies");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = strategies.iter().map(|s| strategy_row(s, live)).collect();
    print_table(
        &["ID", "NAME", "TYPE", "SYMBOL", "MODE", "STATUS", "CREATED"],
        &rows,
    );
    Ok(())
}

fn strategy_row(s: &StrategyRecord, live: Option<&LiveStatus>) -> Vec<String> {
    vec![
        s.id.to_string(),
        s.name.clone(),
        s.kind.clone(),
        s.symbol.clone(),
        s.mode.to_string(),
        match s.not_running_reason(live) {
            Some(_) => format!("{} (not running)", s.status),
            None => s.status.to_string(),
        },
        format_ms(s.created_at),
    ]
}

async fn status(strategy: &str, ctx: &Context) -> Result<(), CliError> {
    let store = ctx.open_store().await?;
    let record = store.get_strategy(&StrategyRef::parse(strategy)).await?;
    let (pending, in_flight) = store.resting_and_in_flight(record.id).await?;
    let fills = store.trade_count(record.id).await?;
    let (failed_count, failed_swaps) = store.failed_swaps(record.id, 5).await?;
    let perf = performance(&record);
    let daemon = crate::views::running_daemon(&store).await;
    let not_running = record.not_running_reason(daemon.as_ref().map(|d| &d.live_status));
    // A market priced by its pool: its pool and reference prices as the running daemon sees them.
    let market = daemon
        .as_ref()
        .and_then(|d| d.markets.get(&record.symbol).cloned());
    if ctx.json {
        return print_json(
            &json!({"strategy": record, "performance": perf, "fills": fills, "pending_orders": pending, "in_flight_orders": in_flight, "market": market, "failed_swaps": failed_count, "recent_failed_swaps": failed_swaps}),
        );
    }
    println!("strategy {} {:?}", record.id, record.name);
    println!("  type      {}", record.kind);
    println!("  symbol    {}", record.symbol);
    println!("  mode      {}", record.mode);
    println!("  status    {}", record.status);
    if let Some(why) = &not_running {
        println!("  running   no — {why}");
    }
    if let Some(reason) = &record.status_reason {
        println!("  reason    {}", super::output::shown(reason));
    }
    if let Some(m) = &market {
        let show = |p: &Option<rust_decimal::Decimal>| {
            p.map(|v| v.to_string()).unwrap_or_else(|| "—".into())
        };
        println!(
            "  market    pool {} · reference {} · divergence {} bps (at {})",
            show(&m.dex_price),
            show(&m.reference_price),
            show(&m.divergence_bps),
            format_ms(m.at_ms)
        );
    }
    println!("  created   {}", format_ms(record.created_at));
    println!("  updated   {}", format_ms(record.updated_at));
    println!("  params    {}", record.params);
    println!("  pending conditional orders: {}", pending.len());
    println!("  orders in flight: {}", in_flight.len());
    for o in &in_flight {
        println!(
            "    #{} {} {} {} {}{}",
            o.id,
            o.kind,
            o.side,
            o.quote_amount
                .as_deref()
                .or(o.base_amount.as_deref())
                .unwrap_or("-"),
            o.status.as_str(),
            o.venue_ref
                .as_deref()
                .map(|r| format!(" {r}"))
                .unwrap_or_default()
        );
    }
    println!("  fills on record: {fills}");
    if failed_count > 0 {
        println!("  failed swaps: {failed_count} (newest first)");
        for f in &failed_swaps {
            println!(
                "    order #{} {} at {} {} gas {} BNB — {}",
                f.order_id.unwrap_or_default(),
                f.side,
                f.price,
                f.tx_hash.as_deref().unwrap_or("-"),
                f.gas_fee.as_deref().unwrap_or("0"),
                super::output::shown(f.reason.as_deref().unwrap_or("no reason on record"))
            );
        }
    }
    if let Some(p) = perf.as_object() {
        let f = |k: &str| match &p[k] {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Null => "-".into(),
            other => other.to_string(),
        };
        // Money at its asset's precision; `--json` keeps every digit. The line names are the
        // ones the runbook greps for (PnL, trades, win_rate).
        let (base, quote) = record.symbol.split_once('/').unwrap_or(("", ""));
        let m = |k: &str, asset: &str| super::output::money(&p[k], asset);
        println!(
            "  PnL       {} {quote} total, {} net of gas: realized {}  unrealized {} (at {})  \
             fees {}  gas {} ({} BNB)",
            m("total_pnl", quote),
            m("total_pnl_net_of_gas", quote),
            m("realized_pnl", quote),
            m("unrealized_pnl", quote),
            f("last_price"),
            m("fees", quote),
            m("gas", quote),
            m("gas_bnb", "BNB"),
        );
        println!(
            "  trades    {} fills, {} round trips, {} won",
            f("fills"),
            f("round_trips"),
            f("winning_round_trips"),
        );
        println!(
            "  win_rate  {}",
            match &p["win_rate_pct"] {
                serde_json::Value::String(w) => format!("{w} %"),
                _ => "-".into(),
            }
        );
        println!(
            "  balances  quote {} {quote}  inventory {} {base}  equity {} {quote}",
            m("quote", quote),
            m("inventory", base),
            m("equity", quote),
        );
    }
    Ok(())
}

async fn update(strategy: &str, changes: &str, ctx: &Context) -> Result<(), CliError> {
    let store = ctx.open_store().await?;
    let audit = ctx.audit("strategy update");
    let (before, after) = ctx
        .audited(&store, &audit, async {
            let changes: serde_json::Value = serde_json::from_str(changes)
                .map_err(|e| CliError::invalid(format!("params: not JSON: {e}")))?;
            let Some(changes) = changes.as_object().filter(|c| !c.is_empty()) else {
                return Err(CliError::invalid(
                    "params: expected a JSON object with the keys to change",
                ));
            };
            let record = store.get_strategy(&StrategyRef::parse(strategy)).await?;
            let mut merged = record.params.clone();
            if let Some(m) = merged.as_object_mut() {
                for (k, v) in changes {
                    m.insert(k.clone(), v.clone());
                }
            }
            let old = crate::strategy::StrategyParams::parse(&record.kind, &record.params)?;
            let new = crate::strategy::StrategyParams::parse(&record.kind, &merged)
                .map_err(|e| CliError::invalid(format!("params.{e}")))?;
            if let Some(why) = new.update_refusal(&old) {
                return Err(CliError::invalid(why));
            }
            let after = new.params_json();
            let before = store
                .update_strategy_params(
                    &StrategyRef::Id(record.id),
                    &after,
                    &audit,
                    wall_clock_ms(),
                )
                .await?;
            Ok((before, after))
        })
        .await?;
    let changed: Vec<(String, serde_json::Value, serde_json::Value)> = after
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, v)| before.params.get(k.as_str()) != Some(*v))
        .map(|(k, v)| {
            (
                k.clone(),
                before.params.get(k.as_str()).cloned().unwrap_or_default(),
                v.clone(),
            )
        })
        .collect();
    if ctx.json {
        let doc: Vec<_> = changed
            .iter()
            .map(|(k, b, a)| json!({"key": k, "before": b, "after": a}))
            .collect();
        return print_json(
            &json!({"id": before.id, "name": before.name, "params": after, "changed": doc}),
        );
    }
    println!(
        "strategy {} {:?} updated (resume it to trade on the new parameters)",
        before.id, before.name
    );
    for (k, b, a) in &changed {
        println!("  {k}: {b} -> {a}");
    }
    if changed.is_empty() {
        println!("  nothing changed");
    }
    Ok(())
}

async fn transition(
    strategy: &str,
    action: LifecycleAction,
    reason: Option<String>,
    ctx: &Context,
) -> Result<(), CliError> {
    let store = ctx.open_store().await?;
    if let Some(done) = store
        .done_already(&StrategyRef::parse(strategy), action)
        .await?
    {
        if ctx.json {
            return print_json(&done);
        }
        println!(
            "strategy {} {:?} is already stopped; nothing to do",
            done.id, done.name
        );
        return Ok(());
    }
    let audit = ctx.audit(&format!("strategy {}", action.as_str()));
    let report = ctx
        .audited(&store, &audit, async {
            let reason = reason
                .as_deref()
                .map(super::output::checked_reason)
                .transpose()?;
            Ok(store
                .transition_strategy(
                    &StrategyRef::parse(strategy),
                    action,
                    reason,
                    &audit,
                    wall_clock_ms(),
                )
                .await?)
        })
        .await?;
    if ctx.json {
        return print_json(&report);
    }
    println!(
        "strategy {} {:?}: {} -> {}",
        report.id, report.name, report.from, report.to
    );
    if action == LifecycleAction::Stop {
        println!(
            "cancelled {} conditional orders: {}",
            report.cancelled_orders.len(),
            id_list(&report.cancelled_orders)
        );
    }
    Ok(())
}

async fn conditional_list(
    strategy: Option<String>,
    all: bool,
    ctx: &Context,
) -> Result<(), CliError> {
    let store = ctx.open_store().await?;
    let strategy_id = match strategy {
        Some(s) => Some(store.get_strategy(&StrategyRef::parse(&s)).await?.id),
        None => None,
    };
    let orders = if all {
        store.list_orders(strategy_id, None).await?
    } else {
        store.open_orders(strategy_id).await?
    };
    if ctx.json {
        return print_json(&json!({"orders": orders}));
    }
    if orders.is_empty() {
        println!("no conditional orders");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = orders
        .iter()
        .map(|o| {
            vec![
                o.id.to_string(),
                o.strategy_id.to_string(),
                o.kind.clone(),
                o.side.clone(),
                o.trigger_price.clone().unwrap_or_default(),
                o.quote_amount
                    .clone()
                    .or(o.base_amount.clone())
                    .unwrap_or_default(),
                o.status.as_str().to_string(),
            ]
        })
        .collect();
    print_table(
        &[
            "ID", "STRATEGY", "KIND", "SIDE", "TRIGGER", "AMOUNT", "STATUS",
        ],
        &rows,
    );
    Ok(())
}

async fn conditional_cancel(order_id: i64, ctx: &Context) -> Result<(), CliError> {
    let store = ctx.open_store().await?;
    let audit = ctx.audit("strategy conditional cancel");
    let order = ctx
        .audited(&store, &audit, async {
            Ok(store
                .cancel_order(order_id, &audit, wall_clock_ms())
                .await?)
        })
        .await?;
    if ctx.json {
        return print_json(&json!({"order": order}));
    }
    println!(
        "cancelled order {} ({} {} of strategy {})",
        order.id, order.kind, order.side, order.strategy_id
    );
    Ok(())
}
