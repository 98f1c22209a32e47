//! `bsc-bot cluster …`: the daemons sharing one PostgreSQL database, the units each holds, and
//! `drain` to hand a daemon's units to the others before it is stopped for an upgrade.

use std::time::Duration;

use clap::Subcommand;
use serde_json::json;

use super::output::{print_json, print_table};
use super::{CliError, Context};
use crate::clock::{format_ms, wall_clock_ms};
use crate::store::Backend;
use crate::views::cluster::{cluster_view, ClusterView};

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Every daemon: host, pid, version, heartbeat, state, its units and their leases; the units
    /// nobody holds; the changes of owner within the hour.
    List,
    /// Hand a daemon's units over to the others and let it take no more (a rolling restart:
    /// drain, wait, stop it, upgrade, start it again).
    Drain {
        /// The daemon's node id (`cluster list`).
        node: i64,
        /// Why (recorded in the audit log).
        #[arg(long)]
        reason: String,
        /// Return once the request is on record instead of waiting for the units to move.
        #[arg(long)]
        no_wait: bool,
        /// How long to wait for the handover.
        #[arg(long, default_value_t = 60)]
        timeout_secs: u64,
    },
}

pub async fn run(cmd: ClusterCommand, ctx: &Context) -> Result<(), CliError> {
    let store = ctx.open_store().await?;
    if store.backend() != Backend::Postgres {
        return Err(CliError::invalid(
            "a cluster needs PostgreSQL (database.url = \"postgres://…\"); on SQLite one daemon \
             runs per database",
        ));
    }
    match cmd {
        ClusterCommand::List => list(ctx, &store).await,
        ClusterCommand::Drain {
            node,
            reason,
            no_wait,
            timeout_secs,
        } => drain(ctx, &store, node, &reason, no_wait, timeout_secs).await,
    }
}

async fn list(ctx: &Context, store: &crate::store::Store) -> Result<(), CliError> {
    let view = cluster_view(store).await?;
    if ctx.json {
        return print_json(&json!(view));
    }
    print_view(&view);
    Ok(())
}

/// The daemons and their units, as `cluster list` and `bot status` print them.
pub fn print_view(view: &ClusterView) {
    let rows: Vec<Vec<String>> = view
        .nodes
        .iter()
        .map(|n| {
            let lease = n
                .units
                .iter()
                .map(|u| u.lease_left_ms)
                .min()
                .map_or_else(|| "-".into(), |ms| format!("{:.1} s", ms as f64 / 1000.0));
            vec![
                n.node.to_string(),
                n.host.clone(),
                n.pid.to_string(),
                n.version.clone().unwrap_or_else(|| "-".into()),
                n.state.clone(),
                format!("{:.1} s ago", n.heartbeat_age_ms as f64 / 1000.0),
                format!(
                    "{}/{}",
                    n.units.len(),
                    n.capacity.map_or_else(|| "-".into(), |c| c.to_string())
                ),
                lease,
                n.api_addr.clone(),
            ]
        })
        .collect();
    print_table(
        &[
            "NODE",
            "HOST",
            "PID",
            "VERSION",
            "STATE",
            "HEARTBEAT",
            "UNITS",
            "LEASE LEFT",
            "API",
        ],
        &rows,
    );
    for n in &view.nodes {
        for u in &n.units {
            println!(
                "  node {} holds {} (epoch {}, lease {:.1} s left)",
                n.node,
                u.unit,
                u.epoch,
                u.lease_left_ms as f64 / 1000.0
            );
        }
    }
    if view.unowned.is_empty() {
        println!("every unit has an owner");
    } else {
        for u in &view.unowned {
            println!(
                "  NO OWNER: {} (epoch {}): nothing trades it until a daemon takes it",
                u.unit, u.epoch
            );
        }
    }
    for h in &view.handovers {
        println!(
            "  {} {} → node {} ({}, epoch {}{})",
            format_ms(h.at),
            h.unit,
            h.to_node,
            h.kind,
            h.epoch,
            h.from_node
                .map(|f| format!(", from node {f}"))
                .unwrap_or_default()
        );
    }
}

async fn drain(
    ctx: &Context,
    store: &crate::store::Store,
    node: i64,
    reason: &str,
    no_wait: bool,
    timeout_secs: u64,
) -> Result<(), CliError> {
    let audit = ctx.audit("cluster drain");
    let requested = ctx
        .audited(store, &audit, async {
            let reason = super::output::checked_reason(reason)?;
            Ok(store
                .request_drain(node, reason, &audit, wall_clock_ms())
                .await?)
        })
        .await?;
    if !requested {
        return Err(CliError::invalid(format!(
            "no running cluster daemon with node id {node} (see `bsc-bot cluster list`)"
        )));
    }
    if no_wait {
        if ctx.json {
            return print_json(&json!({"node": node, "draining": true}));
        }
        println!("daemon node {node} is draining: it hands its units over and takes no more");
        return Ok(());
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(timeout_secs);
    loop {
        let view = cluster_view(store).await?;
        let me = view.nodes.iter().find(|n| n.node == node);
        let left = me.map_or(0, |n| n.units.len());
        if left == 0 && view.unowned.is_empty() {
            if ctx.json {
                return print_json(&json!({"node": node, "drained": true, "cluster": view}));
            }
            println!("daemon node {node} drained: its units run on the other daemons; stop it now");
            print_view(&view);
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            return Err(CliError::runtime(format!(
                "daemon node {node} still holds {left} units and {} units have no owner after \
                 {timeout_secs} s (see `bsc-bot cluster list`)",
                view.unowned.len()
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
