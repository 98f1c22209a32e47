//! `bsc-bot emergency …`: the one command that stops everything, and its status and release.

use clap::Subcommand;
use serde_json::json;

use super::output::{id_list, print_json};
use super::{CliError, Context};
use crate::clock::{format_ms, wall_clock_ms};

#[derive(Debug, Subcommand)]
pub enum EmergencyCommand {
    /// Engage the kill switch, stop every strategy, cancel every pending conditional order.
    StopAll {
        /// Why: recorded with the kill switch, the risk event and the audit log.
        #[arg(long)]
        reason: String,
    },
    /// Show whether the kill switch is engaged, why, by whom and since when.
    Status,
    /// Lift the kill switch. Stopped strategies stay stopped.
    Clear {
        #[arg(long)]
        reason: String,
    },
}

pub async fn run(cmd: EmergencyCommand, ctx: &Context) -> Result<(), CliError> {
    match cmd {
        EmergencyCommand::StopAll { reason } => stop_all(&reason, ctx).await,
        EmergencyCommand::Status => status(ctx).await,
        EmergencyCommand::Clear { reason } => clear(&reason, ctx).await,
    }
}

fn require_reason(reason: &str) -> Result<&str, CliError> {
    super::output::checked_reason(reason)
}

async fn stop_all(reason: &str, ctx: &Context) -> Result<(), CliError> {
    let store = ctx.open_store().await?;
    let audit = ctx.audit("emergency stop-all");
    let report = ctx
        .audited(&store, &audit, async {
            let reason = require_reason(reason)?;
            Ok(store
                .emergency_stop_all(reason, &audit, wall_clock_ms())
                .await?)
        })
        .await?;
    if ctx.json {
        return print_json(&json!({
            "kill_switch": true,
            "reason": report.reason,
            "stopped_strategies": report.stopped,
            "cancelled_orders": report.cancelled_orders,
        }));
    }
    println!(
        "EMERGENCY STOP: kill switch engaged ({})",
        super::output::shown(&report.reason)
    );
    let ids: Vec<i64> = report.stopped.iter().map(|s| s.id).collect();
    println!("stopped {} strategies: {}", ids.len(), id_list(&ids));
    println!(
        "cancelled {} conditional orders: {}",
        report.cancelled_orders.len(),
        id_list(&report.cancelled_orders)
    );
    Ok(())
}

async fn status(ctx: &Context) -> Result<(), CliError> {
    let store = ctx.open_store().await?;
    let ks = store.kill_switch().await?;
    if ctx.json {
        return print_json(&json!({
            "kill_switch": ks.engaged,
            "reason": ks.reason,
            "actor": ks.actor,
            "engaged_at": ks.engaged_at.map(format_ms),
        }));
    }
    if ks.engaged {
        println!(
            "kill switch ENGAGED since {} by {}: {}",
            ks.engaged_at.map(format_ms).unwrap_or_default(),
            super::output::shown(&ks.actor.unwrap_or_default()),
            super::output::shown(&ks.reason.unwrap_or_default())
        );
    } else {
        println!("kill switch not engaged");
    }
    Ok(())
}

async fn clear(reason: &str, ctx: &Context) -> Result<(), CliError> {
    let store = ctx.open_store().await?;
    let audit = ctx.audit("emergency clear");
    ctx.audited(&store, &audit, async {
        let reason = require_reason(reason)?;
        Ok(store
            .clear_kill_switch(reason, &audit, wall_clock_ms())
            .await?)
    })
    .await?;
    if ctx.json {
        return print_json(&json!({"kill_switch": false}));
    }
    println!("kill switch cleared; stopped strategies stay stopped");
    Ok(())
}
