//! The control poller: makes the running engine follow the database's desired state.
//!
//! It wakes every `control_poll_ms` and on every poke, and does real work only when the control
//! revision changed, so an idle daemon costs one indexed read per poll. Strategy changes go to the
//! engine as calls on the engine's own loop, in order, so a pause can never overtake the add of
//! the strategy it pauses.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch, Notify};

use super::recorder::DaemonRecorder;
use super::writer::OrderIndex;
use super::{add_strategy, snapshot_ops, Registry};
use crate::alerts::Alerter;
use crate::clock::wall_clock_ms;
use crate::config::Config;
use crate::engine::live::EngineCall;
use crate::engine::{Control, Event};
use crate::market::feed::FeedState;
use crate::store::Store;
use crate::strategy::{StrategyMode, StrategyStatus};
use crate::venue::routed::RoutedVenue;

/// A heartbeat write (one row) that takes longer than this counts as the database being
/// unwritable: trading halts within about a second plus this, instead of after the pool's
/// connection timeout.
pub const HEARTBEAT_TIMEOUT: Duration = Duration::from_millis(1_500);

pub struct Poller {
    pub store: Store,
    /// Which canary paper strategies' ticks the engine loop logs (set before strategies are
    /// added, so a new one's first tick is logged).
    pub canary_taps: watch::Sender<Vec<(i64, std::path::PathBuf)>>,
    /// The live side, which strategies created while the daemon runs join.
    pub live: Arc<tokio::sync::Mutex<super::live_runtime::LiveRuntime>>,
    /// Live markets' prices go on record with the heartbeat.
    pub metrics: Arc<crate::metrics::Metrics>,
    pub registry: Arc<Mutex<Registry>>,
    pub feed: Arc<FeedState>,
    pub control_tx: mpsc::Sender<Control>,
    /// To the persistence writer: an outage the heartbeat saw goes on record through it.
    pub persist_tx: mpsc::UnboundedSender<super::recorder::PersistOp>,
    /// The heartbeat's last write failed (trading was halted for it).
    pub store_down: bool,
    pub call_tx: mpsc::Sender<EngineCall<DaemonRecorder, RoutedVenue>>,
    pub subscriptions: watch::Sender<Vec<String>>,
    pub alerter: Alerter,
    pub order_index: OrderIndex,
    pub shutdown: watch::Sender<bool>,
    pub poke: Arc<Notify>,
    /// This daemon's node id (its row in `daemon`).
    pub node: i64,
    /// A cluster member: strategies join only when their unit is held, and leases (not the
    /// heartbeat) decide when trading must stop.
    pub cluster: Option<super::cluster::ClusterLink>,
    pub started_ms: i64,
    pub trades: bool,
    pub known: BTreeMap<i64, StrategyStatus>,
    /// The parameters each known strategy runs with (a `strategy update` changes them).
    pub known_params: BTreeMap<i64, serde_json::Value>,
    pub kill_switch: bool,
    /// The trading mode the engine has (the daemon applies the one on record at start).
    pub trading_mode: crate::risk::TradingMode,
    pub config: Arc<Config>,
}

impl Poller {
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let every = Duration::from_millis(self.config.daemon.control_poll_ms);
        let mut last_revision = i64::MIN;
        let mut last_generation = u64::MAX;
        let mut applied_cancels: BTreeSet<i64> = BTreeSet::new();
        let mut last_heartbeat = Instant::now() - Duration::from_secs(10);
        let mut stale_alerted: BTreeSet<String> = BTreeSet::new();
        loop {
            tokio::select! {
                _ = shutdown.wait_for(|s| *s) => return,
                _ = self.poke.notified() => {}
                _ = tokio::time::sleep(every) => {}
            }
            if last_heartbeat.elapsed() >= Duration::from_secs(1) {
                last_heartbeat = Instant::now();
                let beat = if self.cluster.is_some() {
                    // The lease manager keeps the node's heartbeat and stops trading when it
                    // cannot; the markets still go on record here.
                    self.record_markets().await;
                    self.check_stale(&mut stale_alerted).await;
                    Ok(None)
                } else {
                    heartbeat(&self.store, self.node).await.map(Some)
                };
                match beat {
                    Ok(None) => {}
                    Ok(Some(true)) => {
                        tracing::info!("stop requested through the database");
                        let _ = self.shutdown.send(true);
                        return;
                    }
                    Ok(Some(false)) => {
                        self.store_down = false;
                        self.record_markets().await;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "heartbeat failed");
                        // The database cannot be written: no order may be placed that could not
                        // be recorded. The writer halts trading and records the outage later.
                        if !self.store_down {
                            self.store_down = true;
                            // Straight to the engine: the writer may be stuck in a write.
                            let _ = self
                                .control_tx
                                .send(Control::Halt {
                                    reason: format!("database cannot be written: {e}"),
                                })
                                .await;
                            let _ = self.persist_tx.send(super::recorder::PersistOp::Outage {
                                error: e.to_string(),
                            });
                        }
                    }
                }
                if self.cluster.is_none() {
                    self.check_stale(&mut stale_alerted).await;
                }
            }
            let generation = self.cluster.as_ref().map_or(0, |c| c.fence.generation());
            let revision = match self.store.control_revision().await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read desired state; will retry");
                    continue;
                }
            };
            if revision == last_revision && generation == last_generation {
                continue;
            }
            if let Err(e) = self.apply(&mut applied_cancels).await {
                tracing::warn!(error = %e, "applying desired state failed; will retry");
                continue;
            }
            last_revision = revision;
            last_generation = generation;
        }
    }

    async fn record_markets(&self) {
        let markets = self.metrics.markets_now();
        if !markets.is_empty() {
            if let Err(e) = self.store.set_daemon_markets(self.node, &markets).await {
                tracing::warn!(error = %e, "cannot record the live markets' prices");
            }
        }
    }

    /// Whether this daemon runs `s`: outside a cluster every strategy, in one those of the
    /// units it holds.
    fn owns(&self, s: &crate::store::StrategyRecord) -> bool {
        self.cluster.as_ref().is_none_or(|c| c.owns(s))
    }

    async fn apply(
        &mut self,
        applied_cancels: &mut BTreeSet<i64>,
    ) -> Result<(), crate::store::StoreError> {
        let mode = self.store.trading_mode().await?;
        if mode.mode != self.trading_mode {
            self.trading_mode = mode.mode;
            let _ = self.control_tx.send(Control::Mode(mode.mode)).await;
            self.alerter.raise(
                "trading_mode",
                if mode.mode == crate::risk::TradingMode::Active {
                    "info"
                } else {
                    "critical"
                },
                format!(
                    "trading mode {}: {}",
                    mode.mode.as_str(),
                    mode.reason.unwrap_or_default()
                ),
            );
        }
        let ks = self.store.kill_switch().await?;
        if ks.engaged != self.kill_switch {
            self.kill_switch = ks.engaged;
            let _ = self.control_tx.send(Control::KillSwitch(ks.engaged)).await;
            if ks.engaged {
                self.alerter.raise(
                    "emergency_stop",
                    "critical",
                    format!(
                        "kill switch engaged: {}",
                        ks.reason.clone().unwrap_or_default()
                    ),
                );
            }
        }
        // Strategies first, then the taps: a paper strategy created in between is added at the
        // next pass, with its tap, never before it.
        let strategies = self.store.list_strategies(None).await?;
        let taps = super::canary_taps::wanted(&self.store, &self.config.base_dir).await?;
        self.canary_taps.send_if_modified(|w| {
            let changed = *w != taps;
            *w = taps;
            changed
        });
        let mut symbols_changed = false;
        for s in strategies {
            if self.known.contains_key(&s.id) {
                match self.known_params.get(&s.id) {
                    Some(p) if *p != s.params => self.apply_params(&s).await,
                    Some(_) => {}
                    None => {
                        self.known_params.insert(s.id, s.params.clone());
                    }
                }
            }
            let prev = self.known.get(&s.id).copied();
            match prev {
                Some(p) if p == s.status => {}
                Some(_) => {
                    self.known.insert(s.id, s.status);
                    let (id, status, reason) =
                        (s.id, s.status, s.status_reason.clone().unwrap_or_default());
                    let reg = self.registry.clone();
                    let call: EngineCall<DaemonRecorder, RoutedVenue> = Box::new(move |engine| {
                        let Some(ix) = reg.lock().ok().and_then(|r| r.ix(id)) else {
                            return;
                        };
                        let control = match status {
                            StrategyStatus::Active => Control::Resume(ix),
                            StrategyStatus::Paused => Control::Pause(ix),
                            StrategyStatus::Stopped => Control::Stop {
                                strategy: ix,
                                reason,
                            },
                        };
                        engine.process(Event::Control(control));
                        let applied = engine.status(ix);
                        if let Ok(mut r) = reg.lock() {
                            r.applied.insert(id, applied);
                        }
                    });
                    let _ = self.call_tx.send(call).await;
                }
                None if self.trades
                    && s.status != StrategyStatus::Stopped
                    && self.owns(&s)
                    && s.mode == StrategyMode::Paper
                    && self.config.market.paper_price_source != "pool" =>
                {
                    self.known.insert(s.id, s.status);
                    let had = self.registry.lock().map(|r| r.streams().len()).unwrap_or(0);
                    let (reg, feed, record) = (self.registry.clone(), self.feed.clone(), s.clone());
                    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
                    let call: EngineCall<DaemonRecorder, RoutedVenue> = Box::new(move |engine| {
                        let result = add_strategy(engine, &reg, &feed, &record);
                        if let Ok(ix) = result {
                            let snaps = snapshot_ops(engine, [ix], wall_clock_ms());
                            engine.recorder_mut().commit_event(snaps);
                        }
                        let _ = done_tx.send(result);
                    });
                    let _ = self.call_tx.send(call).await;
                    match done_rx.await {
                        Ok(Ok(_)) => tracing::info!(strategy = s.id, "strategy added"),
                        Ok(Err(e)) => {
                            tracing::error!(strategy = s.id, error = %e, "cannot run strategy")
                        }
                        Err(_) => {}
                    }
                    let now = self.registry.lock().map(|r| r.streams().len()).unwrap_or(0);
                    symbols_changed |= now != had;
                }
                None if self.trades
                    && s.status != StrategyStatus::Stopped
                    && self.owns(&s)
                    && (s.mode == StrategyMode::Live
                        || self.config.market.paper_price_source == "pool") =>
                {
                    self.known.insert(s.id, s.status);
                    // A new pool-priced market also follows its reference price on the feed.
                    let had = self.registry.lock().map(|r| r.streams().len()).unwrap_or(0);
                    self.join_live(&s).await;
                    let now = self.registry.lock().map(|r| r.streams().len()).unwrap_or(0);
                    symbols_changed |= now != had;
                }
                None => {}
            }
        }
        if symbols_changed {
            let streams = self
                .registry
                .lock()
                .map(|r| r.streams())
                .unwrap_or_default();
            let _ = self.subscriptions.send(streams);
        }
        for order_id in self.store.operator_cancels_since(self.started_ms).await? {
            if applied_cancels.insert(order_id) {
                if let Some((_, engine_id)) = self.order_index.remove(&order_id) {
                    let _ = self.control_tx.send(Control::CancelOrder(engine_id)).await;
                }
            }
        }
        Ok(())
    }

    /// A paused strategy's parameters changed on record: the engine swaps it for the same one
    /// under the new parameters (and its risk limits follow).
    async fn apply_params(&mut self, s: &crate::store::StrategyRecord) {
        // The parameters the engine was running: its budget is resized from theirs.
        let old_required = self
            .known_params
            .insert(s.id, s.params.clone())
            .and_then(|old| crate::strategy::StrategyParams::parse(&s.kind, &old).ok())
            .map(|old| old.required_quote());
        let params = match crate::strategy::StrategyParams::parse(&s.kind, &s.params) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(strategy = s.id, error = %e, "updated parameters do not parse");
                return;
            }
        };
        let (reg, id) = (self.registry.clone(), s.id);
        let call: EngineCall<DaemonRecorder, RoutedVenue> = Box::new(move |engine| {
            let Some(ix) = reg.lock().ok().and_then(|r| r.ix(id)) else {
                return;
            };
            let snapshot = engine.snapshot(ix);
            // Changed while it trades (a canary's scale step pauses, updates and resumes on
            // record faster than this poll): paused here, between events, and resumed after.
            let was_active = engine.status(ix) == crate::strategy::StrategyStatus::Active;
            if was_active {
                engine.process(Event::Control(Control::Pause(ix)));
            }
            match params.restore_updated(&snapshot) {
                Ok(strategy) => {
                    if engine.replace_strategy(ix, strategy, params.fee_bps()) {
                        if let Some(old) = old_required {
                            engine.change_capital(ix, params.required_quote() - old);
                        }

                        let limits = reg
                            .lock()
                            .map(|r| r.risk.for_strategy(&params.risk_overrides()))
                            .ok();
                        if let Some(l) = limits {
                            engine.risk_mut().set_strategy_limits(ix, l);
                        }
                        let snaps =
                            super::snapshot_ops(engine, [ix], crate::clock::wall_clock_ms());
                        engine.recorder_mut().commit_event(snaps);
                        tracing::info!(strategy = id, "parameters updated");
                    } else {
                        tracing::warn!(
                            strategy = id,
                            "parameters changed on record while not paused; kept the running ones"
                        );
                    }
                }
                Err(e) => {
                    tracing::error!(strategy = id, error = %e, "cannot apply updated parameters")
                }
            }
            if was_active {
                engine.process(Event::Control(Control::Resume(ix)));
            }
        });
        let _ = self.call_tx.send(call).await;
    }

    /// A strategy priced by its pool, created while the daemon runs: its wallet and pool are
    /// readied (reusing what runs), then the engine adds it, routed to its wallet's venue. One
    /// that cannot run is on record as not running, with why, like at start.
    async fn join_live(&mut self, s: &crate::store::StrategyRecord) {
        let live = s.mode == StrategyMode::Live;
        let mut rt = self.live.lock().await;
        let ready = match rt.markets.as_mut() {
            Some(m) => {
                let password = std::env::var("BSC_BOT_KEYSTORE_PASSWORD").unwrap_or_default();
                m.extend(&self.config, &self.store, s, &password).await
            }
            None => {
                let (m, refused) = super::live::prepare(&self.config, &self.store, &[s]).await;
                rt.markets = m;
                match refused.get(&s.id) {
                    Some(why) => Err(why.clone()),
                    None if rt.markets.is_some() => Ok(()),
                    None => Err("no chain client".into()),
                }
            }
        };
        if let Err(why) = ready {
            tracing::error!(strategy = s.id, reason = %why, "strategy created while running cannot run");
            if live {
                self.alerter.raise(
                    "live_strategy_not_running",
                    "critical",
                    format!("live strategy {} ({}) not running: {why}", s.id, s.name),
                );
                self.set_live_status(s.id, why).await;
            }
            return;
        }
        let wallet = s.wallet.clone().unwrap_or_default();
        let venue = if live { rt.new_venue(&wallet) } else { None };
        let known_slot = rt.slot(&wallet);
        let (_, db_ids) = rt.maps();
        let (pins, pin) = (rt.pins(), super::live::pinned_pool(s));
        let (reg, feed, record) = (self.registry.clone(), self.feed.clone(), s.clone());
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let call: EngineCall<DaemonRecorder, RoutedVenue> = Box::new(move |engine| {
            let ix = engine.strategy_count();
            if let Ok(mut ids) = db_ids.write() {
                ids.insert(ix, record.id);
            }

            let slot = match venue {
                Some(v) => Some(engine.venue_mut().add_dex(v)),
                None => known_slot,
            };
            if live {
                if let Some(slot) = slot {
                    engine.venue_mut().route_to(ix, slot);
                }
            }
            let result = super::add_pool_priced_strategy(engine, &reg, &feed, &record);
            // The pin of the strategy at `ix`, and no other: a failed add leaves no pin behind
            // for the next strategy to take this index.
            if let Ok(mut pins) = pins.write() {
                match (pin, &result) {
                    (Some(pin), Ok(_)) => {
                        pins.insert(ix, pin);
                    }
                    _ => {
                        pins.remove(&ix);
                    }
                }
            }
            if let Ok(ix) = result {
                // A live grid starts on the pool's last price, not at its next trade. (A paper
                // one waits for a price, so a canary's tick log begins with the price it
                // started on.)
                if live {
                    engine.start_on_last_price(ix);
                }
                let snaps = snapshot_ops(engine, [ix], wall_clock_ms());
                engine.recorder_mut().commit_event(snaps);
            }
            let symbol_ix = result.as_ref().ok().map(|ix| engine.strategy_symbol(*ix));
            let _ = done_tx.send((result, slot, symbol_ix));
        });
        let _ = self.call_tx.send(call).await;
        match done_rx.await {
            Ok((Ok(_), slot, Some(symbol_ix))) => {
                if let (true, Some(slot)) = (live, slot) {
                    rt.set_slot(&wallet, slot);
                }
                rt.feed(&s.symbol, symbol_ix, super::live::pinned_pool(s));
                tracing::info!(strategy = s.id, "strategy added while running");
                if live {
                    self.set_live_status(s.id, "running".into()).await;
                }
            }
            Ok((Err(e), _, _)) => {
                tracing::error!(strategy = s.id, error = %e, "cannot run strategy");
                if live {
                    self.set_live_status(s.id, e).await;
                }
            }
            _ => {}
        }
    }

    /// What this daemon does with live strategy `id`, on record for `strategy list/status`.
    async fn set_live_status(&self, id: i64, status: String) {
        let all = match self.registry.lock() {
            Ok(mut reg) => {
                reg.live.insert(id, status);
                reg.live.clone()
            }
            Err(_) => return,
        };
        if let Err(e) = self.store.set_daemon_live_status(self.node, &all).await {
            tracing::warn!(error = %e, "cannot record live strategy status");
        }
    }

    /// A symbol stale for longer than the alert threshold raises one alert and one risk event.
    async fn check_stale(&self, alerted: &mut BTreeSet<String>) {
        let now = wall_clock_ms();
        let threshold = (self.config.alerts.feed_stale_alert_secs * 1000) as i64;
        for s in self.feed.symbol_status(now, threshold) {
            if s.stale && s.last_tick_age_ms.is_some() {
                if alerted.insert(s.stream.clone()) {
                    let msg = format!(
                        "{} feed stale for {} s",
                        s.stream,
                        s.last_tick_age_ms.unwrap_or(0) / 1000
                    );
                    self.alerter.raise("feed_stale", "warning", msg.clone());
                    let mut conn = match self.store.pool().acquire().await {
                        Ok(c) => c,
                        Err(_) => continue,
                    };
                    let _ = crate::store::paper::insert_risk_event(
                        &mut conn,
                        None,
                        "feed_stale",
                        "warning",
                        &msg,
                        now,
                    )
                    .await;
                }
            } else if !s.stale {
                alerted.remove(&s.stream);
            }
        }
    }
}

/// One heartbeat write, failed when it takes longer than [`HEARTBEAT_TIMEOUT`]; whether a stop
/// was requested.
async fn heartbeat(store: &Store, node: i64) -> Result<bool, crate::store::StoreError> {
    tokio::time::timeout(
        HEARTBEAT_TIMEOUT,
        store.daemon_heartbeat(node, wall_clock_ms()),
    )
    .await
    .unwrap_or_else(|_| {
        Err(crate::store::StoreError::Io(format!(
            "heartbeat write took longer than {} ms",
            HEARTBEAT_TIMEOUT.as_millis()
        )))
    })
}

/// The heartbeat while no core's poller writes it (outside a cluster, where the lease manager
/// keeps it): from registration until the core is up, and through a core's start, which may wait
/// on the node. Without it a daemon slow to start looks gone after 5 s — `bot stop` would not ask
/// it to stop and `db restore` would run under it. A stop asked for meanwhile is honoured.
pub async fn heartbeat_until_core_is_up(
    store: Store,
    node: i64,
    registry: Arc<Mutex<Registry>>,
    stop: watch::Sender<bool>,
) {
    let mut shutdown = stop.subscribe();
    loop {
        let up = registry
            .lock()
            .is_ok_and(|r| matches!(r.core, crate::views::CoreState::Running { .. }));
        if !up {
            match heartbeat(&store, node).await {
                Ok(true) => {
                    tracing::info!("stop requested through the database (while starting)");
                    let _ = stop.send(true);
                    return;
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "heartbeat failed while starting"),
            }
        }
        tokio::select! {
            _ = shutdown.wait_for(|s| *s) => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}
