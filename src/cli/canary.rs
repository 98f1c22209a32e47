//! `bsc-bot canary …`: start a rollout (backtest → paper → live canary → scale), watch it, and
//! pause, resume, abort or force it. The running daemon walks the stages; these commands write
//! the operator's requests on record, where it reads them.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use rust_decimal::Decimal;
use serde_json::json;

use super::output::{print_json, print_table};
use super::{CliError, Context};
use crate::canary::{Rollout, RolloutPlan, Transition};
use crate::clock::{format_ms, wall_clock_ms};
use crate::rollout::driver::{capital_at, stage_strategy, stage_strategy_name};
use crate::store::canary::{NewRollout, RolloutRecord};
use crate::store::{AuditContext, Store, StrategyRef};
use crate::strategy::spec::{RawFlags, RawSpec};
use crate::strategy::{LifecycleAction, StrategyMode};
use crate::views::canary::{duration, rollout_document, rollout_line};

#[derive(Debug, Subcommand)]
pub enum CanaryCommand {
    /// Start a rollout of a grid: prints its plan (stages, gates and thresholds, sizes).
    Start(StartArgs),
    /// A rollout's stage, time in it, gates against thresholds, next step and strategies.
    Status { rollout: Option<String> },
    /// Every rollout, one line each.
    List,
    /// Stop a rollout's clock (its live strategy is paused until it resumes).
    Pause {
        rollout: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Go on: a paused rollout with the time it had, a held one runs its stage again.
    Resume {
        rollout: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// End a rollout for good: its strategies are stopped.
    Abort {
        rollout: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Skip the current stage's gate (`--force --reason`, audited under your name).
    Promote {
        rollout: String,
        #[arg(long)]
        force: bool,
        #[arg(long)]
        reason: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct StartArgs {
    /// The rollout's name (its stage strategies are `canary-NAME-paper` and `canary-NAME-live`).
    pub name: String,
    /// Strategy spec file (strategies/*.toml); flags given as well override its values.
    #[arg(long, conflicts_with = "from")]
    pub file: Option<PathBuf>,
    #[arg(short = 't', long = "type", conflicts_with = "from")]
    pub type_name: Option<String>,
    #[arg(short, long, conflicts_with = "from")]
    pub symbol: Option<String>,
    #[arg(short, long, conflicts_with = "from")]
    pub params: Option<String>,
    /// Promote an existing paper strategy (id or name): its grid is the rollout's.
    #[arg(long)]
    pub from: Option<String>,
    /// The wallet the live stages trade from.
    #[arg(long)]
    pub wallet: Option<String>,
    /// The grid's `base_order_size` at 100 % (default: the params').
    #[arg(long)]
    pub target_size: Option<String>,
    /// This rollout's own `[canary]` settings, as JSON (`{"paper_hours": "1"}`).
    #[arg(long)]
    pub overrides: Option<String>,
}

pub async fn run(cmd: CanaryCommand, ctx: &Context) -> Result<(), CliError> {
    match cmd {
        CanaryCommand::Start(args) => start(args, ctx).await,
        CanaryCommand::Status { rollout } => status(rollout, ctx).await,
        CanaryCommand::List => list(ctx).await,
        CanaryCommand::Pause { rollout, reason } => {
            let reason = reason.unwrap_or_else(|| "paused by an operator".into());
            request(ctx, "canary pause", &rollout, |r, actor| {
                r.rollout.pause(reason.clone(), actor)
            })
            .await
        }
        CanaryCommand::Resume { rollout, reason } => {
            let reason = reason.unwrap_or_else(|| "resumed by an operator".into());
            request(ctx, "canary resume", &rollout, |r, actor| {
                r.rollout.resume(reason.clone(), actor)
            })
            .await
        }
        CanaryCommand::Abort { rollout, reason } => {
            let reason = required_reason(reason, "abort")?;
            request(ctx, "canary abort", &rollout, |r, actor| {
                r.rollout.abort(reason.clone(), actor)
            })
            .await
        }
        CanaryCommand::Promote {
            rollout,
            force,
            reason,
        } => {
            if !force {
                return Err(CliError::invalid(
                    "the daemon promotes a rollout when its gate passes; `--force --reason TEXT` \
                     skips the gate",
                ));
            }
            let reason = required_reason(reason, "promote --force")?;
            request(ctx, "canary promote", &rollout, |r, actor| {
                r.rollout.force_promote(reason.clone(), actor)
            })
            .await
        }
    }
}

fn required_reason(reason: Option<String>, what: &str) -> Result<String, CliError> {
    reason.filter(|r| !r.trim().is_empty()).ok_or_else(|| {
        CliError::invalid(format!("canary {what} needs --reason TEXT (it is audited)"))
    })
}

/// The grid the rollout walks out: from `--from` (a paper strategy) or a spec / flags.
async fn grid_of(
    args: &StartArgs,
    store: &Store,
    ctx: &Context,
) -> Result<(String, String, serde_json::Value), CliError> {
    if let Some(from) = &args.from {
        let s = store.get_strategy(&StrategyRef::parse(from)).await?;
        if s.mode != StrategyMode::Paper {
            return Err(CliError::invalid(format!(
                "--from {from}: strategy {} is {}; a rollout starts from a paper strategy",
                s.id, s.mode
            )));
        }
        return Ok((s.kind, s.symbol, s.params));
    }
    let mut raw = RawSpec::from_file_and_flags(
        args.file.as_deref(),
        RawFlags {
            type_name: args.type_name.as_deref(),
            symbol: args.symbol.as_deref(),
            name: Some(&args.name),
            mode: None,
            params: args.params.as_deref(),
            wallet: None,
        },
    )?;
    raw.mode = None;
    raw.default_fee_bps(ctx.config.dex.fee_bps);
    let spec = raw.validate(false)?;
    Ok((
        spec.params.type_name().to_string(),
        spec.symbol.to_string(),
        spec.params.params_json(),
    ))
}

async fn start(args: StartArgs, ctx: &Context) -> Result<(), CliError> {
    let store = ctx.open_store().await?;
    let audit = ctx.audit("canary start");
    let (id, plan_lines) = ctx
        .audited(&store, &audit, async {
            if args.name.trim().is_empty() || args.name.parse::<i64>().is_ok() {
                return Err(CliError::invalid(format!(
                    "rollout name {:?}: expected a name (numbers are ids)",
                    args.name
                )));
            }
            // Its stage strategies carry the name: it must make good strategy names.
            crate::strategy::spec::validate_name(&stage_strategy_name(&args.name, false))
                .map_err(|e| CliError::invalid(format!("rollout name: {}", e.message)))?;
            let (kind, symbol, params) = grid_of(&args, &store, ctx).await?;
            let overrides = match &args.overrides {
                None => json!({}),
                Some(text) => serde_json::from_str(text)
                    .map_err(|e| CliError::invalid(format!("--overrides: not JSON ({e})")))?,
            };
            let settings = ctx
                .config
                .canary
                .with_overrides(&overrides)
                .map_err(|e| CliError::invalid(e.to_string()))?;
            let target = match &args.target_size {
                Some(t) => t.parse::<Decimal>().map_err(|_| {
                    CliError::invalid(format!("--target-size {t:?}: expected a decimal"))
                })?,
                None => params["base_order_size"]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| CliError::invalid("params: no base_order_size"))?,
            };
            let plan = RolloutPlan::new(target, &settings)
                .map_err(|e| CliError::invalid(format!("--target-size: {e}")))?;
            let Some(wallet) = args.wallet.clone() else {
                return Err(CliError::invalid(
                    "a rollout's live stages trade from a wallet: give --wallet NAME (see \
                     `bsc-bot wallet list`)",
                ));
            };
            let wallets = crate::wallet::Keystore::of_config(&ctx.config)
                .list()
                .map_err(|e| CliError::runtime(e.to_string()))?;
            if !wallets.iter().any(|w| w.name == wallet) {
                return Err(CliError::invalid(format!(
                    "--wallet: no wallet named {wallet:?} (see `bsc-bot wallet list`)"
                )));
            }
            let need = capital_at(&kind, &params, plan.target_base_order_size);
            let holds =
                crate::chain::pool_model::wallet_value_in_quote(&ctx.config, &symbol, &wallet)
                    .await
                    .map_err(|e| CliError::invalid(format!("--wallet {wallet}: {e}")))?;
            if holds < need {
                return Err(CliError::invalid(format!(
                    "--target-size {}: wallet {wallet} holds {} {} in all, the grid at the \
                     target size needs {}",
                    plan.target_base_order_size,
                    holds.round_dp(6).normalize(),
                    symbol.split('/').nth(1).unwrap_or("quote"),
                    need.normalize()
                )));
            }
            let new = NewRollout {
                name: args.name.clone(),
                symbol,
                kind,
                params,
                wallet: Some(wallet),
                settings: settings.clone(),
            };
            let lines = plan.lines(&settings);
            let id = store
                .insert_rollout(&new, &Rollout::new(plan), &audit, wall_clock_ms())
                .await?;
            Ok((id, lines))
        })
        .await?;
    if ctx.json {
        let rec = store.get_rollout(&id.to_string()).await?;
        return print_json(
            &json!({"rollout": rollout_document(&store, &rec).await?, "plan": plan_lines}),
        );
    }
    println!(
        "started canary rollout {id} {:?}; the daemon walks it:",
        args.name
    );
    for l in &plan_lines {
        println!("  {l}");
    }
    Ok(())
}

/// An operator's request on a rollout, on record with its transition and audit entry. A live
/// rollout's strategies follow: an abort stops them now (the daemon would too).
async fn request<F>(ctx: &Context, command: &str, name: &str, change: F) -> Result<(), CliError>
where
    F: Fn(
        &mut RolloutRecord,
        &str,
    ) -> Result<Transition, crate::canary::rollout::RefusedTransition>,
{
    let store = ctx.open_store().await?;
    let audit = ctx.audit(command);
    let (rec, t) = ctx
        .audited(&store, &audit, async {
            let mut rec = store.get_rollout(name).await?;
            let t = change(&mut rec, &audit.actor).map_err(|e| CliError::invalid(e.to_string()))?;
            store
                .save_rollout(&rec, Some(&t), Some(&audit), wall_clock_ms())
                .await?;
            if t.kind == crate::canary::TransitionKind::Abort {
                stop_strategies(&store, &rec, &audit).await?;
            }
            Ok((rec, t))
        })
        .await?;
    if ctx.json {
        return print_json(
            &json!({"rollout": rollout_document(&store, &rec).await?, "transition": t}),
        );
    }
    println!(
        "canary {}: {} — {} → {} ({})",
        rec.name,
        t.kind.name(),
        t.from_stage,
        t.to_stage,
        t.to_state
    );
    Ok(())
}

async fn stop_strategies(
    store: &Store,
    rec: &RolloutRecord,
    audit: &AuditContext,
) -> Result<(), CliError> {
    for live in [true, false] {
        if let Some(s) = stage_strategy(store, &rec.name, live).await? {
            store
                .transition_strategy(
                    &StrategyRef::Id(s.id),
                    LifecycleAction::Stop,
                    Some("canary rollout aborted"),
                    audit,
                    wall_clock_ms(),
                )
                .await?;
        }
    }
    Ok(())
}

async fn list(ctx: &Context) -> Result<(), CliError> {
    let store = ctx.open_store().await?;
    let rollouts = store.list_rollouts().await?;
    if ctx.json {
        let mut docs = Vec::new();
        for r in &rollouts {
            docs.push(rollout_document(&store, r).await?);
        }
        return print_json(&json!({ "rollouts": docs }));
    }
    if rollouts.is_empty() {
        println!("no canary rollouts");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = rollouts
        .iter()
        .map(|r| {
            vec![
                r.id.to_string(),
                r.name.clone(),
                r.symbol.clone(),
                r.rollout.stage_name(),
                r.rollout.state.name().to_string(),
                duration(r.rollout.stage_elapsed_ms),
                format_ms(r.created_at),
            ]
        })
        .collect();
    print_table(
        &[
            "ID", "NAME", "SYMBOL", "STAGE", "STATE", "IN STAGE", "CREATED",
        ],
        &rows,
    );
    Ok(())
}

async fn status(rollout: Option<String>, ctx: &Context) -> Result<(), CliError> {
    let store = ctx.open_store().await?;
    let rollouts = match rollout {
        Some(name) => vec![store.get_rollout(&name).await?],
        None => store.list_rollouts().await?,
    };
    let mut docs = Vec::new();
    for r in &rollouts {
        docs.push(rollout_document(&store, r).await?);
    }
    if ctx.json {
        return print_json(&json!({ "rollouts": docs }));
    }
    if rollouts.is_empty() {
        println!("no canary rollouts");
    }
    for (r, doc) in rollouts.iter().zip(&docs) {
        println!(
            "rollout {} — {}",
            r.id,
            super::output::shown(&rollout_line(r))
        );
        println!(
            "  next      {}{}",
            doc["next_step"].as_str().unwrap_or_default(),
            doc["next_step_due_in_ms"]
                .as_i64()
                .map_or(String::new(), |ms| format!(", due in {}", duration(ms)))
        );
        for s in doc["stages"].as_array().into_iter().flatten() {
            println!(
                "  {} {:<10} size {:<10} strategy {}",
                if s["current"].as_bool() == Some(true) {
                    "→"
                } else {
                    " "
                },
                s["stage"].as_str().unwrap_or_default(),
                s["base_order_size"].as_str().unwrap_or_default(),
                s["strategy_id"]
                    .as_i64()
                    .map_or("-".to_string(), |i| i.to_string())
            );
        }
        if let Some(gates) = doc["gates"].as_object() {
            for (gate, report) in gates {
                println!(
                    "  {gate} gate ({}):",
                    report["decision"].as_str().unwrap_or_default()
                );
                for v in report["values"].as_array().into_iter().flatten() {
                    println!(
                        "    {} {} {} (needs {})",
                        if v["passed"].as_bool() == Some(true) {
                            "ok  "
                        } else {
                            "FAIL"
                        },
                        v["measure"].as_str().unwrap_or_default(),
                        v["value"].as_str().unwrap_or("not measured"),
                        v["threshold"].as_str().unwrap_or_default()
                    );
                }
            }
        }
    }
    Ok(())
}
