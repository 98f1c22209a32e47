//! `bsc-bot bot start|stop|status|health`.

use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::json;

use super::output::print_json;
use super::{CliError, Context};
use crate::clock::{format_ms, utc_day_start_ms, wall_clock_ms};
use crate::daemon::{self, DaemonOptions};
use crate::store::{DaemonInfoExt, Store};
use crate::strategy::StrategyStatus;
use crate::views::running_daemon;

#[derive(Debug, Subcommand)]
pub enum BotCommand {
    /// Run the daemon in the foreground (systemd or pm2 supervise it).
    Start(StartArgs),
    /// Stop the running daemon gracefully (state persisted; it exits within 5 s).
    Stop,
    /// Uptime, strategies by state, feed connection and last-tick age per symbol, kill switch,
    /// today's risk events.
    Status,
    /// Exit 0 when the daemon is healthy, 2 with the reasons otherwise.
    Health,
}

#[derive(Debug, Args)]
pub struct StartArgs {
    /// Run no strategies (API, health and metrics only).
    #[arg(long)]
    pub no_strategies: bool,
    /// Do not run the funds manager (drip / sweep).
    #[arg(long)]
    pub no_funds: bool,
    /// Watch the markets of the strategies and serve the API, never trade.
    #[arg(long)]
    pub monitoring_only: bool,
    /// The market feed and the API only: no strategies, no funds manager.
    #[arg(long)]
    pub market_only: bool,
}

pub async fn run(cmd: BotCommand, ctx: &Context) -> Result<(), CliError> {
    match cmd {
        BotCommand::Start(a) => start(a, ctx).await,
        BotCommand::Stop => stop(ctx).await,
        BotCommand::Status => status(ctx).await,
        BotCommand::Health => health(ctx).await,
    }
}

async fn start(a: StartArgs, ctx: &Context) -> Result<(), CliError> {
    // A raw key in a long-running process's environment is readable from /proc and inherited by
    // every child: the daemon unlocks keystores instead, and only `wallet import` reads the key.
    if std::env::var_os("BSC_BOT_PRIVATE_KEY").is_some() {
        return Err(CliError::invalid(
            "BSC_BOT_PRIVATE_KEY is set: the daemon never reads a raw key (it stays in the \
             process's environment, readable from /proc). Import it once with \
             `bsc-bot wallet import --name NAME`, unset it, and start with \
             BSC_BOT_KEYSTORE_PASSWORD",
        ));
    }
    let opts = DaemonOptions {
        no_strategies: a.no_strategies,
        no_funds: a.no_funds || a.market_only,
        monitoring_only: a.monitoring_only || a.market_only,
        market_only: a.market_only,
    };
    daemon::run(ctx.config.clone(), opts)
        .await
        .map_err(|e| match e {
            daemon::DaemonError::Lock(daemon::lock::LockError::Held(_)) => {
                CliError::invalid(e.to_string())
            }
            other => CliError::runtime(other.to_string()),
        })
}

fn client() -> Result<reqwest::Client, CliError> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .map_err(|e| CliError::runtime(e.to_string()))
}

async fn api_get(ctx: &Context, addr: &str, path: &str) -> Result<serde_json::Value, String> {
    let token = daemon::token::read_token(&ctx.config).unwrap_or_default();
    let resp = client()
        .map_err(|e| e.message)?
        .get(format!("http://{addr}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| e.without_url().to_string())?;
    resp.json().await.map_err(|e| e.without_url().to_string())
}

/// Tell a running daemon to re-read desired state now (best effort: it re-reads on its own too).
pub async fn poke(ctx: &Context, store: &Store) {
    let Some(d) = running_daemon(store).await else {
        return;
    };
    // Every member of a cluster (each re-reads within one control poll anyway).
    let mut addrs = vec![d.api_addr.clone()];
    if d.cluster {
        let now = wall_clock_ms();
        for m in store.daemons().await.unwrap_or_default() {
            if m.cluster && m.is_alive(now) && !addrs.contains(&m.api_addr) {
                addrs.push(m.api_addr);
            }
        }
    }
    let token = daemon::token::read_token(&ctx.config).unwrap_or_default();
    if let Ok(c) = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
    {
        for addr in addrs {
            let _ = c
                .post(format!("http://{addr}/api/v1/control/poke"))
                .bearer_auth(&token)
                .send()
                .await;
        }
    }
}

async fn stop(ctx: &Context) -> Result<(), CliError> {
    let store = ctx.open_store().await?;
    let Some(d) = running_daemon(&store).await else {
        if ctx.json {
            return print_json(&json!({"stopped": false, "running": false}));
        }
        println!("no daemon is running on this database");
        return Ok(());
    };
    // Through the API, and through the database in case the API is unreachable.
    store.request_daemon_stop().await?;
    let token = daemon::token::read_token(&ctx.config).unwrap_or_default();
    let _ = client()?
        .post(format!("http://{}/api/v1/control/stop", d.api_addr))
        .bearer_auth(token)
        .send()
        .await;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        // Every daemon on the database stops (a cluster's members each see the request).
        let still = running_daemon(&store).await;
        if still
            .as_ref()
            .is_none_or(|now| now.pid != d.pid && !now.cluster)
        {
            if ctx.json {
                return print_json(&json!({"stopped": true, "pid": d.pid}));
            }
            println!("daemon (pid {}) stopped", d.pid);
            return Ok(());
        }
    }
    Err(CliError::runtime(format!(
        "daemon (pid {}) did not stop within 10 s",
        d.pid
    )))
}

async fn status(ctx: &Context) -> Result<(), CliError> {
    let store = ctx.open_store().await?;
    let strategies = store.list_strategies(None).await?;
    let count = |st: StrategyStatus| strategies.iter().filter(|s| s.status == st).count();
    let daemon = running_daemon(&store).await;
    let not_running = strategies
        .iter()
        .filter(|s| {
            s.not_running_reason(daemon.as_ref().map(|d| &d.live_status))
                .is_some()
        })
        .count();
    let ks = store.kill_switch().await?;
    let midnight = utc_day_start_ms(wall_clock_ms());
    let risk = store.risk_events_since(midnight).await?;
    let mode = store.trading_mode().await?;
    let risk_paused: Vec<serde_json::Value> = strategies
        .iter()
        .filter(|s| s.status == StrategyStatus::Paused)
        .filter_map(|s| {
            let why = s.status_reason.as_deref()?.strip_prefix("risk: ")?;
            Some(json!({"id": s.id, "name": s.name, "reason": why}))
        })
        .collect();
    let buys_blocked: Vec<serde_json::Value> = store
        .active_buy_blocks(wall_clock_ms())
        .await?
        .into_iter()
        .map(|(market, until)| json!({"market": market, "until_ms": until}))
        .collect();
    let rollouts = store.list_rollouts().await?;
    let canary: Vec<serde_json::Value> = rollouts
        .iter()
        .map(|r| {
            json!({"id": r.id, "name": r.name, "symbol": r.symbol, "stage": r.rollout.stage_name(),
                   "state": r.rollout.state.name(), "stage_elapsed_ms": r.rollout.stage_elapsed_ms,
                   "stage_remaining_ms": r.rollout.remaining_ms(), "line": crate::views::canary::rollout_line(r)})
        })
        .collect();
    let live = match &daemon {
        Some(d) => api_get(ctx, &d.api_addr, "/api/v1/status").await.ok(),
        None => None,
    };
    // A cluster: every daemon with its units (the merged `daemon` above is the freshest one).
    let cluster = if daemon.as_ref().is_some_and(|d| d.cluster) {
        crate::views::cluster::cluster_view(&store).await.ok()
    } else {
        None
    };
    let doc = json!({
        "running": daemon.is_some(),
        "daemon": daemon,
        "uptime_secs": live.as_ref().map(|l| l["uptime_secs"].clone()),
        "health": live.as_ref().map(|l| l["health"].clone()),
        "feed": live.as_ref().map(|l| l["feed"].clone()),
        "strategies": {"active": count(StrategyStatus::Active), "paused": count(StrategyStatus::Paused), "stopped": count(StrategyStatus::Stopped), "not_running": not_running},
        "kill_switch": {"engaged": ks.engaged, "reason": ks.reason},
        "trading_mode": mode,
        "strategy_pnl": strategies
            .iter()
            .filter(|s| s.status != StrategyStatus::Stopped)
            .map(|s| {
                let perf = crate::views::performance(s);
                json!({"id": s.id, "name": s.name, "symbol": s.symbol, "status": s.status, "total_pnl": perf["total_pnl"],
                       "total_pnl_net_of_gas": perf["total_pnl_net_of_gas"], "gas": perf["gas"],
                       "realized_pnl": perf["realized_pnl"], "unrealized_pnl": perf["unrealized_pnl"],
                       "round_trips": perf["round_trips"], "win_rate_pct": perf["win_rate_pct"]})
            })
            .collect::<Vec<_>>(),
        "funds": daemon.as_ref().and_then(|d| d.funds_status.clone()),
        "trading": daemon.as_ref().and_then(|d| d.strategies_status.clone()),
        "paused_by_risk": risk_paused,
        "buys_blocked": buys_blocked,
        "risk_events_today": risk,
        "canary": canary,
        "cluster": cluster,
        "console_url": daemon.as_ref().filter(|_| ctx.config.api.console).map(|d| crate::api::console::console_url(&d.api_addr)),
    });
    if ctx.json {
        return print_json(&doc);
    }
    match &daemon {
        Some(d) => println!(
            "daemon      running (pid {} on {}, API {}), up {} s, health {}",
            d.pid,
            d.host,
            d.api_addr,
            doc["uptime_secs"]
                .as_i64()
                .unwrap_or((wall_clock_ms() - d.started_at) / 1000),
            doc["health"].as_str().unwrap_or("unknown")
        ),
        None => println!("daemon      not running"),
    }
    if let Some(url) = doc["console_url"].as_str() {
        println!("console     {url} (log in with the API token)");
    }
    println!(
        "strategies  {} active, {} paused, {} stopped",
        count(StrategyStatus::Active),
        count(StrategyStatus::Paused),
        count(StrategyStatus::Stopped)
    );
    if not_running > 0 {
        println!("            {not_running} live not running (see `bsc-bot strategy list`)");
    }
    let show = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".into(),
        other => other.to_string(),
    };
    for p in doc["strategy_pnl"].as_array().into_iter().flatten() {
        let quote = p["symbol"]
            .as_str()
            .and_then(|s| s.rsplit_once('/'))
            .map_or("", |(_, q)| q);
        println!(
            "  {} {:<20} {:<7} PnL {} {quote} ({} net of gas; realized {}, unrealized {}), {} round trips, win_rate {}",
            p["id"],
            p["name"].as_str().unwrap_or(""),
            p["status"].as_str().unwrap_or(""),
            super::output::money(&p["total_pnl"], quote),
            super::output::money(&p["total_pnl_net_of_gas"], quote),
            super::output::money(&p["realized_pnl"], quote),
            super::output::money(&p["unrealized_pnl"], quote),
            show(&p["round_trips"]),
            match &p["win_rate_pct"] {
                serde_json::Value::String(w) => format!("{w} %"),
                _ => "-".into(),
            }
        );
    }
    if let Some(feed) = doc["feed"].as_object() {
        println!(
            "feed        {} ({} reconnects, {} malformed frames)",
            if feed["connected"].as_bool() == Some(true) {
                "connected"
            } else {
                "disconnected"
            },
            feed["reconnects"],
            feed["malformed_frames"]
        );
        for s in feed["symbols"].as_array().into_iter().flatten() {
            let age = s["last_tick_age_ms"]
                .as_i64()
                .map(|a| format!("{:.1} s ago", a as f64 / 1000.0))
                .unwrap_or("never".into());
            println!(
                "  {:<12} last trade {age}{}  bid {} ask {}",
                s["stream"].as_str().unwrap_or(""),
                if s["stale"].as_bool() == Some(true) {
                    " (STALE)"
                } else {
                    ""
                },
                s["bid"].as_str().unwrap_or("-"),
                s["ask"].as_str().unwrap_or("-")
            );
        }
    }
    println!(
        "kill switch {}",
        if ks.engaged {
            format!(
                "ENGAGED: {}",
                super::output::shown(&ks.reason.unwrap_or_default())
            )
        } else {
            "not engaged".into()
        }
    );
    if let Some(t) = doc["trading"].as_str() {
        println!("strategies  trading: {t}");
    }
    if let Some(f) = doc["funds"].as_str() {
        println!("funds       {f}");
    }
    println!(
        "trading     {}{}",
        mode.mode.as_str(),
        mode.reason
            .as_deref()
            .map(|r| format!(" ({})", super::output::shown(r)))
            .unwrap_or_default()
    );
    if let Some(view) = &cluster {
        println!("cluster     {} daemons", view.nodes.len());
        super::cluster::print_view(view);
    }
    for r in &canary {
        println!(
            "canary      {}",
            super::output::shown(r["line"].as_str().unwrap_or(""))
        );
    }
    for p in &risk_paused {
        println!(
            "  strategy {} {} paused by the risk guard: {}",
            p["id"],
            p["name"].as_str().unwrap_or(""),
            super::output::shown(p["reason"].as_str().unwrap_or(""))
        );
    }
    for b in &buys_blocked {
        println!(
            "  no new buys on {} until {}",
            b["market"].as_str().unwrap_or(""),
            format_ms(b["until_ms"].as_i64().unwrap_or(0))
        );
    }
    println!("risk events today: {}", risk.len());
    for r in risk.iter().rev().take(5) {
        println!(
            "  {} {} {}: {}",
            format_ms(r.created_at),
            r.severity,
            r.kind,
            super::output::shown(&r.message)
        );
    }
    Ok(())
}

async fn health(ctx: &Context) -> Result<(), CliError> {
    let store = ctx.open_store().await?;
    let Some(d) = running_daemon(&store).await else {
        if ctx.json {
            println!(
                "{}",
                json!({"status": "down", "reasons": ["daemon not running"]})
            );
        }
        return Err(CliError::runtime("unhealthy: daemon not running"));
    };
    let resp = client()?
        .get(format!("http://{}/api/health", d.api_addr))
        .send()
        .await
        .map_err(|e| {
            CliError::runtime(format!("unhealthy: API unreachable: {}", e.without_url()))
        })?;
    let body: serde_json::Value = resp
        .json()
        .await
        .map_err(|e| CliError::runtime(format!("unhealthy: {}", e.without_url())))?;
    if ctx.json {
        println!("{body}");
    }
    match body["status"].as_str() {
        Some("ok") => {
            if !ctx.json {
                println!("healthy");
            }
            Ok(())
        }
        other => {
            let reasons: Vec<String> = body["reasons"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r.as_str().map(str::to_string))
                .collect();
            Err(CliError::runtime(format!(
                "{}: {}",
                other.unwrap_or("unknown"),
                reasons.join("; ")
            )))
        }
    }
}
