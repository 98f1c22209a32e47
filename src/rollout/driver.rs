//! The daemon's canary driver: walks every rollout through its stages on the daemon's clock.
//!
//! It acts only through the record, as an operator would: a stage's strategy is an ordinary
//! strategy row (created, paused, resized, stopped), which the control poller hands the one
//! engine. So a rollout has no second code path, and a restart finds everything where it was:
//! the stage and its elapsed time are saved every cycle, and a stage's strategy is found again by
//! its name (`canary-<rollout>-paper`, `canary-<rollout>-live`) before one is created, so a crash
//! between creating it and saving the rollout never makes a second.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rust_decimal::Decimal;
use tokio::sync::{watch, Notify};

use super::live_stage::{live_measures, LiveWindow};
use super::paper_stage::{
    at_ms_precision, paper_fills_of, paper_measures, record_against_replay, replay_fills, PaperRun,
    RecordLook,
};
use super::{run_backtest_stage, StageError};
use crate::alerts::Alerter;
use crate::canary::gates::{live_gate, paper_gate, LiveMeasures};
use crate::canary::{GateReport, RolloutState, Stage, Transition, TransitionKind};
use crate::clock::wall_clock_ms;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::risk::{RiskLimits, TradingMode};
use crate::store::canary::RolloutRecord;
use crate::store::{AuditContext, Store, StoreError, StrategyRecord, StrategyRef};
use crate::strategy::{
    LifecycleAction, StrategyMode, StrategyParams, StrategySpec, StrategyStatus,
};

/// The reason of a pause the daemon put on a rollout (stop-all, trading halted): lifted by the
/// daemon when its cause is, unlike an operator's pause.
pub const DAEMON_HOLD: &str = "daemon hold: ";

/// The reason a live strategy is paused for while a scale step resizes it.
const SCALE_STEP: &str = "canary scale step";

/// How often a live stage's model gas is read from the chain again.
const MODEL_GAS_EVERY_MS: i64 = 60_000;

/// How long a backtest stage waits before trying again when its history is not yet published.
const HISTORY_RETRY_MS: i64 = 10 * 60_000;

#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Stage(#[from] StageError),
    #[error("{0}")]
    Refused(String),
}

/// The stage strategies' names: one paper (the paper stage, then the live stages' twin), one
/// live (the canary, then each scale step, resized in place).
pub fn stage_strategy_name(rollout: &str, live: bool) -> String {
    format!("canary-{rollout}-{}", if live { "live" } else { "paper" })
}

/// The quote the rollout's strategy needs at `size` (its budget, `StrategyParams::required_quote`).
pub fn capital_at(kind: &str, params: &serde_json::Value, size: Decimal) -> Decimal {
    StrategyParams::parse(kind, &params_at(params, Some(size)))
        .map(|p| p.required_quote())
        .unwrap_or_default()
}

/// The rollout's stage strategy of that kind (`canary-NAME-live` or `-paper`) that is not
/// stopped: how the driver, the daemon's taps and `canary abort` find it.
pub async fn stage_strategy(
    store: &Store,
    rollout: &str,
    live: bool,
) -> Result<Option<StrategyRecord>, StoreError> {
    let name = stage_strategy_name(rollout, live);
    match store.get_strategy(&StrategyRef::Name(name)).await {
        Ok(s) if s.status != StrategyStatus::Stopped => Ok(Some(s)),
        Ok(_) | Err(StoreError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A live stage's parameters: the grid at `size` with the stage's own tight limits, where the
/// grid does not set its own: a daily loss and an inventory as shares of the stage's capital,
/// and an error rate.
pub fn live_params(
    kind: &str,
    params: &serde_json::Value,
    size: Decimal,
    c: &crate::config::canary::CanaryConfig,
) -> serde_json::Value {
    let mut p = params_at(params, Some(size));
    let capital = capital_at(kind, params, size);
    let share = |pct: Decimal| {
        (capital * pct / Decimal::ONE_HUNDRED)
            .round_dp(8)
            .normalize()
    };
    if let Some(o) = p.as_object_mut() {
        for (key, value) in [
            ("daily_loss_limit", share(c.live_daily_loss_pct)),
            ("max_position", share(c.live_max_position_pct)),
            ("max_error_rate", c.live_max_error_rate.normalize()),
        ] {
            if params.get(key).is_none() {
                o.insert(key.into(), value.to_string().into());
            }
        }
    }
    p
}

/// The rollout's parameters at `size` (`None`: the target's).
pub fn params_at(params: &serde_json::Value, size: Option<Decimal>) -> serde_json::Value {
    let mut p = params.clone();
    if let (Some(size), Some(o)) = (size, p.as_object_mut()) {
        o.insert(
            "base_order_size".into(),
            size.normalize().to_string().into(),
        );
    }
    p
}

pub struct CanaryDriver {
    pub store: Store,
    pub config: Arc<Config>,
    pub alerter: Alerter,
    pub metrics: Arc<Metrics>,
    /// Wakes the control poller when a stage's strategy changed, so the engine follows at once.
    pub poke: Arc<Notify>,
    pub every: Duration,
    last_ms: Option<i64>,
    /// Rollout id → not before (a backtest stage waiting for history).
    retry_at: BTreeMap<i64, i64>,
    /// Rollout id → (read at, the model's gas per round trip).
    model_gas: BTreeMap<i64, (i64, Option<Decimal>)>,
}

impl CanaryDriver {
    pub fn new(
        store: Store,
        config: Arc<Config>,
        alerter: Alerter,
        metrics: Arc<Metrics>,
        poke: Arc<Notify>,
    ) -> CanaryDriver {
        let every = Duration::from_millis(config.daemon.control_poll_ms.max(100));
        CanaryDriver {
            store,
            config,
            alerter,
            metrics,
            poke,
            every,
            last_ms: None,
            retry_at: BTreeMap::new(),
            model_gas: BTreeMap::new(),
        }
    }

    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = shutdown.wait_for(|s| *s) => return,
                _ = tokio::time::sleep(self.every) => {}
            }
            if let Err(e) = self.cycle(wall_clock_ms()).await {
                tracing::warn!(error = %e, "canary driver: cycle failed; will retry");
            }
        }
    }

    /// One pass over every rollout. The time since the last pass counts towards running stages
    /// (at most a few passes' worth: time the daemon was down is not a stage's time).
    pub async fn cycle(&mut self, now: i64) -> Result<(), DriverError> {
        let cap = 5 * i64::try_from(self.every.as_millis()).unwrap_or(i64::MAX / 8);
        let dt = self.last_ms.map_or(0, |l| (now - l).clamp(0, cap));
        self.last_ms = Some(now);
        let hold = self.daemon_hold().await?;
        for rec in self.store.list_rollouts().await? {
            let name = rec.name.clone();
            let id = rec.id;
            let result = self.drive(rec, now, dt, hold.as_deref()).await;
            if let Err(e) = result {
                tracing::warn!(rollout = %name, rollout_id = id, error = %e, "canary rollout not advanced this pass");
            }
        }
        Ok(())
    }

    /// Why every rollout is held now (`emergency stop-all`, trading halted or reducing).
    async fn daemon_hold(&self) -> Result<Option<String>, StoreError> {
        let ks = self.store.kill_switch().await?;
        if ks.engaged {
            return Ok(Some(format!(
                "emergency stop: {}",
                ks.reason.unwrap_or_default()
            )));
        }
        let mode = self.store.trading_mode().await?;
        Ok((mode.mode != TradingMode::Active).then(|| {
            format!(
                "trading mode {}: {}",
                mode.mode.as_str(),
                mode.reason.unwrap_or_default()
            )
        }))
    }

    async fn drive(
        &mut self,
        mut rec: RolloutRecord,
        now: i64,
        dt: i64,
        hold: Option<&str>,
    ) -> Result<(), DriverError> {
        self.show(&rec);
        match rec.rollout.state.clone() {
            RolloutState::Running => {
                if let Some(why) = hold {
                    let t = rec
                        .rollout
                        .pause(format!("{DAEMON_HOLD}{why}"), "daemon")
                        .map_err(|e| DriverError::Refused(e.to_string()))?;
                    self.pause_live(&rec, "canary rollout held by the daemon", now)
                        .await?;
                    return self.save(&mut rec, Some(t), now).await;
                }
                rec.rollout.run_for(dt);
                self.step(&mut rec, now).await
            }
            RolloutState::Paused { reason }
                if reason.starts_with(DAEMON_HOLD) && hold.is_none() =>
            {
                let t = rec
                    .rollout
                    .resume("the daemon's hold is lifted".into(), "daemon")
                    .map_err(|e| DriverError::Refused(e.to_string()))?;
                self.save(&mut rec, Some(t), now).await
            }
            RolloutState::Paused { .. } | RolloutState::Held { .. } => {
                // Nothing trades live for a rollout that is not running.
                self.pause_live(&rec, "canary rollout not running", now)
                    .await
            }
            RolloutState::Aborted { .. } => self.stop_all(&rec, now).await,
            RolloutState::Done => {
                // The twin's work ends with the last gate.
                if let Some(twin) = self.active_stage_strategy(&rec, false).await? {
                    self.lifecycle(twin.id, LifecycleAction::Stop, "canary rollout done", now)
                        .await?;
                }
                Ok(())
            }
        }
    }

    async fn step(&mut self, rec: &mut RolloutRecord, now: i64) -> Result<(), DriverError> {
        let Some(plan) = rec.rollout.plan.stages.get(rec.rollout.stage).cloned() else {
            return Err(DriverError::Refused(
                "the rollout's stage is not in its plan".into(),
            ));
        };
        let transition = match plan.stage {
            Stage::Backtest => self.backtest_step(rec, now).await?,
            Stage::Paper => {
                let paper = self.ensure_paper(rec, now).await?;
                if rec.rollout.gate_due() {
                    let report = self.paper_report(rec, paper.id).await?;
                    Some(self.decide(rec, report)?)
                } else {
                    None
                }
            }
            Stage::Live { .. } => self.live_step(rec, plan.base_order_size, now).await?,
        };
        self.save(rec, transition, now).await
    }

    async fn backtest_step(
        &mut self,
        rec: &mut RolloutRecord,
        now: i64,
    ) -> Result<Option<Transition>, DriverError> {
        if self.retry_at.get(&rec.id).is_some_and(|at| *at > now) {
            return Ok(None);
        }
        let today = chrono::DateTime::from_timestamp_millis(now)
            .map(|t| t.date_naive())
            .ok_or_else(|| DriverError::Refused(format!("the clock {now} ms")))?;
        match run_backtest_stage(&self.config, &self.store, rec, today).await {
            Ok(stage) => {
                self.retry_at.remove(&rec.id);
                let mut report = stage.report;
                report.values.push(crate::canary::GateValue {
                    measure: "backtest on record",
                    value: Some(format!(
                        "backtest {} ({})",
                        stage.backtest.id, stage.gas_note
                    )),
                    threshold: "stored".into(),
                    passed: true,
                });
                Ok(Some(self.decide(rec, report)?))
            }
            Err(StageError::Data(why)) => {
                tracing::info!(rollout = %rec.name, reason = %why, "canary backtest stage waits for history");
                self.retry_at.insert(rec.id, now + HISTORY_RETRY_MS);
                Ok(None)
            }
            Err(e) => {
                let t = rec
                    .rollout
                    .breach(format!("backtest stage: {e}"))
                    .map_err(|e| DriverError::Refused(e.to_string()))?;
                Ok(Some(t))
            }
        }
    }

    fn decide(
        &self,
        rec: &mut RolloutRecord,
        report: GateReport,
    ) -> Result<Transition, DriverError> {
        rec.rollout
            .decide(report)
            .map_err(|e| DriverError::Refused(e.to_string()))
    }

    /// When the current stage began: the newest transition into it that started it anew (a
    /// promotion, or a resume from a hold, which runs the stage again).
    async fn stage_started_ms(&self, rec: &RolloutRecord) -> Result<i64, StoreError> {
        let stage = rec.rollout.stage_name();
        let started = self
            .store
            .rollout_transitions(rec.id)
            .await?
            .into_iter()
            .rev()
            .find(|t| {
                t.to_stage == stage
                    && (t.from_stage != t.to_stage
                        || (t.kind == TransitionKind::Resume.name() && t.from_state == "held"))
            })
            .map_or(rec.created_at, |t| t.created_at);
        Ok(started)
    }

    async fn paper_report(
        &self,
        rec: &RolloutRecord,
        paper: i64,
    ) -> Result<GateReport, DriverError> {
        let since = self.stage_started_ms(rec).await?;
        let params = StrategyParams::parse(&rec.kind, &rec.params)
            .map_err(|e| DriverError::Refused(e.to_string()))?;
        let log = crate::rollout::paper_stage::tick_log_path(&self.config.base_dir, rec.id, paper);
        let run = PaperRun {
            params: &params,
            risk: RiskLimits::from_config(&self.config.risk),
            amm: self.config.market.paper_pool().unwrap_or(None),
            v3: self
                .config
                .market
                .paper_v3()
                .unwrap_or(None)
                .map(|m| m.with_bound(self.config.dex.slippage_bps)),
            slippage_bps: 0,
        };
        // The log first, then the record (see `RecordLook`): a record only behind the replay is
        // read again for up to 2 s before a fill counts as missing.
        let replayed = match replay_fills(&run, &log) {
            Ok(f) => at_ms_precision(f),
            // No log (nothing traded yet) compares as no fill at all.
            Err(_) if !log.exists() => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        let mut looks = 0;
        let (trades, paper_fills) = loop {
            let trades: Vec<_> = self
                .store
                .trading_history(Some(paper), i64::MAX)
                .await?
                .into_iter()
                .filter(|t| t.executed_at >= since)
                .collect();
            match record_against_replay(paper_fills_of(&trades)?, &replayed) {
                RecordLook::Behind(_) if looks < 20 => {
                    looks += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                RecordLook::Behind(fills) | RecordLook::Compare(fills) => break (trades, fills),
            }
        };
        let risk_events = self.risk_events(paper, since).await?;
        let realized: Decimal = trades
            .iter()
            .filter_map(|t| t.realized_pnl.as_deref()?.parse::<Decimal>().ok())
            .sum();
        let capital = capital_at(&rec.kind, &rec.params, params_size(&rec.params));
        let return_pct = if capital > Decimal::ZERO {
            realized / capital * Decimal::ONE_HUNDRED
        } else {
            Decimal::ZERO
        };
        let m = paper_measures(&paper_fills, &replayed, risk_events, return_pct);
        Ok(paper_gate(&m, &rec.settings))
    }

    async fn risk_events(&self, strategy: i64, since: i64) -> Result<u64, StoreError> {
        Ok(self
            .store
            .risk_events_since(since)
            .await?
            .iter()
            .filter(|e| e.strategy_id == Some(strategy))
            .count() as u64)
    }

    async fn live_step(
        &mut self,
        rec: &mut RolloutRecord,
        size: Option<Decimal>,
        now: i64,
    ) -> Result<Option<Transition>, DriverError> {
        let size = size.unwrap_or(rec.rollout.plan.target_base_order_size);
        let live = match self.ensure_live(rec, size, now).await {
            // Paused for a scale step: neither a breach nor a gate until it trades again.
            Ok((_, true)) => return Ok(None),
            Ok((s, false)) => s,
            Err(DriverError::Refused(why)) => {
                let t = rec
                    .rollout
                    .breach(why)
                    .map_err(|e| DriverError::Refused(e.to_string()))?;
                self.pause_live(rec, "canary rollout rolled back", now)
                    .await?;
                return Ok(Some(t));
            }
            Err(e) => return Err(e),
        };
        // The paper twin trades beside it on the same prices (a paper stage skipped by a forced
        // promotion has none yet: it starts with the live stage).
        let twin = match self.active_stage_strategy(rec, false).await? {
            Some(s) => s.id,
            None => self.create(rec, false, &rec.params.clone(), now).await?.id,
        };
        let since = self.stage_started_ms(rec).await?;
        let model_gas = self.model_gas(rec, now).await?;
        let m = live_measures(
            &self.store,
            &LiveWindow {
                live: live.id,
                twin: Some(twin),
                since_ms: since,
                capital: capital_at(&rec.kind, &rec.params, size),
                model_gas_per_round_trip: model_gas,
            },
        )
        .await?;
        let strategy_paused = live.status == StrategyStatus::Paused;
        if let Some(why) = breach(&m, &rec.settings, strategy_paused, &live) {
            let t = rec
                .rollout
                .breach(why)
                .map_err(|e| DriverError::Refused(e.to_string()))?;
            self.pause_live(rec, "canary rollout rolled back", now)
                .await?;
            return Ok(Some(t));
        }
        if !rec.rollout.gate_due() {
            return Ok(None);
        }
        let report = live_gate(&m, &rec.settings);
        let t = self.decide(rec, report)?;
        if t.kind == TransitionKind::Rollback {
            self.pause_live(rec, "canary rollout rolled back", now)
                .await?;
        }
        Ok(Some(t))
    }

    /// The backtest model's gas per round trip (two swaps at the node's gas price and BNB's),
    /// read from the chain at most once a minute per rollout, not on every pass.
    async fn model_gas(
        &mut self,
        rec: &RolloutRecord,
        now: i64,
    ) -> Result<Option<Decimal>, DriverError> {
        if let Some((at, gas)) = self.model_gas.get(&rec.id) {
            if now - at < MODEL_GAS_EVERY_MS && gas.is_some() {
                return Ok(*gas);
            }
        }
        let symbol = rec
            .symbol
            .parse()
            .map_err(|e: crate::model::SymbolError| DriverError::Refused(e.to_string()))?;
        let gas = crate::chain::pool_model::live_pool_model(&self.config, &symbol)
            .await
            .ok()
            .and_then(|m| m.model)
            .map(|p| p.gas_quote * Decimal::TWO);
        self.model_gas.insert(rec.id, (now, gas));
        Ok(gas)
    }

    /// The stage's strategy of that kind that is not stopped, as on record.
    async fn active_stage_strategy(
        &self,
        rec: &RolloutRecord,
        live: bool,
    ) -> Result<Option<StrategyRecord>, StoreError> {
        stage_strategy(&self.store, &rec.name, live).await
    }

    async fn ensure_paper(
        &mut self,
        rec: &mut RolloutRecord,
        now: i64,
    ) -> Result<StrategyRecord, DriverError> {
        let paper = match self.active_stage_strategy(rec, false).await? {
            Some(s) => s,
            None => self.create(rec, false, &rec.params.clone(), now).await?,
        };
        rec.strategies.insert(rec.rollout.stage, paper.id);
        if paper.status == StrategyStatus::Paused {
            self.lifecycle(
                paper.id,
                LifecycleAction::Resume,
                "canary paper stage runs",
                now,
            )
            .await?;
        }
        Ok(paper)
    }

    /// The live strategy at this stage's size and trading: created at the canary, resized at
    /// each scale step (paused, updated, resumed), never above what the wallet holds. The flag:
    /// a scale step is under way (the strategy is paused for it).
    async fn ensure_live(
        &mut self,
        rec: &mut RolloutRecord,
        size: Decimal,
        now: i64,
    ) -> Result<(StrategyRecord, bool), DriverError> {
        let wanted = live_params(&rec.kind, &rec.params, size, &rec.settings);
        let live = match self.active_stage_strategy(rec, true).await? {
            Some(s) => s,
            None => {
                self.check_funded(rec, size).await?;
                self.create(rec, true, &wanted, now).await?
            }
        };
        rec.strategies.insert(rec.rollout.stage, live.id);
        if params_size(&live.params) != size {
            self.check_funded(rec, size).await?;
            // The step in passes: pause it, wait (at least a pass, so the engine has the pause)
            // until none of its swaps is in flight, then resize and resume. A swap in flight
            // while the grid is rebuilt would be re-issued by the rebuilt grid: sold twice.
            if live.status == StrategyStatus::Active {
                self.lifecycle(live.id, LifecycleAction::Pause, SCALE_STEP, now)
                    .await?;
                return Ok((
                    self.store.get_strategy(&StrategyRef::Id(live.id)).await?,
                    true,
                ));
            }
            if live.status_reason.as_deref() != Some(SCALE_STEP) {
                // Paused by someone else: the breach check sees it.
                return Ok((live, false));
            }
            let (_, in_flight) = self.store.resting_and_in_flight(live.id).await?;
            if !in_flight.is_empty() {
                return Ok((live, true));
            }
            // Validated as at create: what goes on record is the grid's own parameter object.
            let params = StrategyParams::parse(&rec.kind, &wanted)
                .map_err(|e| DriverError::Refused(e.to_string()))?
                .params_json();
            self.store
                .update_strategy_params(&StrategyRef::Id(live.id), &params, &self.audit(rec), now)
                .await?;
            self.lifecycle(live.id, LifecycleAction::Resume, SCALE_STEP, now)
                .await?;
            tracing::info!(rollout = %rec.name, strategy_id = live.id, %size, "canary scaled the live strategy");
        } else if live.status == StrategyStatus::Paused
            && live
                .status_reason
                .as_deref()
                .is_some_and(|r| r.starts_with("canary"))
        {
            // Paused by the rollout (held, then resumed by an operator): it trades again. A pause
            // by the risk guard or an operator stays: the breach check below sees it.
            self.lifecycle(live.id, LifecycleAction::Resume, "canary stage runs", now)
                .await?;
        }
        Ok((
            self.store.get_strategy(&StrategyRef::Id(live.id)).await?,
            false,
        ))
    }

    /// Refused with the figures when the wallet cannot fund the grid at `size`.
    async fn check_funded(&self, rec: &RolloutRecord, size: Decimal) -> Result<(), DriverError> {
        let Some(wallet) = rec.wallet.as_deref() else {
            return Err(DriverError::Refused(
                "a live stage needs a wallet (--wallet)".into(),
            ));
        };
        let need = capital_at(&rec.kind, &rec.params, size);
        let holds =
            crate::chain::pool_model::wallet_value_in_quote(&self.config, &rec.symbol, wallet)
                .await
                .map_err(|e| DriverError::Refused(format!("wallet {wallet}: {e}")))?;
        if holds < need {
            return Err(DriverError::Refused(format!(
                "wallet {wallet} holds {} {} in all, the grid at base_order_size {} needs {}",
                holds.round_dp(6).normalize(),
                rec.symbol.split('/').nth(1).unwrap_or("quote"),
                size.normalize(),
                need.normalize()
            )));
        }
        Ok(())
    }

    async fn create(
        &self,
        rec: &RolloutRecord,
        live: bool,
        params: &serde_json::Value,
        now: i64,
    ) -> Result<StrategyRecord, DriverError> {
        let parsed = StrategyParams::parse(&rec.kind, params)
            .map_err(|e| DriverError::Refused(e.to_string()))?;
        let spec = StrategySpec {
            name: stage_strategy_name(&rec.name, live),
            symbol: rec
                .symbol
                .parse()
                .map_err(|e: crate::model::SymbolError| DriverError::Refused(e.to_string()))?,
            mode: if live {
                StrategyMode::Live
            } else {
                StrategyMode::Paper
            },
            wallet: if live { rec.wallet.clone() } else { None },
            params: parsed,
        };
        let created = self
            .store
            .create_strategy(&spec, StrategyStatus::Active, &self.audit(rec), now)
            .await?;
        self.poke.notify_one();
        tracing::info!(rollout = %rec.name, strategy_id = created.id, mode = %spec.mode, "canary created its stage strategy");
        Ok(created)
    }

    async fn lifecycle(
        &self,
        id: i64,
        action: LifecycleAction,
        reason: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let ctx = AuditContext {
            command: "canary (daemon)".into(),
            arguments: vec![id.to_string()],
            actor: "daemon".into(),
        };
        match self
            .store
            .transition_strategy(&StrategyRef::Id(id), action, Some(reason), &ctx, now)
            .await
        {
            Ok(_) => {
                self.poke.notify_one();
                Ok(())
            }
            // Already where it should be (paused twice, resumed while the kill switch …): the
            // next pass looks again.
            Err(StoreError::Conflict(_)) | Err(StoreError::KillSwitchEngaged { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn pause_live(
        &self,
        rec: &RolloutRecord,
        reason: &str,
        now: i64,
    ) -> Result<(), DriverError> {
        if let Some(live) = self.active_stage_strategy(rec, true).await? {
            if live.status == StrategyStatus::Active {
                self.lifecycle(live.id, LifecycleAction::Pause, reason, now)
                    .await?;
            }
        }
        Ok(())
    }

    async fn stop_all(&self, rec: &RolloutRecord, now: i64) -> Result<(), DriverError> {
        for live in [true, false] {
            if let Some(s) = self.active_stage_strategy(rec, live).await? {
                self.lifecycle(s.id, LifecycleAction::Stop, "canary rollout aborted", now)
                    .await?;
            }
        }
        Ok(())
    }

    fn audit(&self, rec: &RolloutRecord) -> AuditContext {
        AuditContext {
            command: "canary (daemon)".into(),
            arguments: vec![rec.name.clone()],
            actor: "daemon".into(),
        }
    }

    /// Save the rollout (its elapsed time every pass; a decision with its record, audit entry
    /// and alert). A write that lost to an operator's is read again next pass.
    async fn save(
        &mut self,
        rec: &mut RolloutRecord,
        t: Option<Transition>,
        now: i64,
    ) -> Result<(), DriverError> {
        rec.version = self.store.save_rollout(rec, t.as_ref(), None, now).await?;
        if let Some(g) = t.as_ref().and_then(|t| t.gate.as_ref()) {
            self.metrics.canary_gate(&rec.name, g);
        }
        if let Some(t) = &t {
            let severity = match t.kind {
                TransitionKind::Rollback => "critical",
                TransitionKind::Hold | TransitionKind::Pause => "warning",
                _ => "info",
            };
            tracing::info!(rollout = %rec.name, kind = t.kind.name(), from = %t.from_stage, to = %t.to_stage, reason = %t.reason, "canary transition");
            self.alerter.raise(
                "canary",
                severity,
                format!(
                    "canary {}: {} {} → {} ({}): {}",
                    rec.name,
                    t.kind.name(),
                    t.from_stage,
                    t.to_stage,
                    t.to_state,
                    t.reason
                ),
            );
        }
        self.show(rec);
        Ok(())
    }

    fn show(&self, rec: &RolloutRecord) {
        self.metrics.canary_stage(
            &rec.name,
            rec.rollout.stage as i64,
            rec.rollout.state.name(),
        );
    }
}

fn params_size(params: &serde_json::Value) -> Decimal {
    let v = &params["base_order_size"];
    v.as_str()
        .map(str::to_string)
        .unwrap_or_else(|| v.to_string())
        .parse()
        .unwrap_or_default()
}

/// A live stage breached while it ran (not waiting for its gate): its strategy was paused by
/// the risk guard or an operator, a risk event past the limit, or the failed share of swaps past
/// its threshold.
fn breach(
    m: &LiveMeasures,
    c: &crate::config::canary::CanaryConfig,
    paused: bool,
    live: &StrategyRecord,
) -> Option<String> {
    if paused {
        return Some(format!(
            "live strategy {} was paused: {}",
            live.id,
            live.status_reason.clone().unwrap_or_default()
        ));
    }
    if m.risk_events > c.max_risk_events {
        return Some(format!(
            "risk events {} (needs ≤ {})",
            m.risk_events, c.max_risk_events
        ));
    }
    match m.failed_swap_pct() {
        Some(p) if p > c.max_failed_swap_pct => Some(format!(
            "failed swaps {} of {} ({}%, needs ≤ {}%)",
            m.failed_swaps,
            m.swaps,
            p.round_dp(2).normalize(),
            c.max_failed_swap_pct.normalize()
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::canary::CanaryConfig;
    use serde_json::json;

    #[test]
    fn a_live_stage_trades_its_size_with_its_own_tight_limits() {
        let grid = json!({"lower_price": "570", "upper_price": "630", "grid_count": 5,
                          "base_order_size": "1000", "fee_bps": 30});
        assert_eq!(
            capital_at("grid", &grid, Decimal::from(100)),
            Decimal::from(400)
        );
        let live = live_params("grid", &grid, Decimal::from(100), &CanaryConfig::default());
        assert_eq!(live["base_order_size"], "100");
        assert_eq!(live["daily_loss_limit"], "20", "5 % of 4 cells × 100");
        assert_eq!(live["max_position"], "440");
        assert_eq!(live["max_error_rate"], "0.05");
        assert_eq!(live["lower_price"], "570", "the levels stay");

        let own = json!({"lower_price": "570", "upper_price": "630", "grid_count": 5,
                         "base_order_size": "1000", "daily_loss_limit": "7"});
        let live = live_params("grid", &own, Decimal::from(250), &CanaryConfig::default());
        assert_eq!(
            live["daily_loss_limit"], "7",
            "the grid's own limit is kept"
        );
        assert_eq!(live["max_position"], "1100");
        assert_eq!(params_size(&live), Decimal::from(250));
    }

    #[test]
    fn a_stage_breaches_on_a_pause_risk_events_or_failed_swaps() {
        let c = CanaryConfig::default();
        let record = |status: StrategyStatus, reason: Option<&str>| StrategyRecord {
            id: 9,
            name: "canary-x-live".into(),
            kind: "grid".into(),
            symbol: "BNB/USDT".into(),
            mode: StrategyMode::Live,
            wallet: Some("hot".into()),
            status,
            status_reason: reason.map(str::to_string),
            params: json!({}),
            state: None,
            created_at: 0,
            updated_at: 0,
            stopped_at: None,
        };
        let active = record(StrategyStatus::Active, None);
        let quiet = LiveMeasures::default();
        assert_eq!(breach(&quiet, &c, false, &active), None);
        let paused = record(StrategyStatus::Paused, Some("risk: daily loss 21 > 20"));
        assert_eq!(
            breach(&quiet, &c, true, &paused).as_deref(),
            Some("live strategy 9 was paused: risk: daily loss 21 > 20")
        );
        let front_run = LiveMeasures {
            swaps: 3,
            failed_swaps: 2,
            ..LiveMeasures::default()
        };
        assert_eq!(
            breach(&front_run, &c, false, &active).as_deref(),
            Some("failed swaps 2 of 3 (66.67%, needs ≤ 10%)")
        );
        let one_bad = LiveMeasures {
            swaps: 20,
            failed_swaps: 2,
            ..LiveMeasures::default()
        };
        assert_eq!(
            breach(&one_bad, &c, false, &active),
            None,
            "10 % is allowed"
        );
        let risky = LiveMeasures {
            risk_events: 1,
            ..LiveMeasures::default()
        };
        assert_eq!(
            breach(&risky, &c, false, &active).as_deref(),
            Some("risk events 1 (needs ≤ 0)")
        );
    }
}
