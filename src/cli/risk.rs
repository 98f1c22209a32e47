//! `bsc-bot risk …`: what the risk guard enforces and what it did, and the trading mode.

use clap::Subcommand;
use rust_decimal::Decimal;
use serde_json::json;

use super::output::print_json;
use super::{CliError, Context};
use crate::clock::{format_ms, wall_clock_ms};
use crate::risk::{StrategyRiskState, TradingMode};
use crate::strategy::{StrategyParams, StrategyStatus};

#[derive(Debug, Subcommand)]
pub enum RiskCommand {
    /// Trading mode, kill switch, the limits in force, each strategy's loss today and error
    /// rate, markets closed to buys, the latest risk events.
    Status,
    /// Risk events, newest first.
    Events {
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// Only this strategy's (id).
        #[arg(long)]
        strategy: Option<i64>,
        /// Only this kind (daily_loss, error_rate, price_jump, max_position, divergence, …).
        #[arg(long)]
        kind: Option<String>,
    },
    /// Set the trading mode for everything: active, reducing (only orders that reduce exposure)
    /// or halted (nothing placed). The running daemon applies it within a second.
    Mode {
        #[arg(value_parser = ["active", "reducing", "halted"])]
        mode: String,
        #[arg(long)]
        reason: String,
    },
}

pub async fn run(cmd: RiskCommand, ctx: &Context) -> Result<(), CliError> {
    match cmd {
        RiskCommand::Status => status(ctx).await,
        RiskCommand::Events {
            limit,
            strategy,
            kind,
        } => events(limit, strategy, kind, ctx).await,
        RiskCommand::Mode { mode, reason } => set_mode(&mode, &reason, ctx).await,
    }
}

/// A strategy's loss since 00:00 UTC from its last saved state (`None` before its first mark
/// today).
fn daily_loss(state: Option<&str>, now_ms: i64) -> Option<Decimal> {
    let doc: serde_json::Value = serde_json::from_str(state?).ok()?;
    let risk: StrategyRiskState = serde_json::from_value(doc["risk"].clone()).ok()?;
    if risk.day != now_ms.div_euclid(86_400_000) {
        return None;
    }
    let ledger: crate::engine::Ledger = serde_json::from_value(doc["ledger"].clone()).ok()?;
    let price: Decimal = doc["last_price"].as_str()?.parse().ok()?;
    Some(
        (risk.day_start_equity - ledger.equity(price))
            .round_dp(8)
            .normalize(),
    )
}

async fn status(ctx: &Context) -> Result<(), CliError> {
    let store = ctx.open_store().await?;
    let now = wall_clock_ms();
    let mode = store.trading_mode().await?;
    let kill = store.kill_switch().await?;
    let risk = &ctx.config.risk;
    let window_ms = (risk.error_rate_window_secs as i64).saturating_mul(1000);
    let mut strategies = Vec::new();
    for s in store.list_strategies(None).await? {
        if s.status == StrategyStatus::Stopped {
            continue;
        }
        let own = StrategyParams::parse(&s.kind, &s.params)
            .map(|p| p.risk_overrides())
            .unwrap_or_default();
        let limits = risk.for_strategy(&own);
        let (failed, answered) = store.answered_orders_since(s.id, now - window_ms).await?;
        strategies.push(json!({
            "id": s.id,
            "name": s.name,
            "status": s.status,
            "status_reason": s.status_reason,
            "daily_loss": daily_loss(s.state.as_deref(), now),
            "daily_loss_limit": limits.daily_loss_limit,
            "max_position": limits.max_position,
            "max_order_notional": limits.max_order_notional,
            "failed_orders": failed,
            "answered_orders": answered,
            "max_error_rate": limits.max_error_rate,
        }));
    }
    let blocked: Vec<serde_json::Value> = store
        .active_buy_blocks(now)
        .await?
        .into_iter()
        .map(|(market, until)| json!({"market": market, "until_ms": until}))
        .collect();
    let recent = store.risk_events(None, None, 10).await?;
    if ctx.json {
        return print_json(&json!({
            "trading_mode": mode,
            "kill_switch": kill.engaged,
            "limits": risk,
            "strategies": strategies,
            "buys_blocked": blocked,
            "recent_events": recent,
        }));
    }
    println!(
        "trading mode  {}{}",
        mode.mode.as_str(),
        mode.reason
            .as_deref()
            .map(|r| format!(
                " ({}, by {}, {})",
                super::output::shown(r),
                super::output::shown(mode.actor.as_deref().unwrap_or("?")),
                format_ms(mode.set_at.unwrap_or(0))
            ))
            .unwrap_or_default()
    );
    println!(
        "kill switch   {}",
        if kill.engaged { "ENGAGED" } else { "off" }
    );
    let show = |v: Option<Decimal>| v.map_or("none".to_string(), |v| v.to_string());
    println!(
        "limits        daily loss {} · position {} · order {} · error rate {} over {} s (from {} orders) · \
         price jump {} % in {} s → {} s without buys · divergence {} bps",
        show(risk.daily_loss_limit),
        show(risk.max_position),
        show(risk.max_order_notional),
        show(risk.max_error_rate),
        risk.error_rate_window_secs,
        risk.error_rate_min_orders,
        show(risk.price_jump_pct),
        risk.price_jump_window_secs,
        risk.price_jump_cooldown_secs,
        show(risk.max_divergence_bps),
    );
    for s in &strategies {
        println!(
            "strategy {} {}  {}  loss today {} (limit {})  failed {}/{} orders in the window{}",
            s["id"],
            s["name"],
            s["status"].as_str().unwrap_or("?"),
            s["daily_loss"].as_str().unwrap_or("-"),
            s["daily_loss_limit"].as_str().unwrap_or("none"),
            s["failed_orders"],
            s["answered_orders"],
            s["status_reason"]
                .as_str()
                .filter(|r| r.starts_with("risk:"))
                .map(|r| format!("  — {}", super::output::shown(r)))
                .unwrap_or_default()
        );
    }
    for b in &blocked {
        println!(
            "no new buys on {} until {}",
            b["market"].as_str().unwrap_or("?"),
            format_ms(b["until_ms"].as_i64().unwrap_or(0))
        );
    }
    println!("latest events:");
    for e in &recent {
        print_event(e);
    }
    Ok(())
}

fn print_event(e: &crate::store::paper::RiskEventRecord) {
    println!(
        "  #{} {} {} {}{} {}",
        e.id,
        format_ms(e.created_at),
        e.severity,
        e.kind,
        e.strategy_id
            .map(|s| format!(" strategy {s}"))
            .unwrap_or_default(),
        super::output::shown(&e.message)
    );
}

async fn events(
    limit: i64,
    strategy: Option<i64>,
    kind: Option<String>,
    ctx: &Context,
) -> Result<(), CliError> {
    if !(1..=10_000).contains(&limit) {
        return Err(CliError::invalid(format!(
            "--limit {limit}: expected 1..=10000"
        )));
    }
    let store = ctx.open_store().await?;
    let list = store.risk_events(strategy, kind.as_deref(), limit).await?;
    if ctx.json {
        return print_json(&json!({ "events": list }));
    }
    for e in &list {
        print_event(e);
    }
    if list.is_empty() {
        println!("no risk events");
    }
    Ok(())
}

async fn set_mode(mode: &str, reason: &str, ctx: &Context) -> Result<(), CliError> {
    let Some(mode) = TradingMode::parse(mode) else {
        return Err(CliError::invalid(format!(
            "mode {mode:?}: expected active | reducing | halted"
        )));
    };
    let store = ctx.open_store().await?;
    let audit = ctx.audit("risk mode");
    ctx.audited(&store, &audit, async {
        let reason = super::output::checked_reason(reason)?;
        Ok(store
            .set_trading_mode(mode, reason, &audit, wall_clock_ms())
            .await?)
    })
    .await?;
    if ctx.json {
        return print_json(&json!({"trading_mode": mode.as_str(), "reason": reason.trim()}));
    }
    println!(
        "trading mode {} ({})",
        mode.as_str(),
        super::output::shown(reason.trim())
    );
    Ok(())
}
