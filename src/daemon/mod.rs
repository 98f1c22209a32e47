//! The daemon (floor 10, may use floors 0–9): `bsc-bot bot start`, assembling every part below.
//!
//! `bsc-bot bot start`: the daemon. Paper trading on live Binance prices through the same engine
//! as backtests, obeying the database's desired state, with an HTTP API, metrics and alerts.
//!
//! Tasks: the market feed, the engine loop (the only owner of the engine), the persistence writer,
//! the control poller, the API server, and the alert sender. They talk over channels; the
//! database is the source of truth, so a restart resumes exactly from what was committed.

pub mod canary_taps;
pub mod cluster;
pub mod control;
mod funds_wiring;
pub mod live;
pub mod live_runtime;
pub mod lock;
pub mod priority;
pub mod record_log;
pub mod recorder;
pub mod recovery;
pub mod registry;
pub mod token;
pub mod writer;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dashmap::DashMap;
use tokio::sync::{mpsc, watch, Notify};

use crate::alerts;
use crate::api::{self, ApiState, RateLimiter};
use crate::clock::wall_clock_ms;
use crate::config::Config;
use crate::engine::live::{run_live_with, EngineCall, LiveExtras, LiveInputs};
use crate::engine::{Control, Engine};
use crate::market::feed::{run_feed, FeedState};
use crate::metrics::Metrics;
use crate::model::Symbol;
use crate::risk::{RiskGuard, RiskLimits};
use crate::store::{Store, StoreError, StrategyRecord};
use crate::strategy::{StrategyMode, StrategyStatus};
use crate::venue::routed::RoutedVenue;
use crate::views::{hostname, CoreState};
use funds_wiring::{start_funds, FundsWiring};
use recorder::{DaemonRecorder, PersistOp};
pub use registry::{
    add_pool_priced_strategy, add_strategy, snapshot_ops, state_document, Registry,
};

pub type DaemonEngine = Engine<DaemonRecorder, RoutedVenue>;

#[derive(Debug, Clone, Copy, Default)]
pub struct DaemonOptions {
    /// Do not run strategies (API, health and metrics only; no market feed is dialled).
    pub no_strategies: bool,
    /// Accepted for the funds manager (no funds operations run in paper mode yet).
    pub no_funds: bool,
    /// Watch markets and serve the API; never trade.
    pub monitoring_only: bool,
    /// `--market-only` (no strategies, no funds): named so in `bot status`.
    pub market_only: bool,
}

impl DaemonOptions {
    fn trades(&self) -> bool {
        !(self.no_strategies || self.monitoring_only)
    }

    /// What `bot status` says of trading.
    fn trading_status(&self) -> &'static str {
        if self.market_only {
            "off: --market-only"
        } else if self.monitoring_only {
            "off: --monitoring-only"
        } else if self.no_strategies {
            "off: --no-strategies"
        } else {
            "running"
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Lock(#[from] lock::LockError),
    #[error("{0}")]
    Io(String),
}

/// Run the daemon until SIGTERM, Ctrl-C, `bot stop` or `POST /api/v1/control/stop`.
///
/// On PostgreSQL with `cluster.enabled` the daemon is a cluster member: a lease manager holds its
/// units, and the core (engine, writer, feeds, executors, funds, control poller) runs the units
/// held and starts again whenever they change hands. The API stays up across such restarts.
pub async fn run(config: Config, opts: DaemonOptions) -> Result<(), DaemonError> {
    let config = Arc::new(config);
    let url = config.database.resolved_url(&config.base_dir);
    let store = Store::open_with_idle_limit(
        &url,
        &config.database,
        cluster::idle_in_transaction_ms(&config),
    )
    .await?;
    let clustered = store.backend() == crate::store::Backend::Postgres && config.cluster.enabled;
    let lock = if clustered {
        None
    } else {
        Some(lock::acquire(&store, &url).await?)
    };
    let token = token::load_or_create_token(&config).map_err(|e| DaemonError::Io(e.to_string()))?;
    let metrics = Arc::new(Metrics::default());
    // The hour's outflow on record is shown from the API's first answer: the core, which adds
    // what its recovery settles, can take a while to come up (the node, a cluster's first lease
    // round), and a 0 meanwhile would be a figure the daemon does not know.
    let on_record = store
        .outflow_quote_since(wall_clock_ms() - 3_600_000)
        .await?;
    if let Ok(mut shown) = metrics.hourly_outflow.lock() {
        *shown = on_record;
    }
    let feed = Arc::new(FeedState::default());
    let alerter = alerts::start(&config.alerts, metrics.clone());
    let listener = tokio::net::TcpListener::bind(&config.api.listen)
        .await
        .map_err(|e| DaemonError::Io(format!("api listen {}: {e}", config.api.listen)))?;
    let api_addr = listener
        .local_addr()
        .map_err(|e| DaemonError::Io(e.to_string()))?;
    let pid = i64::from(std::process::id());
    let started = wall_clock_ms();
    let node = if clustered {
        store
            .register_node(
                pid,
                &hostname(),
                &api_addr.to_string(),
                config.cluster.capacity,
                started,
            )
            .await?
    } else {
        store
            .register_daemon(pid, &hostname(), &api_addr.to_string(), started)
            .await?
    };
    tracing::info!(%api_addr, pid, node, cluster = clustered, "daemon starting");
    if config.api.console {
        let url = crate::api::console::console_url(&api_addr.to_string());
        tracing::info!(%url, "operator console");
        // The operator who started it in a terminal reads where to point the browser (a closed
        // stdout, as under some supervisors, is no reason to stop).
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stdout(),
            "console: {url} (log in with the API token)"
        );
    }

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let poke = Arc::new(Notify::new());
    let registry = Arc::new(Mutex::new(Registry::starting(&config.risk, started)));
    // The feed is the job itself when the daemon only watches markets; otherwise it is needed
    // only while a paper strategy trades on its prices (health asks the strategies).
    let feed_expected = Arc::new(AtomicBool::new(opts.monitoring_only));
    let link = clustered
        .then(|| cluster::ClusterLink::new(Arc::new(crate::store::cluster::Fence::new(node))));
    let store = match &link {
        Some(l) => store.with_fence(l.fence.clone()),
        None => store,
    };
    let lease_task = link.as_ref().map(|l| {
        let manager = cluster::LeaseManager {
            store: store.clone(),
            config: config.clone(),
            link: l.clone(),
            metrics: metrics.clone(),
            alerter: alerter.clone(),
            poke: poke.clone(),
            shutdown: shutdown_tx.clone(),
            trades: opts.trades(),
            funds: config.funds.enabled() && !opts.no_funds && !opts.market_only,
        };
        tokio::spawn(manager.run(shutdown_rx.clone()))
    });
    let startup_heartbeat = (!clustered).then(|| {
        tokio::spawn(control::heartbeat_until_core_is_up(
            store.clone(),
            node,
            registry.clone(),
            shutdown_tx.clone(),
        ))
    });
    let signals = {
        let (tx, rx) = (shutdown_tx.clone(), shutdown_rx.clone());
        tokio::spawn(async move {
            wait_for_stop(rx).await;
            let _ = tx.send(true);
        })
    };

    // API: up once, across the core's restarts.
    let state = ApiState {
        store: store.clone(),
        metrics: metrics.clone(),
        feed: feed.clone(),
        config: config.clone(),
        token: Arc::new(token),
        started_at_ms: started,
        poke: poke.clone(),
        shutdown: shutdown_tx.clone(),
        limiter: Arc::new(RateLimiter::new(
            config.api.rate_limit_per_sec,
            config.api.rate_limit_burst,
        )),
        feed_expected,
        engine: registry.clone(),
        chain: Default::default(),
        hub: Default::default(),
    };
    let api_task = tokio::spawn(api::serve::serve(
        listener,
        api::router(state),
        api::serve::ServeLimits {
            head_timeout: Duration::from_millis(config.api.request_head_timeout_ms),
            per_client: config.api.max_connections_per_client,
            total: config.api.max_connections,
        },
        shutdown_rx.clone(),
    ));
    alerter.raise(
        "daemon_started",
        "info",
        format!("bsc-bot daemon started (pid {pid}, node {node}, api {api_addr})"),
    );
    if let Some(l) = &link {
        // The first core runs what the first round took (or nothing, if the database is slow).
        let mut ready = l.ready.subscribe();
        let _ = tokio::time::timeout(Duration::from_secs(10), ready.wait_for(|r| *r)).await;
    }
    let mut restarts = link.as_ref().map(|l| l.restart.subscribe());
    let crashed = loop {
        let core = Core {
            config: config.clone(),
            opts,
            store: store.clone(),
            metrics: metrics.clone(),
            feed: feed.clone(),
            alerter: alerter.clone(),
            registry: registry.clone(),
            poke: poke.clone(),
            shutdown: shutdown_tx.clone(),
            node,
            link: link.clone(),
        };
        match run_core(core, restarts.as_mut()).await? {
            CoreEnd::Stopped => break false,
            CoreEnd::Crashed => break true,
            CoreEnd::Restart(why) => {
                if let Some(l) = link.as_ref().filter(|l| l.draining.load(Ordering::SeqCst)) {
                    // Nothing of these units is running or being written any more: hand them over.
                    if !l.fence.held().is_empty() {
                        l.fence.set_held(Default::default());
                        let n = store.release_leases(node).await.unwrap_or(0);
                        tracing::warn!(
                            units = n,
                            "drained: every unit handed over; this daemon takes no more"
                        );
                    }
                }
                tracing::warn!(reason = %why, "the daemon's core starts again on the units it now holds");
            }
        }
    };
    let _ = shutdown_tx.send(true);
    signals.abort();
    if let Some(task) = startup_heartbeat {
        task.abort();
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), api_task).await;
    if let Some(task) = lease_task {
        let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
    }
    if let Some(l) = &link {
        // A clean stop hands the units over at once instead of after the lease runs out.
        l.fence.set_held(Default::default());
        if let Err(e) = store.release_leases(node).await {
            tracing::warn!(error = %e, "cannot release leases; the others take them when they expire");
        }
    }
    alerter.raise(
        "daemon_stopped",
        "info",
        format!("bsc-bot daemon stopped (pid {pid})"),
    );
    let sent_before =
        metrics.alerts_sent.load(Ordering::Relaxed) + metrics.alerts_failed.load(Ordering::Relaxed);
    for _ in 0..10 {
        if metrics.alerts_sent.load(Ordering::Relaxed)
            + metrics.alerts_failed.load(Ordering::Relaxed)
            > sent_before
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    store.mark_daemon_stopped(node, wall_clock_ms()).await?;
    drop(lock);
    store.close().await;
    if crashed {
        return Err(DaemonError::Io(
            "the engine loop crashed; see the log above".into(),
        ));
    }
    tracing::info!("daemon stopped");
    Ok(())
}

/// What the daemon's core is started with (the parts that outlive it).
struct Core {
    config: Arc<Config>,
    opts: DaemonOptions,
    store: Store,
    metrics: Arc<Metrics>,
    feed: Arc<FeedState>,
    alerter: alerts::Alerter,
    registry: Arc<Mutex<Registry>>,
    poke: Arc<Notify>,
    /// The daemon's own stop.
    shutdown: watch::Sender<bool>,
    node: i64,
    link: Option<cluster::ClusterLink>,
}

enum CoreEnd {
    Stopped,
    Crashed,
    Restart(String),
}

/// The engine and everything that trades, on the units held, until the daemon stops or (in a
/// cluster) the units change hands.
async fn run_core(
    core: Core,
    restarts: Option<&mut watch::Receiver<(u64, String)>>,
) -> Result<CoreEnd, DaemonError> {
    let Core {
        config,
        opts,
        store,
        metrics,
        feed,
        alerter,
        registry,
        poke,
        shutdown,
        node,
        link,
    } = core;
    // A test holds the core here to show what the API answers before the core is up.
    let _ = tokio::task::spawn_blocking(|| crate::failpoint::hit("daemon.core_start")).await;
    // Order ids restart with every core: the writer names this core's orders with its own run.
    let run_id = wall_clock_ms();
    let (core_tx, core_rx) = watch::channel(false);
    if let Some(l) = &link {
        let mut units: Vec<String> = l.fence.held().into_keys().collect();
        units.sort();
        tracing::info!(
            run_id,
            node,
            ?units,
            "daemon core starting on the units held"
        );
    }
    // A restart asked for before this core reads what it holds is answered by this core.
    let mut restarts = restarts;
    if let Some(r) = restarts.as_deref_mut() {
        r.borrow_and_update();
    }
    let strategies_status = match &link {
        Some(l) if l.draining.load(Ordering::SeqCst) => {
            "drained: every unit handed over (cluster drain); restart this daemon to take units again"
                .to_string()
        }
        _ => opts.trading_status().to_string(),
    };
    let (persist_tx, persist_rx) = mpsc::unbounded_channel();
    let order_index: writer::OrderIndex = Arc::new(DashMap::new());
    let (control_tx, control_rx) = mpsc::channel::<Control>(1024);
    let writer_task = tokio::spawn(
        writer::Writer::new(store.clone(), run_id, order_index.clone(), metrics.clone())
            .with_outage_signals(writer::OutageSignals {
                control: control_tx.clone(),
                alerter: Some(alerter.clone()),
                cluster: link.clone(),
            })
            .run(persist_rx),
    );

    // What left the trading wallets within the hour: the engine books live swaps, the funds
    // manager drips and sweeps.
    let outflow = Arc::new(crate::risk::OutflowLedger::default());
    let mut rec = DaemonRecorder::new(persist_tx.clone(), metrics.clone());
    rec.alerter = Some(alerter.clone());
    let mut engine: DaemonEngine = Engine::new(
        0,
        // Paper fills through the configured pool with `market.paper_fill_model = "amm"`.
        RoutedVenue::with_sim(
            crate::venue::SimVenue::new(crate::venue::sim::SimVenueConfig {
                slippage_bps: 0,
                amm: config.market.paper_pool().unwrap_or(None),
            })
            .with_v3(
                config
                    .market
                    .paper_v3()
                    .unwrap_or(None)
                    .map(|m| m.with_bound(config.dex.slippage_bps)),
            )
            .with_delays(crate::failpoint::paper_venue().map_or_else(
                crate::venue::sim::SimDelays::default,
                |(latency_ms, fail_ppm)| crate::venue::sim::SimDelays {
                    latency_us: latency_ms * 1000,
                    fail_ppm,
                    reject_ppm: 0,
                    seed: 7,
                },
            )),
        ),
        RiskGuard::new(RiskLimits::from_config(&config.risk)).with_outflow_ledger(outflow.clone()),
        rec,
    )
    // Equity and unrealized PnL in /metrics follow the price within a second.
    .with_mark_interval(1_000_000);
    // Orders re-issued at restore are stamped before any tick arrives: at the wall clock, never 0.
    engine.advance_clock(crate::clock::wall_clock_us());
    if let Ok(mut r) = registry.lock() {
        *r = Registry::starting(&config.risk, wall_clock_ms());
    }
    if let Some(l) = &link {
        if let Ok(mut c) = l.control.lock() {
            *c = Some(control_tx.clone());
        }
    }
    let kill = store.kill_switch().await?;
    engine.process(crate::engine::Event::Control(Control::KillSwitch(
        kill.engaged,
    )));
    let trading_mode = store.trading_mode().await?.mode;
    engine.process(crate::engine::Event::Control(Control::Mode(trading_mode)));

    // Strategies to run (or, when not trading, symbols to watch).
    let records: Vec<StrategyRecord> = store
        .list_strategies(None)
        .await?
        .into_iter()
        .filter(|s| s.status != StrategyStatus::Stopped)
        // A cluster member runs the units it holds, no other.
        .filter(|s| link.as_ref().is_none_or(|l| l.owns(s)))
        .collect();
    let mut known: BTreeMap<i64, StrategyStatus> = BTreeMap::new();
    // Live strategies: the chain side, what runs, and why the others do not.
    let mut markets: Option<live::LiveMarkets> = None;
    let mut live_ix: Vec<(StrategyRecord, usize)> = Vec::new();
    let mut live_status: BTreeMap<i64, String> = BTreeMap::new();
    if opts.trades() {
        let mut records = records;
        // Priced by their pool: every live strategy, and paper ones when configured so.
        let paper_on_pool = config.market.paper_price_source == "pool";
        let pool_records: Vec<&StrategyRecord> = records
            .iter()
            .filter(|r| r.mode == StrategyMode::Live || paper_on_pool)
            .collect();
        let (prepared, mut refused) = live::prepare(&config, &store, &pool_records).await;
        markets = prepared;
        // Orders the last run left in flight are settled (swaps mined meanwhile applied) before
        // any strategy runs; a strategy whose recovery failed does not run.
        let recovered = recovery::recover_in_flight(
            &store,
            markets.as_ref(),
            config.dex.fee_bps,
            &mut records,
            &refused,
        )
        .await;
        for (id, outcome) in recovered {
            match outcome {
                Ok(r) => {
                    tracing::warn!(
                        strategy = id,
                        fills = r.fills,
                        failed = r.failed,
                        "orders in flight at the last stop settled"
                    )
                }
                Err(e) => {
                    tracing::error!(strategy = id, error = %e, "cannot settle the orders the last run left in flight; strategy not run");
                    refused.insert(id, format!("recovery of orders in flight failed: {e}"));
                }
            }
        }
        // The hour's outflow on record (live swaps, drips, sweeps, recovered fills included)
        // goes on counting: the limit and the metric do not start from 0 after a restart.
        let now = crate::clock::wall_clock_ms();
        for (at, value) in store.outflow_entries_since(now - 3_600_000).await? {
            outflow.record(at, value);
        }
        if let Ok(mut shown) = metrics.hourly_outflow.lock() {
            *shown = outflow.last_hour(now);
        }
        let restored: Vec<i64> = records
            .iter()
            .filter(|r| r.state.is_some())
            .map(|r| r.id)
            .collect();
        engine.recorder().send(PersistOp::BeginRestore {
            strategy_ids: restored,
        });
        for r in &records {
            if r.status == StrategyStatus::Stopped {
                // Its last liquidation was among the swaps recovered above.
                continue;
            }
            if let (StrategyMode::Paper, false, Some(why)) =
                (r.mode, paper_on_pool, refused.get(&r.id))
            {
                tracing::error!(strategy = r.id, reason = %why, "strategy not run");
                continue;
            }
            if r.mode == StrategyMode::Paper && paper_on_pool {
                if let Some(why) = refused.get(&r.id) {
                    tracing::error!(strategy = r.id, reason = %why, "paper strategy on pool prices not run");
                    continue;
                }
                match add_pool_priced_strategy(&mut engine, &registry, &feed, r) {
                    Ok(_) => {
                        known.insert(r.id, r.status);
                    }
                    Err(e) => tracing::error!(strategy = r.id, error = %e, "cannot run strategy"),
                }
                continue;
            }
            if r.mode == StrategyMode::Live {
                if let Some(why) = refused.get(&r.id) {
                    tracing::error!(strategy = r.id, reason = %why, "live strategy not run");
                    alerter.raise(
                        "live_strategy_not_running",
                        "critical",
                        format!("live strategy {} ({}) not running: {why}", r.id, r.name),
                    );
                    live_status.insert(r.id, why.clone());
                    continue;
                }
                match add_pool_priced_strategy(&mut engine, &registry, &feed, r) {
                    Ok(ix) => {
                        known.insert(r.id, r.status);
                        live_ix.push((r.clone(), ix));
                        live_status.insert(r.id, "running".into());
                    }
                    Err(e) => {
                        tracing::error!(strategy = r.id, error = %e, "cannot run strategy");
                        live_status.insert(r.id, e);
                    }
                }
                continue;
            }
            match add_strategy(&mut engine, &registry, &feed, r) {
                Ok(_) => {
                    known.insert(r.id, r.status);
                }
                Err(e) => tracing::error!(strategy = r.id, error = %e, "cannot run strategy"),
            }
        }
        let snapshots = snapshot_ops(&engine, 0..engine.strategy_count(), wall_clock_ms());
        engine.recorder_mut().commit_event(snapshots);
        engine.recorder().send(PersistOp::EndRestore);
    } else if opts.monitoring_only {
        // Watching markets is the job (--monitoring-only, --market-only); --no-strategies
        // watches nothing and dials no exchange.
        let mut reg = registry
            .lock()
            .map_err(|_| DaemonError::Io("registry".into()))?;
        for r in &records {
            if let Ok(sym) = r.symbol.parse::<Symbol>() {
                reg.symbol_ix(&mut engine, &feed, &sym);
            }
        }
    }
    // Price-jump cool-downs still running when the daemon stopped go on after the restart.
    for (market, until_ms) in store.active_buy_blocks(wall_clock_ms()).await? {
        if let Some(ix) = engine.recorder().symbol_ix(&market) {
            engine
                .risk_mut()
                .block_buys(ix, until_ms.saturating_mul(1000));
            tracing::info!(%market, until_ms, "price-jump cool-down restored: no new buys yet");
        }
    }
    // The feed is the job itself when the daemon only watches markets; otherwise it is needed
    // only while a paper strategy trades on its prices (health asks the strategies).
    let streams = registry.lock().map(|r| r.streams()).unwrap_or_default();
    let (sub_tx, sub_rx) = watch::channel(streams);

    // Market feed → engine (Binance for paper, pools for live).
    let (tick_tx, tick_rx) = mpsc::channel(65_536);
    let (reports_tx, reports_rx) = mpsc::channel(1024);
    // The live side: one DEX venue (and executor) per wallet, strategies routed to theirs, one
    // pool feed per market. Kept for strategies created while the daemon runs.
    let holds = |unit: &str| link.as_ref().is_none_or(|l| l.fence.holds(unit));
    let (funds_status, funds_join) = if !holds(crate::store::cluster::FUNDS_UNIT) {
        (
            "elsewhere: on the daemon that holds the funds lease".to_string(),
            None,
        )
    } else {
        start_funds(
            &config,
            &opts,
            &store,
            markets.as_ref(),
            FundsWiring {
                outflow: outflow.clone(),
                metrics: metrics.clone(),
                shutdown: core_rx.clone(),
                alerter: alerter.clone(),
            },
            node,
        )
        .await
    };
    tracing::info!(funds = %funds_status, "funds manager");
    store.set_daemon_funds_status(node, &funds_status).await?;
    store
        .set_daemon_strategies_status(node, &strategies_status)
        .await?;
    let mut live_rt = live_runtime::LiveRuntime::new(
        markets.take(),
        config.clone(),
        tick_tx.clone(),
        reports_tx.clone(),
        core_rx.clone(),
        run_id,
    );
    live_rt.metrics = Some(metrics.clone());
    live_rt.guard = Some(live_runtime::GasGuard {
        store: store.clone(),
        alerter: alerter.clone(),
        funds_manages: funds_join.is_some(),
        funds_status: funds_status.clone(),
    });
    live_rt.funds_join = funds_join;
    {
        let (_, db_ids) = live_rt.maps();
        if let Ok(mut ids) = db_ids.write() {
            for (r, ix) in &live_ix {
                ids.insert(*ix, r.id);
            }
        }
        if let Ok(mut pins) = live_rt.pins().write() {
            for (r, ix) in &live_ix {
                if let Some(pin) = live::pinned_pool(r) {
                    pins.insert(*ix, pin);
                }
            }
        }
        let wallets: std::collections::BTreeSet<String> = live_ix
            .iter()
            .filter_map(|(r, _)| r.wallet.clone())
            .collect();
        for w in wallets {
            if let Some(venue) = live_rt.new_venue(&w) {
                let slot = engine.venue_mut().add_dex(venue);
                live_rt.set_slot(&w, slot);
            }
        }
        for (r, ix) in &live_ix {
            if let Some(slot) = r.wallet.as_deref().and_then(|w| live_rt.slot(w)) {
                engine.venue_mut().route_to(*ix, slot);
            }
        }
        let pool_ix: Vec<(Symbol, Option<crate::amm::PoolKind>, usize)> = registry
            .lock()
            .map(|r| r.pool_symbols.clone())
            .unwrap_or_default();
        for (symbol, pin, ix) in pool_ix {
            live_rt.feed(&symbol.to_string(), ix, pin);
        }
    }
    let live_rt = Arc::new(tokio::sync::Mutex::new(live_rt));
    if let Ok(mut reg) = registry.lock() {
        reg.live = live_status.clone();
    }
    // A cluster member says what it runs now, also when that is nothing any more.
    if !live_status.is_empty() || link.is_some() {
        store.set_daemon_live_status(node, &live_status).await?;
    }
    let feed_future = run_feed(
        config.market.clone(),
        feed.clone(),
        tick_tx,
        sub_rx,
        core_rx.clone(),
    );

    // The engine loop.
    let (call_tx, call_rx) = mpsc::channel::<EngineCall<DaemonRecorder, RoutedVenue>>(1024);
    let latency = metrics.clone();
    // Periodic snapshots follow the engine's own clock (wall time in paper mode, advanced by
    // every tick and the 1 s timer): no clock read after each tick.
    let snapshot_every_us = i64::try_from(config.daemon.snapshot_every_ms)
        .unwrap_or(i64::MAX / 1000)
        .saturating_mul(1000);
    let mut next_snapshot_us = 0i64;
    // Read again each second: a live strategy joining later brings its market along.
    let market_registry = registry.clone();
    let market_metrics = metrics.clone();
    let mut next_markets_us = 0i64;
    // Canary paper strategies' ticks are logged from the first one they trade on: the taps are
    // set before the engine loop runs and, later, sent by the poller before it adds strategies.
    // The engine thread owns the taps and only looks at the channel on a tick (one atomic load
    // while nothing changed), so a daemon without canaries pays nothing more per tick.
    let initial_taps = canary_taps::wanted(&store, &config.base_dir)
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot read canary rollouts; their paper ticks are not logged until the next control poll");
            Vec::new()
        });
    let mut tick_taps = canary_taps::CanaryTaps::default();
    tick_taps.set(initial_taps.clone());
    let (taps_tx, mut taps_rx) = watch::channel(initial_taps);
    let tick_registry = registry.clone();
    let inputs = LiveInputs {
        shutdown: core_rx.clone(),
        control: control_rx,
        reports: reports_rx,
        market: tick_rx,
        mark_every: Duration::from_secs(1),
    };
    let extras: LiveExtras<DaemonRecorder, RoutedVenue> = LiveExtras {
        before_tick: Box::new(
            move |engine: &DaemonEngine, tick: &crate::model::MarketTick| {
                if taps_rx.has_changed().unwrap_or(false) {
                    tick_taps.set(taps_rx.borrow_and_update().clone());
                }
                if tick_taps.is_empty() {
                    return;
                }
                if let Ok(registry) = tick_registry.lock() {
                    tick_taps.on_tick(engine, &registry, tick);
                }
            },
        ),
        calls: call_rx,
        on_latency: Box::new(move |ns| latency.tick_to_decision.record(ns)),
        after_event: Box::new(move |engine: &mut DaemonEngine| {
            let now_us = engine.now_us();
            if now_us >= next_markets_us {
                next_markets_us = now_us.saturating_add(1_000_000);
                let market_pairs = market_registry
                    .lock()
                    .map(|r| r.market_pairs.clone())
                    .unwrap_or_default();
                let at_ms = crate::clock::ms_of_us(now_us);
                if let Ok(mut m) = market_metrics.markets.lock() {
                    for (symbol, pool_ix, reference_ix) in &market_pairs {
                        m.insert(
                            symbol.clone(),
                            crate::model::divergence::MarketPrices::new(
                                engine.last_price(*pool_ix),
                                engine.last_price(*reference_ix),
                                at_ms,
                            ),
                        );
                    }
                }
            }
            let periodic = now_us >= next_snapshot_us;
            if !engine.recorder().has_pending() && !periodic {
                return;
            }
            let ixs: Vec<usize> = if periodic {
                next_snapshot_us = now_us.saturating_add(snapshot_every_us);
                (0..engine.strategy_count()).collect()
            } else {
                engine.recorder_mut().take_dirty()
            };
            let snaps = snapshot_ops(engine, ixs, crate::clock::ms_of_us(now_us));
            engine.recorder_mut().commit_event(snaps);
        }),
    };
    // The engine and the feed that drives it share a thread of their own: a tick goes from the
    // socket to a decision without a cross-thread wake-up, and the writer and the API never queue
    // in front of it on the runtime's workers.
    let (engine_done, mut engine_task) = tokio::sync::oneshot::channel::<DaemonEngine>();
    let (engine_tid_tx, engine_tid) = tokio::sync::oneshot::channel::<i32>();
    std::thread::Builder::new()
        .name("engine".into())
        .spawn(move || {
            let _ = engine_tid_tx.send(priority::current_thread_id());
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(error = %e, "cannot start the engine thread's runtime");
                    return;
                }
            };
            let feed_task = rt.spawn(feed_future);
            rt.block_on(run_live_with(&mut engine, inputs, Some(extras)));
            let _ = rt
                .block_on(async { tokio::time::timeout(Duration::from_secs(1), feed_task).await });
            let _ = engine_done.send(engine);
        })
        .map_err(|e| DaemonError::Io(format!("cannot start the engine thread: {e}")))?;

    // Everything but the engine yields the CPU to it (threads started later inherit this).
    let nice = config.daemon.background_nice;
    if nice > 0 {
        match engine_tid.await {
            Ok(tid) => match priority::lower_other_threads(tid, nice) {
                Ok(n) => {
                    tracing::info!(threads = n, nice, "background threads run below the engine")
                }
                Err(e) => tracing::warn!(error = %e, "cannot lower background thread priority"),
            },
            Err(_) => tracing::warn!("the engine thread did not report its id"),
        }
    }

    // Control plane: poll the database (and wake on pokes).
    let poller = control::Poller {
        canary_taps: taps_tx,
        trading_mode,
        live: live_rt.clone(),
        metrics: metrics.clone(),
        store: store.clone(),
        registry: registry.clone(),
        feed: feed.clone(),
        control_tx,
        persist_tx: persist_tx.clone(),
        store_down: false,
        call_tx,
        subscriptions: sub_tx,
        alerter: alerter.clone(),
        order_index,
        shutdown: shutdown.clone(),
        poke: poke.clone(),
        node,
        cluster: link.clone(),
        started_ms: run_id,
        trades: opts.trades(),
        known,
        known_params: BTreeMap::new(),
        kill_switch: kill.engaged,
        config: config.clone(),
    };
    let poller_task = tokio::spawn(poller.run(core_rx.clone()));
    if let Ok(mut r) = registry.lock() {
        r.core = CoreState::Running {
            since_ms: wall_clock_ms(),
        };
    }
    // Canary rollouts walk on this daemon's clock, only where it trades.
    let canary_task = (opts.trades() && holds(crate::store::cluster::ROLLOUTS_UNIT)).then(|| {
        let driver = crate::rollout::driver::CanaryDriver::new(
            store.clone(),
            config.clone(),
            alerter.clone(),
            metrics.clone(),
            poke.clone(),
        );
        tokio::spawn(driver.run(core_rx.clone()))
    });

    // Stop on a signal or request, a restart asked for by the lease manager, or when the engine
    // loop dies (a bug: stop loudly, not half-alive).
    let mut daemon_stop = shutdown.subscribe();
    let restart_wanted = async {
        match restarts {
            Some(r) => match r.changed().await {
                Ok(()) => r.borrow_and_update().1.clone(),
                Err(_) => std::future::pending().await,
            },
            None => std::future::pending().await,
        }
    };
    let early = tokio::select! {
        _ = daemon_stop.wait_for(|s| *s) => None,
        why = restart_wanted => Some(Err(why)),
        ended = &mut engine_task => Some(Ok(ended)),
    };
    let _ = core_tx.send(true);
    tracing::info!("daemon core stopping");
    if let (Some(Err(_)), Ok(mut r)) = (&early, registry.lock()) {
        // What this core ran and how is no longer so while the next one starts.
        *r = Registry::starting(&config.risk, wall_clock_ms());
    }
    let (engine, crashed, restart) = match early {
        None => (engine_task.await.ok(), false, None),
        Some(Err(why)) => (engine_task.await.ok(), false, Some(why)),
        Some(Ok(Ok(engine))) => (Some(engine), false, None),
        Some(Ok(Err(_))) => {
            tracing::error!("engine loop crashed; stopping the daemon");
            alerter.raise("daemon_crashed", "critical", "engine loop crashed");
            (None, true, None)
        }
    };

    // Everything the engine knows goes on record before we let go.
    if let Some(mut engine) = engine {
        let snaps = snapshot_ops(&engine, 0..engine.strategy_count(), wall_clock_ms());
        engine.recorder_mut().commit_event(snaps);
        let (ack_tx, ack_rx) = tokio::sync::oneshot::channel();
        engine.recorder().send(PersistOp::Flush(ack_tx));
        let _ = tokio::time::timeout(Duration::from_secs(3), ack_rx).await;
    }
    drop(persist_tx);
    // What a wallet's executor was sending is settled by the next core's recovery (as after a
    // crash), never by two executors of one wallet side by side.
    live_rt.lock().await.stop_executors();
    if let Some(l) = &link {
        if let Ok(mut c) = l.control.lock() {
            *c = None;
        }
    }
    if restart.is_some() && !crashed {
        // The next core restores from what this one wrote: every write lands (or is fenced)
        // first, however long the database takes.
        let _ = writer_task.await;
    } else {
        let _ = tokio::time::timeout(Duration::from_secs(2), writer_task).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), poller_task).await;
    if let Some(task) = canary_task {
        let _ = tokio::time::timeout(Duration::from_secs(1), task).await;
    }
    Ok(match (crashed, restart) {
        (true, _) => CoreEnd::Crashed,
        (false, Some(why)) => CoreEnd::Restart(why),
        (false, None) => CoreEnd::Stopped,
    })
}

async fn wait_for_stop(mut shutdown: watch::Receiver<bool>) {
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let sigterm = async {
        match term.as_mut() {
            Some(t) => {
                t.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = sigterm => {}
        _ = shutdown.wait_for(|s| *s) => {}
    }
}
