//! The live side of a running daemon, kept after start so a strategy created while it runs joins
//! it instead of waiting for a restart: the chain client, each wallet's one swapper and DEX venue
//! (one executor per wallet, so its nonces stay the bot's own), the pools every executor reads,
//! the engine-index → database-id map orders are named by, and the pool feeds that run.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::live::LiveMarkets;
use super::writer;
use crate::config::Config;
use crate::engine::VenueReport;
use crate::model::MarketTick;
use crate::venue::dex::{dex_venue_shared, DexVenue, Routing, SharedPools};

pub struct LiveRuntime {
    /// Client, reconciled wallets and pools (`None` until a node answered).
    pub markets: Option<LiveMarkets>,
    /// Wallet name → its DEX venue's slot in the engine's routed venue.
    slots: BTreeMap<String, usize>,
    pools: SharedPools,
    /// Best execution: the markets with more than one pool, their followed states, the pins.
    routing: Routing,
    /// The pool-state follower runs (once a market has more than one pool).
    following: bool,
    db_ids: Arc<RwLock<HashMap<usize, i64>>>,
    /// Markets whose pool feeds run.
    fed: BTreeSet<String>,
    ticks: mpsc::Sender<MarketTick>,
    reports: mpsc::Sender<VenueReport>,
    shutdown: watch::Receiver<bool>,
    run_id: i64,
    config: Arc<Config>,
    /// Where each wallet's BNB (gas) balance is shown.
    pub metrics: Option<Arc<crate::metrics::Metrics>>,
    /// Low gas is a risk condition whether or not a funds manager runs.
    pub guard: Option<GasGuard>,
    /// The running funds manager, told of each wallet and pool that joins.
    pub funds_join: Option<mpsc::UnboundedSender<crate::funds::FundsJoin>>,
    /// The node's latency and head lag are watched.
    chain_watched: bool,
    /// The wallets' executors: stopped with the core, so a core started again on the same
    /// wallet never has a second executor beside the first (what one was sending is then
    /// settled by the new core's recovery, as after a crash).
    executors: Vec<tokio::task::AbortHandle>,
}

/// What pauses a wallet's strategies when its gas runs low and no funds manager runs to drip it
/// (with one, the manager drips, or pauses when it cannot).
#[derive(Clone)]
pub struct GasGuard {
    pub store: crate::store::Store,
    pub alerter: crate::alerts::Alerter,
    /// A funds manager runs and keeps every live wallet.
    pub funds_manages: bool,
    /// What the funds manager does (why it does not, when off).
    pub funds_status: String,
}

impl LiveRuntime {
    pub fn new(
        markets: Option<LiveMarkets>,
        config: Arc<Config>,
        ticks: mpsc::Sender<MarketTick>,
        reports: mpsc::Sender<VenueReport>,
        shutdown: watch::Receiver<bool>,
        run_id: i64,
    ) -> Self {
        LiveRuntime {
            markets,
            slots: BTreeMap::new(),
            pools: Arc::new(RwLock::new(HashMap::new())),
            routing: Routing::default(),
            following: false,
            db_ids: Arc::new(RwLock::new(HashMap::new())),
            fed: BTreeSet::new(),
            ticks,
            reports,
            shutdown,
            run_id,
            config,
            metrics: None,
            guard: None,
            funds_join: None,
            chain_watched: false,
            executors: Vec::new(),
        }
    }

    /// The slot of `wallet`'s DEX venue, if it has one.
    pub fn slot(&self, wallet: &str) -> Option<usize> {
        self.slots.get(wallet).copied()
    }

    pub fn set_slot(&mut self, wallet: &str, slot: usize) {
        self.slots.insert(wallet.to_string(), slot);
    }

    /// Stop every wallet's executor (the core is ending).
    pub fn stop_executors(&mut self) {
        for e in self.executors.drain(..) {
            e.abort();
        }
    }

    /// A DEX venue for `wallet`, its executor started (`None`: it has one, or is not ready).
    pub fn new_venue(&mut self, wallet: &str) -> Option<DexVenue> {
        if self.slots.contains_key(wallet) {
            return None;
        }
        let swapper = self.markets.as_ref()?.wallets.get(wallet)?.clone();
        let swapper_for_funds = swapper.clone();
        let address = swapper.address();
        let db_ids = self.db_ids.clone();
        let run_id = self.run_id;
        tracing::info!(wallet = %wallet, address = %swapper.address(), "live wallet ready");
        let (venue, executor) = dex_venue_shared(
            swapper,
            self.pools.clone(),
            self.config.dex.fee_bps,
            self.reports.clone(),
            Box::new(move |o| {
                let strategy = db_ids
                    .read()
                    .ok()
                    .and_then(|m| m.get(&o.strategy).copied())
                    .unwrap_or(-1);
                (
                    writer::client_order_id(strategy, run_id, o.order_id),
                    strategy,
                )
            }),
        );
        let task = tokio::spawn(executor.with_routing(self.routing.clone()).run());
        self.executors.push(task.abort_handle());
        if let Some(join) = &self.funds_join {
            let _ = join.send(crate::funds::FundsJoin::Wallet(
                wallet.to_string(),
                swapper_for_funds,
            ));
        }
        self.watch_chain();
        self.watch_gas(wallet, address);
        Some(venue)
    }

    /// Once a node serves live trading: its endpoints' request durations in `/metrics`, and the
    /// chain head's lag behind the host's clock read every `chain.balance_poll_secs`.
    fn watch_chain(&mut self) {
        let (Some(metrics), Some(m)) = (self.metrics.clone(), self.markets.as_ref()) else {
            return;
        };
        if self.chain_watched {
            return;
        }
        self.chain_watched = true;
        if let Ok(mut rpc) = metrics.rpc.lock() {
            *rpc = Some(m.client.clone());
        }
        let client = m.client.clone();
        let every = Duration::from_secs(self.config.chain.balance_poll_secs.max(1));
        let mut shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            loop {
                let now = u64::try_from(crate::clock::wall_clock_ms() / 1000).unwrap_or(0);
                match client.head_lag_secs(now).await {
                    Ok(lag) => {
                        if let Ok(mut l) = metrics.chain_head_lag_secs.lock() {
                            *l = Some(lag);
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot read the chain's head"),
                }
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = shutdown.changed() => return,
                }
            }
        });
    }

    /// Read `wallet`'s BNB every `chain.balance_poll_secs` into the metrics (gas runway; the
    /// `LowGasBalance` alert reads it). A failed read keeps the last figure and logs.
    fn watch_gas(&self, wallet: &str, address: alloy::primitives::Address) {
        let (Some(metrics), Some(m)) = (self.metrics.clone(), self.markets.as_ref()) else {
            return;
        };
        let client = m.client.clone();
        let every = Duration::from_secs(self.config.chain.balance_poll_secs.max(1));
        let mut shutdown = self.shutdown.clone();
        let key = (wallet.to_string(), address.to_string());
        let guard = self.guard.clone().filter(|g| !g.funds_manages);
        let min = self.config.funds.gas_min_bnb;
        tokio::spawn(async move {
            loop {
                match client.native_balance(address).await {
                    Ok(bnb) => {
                        if let Ok(mut w) = metrics.wallet_bnb.lock() {
                            w.insert(key.clone(), bnb);
                        }
                        if let (Some(g), true) = (&guard, bnb < min) {
                            let why = format!("funds manager {}", g.funds_status);
                            match crate::funds::pause_for_low_gas(
                                &g.store, &key.0, address, bnb, min, &why,
                            )
                            .await
                            {
                                Ok(paused) => {
                                    for (id, reason) in paused {
                                        metrics.risk_event("low_gas");
                                        g.alerter.raise(
                                            "low_gas",
                                            "critical",
                                            format!("strategy {id} paused: {reason}"),
                                        );
                                    }
                                }
                                Err(e) => {
                                    tracing::warn!(wallet = %key.0, error = %e, "cannot pause the wallet's strategies")
                                }
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(wallet = %key.0, error = %e, "cannot read the wallet's BNB")
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = shutdown.changed() => return,
                }
            }
        });
    }

    /// What the engine-thread side needs to register a strategy: the shared maps.
    pub fn maps(&self) -> (SharedPools, Arc<RwLock<HashMap<usize, i64>>>) {
        (self.pools.clone(), self.db_ids.clone())
    }

    /// Engine strategy index → the pool its parameters pin it to (set as a strategy joins).
    pub fn pins(&self) -> Arc<RwLock<HashMap<usize, crate::amm::PoolKind>>> {
        self.routing.pins.clone()
    }

    /// Re-read `pool`'s state whenever its events say it changed: its subscription feeds a channel
    /// of its own (never the engine: the market's price is its deepest pool's).
    fn follow_pool_events(
        &self,
        client: &crate::chain::ChainClient,
        pool: crate::chain::Pool,
        ix: usize,
    ) {
        tracing::info!(pool = %pool.pair, kind = %pool.kind, "best execution follows the pool's events");
        let (events_tx, mut events) = mpsc::channel::<MarketTick>(64);
        tokio::spawn(crate::market::pool_sync::run_pool_sync_feed(
            self.config.chain.ws_urls.clone(),
            client.clone(),
            pool.clone(),
            ix,
            events_tx,
            Arc::new(crate::market::pool::PoolFeedState::default()),
            Arc::new(crate::market::pool_sync::SyncFeedState::default()),
            self.shutdown.clone(),
        ));
        let (client, states, fee_bps) = (
            client.clone(),
            self.routing.states.clone(),
            self.config.dex.fee_bps,
        );
        tokio::spawn(async move {
            while events.recv().await.is_some() {
                // Several events queued are one re-read.
                while events.try_recv().is_ok() {}
                states
                    .refresh(&client, std::slice::from_ref(&pool), fee_bps)
                    .await;
            }
        });
    }

    /// Start `symbol`'s pool feeds (engine symbol `ix`) unless they run: polling, and the `Sync`
    /// subscription when `chain.ws_urls` is set.
    pub fn feed(&mut self, symbol: &str, ix: usize, pin: Option<crate::amm::PoolKind>) {
        let key = match pin {
            Some(kind) => format!("{symbol}@{kind}"),
            None => symbol.to_string(),
        };
        if self.fed.contains(&key) {
            return;
        }
        let Some(m) = &self.markets else {
            return;
        };
        // A pinned strategy's price is its pool's; the market's is its deepest pool's.
        let pool = match pin {
            Some(kind) => m
                .routes
                .get(symbol)
                .and_then(|r| r.iter().find(|p| p.kind == kind)),
            None => m.pools.get(symbol),
        };
        let Some(pool) = pool else {
            return;
        };
        if let Ok(mut p) = self.pools.write() {
            p.insert(ix, pool.clone());
        }
        if let Some(routes) = m
            .routes
            .get(symbol)
            .filter(|r| r.len() > 1 && pin.is_none())
        {
            if let Ok(mut r) = self.routing.routes.write() {
                r.insert(ix, routes.clone());
            }
            let kinds: Vec<String> = routes.iter().map(|p| p.kind.to_string()).collect();
            tracing::info!(%symbol, pools = ?kinds, price_from = %pool.kind, "best execution over the market's pools");
            if !self.following {
                self.following = true;
                tokio::spawn(crate::chain::pool_state::follow_pool_states(
                    m.client.clone(),
                    self.routing.routes.clone(),
                    self.routing.states.clone(),
                    self.config.dex.fee_bps,
                    Duration::from_millis(self.config.chain.pool_poll_ms),
                    self.shutdown.clone(),
                ));
            }
            // With `chain.ws_urls`, each other pool's `Swap` / `Sync` events (gaps refilled with
            // `eth_getLogs`) re-read its state as they arrive, not at the next poll.
            if !self.config.chain.ws_urls.is_empty() {
                for other in routes.iter().filter(|p| p.pair != pool.pair) {
                    self.follow_pool_events(&m.client, other.clone(), ix);
                }
            }
        }
        self.fed.insert(key);
        if let Some(join) = &self.funds_join.as_ref().filter(|_| pin.is_none()) {
            let _ = join.send(crate::funds::FundsJoin::Pool(
                symbol.to_string(),
                pool.clone(),
            ));
        }
        let state = Arc::new(crate::market::pool::PoolFeedState::default());
        tokio::spawn(crate::market::pool::run_pool_feed(
            m.client.clone(),
            pool.clone(),
            ix,
            Duration::from_millis(self.config.chain.pool_poll_ms),
            self.ticks.clone(),
            state.clone(),
            self.shutdown.clone(),
        ));
        if !self.config.chain.ws_urls.is_empty() {
            tokio::spawn(crate::market::pool_sync::run_pool_sync_feed(
                self.config.chain.ws_urls.clone(),
                m.client.clone(),
                pool.clone(),
                ix,
                self.ticks.clone(),
                state,
                Arc::new(crate::market::pool_sync::SyncFeedState::default()),
                self.shutdown.clone(),
            ));
        }
        tracing::info!(%symbol, pair = %pool.pair, "pool price feed started");
    }
}
